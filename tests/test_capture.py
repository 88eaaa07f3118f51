"""`hostmap sim capture`: the simulated cloud captured as a scenario, and its twin plans and rehearses as it does."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import Running, run_cli, write_json
from hostmap.sim.scenario import load_scenario

#: Four hosts in two zones, one disabled with a reason, uneven ratios and reservations, an anti-affinity group with
#: a rule, a pinned server, a stopped one, and a map that needs a detour (a and b swap full hosts).
ORIGINAL: dict[str, Any] = {
    "hosts": [
        {"name": "compute001", "vcpus": 8, "memory_mb": 8192, "disk_gb": 200, "reserved_host_memory_mb": 0,
         "ram_allocation_ratio": 1.0, "zone": "az1"},
        {"name": "compute002", "vcpus": 8, "memory_mb": 8192, "disk_gb": 200, "reserved_host_memory_mb": 0,
         "ram_allocation_ratio": 1.0, "zone": "az1"},
        {"name": "compute003", "hypervisor_hostname": "c3.example.com", "vcpus": 16, "memory_mb": 16896,
         "disk_gb": 300, "reserved_host_memory_mb": 512, "reserved_host_cpus": 2, "cpu_allocation_ratio": 4.0,
         "ram_allocation_ratio": 1.0, "disk_allocation_ratio": 1.5, "zone": "az1", "nic_gbps": 25},
        {"name": "compute004", "vcpus": 8, "memory_mb": 16384, "disk_gb": 200, "enabled": False,
         "disabled_reason": "rack 7 power work", "zone": "az2"},
    ],
    "flavors": [{"name": "big", "vcpus": 2, "ram": 6144, "disk": 20},
                {"name": "small", "vcpus": 1, "ram": 1024, "disk": 10}],
    "servers": [
        {"name": "a", "flavor": "big", "host": "compute001", "project": "vnf"},
        {"name": "b", "flavor": "big", "host": "compute002", "project": "vnf", "pinned_zone": "az1"},
        {"name": "c", "flavor": "small", "host": "compute003"},
        {"name": "d", "flavor": "small", "host": "compute003", "status": "SHUTOFF"},
        {"name": "e", "flavor": "small", "host": "compute004"},
    ],
    "server_groups": [{"name": "ha", "policy": "anti-affinity", "members": ["c", "e"],
                       "rules": {"max_server_per_host": 1}}],
    "migration": {"setup_s": 0.5},
}
MAP = {"compute002": ["a"], "compute001": ["b", "c"]}


def _capture(tmp_path: Path, scenario: Path, *extra: str) -> tuple[Path, str]:
    out = tmp_path / "twin.json"
    result = run_cli(["sim", "capture", "--sim-scenario", str(scenario), "-o", str(out),
                      "--log-file", str(tmp_path / "log"), *extra])
    assert result.code == 0, result.err
    return out, result.err


def _plan(tmp_path: Path, scenario: Path) -> dict[str, Any]:
    result = run_cli(["plan", str(write_json(tmp_path / "map.json", MAP)), "-f", "json", "--sim-scenario",
                      str(scenario), "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    plan: dict[str, Any] = result.json()
    return plan


def test_twin_plans_the_same_moves_in_the_same_order(tmp_path: Path) -> None:
    """A capture of the simulated cloud loads as a scenario on which plan gives the same moves, order and estimate."""
    original = write_json(tmp_path / "original.json", ORIGINAL)
    twin, err = _capture(tmp_path, original)
    assert "captured 4 hosts, 5 servers, 1 server group;" in err
    loaded = load_scenario(twin)
    assert [h.capacity() for h in loaded.hosts] == [h.capacity() for h in load_scenario(original).hosts]
    c4 = loaded.host("compute004")
    assert (c4.enabled, c4.disabled_reason, c4.zone) == (False, "rack 7 power work", "az2")
    assert loaded.server("b").pinned_zone == "az1"
    assert loaded.server("d").status == "SHUTOFF"
    assert [(g.policy, g.max_server_per_host, len(g.members)) for g in loaded.server_groups] == [
        ("anti-affinity", 1, 2)]
    before, after = _plan(tmp_path, original), _plan(tmp_path, twin)
    keys = ("step", "server", "id", "source", "target", "final_target", "detour", "after", "estimate_s")
    assert [[m[k] for k in keys] for m in after["moves"]] == [[m[k] for k in keys] for m in before["moves"]]
    assert any(m["detour"] for m in before["moves"])
    assert (after["estimated_s"], after["lower_bound_s"]) == (before["estimated_s"], before["lower_bound_s"])


def test_capture_writes_no_secret_and_says_where_from(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A capture sends no mutating request and writes the auth URL and region, never the password."""
    running = env_cloud(ORIGINAL)
    out = tmp_path / "twin.json"
    result = run_cli(["sim", "capture", "-o", str(out), "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    text = out.read_text(encoding="utf-8")
    assert running.sim.state.password not in text
    captured = json.loads(text)["captured"]
    assert (captured["auth_url"], captured["region"]) == (running.sim.auth_url, "RegionOne")
    assert running.sim.state.mutating_request_count() == 0


def test_rates_come_from_the_journal_of_that_cloud(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """After an apply on a cloud, its capture takes the copy rate measured per host pair from the journal."""
    data = json.loads(json.dumps(ORIGINAL))
    data["migration"] = {"setup_s": 0.1, "stream_gbps": 40, "nic_gbps": 40}
    env_cloud(data, virtual=False)
    journal = tmp_path / "journal.db"
    host_map = write_json(tmp_path / "map.json", {"compute002": ["c"]})
    applied = run_cli(["apply", str(host_map), "--yes", "--journal", str(journal), "--log-file", str(tmp_path / "l")])
    assert applied.code == 0, applied.err
    out = tmp_path / "twin.json"
    result = run_cli(["sim", "capture", "-o", str(out), "--journal", str(journal), "--log-file", str(tmp_path / "l")])
    assert result.code == 0, result.err
    doc = json.loads(out.read_text(encoding="utf-8"))
    [rate] = doc["captured"]["rates"]
    assert (rate["source"], rate["target"], rate["samples"]) == ("compute003", "compute002", 1)
    assert rate["gbps"] > 0
    nics = {h["name"]: h.get("nic_gbps") for h in doc["hosts"]}
    assert nics["compute002"] == nics["compute003"] == rate["gbps"]
    assert nics["compute001"] is None


def test_apply_rehearses_on_the_twin_with_a_fault_added(tmp_path: Path) -> None:
    """apply --sim-scenario TWIN --virtual-time runs the plan and reports what a fault added to the twin causes."""
    twin, _ = _capture(tmp_path, write_json(tmp_path / "original.json", ORIGINAL))
    doc = json.loads(twin.read_text(encoding="utf-8"))
    doc["faults"] = [{"kind": "fail_midway", "server": "c", "at_fraction": 0.2}]
    write_json(twin, doc)
    result = run_cli(["apply", str(write_json(tmp_path / "map.json", MAP)), "--yes", "-f", "json", "--sim-scenario",
                      str(twin), "--virtual-time", "--log-file", str(tmp_path / "log")])
    report = result.json()
    outcomes = {m["server"]: m["outcome"] for m in report["moves"]}
    assert outcomes["c"] == "failed"
    assert outcomes["a"] == outcomes["b"] == "migrated"
    assert report["makespan_s"] > 0


def test_capture_pages_servers_and_sizes_flavors_before_2_47(tmp_path: Path) -> None:
    """With two servers a page and nova at 2.40 (flavors not embedded), every server is captured with its flavor."""
    data = {**ORIGINAL, "api": {"max_microversion": "2.40", "page_size": 2}}
    twin, _ = _capture(tmp_path, write_json(tmp_path / "original.json", data))
    def servers(path: Path) -> list[tuple[str, str, str, str]]:
        return sorted((s.name, s.flavor, s.host, s.status) for s in load_scenario(path).servers)

    assert servers(twin) == servers(tmp_path / "original.json")
    assert len(servers(twin)) == 5
    flavors = {f.id: (f.name, f.ram) for f in load_scenario(twin).flavors}
    assert sorted(flavors.values()) == [("big", 6144), ("small", 1024)]
