"""Tests of the planner: scenario files plus focused checks of the plan's shape and options."""

from __future__ import annotations

import gc
import random
from pathlib import Path
from typing import Any

import pytest

from hostmap.errors import CapacityError, InfeasiblePlanError, PolicyError, ZoneError
from hostmap.model import Inventory, Plan, Resources
from hostmap.planner import default_duration, plan
from planner_cases import all_cases, check_plan, load_case, make_inventory, make_server


def _run(path: Path) -> tuple[Any, Plan | Exception]:
    case = load_case(path)
    try:
        return case, plan(case.inventory, case.desired, **case.options)
    except (CapacityError, InfeasiblePlanError, PolicyError, ZoneError) as exc:
        return case, exc


@pytest.mark.parametrize("path", all_cases(), ids=lambda p: p.stem)
def test_scenario(path: Path) -> None:
    """Each scenario file's plan (or error) matches its expectation and replays safely in many orders."""
    case, result = _run(path)
    expect = case.expect
    if expect.get("error") == "capacity":
        assert isinstance(result, CapacityError), result
        got = [[s.host, s.resource, s.needed, s.available] for s in result.shortfalls]
        assert got == expect["shortfalls"]
        return
    if expect.get("error") == "policy":
        assert isinstance(result, PolicyError), result
        got_policy = [[v.group, v.host, list(v.servers)] for v in result.violations]
        assert got_policy == expect["violations"]
        return
    if expect.get("error") == "zone":
        assert isinstance(result, ZoneError), result
        assert [[v.server, v.zone, v.host, v.host_zone] for v in result.violations] == expect["violations"]
        return
    if expect.get("error") == "infeasible":
        assert isinstance(result, InfeasiblePlanError), result
        assert sorted(n for c in result.cycles for n in c.servers) == sorted(expect["servers"])
        if "hosts" in expect:
            assert sorted(h for c in result.cycles for h in c.hosts) == sorted(expect["hosts"])
        assert sorted(g for c in result.cycles for g in c.groups) == expect.get("groups", [])
        return
    assert isinstance(result, Plan), result
    check_plan(case.inventory, case.desired, result, randoms=10)
    got = [[s.move.server_name, s.move.source, s.move.target] for s in result.steps]
    if "steps" in expect:
        assert got == expect["steps"]
    if "after" in expect:
        assert [list(s.after) for s in result.steps] == expect["after"]
    if "settle_after" in expect:
        assert [list(s.settle_after) for s in result.steps] == expect["settle_after"]
    if "moves_at_least" in expect:
        assert len(result.steps) >= expect["moves_at_least"]
    if "detours" in expect:
        assert sum(s.move.is_detour for s in result.steps) == expect["detours"]
        assert len(result.notes) == expect["detours"]
    if "in_place" in expect:
        assert [s.name for s in result.in_place] == expect["in_place"]
    if "estimated_s" in expect:
        assert result.estimated_s == pytest.approx(expect["estimated_s"])
    if "lower_bound_s" in expect:
        assert result.lower_bound_s == pytest.approx(expect["lower_bound_s"])
    assert result.max_per_host == case.options.get("max_per_host", 1)
    assert result.parallel == case.options.get("parallel")


def test_there_are_enough_scenarios() -> None:
    """At least twelve scenario files exist."""
    assert len(all_cases()) >= 12


def test_default_duration_model() -> None:
    """The default duration is 3 s plus RAM at 1 GB/s scaled by 0.7."""
    server = make_server("s", "h", 1, 1024, 10)
    assert default_duration(server) == pytest.approx(3.0 + 0.7 * 1024 * 2**20 / 1e9)


def _swap() -> tuple[Inventory, dict[str, str]]:
    hosts = [
        {"name": "a_host", "capacity": {"vcpu": 2, "memory_mb": 2048, "disk_gb": 20}},
        {"name": "b_host", "capacity": {"vcpu": 2, "memory_mb": 2048, "disk_gb": 20}},
        {"name": "pivot", "capacity": {"vcpu": 8, "memory_mb": 8192, "disk_gb": 80}},
    ]
    servers = [make_server("a", "a_host", 2, 2048, 20), make_server("b", "b_host", 2, 2048, 20)]
    return make_inventory(hosts, servers), {"a": "b_host", "b": "a_host"}


def test_detour_legs_have_pivot_and_final_target() -> None:
    """A detour's first leg targets the pivot with the final host recorded; the second leaves the pivot after it."""
    inventory, desired = _swap()
    result = plan(inventory, desired)
    first, _, second = result.steps
    assert (first.move.target, first.move.final_target, first.move.is_detour) == ("pivot", "b_host", True)
    assert (second.move.source, second.move.target, second.move.final_target) == ("pivot", "b_host", "b_host")
    assert first.index in second.after
    assert result.notes == ("detour of a via pivot to break a swap between a_host and b_host",)


def test_custom_duration_drives_estimates() -> None:
    """A custom duration callable sets each move's estimate and the plan's makespan."""
    inventory, desired = _swap()
    result = plan(inventory, desired, duration=lambda s: 10.0 if s.name == "a" else 1.0)
    assert [s.move.estimate_s for s in result.steps] == [1.0, 10.0, 1.0]  # b (cheaper) is the detour now
    assert [s.move.server_name for s in result.steps] == ["b", "a", "b"]
    assert result.estimated_s == pytest.approx(12.0)
    assert result.lower_bound_s == pytest.approx(10.0)


def test_parallel_one_is_sequential() -> None:
    """With parallel=1 the estimate is the sum of all durations."""
    hosts = [{"name": f"h{i}", "capacity": {"vcpu": 8, "memory_mb": 8192, "disk_gb": 80}} for i in range(4)]
    servers = [make_server(f"s{i}", f"h{i}", 1, 1024 * (i + 1), 10) for i in range(3)]
    inventory = make_inventory(hosts, servers)
    desired = {f"s{i}": "h3" for i in range(3)}
    result = plan(inventory, desired, parallel=1)
    total = sum(s.move.estimate_s for s in result.steps)
    assert result.estimated_s == pytest.approx(total)
    assert result.lower_bound_s == pytest.approx(total)
    assert [s.move.server_name for s in result.steps] == ["s2", "s1", "s0"]


def test_lower_bound_counts_the_clouds_free_room() -> None:
    """When each move needs the cloud's only free room in turn, the bound is their sum, not the busiest source."""
    capacity = {"vcpu": 8, "memory_mb": 4096, "disk_gb": 80}
    hosts = [{"name": n, "capacity": capacity} for n in ("a_host", "b_host", "c_host")]
    servers = [make_server("a", "a_host", 1, 4096, 10), make_server("b", "b_host", 1, 4096, 10)]
    inventory = make_inventory(hosts, servers)
    result = plan(inventory, {"a": "c_host", "b": "a_host"}, duration=lambda s: 10.0)
    assert [(s.move.server_name, s.move.target) for s in result.steps] == [("a", "c_host"), ("b", "a_host")]
    assert result.lower_bound_s == pytest.approx(20.0)  # each source sends one 10 s move; 4 GiB free in all
    assert result.lower_bound_by == "room:memory_mb"
    assert result.estimated_s == pytest.approx(20.0)


def test_same_inputs_in_any_order_give_the_same_plan() -> None:
    """Shuffling hosts, servers and the map's key order does not change the plan."""
    rng = random.Random(7)
    hosts = [{"name": f"h{i:02d}", "capacity": {"vcpu": 8, "memory_mb": 8192, "disk_gb": 80}} for i in range(12)]
    servers = [make_server(f"s{i:03d}", f"h{i % 8:02d}", 2, 2048, 20) for i in range(32)]
    desired = {s.id: f"h{(int(s.id[1:]) + 1) % 8:02d}" for s in servers}  # a full ring: needs detours
    reference = plan(make_inventory(hosts, servers), desired)
    for _ in range(3):
        rng.shuffle(hosts)
        rng.shuffle(servers)
        keys = list(desired)
        rng.shuffle(keys)
        again = plan(make_inventory(hosts, servers), {k: desired[k] for k in keys})
        assert again == reference


def test_ring_of_full_hosts_replays_safely() -> None:
    """A ring of eight full hosts with four servers each is broken with detours and replays safely."""
    hosts = [{"name": f"h{i}", "capacity": {"vcpu": 8, "memory_mb": 8192, "disk_gb": 80}} for i in range(8)]
    hosts.append({"name": "spare", "capacity": {"vcpu": 4, "memory_mb": 4096, "disk_gb": 40}})
    servers = [make_server(f"s{i:02d}", f"h{i % 8}", 2, 2048, 20) for i in range(32)]
    desired = {s.id: f"h{(int(s.id[1:]) + 1) % 8}" for s in servers}
    inventory = make_inventory(hosts, servers)
    result = plan(inventory, desired)
    check_plan(inventory, desired, result, randoms=5)
    assert 1 <= sum(s.move.is_detour for s in result.steps) <= 4


def test_capacity_error_lists_resources_by_placement_name() -> None:
    """Final-state overflow names the resource classes VCPU, MEMORY_MB and DISK_GB."""
    hosts = [
        {"name": "small", "capacity": {"vcpu": 1, "memory_mb": 512, "disk_gb": 5}},
        {"name": "big", "capacity": {"vcpu": 8, "memory_mb": 8192, "disk_gb": 80}},
    ]
    inventory = make_inventory(hosts, [make_server("s", "big", 2, 1024, 10)])
    with pytest.raises(CapacityError) as caught:
        plan(inventory, {"s": "small"})
    assert [(s.host, s.resource, s.needed, s.available) for s in caught.value.shortfalls] == [
        ("small", "VCPU", 2, 1),
        ("small", "MEMORY_MB", 1024, 512),
        ("small", "DISK_GB", 10, 5),
    ]


def test_capacity_is_checked_before_cycles() -> None:
    """A swap that is both stuck (no pivot) and overfull in its final state is reported as a capacity error."""
    inventory = make_inventory(
        [
            {"name": "a_host", "capacity": {"vcpu": 2, "memory_mb": 2048, "disk_gb": 20}},
            {"name": "b_host", "capacity": {"vcpu": 3, "memory_mb": 3072, "disk_gb": 30}},
        ],
        [make_server("a", "a_host", 2, 2048, 20), make_server("b", "b_host", 3, 3072, 30)],
    )
    with pytest.raises(CapacityError) as caught:
        plan(inventory, {"a": "b_host", "b": "a_host"})
    assert {s.host for s in caught.value.shortfalls} == {"a_host"}


def test_overcommitted_host_that_only_loses_servers_is_not_an_error() -> None:
    """A host already above capacity that only sends servers away does not block the plan."""
    hosts = [
        {"name": "over", "capacity": {"vcpu": 2, "memory_mb": 2048, "disk_gb": 20}},
        {"name": "room", "capacity": {"vcpu": 8, "memory_mb": 8192, "disk_gb": 80}},
    ]
    servers = [make_server(f"s{i}", "over", 1, 1024, 10) for i in range(4)]
    inventory = make_inventory(hosts, servers)
    result = plan(inventory, {"s0": "room"})
    assert [s.move.target for s in result.steps] == ["room"]


def test_invalid_options_are_rejected() -> None:
    """max_per_host below 1 or parallel below 1 is a programming error."""
    inventory, desired = _swap()
    with pytest.raises(ValueError, match="max_per_host"):
        plan(inventory, desired, max_per_host=0)
    with pytest.raises(ValueError, match="parallel"):
        plan(inventory, desired, parallel=0)


def test_dependencies_name_only_the_departures_needed() -> None:
    """An arrival that needs one of two departures waits for just that one."""
    hosts = [
        {"name": "dst", "capacity": {"vcpu": 4, "memory_mb": 4096, "disk_gb": 40}},
        {"name": "src", "capacity": {"vcpu": 4, "memory_mb": 4096, "disk_gb": 40}},
        {"name": "away", "capacity": {"vcpu": 8, "memory_mb": 8192, "disk_gb": 80}},
    ]
    servers = [
        make_server("big_leaver", "dst", 2, 2048, 20),
        make_server("small_leaver", "dst", 2, 2048, 20),
        make_server("newcomer", "src", 2, 2048, 20),
    ]
    inventory = make_inventory(hosts, servers)
    desired = {"big_leaver": "away", "small_leaver": "away", "newcomer": "dst"}
    result = plan(inventory, desired)
    check_plan(inventory, desired, result)
    arrival = next(s for s in result.steps if s.move.server_name == "newcomer")
    assert len(arrival.after) == 1
    assert result.steps[arrival.after[0]].move.source == "dst"


def test_infeasible_error_names_each_stuck_cycle() -> None:
    """Two stuck swaps without any pivot room give two cycles, each with its servers and hosts."""
    hosts = [{"name": n, "capacity": {"vcpu": 2, "memory_mb": 2048, "disk_gb": 20}} for n in ("a", "b", "c", "d")]
    servers = [make_server(f"on_{n}", n, 2, 2048, 20) for n in ("a", "b", "c", "d")]
    inventory = make_inventory(hosts, servers)
    with pytest.raises(InfeasiblePlanError) as caught:
        plan(inventory, {"on_a": "b", "on_b": "a", "on_c": "d", "on_d": "c"})
    cycles = sorted((list(c.servers), list(c.hosts)) for c in caught.value.cycles)
    assert cycles == [(["on_a", "on_b"], ["a", "b"]), (["on_c", "on_d"], ["c", "d"])]


def test_medium_cloud_with_cycles_replays_safely() -> None:
    """A 60-host cloud with random moves and embedded full swaps replays safely and detours once per swap."""
    rng = random.Random(3)
    cap = {"vcpu": 16, "memory_mb": 16384, "disk_gb": 160}
    hosts: list[dict[str, Any]] = [{"name": f"h{i:02d}", "capacity": cap} for i in range(60)]
    servers = []
    for i in range(50):
        for j in range(3):
            size = rng.choice([1, 2, 4])
            servers.append(make_server(f"s{i:02d}_{j}", f"h{i:02d}", size, 1024 * size, 10 * size))
    free = {f"h{i:02d}": Resources(16, 16384, 160) for i in range(60)}
    for s in servers:
        assert s.host is not None
        free[s.host] = free[s.host] - s.demand
    desired: dict[str, str] = {}
    for s in rng.sample(servers, 60):
        assert s.host is not None
        target = rng.choice(sorted(free))
        if target != s.host and s.demand.fits_within(free[target]):
            desired[s.id] = target
            free[target] = free[target] - s.demand
            free[s.host] = free[s.host] + s.demand
    # Five zero-slack swaps on dedicated full hosts.
    for k in range(5):
        for side in ("x", "y"):
            hosts.append({"name": f"full{k}{side}", "capacity": {"vcpu": 4, "memory_mb": 4096, "disk_gb": 40}})
            servers.append(make_server(f"c{k}{side}", f"full{k}{side}", 4, 4096, 40))
        desired[f"c{k}x"], desired[f"c{k}y"] = f"full{k}y", f"full{k}x"
    inventory = make_inventory(hosts, servers)
    result = plan(inventory, desired, max_per_host=2, parallel=20)
    check_plan(inventory, desired, result, randoms=2)
    assert sum(s.move.is_detour for s in result.steps) == 5
    assert result.estimated_s >= result.lower_bound_s


def test_planning_leaves_the_garbage_collector_as_it_found_it() -> None:
    """plan() pauses the cyclic garbage collector only while it works, also when it raises."""
    case = load_case(Path(__file__).parent / "scenarios" / "swap_without_pivot.json")
    ok = load_case(Path(__file__).parent / "scenarios" / "chain.json")
    seen: list[bool] = []

    def duration(server: Any) -> float:
        seen.append(gc.isenabled())
        return 1.0

    assert gc.isenabled()
    plan(ok.inventory, ok.desired, duration=duration)
    assert seen
    assert not any(seen)  # paused while planning
    assert gc.isenabled()
    with pytest.raises(InfeasiblePlanError):
        plan(case.inventory, case.desired)
    assert gc.isenabled()
    gc.disable()
    try:
        plan(ok.inventory, ok.desired)
        assert not gc.isenabled()
    finally:
        gc.enable()
