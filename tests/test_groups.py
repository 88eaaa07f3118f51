"""Server-group policies end to end: refused up front when the map breaks them, kept at every step otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import Running, run_cli, scenario, write_json


def _grouped(policy: str, members: list[str], **group: Any) -> dict[str, Any]:
    """SMALL with web-1 on compute002 and one server group."""
    data = scenario()
    data["servers"][1]["host"] = "compute002"
    data["server_groups"] = [{"name": "grp", "policy": policy, "members": members, **group}]
    return data


def test_anti_affinity_swap_runs_with_a_detour_and_no_refusal(tmp_path: Path) -> None:
    """Two anti-affine servers swap hosts: one detours via a third host, both end in place, nova refuses nothing."""
    data = _grouped("anti-affinity", ["web-0", "web-1"])
    path = write_json(tmp_path / "scenario.json", data)
    host_map = write_json(tmp_path / "map.json", {"compute002": ["web-0"], "compute001": ["web-1"]})
    common = ["--sim-scenario", str(path), "--virtual-time", "--log-file", str(tmp_path / "log"), "-f", "json"]
    planned = run_cli(["plan", str(host_map), *common])
    assert planned.code == 0, planned.err
    legs = [(m["server"], m["source"], m["target"]) for m in planned.json()["moves"]]
    assert len(legs) == 3
    pivot = next(target for server, source, target in legs if target not in ("compute001", "compute002"))
    assert pivot in ("compute003", "compute004")
    assert planned.json()["group_settle_s"] == 130
    assert [m["settle_after"] for m in planned.json()["moves"]] == [[], [1], [2]]
    table = run_cli(["plan", str(host_map), *common[:-2]])
    assert "1+settle" in table.out
    assert "2 of them wait 130 s after a member of their anti-affinity group left the target" in table.out
    applied = run_cli(["apply", str(host_map), "--yes", *common])
    assert applied.code == 0, applied.err
    report = applied.json()
    assert report["reached"] is True
    assert {m["server"]: (m["outcome"], m["target"]) for m in report["moves"]} == {
        "web-0": ("migrated", "compute002"), "web-1": ("migrated", "compute001"),
    }


def test_map_breaking_anti_affinity_exits_3_before_anything_moves(
    tmp_path: Path, env_cloud: Callable[..., Running]
) -> None:
    """Putting an anti-affine server next to a member that stays is refused with the group named, nothing moved."""
    running = env_cloud(_grouped("anti-affinity", ["web-0", "web-1"]))
    host_map = write_json(tmp_path / "map.json", {"compute002": ["web-0"]})
    result = run_cli(["apply", str(host_map), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 3, result.err
    assert "group grp (anti-affinity, at most 1 per host)" in result.err
    assert "web-0 and 1 member(s) it keeps there on compute002" in result.err
    assert "nothing was migrated" in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_moving_an_affinity_group_exits_3_before_anything_moves(
    tmp_path: Path, env_cloud: Callable[..., Running]
) -> None:
    """Moving a whole affinity group, which nova refuses one live migration at a time, exits 3 with the reason."""
    data = scenario(server_groups=[{"name": "pair", "policy": "affinity", "members": ["web-0", "web-1"]}])
    running = env_cloud(data)
    host_map = write_json(tmp_path / "map.json", {"compute003": ["web-0", "web-1"]})
    result = run_cli(["plan", str(host_map), "--log-file", str(tmp_path / "log")])
    assert result.code == 3, result.err
    assert "group pair (affinity, now on compute001)" in result.err
    assert "moves web-0, web-1 to compute003, where no member of the group stays" in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_rule_max_server_per_host_is_read_from_the_cloud(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """With max_server_per_host 2 the same move is allowed and runs."""
    running = env_cloud(_grouped("anti-affinity", ["web-0", "web-1"], rules={"max_server_per_host": 2}))
    (group,) = running.cloud.inventory().groups
    assert group.max_per_host == 2
    host_map = write_json(tmp_path / "map.json", {"compute002": ["web-0"]})
    result = run_cli(["plan", str(host_map), "--log-file", str(tmp_path / "log"), "-f", "json"])
    assert result.code == 0, result.err
    assert [(m["server"], m["target"]) for m in result.json()["moves"]] == [("web-0", "compute002")]


def test_anti_affine_swap_without_a_free_host_names_the_group(
    tmp_path: Path, env_cloud: Callable[..., Running]
) -> None:
    """When every other host holds a member too, the swap is infeasible and the message names the group."""
    data = _grouped("anti-affinity", ["web-0", "web-1", "cache-0"])
    data["servers"].append({"name": "spare-0", "flavor": "m1.small", "host": "compute004"})
    data["server_groups"][0]["members"].append("spare-0")
    running = env_cloud(data)
    host_map = write_json(tmp_path / "map.json", {"compute002": ["web-0"], "compute001": ["web-1"]})
    result = run_cli(["apply", str(host_map), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 3, result.err
    assert "servers web-0, web-1 must swap between hosts compute001, compute002" in result.err
    assert "anti-affinity group grp allows no more members on one host" in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_without_settling_nova_refuses_the_second_leg_of_an_anti_affine_swap(tmp_path: Path) -> None:
    """With --group-settle 0 the member returns before nova's scheduler saw the other leave, and is refused."""
    data = _grouped("anti-affinity", ["web-0", "web-1"])
    path = write_json(tmp_path / "scenario.json", data)
    host_map = write_json(tmp_path / "map.json", {"compute002": ["web-0"], "compute001": ["web-1"]})
    result = run_cli(["apply", str(host_map), "--yes", "--group-settle", "0", "--sim-scenario", str(path),
                      "--virtual-time", "--log-file", str(tmp_path / "log"), "-f", "json"])
    assert result.code == 1, result.err
    reasons = " ".join(m["reason"] for m in result.json()["moves"])
    assert "There are not enough hosts available" in reasons


def test_affinity_members_stuck_in_a_swap_are_named_as_unable_to_detour(
    tmp_path: Path, env_cloud: Callable[..., Running]
) -> None:
    """Two full hosts swapping affinity members, with room elsewhere: infeasible, and the message says why."""
    data = scenario(
        hosts=[{"name": f"compute00{i}", "hypervisor_hostname": f"compute00{i}.cloud.example.com", "vcpus": 8,
                "memory_mb": 4096 if i < 3 else 16384, "disk_gb": 200} for i in range(1, 4)],
        servers=[
            {"name": "a", "flavor": "m1.small", "host": "compute001"},
            {"name": "a-peer", "flavor": "m1.small", "host": "compute002"},
            {"name": "b", "flavor": "m1.small", "host": "compute002"},
            {"name": "b-peer", "flavor": "m1.small", "host": "compute001"},
        ],
        server_groups=[{"name": "ga", "policy": "affinity", "members": ["a", "a-peer"]},
                       {"name": "gb", "policy": "affinity", "members": ["b", "b-peer"]}],
    )
    running = env_cloud(data)
    host_map = write_json(tmp_path / "map.json", {"compute002": ["a"], "compute001": ["b"]})
    result = run_cli(["plan", str(host_map), "--log-file", str(tmp_path / "log")])
    assert result.code == 3, result.err
    assert "servers a, b must swap between full hosts compute001, compute002" in result.err
    assert "a, b: in affinity groups" in result.err
    assert "cannot take a detour" in result.err
    assert running.sim.state.mutating_request_count() == 0
