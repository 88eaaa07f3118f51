"""Nova's host routes of the simulated cloud: os-hypervisors and os-services."""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from hostmap.sim.state import SimError, SimHost
from hostmap.sim.views import JSON, at_least, current_cloud, dest_ip, json_response, paging, ts

bp = Blueprint("hypervisors", __name__)


def hypervisor_id(host: SimHost, service: bool = False) -> str | int:
    """The id nova gives the host's hypervisor (or its compute `service`): a uuid from 2.53, an integer before."""
    if at_least(2, 53):
        return host.service_uuid if service else host.uuid
    return host.index + 1


def hypervisor_view(host: SimHost, detail: bool) -> JSON:
    """A hypervisor as nova shows it at this microversion."""
    view: JSON = {
        "id": hypervisor_id(host),
        "hypervisor_hostname": host.hypervisor_hostname,
        "state": "up" if host.up else "down",
        "status": "enabled" if host.enabled else "disabled",
    }
    if not detail:
        return view
    view.update(
        {
            "hypervisor_type": "QEMU",
            "hypervisor_version": 8002000,
            "host_ip": dest_ip(host.name),
            "service": {
                "host": host.name,
                "id": hypervisor_id(host, service=True),
                "disabled_reason": host.disabled_reason,
            },
        }
    )
    if at_least(2, 88):
        view["uptime"] = None
    else:
        view.update(_resource_fields(host))
    return view


def _resource_fields(host: SimHost) -> JSON:
    cloud = current_cloud()
    vcpus, memory_mb, disk_gb = host.inventory_totals
    used_v, used_m, used_d = cloud.usage(host.name)
    memory_used = used_m + host.spec.reserved_host_memory_mb
    return {
        "vcpus": vcpus,
        "memory_mb": memory_mb,
        "local_gb": disk_gb,
        "vcpus_used": used_v,
        "memory_mb_used": memory_used,
        "local_gb_used": used_d,
        "free_ram_mb": memory_mb - memory_used,
        "free_disk_gb": disk_gb - used_d,
        "disk_available_least": disk_gb - used_d,
        "current_workload": 0,
        "running_vms": sum(1 for s in cloud.servers.values() if s.host == host.name),
        "cpu_info": json.dumps({"arch": "x86_64", "model": "Cascadelake-Server", "vendor": "Intel"}),
    }


@bp.get("/compute/v2.1/os-hypervisors")
@bp.get("/compute/v2.1/os-hypervisors/detail")
def hypervisors() -> Response:
    """GET /compute/v2.1/os-hypervisors[/detail], filtered by hostname pattern (2.53) and paged (2.33)."""
    detail = request.path.rstrip("/").endswith("/detail")
    cloud = current_cloud()
    with cloud.view():
        found = list(cloud.hosts.values())
        pattern = request.args.get("hypervisor_hostname_pattern")
        if pattern is not None and at_least(2, 53):
            found = [h for h in found if pattern in h.hypervisor_hostname]
        body: JSON = {}
        if at_least(2, 33):
            path = "os-hypervisors/detail" if detail else "os-hypervisors"
            found, links = paging(found, lambda h: str(hypervisor_id(h)), path)
            if links:
                body["hypervisors_links"] = links
        body["hypervisors"] = [hypervisor_view(h, detail) for h in found]
        return json_response(body)


@bp.get("/compute/v2.1/os-hypervisors/<hypervisor_ident>")
def hypervisor(hypervisor_ident: str) -> Response:
    """GET /compute/v2.1/os-hypervisors/{id}."""
    cloud = current_cloud()
    with cloud.view():
        host = next((h for h in cloud.hosts.values() if hypervisor_ident == str(hypervisor_id(h))), None)
        if host is None:
            raise SimError(404, f"Hypervisor with ID '{hypervisor_ident}' could not be found.")
        return json_response({"hypervisor": hypervisor_view(host, True)})


@bp.get("/compute/v2.1/os-services")
def services() -> Response:
    """GET /compute/v2.1/os-services: one nova-compute service per host, filtered by binary and host."""
    args = request.args
    cloud = current_cloud()
    with cloud.view():
        found = list(cloud.hosts.values())
        if args.get("binary", "nova-compute") != "nova-compute":
            found = []
        if "host" in args:
            found = [h for h in found if h.name == args["host"]]
        views = []
        for host in found:
            view: JSON = {
                "id": hypervisor_id(host, service=True),
                "binary": "nova-compute",
                "host": host.name,
                "zone": "nova",
                "status": "enabled" if host.enabled else "disabled",
                "state": "up" if host.up else "down",
                "updated_at": ts(cloud.now_s() if host.up else host.changed_s),
                "disabled_reason": host.disabled_reason,
            }
            if at_least(2, 11):
                view["forced_down"] = False
            views.append(view)
        return json_response({"services": views})
