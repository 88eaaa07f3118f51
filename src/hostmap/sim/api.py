"""The simulated cloud's HTTP face: Keystone v3, Nova and Placement as a Flask app.

This module only translates HTTP to calls on `hostmap.sim.state.SimCloud` and state back to the JSON
nova, placement and keystone return for the requested microversion.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from hostmap.sim.scenario import parse_microversion
from hostmap.sim.state import (
    IN_PROGRESS,
    RESOURCE_CLASSES,
    SimCloud,
    SimError,
    SimHost,
    SimInstance,
    SimMigration,
    host_id,
    new_request_id,
)

JSON = dict[str, Any]
PLACEMENT_MAX = (1, 39)
COMPUTE_MIN = (2, 1)
NOVA_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
HTTP_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
UNAUTHENTICATED = "The request you have made requires authentication."
#: Every simulated server is booted from this image (image-backed: its flavor disk is claimed in placement).
IMAGE_ID = "4a5c7b1e-2f0d-4c3b-9e8a-6d1f0b2c3a4e"


class _ApiError(Exception):
    """An error response built by a view."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: nova.api.validation.parameter_types.boolean: exactly these spellings of a boolean, nothing else.
_NOVA_BOOLEANS = frozenset(
    {case(w) for w in ("true", "false", "on", "off", "yes", "no") for case in (str.lower, str.title, str.upper)}
    | {"1", "0"}
)


def create_app(cloud: SimCloud) -> Flask:  # noqa: PLR0915 - the routes are closures over `cloud`
    """The WSGI app serving `cloud` under /identity, /compute and /placement."""
    app = Flask("hostmap.sim")
    app.url_map.strict_slashes = False

    def base() -> str:
        return request.host_url.rstrip("/")

    def service() -> str:
        first = request.path.strip("/").split("/", 1)[0]
        return first if first in ("identity", "compute", "placement") else "other"

    def mv() -> tuple[int, int]:
        value: tuple[int, int] = g.mv
        return value

    def at_least(major: int, minor: int) -> bool:
        return mv() >= (major, minor)

    def error_response(status: int, message: str) -> Response:
        svc = getattr(g, "service", service())
        if svc == "placement":
            title = HTTP_TITLES.get(status, "Error")
            body: JSON = {
                "errors": [{"status": status, "title": title, "detail": message, "request_id": g.request_id}]
            }
        elif svc == "identity" or status == 401:
            body = {"error": {"code": status, "message": message, "title": HTTP_TITLES.get(status, "Error")}}
        else:
            body = {NOVA_FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}}
        response = json_response(body, status)
        if status == 401:
            response.headers["WWW-Authenticate"] = f'Keystone uri="{base()}/identity"'
        return response

    def json_response(body: object, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def parse_version_header(svc: str, default: tuple[int, int], top: tuple[int, int], bottom: tuple[int, int]) -> None:
        wanted: str | None = None
        header = request.headers.get("OpenStack-API-Version")
        if header:
            for part in header.split(","):
                words = part.split()
                if len(words) == 2 and words[0].lower() == svc:
                    wanted = words[1]
        if wanted is None and svc == "compute":
            wanted = request.headers.get("X-OpenStack-Nova-API-Version")
        if wanted is None:
            g.mv = default
            return
        if wanted.strip().lower() == "latest":
            g.mv = top
            return
        parsed = parse_microversion(wanted)
        if parsed is None:
            g.mv = default
            raise _ApiError(
                400, f"API Version String {wanted} is of invalid format. Must be of format MajorNum.MinorNum."
            )
        g.mv = parsed
        if not bottom <= parsed <= top:
            g.mv = default
            raise _ApiError(
                406,
                f"Version {wanted} is not supported by the API. Minimum is {bottom[0]}.{bottom[1]} and "
                f"maximum is {top[0]}.{top[1]}.",
            )

    @app.before_request
    def before() -> Response | None:
        g.request_id = new_request_id()
        g.service = service()
        g.mv = None
        svc = g.service
        if svc == "compute":
            parse_version_header("compute", COMPUTE_MIN, cloud.scenario.api.max_microversion, COMPUTE_MIN)
        elif svc == "placement":
            parse_version_header("placement", (1, 0), PLACEMENT_MAX, (1, 0))
        discovery = re.fullmatch(r"/(compute(/v2\.1)?|placement|identity(/v3)?)/?", request.path) is not None
        is_token_post = request.path.rstrip("/") == "/identity/v3/auth/tokens" and request.method == "POST"
        status = cloud.api_fault(request.method, request.path)
        if status is not None:
            raise _ApiError(status, f"Injected fault: the service answered {status}.")
        slow = cloud.slow_seconds(request.method, request.path)
        if slow > 0:
            cloud.clock.sleep(slow)
        if svc in ("compute", "placement") and not discovery and not cloud.token_valid(
            request.headers.get("X-Auth-Token")
        ):
            raise _ApiError(401, UNAUTHENTICATED)
        if (
            svc == "identity"
            and not discovery
            and not is_token_post
            and not cloud.token_valid(request.headers.get("X-Auth-Token"))
        ):
            raise _ApiError(401, UNAUTHENTICATED)
        return None

    @app.after_request
    def after(response: Response) -> Response:
        lost = cloud.api_fault(request.method, request.path, after=True)
        if lost is not None:
            response = error_response(lost, f"Injected fault: carried out, then answered {lost}.")
        response.headers["x-openstack-request-id"] = g.get("request_id") or new_request_id()
        svc = g.get("service")
        version = g.get("mv")
        text = f"{version[0]}.{version[1]}" if version else None
        if svc == "compute":
            response.headers["x-compute-request-id"] = response.headers["x-openstack-request-id"]
            if text:
                response.headers["OpenStack-API-Version"] = f"compute {text}"
                response.headers["X-OpenStack-Nova-API-Version"] = text
                response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        elif svc == "placement" and text:
            response.headers["OpenStack-API-Version"] = f"placement {text}"
            response.headers["Vary"] = "OpenStack-API-Version"
        cloud.record_request(request.method, request.path, response.status_code, text)
        return response

    @app.errorhandler(_ApiError)
    def on_api_error(exc: _ApiError) -> Response:
        return error_response(exc.status, exc.message)

    @app.errorhandler(SimError)
    def on_sim_error(exc: SimError) -> Response:
        return error_response(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def on_http(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = "The resource could not be found." if status == 404 else (exc.description or "")
        return error_response(status, message)

    @app.errorhandler(Exception)
    def on_crash(exc: Exception) -> Response:
        app.logger.exception("simulated cloud crashed on %s %s", request.method, request.path)
        return error_response(500, f"Unexpected API Error: {type(exc).__name__}")

    def body_json() -> Any:
        data = request.get_json(silent=True)
        if data is None:
            raise _ApiError(400, "The request body is not valid JSON.")
        return data

    def need(major: int, minor: int) -> None:
        if not at_least(major, minor):
            raise _ApiError(404, "The resource could not be found.")

    def ts(offset: float | None, style: str = "nova") -> str | None:
        return None if offset is None else cloud.timestamp(offset, style=style)

    # ------------------------------------------------------------------------------------------
    # Keystone

    def identity_version() -> JSON:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base()}/identity/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
        }

    @app.get("/identity")
    def identity_root() -> Response:
        return json_response({"versions": {"values": [identity_version()]}}, 300)

    @app.get("/identity/v3")
    def identity_v3() -> Response:
        return json_response({"version": identity_version()})

    @app.post("/identity/v3/auth/tokens")
    def issue_token() -> Response:
        data = body_json()
        try:
            identity = data["auth"]["identity"]
            methods = identity["methods"]
            user = identity["password"]["user"]
            name, password = user["name"], user["password"]
            project = data["auth"]["scope"]["project"]
            project_name = project["name"]
        except (KeyError, TypeError):
            raise _ApiError(401, UNAUTHENTICATED) from None
        if "password" not in methods or not all(isinstance(v, str) for v in (name, password, project_name)):
            raise _ApiError(401, UNAUTHENTICATED)
        try:
            token, record = cloud.issue_token(name, password, project_name)
        except SimError as exc:
            raise _ApiError(401, exc.message) from None
        domain = {"id": "default", "name": "Default"}

        def endpoint(kind: str, name: str, url: str) -> JSON:
            return {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, kind).hex,
                "name": name,
                "type": kind,
                "endpoints": [
                    {
                        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{interface}").hex,
                        "interface": interface,
                        "region": "RegionOne",
                        "region_id": "RegionOne",
                        "url": url,
                    }
                    for interface in ("public", "internal", "admin")
                ],
            }

        body = {
            "token": {
                "methods": ["password"],
                "user": {"id": cloud.user_id, "name": cloud.username, "domain": domain, "password_expires_at": None},
                "audit_ids": [record.audit_id],
                "expires_at": cloud.timestamp(record.expires_s, style="keystone"),
                "issued_at": cloud.timestamp(record.issued_s, style="keystone"),
                "project": {"id": cloud.admin_project_id, "name": cloud.project_name, "domain": domain},
                "is_domain": False,
                "roles": [
                    {"id": uuid.uuid5(uuid.NAMESPACE_URL, role).hex, "name": role}
                    for role in ("admin", "member", "reader")
                ],
                "catalog": [
                    endpoint("identity", "keystone", f"{base()}/identity"),
                    endpoint("compute", "nova", f"{base()}/compute/v2.1"),
                    endpoint("placement", "placement", f"{base()}/placement"),
                ],
            }
        }
        response = json_response(body, 201)
        response.headers["X-Subject-Token"] = token
        return response

    # ------------------------------------------------------------------------------------------
    # Nova: discovery

    def compute_version() -> JSON:
        top = cloud.scenario.api.max_microversion
        return {
            "id": "v2.1",
            "status": "CURRENT",
            "version": f"{top[0]}.{top[1]}",
            "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base()}/compute/v2.1/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
        }

    @app.get("/compute")
    def compute_root() -> Response:
        return json_response({"versions": [compute_version()]})

    @app.get("/compute/v2.1")
    def compute_v21() -> Response:
        return json_response({"version": compute_version()})

    # ------------------------------------------------------------------------------------------
    # Nova: flavors

    def flavor_view(flavor_id: str, detail: bool) -> JSON:
        flavor = cloud.flavors[flavor_id]
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

    @app.get("/compute/v2.1/flavors")
    @app.get("/compute/v2.1/flavors/detail")
    def flavors() -> Response:
        detail = request.path.rstrip("/").endswith("/detail")
        with cloud.view():
            return json_response({"flavors": [flavor_view(f, detail) for f in cloud.flavors]})

    @app.get("/compute/v2.1/flavors/<flavor_id>")
    def flavor(flavor_id: str) -> Response:
        with cloud.view():
            if flavor_id not in cloud.flavors:
                raise _ApiError(404, f"Flavor {flavor_id} could not be found.")
            return json_response({"flavor": flavor_view(flavor_id, True)})

    # ------------------------------------------------------------------------------------------
    # Nova: servers

    def server_view(server: SimInstance, detail: bool) -> JSON:
        links = [
            {"rel": "self", "href": f"{base()}/compute/v2.1/servers/{server.id}"},
            {"rel": "bookmark", "href": f"{base()}/compute/servers/{server.id}"},
        ]
        view: JSON = {"id": server.id, "name": server.name, "links": links}
        if not detail:
            return view
        flavor = server.flavor
        if at_least(2, 47):
            flavor_field: JSON = {
                "original_name": flavor.name,
                "vcpus": flavor.vcpus,
                "ram": flavor.ram,
                "disk": flavor.disk,
                "ephemeral": 0,
                "swap": 0,
                "extra_specs": {},
            }
        else:
            flavor_field = {
                "id": flavor.id,
                "links": [{"rel": "bookmark", "href": f"{base()}/compute/flavors/{flavor.id}"}],
            }
        host = cloud.hosts[server.host]
        view.update(
            {
                "status": server.status,
                "tenant_id": server.project_id,
                "user_id": server.user_id,
                "metadata": {},
                "hostId": host_id(server.project_id, server.host),
                "image": {
                    "id": IMAGE_ID,
                    "links": [{"rel": "bookmark", "href": f"{base()}/compute/images/{IMAGE_ID}"}],
                },
                "flavor": flavor_field,
                "created": ts(server.created_s, "z"),
                "updated": ts(server.updated_s, "z"),
                "addresses": {},
                "accessIPv4": "",
                "accessIPv6": "",
                "key_name": None,
                "config_drive": "",
                "progress": 0,
                "OS-DCF:diskConfig": "MANUAL",
                "OS-EXT-AZ:availability_zone": "nova",
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
        )
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
        if at_least(2, 9):
            view["locked"] = False
        if at_least(2, 16):
            view["host_status"] = "UP" if host.up else "DOWN"
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
        return view

    def truthy(value: str | None) -> bool:
        return value is not None and value.strip().lower() not in ("0", "false", "f", "no", "n", "off")

    def paging(
        items: list[Any], key: Callable[[Any], str], path: str, missing: str = "marker [{}] not found"
    ) -> tuple[list[Any], list[JSON]]:
        """One page of `items` by nova's limit/marker rules; `missing`: nova's 400 message for an unknown marker."""
        page_size = cloud.scenario.api.page_size
        limit_text = request.args.get("limit")
        limit = page_size
        if limit_text is not None:
            try:
                limit = int(limit_text)
            except ValueError:
                raise _ApiError(400, f"Invalid input for query parameters limit. Value: {limit_text}.") from None
            if limit < 0:
                raise _ApiError(400, f"Invalid input for query parameters limit. Value: {limit_text}.")
            limit = min(limit, page_size)
        marker = request.args.get("marker")
        if marker is not None:
            index = next((i for i, item in enumerate(items) if key(item) == marker), None)
            if index is None:
                raise _ApiError(400, missing.format(marker))
            items = items[index + 1 :]
        page = items[:limit]
        links: list[JSON] = []
        if page and len(page) == limit:
            params = [(k, v) for k, v in request.args.items(multi=True) if k not in ("limit", "marker")]
            params += [("limit", str(limit)), ("marker", key(page[-1]))]
            links.append({"rel": "next", "href": f"{base()}/compute/v2.1/{path}?{urlencode(params)}"})
        return page, links

    @app.get("/compute/v2.1/servers")
    @app.get("/compute/v2.1/servers/detail")
    def servers() -> Response:
        detail = request.path.rstrip("/").endswith("/detail")
        args = request.args
        with cloud.view():
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
                    raise _ApiError(400, f"Invalid regular expression {args['name']!r}") from None
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
                    raise _ApiError(400, "Invalid input for query parameters changes-since.")
                found = [s for s in found if s.updated_s >= since]
            found.sort(key=lambda s: (s.created_s, s.id), reverse=True)
            page, links = paging(found, lambda s: s.id, "servers/detail" if detail else "servers")
            body: JSON = {"servers": [server_view(s, detail) for s in page]}
            if links:
                body["servers_links"] = links
            return json_response(body)

    @app.get("/compute/v2.1/servers/<server_id>")
    def server(server_id: str) -> Response:
        with cloud.view():
            return json_response({"server": server_view(cloud.get_server(server_id), True)})

    @app.post("/compute/v2.1/servers/<server_id>/action")
    def server_action(server_id: str) -> Response:
        with cloud.view():
            cloud.get_server(server_id)
        data = body_json()
        if not isinstance(data, dict) or len(data) != 1:
            raise _ApiError(400, "Malformed request body")
        name, args = next(iter(data.items()))
        if name != "os-migrateLive":
            raise _ApiError(400, f"There is no such action: {name}")
        host, force = validate_live_migrate(args)
        forced = host is not None and (not at_least(2, 30) or (force is True and not at_least(2, 68)))
        cloud.live_migrate(
            server_id, host, force=forced, request_id=g.request_id, async_checks=at_least(2, 34)
        )
        return Response(status=202)

    def validate_live_migrate(args: object) -> tuple[str | None, bool]:
        def invalid(detail: str) -> _ApiError:
            return _ApiError(400, f"Invalid input for field/attribute os-migrateLive. Value: {args}. {detail}")

        if not isinstance(args, dict):
            raise invalid(f"{args!r} is not of type 'object'")
        allowed: tuple[str, ...]
        required: tuple[str, ...]
        if at_least(2, 68):
            allowed, required = ("host", "block_migration"), ("host", "block_migration")
        elif at_least(2, 30):
            allowed, required = ("host", "block_migration", "force"), ("host", "block_migration")
        elif at_least(2, 25):
            allowed, required = ("host", "block_migration"), ("host", "block_migration")
        else:
            allowed = required = ("host", "block_migration", "disk_over_commit")
        extra = [k for k in args if k not in allowed]
        if extra:
            raise invalid(f"Additional properties are not allowed ({extra[0]!r} was unexpected)")
        missing = [k for k in required if k not in args]
        if missing:
            raise invalid(f"{missing[0]!r} is a required property")
        host = args["host"]
        if host is not None and (not isinstance(host, str) or not 1 <= len(host) <= 255):
            raise invalid(f"{host!r} is not valid under any of the given schemas")
        def is_bool(value: object) -> bool:
            return isinstance(value, bool) or (isinstance(value, str) and value in _NOVA_BOOLEANS)

        block = args["block_migration"]
        if not (is_bool(block) or (at_least(2, 25) and block == "auto")):
            raise invalid(f"{block!r} is not one of the allowed values")
        if "disk_over_commit" in args and not is_bool(args["disk_over_commit"]):
            raise invalid(f"{args['disk_over_commit']!r} is not a boolean")
        force = args.get("force", False)
        if not is_bool(force):
            raise invalid(f"{force!r} is not a boolean")
        forced = force is True or (isinstance(force, str) and force.lower() in ("true", "1", "yes", "on", "y", "t"))
        return host, forced

    # ------------------------------------------------------------------------------------------
    # Nova: server migrations

    def migration_progress_view(m: SimMigration, server_id: str) -> JSON:
        view: JSON = {
            "id": m.id,
            "server_uuid": server_id,
            "source_compute": m.source,
            "source_node": m.source_node,
            "dest_compute": m.dest,
            "dest_node": m.dest_node,
            "dest_host": dest_ip(m.dest),
            "status": m.status,
            "created_at": ts(m.created_s),
            "updated_at": ts(m.updated_s),
        }
        if cloud.params.monitor_interval_s > 0:
            # As nova: the counters libvirt's monitor last saved, null before its first save.
            counters: tuple[float, float, float] | None = m.saved
        else:
            counters = (m.total_bytes, m.sent_bytes, m.remaining_bytes)
        for name, value in zip(("total", "processed", "remaining"), counters or (None, None, None), strict=True):
            view[f"memory_{name}_bytes"] = None if value is None else round(value)
            view[f"disk_{name}_bytes"] = None if value is None else 0
        if at_least(2, 59):
            view["uuid"] = m.uuid
        if at_least(2, 80):
            view["user_id"] = m.user_id
            view["project_id"] = m.project_id
        return view

    def dest_ip(host_name: str) -> str:
        host = cloud.hosts[host_name]
        return f"192.0.2.{10 + host.index}"

    @app.get("/compute/v2.1/servers/<server_id>/migrations")
    def server_migrations(server_id: str) -> Response:
        need(2, 23)
        with cloud.view():
            cloud.get_server(server_id)
            found = [m for m in cloud.migrations if m.server_id == server_id and m.status in IN_PROGRESS]
            return json_response({"migrations": [migration_progress_view(m, server_id) for m in found]})

    @app.get("/compute/v2.1/servers/<server_id>/migrations/<migration_id>")
    def server_migration(server_id: str, migration_id: str) -> Response:
        need(2, 23)
        with cloud.view():
            cloud.get_server(server_id)
            try:
                m: SimMigration | None = cloud.server_migration(server_id, migration_id)
            except SimError:
                m = None
            if m is None or m.status not in IN_PROGRESS:
                raise _ApiError(
                    404, f"In-progress live migration {migration_id} is not found for server {server_id}."
                )
            return json_response({"migration": migration_progress_view(m, server_id)})

    @app.delete("/compute/v2.1/servers/<server_id>/migrations/<migration_id>")
    def abort_migration(server_id: str, migration_id: str) -> Response:
        need(2, 24)
        cloud.abort(server_id, migration_id, allow_queued=at_least(2, 65), request_id=g.request_id)
        return Response(status=202)

    @app.post("/compute/v2.1/servers/<server_id>/migrations/<migration_id>/action")
    def migration_action(server_id: str, migration_id: str) -> Response:
        need(2, 22)
        data = body_json()
        if not isinstance(data, dict) or list(data) != ["force_complete"] or data["force_complete"] is not None:
            raise _ApiError(400, "Invalid input for field/attribute force_complete.")
        cloud.force_complete(server_id, migration_id, request_id=g.request_id)
        return Response(status=202)

    # ------------------------------------------------------------------------------------------
    # Nova: os-migrations

    def migration_view(m: SimMigration) -> JSON:
        view: JSON = {
            "id": m.id,
            "instance_uuid": m.server_id,
            "source_compute": m.source,
            "source_node": m.source_node,
            "dest_compute": m.dest,
            "dest_node": m.dest_node,
            "dest_host": dest_ip(m.dest),
            "status": m.status,
            "old_instance_type_id": m.flavor_int_id,
            "new_instance_type_id": m.flavor_int_id,
            "created_at": ts(m.created_s),
            "updated_at": ts(m.updated_s),
        }
        if at_least(2, 23):
            view["migration_type"] = "live-migration"
            if m.status in IN_PROGRESS:
                view["links"] = [
                    {"rel": "self", "href": f"{base()}/compute/v2.1/servers/{m.server_id}/migrations/{m.id}"},
                    {"rel": "bookmark", "href": f"{base()}/compute/servers/{m.server_id}/migrations/{m.id}"},
                ]
        if at_least(2, 59):
            view["uuid"] = m.uuid
        if at_least(2, 80):
            view["user_id"] = m.user_id
            view["project_id"] = m.project_id
        return view

    @app.get("/compute/v2.1/os-migrations")
    def os_migrations() -> Response:
        args = request.args
        with cloud.view():
            found = list(cloud.migrations)
            if "instance_uuid" in args:
                found = [m for m in found if m.server_id == args["instance_uuid"]]
            if "migration_type" in args:
                found = [m for m in found if args["migration_type"] == "live-migration"]
            if "status" in args:
                found = [m for m in found if m.status == args["status"]]
            if "host" in args:
                found = [m for m in found if args["host"] in (m.source, m.dest)]
            if "source_compute" in args:
                found = [m for m in found if m.source == args["source_compute"]]
            for name, minimum, sign in (("changes-since", (2, 59), 1.0), ("changes-before", (2, 66), -1.0)):
                if name in args and mv() >= minimum:
                    when = cloud.parse_timestamp(args[name])
                    if when is None:
                        raise _ApiError(400, f"Invalid input for query parameters {name}.")
                    found = [m for m in found if sign * (m.updated_s - when) >= 0]
            if at_least(2, 80):
                if "user_id" in args:
                    found = [m for m in found if m.user_id == args["user_id"]]
                if "project_id" in args:
                    found = [m for m in found if m.project_id == args["project_id"]]
            found.sort(key=lambda m: (m.created_s, m.id), reverse=True)
            body: JSON = {}
            if at_least(2, 59):
                found, links = paging(found, lambda m: m.uuid, "os-migrations", "Marker {} could not be found.")
                if links:
                    body["migrations_links"] = links
            body["migrations"] = [migration_view(m) for m in found]
            return json_response(body)

    # ------------------------------------------------------------------------------------------
    # Nova: instance actions

    def action_view(action: Any, with_events: bool) -> JSON:
        view: JSON = {
            "action": action.action,
            "instance_uuid": action.server_id,
            "message": action.message,
            "project_id": action.project_id,
            "request_id": action.request_id,
            "start_time": ts(action.start_s),
            "user_id": action.user_id,
        }
        if at_least(2, 58):
            view["updated_at"] = ts(action.updated_s)
        if with_events:
            events = []
            # Newest first, as nova's DB API orders them (created_at, then id, descending).
            for event in reversed(action.events):
                item: JSON = {
                    "event": event.event,
                    "start_time": ts(event.start_s),
                    "finish_time": ts(event.finish_s),
                    "result": event.result,
                    "traceback": event.traceback,
                }
                if at_least(2, 62):
                    item["host"] = event.host
                    item["hostId"] = host_id(action.project_id, event.host)
                if at_least(2, 84):
                    item["details"] = event.details
                events.append(item)
            view["events"] = events
        return view

    @app.get("/compute/v2.1/servers/<server_id>/os-instance-actions")
    def instance_actions(server_id: str) -> Response:
        with cloud.view():
            cloud.get_server(server_id)
            actions = sorted(cloud.actions[server_id], key=lambda a: a.start_s, reverse=True)
            return json_response({"instanceActions": [action_view(a, False) for a in actions]})

    @app.get("/compute/v2.1/servers/<server_id>/os-instance-actions/<request_id>")
    def instance_action(server_id: str, request_id: str) -> Response:
        with cloud.view():
            cloud.get_server(server_id)
            action = next((a for a in cloud.actions[server_id] if a.request_id == request_id), None)
            if action is None:
                raise _ApiError(404, f"Action for request_id {request_id} on instance {server_id} not found")
            return json_response({"instanceAction": action_view(action, True)})

    # ------------------------------------------------------------------------------------------
    # Nova: hypervisors and services

    def hypervisor_view(host: SimHost, detail: bool) -> JSON:
        view: JSON = {
            "id": host.uuid if at_least(2, 53) else host.index + 1,
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
                    "id": host.service_uuid if at_least(2, 53) else host.index + 1,
                    "disabled_reason": host.disabled_reason,
                },
            }
        )
        if not at_least(2, 88):
            vcpus, memory_mb, disk_gb = host.inventory_totals
            used_v, used_m, used_d = cloud.usage(host.name)
            memory_used = used_m + host.spec.reserved_host_memory_mb
            view.update(
                {
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
            )
        else:
            view["uptime"] = None
        return view

    def hypervisors_found() -> list[SimHost]:
        found = list(cloud.hosts.values())
        pattern = request.args.get("hypervisor_hostname_pattern")
        if pattern is not None and at_least(2, 53):
            found = [h for h in found if pattern in h.hypervisor_hostname]
        return found

    @app.get("/compute/v2.1/os-hypervisors")
    @app.get("/compute/v2.1/os-hypervisors/detail")
    def hypervisors() -> Response:
        detail = request.path.rstrip("/").endswith("/detail")
        with cloud.view():
            found = hypervisors_found()
            body: JSON = {}
            if at_least(2, 33):
                found, links = paging(
                    found,
                    lambda h: h.uuid if at_least(2, 53) else str(h.index + 1),
                    "os-hypervisors/detail" if detail else "os-hypervisors",
                )
                if links:
                    body["hypervisors_links"] = links
            body["hypervisors"] = [hypervisor_view(h, detail) for h in found]
            return json_response(body)

    @app.get("/compute/v2.1/os-hypervisors/<hypervisor_id>")
    def hypervisor(hypervisor_id: str) -> Response:
        with cloud.view():
            host = next(
                (
                    h
                    for h in cloud.hosts.values()
                    if hypervisor_id == (h.uuid if at_least(2, 53) else str(h.index + 1))
                ),
                None,
            )
            if host is None:
                raise _ApiError(404, f"Hypervisor with ID '{hypervisor_id}' could not be found.")
            return json_response({"hypervisor": hypervisor_view(host, True)})

    @app.get("/compute/v2.1/os-services")
    def services() -> Response:
        args = request.args
        with cloud.view():
            found = list(cloud.hosts.values())
            if args.get("binary", "nova-compute") != "nova-compute":
                found = []
            if "host" in args:
                found = [h for h in found if h.name == args["host"]]
            views = []
            for host in found:
                view: JSON = {
                    "id": host.service_uuid if at_least(2, 53) else host.index + 1,
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

    # ------------------------------------------------------------------------------------------
    # Nova: server groups

    def group_view(index: int) -> JSON:
        group = cloud.groups[index]
        view: JSON = {"id": group.id, "name": group.name, "members": list(group.members)}
        if at_least(2, 64):
            view["policy"] = group.policy
            view["rules"] = (
                {} if group.max_server_per_host is None else {"max_server_per_host": group.max_server_per_host}
            )
        else:
            view["policies"] = [group.policy]
            view["metadata"] = {}
        if at_least(2, 13):
            view["project_id"] = cloud.project_id(group.project)
            view["user_id"] = cloud.user_id
        return view

    @app.get("/compute/v2.1/os-server-groups")
    def server_groups() -> Response:
        with cloud.view():
            indexes = list(range(len(cloud.groups)))
            if not truthy(request.args.get("all_projects")):
                indexes = [i for i in indexes if cloud.project_id(cloud.groups[i].project) == cloud.admin_project_id]
            return json_response({"server_groups": [group_view(i) for i in indexes]})

    @app.get("/compute/v2.1/os-server-groups/<group_id>")
    def server_group(group_id: str) -> Response:
        with cloud.view():
            for i, group in enumerate(cloud.groups):
                if group.id == group_id:
                    return json_response({"server_group": group_view(i)})
            raise _ApiError(404, f"Instance group {group_id} could not be found.")

    # ------------------------------------------------------------------------------------------
    # Placement

    def placement_version() -> JSON:
        return {
            "id": "v1.0",
            "max_version": f"{PLACEMENT_MAX[0]}.{PLACEMENT_MAX[1]}",
            "min_version": "1.0",
            "status": "CURRENT",
            "links": [{"rel": "self", "href": f"{base()}/placement/"}],
        }

    @app.get("/placement")
    def placement_root() -> Response:
        return json_response({"versions": [placement_version()]})

    def provider(provider_uuid: str) -> SimHost:
        host = cloud.host_by_uuid(provider_uuid)
        if host is None:
            raise _ApiError(404, f"No resource provider with uuid {provider_uuid} found")
        return host

    def provider_view(host: SimHost) -> JSON:
        prefix = f"/placement/resource_providers/{host.uuid}"
        view: JSON = {
            "uuid": host.uuid,
            "name": host.hypervisor_hostname,
            "generation": host.generation,
            "links": [
                {"rel": "self", "href": prefix},
                {"rel": "inventories", "href": f"{prefix}/inventories"},
                {"rel": "usages", "href": f"{prefix}/usages"},
                {"rel": "allocations", "href": f"{prefix}/allocations"},
            ],
        }
        if at_least(1, 14):
            view["parent_provider_uuid"] = None
            view["root_provider_uuid"] = host.uuid
        return view

    @app.get("/placement/resource_providers")
    def providers() -> Response:
        with cloud.view():
            found = list(cloud.hosts.values())
            if "name" in request.args:
                found = [h for h in found if h.hypervisor_hostname == request.args["name"]]
            if "uuid" in request.args:
                found = [h for h in found if h.uuid == request.args["uuid"]]
            return json_response({"resource_providers": [provider_view(h) for h in found]})

    @app.get("/placement/resource_providers/<provider_uuid>")
    def provider_show(provider_uuid: str) -> Response:
        with cloud.view():
            return json_response(provider_view(provider(provider_uuid)))

    @app.get("/placement/resource_providers/<provider_uuid>/inventories")
    def inventories(provider_uuid: str) -> Response:
        with cloud.view():
            host = provider(provider_uuid)
            inventory = {
                rc: {
                    "total": total,
                    "reserved": reserved,
                    "min_unit": 1,
                    "max_unit": total,
                    "step_size": 1,
                    "allocation_ratio": ratio,
                }
                for rc, total, reserved, ratio in zip(
                    RESOURCE_CLASSES, host.inventory_totals, host.reserved, host.ratios, strict=True
                )
            }
            return json_response({"resource_provider_generation": host.generation, "inventories": inventory})

    @app.get("/placement/resource_providers/<provider_uuid>/usages")
    def usages(provider_uuid: str) -> Response:
        with cloud.view():
            host = provider(provider_uuid)
            used = dict(zip(RESOURCE_CLASSES, cloud.usage(host.name), strict=True))
            return json_response({"resource_provider_generation": host.generation, "usages": used})

    @app.get("/placement/resource_providers/<provider_uuid>/allocations")
    def provider_allocations(provider_uuid: str) -> Response:
        with cloud.view():
            host = provider(provider_uuid)
            allocations = {
                consumer_id: {"resources": resources_dict(consumer.allocations[host.name])}
                for consumer_id, consumer in cloud.consumers.items()
                if host.name in consumer.allocations
            }
            return json_response({"resource_provider_generation": host.generation, "allocations": allocations})

    def resources_dict(amounts: Iterable[int]) -> dict[str, int]:
        return {rc: amount for rc, amount in zip(RESOURCE_CLASSES, amounts, strict=True) if amount}

    @app.get("/placement/allocations/<consumer_id>")
    def allocations(consumer_id: str) -> Response:
        with cloud.view():
            consumer = cloud.consumers.get(consumer_id)
            body: JSON = {"allocations": {}}
            if consumer is not None:
                body["allocations"] = {
                    cloud.hosts[name].uuid: {
                        "generation": cloud.hosts[name].generation,
                        "resources": resources_dict(amounts),
                    }
                    for name, amounts in consumer.allocations.items()
                }
                if at_least(1, 12):
                    body["project_id"] = consumer.project_id
                    body["user_id"] = consumer.user_id
                if at_least(1, 28):
                    body["consumer_generation"] = consumer.generation
            return json_response(body)

    return app
