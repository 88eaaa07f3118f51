"""--check health checks around each move, run as real commands against the simulated cloud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import CliResult, run_cli, write_json
from hostmap.journal import Journal


def _cloud(names: tuple[str, ...] = ("app-0", "app-1", "other")) -> dict[str, Any]:
    """Six hosts; app-0 and app-1 in one server group, `other` in none, each on a host of its own."""
    hosts = [{"name": f"compute00{i}", "vcpus": 8, "memory_mb": 16384, "disk_gb": 200} for i in range(1, 7)]
    return {
        "hosts": hosts,
        "flavors": [{"name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20}],
        "servers": [{"name": n, "flavor": "m1.small", "host": f"compute00{i + 1}"} for i, n in enumerate(names)],
        "server_groups": [{"name": "app", "policy": "soft-anti-affinity", "members": list(names[:2])}],
        "migration": {"setup_s": 0.2},
    }


def _apply(tmp_path: Path, check: str, *extra: str, names: tuple[str, ...] = ("app-0", "app-1", "other"),
           ) -> CliResult:
    host_map = write_json(tmp_path / "map.json", {"compute004": [names[0]], "compute005": [names[1]],
                                                 "compute006": [names[2]]})
    scenario = write_json(tmp_path / "scenario.json", _cloud(names))
    return run_cli(["apply", str(host_map), "--yes", "-f", "json", "--sim-scenario", str(scenario),
                    "--virtual-time", "--log-file", str(tmp_path / "log"), "--journal", str(tmp_path / "j.sqlite"),
                    "--check", check, *extra])


def _moves(result: CliResult) -> dict[str, dict[str, Any]]:
    return {m["server"]: m for m in result.json()["moves"]}


def test_checks_get_the_server_quoted_and_in_the_environment(tmp_path: Path) -> None:
    """Each move is checked before and after, with {id} {name} {source} {target} quoted in the command and the
    same in HOSTMAP_* variables: a name with shell syntax in it stays a name."""
    seen = tmp_path / "seen.txt"
    names = ("app 0; touch pwned", "app-1", "other")
    check = (f'printf "%s|%s|%s|%s|%s|%s\\n" "$HOSTMAP_CHECK" {{id}} {{name}} {{source}} {{target}} '
             f'"$HOSTMAP_SERVER_NAME" >> {seen}')
    result = _apply(tmp_path, check, names=names)
    assert result.code == 0, result.err
    lines = seen.read_text().splitlines()
    moves = _moves(result)
    odd = moves[names[0]]
    assert f"pre|{odd['id']}|{names[0]}|compute001|compute004|{names[0]}" in lines
    assert f"post|{odd['id']}|{names[0]}|compute001|compute004|{names[0]}" in lines
    assert len(lines) == 6
    assert not (tmp_path / "pwned").exists()
    assert not Path("pwned").exists()
    assert [c["phase"] for c in odd["checks"]] == ["pre", "post"]
    assert all(c["ok"] for c in odd["checks"])


def test_a_failing_pre_check_skips_the_move(tmp_path: Path) -> None:
    """A pre-check that fails for one server: outcome check_failed, nothing sent for it, the others move, exit 1;
    the journal has the outcome and the check, and the check's output is in the log."""
    check = '[ "$HOSTMAP_CHECK" = post ] || [ {name} != other ] || { echo "other is unhealthy"; exit 3; }'
    result = _apply(tmp_path, check)
    assert result.code == 1
    moves = _moves(result)
    assert moves["other"]["outcome"] == "check_failed"
    assert "the pre-check exited 3: other is unhealthy; nothing was sent" in moves["other"]["reason"]
    assert moves["other"]["checks"][0]["code"] == 3
    assert moves["app-0"]["outcome"] == moves["app-1"]["outcome"] == "migrated"
    assert "other is unhealthy" in (tmp_path / "log").read_text()
    with Journal.open(tmp_path / "j.sqlite") as journal:
        row = next(m for m in journal.run(1).moves if m.server_name == "other")
    assert row.outcome == "check_failed"
    assert row.submitted_at is None
    assert row.migration_id is None
    assert json.loads(row.detail)["checks"][0]["code"] == 3


def test_a_failing_post_check_stops_its_group_only(tmp_path: Path) -> None:
    """A post-check that fails after app-0 moved: app-0 is migrated with check_failed in its reason, app-1 (same
    group, held back by --max-in-flight-per-group 1) is not started, `other` still moves; exit 1."""
    check = '[ "$HOSTMAP_CHECK" = pre ] || [ {name} != app-0 ]'
    result = _apply(tmp_path, check, "--max-in-flight-per-group", "1")
    assert result.code == 1
    moves = _moves(result)
    assert moves["app-0"]["outcome"] == "migrated"
    assert "check_failed: the post-check exited 1" in moves["app-0"]["reason"]
    assert moves["app-1"]["outcome"] == "not_started"
    assert "post-check failed after the move of app-0" in moves["app-1"]["reason"]
    assert moves["other"]["outcome"] == "migrated"
    history = run_cli(["history", "1", "--journal", str(tmp_path / "j.sqlite")])
    assert "post-check failed (exit 1)" in " ".join(history.out.split())


def test_a_check_past_its_timeout_is_killed_and_fails(tmp_path: Path) -> None:
    """A pre-check that runs past --check-timeout is killed and counts as failed: nothing is sent."""
    result = _apply(tmp_path, "sleep 30", "--check-timeout", "0.3")
    assert result.code == 1
    moves = _moves(result)
    assert {m["outcome"] for m in moves.values()} == {"check_failed"}
    assert all(m["checks"][0]["timed_out"] for m in moves.values())
    assert "ran past --check-timeout" in moves["other"]["reason"]
