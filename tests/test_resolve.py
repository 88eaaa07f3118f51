"""Resolving a host map against an inventory: host aliases, unique servers, and movability."""

from __future__ import annotations

import pytest

from hostmap.errors import InputError, InputErrors
from hostmap.hostmap_file import parse_host_map
from hostmap.model import Host, Inventory, Resources, Server
from hostmap.resolve import resolve

BIG = Resources(64, 262144, 2000)


def _host(name: str, *, enabled: bool = True, up: bool = True) -> Host:
    return Host(name, f"{name}.cloud.example.com", enabled, up, BIG, Resources(), None)


def _server(sid: str, name: str, host: str, status: str = "ACTIVE", task: str | None = None) -> Server:
    return Server(sid, name, host, status, task, "m1.small", Resources(1, 2048, 20))


UUID_A = "11111111-1111-4111-8111-111111111111"
UUID_B = "22222222-2222-4222-8222-222222222222"
UUID_C = "33333333-3333-4333-8333-333333333333"

INVENTORY = Inventory(
    hosts=(_host("compute001"), _host("compute002"), _host("compute003", enabled=False), _host("compute004", up=False)),
    servers=(
        _server(UUID_A, "web-0", "compute001"),
        _server(UUID_B, "twin", "compute001"),
        _server(UUID_C, "twin", "compute002"),
        _server("44444444-4444-4444-8444-444444444444", "off-0", "compute001", status="SHUTOFF"),
        _server("55555555-5555-4555-8555-555555555555", "busy-0", "compute001", task="migrating"),
    ),
)


def _resolve(data: dict[str, list[str]]) -> dict[str, str]:
    return dict(resolve(parse_host_map(data, "map.json"), INVENTORY).targets)


@pytest.mark.parametrize(
    "key", ["compute002", "compute002.cloud.example.com", "COMPUTE002", "Compute002.Cloud.Example.Com"]
)
def test_host_aliases_resolve_to_service_host(key: str) -> None:
    """Service host, hypervisor FQDN, and either in another case all name the same service host."""
    assert _resolve({key: ["web-0"]}) == {UUID_A: "compute002"}


def test_short_name_matches_fqdn_service_host() -> None:
    """A short name finds a host whose service name is an FQDN."""
    inventory = Inventory(hosts=(Host("c7.dc1.example.com", "c7.dc1.example.com", True, True, BIG, Resources()),),
                          servers=(_server(UUID_A, "a", "c7.dc1.example.com"),))
    targets = resolve(parse_host_map({"c7": ["a"]}, "m"), inventory).targets
    assert dict(targets) == {UUID_A: "c7.dc1.example.com"}


def test_fqdn_in_another_domain_does_not_match() -> None:
    """A name written with a domain never matches a host of the same short name in another domain."""
    with pytest.raises(InputError, match="is not a compute host"):
        _resolve({"compute002.other.example.org": ["web-0"]})


def test_uuid_picks_one_of_servers_sharing_a_name() -> None:
    """A UUID names exactly one server even when its name is shared."""
    assert _resolve({"compute002": [UUID_B]}) == {UUID_B: "compute002"}


def test_shared_name_is_refused_with_all_ids() -> None:
    """A name shared by several servers is refused, listing their UUIDs."""
    with pytest.raises(InputError) as caught:
        _resolve({"compute002": ["twin"]})
    assert UUID_B in caught.value.problem
    assert UUID_C in caught.value.problem
    assert "UUID" in caught.value.hint


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"compute099": ["web-0"]}, "is not a compute host"),
        ({"compute002": ["nope"]}, "no server named"),
        ({"compute003": ["web-0"]}, "is disabled"),
        ({"compute004": ["web-0"]}, "is down"),
        ({"compute002": ["off-0"]}, "SHUTOFF"),
        ({"compute002": ["busy-0"]}, "busy"),
        ({"compute002": ["web-0", UUID_A]}, "already listed"),
    ],
)
def test_unresolvable_entries_are_refused(data: dict[str, list[str]], fragment: str) -> None:
    """Each entry that cannot be carried out is refused with its reason."""
    with pytest.raises(InputError) as caught:
        _resolve(data)
    assert fragment in caught.value.problem


def test_server_already_in_place_may_stay_on_disabled_host() -> None:
    """A server already on a disabled host is not a problem: it does not move."""
    inventory = Inventory(hosts=(_host("c1", enabled=False),), servers=(_server(UUID_A, "a", "c1"),))
    assert dict(resolve(parse_host_map({"c1": ["a"]}, "m"), inventory).targets) == {UUID_A: "c1"}


def test_every_problem_is_reported() -> None:
    """Problems in several entries are all reported."""
    with pytest.raises(InputErrors) as caught:
        _resolve({"compute099": ["web-0"], "compute002": ["nope"]})
    assert len(caught.value.errors) == 2


@pytest.mark.parametrize(("status", "hint"), [
    ("MIGRATING", "wait until its current operation ends (MIGRATING), then run again"),
    ("SUSPENDED", "resume it first (openstack server resume 66666666-6666-4666-8666-666666666666)"),
    ("VERIFY_RESIZE", "openstack server resize confirm 66666666-6666-4666-8666-666666666666"),
])
def test_an_unmovable_server_is_told_what_its_own_state_needs(status: str, hint: str) -> None:
    """The hint for an unmovable server fits its state: a migrating server is told to wait, not to start."""
    sid = "66666666-6666-4666-8666-666666666666"
    inventory = Inventory(hosts=INVENTORY.hosts, servers=(_server(sid, "odd-0", "compute001", status=status),))
    with pytest.raises(InputError) as caught:
        resolve(parse_host_map({"compute002": ["odd-0"]}, "map.json"), inventory)
    assert hint in caught.value.hint, caught.value.hint
    assert "unpause" not in caught.value.hint
