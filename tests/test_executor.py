"""The executor on virtual time against the simulated cloud: slots, dependencies, failures and interrupts."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from conftest import Running, scenario
from hostmap.cloud.openstack import connect_with
from hostmap.executor import Answer, Executor, ExecutorOptions
from hostmap.model import Inventory, Move, Plan, Step
from hostmap.planner import plan
from hostmap.results import MoveResult, RunResult
from hostmap.timing import MigrationParams, duration_model, solo_duration_s


def _plan(inventory: Inventory, moves: list[tuple[str, str]], after: dict[int, tuple[int, ...]] | None = None) -> Plan:
    by_name = {s.name: s for s in inventory.servers}
    steps = []
    for index, (name, target) in enumerate(moves):
        server = by_name[name]
        move = Move(server.id, name, server.host or "", target, server.demand, target)
        steps.append(Step(index, move, (after or {}).get(index, ())))
    return Plan(tuple(steps))


def _run(running: Running, plan: Plan, inventory: Inventory, **options: object) -> dict[str, tuple[str, str]]:
    assert running.clock is not None
    executor = Executor(running.cloud, running.clock, options=ExecutorOptions(**options))  # type: ignore[arg-type]
    result = executor.run(plan, inventory)
    return {m.server_name: (m.outcome, m.reason) for m in result.moves}


def test_moves_from_different_sources_run_in_parallel(start_sim: Callable[..., Running]) -> None:
    """Migrations leaving different hosts overlap, so the makespan is close to the longest, not the sum."""
    running = start_sim()
    assert running.clock is not None
    inventory = running.cloud.inventory()
    plan = _plan(inventory, [("web-0", "compute004"), ("db-0", "compute004"), ("cache-0", "compute004")])
    executor = Executor(running.cloud, running.clock)
    result = executor.run(plan, inventory)
    assert {m.outcome for m in result.moves} == {"migrated"}
    durations = [m.seconds or 0.0 for m in result.moves]
    assert result.makespan_s is not None
    assert result.makespan_s < sum(durations)
    starts = sorted(m.started_s or 0.0 for m in result.moves)
    assert starts[-1] - starts[0] < 1.0


def test_one_source_host_runs_one_at_a_time(start_sim: Callable[..., Running]) -> None:
    """With max_per_host 1, two moves from the same host do not overlap."""
    running = start_sim()
    assert running.clock is not None
    inventory = running.cloud.inventory()
    plan = _plan(inventory, [("web-0", "compute004"), ("web-1", "compute004")])
    result = Executor(running.cloud, running.clock).run(plan, inventory)
    first, second = result.moves
    assert first.finished_s is not None
    assert second.started_s is not None
    assert second.started_s >= first.finished_s


def test_failure_stops_only_dependent_moves(start_sim: Callable[..., Running]) -> None:
    """A failed move leaves its dependants not started, with the reason, while independent moves go on."""
    running = start_sim(scenario(faults=[{"kind": "precheck_fail", "server": "web-0"}]))
    inventory = running.cloud.inventory()
    plan = _plan(inventory, [("web-0", "compute004"), ("web-1", "compute003"), ("db-0", "compute004")],
                 after={1: (0,)})
    outcomes = _run(running, plan, inventory)
    assert outcomes["web-0"][0] == "failed"
    assert outcomes["web-1"][0] == "not_started"
    assert "web-0" in outcomes["web-1"][1]
    assert outcomes["db-0"][0] == "migrated"


def test_stop_on_failure_starts_nothing_new(start_sim: Callable[..., Running]) -> None:
    """With stop_on_failure, nothing starts after the first failure."""
    running = start_sim(scenario(faults=[{"kind": "precheck_fail", "server": "web-0"}]))
    inventory = running.cloud.inventory()
    plan = _plan(inventory, [("web-0", "compute004"), ("web-1", "compute003")])
    outcomes = _run(running, plan, inventory, stop_on_failure=True)
    assert outcomes["web-0"][0] == "failed"
    assert outcomes["web-1"][0] == "not_started"


def test_failed_midway_is_failed_not_migrated(start_sim: Callable[..., Running]) -> None:
    """A migration that fails while running is failed, with the server still on its source."""
    running = start_sim(scenario(faults=[{"kind": "fail_midway", "server": "db-0"}]))
    inventory = running.cloud.inventory()
    outcomes = _run(running, _plan(inventory, [("db-0", "compute004")]), inventory)
    assert outcomes["db-0"][0] == "failed"
    db = next(s for s in inventory.servers if s.name == "db-0")
    assert running.cloud.server_status(db.id).host == "compute002"


def _run_pressing(running: Running, plan: Plan, inventory: Inventory, presses: int) -> RunResult:
    """Run `plan` with Ctrl-C pressed `presses` times once the first migration is under way."""
    clock = running.clock
    assert clock is not None
    start = clock.now()
    executor = Executor(running.cloud, clock, interrupts=lambda: presses if clock.now() > start else 0)
    return executor.run(plan, inventory)


def test_first_interrupt_lets_in_flight_finish(start_sim: Callable[..., Running]) -> None:
    """After one interrupt no new migration starts, and the one in flight is watched to its end."""
    running = start_sim()
    inventory = running.cloud.inventory()
    plan = _plan(inventory, [("web-0", "compute004"), ("web-1", "compute004")])
    result = _run_pressing(running, plan, inventory, presses=1)
    outcomes = {m.server_name: m.outcome for m in result.moves}
    assert outcomes == {"web-0": "migrated", "web-1": "not_started"}
    assert result.interrupted


def test_second_interrupt_aborts_in_flight(start_sim: Callable[..., Running]) -> None:
    """After a second interrupt the in-flight migration is aborted and its server stays on the source."""
    running = start_sim()
    inventory = running.cloud.inventory()
    result = _run_pressing(running, _plan(inventory, [("db-0", "compute004")]), inventory, presses=2)
    move = result.moves[0]
    assert move.outcome == "failed"
    assert "aborted by the operator" in move.reason
    assert "confirmed on its source" in move.reason


def test_completion_is_seen_soon_after_it_happens(start_sim: Callable[..., Running]) -> None:
    """Polling follows the reported progress, so a completion is seen well within one regular poll interval."""
    # 6.1 s: just after the third regular poll, so polling on a fixed 2 s beat would see it 1.9 s late.
    running = start_sim(scenario(migration={"setup_s": 0.5}))
    assert running.clock is not None
    inventory = running.cloud.inventory()
    plan = _plan(inventory, [("db-0", "compute004")])
    options = ExecutorOptions()
    result = Executor(running.cloud, running.clock, options=options).run(plan, inventory)
    move = result.moves[0]
    actual = solo_duration_s(8192, MigrationParams(setup_s=0.5))
    assert move.outcome == "migrated"
    assert move.seconds is not None
    assert actual <= move.seconds < actual + options.poll_s / 2


def test_interrupt_at_the_prompt_starts_nothing(start_sim: Callable[..., Running]) -> None:
    """Ctrl-C while a question is on screen means no migration starts, whatever is answered afterwards."""
    running = start_sim()
    assert running.clock is not None
    inventory = running.cloud.inventory()
    presses = {"count": 0}

    def confirm(step: Step, meanwhile: Callable[[], None]) -> Answer:
        presses["count"] = 1
        return "yes"

    executor = Executor(running.cloud, running.clock, confirm=confirm, interrupts=lambda: presses["count"])
    result = executor.run(_plan(inventory, [("web-0", "compute004")]), inventory)
    assert result.moves[0].outcome == "not_started"
    assert running.sim.state.mutating_request_count() == 0


def test_server_gone_before_submission_is_not_sent(start_sim: Callable[..., Running]) -> None:
    """A server that vanished after planning is reported, and no request is sent for it."""
    data = scenario()
    data["servers"][0]["id"] = "aaaaaaaa-0000-4000-8000-000000000001"
    gone = "/servers/aaaaaaaa-0000-4000-8000-000000000001$"
    data["faults"] = [{"kind": "api_error", "method": "GET", "path_regex": gone, "status": 404}]
    running = start_sim(data)
    inventory = running.cloud.inventory()
    outcomes = _run(running, _plan(inventory, [("web-0", "compute004")]), inventory)
    assert outcomes["web-0"] == ("not_started", "the server no longer exists; nothing was sent")
    assert running.sim.state.mutating_request_count() == 0


def test_api_outage_still_ends_with_a_report(start_sim: Callable[..., Running]) -> None:
    """When every watch read fails for longer than the outage bound, the run ends with an unresolved row."""
    data = scenario(faults=[{"kind": "api_error", "method": "GET", "path_regex": "/os-migrations$", "status": 503,
                             "from_s": 1.0}])
    running = start_sim(data)
    assert running.clock is not None
    cloud = connect_with({**running.sim.connect_kwargs(), "status_code_retries": 0})
    try:
        inventory = cloud.inventory()
        plan = _plan(inventory, [("db-0", "compute004")])
        result = Executor(cloud, running.clock, options=ExecutorOptions(outage_s=6.0)).run(plan, inventory)
    finally:
        cloud.close()
    move = result.moves[0]
    assert move.outcome == "failed"
    assert move.unresolved
    assert "stopped watching" in move.reason
    assert "503" in result.error
    assert not result.reached


def _gap_plan(inventory: Inventory, filler_estimate_s: float) -> Plan:
    """db-0 leaves compute002; web-0 leaves compute001 after it; web-1, also from compute001, is ready at once."""
    by_name = {s.name: s for s in inventory.servers}

    def move(name: str, target: str, estimate: float) -> Move:
        server = by_name[name]
        return Move(server.id, name, server.host or "", target, server.demand, target, estimate)

    return Plan((
        Step(0, move("db-0", "compute003", 6.0)),
        Step(1, move("web-0", "compute004", 2.0), (0,)),
        Step(2, move("web-1", "compute004", filler_estimate_s)),
    ))


def _gap_run(running: Running, filler_estimate_s: float) -> dict[str, MoveResult]:
    """Run `_gap_plan` to its end; each server's row, after checking that all migrated."""
    assert running.clock is not None
    inventory = running.cloud.inventory()
    result = Executor(running.cloud, running.clock).run(_gap_plan(inventory, filler_estimate_s), inventory)
    assert {m.outcome for m in result.moves} == {"migrated"}
    return {m.server_name: m for m in result.moves}


def test_a_ready_move_does_not_delay_its_sources_next_planned_move(start_sim: Callable[..., Running]) -> None:
    """A ready migration that would still run when the source's earlier planned move can start waits for it."""
    rows = _gap_run(start_sim(), 60.0)
    assert rows["web-0"].started_s is not None
    assert rows["web-1"].started_s is not None
    assert rows["db-0"].finished_s is not None
    assert rows["web-0"].finished_s is not None
    assert rows["web-0"].started_s >= rows["db-0"].finished_s
    assert rows["web-1"].started_s >= rows["web-0"].finished_s


def test_a_ready_move_fills_a_gap_it_fits_in(start_sim: Callable[..., Running]) -> None:
    """A ready migration expected to end before the source's earlier planned move can start goes at once."""
    rows = _gap_run(start_sim(), 0.5)
    assert rows["web-1"].started_s is not None
    assert rows["db-0"].finished_s is not None
    assert rows["web-1"].started_s < 1.0 < rows["db-0"].finished_s


def test_a_ready_move_waits_when_the_earlier_move_waits_for_one_not_yet_started(
    start_sim: Callable[..., Running],
) -> None:
    """A dependency of the source's next planned move still waits for its own slot: the ready move holds back."""
    data = scenario()
    data["servers"].append({"name": "db-1", "flavor": "m1.small", "host": "compute002"})
    running = start_sim(data)
    assert running.clock is not None
    inventory = running.cloud.inventory()
    by_name = {s.name: s for s in inventory.servers}

    def move(name: str, target: str, estimate: float) -> Move:
        server = by_name[name]
        return Move(server.id, name, server.host or "", target, server.demand, target, estimate)

    plan = Plan((
        Step(0, move("db-0", "compute003", 6.0)),
        Step(1, move("db-1", "compute004", 2.0)),  # waits for compute002's slot
        Step(2, move("web-0", "compute004", 2.0), (1,)),
        Step(3, move("web-1", "compute004", 60.0)),  # ready at once, long
    ))
    result = Executor(running.cloud, running.clock).run(plan, inventory)
    rows = {m.server_name: m for m in result.moves}
    assert {m.outcome for m in result.moves} == {"migrated"}
    assert rows["web-1"].started_s is not None
    assert rows["web-0"].finished_s is not None
    assert rows["web-1"].started_s >= rows["web-0"].finished_s


def test_a_drain_costs_few_requests_per_migration(start_sim: Callable[..., Running]) -> None:
    """One shared os-migrations watch and counters read only when they change a decision: a one-source drain of six
    servers costs at most 8 compute requests per migration, and each end is still seen within 0.2 s."""
    hosts = [{"name": f"compute00{i}", "vcpus": 64, "memory_mb": 65536, "disk_gb": 2000} for i in range(1, 5)]
    servers = [{"name": f"vm-{j}", "flavor": "m1.large" if j % 2 else "m1.small", "host": "compute001"}
               for j in range(6)]
    running = start_sim(scenario(hosts=hosts, servers=servers, migration={}))
    assert running.clock is not None
    inventory = running.cloud.inventory()
    desired = {s.id: f"compute00{2 + j % 3}" for j, s in enumerate(sorted(inventory.servers, key=lambda s: s.name))}
    the_plan = plan(inventory, desired, duration=duration_model(MigrationParams()))
    first = len(running.sim.state.requests)
    result = Executor(running.cloud, running.clock).run(the_plan, inventory)
    assert {m.outcome for m in result.moves} == {"migrated"}
    compute = [r for r in running.sim.state.requests[first:] if r[1].startswith("/compute")]
    migrations = running.sim.state.migrations
    assert len(compute) <= 8 * len(migrations)
    seen = {m.server_id: m.finished_s for m in result.moves}
    for migration in migrations:
        assert migration.finished_s is not None
        assert 0 <= (seen[migration.server_id] or 0.0) - migration.finished_s < 0.2


def test_max_in_per_host_holds_in_the_executed_run(start_sim: Callable[..., Running]) -> None:
    """With max_in_per_host 1, migrations from three sources into one host run one at a time in nova, though
    their sources are free to send at once."""
    running = start_sim()
    assert running.clock is not None
    inventory = running.cloud.inventory()
    ids = {s.name: s.id for s in inventory.servers}
    desired = {ids["web-0"]: "compute004", ids["db-0"]: "compute004", ids["cache-0"]: "compute004"}
    the_plan = plan(inventory, desired, max_in_per_host=1)
    result = Executor(running.cloud, running.clock).run(the_plan, inventory)
    assert {m.outcome for m in result.moves if m.server_name != "web-1"} == {"migrated"}
    spans = sorted((m.created_s, m.finished_s or 0.0) for m in running.sim.state.migrations)
    assert len(spans) == 3
    for (_, end), (start, _) in pairwise(spans):
        assert start >= end
