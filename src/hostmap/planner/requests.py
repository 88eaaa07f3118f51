"""From inventory and map to what must move: the requests, what every pass shares, and the final capacity check."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from hostmap.errors import CapacityError, CapacityShortfall
from hostmap.flow import Links
from hostmap.model import Host, Inventory, Limits, Resources, Server
from hostmap.planner.moves import Request, Tokens, Vec, add_into, sub_into
from hostmap.policy import exclusive_group_names, pinned_servers
from hostmap.zones import allowed_hosts


@dataclass(frozen=True, slots=True)
class PassInputs:
    """What every pass shares: the run's limits, NIC sharing, and where anti-affinity members are."""

    limits: Limits
    links: Links | None
    #: Per host (index): group number -> members on it now, for hard anti-affinity groups.
    members_at: tuple[dict[int, int], ...]
    #: Servers that may not detour (members of hard affinity groups).
    pinned: frozenset[str]
    #: Names of the hard anti-affinity groups, by the numbers `members_at` and the moves use.
    group_names: tuple[str, ...]
    #: Seconds between a member's departure and another member's arrival on that host.
    group_settle_s: float
    #: Servers pinned to an availability zone -> the hosts (indices) of that zone: their only possible pivots.
    zone_hosts: Mapping[str, frozenset[int]] = field(default_factory=dict)
    #: Server id -> the ids of its server groups (each step's `Move.groups`, which `Limits.per_group` counts).
    server_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def pass_inputs(
    inventory: Inventory,
    hosts: Sequence[Host],
    exclusive: Mapping[str, Tokens],
    *,
    limits: Limits,
    links: Links | None,
    group_settle_s: float,
) -> PassInputs:
    """The inputs every pass shares, for `inventory` on `hosts` (sorted by name)."""
    return PassInputs(limits, links, members_at(inventory, hosts, exclusive),
                      frozenset(pinned_servers(inventory)), tuple(exclusive_group_names(inventory)), group_settle_s,
                      zone_hosts(inventory, hosts), server_groups(inventory))


def server_groups(inventory: Inventory) -> dict[str, tuple[str, ...]]:
    """Server id -> the ids of the server groups it is a member of (any policy)."""
    found: dict[str, tuple[str, ...]] = {}
    for group in inventory.groups:
        for member in group.members:
            found[member] = (*found.get(member, ()), group.id)
    return found


def zone_hosts(inventory: Inventory, hosts: Sequence[Host]) -> dict[str, frozenset[int]]:
    """Per server whose pinned availability zone restricts it, the indices of the hosts nova lets it go to."""
    by_zone: dict[str, frozenset[int] | None] = {}
    found: dict[str, frozenset[int]] = {}
    for server in inventory.servers:
        zone = server.pinned_zone
        if zone is None:
            continue
        if zone not in by_zone:
            allowed = allowed_hosts(inventory, server)
            by_zone[zone] = None if allowed is None else frozenset(
                i for i, h in enumerate(hosts) if h.name in allowed)
        where = by_zone[zone]
        if where is not None:
            found[server.id] = where
    return found


def members_at(
    inventory: Inventory, hosts: Sequence[Host], exclusive: Mapping[str, Tokens]
) -> tuple[dict[int, int], ...]:
    """Per host (index): hard anti-affinity group number -> members on it now."""
    host_index = {h.name: i for i, h in enumerate(hosts)}
    counts: list[dict[int, int]] = [{} for _ in hosts]
    for server in inventory.servers:
        where = host_index.get(server.host or "")
        if where is None:
            continue
        for group, _ in exclusive.get(server.id, ()):
            counts[where][group] = counts[where].get(group, 0) + 1
    return tuple(counts)


def requests_of(
    inventory: Inventory,
    hosts: Sequence[Host],
    desired: Mapping[str, str],
    estimate: Callable[[Server], float],
    exclusive: Mapping[str, Tokens],
) -> tuple[list[Server], list[Request]]:
    """Split `desired` into servers already in place and moves to make, both sorted by server name."""
    host_index = {h.name: i for i, h in enumerate(hosts)}
    if len(host_index) != len(hosts):
        raise ValueError("host names must be unique")
    servers = {s.id: s for s in inventory.servers}
    in_place: list[Server] = []
    requests: list[Request] = []
    for server_id, target in desired.items():
        server = servers.get(server_id)
        if server is None:
            raise ValueError(f"unknown server {server_id!r}")
        if target not in host_index:
            raise ValueError(f"unknown host {target!r} for server {server.name!r}")
        if server.host == target:
            in_place.append(server)
            continue
        if server.host is None or server.host not in host_index:
            raise ValueError(f"server {server.name!r} is on no known host")
        seconds = float(estimate(server))
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"duration for {server.name!r} must be a finite non-negative number")
        requests.append(Request(server, host_index[server.host], host_index[target], Vec.of(server.demand), seconds,
                                exclusive.get(server.id, ())))
    requests.sort(key=lambda r: (r.server.name, r.server.id))
    in_place.sort(key=lambda s: (s.name, s.id))
    return in_place, requests


def final_check(hosts: Sequence[Host], requests: Sequence[Request]) -> None:
    """Raise `CapacityError` when the placement after every request overfills a host that receives servers."""
    final = [list(Vec.of(h.used)) for h in hosts]
    receiving: set[int] = set()
    for req in requests:
        receiving.add(req.dst)
        sub_into(final[req.src], req.demand)
        add_into(final[req.dst], req.demand)
    shortfalls = [
        CapacityShortfall(hosts[h].name, resource, needed, available)
        for h in sorted(receiving)
        for resource, needed, available in Resources(*final[h]).over(hosts[h].capacity)
    ]
    if shortfalls:
        raise CapacityError(shortfalls)


def unusable(hosts: Sequence[Host]) -> list[tuple[str, str]]:
    """Hosts no move may go to, pivots included, and why."""
    return [(h.name, "down" if not h.up else "disabled") for h in hosts if not (h.enabled and h.up)]
