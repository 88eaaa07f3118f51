"""Nova of the simulated cloud: version discovery, flavors, servers, os-migrateLive and server groups."""

from __future__ import annotations

import re

from flask import Blueprint, Response, g, request

from hostmap.sim import cold
from hostmap.sim.state import SimError, SimInstance, host_id
from hostmap.sim.views import (
    JSON,
    at_least,
    base,
    body_json,
    current_cloud,
    is_nova_boolean,
    json_response,
    paging,
    truthy,
    ts,
)

bp = Blueprint("nova", __name__)

#: Every simulated server is booted from this image (image-backed: its flavor disk is claimed in placement).
IMAGE_ID = "4a5c7b1e-2f0d-4c3b-9e8a-6d1f0b2c3a4e"


def compute_version() -> JSON:
    """The v2.1 entry of nova's version document."""
    top = current_cloud().scenario.api.max_microversion
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": f"{top[0]}.{top[1]}",
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base()}/compute/v2.1/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    }


@bp.get("/compute")
def compute_root() -> Response:
    """GET /compute: the versions nova offers."""
    return json_response({"versions": [compute_version()]})


@bp.get("/compute/v2.1")
def compute_v21() -> Response:
    """GET /compute/v2.1: the v2.1 version document."""
    return json_response({"version": compute_version()})


# ------------------------------------------------------------------------------------------
# Flavors


def flavor_view(flavor_id: str, detail: bool) -> JSON:
    """A flavor as nova shows it at this microversion."""
    flavor = current_cloud().flavors[flavor_id]
    links = [
        {"rel": "self", "href": f"{base()}/compute/v2.1/flavors/{flavor.id}"},
        {"rel": "bookmark", "href": f"{base()}/compute/flavors/{flavor.id}"},
    ]
    view: JSON = {"id": flavor.id, "name": flavor.name, "links": links}
    if at_least(2, 55):
        view["description"] = None
    if detail:
        view.update(
            {
                "vcpus": flavor.vcpus,
                "ram": flavor.ram,
                "disk": flavor.disk,
                "swap": 0 if at_least(2, 75) else "",
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "OS-FLV-DISABLED:disabled": False,
                "os-flavor-access:is_public": True,
                "rxtx_factor": 1.0,
            }
        )
        if at_least(2, 61):
            view["extra_specs"] = {}
    return view


@bp.get("/compute/v2.1/flavors")
@bp.get("/compute/v2.1/flavors/detail")
def flavors() -> Response:
    """GET /compute/v2.1/flavors[/detail]."""
    detail = request.path.rstrip("/").endswith("/detail")
    cloud = current_cloud()
    with cloud.view():
        return json_response({"flavors": [flavor_view(f, detail) for f in cloud.flavors]})


@bp.get("/compute/v2.1/flavors/<flavor_id>")
def flavor(flavor_id: str) -> Response:
    """GET /compute/v2.1/flavors/{id}."""
    cloud = current_cloud()
    with cloud.view():
        if flavor_id not in cloud.flavors:
            raise SimError(404, f"Flavor {flavor_id} could not be found.")
        return json_response({"flavor": flavor_view(flavor_id, True)})


# ------------------------------------------------------------------------------------------
# Servers


def server_view(server: SimInstance, detail: bool) -> JSON:
    """A server as nova shows it at this microversion."""
    links = [
        {"rel": "self", "href": f"{base()}/compute/v2.1/servers/{server.id}"},
        {"rel": "bookmark", "href": f"{base()}/compute/servers/{server.id}"},
    ]
    view: JSON = {"id": server.id, "name": server.name, "links": links}
    if not detail:
        return view
    view.update(_server_detail(server))
    if at_least(2, 3):
        view.update(
            {
                "OS-EXT-SRV-ATTR:hostname": server.name,
                "OS-EXT-SRV-ATTR:reservation_id": f"r-{server.id[:8]}",
                "OS-EXT-SRV-ATTR:launch_index": 0,
                "OS-EXT-SRV-ATTR:kernel_id": "",
                "OS-EXT-SRV-ATTR:ramdisk_id": "",
                "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                "OS-EXT-SRV-ATTR:user_data": None,
            }
        )
    _add_later_fields(view, server)
    return view


def _flavor_field(server: SimInstance) -> JSON:
    flavor = server.flavor
    if at_least(2, 47):
        return {
            "original_name": flavor.name,
            "vcpus": flavor.vcpus,
            "ram": flavor.ram,
            "disk": flavor.disk,
            "ephemeral": 0,
            "swap": 0,
            "extra_specs": {},
        }
    return {"id": flavor.id, "links": [{"rel": "bookmark", "href": f"{base()}/compute/flavors/{flavor.id}"}]}


def _server_detail(server: SimInstance) -> JSON:
    return {
        "status": server.status,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "metadata": {},
        "hostId": host_id(server.project_id, server.host),
        "image": {"id": IMAGE_ID, "links": [{"rel": "bookmark", "href": f"{base()}/compute/images/{IMAGE_ID}"}]},
        "flavor": _flavor_field(server),
        "created": ts(server.created_s, "z"),
        "updated": ts(server.updated_s, "z"),
        "addresses": {},
        "accessIPv4": "",
        "accessIPv6": "",
        "key_name": None,
        "config_drive": "",
        "progress": 0,
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": current_cloud().zones.of_host(server.host),
        "OS-EXT-SRV-ATTR:host": server.host,
        "OS-EXT-SRV-ATTR:hypervisor_hostname": server.node,
        "OS-EXT-SRV-ATTR:instance_name": server.instance_name,
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-EXT-STS:power_state": server.power_state,
        "OS-SRV-USG:launched_at": ts(server.created_s + 30),
        "OS-SRV-USG:terminated_at": None,
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}],
    }


def _add_later_fields(view: JSON, server: SimInstance) -> None:
    cloud = current_cloud()
    if at_least(2, 9):
        view["locked"] = False
    if at_least(2, 16):
        view["host_status"] = "UP" if cloud.hosts[server.host].alive else "DOWN"
    if at_least(2, 19):
        view["description"] = None
    if at_least(2, 26):
        view["tags"] = []
    if at_least(2, 63):
        view["trusted_image_certificates"] = None
    if at_least(2, 71):
        view["server_groups"] = [grp.id for grp in cloud.groups if server.id in grp.members]
    if at_least(2, 73):
        view["locked_reason"] = None
    if at_least(2, 90):
        view["OS-EXT-SRV-ATTR:hostname"] = server.name
    if at_least(2, 96):
        view["pinned_availability_zone"] = cloud.zones.pinned(server.id)


def _servers_found() -> list[SimInstance]:
    cloud = current_cloud()
    args = request.args
    found = list(cloud.servers.values())
    all_tenants = "all_tenants" in args and truthy(args.get("all_tenants") or "True")
    project = args.get("project_id") or args.get("tenant_id")
    if not all_tenants:
        project = project or cloud.admin_project_id
    if project:
        found = [s for s in found if s.project_id == project]
    if "name" in args:
        try:
            pattern = re.compile(args["name"])
        except re.error:
            raise SimError(400, f"Invalid regular expression {args['name']!r}") from None
        found = [s for s in found if pattern.search(s.name)]
    if "host" in args:
        found = [s for s in found if s.host == args["host"]]
    if "node" in args:
        found = [s for s in found if s.node == args["node"]]
    if "status" in args:
        wanted = {v.upper() for v in args.getlist("status")}
        found = [s for s in found if s.status in wanted]
    if "changes-since" in args:
        since = cloud.parse_timestamp(args["changes-since"])
        if since is None:
            raise SimError(400, "Invalid input for query parameters changes-since.")
        found = [s for s in found if s.updated_s >= since]
    return found


@bp.get("/compute/v2.1/servers")
@bp.get("/compute/v2.1/servers/detail")
def servers() -> Response:
    """GET /compute/v2.1/servers[/detail], filtered and paged as nova does."""
    detail = request.path.rstrip("/").endswith("/detail")
    with current_cloud().view():
        found = _servers_found()
        found.sort(key=lambda s: (s.created_s, s.id), reverse=True)
        page, links = paging(found, lambda s: s.id, "servers/detail" if detail else "servers")
        body: JSON = {"servers": [server_view(s, detail) for s in page]}
        if links:
            body["servers_links"] = links
        return json_response(body)


@bp.get("/compute/v2.1/servers/<server_id>")
def server(server_id: str) -> Response:
    """GET /compute/v2.1/servers/{id}."""
    cloud = current_cloud()
    with cloud.view():
        return json_response({"server": server_view(cloud.get_server(server_id), True)})


@bp.post("/compute/v2.1/servers/<server_id>/action")
def server_action(server_id: str) -> Response:
    """POST /compute/v2.1/servers/{id}/action: os-migrateLive, migrate, confirmResize and revertResize."""
    cloud = current_cloud()
    with cloud.view():
        cloud.get_server(server_id)
    data = body_json()
    if not isinstance(data, dict) or len(data) != 1:
        raise SimError(400, "Malformed request body")
    name, args = next(iter(data.items()))
    if name == "migrate":
        cold.cold_migrate(cloud, server_id, validate_migrate(args), request_id=g.request_id)
        return Response(status=202)
    if name == "confirmResize":
        cold.confirm_resize(cloud, server_id, request_id=g.request_id)
        return Response(status=204)
    if name == "revertResize":
        cold.revert_resize(cloud, server_id, request_id=g.request_id)
        return Response(status=202)
    if name != "os-migrateLive":
        raise SimError(400, f"There is no such action: {name}")
    host, force = validate_live_migrate(args)
    forced = host is not None and (not at_least(2, 30) or (force is True and not at_least(2, 68)))
    cloud.live_migrate(server_id, host, force=forced, request_id=g.request_id, async_checks=at_least(2, 34))
    return Response(status=202)


def validate_migrate(args: object) -> str | None:
    """The target host of a `migrate` body: from 2.56 null or {"host"?: name}, validated; before 2.56 none (nova
    validates nothing there and ignores a host)."""
    if not at_least(2, 56):
        return None

    def invalid(detail: str) -> SimError:
        return SimError(400, f"Invalid input for field/attribute migrate. Value: {args}. {detail}")

    if args is None:
        return None
    if not isinstance(args, dict):
        raise invalid(f"{args!r} is not of type 'object', 'null'")
    extra = [k for k in args if k != "host"]
    if extra:
        raise invalid(f"Additional properties are not allowed ({extra[0]!r} was unexpected)")
    host = args.get("host")
    if host is not None and (not isinstance(host, str) or not 1 <= len(host) <= 255):
        raise invalid(f"{host!r} is not valid under any of the given schemas")
    return host


def _live_migrate_fields() -> tuple[tuple[str, ...], tuple[str, ...]]:
    if at_least(2, 68):
        return ("host", "block_migration"), ("host", "block_migration")
    if at_least(2, 30):
        return ("host", "block_migration", "force"), ("host", "block_migration")
    if at_least(2, 25):
        return ("host", "block_migration"), ("host", "block_migration")
    fields = ("host", "block_migration", "disk_over_commit")
    return fields, fields


def validate_live_migrate(args: object) -> tuple[str | None, bool]:
    """The target host and force flag of an os-migrateLive body, refused as nova's schema for this microversion."""

    def invalid(detail: str) -> SimError:
        return SimError(400, f"Invalid input for field/attribute os-migrateLive. Value: {args}. {detail}")

    if not isinstance(args, dict):
        raise invalid(f"{args!r} is not of type 'object'")
    allowed, required = _live_migrate_fields()
    extra = [k for k in args if k not in allowed]
    if extra:
        raise invalid(f"Additional properties are not allowed ({extra[0]!r} was unexpected)")
    missing = [k for k in required if k not in args]
    if missing:
        raise invalid(f"{missing[0]!r} is a required property")
    host = args["host"]
    if host is not None and (not isinstance(host, str) or not 1 <= len(host) <= 255):
        raise invalid(f"{host!r} is not valid under any of the given schemas")
    block = args["block_migration"]
    if not (is_nova_boolean(block) or (at_least(2, 25) and block == "auto")):
        raise invalid(f"{block!r} is not one of the allowed values")
    if "disk_over_commit" in args and not is_nova_boolean(args["disk_over_commit"]):
        raise invalid(f"{args['disk_over_commit']!r} is not a boolean")
    force = args.get("force", False)
    if not is_nova_boolean(force):
        raise invalid(f"{force!r} is not a boolean")
    return host, force is True or (isinstance(force, str) and truthy(force))


# ------------------------------------------------------------------------------------------
# Server groups


def group_view(index: int) -> JSON:
    """The scenario's `index`th server group as nova shows it at this microversion."""
    cloud = current_cloud()
    group = cloud.groups[index]
    view: JSON = {"id": group.id, "name": group.name, "members": list(group.members)}
    if at_least(2, 64):
        view["policy"] = group.policy
        view["rules"] = {} if group.max_server_per_host is None else {"max_server_per_host": group.max_server_per_host}
    else:
        view["policies"] = [group.policy]
        view["metadata"] = {}
    if at_least(2, 13):
        view["project_id"] = cloud.project_id(group.project)
        view["user_id"] = cloud.user_id
    return view


@bp.get("/compute/v2.1/os-server-groups")
def server_groups() -> Response:
    """GET /compute/v2.1/os-server-groups: the admin project's groups, or every project's with all_projects."""
    cloud = current_cloud()
    with cloud.view():
        indexes = list(range(len(cloud.groups)))
        if not truthy(request.args.get("all_projects")):
            indexes = [i for i in indexes if cloud.project_id(cloud.groups[i].project) == cloud.admin_project_id]
        return json_response({"server_groups": [group_view(i) for i in indexes]})


@bp.get("/compute/v2.1/os-server-groups/<group_id>")
def server_group(group_id: str) -> Response:
    """GET /compute/v2.1/os-server-groups/{id}."""
    cloud = current_cloud()
    with cloud.view():
        for i, group in enumerate(cloud.groups):
            if group.id == group_id:
                return json_response({"server_group": group_view(i)})
        raise SimError(404, f"Instance group {group_id} could not be found.")
