"""Keystone v3 of the simulated cloud: version discovery and password tokens with their service catalog."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response

from hostmap.sim.state import SimError
from hostmap.sim.views import JSON, UNAUTHENTICATED, base, body_json, current_cloud, json_response, public_base

bp = Blueprint("keystone", __name__)


def identity_version() -> JSON:
    """The v3 entry of keystone's version document."""
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base()}/identity/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


@bp.get("/identity")
def identity_root() -> Response:
    """GET /identity: the versions keystone offers (300 Multiple Choices, as keystone)."""
    return json_response({"versions": {"values": [identity_version()]}}, 300)


@bp.get("/identity/v3")
def identity_v3() -> Response:
    """GET /identity/v3: the v3 version document."""
    return json_response({"version": identity_version()})


def _credentials() -> tuple[str, str, str]:
    data = body_json()
    try:
        identity = data["auth"]["identity"]
        methods = identity["methods"]
        user = identity["password"]["user"]
        name, password = user["name"], user["password"]
        project = data["auth"]["scope"]["project"]
        project_name = project["name"]
    except (KeyError, TypeError):
        raise SimError(401, UNAUTHENTICATED) from None
    if "password" not in methods or not all(isinstance(v, str) for v in (name, password, project_name)):
        raise SimError(401, UNAUTHENTICATED)
    return name, password, project_name


def _catalog_entry(kind: str, name: str, url: str) -> JSON:
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


@bp.post("/identity/v3/auth/tokens")
def issue_token() -> Response:
    """POST /identity/v3/auth/tokens: a project-scoped token for the admin's password."""
    cloud = current_cloud()
    name, password, project_name = _credentials()
    try:
        token, record = cloud.issue_token(name, password, project_name)
    except SimError as exc:
        raise SimError(401, exc.message) from None
    domain = {"id": "default", "name": "Default"}
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
                {"id": uuid.uuid5(uuid.NAMESPACE_URL, role).hex, "name": role} for role in ("admin", "member", "reader")
            ],
            "catalog": [
                _catalog_entry("identity", "keystone", f"{public_base()}/identity"),
                _catalog_entry("compute", "nova", f"{public_base()}/compute/v2.1"),
                _catalog_entry("placement", "placement", f"{public_base()}/placement"),
            ],
        }
    }
    response = json_response(body, 201)
    response.headers["X-Subject-Token"] = token
    return response
