"""Availability zones in the simulated cloud and through the adapter, as nova 34 derives and enforces them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import Running, scenario
from hostmap.errors import InputError
from hostmap.sim.scenario import parse_scenario


def zoned(**changes: Any) -> dict[str, Any]:
    """SMALL with compute001-002 in az1 (by host `zone`), compute003-004 in az2 (an aggregate), web-0 pinned to az1."""
    data = scenario(**changes)
    data["hosts"][0]["zone"] = "az1"
    data["hosts"][1]["zone"] = "az1"
    data.setdefault("aggregates", []).append({"name": "rack-b", "availability_zone": "az2",
                                              "hosts": ["compute003", "compute004"]})
    data["servers"][0]["pinned_zone"] = "az1"
    return data


def _get(running: Running, path: str, mv: str = "2.96") -> Any:
    return running.cloud._conn.compute.get(path, microversion=mv).json()


def _migrate(running: Running, server: str, host: str | None, mv: str = "2.96") -> Any:
    body = {"os-migrateLive": {"host": host, "block_migration": "auto"}}
    return running.cloud._conn.compute.post(f"/servers/{server}/action", json=body, microversion=mv,
                                            raise_exc=False)


def _ids(running: Running) -> dict[str, str]:
    return {s.name: s.id for s in running.cloud.inventory().servers}


# -- scenario files -------------------------------------------------------------------------------------------


def test_hosts_get_their_zone_from_aggregates_or_their_own_key() -> None:
    """A host's `zone` and an aggregate's availability_zone both place hosts; others are in no zone aggregate."""
    parsed = parse_scenario(zoned(), "t")
    assert [h.zone for h in parsed.hosts] == ["az1", "az1", "az2", "az2"]
    assert {a.name: (a.availability_zone, a.hosts) for a in parsed.aggregates} == {
        "rack-b": ("az2", ("compute003", "compute004")), "az1": ("az1", ("compute001", "compute002"))}
    assert parsed.servers[0].pinned_zone == "az1"
    plain = parse_scenario(scenario(), "t")
    assert ([h.zone for h in plain.hosts], plain.aggregates, plain.default_zone) == ([None] * 4, (), "nova")


@pytest.mark.parametrize(("change", "entry"), [
    (lambda d: d["aggregates"].append({"name": "x", "availability_zone": "az9", "hosts": ["compute001"]}),
     "hosts[0]"),
    (lambda d: d["servers"][0].update(pinned_zone="az2"), "servers[0].pinned_zone"),
    (lambda d: d["aggregates"].append({"name": "y", "hosts": ["compute999"]}), "aggregates[1].hosts[0]"),
    (lambda d: d["hosts"][2].update(zone="internal"), "hosts[2].zone"),
    (lambda d: d["aggregates"].append({"name": "rack-b", "hosts": []}), "aggregates[1].name"),
])
def test_zone_mistakes_are_named(change: Callable[[dict[str, Any]], None], entry: str) -> None:
    """A host in two zones, a server pinned to a zone its host is not in, unknown hosts and bad names are refused."""
    data = zoned()
    change(data)
    with pytest.raises(InputError) as caught:
        parse_scenario(data, "t")
    assert caught.value.entry == entry


# -- what the API shows -----------------------------------------------------------------------------------------


def test_server_view_shows_its_zone_and_from_296_its_pin(start_sim: Callable[..., Running]) -> None:
    """OS-EXT-AZ:availability_zone is the host's zone; pinned_availability_zone appears at 2.96, null when free."""
    running = start_sim(zoned())
    ids = _ids(running)
    web0 = _get(running, f"/servers/{ids['web-0']}")["server"]
    cache = _get(running, f"/servers/{ids['cache-0']}")["server"]
    assert (web0["OS-EXT-AZ:availability_zone"], web0["pinned_availability_zone"]) == ("az1", "az1")
    assert (cache["OS-EXT-AZ:availability_zone"], cache["pinned_availability_zone"]) == ("az2", None)
    older = _get(running, f"/servers/{ids['web-0']}", "2.95")["server"]
    assert "pinned_availability_zone" not in older
    assert older["OS-EXT-AZ:availability_zone"] == "az1"
    plain = start_sim()
    view = _get(plain, f"/servers/{_ids(plain)['web-0']}")["server"]
    assert (view["OS-EXT-AZ:availability_zone"], view["pinned_availability_zone"]) == ("nova", None)


def test_availability_zone_listing_and_detail(start_sim: Callable[..., Running]) -> None:
    """The detail lists the hosts of enabled services per zone; a zone of disabled hosts only is unavailable."""
    data = zoned()
    data["hosts"][1]["enabled"] = False
    data["hosts"].append({"name": "compute005", "vcpus": 8, "memory_mb": 16384, "disk_gb": 200, "zone": "az3",
                          "enabled": False})
    running = start_sim(data)
    summary = _get(running, "/os-availability-zone")["availabilityZoneInfo"]
    assert [(z["zoneName"], z["zoneState"]["available"], z["hosts"]) for z in summary] == [
        ("az1", True, None), ("az2", True, None), ("az3", False, None)]
    detail = _get(running, "/os-availability-zone/detail")["availabilityZoneInfo"]
    assert [(z["zoneName"], sorted(z["hosts"] or ())) for z in detail] == [
        ("az1", ["compute001"]), ("az2", ["compute003", "compute004"]), ("internal", ["controller"]), ("az3", [])]
    service = detail[0]["hosts"]["compute001"]["nova-compute"]
    assert (service["available"], service["active"]) == (True, True)
    services = _get(running, "/os-services")["services"]
    assert {s["host"]: s["zone"] for s in services}["compute002"] == "az1"  # os-services shows disabled ones too


# -- the scheduler ------------------------------------------------------------------------------------------------


def test_target_outside_the_pinned_zone_is_refused_after_202(start_sim: Callable[..., Running]) -> None:
    """From 2.34 the POST is accepted; the migration goes to error and the conductor event says no valid host."""
    running = start_sim(zoned())
    web0 = _ids(running)["web-0"]
    response = _migrate(running, web0, "compute003")
    assert response.status_code == 202
    migrations = _get(running, f"/os-migrations?instance_uuid={web0}")["migrations"]
    assert [m["status"] for m in migrations] == ["error"]
    assert running.cloud.failure_reason(web0, response.headers["x-openstack-request-id"]) == "No valid host was found. "
    assert _get(running, f"/servers/{web0}")["server"]["OS-EXT-SRV-ATTR:host"] == "compute001"
    assert _migrate(running, web0, "compute002").status_code == 202  # inside its zone it goes
    statuses = [m["status"] for m in _get(running, f"/os-migrations?instance_uuid={web0}")["migrations"]]
    assert sorted(statuses) != ["error", "error"]


def test_target_outside_the_pinned_zone_is_a_400_below_234(start_sim: Callable[..., Running]) -> None:
    """Below 2.34 the conductor's refusal is synchronous; a forced host (2.29) bypasses the scheduler and its zone."""
    running = start_sim(zoned(api={"max_microversion": "2.33"}))
    web0 = _ids(running)["web-0"]
    refused = _migrate(running, web0, "compute003", "2.33")
    assert refused.status_code == 400
    assert refused.json()["badRequest"]["message"] == "No valid host was found. "
    forced = _migrate(running, web0, "compute003", "2.29")  # below 2.30 a host is forced past the scheduler
    assert forced.status_code == 202
    assert running.sim.state.migrations[-1].status != "error"


def test_without_a_host_the_scheduler_picks_inside_the_pinned_zone(start_sim: Callable[..., Running]) -> None:
    """With no host the scheduler chooses only among the pinned zone's hosts, though others have more room."""
    data = zoned()  # compute002, the only other az1 host, has the least room of the three others
    running = start_sim(data)
    web0 = _ids(running)["web-0"]
    assert _migrate(running, web0, None).status_code == 202
    assert running.sim.state.migrations[-1].dest == "compute002"
    data["hosts"][1]["enabled"] = False
    other = start_sim(data)
    assert _migrate(other, _ids(other)["web-0"], None).status_code == 202
    assert other.sim.state.migrations[-1].status == "error"


def test_a_pin_to_the_default_zone_does_not_restrict(start_sim: Callable[..., Running]) -> None:
    """As nova's placement request filter: a zone no aggregate names restricts nothing, so the pin lets it go."""
    data = scenario()
    data["hosts"][3]["zone"] = "az2"
    data["servers"][0]["pinned_zone"] = "nova"
    running = start_sim(data)
    assert _migrate(running, _ids(running)["web-0"], "compute004").status_code == 202
    assert running.sim.state.migrations[-1].status != "error"


def test_a_pin_to_the_default_zone_an_aggregate_names_keeps_to_that_aggregate(
    start_sim: Callable[..., Running],
) -> None:
    """An aggregate names the default zone nova with compute002 only: compute003, which shows nova because it is in
    no aggregate, is refused to a server pinned to nova (placement is asked for the aggregate's hosts only)."""
    data = scenario()
    data["hosts"][3]["zone"] = "az2"
    data["aggregates"] = [{"name": "nova-rack", "availability_zone": "nova", "hosts": ["compute002"]}]
    data["servers"][0]["pinned_zone"] = "nova"
    running = start_sim(data)
    web0 = _ids(running)["web-0"]
    assert _migrate(running, web0, "compute003").status_code == 202
    assert running.sim.state.migrations[-1].status == "error"
    assert _migrate(running, web0, "compute002").status_code == 202
    assert running.sim.state.migrations[-1].status != "error"


# -- the adapter ----------------------------------------------------------------------------------------------------


def test_adapter_reads_the_aggregates_that_name_a_zone(start_sim: Callable[..., Running]) -> None:
    """GET /os-aggregates: Inventory.zone_aggregates holds each aggregate naming a zone with its hosts."""
    running = start_sim(zoned())
    aggregates = running.cloud.inventory().zone_aggregates
    assert aggregates is not None
    assert sorted((a.zone, sorted(a.hosts)) for a in aggregates) == [
        ("az1", ["compute001", "compute002"]), ("az2", ["compute003", "compute004"])]


def test_adapter_below_296_with_assume_unpinned_takes_no_pin(start_sim: Callable[..., Running]) -> None:
    """--assume-unpinned (the adapter's assume_unpinned): below 2.96 no server is taken as pinned."""
    running = start_sim(zoned(api={"max_microversion": "2.95"}))
    running.cloud.assume_unpinned = True
    pins = {s.name: (s.pinned_zone, s.zone_pin_assumed) for s in running.cloud.inventory().servers}
    assert set(pins.values()) == {(None, False)}


def test_adapter_reads_host_zones_and_pins(start_sim: Callable[..., Running]) -> None:
    """Host.zone comes from the compute service, disabled ones too; Server.pinned_zone from 2.96 is not assumed."""
    data = zoned()
    data["hosts"][1]["enabled"] = False
    running = start_sim(data)
    inventory = running.cloud.inventory()
    assert {h.name: h.zone for h in inventory.hosts} == {
        "compute001": "az1", "compute002": "az1", "compute003": "az2", "compute004": "az2"}
    pins = {s.name: (s.pinned_zone, s.zone_pin_assumed) for s in inventory.servers}
    assert pins == {"web-0": ("az1", False), "web-1": (None, False), "db-0": (None, False), "cache-0": (None, False)}


def test_adapter_below_296_assumes_each_server_pinned_where_it_is(start_sim: Callable[..., Running]) -> None:
    """Below 2.96 pins are not shown: each server is taken as pinned to its current zone, and marked assumed."""
    running = start_sim(zoned(api={"max_microversion": "2.95"}))
    pins = {s.name: (s.pinned_zone, s.zone_pin_assumed) for s in running.cloud.inventory().servers}
    assert pins == {"web-0": ("az1", True), "web-1": ("az1", True), "db-0": ("az1", True), "cache-0": ("az2", True)}
