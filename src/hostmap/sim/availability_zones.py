"""Nova's availability-zone routes of the simulated cloud: GET /os-availability-zone[/detail].

As nova 34's `AvailabilityZoneController`: zones come from the compute services (`set_availability_zones`). A
zone is available when an enabled service is in it; a zone whose services are all disabled is listed as not
available, with no hosts. The detail lists, per available zone, the hosts of its *enabled* services only, each
with its services' `available` (up), `active` (enabled) and `updated_at`: a disabled host is in no zone there.
The control plane's conductor and scheduler (`controllers.py`) are in nova's internal zone, which the detail lists
and the summary hides.
"""

from __future__ import annotations

from flask import Blueprint, Response

from hostmap.sim.controllers import CONTROLLER_SERVICES
from hostmap.sim.scenario import INTERNAL_ZONE
from hostmap.sim.state import SimHost
from hostmap.sim.views import JSON, current_cloud, json_response, ts

bp = Blueprint("availability_zones", __name__)


def _zones() -> tuple[dict[str, list[SimHost]], list[str]]:
    """Available zones with their enabled hosts, and the zones of disabled hosts only, each sorted by name."""
    cloud = current_cloud()
    available: dict[str, list[SimHost]] = {}
    disabled: set[str] = set()
    for host in cloud.hosts.values():
        zone = cloud.zones.of_host(host.name)
        if host.enabled:
            available.setdefault(zone, []).append(host)
        else:
            disabled.add(zone)
    return dict(sorted(available.items())), sorted(disabled - set(available))


@bp.get("/compute/v2.1/os-availability-zone")
def availability_zones() -> Response:
    """GET /compute/v2.1/os-availability-zone: each zone's name and whether it is available."""
    with current_cloud().view():
        available, unavailable = _zones()
        info: list[JSON] = [{"zoneName": z, "zoneState": {"available": True}, "hosts": None} for z in available]
        info += [{"zoneName": z, "zoneState": {"available": False}, "hosts": None} for z in unavailable]
        return json_response({"availabilityZoneInfo": info})


@bp.get("/compute/v2.1/os-availability-zone/detail")
def availability_zones_detail() -> Response:
    """GET /compute/v2.1/os-availability-zone/detail (admin): the hosts of each available zone and their services."""
    cloud = current_cloud()
    with cloud.view():
        available, unavailable = _zones()
        now, interval = cloud.now_s(), cloud.scenario.report_interval_s
        zones: dict[str, JSON] = {
            zone: {
                h.name: {"nova-compute": {"available": h.alive, "active": True,
                                          "updated_at": ts(h.updated_s(now, interval))}}
                for h in sorted(hosts, key=lambda h: h.name)
            }
            for zone, hosts in available.items()
        }
        internal: JSON = {}
        for service in CONTROLLER_SERVICES:
            internal.setdefault(service.host, {})[service.binary] = {
                "available": True, "active": True, "updated_at": ts(service.heartbeat_s(now, interval))}
        zones[INTERNAL_ZONE] = internal
        info: list[JSON] = [{"zoneName": zone, "zoneState": {"available": True}, "hosts": hosts}
                            for zone, hosts in sorted(zones.items())]
        info += [{"zoneName": z, "zoneState": {"available": False}, "hosts": None} for z in unavailable]
        return json_response({"availabilityZoneInfo": info})

