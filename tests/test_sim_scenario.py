"""Scenario parsing and validation for the simulated cloud, and the bundled demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hostmap.errors import InputError
from hostmap.sim.scenario import (
    ApiError,
    CapacityTaken,
    demo_scenario_path,
    load_scenario,
    parse_scenario,
)
from hostmap.timing import solo_duration_s

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def minimal(**changes: Any) -> dict[str, Any]:
    """A valid two-host scenario with top-level keys replaced."""
    data: dict[str, Any] = {
        "hosts": [
            {"name": "c1", "vcpus": 4, "memory_mb": 8192, "disk_gb": 100},
            {"name": "c2", "vcpus": 4, "memory_mb": 8192, "disk_gb": 100},
        ],
        "flavors": [{"name": "small", "vcpus": 1, "ram": 1024, "disk": 10}],
        "servers": [{"name": "vm-0", "flavor": "small", "host": "c1"}],
    }
    data.update(changes)
    return data


def test_defaults_and_deterministic_ids() -> None:
    """Defaults are filled in and generated server ids do not change between parses."""
    first = parse_scenario(minimal(), "s")
    second = parse_scenario(minimal(), "s")
    assert first.servers[0].id == second.servers[0].id
    host = first.hosts[0]
    assert host.hypervisor_hostname == "c1.localdomain"
    assert host.capacity() == (64, int((8192 - 512) * 1.5), 100)
    assert first.api.max_microversion == (2, 96)
    assert first.migration.setup_s == 3.0


def test_faults_are_parsed() -> None:
    """Fault entries become typed fault objects referring to server ids and host names."""
    data = minimal(faults=[
        {"kind": "api_error", "path_regex": "/servers", "status": 503, "rate": 0.5, "seed": 7},
        {"kind": "capacity_taken", "host": "c2.localdomain", "at_s": 5, "memory_mb": 512},
    ])
    scenario = parse_scenario(data, "s")
    assert scenario.faults[0] == ApiError(path_regex="/servers", status=503, rate=0.5, seed=7)
    assert scenario.faults[1] == CapacityTaken(host="c2", at_s=5.0, memory_mb=512)


@pytest.mark.parametrize(
    ("change", "entry", "words"),
    [
        ({"colour": "blue"}, "colour", "unknown key"),
        ({"hosts": [{"name": "c1", "vcpus": "4", "memory_mb": 1, "disk_gb": 1}]}, "hosts[0].vcpus", "integer"),
        ({"hosts": [{"name": "c1", "memory_mb": 8192, "disk_gb": 1}]}, "hosts[0]", "vcpus"),
        ({"hosts": [{"name": "c1", "vcpus": 4, "memory_mb": 8192, "disk_gb": 100, "speed": 1}]}, "hosts[0].speed",
         "unknown key"),
        ({"flavors": [{"name": "small", "vcpus": 1, "ram": -1, "disk": 10}]}, "flavors[0].ram", "at least"),
        ({"servers": [{"name": "vm-0", "flavor": "huge", "host": "c1"}]}, "servers[0].flavor", "unknown flavor"),
        ({"servers": [{"name": "vm-0", "flavor": "small", "host": "c9"}]}, "servers[0].host", "unknown host"),
        ({"servers": [{"name": "vm-0", "flavor": "small", "host": "c1", "id": "x"}] * 2}, "servers[1].id",
         "duplicate"),
        ({"servers": [{"name": "vm-0", "flavor": "small", "host": "c1"}] * 2,
          "faults": [{"kind": "never_converge", "server": "vm-0"}]}, "faults[0].server", "shared by 2 servers"),
        ({"servers": [{"name": f"vm-{i}", "flavor": "small", "host": "c1"} for i in range(12)]}, "hosts[0]",
         "over capacity"),
        ({"api": {"max_microversion": "2.200"}}, "api.max_microversion", "microversion"),
        ({"faults": [{"kind": "meteor"}]}, "faults[0].kind", "unknown fault kind"),
        ({"faults": [{"kind": "precheck_fail", "server": "nobody"}]}, "faults[0].server", "unknown server"),
        ({"migration": {"touched": 1.5}}, "migration.touched", "fraction"),
        ({"server_groups": [{"name": "g", "policy": "spread", "members": []}]}, "server_groups[0].policy",
         "unknown policy"),
    ],
)
def test_bad_scenarios_name_the_entry(change: dict[str, Any], entry: str, words: str) -> None:
    """Each kind of mistake raises InputError naming the offending entry."""
    with pytest.raises(InputError) as caught:
        parse_scenario(minimal(**change), "bad.json")
    assert caught.value.entry == entry
    assert words in caught.value.problem
    assert caught.value.source == "bad.json"


def test_shared_server_names_are_allowed() -> None:
    """Nova allows two servers with one name; they get different deterministic ids."""
    servers = [{"name": "vm-0", "flavor": "small", "host": "c1"}, {"name": "vm-0", "flavor": "small", "host": "c2"}]
    scenario = parse_scenario(minimal(servers=servers), "s")
    assert scenario.servers[0].id != scenario.servers[1].id


def test_duplicate_host_names() -> None:
    """Two hosts with one name are refused."""
    hosts = [{"name": "c1", "vcpus": 4, "memory_mb": 8192, "disk_gb": 100}] * 2
    with pytest.raises(InputError) as caught:
        parse_scenario(minimal(hosts=hosts), "s")
    assert caught.value.entry == "hosts[1].name"


def test_yaml_file(tmp_path: Path) -> None:
    """A YAML scenario file loads like JSON."""
    path = tmp_path / "cloud.yaml"
    path.write_text(
        "hosts:\n  - {name: c1, vcpus: 4, memory_mb: 8192, disk_gb: 100}\n"
        "flavors:\n  - {name: small, vcpus: 1, ram: 1024, disk: 10}\n"
        "servers:\n  - {name: vm-0, flavor: small, host: c1}\n",
        encoding="utf-8",
    )
    assert load_scenario(path).servers[0].name == "vm-0"
    with pytest.raises(InputError):
        load_scenario(tmp_path / "missing.json")


def test_demo_and_example_host_map() -> None:
    """The demo loads, and the example host map moves 5-6 of its servers feasibly within about 10-15 s."""
    demo = load_scenario(demo_scenario_path())
    host_map: dict[str, list[str]] = json.loads((EXAMPLES / "host_map.json").read_text(encoding="utf-8"))
    placement = {s.name: s.host for s in demo.servers}
    moved = 0.0
    count = 0
    for key, names in host_map.items():
        host = demo.host(key)
        for name in names:
            server = demo.server(name)
            if placement[name] != host.name:
                count += 1
                moved += solo_duration_s(demo.flavor(server.flavor).ram, demo.migration)
            placement[name] = host.name
    assert 5 <= count <= 6
    assert 8 <= moved <= 16
    for host in demo.hosts:
        flavors = [demo.flavor(demo.server(n).flavor) for n, h in placement.items() if h == host.name]
        need = (sum(f.vcpus for f in flavors), sum(f.ram for f in flavors), sum(f.disk for f in flavors))
        assert all(n <= c for n, c in zip(need, host.capacity(), strict=True)), host.name
