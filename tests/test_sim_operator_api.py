"""The simulated cloud's answers to what operators ask nova during maintenance, as nova 34 gives them: the
control-plane services, hypervisor show, host aggregates and os-hosts (the openstack client's side is in
tests/test_osc_plugin.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import Running, scenario

ZONED = scenario(aggregates=[{"name": "ssd", "hosts": ["compute001"]},
                             {"name": "edge", "hosts": ["compute004"], "availability_zone": "edge"}])


def _get(running: Running, path: str, mv: str = "2.96") -> Any:
    return running.cloud._conn.compute.get(path, microversion=mv, raise_exc=False)


def test_services_list_the_conductor_and_the_scheduler_in_the_internal_zone(start_sim: Callable[..., Running]) -> None:
    """os-services lists the computes then the conductor and scheduler; binary and host filter them all."""
    running = start_sim()
    services = _get(running, "/os-services").json()["services"]
    assert [(s["binary"], s["host"], s["zone"]) for s in services][-2:] == [
        ("nova-conductor", "controller", "internal"), ("nova-scheduler", "controller", "internal")]
    assert [s["binary"] for s in _get(running, "/os-services?binary=nova-scheduler").json()["services"]] == \
        ["nova-scheduler"]
    assert len(_get(running, "/os-services?host=controller").json()["services"]) == 2
    assert len(_get(running, "/os-services?binary=nova-compute").json()["services"]) == 4
    old = [s["id"] for s in _get(running, "/os-services", "2.52").json()["services"]]
    assert old == [1, 2, 3, 4, 5, 6]


def test_only_compute_services_can_be_updated(start_sim: Callable[..., Running]) -> None:
    """PUT on the scheduler's service answers 400 as nova does."""
    running = start_sim()
    (scheduler,) = _get(running, "/os-services?binary=nova-scheduler").json()["services"]
    answer = running.cloud._conn.compute.put(f"/os-services/{scheduler['id']}", json={"status": "disabled"},
                                             microversion="2.53", raise_exc=False)
    assert answer.status_code == 400
    assert "Updating a nova-scheduler service is not supported" in answer.text


def test_hypervisor_show_takes_a_uuid_and_a_pattern_must_match(start_sim: Callable[..., Running]) -> None:
    """From 2.53 a hypervisor is shown by uuid (a name is a 400), and a hostname pattern matching none is a 404."""
    running = start_sim()
    assert _get(running, "/os-hypervisors/compute001").status_code == 400
    assert _get(running, "/os-hypervisors/compute001", "2.52").status_code == 404
    assert _get(running, "/os-hypervisors?hypervisor_hostname_pattern=nope").status_code == 404
    assert _get(running, "/os-hypervisors?hypervisor_hostname_pattern=compute&limit=1").status_code == 400
    found = _get(running, "/os-hypervisors?hypervisor_hostname_pattern=compute002").json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in found] == ["compute002.cloud.example.com"]


def test_aggregates_list_and_show_as_nova_does(start_sim: Callable[..., Running]) -> None:
    """Every field nova's schema requires, the zone in metadata, uuid from 2.41; a bad id is 400, a missing one 404."""
    running = start_sim(ZONED)
    listed = _get(running, "/os-aggregates").json()["aggregates"]
    assert [(a["id"], a["name"], a["availability_zone"], a["hosts"], a["metadata"]) for a in listed] == [
        (1, "ssd", None, ["compute001"], {}), (2, "edge", "edge", ["compute004"], {"availability_zone": "edge"})]
    assert set(listed[0]) == {"id", "uuid", "name", "availability_zone", "hosts", "metadata", "created_at",
                              "updated_at", "deleted_at", "deleted"}
    assert "uuid" not in _get(running, "/os-aggregates/2", "2.40").json()["aggregate"]
    assert _get(running, "/os-aggregates/2").json()["aggregate"]["uuid"] == listed[1]["uuid"]
    assert _get(running, "/os-aggregates/edge").status_code == 400
    assert _get(running, "/os-aggregates/9").status_code == 404


def test_os_hosts_until_2_42_and_the_zone_summary_hides_the_internal_zone(start_sim: Callable[..., Running]) -> None:
    """os-hosts lists every service's host, topic and zone below 2.43 (404 from 2.43); the zone summary has no
    internal zone, the detail has it."""
    running = start_sim(ZONED)
    hosts = _get(running, "/os-hosts", "2.1").json()["hosts"]
    assert hosts[-3:] == [{"host_name": "compute004", "service": "compute", "zone": "edge"},
                          {"host_name": "controller", "service": "conductor", "zone": "internal"},
                          {"host_name": "controller", "service": "scheduler", "zone": "internal"}]
    assert [h["host_name"] for h in _get(running, "/os-hosts?zone=edge", "2.1").json()["hosts"]] == ["compute004"]
    assert _get(running, "/os-hosts", "2.43").status_code == 404
    summary = _get(running, "/os-availability-zone").json()["availabilityZoneInfo"]
    assert [z["zoneName"] for z in summary] == ["edge", "nova"]
    detail = _get(running, "/os-availability-zone/detail").json()["availabilityZoneInfo"]
    internal = next(z for z in detail if z["zoneName"] == "internal")
    assert sorted(internal["hosts"]["controller"]) == ["nova-conductor", "nova-scheduler"]
