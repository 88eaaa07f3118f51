"""Failure paths of a run against the simulated cloud: journal writes failing, lost aborts, Ctrl-C during a burst of
starts, and servers that change under hostmap between planning and the end of their migration."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import SWAP_MAP, Running, scenario, swap_scenario
from hostmap.apply import ApplySettings, apply_map
from hostmap.cloud.base import MigrationRecord
from hostmap.executor import Answer, Executor, ExecutorOptions
from hostmap.hostmap_file import parse_host_map
from hostmap.journal import Journal
from hostmap.model import Step
from hostmap.planner import plan
from hostmap.resolve import resolve
from hostmap.results import RunResult


def _apply(running: Running, tmp_path: Path, host_map: dict[str, list[str]], *,
           interrupts: Callable[[], int] = lambda: 0, **options: Any) -> RunResult:
    assert running.clock is not None
    parsed = parse_host_map(host_map, "map.json")
    return apply_map(
        running.cloud, cloud_key="sim", clock=running.clock, host_map=parsed, map_text=json.dumps(host_map),
        settings=ApplySettings(ExecutorOptions(**options), tmp_path / "journal.sqlite"), reporters=[],
        confirm_for=lambda inventory: None, interrupts=interrupts,
    )


def _rows(result: RunResult) -> dict[str, tuple[str, str]]:
    return {m.server_name: (m.outcome, m.reason) for m in result.moves}


def _statuses(running: Running) -> dict[str, list[str]]:
    state = running.sim.state
    state.advance()
    found: dict[str, list[str]] = {}
    for m in state.migrations:
        found.setdefault(state.servers[m.server_id].name, []).append(m.status)
    return found


@pytest.fixture
def disk_fills_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal's disk is full from the third update of a move on."""
    real = Journal._update_move
    calls = 0

    def update(self: Journal, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 2:
            with self._guard():
                raise sqlite3.OperationalError("database or disk is full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Journal, "_update_move", update)


def test_journal_failure_mid_run_watches_flights_to_their_end(
    start_sim: Callable[..., Running], tmp_path: Path, disk_fills_up: None
) -> None:
    """When the journal cannot be written mid-run, migrations in flight are still watched to their end and reported,
    no new one starts, and the result names the journal's problem."""
    running = start_sim(scenario(migration={"setup_s": 3.0}))
    result = _apply(running, tmp_path, {"compute004": ["web-0", "db-0", "cache-0"], "compute003": ["web-1"]})
    rows = _rows(result)
    assert "database or disk is full" in result.error
    migrated = {name for name, (outcome, _) in rows.items() if outcome == "migrated"}
    assert migrated  # the flights of the first burst ended and were judged
    for name, statuses in _statuses(running).items():
        assert statuses == ["completed"], (name, statuses)  # nothing left running unwatched
        assert name in migrated
    assert all(outcome == "not_started" for name, (outcome, _) in rows.items() if name not in migrated)
    assert not result.reached


def test_abort_lost_to_api_errors_is_sent_again(start_sim: Callable[..., Running], tmp_path: Path) -> None:
    """An abort eaten by more 503 answers than keystoneauth retries is sent again until nova cancels the migration."""
    data = scenario(faults=[
        {"kind": "never_converge", "server": "db-0"},
        {"kind": "api_error", "method": "DELETE", "path_regex": "/migrations/", "status": 503, "count": 5},
    ])
    running = start_sim(data)
    result = _apply(running, tmp_path, {"compute004": ["db-0"]}, timeout_s=60)
    outcome, reason = _rows(result)["db-0"]
    assert outcome == "timed_out"
    assert "the abort request failed" in reason
    assert "confirmed on its source" in reason
    assert _statuses(running) == {"db-0": ["cancelled"]}
    deletes = [r for r in running.sim.state.requests if r[0] == "DELETE"]
    assert len(deletes) > 5


def test_unconfirmed_abort_holds_the_source_slot(start_sim: Callable[..., Running], tmp_path: Path) -> None:
    """While a migration hostmap could not abort may still run, no other migration is started from its source."""
    data = scenario(faults=[
        {"kind": "never_converge", "server": "db-0"},
        {"kind": "api_error", "method": "DELETE", "path_regex": "/migrations/", "status": 503},
    ])
    data["servers"].append({"name": "db-1", "flavor": "m1.small", "host": "compute002"})
    running = start_sim(data)
    result = _apply(running, tmp_path, {"compute004": ["db-0"], "compute003": ["db-1"]}, timeout_s=60,
                    abort_wait_s=60)
    rows = _rows(result)
    assert rows["db-0"][0] == "timed_out"
    assert "still running" in rows["db-0"][1]
    assert rows["db-1"][0] == "not_started"
    assert "db-0 from compute002 may still be running" in rows["db-1"][1]
    assert _statuses(running) == {"db-0": ["running"]}  # db-1 was never queued behind it


def test_ctrl_c_during_a_burst_stops_the_rest(start_sim: Callable[..., Running], tmp_path: Path) -> None:
    """Ctrl-C pressed right after the first request of a burst leaves the burst's other moves unsent."""
    running = start_sim()

    def interrupts() -> int:
        return int(any(r[0] == "POST" and r[1].endswith("/action") for r in running.sim.state.requests))

    result = _apply(running, tmp_path, {"compute004": ["web-0", "db-0", "cache-0"]}, interrupts=interrupts)
    assert result.interrupted
    assert len(_statuses(running)) == 1
    assert sorted(outcome for outcome, _ in _rows(result).values()) == ["migrated", "not_started", "not_started"]


def _executor_run(running: Running, host_map: dict[str, list[str]], change: Callable[[], None],
                  cloud: Any = None, **options: Any) -> RunResult:
    """Plan against the cloud as it is, let `change` act on the simulated cloud, then run the (now old) plan."""
    assert running.clock is not None
    inventory = running.cloud.inventory()
    desired = resolve(parse_host_map(host_map, "map.json"), inventory)
    the_plan = plan(inventory, desired.targets)
    change()
    return Executor(cloud or running.cloud, running.clock, options=ExecutorOptions(**options)).run(the_plan,
                                                                                                    inventory)


def _set_vm_state(running: Running, name: str, vm_state: str) -> None:
    state = running.sim.state
    with state.view():
        next(s for s in state.servers.values() if s.name == name).vm_state = vm_state


def test_server_paused_after_planning_migrates_as_paused(start_sim: Callable[..., Running]) -> None:
    """A server a tenant paused after planning is judged against its status at submission: migrated, not failed."""
    running = start_sim()
    result = _executor_run(running, {"compute004": ["web-0"]}, lambda: _set_vm_state(running, "web-0", "paused"))
    assert _rows(result)["web-0"] == ("migrated", "")


class _OnAbort:
    """The cloud as seen by hostmap, where nova answers an abort request with `nova_does` instead of the usual."""

    def __init__(self, running: Running, nova_does: Callable[[str, MigrationRecord], None]) -> None:
        self._running = running
        self._nova_does = nova_does

    def __getattr__(self, name: str) -> Any:
        return getattr(self._running.cloud, name)

    def abort_migration(self, server_id: str, migration: MigrationRecord) -> None:
        self._nova_does(server_id, migration)


def _abort_ignored(running: Running) -> _OnAbort:
    """Nova accepts the abort, but the migration goes on (and stops converging)."""

    def act(server_id: str, migration: MigrationRecord) -> None:
        state = running.sim.state
        with state.view():
            for m in state.migrations:
                if m.server_id == server_id and m.status == "running":
                    m.dirty_bps = 2 * m.rate_bps

    return _OnAbort(running, act)


def test_abort_is_confirmed_only_with_the_server_back_as_before(start_sim: Callable[..., Running]) -> None:
    """An aborted migration whose server is left in ERROR on its source is not reported as confirmed."""
    running = start_sim(scenario(faults=[{"kind": "never_converge", "server": "db-0"},
                                         {"kind": "abort_leaves_error", "server": "db-0"}]))
    result = _executor_run(running, {"compute004": ["db-0"]}, lambda: None, timeout_s=30)
    outcome, reason = _rows(result)["db-0"]
    assert outcome == "timed_out"
    assert "confirmed" not in reason
    assert "NOT back as before: server is ERROR on compute002" in reason


def test_waiting_for_an_abort_polls_at_the_regular_pace(start_sim: Callable[..., Running]) -> None:
    """While an accepted abort has not taken effect, hostmap polls every few seconds, not continuously, even when
    the migration's expected end has passed."""
    # Live byte counters (no 5 s saves): the expected end is known well before the timeout, then passes.
    running = start_sim(scenario(migration={"setup_s": 0.5, "monitor_interval_s": 0}))
    result = _executor_run(running, {"compute004": ["db-0"]}, lambda: None, cloud=_abort_ignored(running),
                           timeout_s=5.5, abort_wait_s=60)
    assert _rows(result)["db-0"][0] == "timed_out"
    gets = [r for r in running.sim.state.requests if r[0] == "GET" and "/compute/" in r[1]]
    assert running.clock is not None
    assert running.clock.now() > 60
    assert len(gets) < 4 * running.clock.now() / ExecutorOptions().poll_s


def test_failure_during_a_prompt_stops_the_next_start(start_sim: Callable[..., Running]) -> None:
    """With --stop-on-failure, a migration that failed while the operator was answering a prompt keeps the move they
    then approve from starting."""
    running = start_sim(scenario(faults=[{"kind": "fail_midway", "server": "db-0", "at_fraction": 0.1}]))
    clock = running.clock
    assert clock is not None
    asked: list[str] = []

    def confirm(step: Step, meanwhile: Callable[[], None]) -> Answer:
        asked.append(step.move.server_name)
        clock.sleep(30)  # the operator reads the question for half a minute (and nothing is watched meanwhile)
        return "yes"

    inventory = running.cloud.inventory()
    desired = resolve(parse_host_map({"compute004": ["web-0"], "compute003": ["db-0"]}, "map.json"), inventory)
    result = Executor(running.cloud, clock, confirm=confirm, options=ExecutorOptions(stop_on_failure=True)).run(
        plan(inventory, desired.targets, parallel=2), inventory)
    rows = _rows(result)
    assert asked == ["db-0", "web-0"]  # the longest migration first
    assert rows["db-0"][0] == "failed"
    assert rows["web-0"][0] == "not_started"
    assert "stopped after the move of db-0 failed" in rows["web-0"][1]
    assert "web-0" not in _statuses(running)


def test_migration_left_running_keeps_its_source_slot(start_sim: Callable[..., Running], tmp_path: Path) -> None:
    """With --on-timeout leave, a migration left running in nova keeps its source's slot: the next move from that
    host is not sent to queue behind it."""
    data = scenario(faults=[{"kind": "never_converge", "server": "db-0"}])
    data["servers"].append({"name": "db-1", "flavor": "m1.small", "host": "compute002"})
    running = start_sim(data)
    result = _apply(running, tmp_path, {"compute004": ["db-0"], "compute003": ["db-1"]}, timeout_s=30,
                    on_timeout="leave")
    rows = _rows(result)
    assert rows["db-0"][0] == "timed_out"
    assert rows["db-1"][0] == "not_started"
    assert "db-0 from compute002 may still be running" in rows["db-1"][1]
    assert _statuses(running) == {"db-0": ["running"]}


def test_abort_whose_answer_was_lost_is_not_reported_refused(start_sim: Callable[..., Running], tmp_path: Path) -> None:
    """An abort carried out by nova whose answer was lost (the retry then meets a 409) is reported as a plain abort."""
    data = scenario(faults=[
        {"kind": "never_converge", "server": "db-0"},
        {"kind": "api_error", "method": "DELETE", "path_regex": "/migrations/", "status": 502, "after": True,
         "count": 1},
    ])
    running = start_sim(data)
    result = _apply(running, tmp_path, {"compute004": ["db-0"]}, timeout_s=30)
    outcome, reason = _rows(result)["db-0"]
    assert outcome == "timed_out"
    assert "refused" not in reason
    assert reason.startswith("not completed within 30 s; aborted (migration cancelled), server confirmed on its source")


def test_counters_saved_every_few_seconds_still_give_an_expected_end(start_sim: Callable[..., Running]) -> None:
    """With nova's byte counters saved only every 5 s (and null before), hostmap still works out when a long
    migration will end and notices its end within half a second, with a bounded number of reads."""
    running = start_sim(scenario(migration={"setup_s": 1.0, "stream_gbps": 0.5}))  # db-0: about 140 s of copying
    result = _executor_run(running, {"compute004": ["db-0"]}, lambda: None)
    assert _rows(result)["db-0"] == ("migrated", "")
    (migration,) = running.sim.state.migrations
    assert migration.finished_s is not None
    assert result.makespan_s is not None
    lag = result.makespan_s - migration.finished_s
    assert 0 <= lag < 0.5  # the regular 2 s poll alone would be late by a second on average
    gets = [r for r in running.sim.state.requests if r[0] == "GET" and "/migrations" in r[1]]
    assert len(gets) < 2 * migration.finished_s / ExecutorOptions().poll_s


def test_detour_whose_second_leg_is_refused_is_reported_stranded(
    start_sim: Callable[..., Running], tmp_path: Path
) -> None:
    """When the final host of a detour is disabled between its legs, the row says the server is stranded on the
    pivot (not 'not started' on its source), and the cloud shows it there."""
    # compute002 is disabled between the legs of a's detour.
    data = swap_scenario(faults=[{"kind": "service_disabled", "host": "compute002", "at_s": 7}])
    running = start_sim(data)
    result = _apply(running, tmp_path, SWAP_MAP)
    row = next(m for m in result.moves if m.server_name == "a")
    assert (row.source, row.target, row.outcome) == ("compute001", "compute002", "stranded")
    assert row.reason.startswith("on pivot compute003: its second leg failed; move it to compute002 when possible")
    assert "No valid host" in row.reason
    assert _rows(result)["b"] == ("migrated", "")
    assert not result.reached
    state = running.sim.state
    assert next(s.host for s in state.servers.values() if s.name == "a") == "compute003"


def test_migrations_are_watched_while_a_question_is_on_screen(start_sim: Callable[..., Running]) -> None:
    """A migration that outlives --timeout while the operator is still reading the next question is aborted on time,
    not once they answer."""
    running = start_sim(scenario(faults=[{"kind": "never_converge", "server": "db-0"}]))
    clock = running.clock
    assert clock is not None

    def confirm(step: Step, meanwhile: Callable[[], None]) -> Answer:
        if step.move.server_name == "web-0":
            for _ in range(60):  # two minutes of thinking, watched every two seconds as the Prompter does
                clock.sleep(2)
                meanwhile()
        return "yes"

    inventory = running.cloud.inventory()
    desired = resolve(parse_host_map({"compute004": ["db-0"], "compute003": ["web-0"]}, "map.json"), inventory)
    result = Executor(running.cloud, clock, confirm=confirm, options=ExecutorOptions(timeout_s=30)).run(
        plan(inventory, desired.targets, parallel=2), inventory)
    (db,) = [m for m in result.moves if m.server_name == "db-0"]
    assert db.outcome == "timed_out"
    assert db.finished_s is not None
    assert db.finished_s < 40  # aborted at the timeout, while web-0's question was still on screen
    assert _statuses(running)["db-0"] == ["cancelled"]
