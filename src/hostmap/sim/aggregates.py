"""Nova's host-aggregate routes of the simulated cloud: GET /os-aggregates and /os-aggregates/{id} (read only).

As nova 34's `AggregateController`: each aggregate with its hosts, its metadata (`availability_zone` when it names
one, also shown as the field of that name) and the object's timestamps; `uuid` from 2.41. The aggregates are the
scenario's (`aggregates`, and one per zone that hosts name), created a day before the cloud started.
"""

from __future__ import annotations

from flask import Blueprint, Response

from hostmap.sim.scenario import AggregateSpec, sim_uuid
from hostmap.sim.state import SimError
from hostmap.sim.views import JSON, at_least, current_cloud, json_response, ts

bp = Blueprint("aggregates", __name__)

#: When the scenario's aggregates were created, in seconds from the cloud's start.
_CREATED_S = -86400.0


def aggregate_view(aggregate: AggregateSpec) -> JSON:
    """An aggregate as nova shows it at this microversion."""
    zone = aggregate.availability_zone
    view: JSON = {
        "id": aggregate.id,
        "name": aggregate.name,
        "availability_zone": zone,
        "hosts": list(aggregate.hosts),
        "metadata": {"availability_zone": zone} if zone else {},
        "created_at": ts(_CREATED_S),
        "updated_at": None,
        "deleted_at": None,
        "deleted": False,
    }
    if at_least(2, 41):
        view["uuid"] = sim_uuid("aggregate", aggregate.name)
    return view


@bp.get("/compute/v2.1/os-aggregates")
def aggregates() -> Response:
    """GET /compute/v2.1/os-aggregates: every aggregate."""
    cloud = current_cloud()
    return json_response({"aggregates": [aggregate_view(a) for a in cloud.scenario.aggregates]})


@bp.get("/compute/v2.1/os-aggregates/<aggregate_id>")
def aggregate(aggregate_id: str) -> Response:
    """GET /compute/v2.1/os-aggregates/{id}: one aggregate, by its integer id."""
    try:
        wanted = int(aggregate_id)
    except ValueError:
        raise SimError(400, "Invalid input received: id must be an integer") from None
    found = next((a for a in current_cloud().scenario.aggregates if a.id == wanted), None)
    if found is None:
        raise SimError(404, f"Aggregate {aggregate_id} could not be found.")
    return json_response({"aggregate": aggregate_view(found)})
