"""Errors that stay readable at any size (a capped list, the nearest names, every problem in the log), and the
state directory: logs pruned, the directory private."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from conftest import Running, run_cli, write_json
from hostmap.log_retention import prune_logs


def test_thousands_of_unknown_servers_list_twenty_and_log_all(
    tmp_path: Path, env_cloud: Callable[..., Running]
) -> None:
    """A map of 2,000 unknown servers lists 20 problems and how many more, the log has each on its own line, and
    nothing moves."""
    running = env_cloud()
    path = write_json(tmp_path / "map.json", {"compute002": [f"ghost-{i}" for i in range(2000)]})
    log = tmp_path / "log"
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(log)])
    assert result.code == 2
    listed = [line for line in result.err.splitlines() if "no server named" in line]
    assert len(listed) == 20
    assert "... and 1980 more (each one is in the log file)" in result.err
    assert len(result.err) < 8000
    logged = [line for line in log.read_text().splitlines() if "no server named" in line]
    assert len(logged) == 2000
    assert max(len(line) for line in logged) < 400
    assert running.sim.state.mutating_request_count() == 0


def test_unknown_names_suggest_the_nearest_not_the_whole_list(
    tmp_path: Path, env_cloud: Callable[..., Running]
) -> None:
    """A misspelt host or server is answered with the nearest names, not every host of the cloud."""
    env_cloud()
    path = write_json(tmp_path / "map.json", {"compute0003": ["web-O"], "compute004": ["cache-1"]})
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    host_line = next(line for line in result.err.splitlines() if '"compute0003"' in line)
    assert "nearest: compute003" in host_line
    assert "compute001" not in host_line.split("nearest:")[0]
    server_line = next(line for line in result.err.splitlines() if '"cache-1"' in line)
    assert "nearest names: cache-0" in server_line


def test_log_files_are_pruned_to_the_newest_and_the_last_month(tmp_path: Path) -> None:
    """Beyond the newest 50 and past 30 days, hostmap's own log files go; other files and the new log stay."""
    now = time.time()
    for i in range(60):
        path = tmp_path / f"hostmap-2026{i:04d}-000000-1.log"
        path.write_text("x")
        os.utime(path, (now - i * 60, now - i * 60))
    old = tmp_path / "hostmap-old.log"
    old.write_text("x")
    os.utime(old, (now - 40 * 86400, now - 40 * 86400))
    spare = tmp_path / "hostmap-20260059-000000-1.log"  # the oldest of the 60, but the one just opened
    other = tmp_path / "journal.sqlite"
    other.write_text("x")
    deleted = prune_logs(tmp_path, spare=spare, now=now)
    left = sorted(p.name for p in tmp_path.glob("hostmap-*.log"))
    assert len(deleted) == 10
    assert len(left) == 51
    assert spare.name in left
    assert old.name not in left
    assert other.exists()


def test_a_command_prunes_the_default_log_directory(
    private_state: Path, env_cloud: Callable[..., Running]
) -> None:
    """Running a command with the default log file leaves at most 50 of hostmap's logs in the state directory."""
    env_cloud()
    logs = private_state / "hostmap"
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(55):
        (logs / f"hostmap-2020{i:04d}-000000-1.log").write_text("x")
    assert run_cli(["export"]).code == 0
    assert len(list(logs.glob("hostmap-*.log"))) == 50


def test_the_state_directory_is_private(private_state: Path, env_cloud: Callable[..., Running]) -> None:
    """The state directory that holds logs, journals and locks (whose names include the auth URL) is created 0700."""
    env_cloud()
    assert run_cli(["export"]).code == 0
    assert (private_state / "hostmap").stat().st_mode & 0o777 == 0o700
