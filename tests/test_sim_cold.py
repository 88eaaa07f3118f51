"""The simulated cloud's cold migration (`migrate`, confirmResize, revertResize), as nova 34 has them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import Running, scenario
from hostmap.cloud.base import ColdMigrationUnsupported
from hostmap.errors import CloudError
from hostmap.sim.scenario import parse_scenario
from hostmap.timing import MigrationParams, cold_duration_s


def _cold_scenario(**changes: Any) -> dict[str, Any]:
    """SMALL with web-0 stopped and cache-0 suspended."""
    data = scenario(**changes)
    data["servers"][0]["status"] = "SHUTOFF"
    data["servers"][3]["status"] = "SUSPENDED"
    return data


def _id(running: Running, name: str) -> str:
    return next(s.id for s in running.sim.state.servers.values() if s.name == name)


def _action(running: Running, server_id: str, body: Any, mv: str = "2.96") -> Any:
    conn = running.cloud._conn  # the SDK connection, for raw requests
    return conn.compute.post(f"/servers/{server_id}/action", json=body, microversion=mv, raise_exc=False)


def _server(running: Running, server_id: str) -> dict[str, Any]:
    conn = running.cloud._conn
    server: dict[str, Any] = conn.compute.get(f"/servers/{server_id}", microversion="2.96").json()["server"]
    return server


def _migrations(running: Running, server_id: str) -> list[dict[str, Any]]:
    conn = running.cloud._conn
    found: list[dict[str, Any]] = conn.compute.get(
        f"/os-migrations?instance_uuid={server_id}", microversion="2.96").json()["migrations"]
    return found


def _usage(running: Running, host: str) -> int:
    """MEMORY_MB placement counts on `host`."""
    running.sim.state.advance()
    return running.sim.state.usage(host)[1]


def test_a_stopped_server_goes_to_verify_resize_then_stays_shutoff_when_confirmed(
    start_sim: Callable[..., Running],
) -> None:
    """migrate with a host: RESIZE, then VERIFY_RESIZE on the target; confirmResize leaves it SHUTOFF there."""
    running = start_sim(_cold_scenario())
    assert running.clock is not None
    web0 = _id(running, "web-0")
    assert _action(running, web0, {"migrate": {"host": "compute004"}}).status_code == 202
    view = _server(running, web0)
    assert (view["status"], view["OS-EXT-STS:task_state"]) == ("RESIZE", "resize_prep")
    running.clock.advance(600)
    view = _server(running, web0)
    assert (view["status"], view["OS-EXT-SRV-ATTR:host"], view["OS-EXT-STS:vm_state"]) == (
        "VERIFY_RESIZE", "compute004", "resized")
    assert view["OS-EXT-STS:power_state"] == 4
    assert _action(running, web0, {"confirmResize": None}).status_code == 204
    view = _server(running, web0)
    assert (view["status"], view["OS-EXT-SRV-ATTR:host"], view["OS-EXT-STS:task_state"]) == (
        "SHUTOFF", "compute004", None)
    assert [(m["status"], m["migration_type"]) for m in _migrations(running, web0)] == [("confirmed", "migration")]


def test_the_flavor_is_held_on_both_hosts_until_confirmed(start_sim: Callable[..., Running]) -> None:
    """Placement counts the server on its source (the migration's consumer) and its target until the confirm."""
    running = start_sim(_cold_scenario())
    assert running.clock is not None
    web0 = _id(running, "web-0")
    before = _usage(running, "compute001"), _usage(running, "compute004")
    _action(running, web0, {"migrate": {"host": "compute004"}})
    running.clock.advance(600)
    assert (_usage(running, "compute001"), _usage(running, "compute004")) == (before[0], before[1] + 2048)
    _action(running, web0, {"confirmResize": None})
    assert (_usage(running, "compute001"), _usage(running, "compute004")) == (before[0] - 2048, before[1] + 2048)


def test_revert_puts_the_server_back_on_its_source_stopped(start_sim: Callable[..., Running]) -> None:
    """revertResize: REVERT_RESIZE, then SHUTOFF on the source with the target's claim released."""
    running = start_sim(_cold_scenario())
    assert running.clock is not None
    web0 = _id(running, "web-0")
    _action(running, web0, {"migrate": {"host": "compute004"}})
    running.clock.advance(600)
    assert _action(running, web0, {"revertResize": None}).status_code == 202
    assert _server(running, web0)["status"] == "REVERT_RESIZE"
    running.clock.advance(60)
    view = _server(running, web0)
    assert (view["status"], view["OS-EXT-SRV-ATTR:host"]) == ("SHUTOFF", "compute001")
    assert _usage(running, "compute004") == 0
    assert _migrations(running, web0)[0]["status"] == "reverted"


def test_the_migration_passes_through_novas_statuses(start_sim: Callable[..., Running]) -> None:
    """pre-migrating, migrating, post-migrating, finished, with the server's task states alongside."""
    data = _cold_scenario(migration={"setup_s": 2.0, "stream_gbps": 8.0, "nic_gbps": 10.0})
    running = start_sim(data)
    assert running.clock is not None
    web0 = _id(running, "web-0")
    _action(running, web0, {"migrate": {"host": "compute004"}})
    seen = []
    for _ in range(60):
        view = _server(running, web0)
        pair = (_migrations(running, web0)[0]["status"], view["OS-EXT-STS:task_state"])
        if not seen or seen[-1] != pair:
            seen.append(pair)
        running.clock.advance(0.5)
    assert seen == [("pre-migrating", "resize_prep"), ("migrating", "resize_migrating"),
                    ("post-migrating", "resize_finish"), ("finished", None)]


def test_duration_follows_the_timing_model(start_sim: Callable[..., Running]) -> None:
    """VERIFY_RESIZE comes at 2 x setup_s + disk / rate, as timing.cold_duration_s says (20 GiB at 8 Gbit/s)."""
    data = _cold_scenario(migration={"setup_s": 3.0})
    running = start_sim(data)
    assert running.clock is not None
    web0 = _id(running, "web-0")
    expected = cold_duration_s(20, MigrationParams(setup_s=3.0))
    assert expected == pytest.approx(6 + 20 * 2**30 / 1e9)
    _action(running, web0, {"migrate": {"host": "compute004"}})
    running.clock.advance(expected - 0.01)
    assert _server(running, web0)["status"] == "RESIZE"
    running.clock.advance(0.02)
    assert _server(running, web0)["status"] == "VERIFY_RESIZE"


def test_server_migrations_route_does_not_list_cold_migrations(start_sim: Callable[..., Running]) -> None:
    """GET /servers/{id}/migrations lists live migrations in progress only; os-migrations has the cold one."""
    running = start_sim(_cold_scenario())
    web0 = _id(running, "web-0")
    _action(running, web0, {"migrate": {"host": "compute004"}})
    conn = running.cloud._conn
    listed = conn.compute.get(f"/servers/{web0}/migrations", microversion="2.96").json()["migrations"]
    assert listed == []
    cold = conn.compute.get("/os-migrations?migration_type=migration", microversion="2.96").json()["migrations"]
    live = conn.compute.get("/os-migrations?migration_type=live-migration", microversion="2.96").json()["migrations"]
    assert [m["instance_uuid"] for m in cold] == [web0]
    assert "links" not in cold[0]
    assert live == []


@pytest.mark.parametrize(
    ("name", "body", "status", "fragment"),
    [
        ("web-0", {"migrate": {"host": "compute001"}}, 400, "Cannot migrate to the host where the server exists."),
        ("web-0", {"migrate": {"host": "nowhere"}}, 400, "Compute host nowhere could not be found."),
        ("web-0", {"migrate": {"host": "compute004", "x": 1}}, 400, "Additional properties are not allowed"),
        ("web-0", {"migrate": "compute004"}, 400, "is not of type 'object', 'null'"),
        ("cache-0", {"migrate": {"host": "compute004"}}, 409, "while it is in vm_state suspended"),
        ("web-0", {"confirmResize": None}, 409, "Cannot 'confirmResize' instance"),
        ("web-0", {"revertResize": None}, 409, "Cannot 'revertResize' instance"),
    ],
)
def test_refusals_are_novas(
    start_sim: Callable[..., Running], name: str, body: Any, status: int, fragment: str,
) -> None:
    """What nova's API refuses at once, with its status and words; nothing changes."""
    running = start_sim(_cold_scenario())
    server_id = _id(running, name)
    response = _action(running, server_id, body)
    assert response.status_code == status
    assert fragment in response.text
    assert _migrations(running, server_id) == []


def test_a_second_migrate_while_resizing_is_a_conflict(start_sim: Callable[..., Running]) -> None:
    """A server in RESIZE is refused another migrate (409 task_state) and a live migration."""
    running = start_sim(_cold_scenario())
    web0 = _id(running, "web-0")
    _action(running, web0, {"migrate": {"host": "compute004"}})
    again = _action(running, web0, {"migrate": {"host": "compute003"}})
    assert again.status_code == 409
    assert "task_state resize_prep" in again.text
    live = _action(running, web0, {"os-migrateLive": {"host": "compute003", "block_migration": "auto"}})
    assert live.status_code == 409


def test_an_active_server_may_be_cold_migrated_and_comes_back_active(start_sim: Callable[..., Running]) -> None:
    """Nova cold-migrates a running server too (stopping it for the copy); confirmed, it is ACTIVE."""
    running = start_sim(_cold_scenario())
    assert running.clock is not None
    db0 = _id(running, "db-0")
    assert _action(running, db0, {"migrate": {"host": "compute003"}}).status_code == 202
    running.clock.advance(600)
    assert _server(running, db0)["status"] == "VERIFY_RESIZE"
    _action(running, db0, {"confirmResize": None})
    view = _server(running, db0)
    assert (view["status"], view["OS-EXT-SRV-ATTR:host"], view["OS-EXT-STS:power_state"]) == (
        "ACTIVE", "compute003", 1)


@pytest.mark.parametrize("why", ["disabled", "full"])
def test_the_scheduler_refuses_a_target_it_would_refuse_a_live_migration(
    start_sim: Callable[..., Running], why: str,
) -> None:
    """A disabled or full target: 202, then the migration ends `error`, the server SHUTOFF where it was."""
    data = _cold_scenario()
    if why == "disabled":
        data["hosts"][3]["enabled"] = False
    else:
        data["flavors"].append({"name": "huge", "vcpus": 1, "ram": 15000, "disk": 10})
        data["servers"].append({"name": "filler", "flavor": "huge", "host": "compute004"})
    running = start_sim(data)
    web0 = _id(running, "web-0")
    assert _action(running, web0, {"migrate": {"host": "compute004"}}).status_code == 202
    view = _server(running, web0)
    assert (view["status"], view["OS-EXT-SRV-ATTR:host"], view["OS-EXT-STS:task_state"]) == (
        "SHUTOFF", "compute001", None)
    assert _migrations(running, web0)[0]["status"] == "error"
    conn = running.cloud._conn
    actions = conn.compute.get(f"/servers/{web0}/os-instance-actions", microversion="2.96").json()
    request_id = actions["instanceActions"][0]["request_id"]
    action = conn.compute.get(f"/servers/{web0}/os-instance-actions/{request_id}", microversion="2.96").json()
    events = action["instanceAction"]["events"]
    assert action["instanceAction"]["action"] == "migrate"
    assert events[0]["details"] == "No valid host was found. No valid host found for cold migrate"


def test_before_2_56_the_host_is_ignored_and_the_scheduler_chooses(start_sim: Callable[..., Running]) -> None:
    """Below 2.56 nova takes no host: the server goes where the scheduler puts it (the roomiest other host)."""
    running = start_sim(_cold_scenario())
    assert running.clock is not None
    web0 = _id(running, "web-0")
    assert _action(running, web0, {"migrate": None}, mv="2.55").status_code == 202
    running.clock.advance(600)
    view = _server(running, web0)
    assert view["status"] == "VERIFY_RESIZE"
    assert view["OS-EXT-SRV-ATTR:host"] == "compute004"  # empty, so the most free RAM


def test_confirm_needs_the_source_service_up(start_sim: Callable[..., Running]) -> None:
    """confirmResize answers 409 while the source's nova-compute is down (nova checks before changing anything)."""
    data = _cold_scenario()
    data["faults"] = [{"kind": "service_down", "host": "compute001", "at_s": 100}]
    running = start_sim(data)
    assert running.clock is not None
    web0 = _id(running, "web-0")
    _action(running, web0, {"migrate": {"host": "compute004"}})
    running.clock.advance(600)
    response = _action(running, web0, {"confirmResize": None})
    assert response.status_code == 409
    assert "Service is unavailable at this time." in response.text
    assert _server(running, web0)["status"] == "VERIFY_RESIZE"


def test_scenario_parses() -> None:
    """The scenario these tests use is valid (a stopped and a suspended server)."""
    parsed = parse_scenario(_cold_scenario(), "test")
    assert [s.status for s in parsed.servers] == ["SHUTOFF", "ACTIVE", "ACTIVE", "SUSPENDED"]


def test_the_adapter_cold_migrates_confirms_and_reads_the_record(start_sim: Callable[..., Running]) -> None:
    """OpenStackCloud: start_cold_migration, cold_migrations (type `migration`), confirm_resize, in our types."""
    running = start_sim(_cold_scenario())
    assert running.clock is not None
    web0 = _id(running, "web-0")
    submission = running.cloud.start_cold_migration(web0, "compute004")
    assert (submission.target, submission.microversion) == ("compute004", "2.96")
    assert submission.request_id
    running.clock.advance(600)
    [record] = running.cloud.cold_migrations(web0)
    assert (record.status, record.migration_type, record.terminal, record.dest) == (
        "finished", "migration", False, "compute004")
    assert running.cloud.live_migrations(web0) == []
    running.cloud.confirm_resize(web0)
    [record] = running.cloud.cold_migrations(web0)
    assert (record.status, record.terminal) == ("confirmed", True)
    status = running.cloud.server_status(web0)
    assert (status.host, status.status) == ("compute004", "SHUTOFF")


def test_the_adapter_reports_novas_reason_for_a_refused_cold_migration(start_sim: Callable[..., Running]) -> None:
    """failure_reason(action="migrate") finds the scheduler's refusal in the migrate action's events."""
    data = _cold_scenario()
    data["hosts"][3]["enabled"] = False
    running = start_sim(data)
    web0 = _id(running, "web-0")
    submission = running.cloud.start_cold_migration(web0, "compute004")
    assert running.cloud.cold_migrations(web0)[0].status == "error"
    assert running.cloud.failure_reason(web0, submission.request_id, action="migrate") == (
        "No valid host was found. No valid host found for cold migrate")


def test_the_adapter_refuses_a_cold_migration_below_2_56(start_sim: Callable[..., Running]) -> None:
    """Below 2.56 nova would ignore the host: the adapter sends nothing and says what it needs."""
    running = start_sim(_cold_scenario(api={"max_microversion": "2.55"}))
    web0 = _id(running, "web-0")
    with pytest.raises(ColdMigrationUnsupported) as caught:
        running.cloud.start_cold_migration(web0, "compute004")
    assert (caught.value.found, caught.value.needed) == ("2.55", "2.56")
    assert running.sim.state.mutating_request_count() == 0


def test_the_adapter_says_why_a_confirm_is_refused(start_sim: Callable[..., Running]) -> None:
    """confirm_resize of a server not in VERIFY_RESIZE raises CloudError with nova's 409."""
    running = start_sim(_cold_scenario())
    with pytest.raises(CloudError) as caught:
        running.cloud.confirm_resize(_id(running, "web-0"))
    assert caught.value.status == 409
