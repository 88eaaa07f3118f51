"""Placement of the simulated cloud: resource providers, their inventories, usages and allocations."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Response, request

from hostmap.sim.state import RESOURCE_CLASSES, SimError, SimHost
from hostmap.sim.views import JSON, PLACEMENT_MAX, at_least, base, current_cloud, json_response

bp = Blueprint("placement", __name__)


@bp.get("/placement")
def placement_root() -> Response:
    """GET /placement: the one version placement offers and its microversion range."""
    version = {
        "id": "v1.0",
        "max_version": f"{PLACEMENT_MAX[0]}.{PLACEMENT_MAX[1]}",
        "min_version": "1.0",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": f"{base()}/placement/"}],
    }
    return json_response({"versions": [version]})


def provider(provider_uuid: str) -> SimHost:
    """The host whose compute node is resource provider `provider_uuid` (404 when none is)."""
    host = current_cloud().host_by_uuid(provider_uuid)
    if host is None:
        raise SimError(404, f"No resource provider with uuid {provider_uuid} found")
    return host


def provider_view(host: SimHost) -> JSON:
    """A resource provider as placement shows it."""
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


def resources_dict(amounts: Iterable[int]) -> dict[str, int]:
    """A (vcpu, memory_mb, disk_gb) triple as placement's resources object, zero amounts left out."""
    return {rc: amount for rc, amount in zip(RESOURCE_CLASSES, amounts, strict=True) if amount}


@bp.get("/placement/resource_providers")
def providers() -> Response:
    """GET /placement/resource_providers, filtered by name and uuid."""
    cloud = current_cloud()
    with cloud.view():
        found = list(cloud.hosts.values())
        if "name" in request.args:
            found = [h for h in found if h.hypervisor_hostname == request.args["name"]]
        if "uuid" in request.args:
            found = [h for h in found if h.uuid == request.args["uuid"]]
        return json_response({"resource_providers": [provider_view(h) for h in found]})


@bp.get("/placement/resource_providers/<provider_uuid>")
def provider_show(provider_uuid: str) -> Response:
    """GET /placement/resource_providers/{uuid}."""
    with current_cloud().view():
        return json_response(provider_view(provider(provider_uuid)))


@bp.get("/placement/resource_providers/<provider_uuid>/inventories")
def inventories(provider_uuid: str) -> Response:
    """GET /placement/resource_providers/{uuid}/inventories."""
    with current_cloud().view():
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


@bp.get("/placement/resource_providers/<provider_uuid>/usages")
def usages(provider_uuid: str) -> Response:
    """GET /placement/resource_providers/{uuid}/usages."""
    cloud = current_cloud()
    with cloud.view():
        host = provider(provider_uuid)
        used = dict(zip(RESOURCE_CLASSES, cloud.usage(host.name), strict=True))
        return json_response({"resource_provider_generation": host.generation, "usages": used})


@bp.get("/placement/resource_providers/<provider_uuid>/allocations")
def provider_allocations(provider_uuid: str) -> Response:
    """GET /placement/resource_providers/{uuid}/allocations: every consumer's claim on the provider."""
    cloud = current_cloud()
    with cloud.view():
        host = provider(provider_uuid)
        allocations = {
            consumer_id: {"resources": resources_dict(consumer.allocations[host.name])}
            for consumer_id, consumer in cloud.consumers.items()
            if host.name in consumer.allocations
        }
        return json_response({"resource_provider_generation": host.generation, "allocations": allocations})


@bp.get("/placement/allocations/<consumer_id>")
def allocations(consumer_id: str) -> Response:
    """GET /placement/allocations/{consumer}: a consumer's claims per provider (empty for an unknown one)."""
    cloud = current_cloud()
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
