"""Availability zones of the simulated cloud, as nova 34 derives them from host aggregates (no HTTP).

* A compute host's zone is the `availability_zone` of the aggregate(s) it is in, else the default zone
  (`[DEFAULT] default_availability_zone`, "nova"): `nova.availability_zones.get_host_availability_zone`.
  Controller services are in the internal zone ("internal").
* A server's zone (`OS-EXT-AZ:availability_zone`) is its host's; its pinned zone (`pinned_availability_zone`,
  2.96+) is the zone its request spec holds: the one it was booted into, or none.
* The scheduler keeps a pinned server in its zone through placement, not a filter: the request filter
  `map_az_to_placement_aggregate` (`nova.scheduler.request_filter`, always on in nova 34) asks placement only for
  hosts in the aggregates whose `availability_zone` is the pinned one. So when no aggregate names that zone (a
  server pinned to the default zone), nothing restricts it; the `AvailabilityZoneFilter` is no longer in nova.
"""

from __future__ import annotations

from collections.abc import Mapping

from hostmap.sim.scenario import INTERNAL_ZONE, Scenario

__all__ = ["INTERNAL_ZONE", "Zones"]


class Zones:
    """The zones of one scenario's hosts and the pins of its servers (both fixed for the cloud's life)."""

    def __init__(self, scenario: Scenario) -> None:
        self.default = scenario.default_zone
        self._in_aggregate: Mapping[str, str] = {h.name: h.zone for h in scenario.hosts if h.zone is not None}
        self._pinned: Mapping[str, str] = {s.id: s.pinned_zone for s in scenario.servers if s.pinned_zone is not None}
        #: Zones that some aggregate names: placement is asked for their aggregates' hosts only.
        self._aggregated = frozenset(self._in_aggregate.values()) | frozenset(
            a.availability_zone for a in scenario.aggregates if a.availability_zone
        )

    def of_host(self, host: str) -> str:
        """The zone of compute host `host`."""
        return self._in_aggregate.get(host, self.default)

    def pinned(self, server_id: str) -> str | None:
        """The zone the server's request spec pins it to, None when it is not pinned."""
        return self._pinned.get(server_id)

    def outside(self, server_id: str, host: str) -> str | None:
        """Why placement offers `host` no candidate for the server because of its pinned zone (None when it may)."""
        zone = self._pinned.get(server_id)
        if zone is None or zone not in self._aggregated or self._in_aggregate.get(host) == zone:
            return None
        return f"{host} is in availability zone {self.of_host(host)}, not in {zone} that the server is pinned to"
