"""Pinned availability zones as nova's scheduler keeps them on a live migration with a target host (pure).

A server pinned to a zone (its request spec's zone) may only go to hosts of that zone: nova's placement request
filter offers no other host, so the migration would fail with "No valid host" mid-run.  A host whose zone is unknown
counts as outside: hostmap cannot tell that nova would take it.
"""

from __future__ import annotations

from collections.abc import Mapping

from hostmap.errors import ZoneError, ZoneViolation
from hostmap.model import Inventory

__all__ = ["check_zones"]


def check_zones(inventory: Inventory, desired: Mapping[str, str]) -> None:
    """Raise `ZoneError` if `desired` (server id -> host) moves a pinned server onto a host outside its zone."""
    servers = {s.id: s for s in inventory.servers}
    zone_of = {h.name: h.zone for h in inventory.hosts}
    violations: list[ZoneViolation] = []
    for server_id, host in desired.items():
        server = servers.get(server_id)
        if server is None or server.pinned_zone is None or server.host == host:
            continue
        if zone_of.get(host) != server.pinned_zone:
            violations.append(ZoneViolation(server.name, server.id, server.pinned_zone, host, zone_of.get(host),
                                            server.zone_pin_assumed))
    if violations:
        raise ZoneError(sorted(violations, key=lambda v: (v.server, v.server_id)))
