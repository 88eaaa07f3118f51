"""Virtual time is deterministic: the same scenario and map give the same report on every run."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from conftest import run_cli, write_json

GIB_MB = 1024


def _drain_scenario() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """One host of 24 mixed servers (2-16 GiB, migrations of tens of seconds) drained to four others."""
    rng = random.Random(7)
    sizes = [2, 4, 8, 16]
    hosts = [f"compute00{i}" for i in range(1, 6)]
    servers = [{"name": f"vm-{j:02d}", "flavor": f"r{rng.choice(sizes)}g", "host": "compute001"} for j in range(24)]
    data = {
        "hosts": [
            {"name": h, "hypervisor_hostname": f"{h}.cloud.example.com", "vcpus": 256, "memory_mb": 512 * GIB_MB,
             "disk_gb": 10_000, "reserved_host_memory_mb": 0, "ram_allocation_ratio": 1.0}
            for h in hosts
        ],
        "flavors": [{"name": f"r{g}g", "vcpus": max(1, g // 4), "ram": g * GIB_MB, "disk": 20} for g in sizes],
        "servers": servers,
    }
    host_map: dict[str, list[str]] = {h: [] for h in hosts}
    for j, server in enumerate(servers):
        host_map[hosts[1 + j % 4]].append(server["name"])
    return data, host_map


def _report(tmp_path: Path, run: int) -> dict[str, Any]:
    data, host_map = _drain_scenario()
    scenario_path = write_json(tmp_path / "scenario.json", data)
    map_path = write_json(tmp_path / "map.json", host_map)
    result = run_cli(["apply", str(map_path), "--yes", "-f", "json", "--sim-scenario", str(scenario_path),
                      "--virtual-time", "--log-file", str(tmp_path / f"log{run}")])
    assert result.code == 0, result.err
    report: dict[str, Any] = json.loads(result.out)
    for key in ("run_id", "started_at", "ended_at"):
        report.pop(key, None)
    return report


def test_the_same_rehearsal_three_times_gives_identical_reports(tmp_path: Path) -> None:
    """Three virtual-time runs of one drain report the same moves, timings and makespan."""
    first, second, third = (_report(tmp_path, run) for run in range(3))
    assert first["reached"]
    assert len(first["moves"]) == 24
    assert first == second == third
