"""The simulated cloud over real HTTP, driven through openstacksdk."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import openstack
import pytest
from keystoneauth1 import exceptions as ks_exceptions

from hostmap.clock import VirtualClock
from hostmap.errors import InputError
from hostmap.sim.scenario import parse_scenario
from hostmap.sim.server import SimServer

Conn = Any



def base_scenario(**changes: Any) -> dict[str, Any]:
    """Four hosts, two flavors, six servers in two projects, an anti-affinity group."""
    data: dict[str, Any] = {
        "hosts": [
            {"name": f"compute00{i}", "hypervisor_hostname": f"compute00{i}.cloud.example.com",
             "vcpus": 16, "memory_mb": 32768, "disk_gb": 400}
            for i in range(1, 5)
        ],
        "flavors": [
            {"name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20},
            {"name": "m1.large", "vcpus": 4, "ram": 8192, "disk": 80},
        ],
        "servers": [
            {"name": "web-0", "flavor": "m1.small", "host": "compute001"},
            {"name": "web-1", "flavor": "m1.small", "host": "compute002"},
            {"name": "db-0", "flavor": "m1.large", "host": "compute001", "project": "other"},
            {"name": "db-1", "flavor": "m1.large", "host": "compute002", "project": "other"},
            {"name": "cache-0", "flavor": "m1.small", "host": "compute003"},
            {"name": "stopped-0", "flavor": "m1.small", "host": "compute003", "status": "SHUTOFF"},
        ],
        "server_groups": [{"name": "web", "policy": "anti-affinity", "members": ["web-0", "web-1"]}],
        "migration": {"setup_s": 2},
    }
    data.update(changes)
    return data


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., tuple[SimServer, Conn, VirtualClock]]]:
    """Start simulated clouds on a virtual clock with an SDK connection; all are stopped afterwards."""
    started: list[tuple[SimServer, Conn]] = []

    def start(data: dict[str, Any] | None = None) -> tuple[SimServer, Conn, VirtualClock]:
        clock = VirtualClock()
        sim = SimServer(parse_scenario(data or base_scenario(), "test"), clock=clock).start()
        conn = openstack.connect(load_envvars=False, load_yaml_config=False, **sim.connect_kwargs())
        started.append((sim, conn))
        return sim, conn, clock

    yield start
    for sim, conn in started:
        conn.close()
        sim.stop()


def server_id(sim: SimServer, name: str) -> str:
    """The id the scenario gave server `name`."""
    return sim.scenario.server(name).id


def migrate(conn: Conn, sid: str, host: str | None, mv: str, **extra: Any) -> Any:
    """POST os-migrateLive at microversion `mv` and return the raw response."""
    body: dict[str, Any] = {"host": host, "block_migration": "auto", **extra}
    return conn.compute.post(f"/servers/{sid}/action", json={"os-migrateLive": body}, microversion=mv)


def test_auth_and_catalog(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """A password token carries a catalog with compute, placement and identity endpoints."""
    sim, conn, _ = sim_factory()
    conn.authorize()
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    assert {"compute", "placement", "identity"} <= set(catalog)
    assert conn.compute.get_endpoint().rstrip("/").endswith("/compute/v2.1")
    assert sim.auth_url.endswith("/identity/v3")
    env = sim.env()
    assert env["OS_PASSWORD"] == sim.state.password
    assert env["OS_AUTH_URL"] == sim.auth_url


def test_wrong_password_is_refused(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """A wrong password gets keystone's 401."""
    sim, _, _ = sim_factory()
    kwargs = sim.connect_kwargs()
    kwargs["auth"]["password"] = "not-the-password"
    conn = openstack.connect(load_envvars=False, load_yaml_config=False, **kwargs)
    try:
        with pytest.raises((ks_exceptions.Unauthorized, openstack.exceptions.SDKException)):
            conn.authorize()
    finally:
        conn.close()
    assert any(path.endswith("/auth/tokens") and status == 401 for _, path, status, _ in sim.state.requests)


def test_nova_without_token_is_401(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """A nova request without a token is refused with 401 and request ids are set."""
    sim, conn, _ = sim_factory()
    session = conn.session.session  # the underlying requests session
    response = session.get(f"{sim.base_url}/compute/v2.1/servers")
    assert response.status_code == 401
    assert response.headers["x-openstack-request-id"].startswith("req-")
    response.close()


def test_server_paging_across_projects(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """Listing all projects with a page size of 2 follows servers_links to every server exactly once."""
    sim, conn, _ = sim_factory(base_scenario(api={"page_size": 2}))
    names = [s.name for s in conn.compute.servers(all_projects=True)]
    assert sorted(names) == sorted(s.name for s in sim.scenario.servers)
    pages = [r for r in sim.state.requests if r[0] == "GET" and r[1] == "/compute/v2.1/servers/detail"]
    assert len(pages) >= 3
    own = {s.name for s in conn.compute.servers()}
    assert own == {"web-0", "web-1", "cache-0", "stopped-0"}


def test_server_filters_and_fields(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """Name (regex) and host filters work and the flavor field follows microversion 2.47."""
    sim, conn, _ = sim_factory()
    found = conn.compute.get("/servers/detail?all_tenants=1&name=^db-&host=compute001", microversion="2.46").json()
    assert [s["name"] for s in found["servers"]] == ["db-0"]
    server = found["servers"][0]
    assert server["flavor"]["id"] == "2"
    assert server["OS-EXT-SRV-ATTR:hypervisor_hostname"] == "compute001.cloud.example.com"
    new = conn.compute.get(f"/servers/{server['id']}", microversion="2.47").json()["server"]
    assert new["flavor"]["original_name"] == "m1.large"
    assert new["flavor"]["ram"] == 8192
    assert new["status"] == "ACTIVE"
    assert new["OS-EXT-STS:task_state"] is None
    assert sim.state.servers[server["id"]].name == "db-0"


def test_microversion_negotiation(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """Requested microversions are echoed, latest is the maximum and out-of-range ones get 406."""
    _, conn, _ = sim_factory(base_scenario(api={"max_microversion": "2.33"}))
    response = conn.compute.get("/flavors/detail", microversion="2.20")
    assert response.headers["OpenStack-API-Version"] == "compute 2.20"
    assert response.headers["X-OpenStack-Nova-API-Version"] == "2.20"
    assert "x-compute-request-id" in response.headers
    assert conn.compute.get("/flavors", microversion="latest").headers["X-OpenStack-Nova-API-Version"] == "2.33"
    assert conn.compute.get("/flavors", microversion="2.34").status_code == 406


def test_hypervisors_services_and_placement(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """Hypervisor, service and placement figures agree with the scenario."""
    sim, conn, _ = sim_factory(
        base_scenario(hosts=[*base_scenario()["hosts"][:3], {
            "name": "compute004", "vcpus": 16, "memory_mb": 32768, "disk_gb": 400,
            "enabled": False, "disabled_reason": "maintenance"}])
    )
    hypervisors = conn.compute.get("/os-hypervisors/detail", microversion="2.53").json()["hypervisors"]
    by_name = {h["hypervisor_hostname"]: h for h in hypervisors}
    first = by_name["compute001.cloud.example.com"]
    assert first["service"]["host"] == "compute001"
    assert first["memory_mb_used"] == 512 + 2048 + 8192
    assert first["running_vms"] == 2
    assert by_name["compute004.localdomain"]["status"] == "disabled"
    assert "vcpus" not in conn.compute.get("/os-hypervisors/detail", microversion="2.88").json()["hypervisors"][0]
    services = {s.host: s for s in conn.compute.services(binary="nova-compute")}
    assert services["compute004"].status == "disabled"
    assert services["compute004"].disabled_reason == "maintenance"
    provider = next(iter(conn.placement.resource_providers(name="compute001.cloud.example.com")))
    assert provider.id == first["id"]
    inventory = {i.resource_class: i for i in conn.placement.resource_provider_inventories(provider)}
    assert inventory["MEMORY_MB"].total == 32768
    assert inventory["MEMORY_MB"].reserved == 512
    assert inventory["MEMORY_MB"].allocation_ratio == 1.5
    usages = conn.placement.get(f"/resource_providers/{provider.id}/usages").json()["usages"]
    assert usages == {"VCPU": 5, "MEMORY_MB": 10240, "DISK_GB": 100}
    allocations = conn.placement.get(f"/allocations/{server_id(sim, 'web-0')}", microversion="1.28").json()
    assert allocations["allocations"][provider.id]["resources"]["MEMORY_MB"] == 2048


def test_live_migration_lifecycle(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """A live migration goes queued, preparing, running, completed with progress and claims on both hosts."""
    sim, conn, clock = sim_factory()
    web, db = server_id(sim, "web-0"), server_id(sim, "db-0")
    rp = {h.name: h.uuid for h in sim.state.hosts.values()}

    def usage(host: str) -> int:
        return int(conn.placement.get(f"/resource_providers/{rp[host]}/usages").json()["usages"]["MEMORY_MB"])

    assert migrate(conn, db, "compute003", "2.96").status_code == 202
    assert migrate(conn, web, "compute004", "2.96").status_code == 202
    queued = conn.compute.get(f"/servers/{web}/migrations", microversion="2.80").json()["migrations"]
    assert [m["status"] for m in queued] == ["queued"]
    first = conn.compute.get(f"/servers/{db}/migrations", microversion="2.80").json()["migrations"][0]
    assert first["status"] == "preparing"
    assert usage("compute001") == 2048 + 8192
    assert usage("compute003") == 2048 + 2048 + 8192
    server = conn.compute.get_server(db)
    assert server.status == "MIGRATING"
    assert server.task_state == "migrating"
    path = f"/servers/{db}/migrations/{first['id']}"
    preparing = conn.compute.get(path, microversion="2.80").json()["migration"]
    assert preparing["memory_processed_bytes"] is None  # nothing saved before the copy starts, as in nova
    clock.advance(2.5)
    running = conn.compute.get(path, microversion="2.80").json()["migration"]
    assert running["status"] == "running"
    # The counters libvirt's monitor saved when the copy began (2 s), not those of 2.5 s: saved every 5 s.
    total = round(0.7 * 8192 * 2**20)
    assert (running["memory_total_bytes"], running["memory_processed_bytes"]) == (total, 0)
    assert running["memory_remaining_bytes"] == total
    clock.advance(2.0)
    assert conn.compute.get(path, microversion="2.80").json()["migration"] == running
    clock.advance(3.0)  # 7.5 s: the save at 7 s shows 5 s of copying at 8 Gbit/s
    later = conn.compute.get(path, microversion="2.80").json()["migration"]
    assert later["memory_processed_bytes"] == round(5.0 * 8e9 / 8)
    assert 0 < later["memory_remaining_bytes"] < total
    assert later["updated_at"] > running["updated_at"]
    clock.advance(3600)
    server = conn.compute.get_server(db)
    assert (server.status, server.compute_host, server.hypervisor_hostname) == (
        "ACTIVE", "compute003", "compute003.cloud.example.com")
    assert server.task_state is None
    assert usage("compute001") == 0
    assert usage("compute003") == 2048 + 2048 + 8192
    statuses = {m.server_id: m.status for m in conn.compute.migrations()}
    assert statuses == {db: "completed", web: "completed"}
    actions = list(conn.compute.server_actions(db))
    assert [a.action for a in actions] == ["live-migration"]
    events = {e.event: e.result for e in conn.compute.get_server_action(actions[0].request_id, db).events}
    assert events["compute_live_migration"] == "Success"
    assert sim.state.mutating_request_count() == 2


def test_precheck_failure_sync_below_234(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """Below 2.34 a refused scheduler pre-check is a synchronous 400 naming no valid host."""
    sim, conn, _ = sim_factory(base_scenario(api={"max_microversion": "2.33"}))
    web = server_id(sim, "web-0")
    response = migrate(conn, web, "compute002", "2.33")
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"].startswith("No valid host was found.")
    assert conn.compute.get_server(web).status == "ACTIVE"


def test_precheck_failure_async_from_234(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """From 2.34 a refused pre-check is a 202, a migration in error and a failed conductor event with details."""
    data = base_scenario(faults=[{"kind": "precheck_fail", "server": "cache-0", "reason": "No valid host was found. "
                                  "Host is being drained"}])
    sim, conn, _ = sim_factory(data)
    cache = server_id(sim, "cache-0")
    response = migrate(conn, cache, "compute004", "2.96")
    assert response.status_code == 202
    request_id = response.headers["x-openstack-request-id"]
    migrations = conn.compute.get(f"/os-migrations?instance_uuid={cache}", microversion="2.96").json()
    assert [m["status"] for m in migrations["migrations"]] == ["error"]
    action = conn.compute.get(f"/servers/{cache}/os-instance-actions/{request_id}", microversion="2.96").json()
    event = action["instanceAction"]["events"][0]
    assert event["event"] == "conductor_live_migrate_instance"
    assert event["result"] == "Error"
    assert "Host is being drained" in event["details"]
    assert event["traceback"]
    assert conn.compute.get_server(cache).status == "ACTIVE"


def test_unknown_host_and_already_migrating(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """An unknown host is a 400 at every version; a second migration of a migrating server is a 409."""
    sim, conn, _ = sim_factory()
    cache = server_id(sim, "cache-0")
    for mv in ("2.1", "2.30", "2.96"):
        extra = {"disk_over_commit": False, "block_migration": False} if mv == "2.1" else {}
        response = migrate(conn, cache, "nosuchhost", mv, **extra)
        assert response.status_code == 400, mv
        assert response.json()["badRequest"]["message"] == "Compute host nosuchhost could not be found."
    assert migrate(conn, cache, "compute004", "2.96").status_code == 202
    again = migrate(conn, cache, "compute001", "2.96")
    assert again.status_code == 409
    assert "task_state migrating" in again.json()["conflictingRequest"]["message"]
    stopped = migrate(conn, server_id(sim, "stopped-0"), "compute004", "2.96")
    assert stopped.status_code == 409
    assert migrate(conn, "0" * 32, "compute004", "2.96").status_code == 404
    assert migrate(conn, cache, "compute004", "2.96", force=True).status_code == 400  # force removed in 2.68


def test_anti_affinity_refusal_and_force(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """Anti-affinity refuses a scheduled move; force (2.30) skips the scheduler and the move goes through."""
    sim, conn, clock = sim_factory()
    web = server_id(sim, "web-0")
    refused = migrate(conn, web, "compute002", "2.33")
    assert refused.status_code == 400
    # nova 34's exact text when placement offered the host and a scheduler filter refused it
    assert refused.json()["badRequest"]["message"] == "No valid host was found. There are not enough hosts available."
    assert migrate(conn, web, "compute002", "2.30", force=True).status_code == 202
    clock.advance(600)
    assert conn.compute.get_server(web).compute_host == "compute002"


def test_affinity_lets_a_member_join_another_member_only(
    sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]],
) -> None:
    """As ServerGroupAffinityFilter: a member may go only to a host of the group, its own host included."""
    data = base_scenario(server_groups=[
        {"name": "db", "policy": "affinity", "members": ["db-0", "db-1"]},
        {"name": "lone", "policy": "affinity", "members": ["cache-0"]},
    ])
    sim, conn, clock = sim_factory(data)
    assert migrate(conn, server_id(sim, "cache-0"), "compute004", "2.33").status_code == 400  # only its own host
    assert migrate(conn, server_id(sim, "db-0"), "compute003", "2.33").status_code == 400
    assert migrate(conn, server_id(sim, "db-0"), "compute002", "2.33").status_code == 202  # joins db-1
    clock.advance(600)
    assert conn.compute.get_server(server_id(sim, "db-0")).compute_host == "compute002"


def test_anti_affinity_rule_max_server_per_host(
    sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]],
) -> None:
    """The max_server_per_host rule lets that many members share a host, and shows from 2.64 on."""
    data = base_scenario(server_groups=[
        {"name": "web", "policy": "anti-affinity", "members": ["web-0", "web-1", "cache-0"],
         "rules": {"max_server_per_host": 2}},
    ])
    sim, conn, clock = sim_factory(data)
    group = conn.compute.get("/os-server-groups?all_projects=True", microversion="2.64").json()["server_groups"][0]
    assert group["rules"] == {"max_server_per_host": 2}
    assert migrate(conn, server_id(sim, "web-0"), "compute002", "2.33").status_code == 202
    clock.advance(600)
    assert migrate(conn, server_id(sim, "cache-0"), "compute002", "2.33").status_code == 400  # a third member


def test_group_rules_only_with_anti_affinity() -> None:
    """A scenario giving rules to an affinity group is refused, as nova refuses to create one."""
    data = base_scenario(server_groups=[{"name": "db", "policy": "affinity", "members": ["db-0"],
                                         "rules": {"max_server_per_host": 2}}])
    with pytest.raises(InputError, match="only with the anti-affinity policy"):
        parse_scenario(data, "test")


def test_abort(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """Running migrations abort from 2.24; queued ones only from 2.65 (400 before, as nova)."""
    sim, conn, clock = sim_factory()
    db, web = server_id(sim, "db-0"), server_id(sim, "web-0")
    migrate(conn, db, "compute003", "2.96")
    migrate(conn, web, "compute004", "2.96")
    clock.advance(2.5)
    sim.state.advance()
    db_mig = sim.state.migrations[0]
    web_mig = sim.state.migrations[1]
    assert (db_mig.status, web_mig.status) == ("running", "queued")
    refused = conn.compute.delete(f"/servers/{web}/migrations/{web_mig.id}", microversion="2.64")
    assert refused.status_code == 400
    assert conn.compute.delete(f"/servers/{db}/migrations/{db_mig.id}", microversion="2.24").status_code == 202
    assert db_mig.status == "cancelled"
    server = conn.compute.get_server(db)
    assert (server.status, server.compute_host) == ("ACTIVE", "compute001")
    dest = sim.state.hosts["compute003"].uuid
    assert conn.placement.get(f"/resource_providers/{dest}/usages").json()["usages"]["MEMORY_MB"] == 4096
    # The web migration started preparing when the db one was aborted; queue another behind it.
    cache = server_id(sim, "cache-0")
    migrate(conn, cache, "compute004", "2.96")
    assert conn.compute.delete(f"/servers/{web}/migrations/{web_mig.id}", microversion="2.65").status_code == 202
    assert web_mig.status == "cancelled"
    done = conn.compute.delete(f"/servers/{db}/migrations/{db_mig.id}", microversion="2.65")
    assert done.status_code in (400, 409)


def test_force_complete(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """force_complete pauses the guest and finishes the copy: the server is on its target once what was left is
    sent at the stream's rate."""
    data = base_scenario(faults=[{"kind": "never_converge", "server": "db-0"}])
    sim, conn, clock = sim_factory(data)
    db = server_id(sim, "db-0")
    migrate(conn, db, "compute003", "2.96")
    clock.advance(10)
    sim.state.advance()
    mig = sim.state.migrations[0]
    assert mig.status == "running"
    response = conn.compute.post(
        f"/servers/{db}/migrations/{mig.id}/action", json={"force_complete": None}, microversion="2.22"
    )
    assert response.status_code == 202
    assert mig.status == "running"
    assert mig.paused_at_s is not None
    clock.advance(mig.left_bytes / mig.rate_bps + 1)
    assert conn.compute.get_server(db).compute_host == "compute003"
    assert mig.status == "completed"
    assert mig.paused_s > 0


def test_force_complete_refusals_are_novas(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """As nova 34 answered the real-Nova probe: an unknown migration id is a 400 for force_complete (404 for abort),
    and a server with no task state gets nova's 409 that names no state."""
    data = base_scenario(faults=[{"kind": "never_converge", "server": "db-0"}])
    sim, conn, clock = sim_factory(data)
    db, web = server_id(sim, "db-0"), server_id(sim, "web-0")
    migrate(conn, db, "compute003", "2.96")
    clock.advance(10)
    sim.state.advance()
    mig = sim.state.migrations[0]
    assert mig.status == "running"
    body = {"force_complete": None}
    unknown = conn.compute.post(f"/servers/{db}/migrations/{mig.id + 1000}/action", json=body, microversion="2.22")
    assert (unknown.status_code, unknown.json()["badRequest"]["message"]) == (
        400, f"Migration {mig.id + 1000} not found for instance {db}")
    aborted = conn.compute.delete(f"/servers/{db}/migrations/{mig.id + 1000}", microversion="2.24")
    assert (aborted.status_code, aborted.json()["itemNotFound"]["message"]) == (
        404, f"Migration {mig.id + 1000} not found for instance {db}")
    idle = conn.compute.post(f"/servers/{web}/migrations/{mig.id}/action", json=body, microversion="2.22")
    assert (idle.status_code, idle.json()["conflictingRequest"]["message"]) == (
        409, f"Instance {web} is in an invalid state for 'force_complete'")


def test_token_expiry_reauth(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """An expired token (sim clock) gets a 401 and keystoneauth re-authenticates transparently."""
    sim, conn, clock = sim_factory(base_scenario(auth={"token_ttl_s": 600}))
    assert len(list(conn.compute.flavors())) == 2
    clock.advance(1200)
    assert len(list(conn.compute.flavors())) == 2
    statuses = [(path, status) for _, path, status, _ in sim.state.requests]
    assert ("/compute/v2.1/flavors/detail", 401) in statuses
    assert sum(1 for path, status in statuses if path.endswith("/auth/tokens") and status == 201) >= 2


def test_api_error_and_slow_faults(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """api_error injects a status a bounded number of times; slow advances the virtual clock."""
    data = base_scenario(faults=[
        {"kind": "api_error", "method": "GET", "path_regex": "/os-hypervisors", "status": 503, "count": 1},
        {"kind": "slow", "path_regex": "/flavors", "seconds": 30},
    ])
    _, conn, clock = sim_factory(data)
    first = conn.compute.get("/os-hypervisors", microversion="2.53")
    assert first.status_code == 503
    assert first.json()["serviceUnavailable"]["code"] == 503
    assert conn.compute.get("/os-hypervisors", microversion="2.53").status_code == 200
    before = clock.now()
    conn.compute.get("/flavors")
    assert clock.now() - before == pytest.approx(30)


def test_scheduled_service_faults(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """service_down, service_disabled and capacity_taken happen at their sim time."""
    data = base_scenario(faults=[
        {"kind": "service_down", "host": "compute004", "at_s": 10},
        {"kind": "service_disabled", "host": "compute003", "at_s": 20, "reason": "drain"},
        {"kind": "capacity_taken", "host": "compute002", "at_s": 30, "memory_mb": 4096},
    ])
    sim, conn, clock = sim_factory(data)
    states = {s.host: (s.state, s.status) for s in conn.compute.services()}
    assert states["compute004"] == ("up", "enabled")
    clock.advance(25)
    states = {s.host: (s.state, s.status) for s in conn.compute.services()}
    assert states["compute004"] == ("down", "enabled")
    assert states["compute003"] == ("up", "disabled")
    rp = sim.state.hosts["compute002"].uuid
    assert conn.placement.get(f"/resource_providers/{rp}/usages").json()["usages"]["MEMORY_MB"] == 10240
    clock.advance(10)
    assert conn.placement.get(f"/resource_providers/{rp}/usages").json()["usages"]["MEMORY_MB"] == 14336
    refused = migrate(conn, server_id(sim, "cache-0"), "compute004", "2.33")
    assert refused.status_code == 400


def test_server_groups_views(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """Server groups show policies below 2.64 and policy from 2.64, with members."""
    sim, conn, _ = sim_factory()
    old = conn.compute.get("/os-server-groups?all_projects=True", microversion="2.63").json()["server_groups"][0]
    new = conn.compute.get("/os-server-groups?all_projects=True", microversion="2.64").json()["server_groups"][0]
    assert old["policies"] == ["anti-affinity"]
    assert new["policy"] == "anti-affinity"
    assert set(new["members"]) == {server_id(sim, "web-0"), server_id(sim, "web-1")}


def test_stop_leaves_no_threads() -> None:
    """Stopping the server joins its threads even with a keep-alive client connection open."""
    before = threading.active_count()
    with SimServer(parse_scenario(base_scenario(), "test")) as sim:
        conn = openstack.connect(load_envvars=False, load_yaml_config=False, **sim.connect_kwargs())
        assert len(conn.compute.get("/flavors").json()["flavors"]) == 2
        conn.close()
        assert sim.state.password not in json.dumps(sim.state.requests)
    assert threading.active_count() == before


def test_sdk_server_migration_proxies(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """openstacksdk's own live-migrate, server-migration, force-complete and abort calls work unchanged."""
    sim, conn, clock = sim_factory()
    db, cache = conn.compute.get_server(server_id(sim, "db-0")), conn.compute.get_server(server_id(sim, "cache-0"))
    conn.compute.live_migrate_server(db, host="compute004", block_migration="auto")
    clock.advance(3)
    migration = next(iter(conn.compute.server_migrations(db)))
    assert conn.compute.get_server_migration(migration, db).status == "running"
    conn.compute.force_complete_server_migration(migration, db)
    clock.advance(30)  # the paused guest's remaining memory is copied
    assert conn.compute.get_server(db.id).compute_host == "compute004"
    conn.compute.live_migrate_server(cache, host="compute004", block_migration="auto")
    clock.advance(3)
    conn.compute.abort_server_migration(next(iter(conn.compute.server_migrations(cache))), cache)
    assert conn.compute.get_server(cache.id).compute_host == "compute003"
    assert sorted(m.status for m in conn.compute.migrations()) == ["cancelled", "completed"]


@pytest.mark.parametrize(("sync_s", "refused_at_once"), [(120.0, True), (0.0, False)])
def test_scheduler_counts_a_departed_member_until_the_next_instance_sync(
    sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]], sync_s: float, refused_at_once: bool
) -> None:
    """As nova's scheduler: a member that left a host counts there until the next instance sync (0: never)."""
    data = base_scenario(migration={"setup_s": 2, "instance_sync_s": sync_s})
    sim, conn, clock = sim_factory(data)
    web0, web1 = server_id(sim, "web-0"), server_id(sim, "web-1")
    assert migrate(conn, web1, "compute003", "2.96").status_code == 202
    clock.advance(30)  # web-1 has left compute002; no sync since (the first is at 120 s)
    assert conn.compute.get_server(web1).compute_host == "compute003"
    migrate(conn, web0, "compute002", "2.96")
    sim.state.advance()
    first = [m for m in sim.state.migrations if m.server_id == web0][-1]
    if refused_at_once:
        assert first.status == "error"
        assert first.error == "No valid host was found. There are not enough hosts available."
        clock.advance(100)  # past the sync at 120 s
        assert migrate(conn, web0, "compute002", "2.96").status_code == 202
        sim.state.advance()
        assert [m for m in sim.state.migrations if m.server_id == web0][-1].status != "error"
    else:
        assert first.status != "error"


def test_source_down_and_same_host_refusals(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """As nova's conductor: a down source refuses every live migration off it; the current host as target goes
    through the scheduler (no valid host) unless forced (then nova names the current host)."""
    data = base_scenario()
    data["hosts"][0]["up"] = False
    sim, conn, _ = sim_factory(data)
    web, cache = server_id(sim, "web-0"), server_id(sim, "cache-0")
    sync = migrate(conn, web, "compute004", "2.30")
    assert sync.status_code == 400
    assert sync.json()["badRequest"]["message"] == "Compute service of compute001 is unavailable at this time."
    assert migrate(conn, web, "compute004", "2.96").status_code == 202
    assert sim.state.migrations[-1].status == "error"
    assert sim.state.migrations[-1].error == "Compute service of compute001 is unavailable at this time."
    assert migrate(conn, cache, "compute003", "2.96").status_code == 202
    assert sim.state.migrations[-1].error.startswith("No valid host was found.")
    forced = migrate(conn, cache, "compute003", "2.30", force=True)
    assert forced.status_code == 400
    assert "to current host (compute003)" in forced.json()["badRequest"]["message"]


def test_abort_checks_state_first_and_takes_integer_ids(
    sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]],
) -> None:
    """An abort on a server that is not migrating is 409 before any lookup; a migration is found by its integer id
    only; the abort is recorded as nova's live_migration_cancel action, events listed newest first."""
    sim, conn, clock = sim_factory()
    db = server_id(sim, "db-0")
    idle = conn.compute.delete(f"/servers/{db}/migrations/12345", microversion="2.65")
    assert idle.status_code == 409
    migrate(conn, db, "compute003", "2.96")
    clock.advance(2.5)
    sim.state.advance()
    m = sim.state.migrations[0]
    assert conn.compute.delete(f"/servers/{db}/migrations/{m.uuid}", microversion="2.65").status_code == 404
    assert conn.compute.delete(f"/servers/{db}/migrations/{m.id}", microversion="2.65").status_code == 202
    actions = {a.action: a.request_id for a in conn.compute.server_actions(db)}
    assert set(actions) == {"live-migration", "live_migration_cancel"}
    detail = conn.compute.get(f"/servers/{db}/os-instance-actions/{actions['live-migration']}",
                              microversion="2.96").json()["instanceAction"]
    events = [e["event"] for e in detail["events"]]
    assert events[0] == "compute_rollback_live_migration_at_destination"
    assert events[-1] == "conductor_live_migrate_instance"


def test_request_validation_matches_nova(sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]]) -> None:
    """Only nova's spellings of a boolean pass its schema, and an unknown os-migrations marker is a 400."""
    sim, conn, _ = sim_factory()
    cache = server_id(sim, "cache-0")
    body = {"disk_over_commit": False}
    assert migrate(conn, cache, "compute004", "2.1", block_migration="y", **body).status_code == 400
    assert migrate(conn, cache, "compute004", "2.1", block_migration="tRUe", **body).status_code == 400
    assert migrate(conn, cache, "compute004", "2.1", block_migration="False", **body).status_code == 202
    missing = conn.compute.get("/os-migrations?marker=" + "0" * 32, microversion="2.59")
    assert missing.status_code == 400


def test_os_migrations_filters_as_nova_applies_them(
    sim_factory: Callable[..., tuple[SimServer, Conn, VirtualClock]],
) -> None:
    """os-migrations filters as nova 34 does: `host` wins over `source_compute`, a repeated filter counts by its last
    value, changes-since keeps records updated at or after it, and from 2.59 an unknown parameter is a 400."""
    sim, conn, clock = sim_factory()
    web, db = server_id(sim, "web-0"), server_id(sim, "db-0")
    assert migrate(conn, db, "compute003", "2.96").status_code == 202
    clock.advance(3600)
    assert migrate(conn, web, "compute004", "2.96").status_code == 202

    def listed(query: str, mv: str = "2.80") -> set[str]:
        response = conn.compute.get(f"/os-migrations?{query}", microversion=mv)
        assert response.status_code == 200, response.text
        return {m["instance_uuid"] for m in response.json()["migrations"]}

    assert listed("host=compute003&source_compute=compute999") == {db}
    web_status = conn.compute.get(f"/servers/{web}/migrations", microversion="2.80").json()["migrations"][0]["status"]
    assert listed(f"status=completed&status={web_status}") == {web}
    db_record = conn.compute.get(f"/os-migrations?instance_uuid={db}", microversion="2.80").json()["migrations"][0]
    assert listed(f"changes-since={db_record['updated_at']}") == {db, web}
    assert listed("changes-since=" + sim.state.timestamp(3000.0)) == {web}
    assert listed("changes-since=" + sim.state.timestamp(3000.0), mv="2.58") == {db, web}  # ignored before 2.59
    assert conn.compute.get("/os-migrations?node=x", microversion="2.59").status_code == 400
    assert listed("node=x", mv="2.58") == {db, web}
    twice = "changes-since=" + sim.state.timestamp(1.0) + "&changes-since=" + sim.state.timestamp(2.0)
    assert conn.compute.get(f"/os-migrations?{twice}", microversion="2.80").status_code == 400
