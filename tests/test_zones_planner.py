"""Planner property: no leg of any plan, detours included, ever takes a pinned server outside its zone."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from hostmap.errors import CapacityError, InfeasiblePlanError, ZoneError
from hostmap.model import Inventory
from hostmap.planner import plan
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
    return inventory, desired


@settings(max_examples=150, deadline=None)
@given(zoned_clouds())
def test_no_leg_leaves_a_pinned_zone(case: tuple[Inventory, dict[str, str]]) -> None:
    """Every step's target (pivots included) is in the zone of the server it moves, when that server is pinned."""
    inventory, desired = case
    zone_of = {h.name: h.zone for h in inventory.hosts}
    pins = {s.id: s.pinned_zone for s in inventory.servers}
    try:
        result = plan(inventory, desired)
    except (CapacityError, InfeasiblePlanError, ZoneError):
        return
    for step in result.steps:
        pin = pins[step.move.server_id]
        assert pin is None or zone_of[step.move.target] == pin, step
