"""Stalled migrations in a run on the simulated cloud: abort, force-complete within the pause budget, or wait."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Running, run_cli, scenario, write_json
from hostmap.clock import VirtualClock
from hostmap.cloud.base import MigrationRecord
from hostmap.executor import Executor, ExecutorOptions
from hostmap.hostmap_file import parse_host_map
from hostmap.model import Step
from hostmap.planner import plan
from hostmap.reporter import Reporter
from hostmap.resolve import resolve
from hostmap.results import MoveResult
from hostmap.sim.state import SimMigration


def _run(running: Running, host_map: dict[str, list[str]], reporter: Reporter | None = None,
         **options: Any) -> dict[str, MoveResult]:
    assert running.clock is not None
    inventory = running.cloud.inventory()
    desired = resolve(parse_host_map(host_map, "map.json"), inventory)
    result = Executor(running.cloud, running.clock, reporter=reporter, options=ExecutorOptions(**options)).run(
        plan(inventory, desired.targets), inventory)
    return {m.server_name: m for m in result.moves}


def _migration(running: Running, name: str) -> SimMigration:
    state = running.sim.state
    state.advance()
    return next(m for m in state.migrations if state.servers[m.server_id].name == name)


def _server(running: Running, name: str) -> tuple[str | None, str]:
    state = running.sim.state
    server = next(s for s in state.servers.values() if s.name == name)
    return server.host, server.status


def _stuck(name: str, **changes: Any) -> dict[str, Any]:
    return scenario(faults=[{"kind": "never_converge", "server": name}], **changes)


def test_stall_is_aborted_within_stall_s(start_sim: Callable[..., Running]) -> None:
    """--on-stall abort: a never-converging migration ends `stalled` about stall_s into its copy (long before the
    timeout), the server confirmed on its source, with the stall's figures."""
    running = start_sim(_stuck("db-0"))
    move = _run(running, {"compute004": ["db-0"]})["db-0"]
    assert move.outcome == "stalled"
    assert "confirmed on its source" in move.reason
    assert move.seconds is not None
    assert 60 <= move.seconds < 80
    assert move.stall is not None
    assert move.stall.action == "abort"
    assert move.stall.copy_bps <= move.stall.dirty_bps
    assert move.stall.remaining_bytes > 7 * 2**30
    assert _server(running, "db-0") == ("compute002", "ACTIVE")


def test_force_complete_within_the_pause_budget(start_sim: Callable[..., Running]) -> None:
    """--on-stall force-complete: the guest is paused about its predicted pause (within --max-pause-s) and the
    server ends ACTIVE on its target, outcome migrated."""
    running = start_sim(_stuck("web-0"))
    move = _run(running, {"compute004": ["web-0"]}, on_stall="force-complete")["web-0"]
    assert move.outcome == "migrated"
    assert move.stall is not None
    assert move.stall.action == "force-complete"
    paused = _migration(running, "web-0").paused_s
    assert 0 < paused <= 5.0
    assert paused == pytest.approx(move.stall.predicted_pause_s, rel=0.05)
    assert _server(running, "web-0") == ("compute004", "ACTIVE")


def test_force_complete_refused_when_the_pause_is_too_long(start_sim: Callable[..., Running]) -> None:
    """A predicted pause over --max-pause-s aborts instead (outcome stalled) and says so; the guest never paused."""
    running = start_sim(_stuck("db-0"))
    move = _run(running, {"compute004": ["db-0"]}, on_stall="force-complete", max_pause_s=5.0)["db-0"]
    assert move.outcome == "stalled"
    assert move.stall is not None
    assert move.stall.pause_too_long
    assert move.stall.predicted_pause_s > 5.0
    assert _migration(running, "db-0").paused_s == 0.0


def test_force_complete_switches_to_post_copy(start_sim: Callable[..., Running]) -> None:
    """Where post-copy is permitted the forced migration goes `running (post-copy)` and completes unpaused."""
    running = start_sim(_stuck("db-0", migration={"setup_s": 0.2, "permit_post_copy": True}))
    move = _run(running, {"compute004": ["db-0"]}, on_stall="force-complete", max_pause_s=30.0)["db-0"]
    assert move.outcome == "migrated"
    assert _migration(running, "db-0").paused_s == 0.0
    assert any(r[1].endswith("/action") and r[0] == "POST" and "migrations" in r[1]
               for r in running.sim.state.requests)


def test_wait_keeps_watching_until_the_timeout(start_sim: Callable[..., Running]) -> None:
    """--on-stall wait: the stall is noted, and the migration aborted only at --timeout (outcome timed_out)."""
    running = start_sim(_stuck("web-0"))
    move = _run(running, {"compute004": ["web-0"]}, on_stall="wait", timeout_s=150.0)["web-0"]
    assert move.outcome == "timed_out"
    assert move.stall is not None
    assert move.stall.action == "wait"
    assert move.seconds is not None
    assert move.seconds >= 150


def test_on_timeout_force_complete(start_sim: Callable[..., Running]) -> None:
    """--on-timeout force-complete forces at the timeout, before any stall is called (stall_s longer)."""
    running = start_sim(_stuck("web-0"))
    move = _run(running, {"compute004": ["web-0"]}, on_timeout="force-complete", timeout_s=30.0,
                stall_s=300.0)["web-0"]
    assert move.outcome == "migrated"
    assert move.stall is not None
    assert move.stall.trigger == "timeout"
    assert 0 < _migration(running, "web-0").paused_s <= 5.0


def test_stall_that_clears_by_itself_with_wait(start_sim: Callable[..., Running]) -> None:
    """A guest busy for 90 s then quiet is called stalled, then no longer: with wait it migrates unforced."""
    running = start_sim(scenario(faults=[{"kind": "busy_then_quiet", "server": "db-0", "busy_s": 90}]))
    move = _run(running, {"compute004": ["db-0"]}, on_stall="wait")["db-0"]
    assert move.outcome == "migrated"
    assert move.stall is None
    assert _migration(running, "db-0").paused_s == 0.0


def test_stall_in_the_json_report(tmp_path: Path) -> None:
    """The JSON report gives a stalled move's figures and action; the run exits 1."""
    host_map = write_json(tmp_path / "map.json", {"compute004": ["db-0"]})
    scenario_file = write_json(tmp_path / "scenario.json", _stuck("db-0"))
    result = run_cli(["apply", str(host_map), "--yes", "-f", "json", "--sim-scenario", str(scenario_file),
                      "--virtual-time", "--log-file", str(tmp_path / "hostmap.log")])
    assert result.code == 1
    move = result.json()["moves"][0]
    assert move["outcome"] == "stalled"
    assert move["stall"]["action"] == "abort"
    assert move["stall"]["remaining_gib"] > 7
    assert move["stall"]["stalled_s"] >= 60


class _SlowOnce(Reporter):
    """Takes `seconds` of the clock (a display or journal on a slow disk) at the first progress read from `at_s`."""

    def __init__(self, clock: VirtualClock, at_s: float, seconds: float) -> None:
        self._clock, self._at_s, self._seconds, self._slept = clock, at_s, seconds, False

    def progress(self, step: Step, record: MigrationRecord) -> None:
        if record.memory_remaining_bytes is not None and self._clock.now() >= self._at_s and not self._slept:
            self._slept = True
            self._clock.sleep(self._seconds)


def _deletes(running: Running) -> int:
    return sum(1 for method, path, _, _ in running.sim.state.requests if method == "DELETE" and "migrations" in path)


def test_a_migration_that_completed_after_the_stall_read_is_not_aborted(start_sim: Callable[..., Running]) -> None:
    """The read that calls the stall (at 60 s) is followed by a minute in which the guest quiets and the migration
    completes: the fresh read before acting finds it ended, so no abort is sent and the move is migrated."""
    running = start_sim(scenario(faults=[{"kind": "busy_then_quiet", "server": "db-0", "busy_s": 62}]))
    assert running.clock is not None
    move = _run(running, {"compute004": ["db-0"]}, reporter=_SlowOnce(running.clock, 60.0, 60.0))["db-0"]
    assert _deletes(running) == 0
    assert move.outcome == "migrated"
    assert move.stall is None
    assert _server(running, "db-0") == ("compute004", "ACTIVE")


def test_the_fresh_read_acts_on_a_migration_still_stalled(start_sim: Callable[..., Running]) -> None:
    """A never-converging migration is still stalled by the fresh read after the same slow minute: it is aborted,
    once, with the figures of that read."""
    running = start_sim(_stuck("db-0"))
    assert running.clock is not None
    move = _run(running, {"compute004": ["db-0"]}, reporter=_SlowOnce(running.clock, 60.0, 60.0))["db-0"]
    assert _deletes(running) == 1
    assert move.outcome == "stalled"
    assert move.stall is not None
    assert move.stall.stalled_s >= 110
