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
