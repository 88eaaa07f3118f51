"""The simulated cloud's `PUT /os-services/{id}` (2.53+) and its effect on scheduling, as nova 34 has them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import Running, scenario
from hostmap.cloud.base import MigrationRefused
from hostmap.errors import CloudError


def _put(running: Running, service_id: str, body: Any, mv: str = "2.53") -> Any:
    conn = running.cloud._conn  # the SDK connection, for raw requests
    return conn.compute.put(f"/os-services/{service_id}", json=body, microversion=mv, raise_exc=False)


def _service(running: Running, host: str) -> dict[str, Any]:
    conn = running.cloud._conn
    services = conn.compute.get(f"/os-services?host={host}", microversion="2.53").json()["services"]
    assert len(services) == 1
    service: dict[str, Any] = services[0]
    return service


def _host(running: Running, name: str) -> Any:
    return next(h for h in running.cloud.inventory().hosts if h.name == name)


def test_disable_with_a_reason_then_enable(start_sim: Callable[..., Running]) -> None:
    """A disabled service shows its reason; enabling it again clears the reason."""
    running = start_sim()
    running.cloud.set_service("compute002", enabled=False, reason="hostmap run 7: drain")
    host = _host(running, "compute002")
    assert (host.enabled, host.disabled_reason) == (False, "hostmap run 7: drain")
    running.cloud.set_service("compute002", enabled=True)
    host = _host(running, "compute002")
    assert (host.enabled, host.disabled_reason) == (True, None)


def test_the_answer_is_the_service_record(start_sim: Callable[..., Running]) -> None:
    """PUT answers 200 with the whole service, forced_down included."""
    running = start_sim()
    service_id = _service(running, "compute003")["id"]
    response = _put(running, service_id, {"status": "disabled", "disabled_reason": "maintenance"})
    assert response.status_code == 200
    view = response.json()["service"]
    assert {k: view[k] for k in ("id", "binary", "host", "status", "state", "disabled_reason", "forced_down")} == {
        "id": service_id, "binary": "nova-compute", "host": "compute003", "status": "disabled", "state": "up",
        "disabled_reason": "maintenance", "forced_down": False,
    }


def test_forced_down_counts_the_service_down_until_cleared(start_sim: Callable[..., Running]) -> None:
    """forced_down makes the service down at once; clearing it brings it back up."""
    running = start_sim()
    service_id = _service(running, "compute004")["id"]
    assert _put(running, service_id, {"forced_down": True}).status_code == 200
    assert _service(running, "compute004")["state"] == "down"
    assert _host(running, "compute004").up is False
    assert _put(running, service_id, {"forced_down": False}).status_code == 200
    assert _service(running, "compute004")["state"] == "up"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({}, 400, "No updates were requested"),
        ({"status": "enabled", "disabled_reason": "x"}, 400, "with status 'enabled' is invalid"),
        ({"status": "off"}, 400, "Invalid input for field/attribute status"),
        ({"status": "disabled", "disabled_reason": ""}, 400, "disabled_reason"),
        ({"status": "disabled", "zone": "nova"}, 400, "Additional properties are not allowed"),
        ({"forced_down": "maybe"}, 400, "forced_down"),
    ],
)
def test_bad_updates_are_refused_as_nova_refuses_them(
    start_sim: Callable[..., Running], body: Any, status: int, fragment: str,
) -> None:
    """Each malformed body gets nova's status and message, and the service stays as it was."""
    running = start_sim()
    service_id = _service(running, "compute002")["id"]
    response = _put(running, service_id, body)
    assert response.status_code == status
    assert fragment in response.text
    assert _service(running, "compute002")["status"] == "enabled"


def test_ids_are_uuids_from_2_53(start_sim: Callable[..., Running]) -> None:
    """A non-UUID id is a 400, an unknown UUID a 404, and below 2.53 the route is an unknown action."""
    running = start_sim()
    assert _put(running, "12", {"status": "disabled"}).status_code == 400
    missing = _put(running, "00000000-0000-0000-0000-000000000000", {"status": "disabled"})
    assert missing.status_code == 404
    assert "could not be found" in missing.text
    service_id = _service(running, "compute002")["id"]
    assert _put(running, service_id, {"status": "disabled"}, mv="2.52").status_code == 404


def test_the_scheduler_sends_nothing_to_a_disabled_host(start_sim: Callable[..., Running]) -> None:
    """A live migration to a host whose service was just disabled fails as nova's scheduler fails it."""
    running = start_sim(scenario())
    running.cloud.set_service("compute004", enabled=False, reason="maintenance")
    web0 = running.sim.scenario.server("web-0").id
    try:
        running.cloud.start_live_migration(web0, "compute004")
    except MigrationRefused:
        return  # refused up front
    assert running.clock is not None
    for _ in range(100):
        running.clock.advance(1.0)
        records = running.cloud.live_migrations(web0)
        if records and records[0].terminal:
            break
    assert records[0].status in ("error", "failed")
    assert running.cloud.server_status(web0).host == "compute001"


def test_hostmap_refuses_to_change_services_below_2_53(start_sim: Callable[..., Running]) -> None:
    """On a cloud whose compute API stops before 2.53, set_service says what it needs, and changes nothing."""
    data = scenario()
    data["api"] = {"max_microversion": "2.52"}
    running = start_sim(data)
    with pytest.raises(CloudError, match=r"needs 2\.53"):
        running.cloud.set_service("compute002", enabled=False, reason="x")
