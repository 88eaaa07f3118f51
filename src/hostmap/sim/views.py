"""Helpers every view of the simulated cloud shares: the cloud, microversions, JSON responses, paging, booleans."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Response, current_app, g, request

from hostmap.sim.state import SimCloud, SimError

JSON = dict[str, Any]
T = TypeVar("T")

#: The newest placement microversion served, and the oldest compute one (nova's floor).
PLACEMENT_MAX = (1, 39)
COMPUTE_MIN = (2, 1)
#: The key under which `create_app` keeps its cloud in `Flask.extensions`.
CLOUD_KEY = "hostmap.sim.cloud"
#: The key under which `SimServer` keeps the URL its catalog names (keystone's catalog is configured, not derived
#: from the host a client happened to write); without it the catalog names the host of each request.
PUBLIC_URL_KEY = "HOSTMAP_PUBLIC_URL"
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

#: nova.api.validation.parameter_types.boolean: exactly these spellings of a boolean, nothing else.
NOVA_BOOLEANS = frozenset(
    {case(w) for w in ("true", "false", "on", "off", "yes", "no") for case in (str.lower, str.title, str.upper)}
    | {"1", "0"}
)
#: The spellings nova reads as false (oslo's bool_from_string); every other value is true.
_FALSE_WORDS = ("0", "false", "f", "no", "n", "off")


def current_cloud() -> SimCloud:
    """The cloud the app handling this request serves."""
    cloud: SimCloud = current_app.extensions[CLOUD_KEY]
    return cloud


def base() -> str:
    """The scheme and host this request came to, without a trailing slash."""
    return request.host_url.rstrip("/")


def public_base() -> str:
    """The scheme and host the service catalog names: the server's configured address, else this request's."""
    configured = current_app.config.get(PUBLIC_URL_KEY)
    return str(configured).rstrip("/") if configured else base()


def service() -> str:
    """The service this request's path addresses: identity, compute, placement or other."""
    first = request.path.strip("/").split("/", 1)[0]
    return first if first in ("identity", "compute", "placement") else "other"


def mv() -> tuple[int, int]:
    """The microversion negotiated for this request."""
    value: tuple[int, int] = g.mv
    return value


def at_least(major: int, minor: int) -> bool:
    """Whether this request's microversion is `major.minor` or later."""
    return mv() >= (major, minor)


def need(major: int, minor: int) -> None:
    """Answer 404, as nova does for a route below its microversion, unless at `major.minor` or later."""
    if not at_least(major, minor):
        raise SimError(404, "The resource could not be found.")


def ts(offset: float | None, style: str = "nova") -> str | None:
    """The cloud's timestamp for `offset` seconds in `style`, None for None."""
    return None if offset is None else current_cloud().timestamp(offset, style=style)


def truthy(value: str | None) -> bool:
    """Nova's reading of a boolean string: true unless absent or one of the false spellings."""
    return value is not None and value.strip().lower() not in _FALSE_WORDS


def is_nova_boolean(value: object) -> bool:
    """Whether nova's request schema accepts `value` as a boolean."""
    return isinstance(value, bool) or (isinstance(value, str) and value in NOVA_BOOLEANS)


def json_response(body: object, status: int = 200) -> Response:
    """`body` as a JSON response."""
    return Response(json.dumps(body), status=status, mimetype="application/json")


def error_response(status: int, message: str) -> Response:
    """The error body the addressed service returns for `status`."""
    svc = getattr(g, "service", service())
    if svc == "placement":
        title = HTTP_TITLES.get(status, "Error")
        body: JSON = {"errors": [{"status": status, "title": title, "detail": message, "request_id": g.request_id}]}
    elif svc == "identity" or status == 401:
        body = {"error": {"code": status, "message": message, "title": HTTP_TITLES.get(status, "Error")}}
    else:
        body = {NOVA_FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}}
    response = json_response(body, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Keystone uri="{base()}/identity"'
    return response


def body_json() -> Any:
    """The request's JSON body (400 when it is not JSON)."""
    data = request.get_json(silent=True)
    if data is None:
        raise SimError(400, "The request body is not valid JSON.")
    return data


def dest_ip(host_name: str) -> str:
    """The address nova reports for a host (dest_host, host_ip)."""
    host = current_cloud().hosts[host_name]
    return f"192.0.2.{10 + host.index}"


def paging(
    items: list[T], key: Callable[[T], str], path: str, missing: str = "marker [{}] not found"
) -> tuple[list[T], list[JSON]]:
    """One page of `items` by nova's limit/marker rules; `missing`: nova's 400 message for an unknown marker."""
    limit = _page_limit(current_cloud().scenario.api.page_size)
    marker = request.args.get("marker")
    if marker is not None:
        index = next((i for i, item in enumerate(items) if key(item) == marker), None)
        if index is None:
            raise SimError(400, missing.format(marker))
        items = items[index + 1 :]
    page = items[:limit]
    links: list[JSON] = []
    if page and len(page) == limit:
        params = [(k, v) for k, v in request.args.items(multi=True) if k not in ("limit", "marker")]
        params += [("limit", str(limit)), ("marker", key(page[-1]))]
        links.append({"rel": "next", "href": f"{base()}/compute/v2.1/{path}?{urlencode(params)}"})
    return page, links


def _page_limit(page_size: int) -> int:
    limit_text = request.args.get("limit")
    if limit_text is None:
        return page_size
    try:
        limit = int(limit_text)
    except ValueError:
        raise SimError(400, f"Invalid input for query parameters limit. Value: {limit_text}.") from None
    if limit < 0:
        raise SimError(400, f"Invalid input for query parameters limit. Value: {limit_text}.")
    return min(limit, page_size)
