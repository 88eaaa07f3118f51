"""Property tests: every plan replays within capacity in any allowed order, and impossible inputs are refused."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hostmap.errors import CapacityError, InfeasiblePlanError, PolicyError
from hostmap.model import Inventory, Plan, Resources, Server, ServerGroup
from hostmap.planner import plan
from hostmap.planner.replay import spans
from planner_cases import check_plan, final_usage, make_inventory, make_server

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Cloud = tuple[Inventory, dict[str, str], dict[str, Any]]


def _host(name: str, units: tuple[int, int, int], *, enabled: bool = True, up: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "capacity": {"vcpu": units[0], "memory_mb": units[1] * 512, "disk_gb": units[2] * 10},
        "enabled": enabled,
        "up": up,
    }


@st.composite
def clouds(draw: st.DrawFn, spare: bool = False) -> Cloud:
    """A small random cloud, servers packed where they fit, and a random desired map (maybe overfull)."""
    n_hosts = draw(st.integers(2, 6))
    hosts = [
        _host(
            f"h{i}",
            (draw(st.integers(2, 8)), draw(st.integers(2, 8)), draw(st.integers(2, 8))),
            enabled=draw(st.booleans()) or i < 2,
            up=draw(st.sampled_from([True, True, True, False])),
        )
        for i in range(n_hosts)
    ]
    free = {h["name"]: Resources(**h["capacity"]) for h in hosts}
    servers: list[Server] = []
    for i in range(draw(st.integers(3, 20))):
        vcpu, mem, disk = draw(st.integers(0, 3)), draw(st.integers(1, 4)) * 512, draw(st.integers(0, 3)) * 10
        demand = Resources(vcpu, mem, disk)
        homes = [h for h in sorted(free) if demand.fits_within(free[h])]
        if not homes:
            continue
        home = draw(st.sampled_from(homes))
        free[home] = free[home] - demand
        servers.append(make_server(f"s{i:02d}", home, vcpu, mem, disk))
    if spare:
        hosts.append(_host("zz_spare", (40, 80, 40)))
    targets = [h["name"] for h in hosts if h["name"] != "zz_spare"]
    desired: dict[str, str] = {}
    if draw(st.integers(0, 4)) == 0:  # anything goes: often overfull
        desired = {s.id: draw(st.sampled_from(targets)) for s in servers if draw(st.booleans())}
    else:  # only moves that keep the end state within capacity
        for s in servers:
            assert s.host is not None
            target = targets[(targets.index(s.host) + draw(st.integers(1, len(targets) - 1))) % len(targets)]
            if s.demand.fits_within(free[target]):
                free[target] = free[target] - s.demand
                free[s.host] = free[s.host] + s.demand
                desired[s.id] = target
            elif draw(st.booleans()):
                desired[s.id] = s.host
    options: dict[str, Any] = {
        "max_per_host": draw(st.integers(1, 3)),
        "parallel": draw(st.one_of(st.none(), st.integers(1, 4))),
    }
    return make_inventory(hosts, servers), desired, options


def _one_at_a_time_order(inventory: Inventory, desired: dict[str, str]) -> list[str] | None:
    """An order of direct moves that each fit on their target when they start and find there fewer members of
    each of their hard anti-affinity groups than the group allows, found by exhaustive search (a reference for
    refusals, independent of the planner); None if there is none."""
    capacity = {h.name: h.capacity for h in inventory.hosts}
    moves = [(s.id, s.host, desired[s.id], s.demand) for s in inventory.servers
             if s.id in desired and s.host != desired[s.id]]
    anti = [g for g in inventory.groups if g.policy == "anti-affinity"]
    dead_ends: set[frozenset[int]] = set()

    def admitted(sid: str, target: str, where: dict[str, str | None]) -> bool:
        return all(
            sum(1 for m in g.members if m != sid and where.get(m) == target) < g.max_per_host
            for g in anti if sid in g.members
        )

    def search(done: frozenset[int], used: dict[str, Resources], where: dict[str, str | None]) -> list[str] | None:
        if len(done) == len(moves):
            return []
        if done in dead_ends:
            return None
        for i, (sid, source, target, demand) in enumerate(moves):
            if i not in done and (used[target] + demand).fits_within(capacity[target]) and admitted(sid, target, where):
                assert source is not None
                used_after = {**used, source: used[source] - demand, target: used[target] + demand}
                rest = search(done | {i}, used_after, {**where, sid: target})
                if rest is not None:
                    return [sid, *rest]
        dead_ends.add(done)
        return None

    return search(frozenset(), {h.name: h.used for h in inventory.hosts}, {s.id: s.host for s in inventory.servers})


def _expected_shortfalls(inventory: Inventory, desired: dict[str, str]) -> list[tuple[str, str, int, int]]:
    usage = final_usage(inventory, desired)
    receiving = {t for sid, t in desired.items() if inventory.server(sid) and inventory.server(sid).host != t}  # type: ignore[union-attr]
    return [
        (h.name, *over)
        for h in sorted(inventory.hosts, key=lambda h: h.name)
        if h.name in receiving
        for over in usage[h.name].over(h.capacity)
    ]


@SETTINGS
@given(clouds(), st.integers(0, 2**16))
def test_random_plans_are_safe_or_refused_for_a_reason(cloud: Cloud, seed: int) -> None:
    """Random clouds give a safe schedule, a capacity error exactly when the end state overflows, or stuck cycles."""
    inventory, desired, options = cloud
    expected = _expected_shortfalls(inventory, desired)
    result: Plan | CapacityError | InfeasiblePlanError
    try:
        result = plan(inventory, desired, **options)
    except (CapacityError, InfeasiblePlanError) as exc:
        result = exc
    if isinstance(result, CapacityError):
        event("capacity error")
        assert [(s.host, s.resource, s.needed, s.available) for s in result.shortfalls] == expected
        return
    assert not expected
    if isinstance(result, InfeasiblePlanError):
        event("infeasible")
        assert result.cycles
        for cycle in result.cycles:
            assert len(cycle.hosts) >= 2
            assert cycle.servers
        order = _one_at_a_time_order(inventory, desired)
        assert order is None, f"refused, yet this order of direct moves fits one at a time: {order}"
        return
    event(f"plan with {min(len(result.steps), 5)}+ steps, detours: {any(s.move.is_detour for s in result.steps)}")
    check_plan(inventory, desired, result, seed=seed, randoms=3)
    assert result.max_per_host == options["max_per_host"]
    assert result.parallel == options["parallel"]
    assert plan(inventory, desired, **options) == result


@SETTINGS
@given(clouds(spare=True), st.integers(0, 2**16))
def test_a_roomy_pivot_makes_every_fitting_map_feasible(cloud: Cloud, seed: int) -> None:
    """With an idle enabled host big enough for everything, any map whose end state fits gets a safe plan."""
    inventory, desired, options = cloud
    if _expected_shortfalls(inventory, desired):
        return
    result = plan(inventory, desired, **options)
    check_plan(inventory, desired, result, seed=seed, randoms=3)


@st.composite
def rings(draw: st.DrawFn, pivot: bool) -> tuple[Inventory, dict[str, str], int]:
    """Several disjoint zero-slack rotations among full hosts, with or without a pivot host with room."""
    hosts: list[dict[str, Any]] = []
    servers: list[Server] = []
    desired: dict[str, str] = {}
    n_rings = draw(st.integers(1, 3))
    for r in range(n_rings):
        length = draw(st.integers(2, 5))
        size = draw(st.integers(1, 4))
        keep = draw(st.integers(0, 2))
        for i in range(length):
            hosts.append(_host(f"r{r}h{i}", (size + keep, (size + keep) * 2, size + keep)))
            servers.append(make_server(f"r{r}s{i}", f"r{r}h{i}", size, size * 1024, size * 10))
            if keep:
                servers.append(make_server(f"r{r}k{i}", f"r{r}h{i}", keep, keep * 1024, keep * 10))
            desired[f"r{r}s{i}"] = f"r{r}h{(i + 1) % length}"
    # Hosts that could hold a ring server but may not be used: disabled, down, or too small.
    hosts.append(_host("off", (20, 40, 20), enabled=False))
    hosts.append(_host("down", (20, 40, 20), up=False))
    hosts.append(_host("tiny", (20, 40, 20)))
    servers.append(make_server("tiny_filler", "tiny", 20, 40 * 512, 195))
    if pivot:
        hosts.append(_host("pivot", (4, 8, 4)))
    return make_inventory(hosts, servers), desired, n_rings


@SETTINGS
@given(rings(pivot=False))
def test_zero_slack_rings_without_pivot_are_infeasible(ring: tuple[Inventory, dict[str, str], int]) -> None:
    """Rotations among full hosts with no usable pivot raise InfeasiblePlanError naming every ring."""
    inventory, desired, n_rings = ring
    with pytest.raises(InfeasiblePlanError) as caught:
        plan(inventory, desired)
    assert len(caught.value.cycles) == n_rings
    assert sorted(n for c in caught.value.cycles for n in c.servers) == sorted(desired)


@SETTINGS
@given(rings(pivot=True), st.integers(0, 2**16), st.integers(1, 2), st.one_of(st.none(), st.integers(1, 3)))
def test_zero_slack_rings_with_pivot_take_one_detour_each(
    ring: tuple[Inventory, dict[str, str], int], seed: int, max_per_host: int, parallel: int | None
) -> None:
    """Each rotation among full hosts is broken by exactly one detour through the pivot and replays safely."""
    inventory, desired, n_rings = ring
    result = plan(inventory, desired, max_per_host=max_per_host, parallel=parallel)
    check_plan(inventory, desired, result, seed=seed, randoms=3)
    detours = [s for s in result.steps if s.move.is_detour]
    assert len(detours) == n_rings
    assert {s.move.target for s in detours} == {"pivot"}
    assert len(result.steps) == len(desired) + n_rings


@SETTINGS
@given(clouds(), st.data())
def test_final_overflow_is_a_capacity_error(cloud: Cloud, data: st.DataObject) -> None:
    """Piling every server onto one host that cannot hold them is a capacity error listing each shortfall."""
    inventory, _, _ = cloud
    movable = [s for s in inventory.servers if s.host != "h0"]
    desired = {s.id: "h0" for s in movable}
    expected = _expected_shortfalls(inventory, desired)
    if not expected:
        return
    with pytest.raises(CapacityError) as caught:
        plan(inventory, desired, parallel=data.draw(st.one_of(st.none(), st.integers(1, 3))))
    assert [(s.host, s.resource, s.needed, s.available) for s in caught.value.shortfalls] == expected


@st.composite
def full_clouds(draw: st.DrawFn) -> tuple[Inventory, dict[str, str], dict[str, Any]]:
    """A nearly full cloud (S2 in small): servers placed at random twice, current and desired, both fitting."""
    n_hosts = draw(st.integers(3, 8))
    units = draw(st.integers(6, 12))
    names = [f"h{i}" for i in range(n_hosts)]
    count = draw(st.integers(2 * n_hosts, 4 * n_hosts))
    sizes = sorted((draw(st.sampled_from([1, 2, 4])) for _ in range(count)), reverse=True)

    def place() -> list[str] | None:
        free = dict.fromkeys(names, units)
        where: list[str] = []
        for size in sizes:  # largest first, each on a drawn host where it fits
            fitting = [h for h in names if free[h] >= size]
            if not fitting:
                return None
            host = draw(st.sampled_from(fitting))
            free[host] -= size
            where.append(host)
        return where

    current, target = place(), place()
    if current is None or target is None:
        event("no fit")
        current, target, sizes = [], [], []
    hosts = [_host(h, (units, 2 * units, units)) for h in names]
    servers = [
        make_server(f"s{i:02d}", h, size, size * 1024, size * 10)
        for i, (size, h) in enumerate(zip(sizes, current, strict=True))
    ]
    desired = {f"s{i:02d}": h for i, h in enumerate(target)}
    options: dict[str, Any] = {
        "max_per_host": draw(st.integers(1, 2)),
        "parallel": draw(st.one_of(st.none(), st.integers(2, 6))),
    }
    return make_inventory(hosts, servers), desired, options


@SETTINGS
@given(full_clouds(), st.integers(0, 2**16))
def test_nearly_full_clouds_park_safely(cloud: Cloud, seed: int) -> None:
    """Random rebalances of nearly full clouds (where servers get parked) replay within capacity in any order,
    park only on hosts the map moves servers on or off, and plan the same way twice."""
    inventory, desired, options = cloud
    try:
        result = plan(inventory, desired, **options)
    except InfeasiblePlanError:
        event("infeasible")
        return
    check_plan(inventory, desired, result, seed=seed, randoms=3)
    touched = {h for s in inventory.servers if desired[s.id] != s.host for h in (s.host, desired[s.id])}
    parked = [s for s in result.steps if s.move.is_detour]
    event(f"detours: {min(len(parked), 3)}+")
    for note, step in zip(result.notes, parked, strict=True):
        if "to free room on" in note:
            assert step.move.target in touched
    assert plan(inventory, desired, **options) == result


def _expected_violations(inventory: Inventory, desired: dict[str, str]) -> list[tuple[str, str, list[str]]]:
    """(group, host, moved servers) that break a hard policy at the end, computed from the rules directly."""
    where = {s.id: s.host for s in inventory.servers}
    moving = {sid: h for sid, h in desired.items() if where[sid] != h}
    found: list[tuple[str, str, list[str]]] = []
    for group in sorted(inventory.groups, key=lambda g: g.name):
        final = {m: moving.get(m, where[m]) for m in group.members}
        for host in sorted({moving[m] for m in group.members if m in moving}):
            together = sum(1 for m in group.members if final[m] == host)
            if group.policy == "anti-affinity" and len(group.members) >= 2 and together > group.max_per_host:
                found.append((group.name, host, sorted(m for m in group.members if moving.get(m) == host)))
            if group.policy == "affinity" and not any(
                where[m] == host for m in group.members if m not in moving
            ):
                found.append((group.name, host, sorted(m for m in group.members if moving.get(m) == host)))
    return found


@st.composite
def grouped_clouds(draw: st.DrawFn) -> Cloud:
    """A random cloud (with a roomy spare host or not) whose servers fall into random hard server groups."""
    inventory, desired, options = draw(clouds(spare=draw(st.booleans())))
    names = [s.id for s in inventory.servers]
    groups: list[ServerGroup] = []
    taken: set[str] = set()
    for g in range(draw(st.integers(1, 3))):
        free = [n for n in names if n not in taken]
        if len(free) < 2:
            break
        members = draw(st.lists(st.sampled_from(free), min_size=2, max_size=min(5, len(free)), unique=True))
        taken.update(members)
        policy = draw(st.sampled_from(["anti-affinity", "anti-affinity", "affinity", "soft-anti-affinity"]))
        limit = draw(st.integers(1, 2)) if policy == "anti-affinity" else 1
        groups.append(ServerGroup(f"g{g}", f"g{g}", policy, tuple(members), limit))
    return replace(inventory, groups=tuple(groups)), desired, options


@SETTINGS
@given(grouped_clouds(), st.integers(0, 2**16))
def test_group_policies_hold_at_every_step(cloud: Cloud, seed: int) -> None:
    """Plans for clouds with server groups never put anti-affine members together, even for a moment, and a map
    that breaks a hard policy at the end is refused exactly when the rules say so."""
    inventory, desired, options = cloud
    result: Plan | CapacityError | PolicyError | InfeasiblePlanError
    try:
        result = plan(inventory, desired, **options)
    except (CapacityError, PolicyError, InfeasiblePlanError) as exc:
        result = exc
    if isinstance(result, CapacityError):
        event("capacity error")
        assert _expected_shortfalls(inventory, desired)
        return
    if isinstance(result, PolicyError):
        event("policy error")
        assert not _expected_shortfalls(inventory, desired)
        got = [(v.group, v.host, sorted(v.servers)) for v in result.violations]
        assert got == _expected_violations(inventory, desired)
        return
    if isinstance(result, InfeasiblePlanError):
        event("infeasible")
        assert not _expected_shortfalls(inventory, desired)
        assert not _expected_violations(inventory, desired)
        # A roomy spare host holding no member is a pivot for any server not pinned by an affinity group.
        assert not any(h.name == "zz_spare" for h in inventory.hosts) or any(
            g.policy == "affinity" for g in inventory.groups
        )
        order = _one_at_a_time_order(inventory, desired)
        assert order is None, f"refused, yet this order of direct moves fits one at a time: {order}"
        return
    assert not _expected_violations(inventory, desired)
    event(f"plan, detours: {any(s.move.is_detour for s in result.steps)}")
    check_plan(inventory, desired, result, seed=seed, randoms=3)


@st.composite
def anti_affine_rotations(draw: st.DrawFn, spare: bool) -> tuple[Inventory, dict[str, str], int]:
    """Anti-affinity groups whose members rotate among the hosts they occupy, on roomy hosts; a member-free
    spare host, or none."""
    n_groups = draw(st.integers(1, 3))
    n_hosts = draw(st.integers(2, 5))
    hosts = [_host(f"h{i}", (40, 80, 40)) for i in range(n_hosts)]
    servers: list[Server] = []
    groups: list[ServerGroup] = []
    desired: dict[str, str] = {}
    for g in range(n_groups):
        members = [f"g{g}m{i}" for i in range(n_hosts)]  # one member on every host: no host is free of them
        for i, name in enumerate(members):
            servers.append(make_server(name, f"h{i}", 1, 512, 10))
        step = draw(st.integers(1, n_hosts - 1))
        for i, name in enumerate(members):
            desired[name] = f"h{(i + step) % n_hosts}"
        groups.append(ServerGroup(f"g{g}", f"g{g}", "anti-affinity", tuple(members)))
    if spare:
        hosts.append(_host("spare", (40, 80, 40)))
    inventory = make_inventory(hosts, servers, groups)
    return inventory, desired, n_groups


@SETTINGS
@given(anti_affine_rotations(spare=True), st.integers(0, 2**16), st.integers(1, 2))
def test_anti_affine_rotations_detour_via_a_member_free_host(
    case: tuple[Inventory, dict[str, str], int], seed: int, max_per_host: int
) -> None:
    """Members of anti-affinity groups rotating among their hosts break each rotation with detours through the
    only host free of members, and never meet on a host in any allowed order."""
    inventory, desired, _ = case
    result = plan(inventory, desired, max_per_host=max_per_host)
    check_plan(inventory, desired, result, seed=seed, randoms=3)
    detours = [s for s in result.steps if s.move.is_detour]
    assert detours
    assert {s.move.target for s in detours} == {"spare"}


@SETTINGS
@given(anti_affine_rotations(spare=False))
def test_anti_affine_rotations_without_a_free_host_are_infeasible(case: tuple[Inventory, dict[str, str], int]) -> None:
    """When every host holds a member, a rotation of an anti-affinity group cannot start: infeasible, nothing
    planned."""
    inventory, desired, _ = case
    with pytest.raises(InfeasiblePlanError) as caught:
        plan(inventory, desired)
    assert caught.value.cycles


def _most_arriving(plan_: Plan) -> int:
    """The most migrations the replay has arriving at one host at once (one ending as another starts: not both)."""
    moves: dict[str, list[tuple[float, int]]] = {}
    for step, (start, end) in zip(plan_.steps, spans(plan_.steps, plan_.limits, None), strict=True):
        moves.setdefault(step.move.target, []).extend([(start, 1), (end, -1)])
    most = 0
    for events in moves.values():
        level = 0
        for _, change in sorted(events):
            level += change
            most = max(most, level)
    return most


@settings(SETTINGS, max_examples=60)
@given(full_clouds(), st.integers(1, 2))
def test_inbound_limit_holds_in_every_replayed_plan(cloud: Cloud, limit: int) -> None:
    """With max_in_per_host K, the planner's schedule as its replay runs it never has more than K migrations
    arriving at one host at once, detours and parked servers included."""
    inventory, desired, options = cloud
    try:
        result = plan(inventory, desired, **options, max_in_per_host=limit)
    except InfeasiblePlanError:
        event("infeasible")
        return
    assert result.limits.max_in_per_host == limit
    assert _most_arriving(result) <= limit
    check_plan(inventory, desired, result, randoms=1)
