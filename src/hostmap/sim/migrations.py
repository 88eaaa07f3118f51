"""Nova's migration routes of the simulated cloud: server migrations, os-migrations and instance actions."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from hostmap.sim.state import IN_PROGRESS, SimAction, SimError, SimMigration, host_id
from hostmap.sim.views import (
    JSON,
    at_least,
    base,
    body_json,
    current_cloud,
    dest_ip,
    json_response,
    mv,
    need,
    paging,
    ts,
)

bp = Blueprint("migrations", __name__)


def migration_view(m: SimMigration, progress: bool) -> JSON:
    """A migration as GET /servers/{id}/migrations (`progress`) or GET /os-migrations shows it."""
    view: JSON = {
        "id": m.id,
        "server_uuid" if progress else "instance_uuid": m.server_id,
        "source_compute": m.source,
        "source_node": m.source_node,
        "dest_compute": m.dest,
        "dest_node": m.dest_node,
        "dest_host": dest_ip(m.dest),
        "status": m.status,
    }
    if not progress:
        view["old_instance_type_id"] = m.flavor_int_id
        view["new_instance_type_id"] = m.flavor_int_id
    view["created_at"] = ts(m.created_s)
    view["updated_at"] = ts(m.updated_s)
    view.update(_progress_fields(m) if progress else _listing_fields(m))
    if at_least(2, 59):
        view["uuid"] = m.uuid
    if at_least(2, 80):
        view["user_id"] = m.user_id
        view["project_id"] = m.project_id
    return view


def _progress_fields(m: SimMigration) -> JSON:
    if current_cloud().params.monitor_interval_s > 0:
        # As nova: the counters libvirt's monitor last saved, null before its first save.
        counters: tuple[float, float, float] | None = m.saved
    else:
        counters = (m.total_bytes, m.sent_bytes, m.remaining_bytes)
    fields: JSON = {}
    for name, value in zip(("total", "processed", "remaining"), counters or (None, None, None), strict=True):
        fields[f"memory_{name}_bytes"] = None if value is None else round(value)
        fields[f"disk_{name}_bytes"] = None if value is None else 0
    return fields


def _listing_fields(m: SimMigration) -> JSON:
    fields: JSON = {}
    if at_least(2, 23):
        fields["migration_type"] = m.migration_type
        if m.migration_type == "live-migration" and m.status in IN_PROGRESS:
            fields["links"] = [
                {"rel": "self", "href": f"{base()}/compute/v2.1/servers/{m.server_id}/migrations/{m.id}"},
                {"rel": "bookmark", "href": f"{base()}/compute/servers/{m.server_id}/migrations/{m.id}"},
            ]
    return fields


@bp.get("/compute/v2.1/servers/<server_id>/migrations")
def server_migrations(server_id: str) -> Response:
    """GET /compute/v2.1/servers/{id}/migrations: the server's in-progress live migrations."""
    need(2, 23)
    cloud = current_cloud()
    with cloud.view():
        cloud.get_server(server_id)
        # As nova: only live migrations in progress, never a cold migration (os-migrations lists those).
        found = [m for m in cloud.migrations
                 if m.server_id == server_id and m.migration_type == "live-migration" and m.status in IN_PROGRESS]
        return json_response({"migrations": [migration_view(m, True) for m in found]})


@bp.get("/compute/v2.1/servers/<server_id>/migrations/<migration_id>")
def server_migration(server_id: str, migration_id: str) -> Response:
    """GET /compute/v2.1/servers/{id}/migrations/{id}: one in-progress live migration."""
    need(2, 23)
    cloud = current_cloud()
    with cloud.view():
        cloud.get_server(server_id)
        try:
            m: SimMigration | None = cloud.server_migration(server_id, migration_id)
        except SimError:
            m = None
        if m is None or m.migration_type != "live-migration" or m.status not in IN_PROGRESS:
            raise SimError(404, f"In-progress live migration {migration_id} is not found for server {server_id}.")
        return json_response({"migration": migration_view(m, True)})


@bp.delete("/compute/v2.1/servers/<server_id>/migrations/<migration_id>")
def abort_migration(server_id: str, migration_id: str) -> Response:
    """DELETE /compute/v2.1/servers/{id}/migrations/{id}: abort a live migration."""
    need(2, 24)
    current_cloud().abort(server_id, migration_id, allow_queued=at_least(2, 65), request_id=g.request_id)
    return Response(status=202)


@bp.post("/compute/v2.1/servers/<server_id>/migrations/<migration_id>/action")
def migration_action(server_id: str, migration_id: str) -> Response:
    """POST /compute/v2.1/servers/{id}/migrations/{id}/action: force_complete, the one migration action."""
    need(2, 22)
    data = body_json()
    if not isinstance(data, dict) or list(data) != ["force_complete"] or data["force_complete"] is not None:
        raise SimError(400, "Invalid input for field/attribute force_complete.")
    current_cloud().force_complete(server_id, migration_id, request_id=g.request_id)
    return Response(status=202)


#: The query parameters nova 34's os-migrations schema allows, by the microversion that added them; from 2.59 the
#: schema refuses any other (additionalProperties False), before it nova drops them unread.
_QUERY_PARAMS: tuple[tuple[tuple[int, int], frozenset[str]], ...] = (
    ((2, 0), frozenset({"hidden", "host", "instance_uuid", "source_compute", "status", "migration_type"})),
    ((2, 59), frozenset({"limit", "marker", "changes-since"})),
    ((2, 66), frozenset({"changes-before"})),
    ((2, 80), frozenset({"user_id", "project_id"})),
)
#: Parameters the schema takes once only (single_param); the others may repeat, and nova then filters by the last.
_SINGLE = frozenset({"limit", "marker", "changes-since", "changes-before", "user_id", "project_id"})


def _query() -> dict[str, str]:
    """The query as nova's index reads it: checked against the schema from 2.59, the last value of a repeated one."""
    args = request.args
    if at_least(2, 59):
        allowed = set().union(*(names for since, names in _QUERY_PARAMS if mv() >= since))
        unexpected = sorted(set(args) - allowed)
        if unexpected:
            raise SimError(400, f"Invalid input for query parameters {unexpected[0]}. Value: {args[unexpected[0]]}. "
                                "Additional properties are not allowed.")
        repeated = sorted(k for k in _SINGLE if len(args.getlist(k)) > 1)
        if repeated:
            raise SimError(400, f"Invalid input for query parameters {repeated[0]}. Value: "
                                f"{args.getlist(repeated[0])}. Expected a single value.")
    return {k: args.getlist(k)[-1] for k in args}


def _migrations_found() -> list[SimMigration]:
    """os-migrations' filters as nova's migration_get_all_by_filters applies them: exact matches, `host` (the source
    or the destination) replacing `source_compute` when given, changes-since/-before on updated_at, inclusive."""
    cloud = current_cloud()
    args = _query()
    found = list(cloud.migrations)
    if "instance_uuid" in args:
        found = [m for m in found if m.server_id == args["instance_uuid"]]
    if "migration_type" in args:
        found = [m for m in found if m.migration_type == args["migration_type"]]
    if "status" in args:
        found = [m for m in found if m.status == args["status"]]
    if "host" in args:
        found = [m for m in found if args["host"] in (m.source, m.dest)]
    elif "source_compute" in args:
        found = [m for m in found if m.source == args["source_compute"]]
    bounds: dict[str, float] = {}
    for name, minimum in (("changes-since", (2, 59)), ("changes-before", (2, 66))):
        if name in args and mv() >= minimum:
            when = cloud.parse_timestamp(args[name])
            if when is None:
                raise SimError(400, f"Invalid input for query parameters {name}.")
            bounds[name] = when
    if bounds.get("changes-before", float("inf")) < bounds.get("changes-since", float("-inf")):
        raise SimError(400, "The value of changes-since must be less than or equal to changes-before.")
    if "changes-since" in bounds:
        found = [m for m in found if m.updated_s >= bounds["changes-since"]]
    if "changes-before" in bounds:
        found = [m for m in found if m.updated_s <= bounds["changes-before"]]
    if at_least(2, 80):
        if "user_id" in args:
            found = [m for m in found if m.user_id == args["user_id"]]
        if "project_id" in args:
            found = [m for m in found if m.project_id == args["project_id"]]
    return found


@bp.get("/compute/v2.1/os-migrations")
def os_migrations() -> Response:
    """GET /compute/v2.1/os-migrations, filtered, newest first and (from 2.59) paged."""
    with current_cloud().view():
        found = _migrations_found()
        found.sort(key=lambda m: (m.created_s, m.id), reverse=True)
        body: JSON = {}
        if at_least(2, 59):
            found, links = paging(found, lambda m: m.uuid, "os-migrations", "Marker {} could not be found.")
            if links:
                body["migrations_links"] = links
        body["migrations"] = [migration_view(m, False) for m in found]
        return json_response(body)


# ------------------------------------------------------------------------------------------
# Instance actions


def action_view(action: SimAction, with_events: bool) -> JSON:
    """An instance action as nova shows it, with its events (newest first) when `with_events`."""
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


@bp.get("/compute/v2.1/servers/<server_id>/os-instance-actions")
def instance_actions(server_id: str) -> Response:
    """GET /compute/v2.1/servers/{id}/os-instance-actions, newest first."""
    cloud = current_cloud()
    with cloud.view():
        cloud.get_server(server_id)
        # Newest first; among actions of one instant the later recorded first (nova: created_at, then id, descending).
        listed = cloud.actions[server_id]
        actions = [listed[i] for i in sorted(range(len(listed)), key=lambda i: (listed[i].start_s, i), reverse=True)]
        return json_response({"instanceActions": [action_view(a, False) for a in actions]})


@bp.get("/compute/v2.1/servers/<server_id>/os-instance-actions/<request_id>")
def instance_action(server_id: str, request_id: str) -> Response:
    """GET /compute/v2.1/servers/{id}/os-instance-actions/{request id}, with its events."""
    cloud = current_cloud()
    with cloud.view():
        cloud.get_server(server_id)
        action = next((a for a in cloud.actions[server_id] if a.request_id == request_id), None)
        if action is None:
            raise SimError(404, f"Action for request_id {request_id} on instance {server_id} not found")
        return json_response({"instanceAction": action_view(action, True)})
