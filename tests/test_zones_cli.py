"""Availability zones through the CLI: cross-zone maps refused with exit 3, drains that keep pinned servers home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import run_cli, scenario, write_json


def _cloud() -> dict[str, Any]:
    """SMALL with compute001-002 in az1, compute003-004 in az2, and web-0 (on compute001) pinned to az1."""
    data = scenario()
    for host, zone in zip(data["hosts"], ("az1", "az1", "az2", "az2"), strict=True):
        host["zone"] = zone
    data["servers"][0]["pinned_zone"] = "az1"
    return data


def _options(tmp_path: Path) -> list[str]:
    return ["--sim-scenario", str(write_json(tmp_path / "cloud.json", _cloud())), "--virtual-time",
            "--log-file", str(tmp_path / "hostmap.log")]


def test_plan_and_apply_refuse_a_cross_zone_map(tmp_path: Path) -> None:
    """plan and apply exit 3 with one line naming the server, its zone, the host and the host's zone."""
    host_map = write_json(tmp_path / "map.json", {"compute003": ["web-0"]})
    for command in (["plan", str(host_map)], ["apply", str(host_map), "--yes"]):
        result = run_cli([*command, *_options(tmp_path)])
        assert result.code == 3, result.err
        assert "server web-0 is pinned to zone az1; host compute003 is in zone az2" in result.err


def test_drain_keeps_pinned_servers_in_their_zone(tmp_path: Path) -> None:
    """Draining compute001 sends web-0 to compute002, its zone's other host, though az2's hosts are emptier."""
    out = tmp_path / "drain.json"
    result = run_cli(["drain", "compute001", "-o", str(out), *_options(tmp_path)])
    assert result.code == 0, result.err
    document = json.loads(out.read_text())
    assert "web-0" in document["compute002"]
    plan = run_cli(["plan", str(out), *_options(tmp_path)])
    assert plan.code == 0, plan.err


def test_a_server_pinned_to_the_default_zone_is_planned_across_zones(tmp_path: Path) -> None:
    """Pinned to nova, which no aggregate names, web-1 may go to az2 (nova restricts nothing); az1's pin still holds."""
    data = _cloud()
    for host in data["hosts"][:2]:
        del host["zone"]  # compute001-002 in the default zone nova, in no aggregate
    data["servers"][0]["pinned_zone"] = "nova"
    data["servers"][1]["pinned_zone"] = "nova"
    cloud = ["--sim-scenario", str(write_json(tmp_path / "cloud.json", data)), "--virtual-time",
             "--log-file", str(tmp_path / "hostmap.log")]
    host_map = write_json(tmp_path / "map.json", {"compute003": ["web-1"]})
    applied = run_cli(["apply", str(host_map), "--yes", "-f", "json", *cloud])
    assert applied.code == 0, applied.err
    assert [(m["server"], m["outcome"]) for m in applied.json()["moves"]] == [("web-1", "migrated")]


def test_assume_unpinned_lets_an_old_cloud_plan_across_zones(tmp_path: Path) -> None:
    """Below 2.96 web-1 is taken as pinned to az1 (exit 3, the hint names --assume-unpinned); with the option the
    map is planned, and drain and maintain take it too."""
    data = _cloud()
    data["servers"][0].pop("pinned_zone")
    data["api"] = {"max_microversion": "2.95"}
    cloud = ["--sim-scenario", str(write_json(tmp_path / "cloud.json", data)), "--virtual-time",
             "--log-file", str(tmp_path / "hostmap.log")]
    host_map = write_json(tmp_path / "map.json", {"compute003": ["web-1"]})
    refused = run_cli(["plan", str(host_map), *cloud])
    assert refused.code == 3
    assert "server web-1 is pinned to zone az1 (assumed" in refused.err
    assert "--assume-unpinned" in refused.err
    planned = run_cli(["plan", str(host_map), "--assume-unpinned", "-f", "json", *cloud])
    assert planned.code == 0, planned.err
    assert [m["target"] for m in planned.json()["moves"]] == ["compute003"]
    drained = run_cli(["drain", "compute001", "compute002", "--assume-unpinned", *cloud])
    assert drained.code == 0, drained.err  # az1 emptied into az2, which the assumed pins forbade
    rolled = run_cli(["maintain", "compute001", "--exec", "true", "--dry-run", "--assume-unpinned", *cloud])
    assert rolled.code == 0, rolled.err
