"""hostmap's CLI against the real Nova control plane, and the same scenarios through the simulated cloud.

Each scenario runs `hostmap apply` as an operator would (OS_* variables, password auth through keystone) against
a real nova-api/conductor/scheduler/placement with fake computes (see harness.py), checks what the scenario
promises, then runs the same scenario through `hostmap.sim` and compares the outcomes: per server the outcome
class and final host, the exit code, the status codes of the os-migrateLive requests and the final status of each
live migration. Differences that are understood are listed in KNOWN_DIFFERENCES and in docs/realnova.md.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from conftest import CliResult, scenario, write_json
from hostmap.cli import main
from hostmap.sim.scenario import parse_scenario
from hostmap.sim.server import SimServer
from hostmap.sim.state import Consumer

pytestmark = [pytest.mark.realnova, pytest.mark.timeout(900)]

#: Understood differences between the simulator and real nova: (scenario, field) -> reason. Kept in step with
#: docs/realnova.md.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}


@dataclass
class Case:
    """A scenario: a simulator scenario, a host map, apply's options, and what must come of it."""

    name: str
    data: dict[str, Any]
    host_map: dict[str, list[str]]
    args: list[str] = field(default_factory=list)
    slow: dict[str, float] = field(default_factory=dict)  # real nova: migration seconds; sim: never_converge
    take_room_after_planning: str | None = None  # host whose free memory vanishes between planning and moving
    check: Callable[[Outcome], None] | None = None


@dataclass
class Outcome:
    """What one run produced, in terms comparable across both clouds."""

    result: CliResult
    hosts: dict[str, str]  # server name -> final host
    migrations: dict[str, list[str]]  # server name -> live-migration statuses, oldest first
    post_statuses: list[int]  # status codes of POST /servers/{id}/action

    @property
    def moves(self) -> dict[str, dict[str, Any]]:
        if self.result.code in (0, 1, 130) and self.result.out.strip():
            return {m["server"]: m for m in self.result.json()["moves"]}
        return {}

    def comparable(self) -> dict[str, Any]:
        return {
            "exit": self.result.code,
            "outcomes": {name: m["outcome"] for name, m in self.moves.items()},
            "final_hosts": self.hosts,
            "migration_statuses": self.migrations,
            "post_statuses": self.post_statuses,
        }


class _Api:
    """Admin reads through keystone's catalog, for either cloud."""

    def __init__(self, env: dict[str, str]) -> None:
        auth = v3.Password(auth_url=env["OS_AUTH_URL"], username=env["OS_USERNAME"], password=env["OS_PASSWORD"],
                           project_name=env["OS_PROJECT_NAME"], user_domain_name="Default",
                           project_domain_name="Default")
        self.session = ks_session.Session(auth=auth)

    def get(self, service: str, path: str, version: str) -> Any:
        response = self.session.get(path, endpoint_filter={"service_type": service, "interface": "public"},
                                    headers={"OpenStack-API-Version": f"{service} {version}"})
        return response.json()

    def free_memory_mb(self, hypervisor_hostname: str) -> tuple[str, int]:
        rps = self.get("placement", f"/resource_providers?name={hypervisor_hostname}", "1.39")["resource_providers"]
        rp = rps[0]["uuid"]
        inv = self.get("placement", f"/resource_providers/{rp}/inventories", "1.39")["inventories"]["MEMORY_MB"]
        used = self.get("placement", f"/resource_providers/{rp}/usages", "1.39")["usages"].get("MEMORY_MB", 0)
        return rp, int((inv["total"] - inv["reserved"]) * inv["allocation_ratio"]) - used

    def outcome(self, result: CliResult, post_statuses: list[int]) -> Outcome:
        servers = self.get("compute", "/servers/detail?all_tenants=1", "2.96")["servers"]
        names = {s["id"]: s["name"] for s in servers}
        migrations: dict[str, list[str]] = {}
        listing = self.get("compute", "/os-migrations?migration_type=live-migration", "2.96")["migrations"]
        for m in sorted(listing, key=lambda m: m["id"]):
            migrations.setdefault(names[m["instance_uuid"]], []).append(m["status"])
        self.session.session.close()
        return Outcome(result, {s["name"]: s["OS-EXT-SRV-ATTR:host"] for s in servers}, migrations, post_statuses)


class _HookStdin(io.StringIO):
    """Prompt answers: the first prompt (planning is over) runs `hook`, then answers 'all'."""

    def __init__(self, hook: Callable[[], None]) -> None:
        super().__init__()
        self._hook: Callable[[], None] | None = hook

    def readline(self, size: int | None = -1) -> str:
        if self._hook is not None:
            self._hook()
            self._hook = None
        return "a\n"


def _hypervisor(data: dict[str, Any], host: str) -> str:
    return str(next(h.get("hypervisor_hostname", host + ".localdomain") for h in data["hosts"] if h["name"] == host))


def _run(case: Case, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         take_room: Callable[[_Api], None] | None) -> tuple[CliResult, _Api]:
    for name in ("OS_CLOUD", "OS_AUTH_TYPE", "OS_TOKEN", "OS_CLIENT_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    api = _Api(env)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_json(tmp_path / f"{case.name}.json", case.host_map)
    argv = ["apply", str(path), "-f", "json", "--log-file", str(tmp_path / "hostmap.log"), *case.args]
    if take_room is None:
        stdin: io.StringIO = io.StringIO()
        argv.append("--yes")
    else:
        stdin = _HookStdin(lambda: take_room(api))
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdin=stdin, stdout=out, stderr=err)
    return CliResult(code, out.getvalue(), err.getvalue()), api


def run_real(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    sess = harness.session()
    with sess.cloud(case.data, slow=case.slow) as cloud:
        take_room = None
        if case.take_room_after_planning:
            hypervisor = _hypervisor(case.data, case.take_room_after_planning)

            def take_room(api: _Api) -> None:
                rp, free = api.free_memory_mb(hypervisor)
                body = {"allocations": {rp: {"resources": {"MEMORY_MB": free}}},
                        "project_id": api.session.get_project_id(), "user_id": api.session.get_user_id(),
                        "consumer_generation": None}
                response = cloud.placement("PUT", f"/allocations/{uuid.uuid4()}", body, version="1.28")
                assert response.status_code == 204, response.text

        result, api = _run(case, sess.env(), tmp_path / "real", monkeypatch, take_room)
        posts = [r["status"] for r in cloud.requests()
                 if r["service"] == "compute" and r["method"] == "POST" and r["path"].endswith("/action")]
        return api.outcome(result, posts)


def run_sim(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    data = json.loads(json.dumps(case.data))
    data.setdefault("faults", []).extend({"kind": "never_converge", "server": name} for name in case.slow)
    with SimServer(parse_scenario(data, case.name)) as sim:
        take_room = None
        if case.take_room_after_planning:
            host = case.take_room_after_planning
            hypervisor = _hypervisor(case.data, host)

            def take_room(api: _Api) -> None:
                _, free = api.free_memory_mb(hypervisor)
                state = sim.state
                with state.lock:  # what the simulator's capacity_taken fault does, at this very moment
                    state.consumers[str(uuid.uuid4())] = Consumer(state.admin_project_id, state.user_id,
                                                                  {host: (0, free, 0)})
                    state.hosts[host].generation += 1

        result, api = _run(case, sim.env(), tmp_path / "sim", monkeypatch, take_room)
        posts = [status for method, path, status, _ in sim.state.requests
                 if method == "POST" and path.endswith("/action")]
        return api.outcome(result, posts)


# -- the scenarios ------------------------------------------------------------------------------------------------

def _several(outcome: Outcome) -> None:
    assert outcome.result.code == 0, outcome.result.err
    report = outcome.result.json()
    assert report["reached"] is True
    assert {n: (m["outcome"], m["target"]) for n, m in outcome.moves.items()} == {
        "web-0": ("migrated", "compute002"), "web-1": ("migrated", "compute004"),
        "db-0": ("migrated", "compute004"), "cache-0": ("skipped", "compute003")}
    assert outcome.hosts == {"web-0": "compute002", "web-1": "compute004", "db-0": "compute004",
                             "cache-0": "compute003"}


def _no_room(outcome: Outcome) -> None:
    assert outcome.result.code == 3, outcome.result.err
    assert "compute002: MEMORY_MB needed 24576, available 16384" in outcome.result.err
    assert outcome.migrations == {}
    assert outcome.post_statuses == []


def _room_vanished(outcome: Outcome) -> None:
    assert outcome.result.code == 1, outcome.result.err
    move = outcome.moves["web-0"]
    assert move["outcome"] == "failed"
    assert "No valid host" in move["reason"]
    assert outcome.hosts["web-0"] == "compute001"


def _disabled(outcome: Outcome) -> None:
    assert outcome.result.code == 2, outcome.result.err
    assert "is disabled" in outcome.result.err
    assert outcome.migrations == {}
    assert outcome.post_statuses == []


def _timeout(outcome: Outcome) -> None:
    assert outcome.result.code == 1, outcome.result.err
    move = outcome.moves["db-0"]
    assert move["outcome"] == "timed_out"
    assert "confirmed on its source" in move["reason"]
    assert outcome.hosts["db-0"] == "compute002"
    assert outcome.migrations["db-0"] == ["cancelled"]


def _swap(outcome: Outcome) -> None:
    assert outcome.result.code == 0, outcome.result.err
    assert outcome.hosts == {"big-a": "compute002", "big-b": "compute001"}
    assert {m["outcome"] for m in outcome.moves.values()} == {"migrated"}
    assert len([s for statuses in outcome.migrations.values() for s in statuses]) == 3  # one detour via the pivot


def _drained(outcome: Outcome) -> None:
    assert outcome.result.code == 0, outcome.result.err
    assert outcome.hosts["web-0"] == "compute002"
    assert outcome.hosts["web-1"] == "compute003"


def _tight(**changes: Any) -> dict[str, Any]:
    data = scenario(**changes)
    for host in data["hosts"]:
        host.update(cpu_allocation_ratio=16.0, disk_allocation_ratio=1.0)
    return data


def _swap_scenario() -> dict[str, Any]:
    data = _tight()
    data["flavors"] = [{"name": "m1.xl", "vcpus": 4, "ram": 12288, "disk": 40}]
    data["servers"] = [{"name": "big-a", "flavor": "m1.xl", "host": "compute001"},
                       {"name": "big-b", "flavor": "m1.xl", "host": "compute002"}]
    return data


def _overfull() -> dict[str, Any]:
    data = _tight()
    data["servers"] += [{"name": f"big-{i}", "flavor": "m1.large", "host": "compute004"} for i in range(2)]
    return data


def _disabled_scenario() -> dict[str, Any]:
    data = _tight()
    data["hosts"][3]["enabled"] = False
    return data


CASES = [
    Case("move_several", _tight(), {"compute002.cloud.example.com": ["web-0"],
                                    "compute004.cloud.example.com": ["web-1", "db-0"], "compute003": ["cache-0"]},
         check=_several),
    Case("no_room_preflight", _overfull(), {"compute002": ["big-0", "big-1"]}, check=_no_room),
    Case("room_vanishes_after_planning", _tight(), {"compute004": ["web-0"]},
         take_room_after_planning="compute004", check=_room_vanished),
    Case("disabled_target", _disabled_scenario(), {"compute004": ["web-0"]}, check=_disabled),
    Case("slow_migration_timeout", _tight(), {"compute004": ["db-0"]}, args=["--timeout", "5"],
         slow={"db-0": 600}, check=_timeout),
    Case("swap_through_pivot", _swap_scenario(), {"compute002": ["big-a"], "compute001": ["big-b"]}, check=_swap),
    Case("drain_one_source", _tight(), {"compute002": ["web-0"], "compute003": ["web-1"]},
         args=["--max-per-host", "2"], check=_drained),
]


@pytest.fixture
def real_session() -> Iterator[harness.Session]:
    return harness.session()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_scenario_on_real_nova_and_sim(case: Case, real_session: harness.Session, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario keeps its promise on real nova, and the simulator gives the same outcome."""
    real = run_real(case, tmp_path, monkeypatch)
    assert case.check is not None
    case.check(real)
    sim = run_sim(case, tmp_path, monkeypatch)
    case.check(sim)
    real_view, sim_view = real.comparable(), sim.comparable()
    reasons = {side: {n: m["reason"] for n, m in o.moves.items()} for side, o in (("real", real), ("sim", sim))}
    write_json(tmp_path / "conformance.json", {"real": real_view, "sim": sim_view, "reasons": reasons})
    differences = {key: {"real": real_view[key], "sim": sim_view[key]} for key in real_view
                   if real_view[key] != sim_view[key] and (case.name, key) not in KNOWN_DIFFERENCES}
    assert differences == {}, json.dumps(differences, indent=1)
