"""The simulated cloud's request cycle: microversion negotiation, injected faults, the token check, error bodies."""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from hostmap.sim.scenario import parse_microversion
from hostmap.sim.state import SimError, new_request_id
from hostmap.sim.views import COMPUTE_MIN, PLACEMENT_MAX, UNAUTHENTICATED, current_cloud, error_response, service


def install(app: Flask) -> None:
    """Register the request hooks and error handlers on `app`."""
    app.before_request(before)
    app.after_request(after)
    app.register_error_handler(SimError, on_sim_error)
    app.register_error_handler(HTTPException, on_http)
    app.register_error_handler(Exception, on_crash)


def before() -> Response | None:
    """Negotiate the microversion, inject faults and delays, and refuse requests without a valid token."""
    cloud = current_cloud()
    g.request_id = new_request_id()
    g.service = service()
    g.mv = None
    if g.service == "compute":
        negotiate("compute", COMPUTE_MIN, cloud.scenario.api.max_microversion, COMPUTE_MIN)
    elif g.service == "placement":
        negotiate("placement", (1, 0), PLACEMENT_MAX, (1, 0))
    status = cloud.api_fault(request.method, request.path)
    if status is not None:
        raise SimError(status, f"Injected fault: the service answered {status}.")
    slow = cloud.slow_seconds(request.method, request.path)
    if slow > 0:
        cloud.clock.sleep(slow)
    if _needs_token() and not cloud.token_valid(request.headers.get("X-Auth-Token")):
        raise SimError(401, UNAUTHENTICATED)
    return None


def _needs_token() -> bool:
    discovery = re.fullmatch(r"/(compute(/v2\.1)?|placement|identity(/v3)?)/?", request.path) is not None
    if g.service in ("compute", "placement"):
        return not discovery
    is_token_post = request.path.rstrip("/") == "/identity/v3/auth/tokens" and request.method == "POST"
    return g.service == "identity" and not discovery and not is_token_post


def negotiate(svc: str, default: tuple[int, int], top: tuple[int, int], bottom: tuple[int, int]) -> None:
    """Set `g.mv` from the request's version headers for `svc`, refusing a malformed or unsupported one."""
    wanted = _wanted_version(svc)
    if wanted is None:
        g.mv = default
        return
    if wanted.strip().lower() == "latest":
        g.mv = top
        return
    parsed = parse_microversion(wanted)
    if parsed is None:
        g.mv = default
        raise SimError(400, f"API Version String {wanted} is of invalid format. Must be of format MajorNum.MinorNum.")
    g.mv = parsed
    if not bottom <= parsed <= top:
        g.mv = default
        raise SimError(
            406,
            f"Version {wanted} is not supported by the API. Minimum is {bottom[0]}.{bottom[1]} and "
            f"maximum is {top[0]}.{top[1]}.",
        )


def _wanted_version(svc: str) -> str | None:
    wanted: str | None = None
    header = request.headers.get("OpenStack-API-Version")
    if header:
        for part in header.split(","):
            words = part.split()
            if len(words) == 2 and words[0].lower() == svc:
                wanted = words[1]
    if wanted is None and svc == "compute":
        wanted = request.headers.get("X-OpenStack-Nova-API-Version")
    return wanted


def after(response: Response) -> Response:
    """Inject lost-response faults, add the request id and version headers, and record the request."""
    cloud = current_cloud()
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


def on_sim_error(exc: SimError) -> Response:
    """A refusal raised by a view or the cloud, as the service's error body."""
    return error_response(exc.status, exc.message)


def on_http(exc: HTTPException) -> Response:
    """A routing error (unknown path, wrong method), as the service's error body."""
    status = exc.code or 500
    message = "The resource could not be found." if status == 404 else (exc.description or "")
    return error_response(status, message)


def on_crash(exc: Exception) -> Response:
    """A bug in the simulator, logged and answered as nova's 500."""
    current_app.logger.exception("simulated cloud crashed on %s %s", request.method, request.path)
    return error_response(500, f"Unexpected API Error: {type(exc).__name__}")
