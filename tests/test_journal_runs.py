"""Runs recorded in the journal: history, the one-apply-per-cloud lock, and resuming after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SWAP_MAP, Running, run_cli, scenario, swap_scenario, write_json
from hostmap.journal import Journal
from hostmap.runlock import RunLock


def _apply_then_kill_9(host_map: Path, journal: Path, log: Path, *args: str) -> None:
    """Run `hostmap apply --yes` in a child process and kill -9 it once it has started a migration."""
    child = subprocess.Popen(
        [sys.executable, "-m", "hostmap", "apply", str(host_map), "--yes", "--journal", str(journal),
         "--log-file", str(log), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and "started:" in log.read_text():
                break
            time.sleep(0.1)
        else:
            pytest.fail("the first apply never started a migration")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)


def _posts(running: Running, server_id: str) -> int:
    return sum(1 for r in running.sim.state.requests if r[0] == "POST" and f"/servers/{server_id}/action" in r[1])


def test_history_lists_runs_and_moves(tmp_path: Path) -> None:
    """After an apply, history lists the run as reached and shows its moves with nova's migration ids."""
    journal = tmp_path / "journal.sqlite"
    data = write_json(tmp_path / "scenario.json", scenario())
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "db-0"]})
    applied = run_cli(["apply", str(host_map), "--yes", "--journal", str(journal), "--sim-scenario", str(data),
                       "--virtual-time", "--log-file", str(tmp_path / "log")])
    assert applied.code == 0, applied.err
    assert journal.stat().st_mode & 0o777 == 0o600
    runs = run_cli(["history", "--journal", str(journal), "-f", "json"]).json()
    assert [(r["status"], r["moves"], r["migrated"]) for r in runs] == [("reached", 2, 2)]
    detail = run_cli(["history", str(runs[0]["run"]), "--journal", str(journal), "-f", "json"]).json()
    assert sorted(m["server"] for m in detail["moves"]) == ["db-0", "web-0"]
    assert all(m["migration_id"] and m["outcome"] == "migrated" and m["request_id"] for m in detail["moves"])
    table = run_cli(["history", "--journal", str(journal)])
    assert "reached" in table.out


def test_history_of_unknown_run_exits_2(tmp_path: Path) -> None:
    """Asking for a run that is not in the journal exits 2 and says how to list runs."""
    journal = tmp_path / "j.sqlite"
    Journal.open(journal).close()
    result = run_cli(["history", "7", "--journal", str(journal)])
    assert result.code == 2
    assert result.err.splitlines() == ["hostmap: error: no run 7 in the journal; `hostmap history` lists the runs"]


def test_history_never_creates_a_journal(tmp_path: Path) -> None:
    """History with a --journal path that does not exist says so, exits 2 and creates nothing."""
    missing = tmp_path / "typo" / "j.sqlite"
    result = run_cli(["history", "--journal", str(missing)])
    assert result.code == 2
    assert "no journal at" in result.err
    assert not missing.parent.exists()


def test_journal_holds_no_password(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """Neither the journal nor the log contains the cloud's password."""
    running = env_cloud(virtual=False)
    password = running.sim.env()["OS_PASSWORD"]
    journal = tmp_path / "journal.sqlite"
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    result = run_cli(["apply", str(host_map), "--yes", "--journal", str(journal), "--log-file", str(tmp_path / "l")])
    assert result.code == 0, result.err
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name.startswith("journal.sqlite") for path in files)
    for path in files:
        assert password.encode() not in path.read_bytes(), path
    assert password not in result.out + result.err


def test_second_apply_is_refused_while_one_runs(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """While another apply holds the cloud's lock, a second one exits 3 naming the first, and moves nothing."""
    running = env_cloud()
    journal = tmp_path / "journal.sqlite"
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    with RunLock(running.cloud.identity):
        result = run_cli(["apply", str(host_map), "--yes", "--journal", str(journal),
                          "--log-file", str(tmp_path / "log")])
    assert result.code == 3
    assert f"pid {os.getpid()}" in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_resume_after_kill_9_never_submits_twice(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """After kill -9 mid-run, apply watches the in-flight migration instead of resubmitting it, then finishes."""
    data = scenario(migration={"setup_s": 3.0})
    running = env_cloud(data, virtual=False)
    ids = {s.name: s.id for s in running.cloud.inventory().servers}
    journal = tmp_path / "journal.sqlite"
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1"]})
    _apply_then_kill_9(host_map, journal, tmp_path / "first.log", "-f", "json")
    first = next(name for name in ("web-0", "web-1") if _posts(running, ids[name]) == 1)
    result = run_cli(["apply", str(host_map), "--yes", "--journal", str(journal), "-f", "json",
                      "--log-file", str(tmp_path / "second.log")])
    assert result.code == 0, result.err
    rows = result.json()["moves"]
    resumed = [m for m in rows if "resumed" in m["reason"]]
    assert [(m["server"], m["outcome"]) for m in resumed] == [(first, "migrated")]
    assert sorted(m["server"] for m in rows) == ["web-0", "web-1"]  # one row each: no "already there" repeat
    assert {m["server"]: m["outcome"] for m in rows} == {"web-0": "migrated", "web-1": "migrated"}
    assert result.json()["reached"] is True
    assert _posts(running, ids["web-0"]) == 1
    assert _posts(running, ids["web-1"]) == 1
    runs = json.loads(run_cli(["history", "--journal", str(journal), "-f", "json"]).out)
    assert [r["status"] for r in runs] == ["reached", "crashed"]


@pytest.mark.timeout(180)
def test_resumed_migration_keeps_its_original_deadline(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A migration adopted after a crash is timed from its original request: one long past --timeout is aborted."""
    data = scenario(migration={"setup_s": 0.2}, faults=[{"kind": "never_converge", "server": "web-0"}])
    running = env_cloud(data, virtual=False)
    web = next(s.id for s in running.cloud.inventory().servers if s.name == "web-0")
    journal = tmp_path / "journal.sqlite"
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    _apply_then_kill_9(host_map, journal, tmp_path / "first.log", "--timeout", "3600")
    assert _posts(running, web) == 1
    with sqlite3.connect(journal) as conn:  # the crash happened long ago
        conn.execute("UPDATE moves SET intended_at = '2000-01-01T00:00:00+00:00',"
                     " submitted_at = '2000-01-01T00:00:01+00:00'")
    started = time.monotonic()
    # Quit at the prompt for the fresh attempt that follows: only the resumed migration is of interest here.
    result = run_cli(["apply", str(host_map), "--journal", str(journal), "-f", "json",
                      "--timeout", "600", "--log-file", str(tmp_path / "second.log")], stdin="q\n")
    assert time.monotonic() - started < 120  # not a fresh 600 s budget
    assert result.code == 1, result.err
    (row,) = [m for m in result.json()["moves"] if "resumed" in m["reason"]]
    assert row["outcome"] == "timed_out"
    assert "confirmed on its source" in row["reason"]
    assert _posts(running, web) == 1
    statuses = [m.status for m in running.sim.state.migrations if m.server_id == web]
    assert statuses == ["cancelled"]


def test_history_says_when_a_server_was_left_on_a_pivot(tmp_path: Path) -> None:
    """When a detour's second leg never happened, history shows its first leg as the server's place: on the pivot."""
    # compute002 is disabled between the legs of a's detour.
    data = swap_scenario(faults=[{"kind": "service_disabled", "host": "compute002", "at_s": 7}])
    journal = tmp_path / "journal.sqlite"
    applied = run_cli(["apply", str(write_json(tmp_path / "map.json", SWAP_MAP)),
                       "--yes", "--sim-scenario", str(write_json(tmp_path / "scenario.json", data)), "--virtual-time",
                       "--journal", str(journal), "--log-file", str(tmp_path / "log")])
    assert applied.code == 1
    shown = json.loads(run_cli(["history", "1", "--journal", str(journal), "-f", "json"]).out)
    first = next(m for m in shown["moves"] if m["server"] == "a" and m["target"] == "compute003")
    assert first["final_target"] == "compute002"
    assert first["reason"] == "on pivot compute003, not on its final host compute002"
    table = run_cli(["history", "1", "--journal", str(journal)])
    assert "on pivot compute003" in table.out
