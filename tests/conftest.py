"""Shared fixtures: scenarios for the simulated cloud, a running simulated cloud, and an in-process CLI runner."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hostmap.cli import main, seed_main
from hostmap.clock import VirtualClock
from hostmap.cloud.openstack import OpenStackCloud, connect_with
from hostmap.sim.scenario import parse_scenario
from hostmap.sim.server import SimServer

#: A small cloud: four hosts, room to move, migrations of a fraction of a second.
SMALL: dict[str, Any] = {
    "hosts": [
        {"name": f"compute00{i}", "hypervisor_hostname": f"compute00{i}.cloud.example.com",
         "vcpus": 8, "memory_mb": 16384, "disk_gb": 200, "reserved_host_memory_mb": 0, "ram_allocation_ratio": 1.0}
        for i in range(1, 5)
    ],
    "flavors": [
        {"name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20},
        {"name": "m1.large", "vcpus": 4, "ram": 8192, "disk": 40},
    ],
    "servers": [
        {"name": "web-0", "flavor": "m1.small", "host": "compute001"},
        {"name": "web-1", "flavor": "m1.small", "host": "compute001"},
        {"name": "db-0", "flavor": "m1.large", "host": "compute002"},
        {"name": "cache-0", "flavor": "m1.small", "host": "compute003"},
    ],
    "migration": {"setup_s": 0.2},
}


#: The map of `swap_scenario`: a and b trade hosts.
SWAP_MAP: dict[str, list[str]] = {"compute002": ["a"], "compute001": ["b"]}


def swap_scenario(**changes: Any) -> dict[str, Any]:
    """Three 8 GiB hosts; 6 GiB servers a on compute001 and b on compute002 must swap (`SWAP_MAP`), so one of them
    detours via compute003: a goes there (0-5 s), b to compute001 (5-10 s), then a on to compute002."""
    data: dict[str, Any] = {
        "hosts": [{"name": f"compute00{i}", "vcpus": 8, "memory_mb": 8192, "disk_gb": 200} for i in range(1, 4)],
        "flavors": [{"name": "big", "vcpus": 2, "ram": 6144, "disk": 20}],
        "servers": [{"name": "a", "flavor": "big", "host": "compute001"},
                    {"name": "b", "flavor": "big", "host": "compute002"}],
        "migration": {"setup_s": 0.5},
    }
    data.update(changes)
    return data


def scenario(**changes: Any) -> dict[str, Any]:
    """A deep copy of SMALL with top-level keys replaced."""
    data: dict[str, Any] = json.loads(json.dumps(SMALL))
    data.update(changes)
    return data


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep journals, locks and logs of every test in a directory of its own, never in the user's home."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@dataclass
class Running:
    """A simulated cloud on loopback and a hostmap Cloud connected to it."""

    sim: SimServer
    cloud: OpenStackCloud
    clock: VirtualClock | None


@pytest.fixture
def start_sim() -> Iterator[Callable[..., Running]]:
    """Start simulated clouds for a test; all are stopped at its end."""
    started: list[Running] = []

    def start(data: dict[str, Any] | None = None, *, virtual: bool = True) -> Running:
        clock = VirtualClock() if virtual else None
        sim = SimServer(parse_scenario(data or scenario(), "test scenario"), clock=clock)
        sim.start()
        running = Running(sim, connect_with(sim.connect_kwargs()), clock)
        started.append(running)
        return running

    yield start
    for running in started:
        running.cloud.close()
        running.sim.stop()


@pytest.fixture
def env_cloud(start_sim: Callable[..., Running], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Running]:
    """Start a simulated cloud and point the OS_* variables at it, as a sourced keystone rc would."""
    for name in ("OS_CLOUD", "OS_AUTH_TYPE", "OS_TOKEN", "OS_CLIENT_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)

    def start(data: dict[str, Any] | None = None, *, virtual: bool = True) -> Running:
        running = start_sim(data, virtual=virtual)
        for name, value in running.sim.env().items():
            monkeypatch.setenv(name, value)
        return running

    return start


@dataclass
class CliResult:
    """What an in-process CLI run returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Standard output parsed as JSON."""
        return json.loads(self.out)


def run_cli(argv: list[str], stdin: str = "", *, seed: bool = False) -> CliResult:
    """Run `hostmap` (or the seed command) in-process and capture its output."""
    out, err = io.StringIO(), io.StringIO()
    entry = seed_main if seed else main
    code = entry(argv, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return CliResult(code, out.getvalue(), err.getvalue())


def write_json(path: Path, data: Any) -> Path:
    """Write `data` as JSON to `path` and return the path."""
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
