"""Pinned availability zones as nova 34's scheduler keeps them on a move with a target host (pure).

A server's pin is its request spec's `availability_zone` (`pinned_availability_zone` from 2.96): the zone asked for
at boot, or `[DEFAULT] default_schedule_zone` when none was asked for (unset by default: no pin); a boot into the
default zone by name ("nova") pins it too.  Nova keeps a pinned server in its zone through placement, not through a
filter: the request filter `map_az_to_placement_aggregate` asks placement only for hosts of the aggregates whose
`availability_zone` metadata is the pin.  So:

* a zone some aggregate names: only the hosts of those aggregates are offered (a host that merely shows the zone
  because it is in no zone aggregate, the default zone, is not);
* a zone no aggregate names (the default zone as usual: its hosts are in no aggregate): nothing is restricted, the
  server may go anywhere, as if unpinned.

When the aggregates could not be read, a pinned server is kept on hosts that show its zone (the safe reading).  A host
whose zone is unknown counts as outside: hostmap cannot tell that nova would take it.
"""

from __future__ import annotations

from collections.abc import Mapping

from hostmap.errors import ZoneError, ZoneViolation
from hostmap.model import Inventory, Server

__all__ = ["allowed_hosts", "check_zones"]


def allowed_hosts(inventory: Inventory, server: Server) -> frozenset[str] | None:
    """The hosts nova's scheduler may put `server` on because of its pinned zone; None when the pin restricts none."""
    zone = server.pinned_zone
    if zone is None:
        return None
    if inventory.zone_aggregates is None:
        return frozenset(h.name for h in inventory.hosts if h.zone == zone)
    naming = [a for a in inventory.zone_aggregates if a.zone == zone]
    if not naming:
        return None  # placement is asked for no aggregate: nova moves it anywhere
    return frozenset().union(*(a.hosts for a in naming))


def check_zones(inventory: Inventory, desired: Mapping[str, str]) -> None:
    """Raise `ZoneError` if `desired` (server id -> host) moves a pinned server onto a host nova keeps it from."""
    servers = {s.id: s for s in inventory.servers}
    zone_of = {h.name: h.zone for h in inventory.hosts}
    violations: list[ZoneViolation] = []
    for server_id, host in desired.items():
        server = servers.get(server_id)
        if server is None or server.pinned_zone is None or server.host == host:
            continue
        allowed = allowed_hosts(inventory, server)
        if allowed is not None and host not in allowed:
            violations.append(ZoneViolation(server.name, server.id, server.pinned_zone, host, zone_of.get(host),
                                            server.zone_pin_assumed))
    if violations:
        raise ZoneError(sorted(violations, key=lambda v: (v.server, v.server_id)))
