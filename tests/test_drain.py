"""Drain maps: every server on a drained host gets a target within capacity, headroom, groups and zones."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import hostmap.drain as drain_module
from hostmap.drain import Drain, drain_map
from hostmap.errors import DrainDoesNotFit, UnknownHostError
from hostmap.hostmap_file import parse_host_map
from hostmap.model import Host, Inventory, Resources, Server, ServerGroup
from hostmap.planner import plan
from hostmap.policy import check_policies
from hostmap.resolve import resolve
from planner_cases import make_inventory, make_server

GB = 1024


def _cloud(
    hosts: Sequence[tuple[str, int, int, int]],
    servers: Sequence[Server],
    groups: Sequence[ServerGroup] = (),
    zones: dict[str, str] | None = None,
    **flags: dict[str, bool],
) -> Inventory:
    """An inventory of (name, vcpu, memory GiB, disk GB) hosts; `zones` host -> zone; flags enabled/up per host."""
    specs: list[dict[str, Any]] = [
        {"name": name, "capacity": {"vcpu": vcpu, "memory_mb": mem * GB, "disk_gb": disk},
         "enabled": flags.get("enabled", {}).get(name, True), "up": flags.get("up", {}).get(name, True)}
        for name, vcpu, mem, disk in hosts
    ]
    inventory = make_inventory(specs, servers, groups)
    zones = zones or {}
    return replace(inventory, hosts=tuple(replace(h, zone=zones.get(h.name)) for h in inventory.hosts))


def _vm(name: str, host: str, mem_gb: int = 4, vcpu: int = 2, disk: int = 10, **fields: Any) -> Server:
    return replace(make_server(name, host, vcpu, mem_gb * GB, disk), **fields)


def _final(inventory: Inventory, drain: Drain) -> dict[str, str | None]:
    return {s.id: drain.moves.get(s.id, s.host) for s in inventory.servers}


def _planned(inventory: Inventory, drain: Drain) -> dict[str, str | None]:
    """Plan the drain's moves with the planner and return where the plan leaves every server."""
    result = plan(inventory, drain.moves)
    final: dict[str, str | None] = {s.id: s.host for s in inventory.servers}
    for step in result.steps:
        final[step.move.server_id] = step.move.target
    return final


def test_servers_spread_over_empty_targets_rather_than_pile_up() -> None:
    """Four equal servers from one host land two on each of two empty targets, not all on one."""
    inv = _cloud([("h0", 16, 16, 100), ("h1", 16, 16, 100), ("h2", 16, 16, 100)],
                 [_vm(f"vm{i}", "h0") for i in range(4)])
    drain = drain_map(inv, ["h0"])
    assert sorted(len(t.arriving) for t in drain.targets) == [2, 2]
    assert drain.peak == pytest.approx(0.5)
    assert drain.placement["h0"] == ()
    assert drain.hosts == ("h0",)


def test_loaded_target_gets_less() -> None:
    """A target already half full receives less than an empty one, so the highest use ends as low as it can."""
    inv = _cloud([("h0", 32, 16, 100), ("h1", 32, 16, 100), ("h2", 32, 16, 100)],
                 [_vm("big", "h1", 8), *(_vm(f"vm{i}", "h0", 2) for i in range(4))])
    drain = drain_map(inv, ["h0"])
    use = {t.host: t for t in drain.targets}
    assert use["h2"].after.memory_mb == 8 * GB
    assert use["h1"].after.memory_mb == 8 * GB
    assert use["h1"].before == Resources(2, 8 * GB, 10)
    assert drain.peak == pytest.approx(0.5)


def test_headroom_is_kept_free_on_targets() -> None:
    """With 25 percent headroom no target passes 75 percent of any resource, and too little room is refused."""
    inv = _cloud([("h0", 16, 16, 100), ("h1", 16, 16, 100), ("h2", 16, 16, 100)],
                 [_vm(f"vm{i}", "h0", 4) for i in range(3)])
    drain = drain_map(inv, ["h0"], headroom_pct=25)
    for target in drain.targets:
        assert target.limit.memory_mb == 12 * GB
        assert target.after.fits_within(target.limit)
    with pytest.raises(DrainDoesNotFit) as caught:
        drain_map(inv, ["h0"], headroom_pct=80)
    assert caught.value.headroom_pct == 80
    assert [u.name for u in caught.value.unfit] == ["vm0", "vm1", "vm2"]


def test_headroom_out_of_range_is_refused() -> None:
    """A headroom of 100 percent or more, or below 0, is a ValueError."""
    inv = _cloud([("h0", 4, 4, 10), ("h1", 4, 4, 10)], [])
    for pct in (-1.0, 100.0, float("nan")):
        with pytest.raises(ValueError, match="headroom_pct"):
            drain_map(inv, ["h0"], headroom_pct=pct)


def test_anti_affinity_members_go_to_distinct_hosts() -> None:
    """Members of a hard anti-affinity group land on hosts without another member, up to max_per_host."""
    hosts = [("h0", 64, 64, 500), ("h1", 64, 64, 500), ("h2", 64, 64, 500), ("h3", 64, 64, 500)]
    members = [_vm(f"web{i}", "h0", 1) for i in range(3)]
    group = ServerGroup("g", "web", "anti-affinity", tuple(m.id for m in members))
    drain = drain_map(_cloud(hosts, members, [group]), ["h0"])
    assert sorted(drain.moves.values()) == ["h1", "h2", "h3"]
    with pytest.raises(DrainDoesNotFit) as caught:
        drain_map(_cloud(hosts[:3], members, [group]), ["h0"])
    assert [(u.group, u.policy) for u in caught.value.unfit] == [("web", "anti-affinity")]
    two = drain_map(_cloud(hosts[:3], members, [replace(group, max_per_host=2)]), ["h0"])
    assert sorted(two.moves.values()).count("h1") <= 2
    assert sorted(two.moves.values()).count("h2") <= 2


def test_affinity_members_move_together_to_the_member_that_stays() -> None:
    """Drained members of an affinity group all go to the host where another member stays, though others are emptier."""
    inv = _cloud([("h0", 32, 32, 500), ("h1", 32, 32, 500), ("h2", 32, 32, 500)],
                 [_vm("a", "h0"), _vm("b", "h0"), _vm("c", "h2"), _vm("d", "h0")],
                 [ServerGroup("g", "db", "affinity", ("a", "b", "c"))])
    drain = drain_map(inv, ["h0"])
    assert drain.moves["a"] == drain.moves["b"] == "h2"
    assert drain.moves["d"] == "h1"
    check_policies(inv, drain.moves)


def test_affinity_group_wholly_on_drained_hosts_is_refused_or_moved_as_one() -> None:
    """A group all on drained hosts cannot live-migrate (DrainDoesNotFit names it); asked to, it moves to one host."""
    inv = _cloud([("h0", 32, 32, 500), ("h1", 32, 32, 500), ("h2", 32, 32, 500), ("h3", 32, 32, 500)],
                 [_vm("a", "h0"), _vm("b", "h1"), _vm("c", "h3", 20)],
                 [ServerGroup("g", "db", "affinity", ("a", "b"))])
    with pytest.raises(DrainDoesNotFit) as caught:
        drain_map(inv, ["h0", "h1"])
    assert [(u.name, u.host, u.group, u.policy) for u in caught.value.unfit] == [
        ("a", "h0", "db", "affinity"), ("b", "h1", "db", "affinity")]
    drain = drain_map(inv, ["h0", "h1"], move_affinity_groups=True)
    assert drain.moves == {"a": "h2", "b": "h2"}


def test_pinned_server_stays_in_its_zone() -> None:
    """A server pinned to a zone goes to a host of that zone though another is emptier; no room there is an error."""
    zones = {"h0": "az1", "h1": "az1", "h2": "az2"}
    inv = _cloud([("h0", 32, 32, 500), ("h1", 32, 32, 500), ("h2", 32, 32, 500)],
                 [_vm("p", "h0", pinned_zone="az1"), _vm("q", "h0"), _vm("full", "h1", 26)], zones=zones)
    drain = drain_map(inv, ["h0"])
    assert drain.moves == {"p": "h1", "q": "h2"}
    tight = replace(inv, servers=(*inv.servers[:2], _vm("full", "h1", 30)),
                    hosts=tuple(replace(h, used=Resources(2, 30 * GB, 10)) if h.name == "h1" else h
                                for h in inv.hosts))
    with pytest.raises(DrainDoesNotFit) as caught:
        drain_map(tight, ["h0"])
    [unfit] = caught.value.unfit
    assert (unfit.name, unfit.zone, unfit.group) == ("p", "az1", "")


def test_does_not_fit_carries_sizes_and_most_room() -> None:
    """The error names each server that fits nowhere with its size, and the room left per host and per resource."""
    inv = _cloud([("h0", 32, 32, 500), ("h1", 8, 16, 100), ("h2", 8, 16, 40)],
                 [_vm("huge", "h0", 24, 4, 20), _vm("small", "h0", 2, 1, 10)])
    with pytest.raises(DrainDoesNotFit) as caught:
        drain_map(inv, ["h0"])
    error = caught.value
    [unfit] = error.unfit
    assert (unfit.server, unfit.host, unfit.demand) == ("huge", "h0", Resources(4, 24 * GB, 20))
    assert (unfit.group, unfit.policy, unfit.zone) == ("", "", None)
    assert set(error.room) == {"h1", "h2"}
    assert error.most_room == Resources(8, 16 * GB, 90)
    assert sum(r.memory_mb for r in error.room.values()) == 30 * GB
    assert "huge" in str(error)


def test_unknown_and_ambiguous_hosts_are_typed_errors() -> None:
    """A name that matches no host, or several, raises UnknownHostError with the matches and the known hosts."""
    inv = _cloud([("c1.a.example", 4, 4, 10), ("c1.b.example", 4, 4, 10)], [])
    with pytest.raises(UnknownHostError) as caught:
        drain_map(inv, ["nope"])
    assert (caught.value.host, list(caught.value.matches)) == ("nope", [])
    assert list(caught.value.known) == ["c1.a.example", "c1.b.example"]
    with pytest.raises(UnknownHostError) as ambiguous:
        drain_map(inv, ["c1"])
    assert list(ambiguous.value.matches) == ["c1.a.example", "c1.b.example"]


def test_hypervisor_hostname_names_the_host() -> None:
    """A hypervisor hostname resolves to its service host, and naming one host twice drains it once."""
    inv = _cloud([("h0", 16, 16, 100), ("h1", 16, 16, 100)], [_vm("vm", "h0")])
    drain = drain_map(inv, ["h0.example", "h0"])
    assert drain.hosts == ("h0",)
    assert drain.moves == {"vm": "h1"}


def test_shut_off_and_busy_servers_are_flagged_and_still_placed() -> None:
    """A SHUTOFF server is listed as cold, a busy one as busy, and both still get a target."""
    inv = _cloud([("h0", 16, 16, 100), ("h1", 16, 16, 100)],
                 [_vm("off", "h0", status="SHUTOFF"), _vm("busy", "h0", task_state="migrating"), _vm("ok", "h0")])
    drain = drain_map(inv, ["h0"])
    assert drain.cold == ("off",)
    assert drain.busy == ("busy",)
    assert set(drain.moves) == {"off", "busy", "ok"}


def test_down_source_and_unusable_targets() -> None:
    """Servers on a down drained host are flagged; disabled and down hosts never receive servers."""
    inv = _cloud([("h0", 16, 16, 100), ("h1", 16, 16, 100), ("h2", 64, 64, 500), ("h3", 64, 64, 500)],
                 [_vm("vm", "h0")], enabled={"h2": False}, up={"h0": False, "h3": False})
    drain = drain_map(inv, ["h0"])
    assert drain.moves == {"vm": "h1"}
    assert drain.source_down == ("vm",)
    assert [t.host for t in drain.targets] == ["h1"]


def test_soft_anti_affinity_prefers_spreading() -> None:
    """Among targets that keep the peak as low, a soft-anti-affinity member avoids the host of another member."""
    inv = _cloud([("h0", 16, 16, 100), ("h1", 16, 16, 100), ("h2", 16, 16, 100), ("h3", 4, 16, 100)],
                 [_vm("a", "h0", 1, 1), _vm("x", "h1", 1, 1), _vm("y", "h2", 2, 1), _vm("z", "h3", 1, 4)],
                 [ServerGroup("g", "spread", "soft-anti-affinity", ("a", "x"))])
    assert drain_map(inv, ["h0"]).moves == {"a": "h2"}
    plain = replace(inv, groups=())
    assert drain_map(plain, ["h0"]).moves == {"a": "h1"}


def test_host_map_is_valid_for_apply_and_plans() -> None:
    """The drain's host map parses and resolves as `hostmap apply` reads it, and the planner plans it to the end."""
    servers = [_vm(f"vm{i}", f"h{i % 3}", 1 + i % 4) for i in range(12)]
    members = ("vm0", "vm3", "vm6")
    inv = _cloud([(f"h{i}", 32, 32, 500) for i in range(5)], servers,
                 [ServerGroup("g", "web", "anti-affinity", members)])
    drain = drain_map(inv, ["h0", "h1"], headroom_pct=10)
    document = json.loads(json.dumps(drain.host_map()))
    desired = resolve(parse_host_map(document, "drain.json"), inv)
    assert dict(desired.targets) == _final(inv, drain)
    assert _planned(inv, drain) == _final(inv, drain)
    assert all(drain.placement[h] == () for h in ("h0", "h1"))


def test_local_search_lowers_the_peak_of_a_greedy_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where largest memory first leaves a target at 90 percent, the moves and swaps between targets bring it to 80."""
    hosts = [{"name": "h0", "capacity": {"vcpu": 8, "memory_mb": 16384, "disk_gb": 100}}] + [
        {"name": name, "capacity": {"vcpu": vcpu, "memory_mb": mem, "disk_gb": 100}}
        for name, vcpu, mem in (("t0", 3, 3584), ("t1", 2, 1024), ("t2", 2, 5120))]
    inv = make_inventory(hosts, [make_server("a", "h0", 0, 2048, 0), make_server("b", "h0", 1, 2048, 0),
                                 make_server("c", "h0", 0, 2560, 0)])
    assert drain_map(inv, ["h0"]).peak == pytest.approx(0.8)
    monkeypatch.setattr(drain_module, "_improve", lambda board, units: None)
    assert drain_map(inv, ["h0"]).peak == pytest.approx(0.9)


def test_packing_fallback_fits_what_spreading_cannot() -> None:
    """Spreading 3, 3, 2, 2, 2 over two hosts of 6 leaves one over; packing fits all, at full use."""
    inv = _cloud([("h0", 64, 64, 100), ("h1", 64, 6, 100), ("h2", 64, 6, 100)],
                 [_vm(f"v{i}", "h0", size, 1, 0) for i, size in enumerate((3, 3, 2, 2, 2))])
    drain = drain_map(inv, ["h0"])
    assert sorted(t.after.memory_mb for t in drain.targets) == [6 * GB, 6 * GB]


def test_drain_module_is_pure() -> None:
    """Importing hostmap.drain loads neither openstacksdk, rich, the simulator, the clock nor the CLI."""
    code = ("import sys, hostmap.drain; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('openstack', 'rich', 'keystoneauth1') or m in ('hostmap.sim', 'hostmap.clock', 'hostmap.cli')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


# --- properties ---------------------------------------------------------------------------------------------


@st.composite
def drains(draw: st.DrawFn) -> tuple[Inventory, list[str], float, bool]:
    """A small random cloud with zones and groups, hosts to drain, a headroom and whether groups move whole."""
    n_hosts = draw(st.integers(2, 6))
    specs: list[dict[str, Any]] = []
    zones: dict[str, str | None] = {}
    for i in range(n_hosts):
        specs.append({"name": f"h{i}", "capacity": {"vcpu": draw(st.integers(2, 16)),
                                                    "memory_mb": draw(st.integers(2, 20)) * 512,
                                                    "disk_gb": draw(st.integers(2, 10)) * 10},
                      "enabled": draw(st.integers(0, 4)) > 0 or i < 2,
                      "up": draw(st.sampled_from([True, True, True, True, False]))})
        zones[f"h{i}"] = draw(st.sampled_from([None, "az1", "az2"]))
    # Servers fill at most about half of each host, so most drains can fit.
    free = {s["name"]: Resources(*(v // 2 for v in s["capacity"].values())) for s in specs}
    servers: list[Server] = []
    for i in range(draw(st.integers(1, 14))):
        demand = Resources(draw(st.integers(0, 3)), draw(st.integers(1, 4)) * 512, draw(st.integers(0, 2)) * 10)
        homes = [h for h in sorted(free) if demand.fits_within(free[h])]
        if not homes:
            continue
        home = draw(st.sampled_from(homes))
        free[home] = free[home] - demand
        server = make_server(f"s{i:02d}", home, demand.vcpu, demand.memory_mb, demand.disk_gb)
        servers.append(replace(server, pinned_zone=draw(st.sampled_from([None, None, None, None, "az1", "az2"])),
                               status=draw(st.sampled_from(["ACTIVE", "ACTIVE", "SHUTOFF"]))))
    ids = [s.id for s in servers]
    groups = []
    for g in range(draw(st.integers(0, 3))):
        members = draw(st.lists(st.sampled_from(ids), max_size=4, unique=True)) if ids else []
        policy = draw(st.sampled_from(["anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"]))
        groups.append(ServerGroup(f"g{g}", f"g{g}", policy, tuple(members), draw(st.integers(1, 2))))
    inventory = make_inventory(specs, servers, groups)
    inventory = replace(inventory, hosts=tuple(replace(h, zone=zones[h.name]) for h in inventory.hosts))
    drained = draw(st.lists(st.sampled_from([s["name"] for s in specs]), min_size=1, max_size=max(1, n_hosts // 2),
                            unique=True))
    return inventory, drained, draw(st.sampled_from([0.0, 10.0, 25.0])), draw(st.booleans())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drains())
def test_every_drain_respects_capacity_headroom_groups_and_zones(case: tuple[Inventory, list[str], float, bool]
                                                                  ) -> None:
    """Every placement keeps capacity and headroom, hard groups and zones, keeps the others and empties the hosts."""
    inventory, drained, headroom, whole = case
    hosts = {h.name: h for h in inventory.hosts}
    try:
        drain = drain_map(inventory, drained, headroom, move_affinity_groups=whole)
    except DrainDoesNotFit as error:
        event("does not fit: " + ",".join(sorted({u.policy or ("zone" if u.zone else "room") for u in error.unfit})))
        _check_unfit(error, hosts, drained)
        return
    event("drained" if drain.moves else "nothing to move")
    final = _final(inventory, drain)
    for server in inventory.servers:
        if server.host in drained:
            target = hosts[drain.moves[server.id]]
            assert target.enabled
            assert target.up
            assert target.name not in drained
            assert server.pinned_zone is None or target.zone == server.pinned_zone
        else:
            assert server.id not in drain.moves
    assert all(not drain.placement[h] for h in drained)
    for target in drain.targets:
        arriving = [s for s in inventory.servers if s.id in target.arriving]
        after = hosts[target.host].used
        for server in arriving:
            after = after + server.demand
        assert after == target.after
        if arriving:
            assert target.after.fits_within(target.limit)
            assert target.after.fits_within(hosts[target.host].capacity)
            for _, amount in target.after.items():
                assert amount >= 0
    for group in inventory.groups:
        present = [m for m in dict.fromkeys(group.members) if m in final]
        if group.policy == "anti-affinity" and len(present) >= 2:
            for host in {drain.moves[m] for m in present if m in drain.moves}:
                assert sum(1 for m in present if final[m] == host) <= group.max_per_host
        if group.policy == "affinity" and any(m in drain.moves for m in present):
            assert len({final[m] for m in present if m in drain.moves}) == 1
    if not whole:
        check_policies(inventory, drain.moves)
        assert _planned(inventory, drain) == final


def _check_unfit(error: DrainDoesNotFit, hosts: dict[str, Host], drained: list[str]) -> None:
    """The error names servers of drained hosts, and room only on usable targets."""
    assert error.unfit
    assert all(u.host in drained for u in error.unfit)
    assert all(hosts[h].enabled and hosts[h].up and h not in drained for h in error.room)
    assert all(r.vcpu >= 0 and r.memory_mb >= 0 and r.disk_gb >= 0 for r in error.room.values())


def test_keep_out_hosts_keep_their_servers_and_receive_none() -> None:
    """A host in keep_out is no target: the drain goes elsewhere, and refuses when only keep_out hosts had room."""
    inventory = _cloud([("h1", 16, 16, 100), ("h2", 16, 16, 100), ("h3", 16, 16, 100)],
                       [_vm("a", "h1"), _vm("b", "h1"), _vm("c", "h2")])
    drain = drain_map(inventory, ["h1"], keep_out=["h2"])
    assert set(drain.moves.values()) == {"h3"}
    assert [inventory.server(i).name for i in drain.placement["h2"]] == ["c"]  # type: ignore[union-attr]
    with pytest.raises(DrainDoesNotFit):
        drain_map(inventory, ["h1"], keep_out=["h2", "h3"])
