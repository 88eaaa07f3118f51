"""Pinned zones in the planner: nova's rule (zones.allowed_hosts), and no leg of any plan, detours included, ever
takes a pinned server where nova's scheduler would refuse it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostmap.errors import CapacityError, InfeasiblePlanError, ZoneError
from hostmap.model import Inventory, ZoneAggregate
from hostmap.planner import plan
from hostmap.zones import allowed_hosts, check_zones
from planner_cases import make_inventory, make_server


@st.composite
def zoned_clouds(draw: st.DrawFn) -> tuple[Inventory, dict[str, str]]:
    """Small full-ish clouds over two zones, some servers pinned, and a map that keeps pinned servers home."""
    n = draw(st.integers(3, 6))
    zones = [draw(st.sampled_from(["az1", "az2"])) for _ in range(n)]
    hosts = [{"name": f"h{i}", "capacity": {"vcpu": 8, "memory_mb": 4096, "disk_gb": 100}} for i in range(n)]
    servers = []
    desired: dict[str, str] = {}
    load = [0] * n
    for j in range(draw(st.integers(1, 3 * n))):
        src = draw(st.integers(0, n - 1))
        size = draw(st.sampled_from([1024, 2048]))
        if load[src] + size > 4096:
            continue
        load[src] += size
        pinned = draw(st.booleans())
        server = make_server(f"s{j}", f"h{src}", 1, size, 10)
        servers.append(replace(server, pinned_zone=zones[src] if pinned else None))
        allowed = [i for i in range(n) if not pinned or zones[i] == zones[src]]
        desired[server.id] = f"h{draw(st.sampled_from(allowed))}"
    inventory = make_inventory(hosts, servers)
    inventory = replace(inventory, hosts=tuple(replace(h, zone=zones[i]) for i, h in enumerate(inventory.hosts)))
    if draw(st.booleans()):  # the aggregates are known: az2 is named by one, az1 (the default zone) by none
        named = frozenset(f"h{i}" for i in range(n) if zones[i] == "az2")
        inventory = replace(inventory, zone_aggregates=(ZoneAggregate("az2", named),))
    return inventory, desired


@settings(max_examples=150, deadline=None)
@given(zoned_clouds())
def test_no_leg_leaves_a_pinned_zone(case: tuple[Inventory, dict[str, str]]) -> None:
    """Every step's target (pivots included) is in the zone of the server it moves, when that server is pinned."""
    inventory, desired = case
    allowed = {s.id: allowed_hosts(inventory, s) for s in inventory.servers}
    try:
        result = plan(inventory, desired)
    except (CapacityError, InfeasiblePlanError, ZoneError):
        return
    for step in result.steps:
        where = allowed[step.move.server_id]
        assert where is None or step.move.target in where, step


def _two_zones(aggregates: tuple[ZoneAggregate, ...] | None, pin: str) -> Inventory:
    """h0, h1 in the default zone nova (in no zone aggregate), h2 in az2; s0 on h0 pinned to `pin`."""
    hosts = [{"name": f"h{i}", "capacity": {"vcpu": 8, "memory_mb": 4096, "disk_gb": 100}} for i in range(3)]
    inventory = make_inventory(hosts, [replace(make_server("s0", "h0", 1, 1024, 10), pinned_zone=pin)])
    zones = ("nova", "nova", "az2")
    return replace(inventory, hosts=tuple(replace(h, zone=zones[i]) for i, h in enumerate(inventory.hosts)),
                   zone_aggregates=aggregates)


def test_a_pin_to_a_zone_no_aggregate_names_restricts_nothing() -> None:
    """Pinned to the default zone nova, which no aggregate names: nova offers every host, so az2's is planned."""
    inventory = _two_zones((ZoneAggregate("az2", frozenset({"h2"})),), "nova")
    server = inventory.servers[0]
    assert allowed_hosts(inventory, server) is None
    check_zones(inventory, {server.id: "h2"})
    assert [s.move.target for s in plan(inventory, {server.id: "h2"}).steps] == ["h2"]


def test_without_the_aggregates_a_pin_keeps_the_server_on_hosts_showing_its_zone() -> None:
    """Aggregates unread (None): the safe reading keeps the pin to nova on h0 and h1, and refuses h2."""
    inventory = _two_zones(None, "nova")
    server = inventory.servers[0]
    assert allowed_hosts(inventory, server) == {"h0", "h1"}
    with pytest.raises(ZoneError) as refused:
        check_zones(inventory, {server.id: "h2"})
    assert [(v.server, v.zone, v.host, v.host_zone) for v in refused.value.violations] == [("s0", "nova", "h2", "az2")]


def test_a_zone_an_aggregate_names_offers_only_that_aggregates_hosts() -> None:
    """An aggregate names nova with h0 only: h1, which shows zone nova by default, is refused as nova refuses it."""
    inventory = _two_zones((ZoneAggregate("nova", frozenset({"h0"})), ZoneAggregate("az2", frozenset({"h2"}))),
                           "nova")
    server = inventory.servers[0]
    assert allowed_hosts(inventory, server) == {"h0"}
    with pytest.raises(ZoneError) as refused:
        check_zones(inventory, {server.id: "h1"})
    assert [(v.host, v.host_zone) for v in refused.value.violations] == [("h1", "nova")]
