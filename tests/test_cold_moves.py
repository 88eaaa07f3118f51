"""Cold moves (`--cold`): SHUTOFF servers planned, migrated, confirmed, timed out and resumed on the simulated cloud."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conftest import Running, run_cli, scenario, swap_scenario, write_json
from hostmap.apply import ApplySettings, apply_map, plan_map
from hostmap.cloud.base import MigrationRecord
from hostmap.errors import InfeasiblePlanError, InputError
from hostmap.executor import Executor, ExecutorOptions
from hostmap.hostmap_file import parse_host_map
from hostmap.journal import Journal
from hostmap.model import Inventory, Limits, Plan, Step
from hostmap.planner import plan
from hostmap.reporter import Reporter
from hostmap.results import Advice, RunResult
from hostmap.serialise import plan_json, run_json

GIB_MB = 1024


def _stopped(**changes: Any) -> dict[str, Any]:
    """SMALL with web-0 (on compute001) SHUTOFF."""
    data = scenario(**changes)
    data["servers"][0]["status"] = "SHUTOFF"
    return data


def _ids(inventory: Inventory) -> dict[str, str]:
    return {s.name: s.id for s in inventory.servers}


def _plan(inventory: Inventory, host_map: dict[str, list[str]], *, cold: bool = True) -> Plan:
    return plan_map(parse_host_map(host_map, "map.json"), inventory, Limits(), duration=None, cold=cold)


def _execute(running: Running, host_map: dict[str, list[str]], **options: Any) -> RunResult:
    assert running.clock is not None
    inventory = running.cloud.inventory()
    return Executor(running.cloud, running.clock, options=ExecutorOptions(**options)).run(
        _plan(inventory, host_map), inventory)


def _server(running: Running, name: str) -> tuple[str | None, str, str | None]:
    status = running.cloud.server_status(_ids(running.cloud.inventory())[name])
    return status.host, status.status, status.task_state


def _cold_records(running: Running, name: str) -> list[str]:
    return [r.status for r in running.cloud.cold_migrations(_ids(running.cloud.inventory())[name])]


# -- the plan ------------------------------------------------------------------------------------------------


def test_a_shutoff_server_is_a_cold_step_only_with_cold(start_sim: Callable[..., Running]) -> None:
    """With cold, the SHUTOFF server's move is marked cold and the ACTIVE one's is not; without, the map is refused."""
    running = start_sim(_stopped())
    inventory = running.cloud.inventory()
    host_map = {"compute004": ["web-0", "web-1"]}
    the_plan = _plan(inventory, host_map)
    assert {s.move.server_name: s.move.cold for s in the_plan.steps} == {"web-0": True, "web-1": False}
    assert [m.get("cold") for m in plan_json(the_plan, inventory)["moves"] if m["server"] == "web-0"] == [True]
    with pytest.raises(InputError) as refused:
        _plan(inventory, host_map, cold=False)
    assert "web-0" in refused.value.problem
    assert "--cold" in refused.value.hint


def test_cold_changes_nothing_without_shutoff_servers(start_sim: Callable[..., Running]) -> None:
    """A cloud with no SHUTOFF server gets the same plan with and without cold, and its JSON has no cold key."""
    running = start_sim()
    inventory = running.cloud.inventory()
    host_map = {"compute004": ["web-0", "web-1", "cache-0"], "compute003": ["db-0"]}
    with_cold, without = _plan(inventory, host_map), _plan(inventory, host_map, cold=False)
    assert with_cold == without
    assert all("cold" not in m for m in plan_json(with_cold, inventory)["moves"])


def test_a_cold_move_never_detours(start_sim: Callable[..., Running]) -> None:
    """Two stopped servers that must swap between full hosts are refused, named as cold moves, not sent via a pivot."""
    data = swap_scenario()
    for server in data["servers"]:
        server["status"] = "SHUTOFF"
    running = start_sim(data)
    inventory = running.cloud.inventory()
    desired = {s.id: ("compute002" if s.name == "a" else "compute001") for s in inventory.servers}
    assert any(s.move.is_detour for s in plan(inventory, desired).steps)  # as live moves one would detour
    with pytest.raises(InfeasiblePlanError) as refused:
        plan(inventory, desired, cold=True)
    assert sorted(n for c in refused.value.cycles for n in c.cold) == ["a", "b"]
    assert not any(c.pinned for c in refused.value.cycles)


def test_an_active_partner_detours_for_a_cold_one(start_sim: Callable[..., Running]) -> None:
    """When only one of a swapping pair is stopped, the live one takes the detour and the cold one goes direct."""
    data = swap_scenario()
    data["servers"][0]["status"] = "SHUTOFF"  # a
    running = start_sim(data)
    inventory = running.cloud.inventory()
    desired = {s.id: ("compute002" if s.name == "a" else "compute001") for s in inventory.servers}
    steps = plan(inventory, desired, cold=True).steps
    assert [(s.move.server_name, s.move.cold, s.move.is_detour) for s in steps if s.move.server_name == "a"] == [
        ("a", True, False)]
    assert any(s.move.server_name == "b" and s.move.is_detour for s in steps)


# -- the executor ------------------------------------------------------------------------------------------------


def test_a_shutoff_server_is_cold_migrated_and_stays_shutoff(start_sim: Callable[..., Running]) -> None:
    """The cold step is sent as migrate, confirmed at VERIFY_RESIZE, and ends SHUTOFF on its target, marked cold."""
    running = start_sim(_stopped())
    result = _execute(running, {"compute004": ["web-0", "web-1"]})
    rows = {m.server_name: (m.outcome, m.cold) for m in result.moves}
    assert rows == {"web-0": ("migrated", True), "web-1": ("migrated", False)}
    assert _server(running, "web-0") == ("compute004", "SHUTOFF", None)
    assert _cold_records(running, "web-0") == ["confirmed"]
    assert [m["cold"] for m in run_json(result)["moves"] if m["server"] == "web-0"] == [True]
    running.sim.state.advance()
    assert running.sim.state.usage("compute001")[1] == 0  # the confirm freed web-0's claim on its source


def test_a_scheduler_refusal_fails_with_novas_reason(start_sim: Callable[..., Running]) -> None:
    """A target nova's scheduler refuses (full): the migration ends `error`, the move fails with nova's reason."""
    data = _stopped()
    data["flavors"].append({"name": "huge", "vcpus": 1, "ram": 15000, "disk": 10})
    data["servers"].append({"name": "filler", "flavor": "huge", "host": "compute004"})
    running = start_sim(data)
    inventory = running.cloud.inventory()
    # The planner would refuse the full host; the executor is given the move as if the room had gone since.
    planned = _plan(running.cloud.inventory(), {"compute003": ["web-0"]})
    moved = planned.steps[0].move
    step = replace(planned.steps[0], move=replace(moved, target="compute004", final_target="compute004"))
    assert running.clock is not None
    result = Executor(running.cloud, running.clock).run(replace(planned, steps=(step,)), inventory)
    (row,) = result.moves
    assert (row.outcome, row.cold) == ("failed", True)
    assert "No valid host found for cold migrate" in row.reason
    assert _server(running, "web-0") == ("compute001", "SHUTOFF", None)


def test_a_timeout_leaves_the_cold_migration_and_holds_the_source(start_sim: Callable[..., Running]) -> None:
    """Past the timeout the cold migration is left running (never aborted) and the next move from its host waits."""
    running = start_sim(_stopped(migration={"setup_s": 0.2}))  # 20 GiB of disk at 8 Gbit/s: about 21 s
    result = _execute(running, {"compute004": ["web-0", "web-1"]}, timeout_s=5.0)
    rows = {m.server_name: m for m in result.moves}
    assert rows["web-0"].outcome == "timed_out"
    assert "cannot abort" in rows["web-0"].reason
    assert rows["web-0"].unresolved
    assert rows["web-1"].outcome == "not_started"
    assert "may still be running" in rows["web-1"].reason
    assert _cold_records(running, "web-0")[0] in ("pre-migrating", "migrating", "post-migrating")
    assert running.clock is not None
    running.clock.advance(60)
    assert _cold_records(running, "web-0") == ["finished"]  # not cancelled: nova goes on to VERIFY_RESIZE


def test_a_cold_migration_left_at_a_timeout_is_confirmed_by_the_next_apply(
    start_sim: Callable[..., Running], tmp_path: Path,
) -> None:
    """The journal keeps the timed-out cold move open; the next apply finds it VERIFY_RESIZE and confirms it."""
    running = start_sim(_stopped(migration={"setup_s": 0.2}))
    assert running.clock is not None
    host_map = {"compute004": ["web-0"]}

    def apply(timeout_s: float) -> RunResult:
        assert running.clock is not None
        return apply_map(
            running.cloud, cloud_key="sim", clock=running.clock, host_map=parse_host_map(host_map, "map.json"),
            map_text=json.dumps(host_map),
            settings=ApplySettings(ExecutorOptions(timeout_s=timeout_s), tmp_path / "journal.sqlite", cold=True),
            reporters=[], confirm_for=lambda inventory: None, interrupts=lambda: 0,
        )

    first = apply(5.0)
    assert [(m.outcome, m.cold) for m in first.moves] == [("timed_out", True)]
    running.clock.advance(60)
    assert _server(running, "web-0")[1] == "VERIFY_RESIZE"
    second = apply(600.0)
    assert [(m.outcome, m.cold) for m in second.moves] == [("migrated", True)]
    assert "resumed" in second.moves[0].reason
    assert second.reached
    assert _server(running, "web-0") == ("compute004", "SHUTOFF", None)
    assert _cold_records(running, "web-0") == ["confirmed"]
    posts = [r for r in running.sim.state.requests if r[0] == "POST" and "/action" in r[1]]
    assert len(posts) == 2  # one migrate, one confirmResize: never sent again


# -- the CLI ------------------------------------------------------------------------------------------------


def _drain_cloud(status: str = "SHUTOFF") -> dict[str, Any]:
    """Four hosts of 16 GiB; compute001 holds app-0..2 (app-1 in `status`), compute002 holds db-0."""
    data = scenario()
    data["flavors"].append({"name": "m1.medium", "vcpus": 2, "ram": 4 * GIB_MB, "disk": 2})
    data["servers"] = [
        {"name": f"app-{i}", "flavor": "m1.medium", "host": "compute001"} for i in range(3)
    ] + [{"name": "db-0", "flavor": "m1.medium", "host": "compute002"}]
    data["servers"][1]["status"] = status
    return data


def _opts(tmp_path: Path) -> list[str]:
    return ["--journal", str(tmp_path / "journal.sqlite"), "--log-file", str(tmp_path / "hostmap.log")]


def test_drain_cold_apply_empties_a_host_with_a_shutoff_server(tmp_path: Path) -> None:
    """drain --cold --apply --yes moves the SHUTOFF server cold and the others live, and the host ends empty."""
    cloud = ["--sim-scenario", str(write_json(tmp_path / "cloud.json", _drain_cloud())), "--virtual-time"]
    result = run_cli(["drain", "compute001", "--cold", "--apply", "--yes", "-f", "json", *cloud, *_opts(tmp_path)])
    assert result.code == 0, result.err
    report = result.json()
    assert report["reached"] is True
    assert report["drained"][0]["empty"] is True
    assert {m["server"]: (m["outcome"], m["cold"]) for m in report["moves"] if m["outcome"] != "skipped"} == {
        "app-0": ("migrated", False), "app-1": ("migrated", True), "app-2": ("migrated", False)}


def test_drain_without_cold_refuses_and_suggests_it(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """Without --cold, a SHUTOFF server makes the drain exit 3, naming it and suggesting --cold; nothing moves."""
    running = env_cloud(_drain_cloud())
    result = run_cli(["drain", "compute001", *_opts(tmp_path)])
    assert result.code == 3
    assert "app-1 (SHUTOFF)" in result.err
    assert "--cold" in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_drain_cold_still_refuses_a_suspended_server(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """With --cold a SUSPENDED server is still refused (nova migrates it neither way), by name."""
    env_cloud(_drain_cloud("SUSPENDED"))
    result = run_cli(["drain", "compute001", "--cold", *_opts(tmp_path)])
    assert result.code == 3
    assert "neither live nor cold migration can move app-1 (SUSPENDED)" in result.err


def test_a_cold_drain_map_needs_cold_to_apply(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """drain --cold -o MAP writes the map; apply refuses it without --cold (exit 2) and carries it out with it."""
    running = env_cloud(_drain_cloud(), virtual=False)
    out = tmp_path / "drain.json"
    drained = run_cli(["drain", "compute001", "--cold", "-o", str(out), *_opts(tmp_path)])
    assert drained.code == 0, drained.err
    refused = run_cli(["apply", str(out), "--yes", *_opts(tmp_path)])
    assert refused.code == 2
    assert "app-1" in refused.err
    assert "--cold" in refused.err
    applied = run_cli(["apply", str(out), "--cold", "--yes", *_opts(tmp_path)])
    assert applied.code == 0, applied.err
    assert "migrated (cold)" in applied.out
    assert json.loads(run_cli(["export", "--log-file", str(tmp_path / "l")]).out)["compute001"] == []
    assert _server(running, "app-1")[1:] == ("SHUTOFF", None)


def test_plan_cold_shows_the_cold_step(tmp_path: Path) -> None:
    """plan --cold on the simulated cloud marks the SHUTOFF server's step cold, in the table and the JSON."""
    cloud = ["--sim-scenario", str(write_json(tmp_path / "cloud.json", _stopped())), "--virtual-time",
             "--log-file", str(tmp_path / "log")]
    host_map = str(write_json(tmp_path / "map.json", {"compute004": ["web-0"]}))
    shown = run_cli(["plan", host_map, "--cold", "-f", "json", *cloud])
    assert shown.code == 0, shown.err
    assert [m.get("cold") for m in shown.json()["moves"]] == [True]
    table = run_cli(["plan", host_map, "--cold", *cloud])
    assert "compute004 (cold)" in table.out


# -- a crash, a double Ctrl-C and a refused confirm during a cold step -------------------------------------------


class _Crash(BaseException):
    """What kill -9 does to a run, in-process: it stops at once, with nothing caught and the journal as it was."""


class _CrashAt(Reporter):
    """Stops the run the first time the cold migration is seen in `status` (before the executor acts on it)."""

    def __init__(self, status: str) -> None:
        self._status = status

    def progress(self, step: Step, record: MigrationRecord) -> None:
        if step.move.cold and record.status == self._status:
            raise _Crash(record.status)


def _apply_cold(running: Running, tmp_path: Path, host_map: dict[str, list[str]], *,
                reporters: tuple[Reporter, ...] = (), **options: Any) -> RunResult:
    assert running.clock is not None
    return apply_map(
        running.cloud, cloud_key="sim", clock=running.clock, host_map=parse_host_map(host_map, "map.json"),
        map_text=json.dumps(host_map),
        settings=ApplySettings(ExecutorOptions(**options), tmp_path / "journal.sqlite", cold=True),
        reporters=list(reporters), confirm_for=lambda inventory: None, interrupts=lambda: 0,
    )


def _actions(running: Running, server: str) -> list[str]:
    """The server actions nova recorded for `server` (migrate, confirmResize, ...), in order."""
    return [a.action for a in running.sim.state.actions[_ids(running.cloud.inventory())[server]]]


@pytest.mark.parametrize(("status", "server_then"), [("migrating", "RESIZE"), ("finished", "VERIFY_RESIZE")])
def test_a_rerun_after_a_crash_during_a_cold_step_finishes_it_without_resending(
    start_sim: Callable[..., Running], tmp_path: Path, status: str, server_then: str,
) -> None:
    """Killed while the cold migration is RESIZE (or VERIFY_RESIZE): the rerun watches it on and confirms it once;
    migrate is sent once, nothing else moves, and the server ends SHUTOFF on its target."""
    running = start_sim(_stopped(migration={"setup_s": 0.2}))
    host_map = {"compute004": ["web-0"]}
    with pytest.raises(_Crash):
        _apply_cold(running, tmp_path, host_map, reporters=(_CrashAt(status),))
    assert _server(running, "web-0")[1] == server_then
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        assert [m.server_name for m in journal.unfinished("sim")] == ["web-0"]
    second = _apply_cold(running, tmp_path, host_map)
    assert [(m.server_name, m.outcome, m.cold) for m in second.moves] == [("web-0", "migrated", True)]
    assert "resumed" in second.moves[0].reason
    assert second.reached
    assert _server(running, "web-0") == ("compute004", "SHUTOFF", None)
    assert _cold_records(running, "web-0") == ["confirmed"]
    assert _actions(running, "web-0") == ["migrate", "confirmResize"]
    moved = [r for r in running.sim.state.requests if r[0] == "POST" and r[1].endswith("/action")]
    assert len(moved) == 2  # no other server was touched
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        assert journal.unfinished("sim") == []


def _wait_for_log(log: Path, text: str, count: int) -> None:
    """Wait (at most 60 s of wall time) until the run's log holds `text` `count` times."""
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().count(text) >= count):
        assert time.monotonic() < deadline, f"the log never showed {count} x {text!r}"
        time.sleep(0.05)


def test_ctrl_c_twice_aborts_the_live_migration_and_sees_the_cold_one_to_its_confirm(tmp_path: Path) -> None:
    """SIGINT twice while a cold and a live migration run: the live one is aborted (server back on its source), the
    cold one, which nova cannot abort, is watched to VERIFY_RESIZE and confirmed, its row says so; exit 130."""
    data = _stopped(migration={"setup_s": 0.2})
    data["flavors"].append({"name": "stopped-small", "vcpus": 1, "ram": 2048, "disk": 3})  # a copy of ~3 s
    data["servers"][0]["flavor"] = "stopped-small"
    data["servers"][3]["flavor"] = "m1.large"  # cache-0: 8 GiB of memory, ~9 s of live migration
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "cache-0"]})
    log = tmp_path / "log"
    child = subprocess.Popen(
        [sys.executable, "-m", "hostmap", "apply", str(host_map), "--cold", "--yes", "-f", "json",
         "--sim-scenario", str(write_json(tmp_path / "cloud.json", data)), "--journal", str(tmp_path / "j.sqlite"),
         "--log-file", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        _wait_for_log(log, "started:", 2)
        child.send_signal(signal.SIGINT)
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    assert "in flight (nova cannot abort a cold one" in err
    rows = {m["server"]: m for m in json.loads(out)["moves"]}
    assert (rows["web-0"]["outcome"], rows["web-0"]["cold"]) == ("migrated", True)
    assert "interrupted twice, but nova cannot abort a cold migration: watched to its end" in rows["web-0"]["reason"]
    assert rows["cache-0"]["outcome"] == "failed"
    assert "aborted by the operator (interrupted twice)" in rows["cache-0"]["reason"]
    assert "server confirmed on its source" in rows["cache-0"]["reason"]
    assert "POST confirmResize" in log.read_text()


def test_a_refused_confirm_leaves_the_server_verify_resize_with_advice_and_the_rerun_confirms_it(
    start_sim: Callable[..., Running], tmp_path: Path,
) -> None:
    """nova refuses confirmResize (its source's service went down): the move fails with nova's answer and the
    confirm_cold advice, the journal keeps it open, and once the source is back the rerun confirms it."""
    data = _stopped(migration={"setup_s": 0.2})
    data["faults"] = [{"kind": "service_down", "host": "compute001", "at_s": 1}]
    running = start_sim(data)
    host_map = {"compute004": ["web-0"]}
    first = _apply_cold(running, tmp_path, host_map)
    (row,) = first.moves
    assert (row.outcome, row.cold, row.unresolved) == ("failed", True, True)
    assert row.advice == Advice("confirm_cold", "compute004")
    assert "nova refused to confirm it for 120 s (HTTP 409: Service is unavailable at this time.)" in row.reason
    shown = run_json(first)["moves"][0]["reason"]
    assert shown.endswith("once the server is VERIFY_RESIZE on compute004, run hostmap apply again to confirm it "
                          "(or `openstack server resize confirm`)")
    assert _server(running, "web-0") == ("compute004", "VERIFY_RESIZE", None)
    running.sim.state.start_heartbeats("compute001")
    second = _apply_cold(running, tmp_path, host_map)
    assert [(m.outcome, m.cold) for m in second.moves] == [("migrated", True)]
    assert _server(running, "web-0") == ("compute004", "SHUTOFF", None)
    assert _actions(running, "web-0") == ["migrate", "confirmResize"]


def test_a_confirm_nova_answers_400_is_reported_with_the_confirm_advice(start_sim: Callable[..., Running]) -> None:
    """A 400 to every confirmResize: the executor stops sending it after confirm_wait_s and says so, with advice."""
    data = _stopped(migration={"setup_s": 0.2})
    data["faults"] = [{"kind": "api_error", "method": "POST", "path_regex": "/action$", "status": 400, "from_s": 1}]
    running = start_sim(data)
    result = _execute(running, {"compute004": ["web-0"]}, confirm_wait_s=30.0)
    (row,) = result.moves
    assert (row.outcome, row.advice) == ("failed", Advice("confirm_cold", "compute004"))
    assert "nova refused to confirm it for 30 s (HTTP 400" in row.reason
    assert _cold_records(running, "web-0") == ["finished"]
