"""hostmap's CLI against the real Nova control plane, and the same scenarios through the simulated cloud.

Each scenario runs `hostmap apply` as an operator would (OS_* variables, password auth through keystone) against
a real nova-api/conductor/scheduler/placement with fake computes (see harness.py), checks what the scenario
promises, then runs the same scenario through `hostmap.sim` and compares the outcomes: per server the outcome
class and final host, the exit code, the status codes of the os-migrateLive requests and the final status of each
live migration. Differences that are understood are listed in KNOWN_DIFFERENCES and in docs/realnova.md.

test_group_policies_on_os_migrate_live sends raw os-migrateLive requests (no hostmap) at server-group members on
both clouds and compares the answers; its understood differences are in KNOWN_PROBE_DIFFERENCES.
"""

from __future__ import annotations

import io
import json
import re
import time
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
#: docs/realnova.md. None is left: the one there was (anti_affinity_swap, nova's scheduler counting a member on the
#: host it left until the next instance sync) is modelled by the simulator and waited out by hostmap.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}

#: anti_affinity_swap: the computes sync the scheduler's view of their instances every SYNC_S seconds (real nova's
#: scheduler_instance_sync_interval, the simulator's migration.instance_sync_s) and hostmap waits SETTLE_S.
SYNC_S = 10
SETTLE_S = 12


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
    real_check: Callable[[Outcome], None] | None = None  # what real nova does instead, where KNOWN_DIFFERENCES say
    # Hosts whose stale list of instances real nova's scheduler must have re-created at a periodic instance sync.
    real_resyncs: frozenset[str] = frozenset()
    # The command instead of `apply MAP` (the host map is then unused), e.g. a drain with --apply.
    command: list[str] | None = None
    # Further commands run after it on the same cloud, in order (each with --yes, the same journal and -f json).
    then: list[list[str]] = field(default_factory=list)


@dataclass
class Outcome:
    """What one run produced, in terms comparable across both clouds."""

    result: CliResult
    hosts: dict[str, str]  # server name -> final host
    migrations: dict[str, list[str]]  # server name -> live-migration statuses, oldest first
    post_statuses: list[int]  # status codes of POST /servers/{id}/action
    services: dict[str, str] = field(default_factory=dict)  # host -> "enabled" or "disabled: reason"
    resynced: set[str] = field(default_factory=set)  # real nova: hosts whose list a periodic sync found stale
    cold: dict[str, list[str]] = field(default_factory=dict)  # server name -> cold-migration statuses, oldest first
    statuses: dict[str, str] = field(default_factory=dict)  # server name -> its final status (ACTIVE, SHUTOFF, ...)
    steps: list[CliResult] = field(default_factory=list)  # the results of Case.then's commands
    # Per command (the first, then Case.then's): the compute writes it made, "METHOD what status" in order.
    writes: list[list[str]] = field(default_factory=list)

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
            "services": self.services,
            "cold_migration_statuses": self.cold,
            "server_statuses": self.statuses,
            "steps": [{"exit": r.code, "moves": _moves_of(r)} for r in self.steps],
            "writes": self.writes,
        }


def _moves_of(result: CliResult) -> dict[str, list[Any]]:
    """A run's moves by server: [outcome, target, cold] (empty when the run printed no report)."""
    if result.code not in (0, 1, 130) or not result.out.strip():
        return {}
    return {m["server"]: [m["outcome"], m["target"], m["cold"]] for m in result.json()["moves"]}


def _write(service: str, method: str, path: str, status: int) -> str | None:
    """A compute request that changes something, as "METHOD what status" without ids; None for anything else."""
    if service != "compute" or method not in ("POST", "PUT", "DELETE"):
        return None
    what = ("action" if path.endswith("/action") else "os-services" if "/os-services/" in path
            else "migration" if "/migrations/" in path else path.rstrip("/").rsplit("/", 1)[-1])
    return f"{method} {what} {status}"


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

    def compute(self, method: str, path: str, body: Any = None, version: str = "2.96") -> Any:
        """A raw compute request (the keystoneauth response, whatever its status)."""
        return self.session.request(path, method, json=body, raise_exc=False,
                                    endpoint_filter={"service_type": "compute", "interface": "public"},
                                    headers={"OpenStack-API-Version": f"compute {version}"})

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
        cold: dict[str, list[str]] = {}
        for m in sorted(self.get("compute", "/os-migrations?migration_type=migration", "2.96")["migrations"],
                        key=lambda m: m["id"]):
            cold.setdefault(names[m["instance_uuid"]], []).append(m["status"])
        services = {
            s["host"]: s["status"] + (f": {s['disabled_reason']}" if s["status"] == "disabled" else "")
            for s in self.get("compute", "/os-services?binary=nova-compute", "2.96")["services"]
        }
        self.session.session.close()
        return Outcome(result, {s["name"]: s["OS-EXT-SRV-ATTR:host"] for s in servers}, migrations, post_statuses,
                       services, cold=cold, statuses={s["name"]: s["status"] for s in servers})


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


@dataclass
class _Runs:
    """The case's commands as run on one cloud: the first's result, then Case.then's, and each one's writes."""

    result: CliResult
    api: _Api
    steps: list[CliResult]
    writes: list[list[str]]


def _run(case: Case, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         take_room: Callable[[_Api], None] | None, *, writes: Callable[[], list[str]]) -> _Runs:
    """Run the case's commands in order; `writes` gives the cloud's compute writes so far."""
    for name in ("OS_CLOUD", "OS_AUTH_TYPE", "OS_TOKEN", "OS_CLIENT_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    api = _Api(env)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_json(tmp_path / f"{case.name}.json", case.host_map)
    common = ["-f", "json", "--log-file", str(tmp_path / "hostmap.log"), "--journal", str(tmp_path / "journal.sqlite")]
    results: list[CliResult] = []
    per_command: list[list[str]] = []
    for i, command in enumerate([case.command or ["apply", str(path)], *case.then]):
        argv = [*command, *common, *(case.args if i == 0 else [])]
        if take_room is None or i > 0:
            stdin: io.StringIO = io.StringIO()
            argv.append("--yes")
        else:
            stdin = _HookStdin(lambda: take_room(api))
        before = len(writes())
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, stdin=stdin, stdout=out, stderr=err)
        results.append(CliResult(code, out.getvalue(), err.getvalue()))
        per_command.append(writes()[before:])
    return _Runs(results[0], api, results[1:], per_command)


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

        setup = len(cloud.requests())  # the cloud's own setup (flavors, aggregates, boots) is not the case's

        def writes() -> list[str]:
            return [w for r in cloud.requests()[setup:]
                    if (w := _write(r["service"], r["method"], r["path"], r["status"]))]

        runs = _run(case, sess.env(), tmp_path / "real", monkeypatch, take_room, writes=writes)
        posts = [r["status"] for r in cloud.requests()[setup:]
                 if r["service"] == "compute" and r["method"] == "POST" and r["path"].endswith("/action")]
        outcome = runs.api.outcome(runs.result, posts)
        outcome.steps, outcome.writes = runs.steps, runs.writes
        log = (cloud.workdir / "nova.log").read_text(encoding="utf-8", errors="replace")
        outcome.resynced = set(re.findall(r"The instance sync for host '([^']+)' did not match", log))
        return outcome


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

        def writes() -> list[str]:
            with sim.state.lock:
                seen = list(sim.state.requests)
            return [w for method, path, status, _ in seen
                    if path.startswith("/compute/") and (w := _write("compute", method, path, status))]

        runs = _run(case, sim.env(), tmp_path / "sim", monkeypatch, take_room, writes=writes)
        posts = [status for method, path, status, _ in sim.state.requests
                 if method == "POST" and path.endswith("/action")]
        outcome = runs.api.outcome(runs.result, posts)
        outcome.steps, outcome.writes = runs.steps, runs.writes
        return outcome


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


def _drain_applied(outcome: Outcome) -> None:
    assert outcome.result.code == 0, outcome.result.err
    assert "compute001" not in outcome.hosts.values()
    assert outcome.services["compute001"] == "disabled: hostmap run 1 (drain)"
    assert [d["empty"] for d in outcome.result.json()["drained"]] == [True]


def _zoned() -> dict[str, Any]:
    """compute001-003 in zone az1 (host aggregates), compute004-005 in az2, compute005 disabled by someone else;
    web-0 (compute001) and web-1 (compute002) pinned to az1 and kept apart by an anti-affinity group; db-0 on
    compute003; off-0 SHUTOFF on compute001."""
    data = _tight()
    data["hosts"].append(dict(data["hosts"][3], name="compute005", hypervisor_hostname="compute005.cloud.example.com",
                              enabled=False, disabled_reason="firmware update"))
    for host, zone in zip(data["hosts"], ("az1", "az1", "az1", "az2", "az2"), strict=True):
        host["zone"] = zone
    # off-0's small disk keeps the simulator's cold copy (disk / rate, in wall time here) short.
    data["flavors"].append({"name": "m1.slim", "vcpus": 1, "ram": 2048, "disk": 1})
    data["servers"] = [
        {"name": "web-0", "flavor": "m1.small", "host": "compute001", "pinned_zone": "az1"},
        {"name": "web-1", "flavor": "m1.small", "host": "compute002", "pinned_zone": "az1"},
        {"name": "db-0", "flavor": "m1.large", "host": "compute003"},
        {"name": "off-0", "flavor": "m1.slim", "host": "compute001", "status": "SHUTOFF"},
    ]
    data["server_groups"] = [{"name": "grp", "policy": "anti-affinity", "members": ["web-0", "web-1"]}]
    return data


def _maintenance_round_trip(outcome: Outcome) -> None:
    # apply of a map that takes web-0 out of its zone: refused before any write.
    assert outcome.result.code == 3, outcome.result.err
    assert "server web-0 is pinned to zone az1; host compute004 is in zone az2" in outcome.result.err
    assert outcome.writes[0] == []
    # drain compute001 --cold: its service disabled with the run's reason first; web-0 may not leave az1 (the empty
    # compute004) nor join web-1 (the emptier compute002); off-0, unpinned, is cold-migrated to the empty compute004
    # (migrate 202, then confirmResize 204, which nova answers only for a server in VERIFY_RESIZE).
    drain, restore = outcome.steps
    assert drain.code == 0, drain.err
    assert _moves_of(drain) == {"web-0": ["migrated", "compute003", False], "off-0": ["migrated", "compute004", True],
                                "web-1": ["skipped", "compute002", False], "db-0": ["skipped", "compute003", False]}
    assert outcome.writes[1][0] == "PUT os-services 200"
    assert sorted(outcome.writes[1][1:]) == ["POST action 202", "POST action 202", "POST action 204"]
    assert [d["disabled_reason"] for d in drain.json()["drained"]] == ["hostmap run 1 (drain)"]
    # restore 1 --cold: compute001 enabled again (its reason is run 1's), compute005 left disabled (someone else's
    # reason), both servers back, off-0 cold again and still SHUTOFF.
    assert restore.code == 0, restore.err
    assert _moves_of(restore) == {"web-0": ["migrated", "compute001", False], "off-0": ["migrated", "compute001", True]}
    assert outcome.writes[2][0] == "PUT os-services 200"
    assert [w for w in outcome.writes[2] if w.startswith("PUT")] == ["PUT os-services 200"]
    assert outcome.services == {"compute001": "enabled", "compute002": "enabled", "compute003": "enabled",
                                "compute004": "enabled", "compute005": "disabled: firmware update"}
    assert outcome.hosts == {"web-0": "compute001", "web-1": "compute002", "db-0": "compute003", "off-0": "compute001"}
    assert outcome.statuses["off-0"] == "SHUTOFF"
    assert outcome.cold == {"off-0": ["confirmed", "confirmed"]}  # nova's migration records of type `migration`
    assert outcome.migrations == {"web-0": ["completed", "completed"]}


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
    data["hosts"][3].update(enabled=False, disabled_reason="maintenance")
    return data


def _grouped(servers: list[tuple[str, str]], policy: str, **group: Any) -> dict[str, Any]:
    """Small servers (name, host) in one server group named grp."""
    data = _tight()
    data["servers"] = [{"name": name, "flavor": "m1.small", "host": host} for name, host in servers]
    data["server_groups"] = [{"name": "grp", "policy": policy, "members": [name for name, _ in servers], **group}]
    return data


def _anti_swap_scenario(instance_sync_s: float) -> dict[str, Any]:
    data = _grouped([("web-0", "compute001"), ("web-1", "compute002")], "anti-affinity")
    data["migration"]["instance_sync_s"] = instance_sync_s
    return data


def _anti_swapped(settle_s: float) -> Callable[[Outcome], None]:
    """The check of an anti-affinity swap run with `--group-settle settle_s`."""

    def check(outcome: Outcome) -> None:
        assert outcome.result.code == 0, outcome.result.err
        report = outcome.result.json()
        assert {n: (m["outcome"], m["target"]) for n, m in outcome.moves.items()} == {
            "web-0": ("migrated", "compute002"), "web-1": ("migrated", "compute001")}
        assert outcome.hosts["web-0"] == "compute002"
        assert outcome.hosts["web-1"] == "compute001"
        statuses = [s for statuses in outcome.migrations.values() for s in statuses]
        assert statuses == ["completed"] * 3  # one detour via a member-free host, nothing refused
        assert outcome.post_statuses == [202] * 3
        # web-1 arrives on compute001 settle_s after web-0 left it, web-0 on compute002 settle_s after web-1 left.
        assert report["makespan_s"] >= 2 * settle_s, report["makespan_s"]

    return check


def _joined(outcome: Outcome) -> None:
    assert outcome.result.code == 0, outcome.result.err
    assert outcome.moves["aff-1"]["outcome"] == "migrated"
    assert outcome.hosts == {"aff-0": "compute001", "aff-1": "compute001"}
    assert outcome.migrations == {"aff-1": ["completed"]}


def _two_per_host(outcome: Outcome) -> None:
    assert outcome.result.code == 0, outcome.result.err
    assert outcome.moves["spread-1"]["outcome"] == "migrated"
    assert outcome.hosts == {"spread-0": "compute001", "spread-1": "compute001"}
    assert outcome.migrations == {"spread-1": ["completed"]}


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
    # The computes sync every SYNC_S: nova's scheduler counts each member on the host it left until then, and
    # hostmap waits SETTLE_S before moving the other member there; real nova's scheduler must have re-created the
    # stale lists of both hosts at a sync.
    Case("anti_affinity_swap", _anti_swap_scenario(SYNC_S), {"compute002": ["web-0"], "compute001": ["web-1"]},
         args=["--group-settle", str(SETTLE_S)], check=_anti_swapped(SETTLE_S),
         real_resyncs=frozenset({"compute001", "compute002"})),
    # track_instance_changes off (instance_sync_s 0): the scheduler reads instances from the database, no wait.
    Case("anti_affinity_swap_untracked", _anti_swap_scenario(0), {"compute002": ["web-0"], "compute001": ["web-1"]},
         args=["--group-settle", "0"], check=_anti_swapped(0)),
    # Split over two hosts: nova's scheduler refuses to boot aff-1 so, cloud_server.py forces its host.
    Case("affinity_member_joins_group", _grouped([("aff-0", "compute001"), ("aff-1", "compute002")], "affinity"),
         {"compute001": ["aff-1"]}, check=_joined),
    Case("anti_affinity_two_per_host",
         _grouped([("spread-0", "compute001"), ("spread-1", "compute002")], "anti-affinity",
                  rules={"max_server_per_host": 2}),
         {"compute001": ["spread-1"]}, check=_two_per_host),
    # drain --apply: the compute service disabled through PUT /os-services/{id} (2.53+) before the moves, and
    # targets chosen by hostmap, kept apart for an anti-affinity group.
    Case("drain_apply_disables_first",
         _grouped([("spread-0", "compute001"), ("spread-1", "compute002")], "anti-affinity"), {},
         command=["drain", "compute001", "--apply"], check=_drain_applied),
    # One cloud for a maintenance round trip with zones (host aggregates with an availability_zone, servers booted
    # into az1), an anti-affinity group and a SHUTOFF server: a cross-zone map refused before anything is written,
    # drain --cold --apply (service disabled with the run's reason, a live and a cold move), restore --cold --apply
    # (only that service enabled again, both servers back).
    Case("maintenance_round_trip", _zoned(), {"compute004": ["web-0"]},
         then=[["drain", "compute001", "--cold", "--apply"], ["restore", "1", "--cold", "--apply"]],
         check=_maintenance_round_trip),
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
    (case.real_check or case.check)(real)
    assert case.real_resyncs <= real.resynced, real.resynced
    sim = run_sim(case, tmp_path, monkeypatch)
    case.check(sim)
    real_view, sim_view = real.comparable(), sim.comparable()
    reasons = {side: {n: m["reason"] for n, m in o.moves.items()} for side, o in (("real", real), ("sim", sim))}
    write_json(tmp_path / "conformance.json", {"real": real_view, "sim": sim_view, "reasons": reasons,
                                               "real_resynced": sorted(real.resynced)})
    differences = {key: {"real": real_view[key], "sim": sim_view[key]} for key in real_view
                   if real_view[key] != sim_view[key] and (case.name, key) not in KNOWN_DIFFERENCES}
    assert differences == {}, json.dumps(differences, indent=1)


# -- server-group policies on a raw os-migrateLive, without hostmap ----------------------------------------------

#: Understood differences in the raw os-migrateLive probes: (probe, field) -> reason. Kept in step with
#: docs/realnova.md.
_LATE_CHECK = (
    "while nova's scheduler reads a host's instances from the database (before that compute's reports have given it a "
    "list of its own, here on a host with one boot, or after a periodic sync found its list wrong) its anti-affinity "
    "filter does not count a member arriving there (its host is still its source), whereas with its own list it does "
    "(the scheduler adds each server it places to the chosen host's list); the destination compute's late check "
    "(check_can_live_migrate_destination counts in-progress migrations to and from the host) refuses instead, with "
    "GroupAffinityViolation, which the conductor does not handle as a pre-check failure: the migration is 'error' as "
    "in the simulator, but the server goes to vm_state ERROR (fault 'Anti-affinity instance group policy was "
    "violated', conductor event 'Migration error: Anti-affinity instance group policy was violated'); the simulator "
    "refuses in its scheduler and leaves the server ACTIVE")
KNOWN_PROBE_DIFFERENCES: dict[tuple[str, str], str] = {
    ("anti_affinity_onto_arrival_uncached", key): _LATE_CHECK for key in ("status", "reason")
}

FINAL_STATUSES = ("completed", "done", "error", "failed", "cancelled")


@dataclass(frozen=True)
class Probe:
    """One os-migrateLive to a host (2.96, no force) and whether the simulator's rule refuses it."""

    name: str
    server: str
    host: str
    refused: bool
    background: bool = False  # a slow migration left running while the probes after it are sent


def _probe_scenario() -> dict[str, Any]:
    data = _tight()
    fifth = dict(data["hosts"][3], name="compute005", hypervisor_hostname="compute005.cloud.example.com")
    data["hosts"].append(fifth)
    # compute001-003 get two boots or more: from a compute's second report on, nova's scheduler keeps its own list of
    # the host's instances, as in a deployment whose computes have been running a while; compute005 gets none, so
    # the scheduler reads its instances from the database.
    data["servers"] = [{"name": name, "flavor": "m1.small", "host": f"compute00{host}"} for name, host in (
        ("lone-0", 1), ("pair-0", 2), ("pair-1", 2), ("af-0", 1), ("af-1", 2), ("af-2", 3),
        ("fl-0", 1), ("fl-1", 2), ("fl-2", 4), ("un-0", 3), ("un-1", 2))]
    data["server_groups"] = [
        {"name": "lone", "policy": "affinity", "members": ["lone-0"]},
        {"name": "pair", "policy": "affinity", "members": ["pair-0", "pair-1"]},
        {"name": "after", "policy": "anti-affinity", "members": ["af-0", "af-1", "af-2"]},
        {"name": "flight", "policy": "anti-affinity", "members": ["fl-0", "fl-1", "fl-2"]},
        {"name": "uncached", "policy": "anti-affinity", "members": ["un-0", "un-1"]},
    ]
    return data


PROBES = [
    Probe("lone_affinity_member", "lone-0", "compute002", refused=True),
    Probe("affinity_pair_member", "pair-0", "compute001", refused=True),
    Probe("anti_affinity_onto_member", "af-2", "compute002", refused=True),  # af-1 is there
    Probe("anti_affinity_moves", "af-0", "compute004", refused=False),
    # af-0 has just left compute001: nova's scheduler counts it there until compute001's next instance sync (never
    # in this cloud; the simulator's first is at 120 s, after the probes).
    Probe("anti_affinity_onto_left", "af-1", "compute001", refused=True),
    Probe("anti_affinity_onto_arrived", "af-2", "compute004", refused=True),  # af-0 has arrived on compute004
    Probe("anti_affinity_leaves", "fl-0", "compute003", refused=False, background=True),
    Probe("anti_affinity_onto_departure", "fl-1", "compute001", refused=True),  # fl-0 is leaving compute001
    Probe("anti_affinity_onto_arrival", "fl-2", "compute003", refused=True),  # fl-0 is arriving on compute003
    Probe("anti_affinity_leaves_uncached", "un-0", "compute005", refused=False, background=True),
    Probe("anti_affinity_onto_arrival_uncached", "un-1", "compute005", refused=True),  # un-0 is arriving
]


def _send_probes(api: _Api) -> dict[str, dict[str, Any]]:
    """Send PROBES in order; per probe the POST status, the migration's final status, the server's host after."""
    ids = {s["name"]: s["id"] for s in api.get("compute", "/servers/detail?all_tenants=1", "2.96")["servers"]}
    seen: set[int] = set()
    found: dict[str, dict[str, Any]] = {}
    for probe in PROBES:
        sid = ids[probe.server]
        response = api.compute("POST", f"/servers/{sid}/action",
                               {"os-migrateLive": {"host": probe.host, "block_migration": "auto"}})
        view: dict[str, Any] = {"post": response.status_code, "migration": None}
        if response.status_code >= 400:
            view["message"] = response.text[:300]
        deadline = time.monotonic() + 60
        while response.status_code == 202 and time.monotonic() < deadline:
            listing = api.get("compute", f"/os-migrations?instance_uuid={sid}&migration_type=live-migration",
                              "2.96")["migrations"]
            new = [m for m in listing if m["id"] not in seen]
            status = new[0]["status"] if new else None
            if status in FINAL_STATUSES or (probe.background and status == "running"):
                seen.add(new[0]["id"])
                view["migration"] = status
                break
            time.sleep(0.1)
        request_id = response.headers.get("x-openstack-request-id")
        action = api.compute("GET", f"/servers/{sid}/os-instance-actions/{request_id}", version="2.84")
        events = action.json()["instanceAction"]["events"] if action.status_code == 200 else []
        view["reason"] = next((e.get("details") for e in events if e["event"] == "conductor_live_migrate_instance"),
                              None)
        view["events"] = sorted((e["event"], e.get("result"), e.get("details")) for e in events)
        server = api.get("compute", f"/servers/{sid}", "2.96")["server"]
        view["host"], view["status"] = server["OS-EXT-SRV-ATTR:host"], server["status"]
        view["fault"] = (server.get("fault") or {}).get("message")
        found[probe.name] = view
    api.session.session.close()
    return found


def test_group_policies_on_os_migrate_live(real_session: harness.Session, tmp_path: Path) -> None:
    """Raw os-migrateLive requests against group policies get the same answers from real nova and the simulator."""
    data = _probe_scenario()
    slow = {p.server: 120.0 for p in PROBES if p.background}
    with real_session.cloud(data, slow=slow) as cloud:
        real = _send_probes(_Api(real_session.env()))
        log = (cloud.workdir / "nova.log").read_text(encoding="utf-8", errors="replace").splitlines()
        scheduler_log = [line.split(" ", 2)[-1][:400] for line in log
                         if "returned 0 hosts" in line or "group policy" in line or "GroupAffinityViolation" in line]
        forced = cloud.forced
    sim_data = json.loads(json.dumps(data))
    sim_data["faults"] = [{"kind": "never_converge", "server": name} for name in slow]
    with SimServer(parse_scenario(sim_data, "group probes")) as sim:
        simulated = _send_probes(_Api(sim.env()))
    compared = ("post", "migration", "host", "status", "reason")
    write_json(tmp_path / "conformance.json", {"real": real, "sim": simulated, "real_scheduler_log": scheduler_log,
                                               "real_forced_boots": forced})
    assert forced == []
    start = {s["name"]: s["host"] for s in data["servers"]}
    for probe in PROBES:
        got = simulated[probe.name]
        if probe.refused:
            expected = (202, "error", start[probe.server], "ACTIVE")
        elif probe.background:
            expected = (202, "running", start[probe.server], "MIGRATING")
        else:
            expected = (202, "completed", probe.host, "ACTIVE")
        assert (got["post"], got["migration"], got["host"], got["status"]) == expected, probe.name
    differences = {(p.name, key): {"real": real[p.name][key], "sim": simulated[p.name][key]}
                   for p in PROBES for key in compared
                   if real[p.name][key] != simulated[p.name][key] and (p.name, key) not in KNOWN_PROBE_DIFFERENCES}
    assert differences == {}, json.dumps({f"{n}.{k}": v for (n, k), v in differences.items()}, indent=1)


# -- force_complete on a live migration, without hostmap ---------------------------------------------------------

#: Understood differences in the force_complete probes: (probe, field) -> reason. Kept in step with docs/realnova.md.
KNOWN_FORCE_DIFFERENCES: dict[tuple[str, str], str] = {}


def _force_scenario() -> dict[str, Any]:
    """slow-0 and slow-1 on compute001 (one live migration at a time there), done-0 on compute002."""
    data = _tight()
    data["hosts"][0]["max_concurrent_live_migrations"] = 1
    data["servers"] = [{"name": name, "flavor": "m1.small", "host": host}
                       for name, host in (("slow-0", "compute001"), ("slow-1", "compute001"), ("done-0", "compute002"))]
    return data


def _migration_of(api: _Api, sid: str, wanted: tuple[str, ...]) -> dict[str, Any]:
    """The server's newest live migration once its status is one of `wanted` (bounded wait)."""
    deadline = time.monotonic() + 60
    while True:
        listing = api.get("compute", f"/os-migrations?instance_uuid={sid}&migration_type=live-migration",
                          "2.96")["migrations"]
        newest = max(listing, key=lambda m: m["id"]) if listing else None
        if newest is not None and newest["status"] in wanted:
            return dict(newest)
        if time.monotonic() > deadline:
            raise AssertionError(f"migration of {sid} not in {wanted}: {newest}")
        time.sleep(0.1)


def _send_force_probes(api: _Api) -> dict[str, dict[str, Any]]:
    """force_complete at a finished, a queued, an unknown and a running migration; the answers and what came of it."""
    ids = {s["name"]: s["id"] for s in api.get("compute", "/servers/detail?all_tenants=1", "2.96")["servers"]}
    found: dict[str, dict[str, Any]] = {}

    def migrate(name: str, host: str) -> None:
        response = api.compute("POST", f"/servers/{ids[name]}/action",
                               {"os-migrateLive": {"host": host, "block_migration": "auto"}})
        assert response.status_code == 202, response.text

    def force(probe: str, name: str, mid: Any, version: str = "2.96") -> None:
        response = api.compute("POST", f"/servers/{ids[name]}/migrations/{mid}/action", {"force_complete": None},
                               version=version)
        message = next(iter(response.json().values()))["message"] if response.status_code >= 400 else None
        found[probe] = {"status": response.status_code,
                        "message": message.replace(ids[name], name) if message else None}

    migrate("done-0", "compute003")
    done = _migration_of(api, ids["done-0"], ("completed",))
    force("completed_migration", "done-0", done["id"])  # the server is no longer migrating
    migrate("slow-0", "compute004")
    running = _migration_of(api, ids["slow-0"], ("running",))
    migrate("slow-1", "compute003")
    queued = _migration_of(api, ids["slow-1"], ("queued",))  # compute001 runs one live migration at a time
    force("queued_migration", "slow-1", queued["id"])
    force("unknown_migration", "slow-0", running["id"] + 1000)
    force("below_2_22", "slow-0", running["id"], version="2.21")
    force("running_migration", "slow-0", running["id"])
    found["running_migration"]["then"] = _migration_of(api, ids["slow-0"], ("completed", "error", "failed"))["status"]
    force("running_after_the_queue", "slow-1", _migration_of(api, ids["slow-1"], ("running",))["id"])
    found["running_after_the_queue"]["then"] = _migration_of(api, ids["slow-1"],
                                                             ("completed", "error", "failed"))["status"]
    for server in api.get("compute", "/servers/detail?all_tenants=1", "2.96")["servers"]:
        found[f"server {server['name']}"] = {"status": server["status"], "host": server["OS-EXT-SRV-ATTR:host"]}
    api.session.session.close()
    return found


def test_force_complete_on_live_migrations(real_session: harness.Session, tmp_path: Path) -> None:
    """force_complete gets the same answers from real nova and the simulator, running, queued, done or unknown."""
    data = _force_scenario()
    slow = {"slow-0": 120.0, "slow-1": 120.0}
    with real_session.cloud(data, slow=slow):
        real = _send_force_probes(_Api(real_session.env()))
    sim_data = json.loads(json.dumps(data))
    sim_data["faults"] = [{"kind": "never_converge", "server": name} for name in slow]
    with SimServer(parse_scenario(sim_data, "force_complete probes")) as sim:
        simulated = _send_force_probes(_Api(sim.env()))
    write_json(tmp_path / "conformance.json", {"real": real, "sim": simulated})
    assert {p: v["status"] for p, v in simulated.items() if not p.startswith("server ")} == {
        "completed_migration": 409, "queued_migration": 400, "unknown_migration": 400, "below_2_22": 404,
        "running_migration": 202, "running_after_the_queue": 202}
    assert simulated["running_migration"]["then"] == simulated["running_after_the_queue"]["then"] == "completed"
    assert simulated["server slow-0"] == {"status": "ACTIVE", "host": "compute004"}
    assert simulated["server slow-1"] == {"status": "ACTIVE", "host": "compute003"}
    compared = ("status", "message", "then", "host")
    differences = {(probe, key): {"real": real[probe].get(key), "sim": simulated[probe].get(key)}
                   for probe in real for key in compared
                   if real[probe].get(key) != simulated[probe].get(key) and (probe, key) not in KNOWN_FORCE_DIFFERENCES}
    assert differences == {}, json.dumps({f"{n}.{k}": v for (n, k), v in differences.items()}, indent=1)
