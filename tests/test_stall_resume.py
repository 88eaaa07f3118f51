"""A force-complete the journal records: a rerun after a crash never sends it again, reports it; history shows it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

from conftest import Running, run_cli, scenario
from hostmap.apply import ApplySettings, apply_map
from hostmap.cloud.base import MigrationRecord
from hostmap.executor import ExecutorOptions
from hostmap.hostmap_file import parse_host_map
from hostmap.journal import Journal
from hostmap.model import Step
from hostmap.reporter import Reporter
from hostmap.results import RunResult
from hostmap.stall import StallFacts

MAP = {"compute004": ["db-0"]}


class _Killed(BaseException):
    """The process died: nothing after it runs, nothing more is written (not an exception hostmap handles)."""


class _KillAfterForce(Reporter):
    """Kills the run at its first look at the migration after it sent force-complete."""

    def __init__(self) -> None:
        self.forced = False

    def stalled(self, step: Step, facts: StallFacts | None) -> None:
        self.forced = self.forced or (facts is not None and facts.action == "force-complete")

    def progress(self, step: Step, record: MigrationRecord) -> None:
        if self.forced:
            raise _Killed


def _apply(running: Running, tmp_path: Path, reporters: list[Reporter], abort_wait_s: float = 300.0) -> RunResult:
    assert running.clock is not None
    options = ExecutorOptions(on_stall="force-complete", max_pause_s=30.0, abort_wait_s=abort_wait_s)
    return apply_map(
        running.cloud, cloud_key="sim", clock=running.clock, host_map=parse_host_map(MAP, "map.json"),
        map_text=json.dumps(MAP), settings=ApplySettings(options, tmp_path / "journal.sqlite"),
        reporters=reporters, confirm_for=lambda inventory: None, interrupts=lambda: 0,
    )


def _forces(running: Running, migration: int = 1) -> int:
    """The force_complete requests sent for a migration (the first, by default)."""
    return sum(1 for method, path, _, _ in running.sim.state.requests
               if method == "POST" and path.endswith(f"/migrations/{migration}/action"))


def _killed_after_force(start_sim: Callable[..., Running], tmp_path: Path) -> Running:
    """A run killed right after it force-completed db-0's never-converging migration (its guest paused ~8.6 s)."""
    running = start_sim(scenario(faults=[{"kind": "never_converge", "server": "db-0"}]))
    killer = _KillAfterForce()
    with contextlib.suppress(_Killed):
        _apply(running, tmp_path, [killer])
    assert killer.forced
    assert _forces(running) == 1
    return running


def test_a_rerun_does_not_force_again_and_reports_the_force(start_sim: Callable[..., Running], tmp_path: Path) -> None:
    """After a kill just after force-complete, the rerun adopts the migration without a second force, reports the
    move migrated and forced, and the journal's move keeps the force and says it was not sent again."""
    running = _killed_after_force(start_sim, tmp_path)
    result = _apply(running, tmp_path, [])
    moves = [(m.server_name, m.outcome) for m in result.moves]
    assert moves == [("db-0", "migrated")]
    resumed = result.moves[0]
    assert resumed.stall is not None
    assert resumed.stall.action == "force-complete"
    assert "force-complete sent by the interrupted run; not sent again" in resumed.reason
    assert _forces(running) == 1
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        move = journal.run(1).moves[0]
    assert move.outcome == "migrated"
    assert "not sent again" in move.reason
    assert json.loads(move.detail)["stall"]["action"] == "force-complete"


def test_a_recorded_force_that_never_took_is_bounded_not_resent(start_sim: Callable[..., Running],
                                                                  tmp_path: Path) -> None:
    """The journal records the force but nova never carried it out (its request failed through every retry): the
    rerun still does not send it again; the migration, still running `abort_wait_s` after the recorded force, is
    aborted as stalled."""
    faults = [{"kind": "never_converge", "server": "db-0"},
              {"kind": "api_error", "method": "POST", "path_regex": "/migrations/[0-9]+/action$", "status": 500,
               "count": 5}]
    running = start_sim(scenario(faults=faults))
    killer = _KillAfterForce()
    with contextlib.suppress(_Killed):
        _apply(running, tmp_path, [killer])
    sent = _forces(running)  # one request, tried again by keystoneauth on each 500
    result = _apply(running, tmp_path, [], abort_wait_s=40.0)
    resumed = result.moves[0]
    assert resumed.outcome == "stalled"
    assert "force-complete did not finish within 40 s" in resumed.reason
    assert _forces(running) == sent
    assert running.sim.state.migrations[0].paused_s == 0.0


def test_history_shows_the_detail_in_the_table_and_json(start_sim: Callable[..., Running], tmp_path: Path) -> None:
    """`history RUN` gives a move's journaled detail: the stall's figures and the force, in words in the table and
    as an object in -f json."""
    running = _killed_after_force(start_sim, tmp_path)
    _apply(running, tmp_path, [])
    journal = str(tmp_path / "journal.sqlite")
    shown = run_cli(["history", "1", "--journal", journal, "-f", "json"])
    assert shown.code == 0, shown.err
    stall = shown.json()["moves"][0]["detail"]["stall"]
    assert stall["action"] == "force-complete"
    assert stall["remaining_gib"] > 7
    assert stall["stalled_s"] >= 60
    table = run_cli(["history", "1", "--journal", journal])
    assert table.code == 0, table.err
    words = " ".join(table.out.split())
    assert "force-completed" in words
    assert "GiB left" in words
