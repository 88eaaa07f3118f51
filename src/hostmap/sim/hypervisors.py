"""Nova's host routes of the simulated cloud: os-hypervisors, os-services and os-hosts (below 2.43)."""

from __future__ import annotations

import json
import uuid

from flask import Blueprint, Response, request

from hostmap.sim.controllers import CONTROLLER_SERVICES, ControllerService
from hostmap.sim.state import SimError, SimHost
from hostmap.sim.views import (
    JSON,
    at_least,
    body_json,
    current_cloud,
    dest_ip,
    is_nova_boolean,
    json_response,
    paging,
    truthy,
    ts,
)

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
        "state": "up" if host.alive else "down",
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
        body: JSON = {}
        pattern = request.args.get("hypervisor_hostname_pattern")
        if pattern is not None and at_least(2, 53):
            if "limit" in request.args or "marker" in request.args:
                raise SimError(400, "Paging over hypervisors with the hypervisor_hostname_pattern query parameter "
                                    "is not supported.")
            found = [h for h in found if pattern in h.hypervisor_hostname]
            if not found:
                raise SimError(404, f"No hypervisor matching '{pattern}' could be found.")
        elif at_least(2, 33):  # no links with a pattern: they would fail the check above
            path = "os-hypervisors/detail" if detail else "os-hypervisors"
            found, links = paging(found, lambda h: str(hypervisor_id(h)), path)
            if links:
                body["hypervisors_links"] = links
        body["hypervisors"] = [hypervisor_view(h, detail) for h in found]
        return json_response(body)


@bp.get("/compute/v2.1/os-hypervisors/<hypervisor_ident>")
def hypervisor(hypervisor_ident: str) -> Response:
    """GET /compute/v2.1/os-hypervisors/{id}."""
    if at_least(2, 53) and not _uuid_like(hypervisor_ident):  # a name is found by listing with a pattern
        raise SimError(400, f"Invalid uuid {hypervisor_ident}")
    cloud = current_cloud()
    with cloud.view():
        host = next((h for h in cloud.hosts.values() if hypervisor_ident == str(hypervisor_id(h))), None)
        if host is None:
            raise SimError(404, f"Hypervisor with ID '{hypervisor_ident}' could not be found.")
        return json_response({"hypervisor": hypervisor_view(host, True)})


def service_view(host: SimHost) -> JSON:
    """A host's nova-compute service as `os-services` shows it at this microversion."""
    cloud = current_cloud()
    view: JSON = {
        "id": hypervisor_id(host, service=True),
        "binary": "nova-compute",
        "host": host.name,
        "zone": cloud.zones.of_host(host.name),
        "status": "enabled" if host.enabled else "disabled",
        "state": "up" if host.alive else "down",
        # The row's last update: its last heartbeat (a service forced down still reports in) or its last change.
        "updated_at": ts(host.updated_s(cloud.now_s(), cloud.scenario.report_interval_s)),
        "disabled_reason": host.disabled_reason,
    }
    if at_least(2, 11):
        view["forced_down"] = host.forced_down
    return view


_SERVICE_FIELDS = ("status", "disabled_reason", "forced_down")


@bp.put("/compute/v2.1/os-services/<service_id>")
def update_service(service_id: str) -> Response:
    """PUT /compute/v2.1/os-services/{id} (2.53+): enable, disable (with a reason) or force down a compute service."""
    if not at_least(2, 53):
        # Below 2.53 the id is an action (enable, disable, ...) with host and binary in the body: not simulated.
        raise SimError(404, "Unknown action")
    if not _uuid_like(service_id):
        raise SimError(400, f"Invalid uuid {service_id}")
    body = body_json()
    if not isinstance(body, dict):
        raise SimError(400, f"Invalid input for field/attribute service. Value: {body}. Not of type 'object'")
    extra = sorted(set(body) - set(_SERVICE_FIELDS))
    if extra:
        raise SimError(400, "Invalid input for field/attribute service. Additional properties are not allowed "
                            f"({', '.join(repr(k) for k in extra)} {'was' if len(extra) == 1 else 'were'} unexpected)")
    if "status" in body and body["status"] not in ("enabled", "disabled"):
        raise SimError(400, f"Invalid input for field/attribute status. Value: {body['status']}. "
                            f"{body['status']!r} is not one of ['enabled', 'disabled']")
    reason = body.get("disabled_reason")
    if "disabled_reason" in body and not (isinstance(reason, str) and 1 <= len(reason) <= 255):
        raise SimError(400, f"Invalid input for field/attribute disabled_reason. Value: {reason}.")
    changes: dict[str, object] = {k: body[k] for k in _SERVICE_FIELDS if k in body}
    if "forced_down" in body:
        if not is_nova_boolean(body["forced_down"]):
            raise SimError(400, f"Invalid input for field/attribute forced_down. Value: {body['forced_down']}.")
        changes["forced_down"] = truthy(str(body["forced_down"]))
    controller = next((c for c in CONTROLLER_SERVICES if c.uuid == service_id), None)
    if controller is not None:
        raise SimError(400, f"Updating a {controller.binary} service is not supported. Only nova-compute services "
                            "can be updated.")
    cloud = current_cloud()
    host = cloud.update_service(service_id, changes)
    with cloud.view():
        return json_response({"service": service_view(host)})


def _uuid_like(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def controller_view(service: ControllerService) -> JSON:
    """A control-plane service as `os-services` shows it: in the internal zone, enabled and reporting."""
    cloud = current_cloud()
    view: JSON = {
        "id": service.uuid if at_least(2, 53) else len(cloud.hosts) + service.number,
        "binary": service.binary,
        "host": service.host,
        "zone": service.zone,
        "status": "enabled",
        "state": "up",
        "updated_at": ts(service.heartbeat_s(cloud.now_s(), cloud.scenario.report_interval_s)),
        "disabled_reason": None,
    }
    if at_least(2, 11):
        view["forced_down"] = False
    return view


@bp.get("/compute/v2.1/os-services")
def services() -> Response:
    """GET /compute/v2.1/os-services: each host's nova-compute, then the conductor and the scheduler, filtered by
    binary and host as nova 34 filters them (exact matches)."""
    args = request.args
    cloud = current_cloud()
    with cloud.view():
        binary, host = args.get("binary", ""), args.get("host", "")
        views = [service_view(h) for h in cloud.hosts.values()
                 if (not binary or binary == "nova-compute") and (not host or h.name == host)]
        views += [controller_view(c) for c in CONTROLLER_SERVICES
                  if (not binary or binary == c.binary) and (not host or host == c.host)]
        return json_response({"services": views})


@bp.get("/compute/v2.1/os-hosts")
def hosts() -> Response:
    """GET /compute/v2.1/os-hosts (2.1 to 2.42; removed from 2.43): every service's host, topic and zone, filtered by
    `zone`."""
    if at_least(2, 43):
        raise SimError(404, "The resource could not be found.")
    zone = request.args.get("zone")
    cloud = current_cloud()
    with cloud.view():
        found: list[JSON] = [{"host_name": h.name, "service": "compute", "zone": cloud.zones.of_host(h.name)}
                             for h in cloud.hosts.values()]
        found += [{"host_name": c.host, "service": c.topic, "zone": c.zone} for c in CONTROLLER_SERVICES]
        return json_response({"hosts": [h for h in found if not zone or h["zone"] == zone]})
