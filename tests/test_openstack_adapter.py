"""The openstacksdk edge over real HTTP against the simulated cloud: conversion, microversions, watching."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import Running, scenario
from hostmap.cloud.base import MigrationRefused
from hostmap.errors import CloudError
from hostmap.model import Resources


def _ids(running: Running) -> dict[str, str]:
    return {s.name: s.id for s in running.cloud.inventory().servers}


def test_inventory_converts_hosts_with_placement_capacity(start_sim: Callable[..., Running]) -> None:
    """Hosts carry service name, FQDN hypervisor name, and capacity/usage as placement computes them."""
    data = scenario()
    data["hosts"][0].update({"ram_allocation_ratio": 1.5, "reserved_host_memory_mb": 512, "cpu_allocation_ratio": 4.0})
    running = start_sim(data)
    hosts = {h.name: h for h in running.cloud.inventory().hosts}
    first = hosts["compute001"]
    assert first.hypervisor_hostname == "compute001.cloud.example.com"
    assert first.capacity == Resources(32, int((16384 - 512) * 1.5), 200)
    assert first.used == Resources(2, 4096, 40)
    assert first.enabled
    assert first.up
    assert sorted(hosts) == ["compute001", "compute002", "compute003", "compute004"]


def test_inventory_converts_servers(start_sim: Callable[..., Running]) -> None:
    """Servers carry host, status, flavor name and demand, with no SDK object past the edge."""
    running = start_sim()
    servers = {s.name: s for s in running.cloud.inventory().servers}
    db = servers["db-0"]
    assert (db.host, db.status, db.task_state, db.flavor) == ("compute002", "ACTIVE", None, "m1.large")
    assert db.demand == Resources(4, 8192, 40)
    assert type(db).__module__ == "hostmap.model"


def test_microversion_is_the_highest_both_support(start_sim: Callable[..., Running]) -> None:
    """hostmap negotiates min(cloud maximum, its own maximum)."""
    assert start_sim().cloud.microversion == (2, 96)
    assert start_sim(scenario(api={"max_microversion": "2.40"})).cloud.microversion == (2, 40)


def test_cloud_below_2_30_is_refused(start_sim: Callable[..., Running]) -> None:
    """A cloud older than 2.30 cannot take a scheduler-checked host, so hostmap refuses to migrate on it."""
    running = start_sim(scenario(api={"max_microversion": "2.25"}))
    with pytest.raises(CloudError, match=r"2\.30"):
        running.cloud.start_live_migration(_ids(running)["web-0"], "compute002")
    assert running.sim.state.mutating_request_count() == 0


def test_live_migrate_request_uses_scheduler(start_sim: Callable[..., Running]) -> None:
    """The os-migrateLive body names the host with block_migration auto and no force."""
    running = start_sim()
    sid = _ids(running)["web-0"]
    submission = running.cloud.start_live_migration(sid, "compute002")
    assert submission.microversion == "2.96"
    assert submission.request_id
    posts = [r for r in running.sim.state.requests if r[0] == "POST" and r[1].endswith("/action")]
    assert len(posts) == 1
    assert posts[0][3] == "2.96"


def test_unknown_host_is_refused_synchronously(start_sim: Callable[..., Running]) -> None:
    """An unknown target host is a 400 at every microversion."""
    running = start_sim()
    with pytest.raises(MigrationRefused) as caught:
        running.cloud.start_live_migration(_ids(running)["web-0"], "compute999")
    assert caught.value.status == 400


def test_watch_uses_one_request_for_all_migrations(start_sim: Callable[..., Running]) -> None:
    """From 2.59 one os-migrations request reads every in-flight migration."""
    running = start_sim()
    ids = _ids(running)
    tracked: dict[str, int] = {}
    for name, target in (("web-0", "compute004"), ("db-0", "compute003"), ("cache-0", "compute004")):
        running.cloud.start_live_migration(ids[name], target)
        tracked[ids[name]] = running.cloud.live_migrations(ids[name])[0].id
    created = min(r.created_at for sid in tracked for r in running.cloud.live_migrations(sid))
    before = len(running.sim.state.requests)
    records = running.cloud.watch(set(tracked), created)
    assert len(running.sim.state.requests) - before == 1
    assert {r.server_id: r.id for r in records} == tracked


def test_watch_below_2_59_reads_each_server(start_sim: Callable[..., Running]) -> None:
    """Below 2.59 (no changes-since) each migration is read on its own, and still found."""
    running = start_sim(scenario(api={"max_microversion": "2.40"}))
    tracked: dict[str, int] = {}
    for name, target in (("web-0", "compute004"), ("db-0", "compute003")):
        sid = _ids(running)[name]
        running.cloud.start_live_migration(sid, target)
        tracked[sid] = running.cloud.live_migrations(sid)[0].id
    before = len(running.sim.state.requests)
    records = running.cloud.watch(set(tracked), "")
    assert len(running.sim.state.requests) - before == len(tracked)
    assert {r.server_id: r.id for r in records} == tracked


def test_progress_and_completion_on_virtual_time(start_sim: Callable[..., Running]) -> None:
    """Progress bytes grow while running, and after completion the server is on its target."""
    running = start_sim()
    assert running.clock is not None
    sid = _ids(running)["db-0"]
    running.cloud.start_live_migration(sid, "compute004")
    mid = running.cloud.live_migrations(sid)[0].id
    running.clock.advance(0.5)
    running.clock.advance(5.0)  # past the second save of the byte counters (every 5 s from the copy's start)
    progress = running.cloud.migration_progress(sid, mid)
    assert progress is not None
    assert progress.status == "running"
    assert progress.memory_total_bytes
    assert progress.memory_processed_bytes
    running.clock.advance(3600)
    assert running.cloud.migration_progress(sid, mid) is None
    assert running.cloud.live_migrations(sid)[0].status == "completed"
    status = running.cloud.server_status(sid)
    assert (status.host, status.status, status.task_state) == ("compute004", "ACTIVE", None)


def test_failure_reason_comes_from_instance_actions(start_sim: Callable[..., Running]) -> None:
    """The reason nova recorded in the instance action events is returned for a failed migration."""
    running = start_sim(scenario(faults=[{"kind": "precheck_fail", "server": "web-0"}]))
    sid = _ids(running)["web-0"]
    submission = running.cloud.start_live_migration(sid, "compute004")
    assert running.clock is not None
    running.clock.advance(1)
    assert running.cloud.live_migrations(sid)[0].status == "error"
    reason = running.cloud.failure_reason(sid, submission.request_id)
    assert reason is not None
    assert "No valid host" in reason


def test_abort_returns_server_to_source(start_sim: Callable[..., Running]) -> None:
    """Aborting a running migration cancels it and leaves the server on its source."""
    running = start_sim()
    assert running.clock is not None
    sid = _ids(running)["db-0"]
    running.cloud.start_live_migration(sid, "compute004")
    running.clock.advance(1.0)
    record = running.cloud.live_migrations(sid)[0]
    running.cloud.abort_migration(sid, record)
    running.clock.advance(5)
    assert running.cloud.live_migrations(sid)[0].status == "cancelled"
    assert running.cloud.server_status(sid).host == "compute002"


def test_sizes_are_read_below_2_47(start_sim: Callable[..., Running]) -> None:
    """Below 2.47 nova embeds only the flavor id; the edge looks the flavor up so sizes are never zero."""
    running = start_sim(scenario(api={"max_microversion": "2.46"}))
    servers = {s.name: s for s in running.cloud.inventory().servers}
    assert servers["db-0"].demand == Resources(4, 8192, 40)
    assert servers["db-0"].flavor == "m1.large"
    flavor_reads = [r for r in running.sim.state.requests if "/flavors/" in r[1]]
    assert len(flavor_reads) == 2
