"""A migration request whose answer never came (a crash, a lost answer, a 409): found in nova, adopted, never resent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Running, run_cli, scenario, write_json
from hostmap.apply import ApplySettings, apply_map
from hostmap.executor import ExecutorOptions
from hostmap.hostmap_file import parse_host_map
from hostmap.journal import Journal
from hostmap.results import RunResult


def _posts(running: Running, server_id: str) -> int:
    return sum(1 for r in running.sim.state.requests if r[0] == "POST" and f"/servers/{server_id}/action" in r[1])


def _apply_sim(tmp_path: Path, data: dict[str, Any], host_map: dict[str, list[str]]) -> Any:
    scenario_path = write_json(tmp_path / "scenario.json", data)
    map_path = write_json(tmp_path / "map.json", host_map)
    return run_cli(["apply", str(map_path), "--yes", "-f", "json", "--sim-scenario", str(scenario_path),
                    "--virtual-time", "--log-file", str(tmp_path / "log"), "--journal", str(tmp_path / "j.sqlite")])


@pytest.mark.timeout(120)
def test_kill_9_before_nova_answers_is_adopted_on_rerun(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """kill -9 before nova answered os-migrateLive: the rerun finds the migration, reports it, sends no second POST."""
    data = scenario(faults=[{"kind": "slow", "method": "POST", "path_regex": "/action$", "seconds": 3.0}])
    running = env_cloud(data, virtual=False)
    server_id = next(s.id for s in running.cloud.inventory().servers if s.name == "web-0")
    journal, log = tmp_path / "journal.sqlite", tmp_path / "first.log"
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    child = subprocess.Popen(
        [sys.executable, "-m", "hostmap", "apply", str(host_map), "--yes", "--journal", str(journal),
         "--log-file", str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and "POST live-migrate" in log.read_text()):
            assert time.monotonic() < deadline, "the first apply never sent its request"
            time.sleep(0.05)
        time.sleep(0.3)  # the request is on its way; nova (the slow fault) has not answered yet
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    result = run_cli(["apply", str(host_map), "--yes", "--journal", str(journal), "-f", "json",
                      "--log-file", str(tmp_path / "second.log")])
    assert result.code == 0, result.err
    rows = result.json()["moves"]
    assert [(m["server"], m["outcome"]) for m in rows] == [("web-0", "migrated")]
    assert "sent, no answer" in rows[0]["reason"]
    assert "nova shows migration" in rows[0]["reason"]
    assert _posts(running, server_id) == 1
    detail = run_cli(["history", "1", "--journal", str(journal), "-f", "json"]).json()
    assert [(m["outcome"], bool(m["migration_id"])) for m in detail["moves"]] == [("migrated", True)]


def test_409_already_migrating_is_adopted(tmp_path: Path) -> None:
    """nova carries the request out but answers 409 (already migrating): the migration is adopted, not failed."""
    data = scenario(faults=[{"kind": "api_error", "method": "POST", "path_regex": "/action$", "status": 409,
                             "count": 1, "after": True}])
    result = _apply_sim(tmp_path, data, {"compute004": ["web-0"]})
    assert result.code == 0, result.err
    move = result.json()["moves"][0]
    assert move["outcome"] == "migrated"
    assert "409" in move["reason"]
    assert "nova shows migration" in move["reason"]
    posts = [line for line in (tmp_path / "log").read_text().splitlines() if "POST live-migrate" in line]
    assert len(posts) == 1


def test_409_for_a_server_not_migrating_is_a_refusal(tmp_path: Path) -> None:
    """A 409 while the server is not migrating stays what it is: nova refused the request."""
    data = scenario(faults=[{"kind": "api_error", "method": "POST", "path_regex": "/action$", "status": 409,
                             "count": 1}])
    result = _apply_sim(tmp_path, data, {"compute004": ["web-0"]})
    assert result.code == 1
    move = result.json()["moves"][0]
    assert move["outcome"] == "failed"
    assert "nova refused the request (HTTP 409)" in move["reason"]


def test_unclear_failure_says_what_nova_shows(tmp_path: Path) -> None:
    """A 502 after nova carried the request out: report and journal say it was sent unanswered, and what nova shows."""
    data = scenario(faults=[{"kind": "api_error", "method": "POST", "path_regex": "/action$", "status": 502,
                             "count": 1, "after": True}])
    result = _apply_sim(tmp_path, data, {"compute004": ["web-0"]})
    assert result.code == 0, result.err
    move = result.json()["moves"][0]
    assert move["outcome"] == "migrated"
    assert move["reason"].startswith("sent, no answer: HTTP 502")
    assert "nova shows migration" in move["reason"]
    detail = run_cli(["history", "1", "--journal", str(tmp_path / "j.sqlite"), "-f", "json"]).json()
    assert "nova shows migration" in detail["moves"][0]["reason"]


def test_unclear_failure_nova_did_nothing(tmp_path: Path) -> None:
    """A 503 before nova carried the request out: after the grace nova shows nothing, and the reason says so."""
    data = scenario(faults=[{"kind": "api_error", "method": "POST", "path_regex": "/action$", "status": 503,
                             "count": 1}])
    result = _apply_sim(tmp_path, data, {"compute004": ["web-0"]})
    assert result.code == 1
    move = result.json()["moves"][0]
    assert move["outcome"] == "failed"
    assert "nova shows no migration for it and the server ACTIVE on compute001 with no task" in move["reason"]


def _apply_map(running: Running, tmp_path: Path, host_map: dict[str, list[str]]) -> RunResult:
    assert running.clock is not None
    return apply_map(
        running.cloud, cloud_key="sim", clock=running.clock, host_map=parse_host_map(host_map, "map.json"),
        map_text=json.dumps(host_map), settings=ApplySettings(ExecutorOptions(), tmp_path / "journal.sqlite"),
        reporters=[], confirm_for=lambda inventory: None, interrupts=lambda: 0,
    )


def _crashed_intent(tmp_path: Path, server_id: str) -> None:
    """A journal as a run leaves it when killed right after recording its intent to move web-0 to compute004."""
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        run_id = journal.start_run(cloud="sim", map_source="map.json", map_text="{}", plan={}, pid=999_999)
        journal.intend(run_id, step=0, server_id=server_id, server_name="web-0", source="compute001",
                       target="compute004", known_migration_ids=[])


def test_unanswered_request_nova_never_got_is_judged_on_what_nova_shows(
        tmp_path: Path, start_sim: Callable[..., Running]) -> None:
    """A crashed run's request nova never carried out: looked for during the grace, then journaled with the facts."""
    running = start_sim()
    server_id = next(s.id for s in running.cloud.inventory().servers if s.name == "web-0")
    _crashed_intent(tmp_path, server_id)
    assert running.clock is not None
    began = running.clock.now()
    result = _apply_map(running, tmp_path, {"compute004": ["web-0"]})
    resumed, fresh = result.moves
    assert resumed.outcome == "not_started"
    assert "sent, no answer (hostmap stopped before nova answered)" in resumed.reason
    assert "nova shows no migration for it and the server ACTIVE on compute001 with no task" in resumed.reason
    assert "nor a live-migration request among its instance actions" in resumed.reason
    assert running.clock.now() - began >= ExecutorOptions().ambiguous_grace_s  # it looked, it did not guess
    assert fresh.outcome == "migrated"  # then the fresh plan sent it, once
    assert _posts(running, server_id) == 1
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        assert journal.run(1).moves[0].reason == resumed.reason.removeprefix("resumed: an interrupted run had sent "
                                                                           "this request; ")


def test_unanswered_request_adopted_when_its_migration_appears(
        tmp_path: Path, start_sim: Callable[..., Running]) -> None:
    """A crashed run's request that nova carried out: the rerun adopts its migration and sends nothing."""
    running = start_sim()
    server_id = next(s.id for s in running.cloud.inventory().servers if s.name == "web-0")
    _crashed_intent(tmp_path, server_id)
    running.cloud.start_live_migration(server_id, "compute004")  # what nova did after the client went away
    result = _apply_map(running, tmp_path, {"compute004": ["web-0"]})
    assert [(m.server_name, m.outcome) for m in result.moves] == [("web-0", "migrated")]
    assert _posts(running, server_id) == 1


def test_unanswered_request_server_busy_with_another_task_is_decided_after_the_grace(
        tmp_path: Path, start_sim: Callable[..., Running]) -> None:
    """A crashed run's request, and the server busy with someone's cold migration: no live-migration request among
    its instance actions, so it is judged after the grace (not waited on to the timeout) and not sent again."""
    data = scenario()
    data["flavors"].append({"name": "m1.disk", "vcpus": 1, "ram": 2048, "disk": 150})  # a long disk copy
    data["servers"][0]["flavor"] = "m1.disk"
    running = start_sim(data)
    server_id = next(s.id for s in running.cloud.inventory().servers if s.name == "web-0")
    _crashed_intent(tmp_path, server_id)
    running.cloud.start_cold_migration(server_id, "compute003")  # another operator's, while hostmap was down
    assert running.clock is not None
    began = running.clock.now()
    result = _apply_map(running, tmp_path, {"compute003": ["cache-0"]})  # web-0 is no longer hostmap's to move
    resumed = result.moves[0]
    assert resumed.outcome == "not_started"
    assert "nor a live-migration request among its instance actions" in resumed.reason
    assert "busy with another task (resize_" in resumed.reason
    assert running.clock.now() - began < ExecutorOptions().timeout_s
    assert _posts(running, server_id) == 1  # the cold migration's; no live migration was sent
