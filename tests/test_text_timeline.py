"""The text timeline: per host that a schedule empties or fills, when it is expected empty or full (plan) and when
it got there (history RUN), in the tables and their JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli, write_json
from hostmap.journal import Journal
from hostmap.timeline import ActualMove, journal_moves, milestones

#: compute001 is emptied (a, b to compute002, c to compute003); compute002 keeps d and gains two.
DRAIN: dict[str, Any] = {
    "hosts": [{"name": f"compute00{i}", "vcpus": 8, "memory_mb": 8192, "disk_gb": 200} for i in range(1, 4)],
    "flavors": [{"name": "small", "vcpus": 1, "ram": 2048, "disk": 10}],
    "servers": [{"name": "a", "flavor": "small", "host": "compute001"},
                {"name": "b", "flavor": "small", "host": "compute001"},
                {"name": "c", "flavor": "small", "host": "compute001"},
                {"name": "d", "flavor": "small", "host": "compute002"}],
    "migration": {"setup_s": 0.5},
}
MAP = {"compute002": ["a", "b"], "compute003": ["c"]}


def test_a_host_whose_departure_failed_was_never_emptied() -> None:
    """As it happened, a host one of whose departures did not migrate has no time, nor has the target it missed."""
    plan = {"moves": [{"step": 1, "id": "A", "source": "h1", "target": "h2", "start_s": 0.0, "end_s": 4.0},
                      {"step": 2, "id": "B", "source": "h1", "target": "h3", "start_s": 0.0, "end_s": 5.0}]}
    actual = [ActualMove("A", "a", "h1", "h2", "migrated", "", 0.0, 3.0, 1),
              ActualMove("B", "b", "h1", "h3", "failed", "boom", 0.0, 2.0, 2)]
    assert [(m.host, m.at_s) for m in milestones(plan, actual)] == [("h2", 3.0), ("h1", None), ("h3", None)]
    assert [(m.host, m.at_s) for m in milestones(plan)] == [("h2", 4.0), ("h1", 5.0), ("h3", 5.0)]


def test_plan_and_history_say_when_each_host_is_empty_or_full(tmp_path: Path) -> None:
    """plan's table and JSON say compute001 is empty by its last departure; history RUN adds when it happened, and
    "not reached" for the hosts a failed migration left short."""
    scenario = write_json(tmp_path / "s.json", {**DRAIN, "faults": [
        {"kind": "fail_midway", "server": "c", "at_fraction": 0.2}]})
    host_map = write_json(tmp_path / "map.json", MAP)
    common = ["--sim-scenario", str(scenario), "--virtual-time", "--log-file", str(tmp_path / "log")]
    table = run_cli(["plan", str(host_map), *common])
    assert table.code == 0, table.err
    assert "hosts emptied or filled" in table.out
    document = run_cli(["plan", str(host_map), "-f", "json", *common]).json()
    rows = {m["host"]: m for m in document["milestones"]}
    ends = {m["step"]: m["end_s"] for m in document["moves"]}
    assert rows["compute001"] == {"host": "compute001", "leaving": 3, "arriving": 0, "servers_after": 0,
                                  "state": "empty", "by_s": max(ends.values())}
    assert (rows["compute002"]["state"], rows["compute002"]["servers_after"]) == ("full", 3)
    line = next(x for x in table.out.splitlines() if "compute001" in x and "empty by" in x)
    assert "empty by 0:00:0" in line

    journal = tmp_path / "j.db"
    applied = run_cli(["apply", str(host_map), "--yes", "--journal", str(journal), *common])
    assert applied.code == 1, applied.err  # incomplete: c failed
    history = run_cli(["history", "1", "--journal", str(journal)])
    assert history.code == 0, history.err
    lines = {x.split()[1]: x for x in history.out.splitlines() if x.startswith("│ compute")}
    assert "full by" in lines["compute002"].split("│")[6]
    assert "not reached" in lines["compute003"]
    assert "not reached" in lines["compute001"]
    actual = {m["host"]: m for m in run_cli(["history", "1", "--journal", str(journal), "-f", "json"]).json()[
        "milestones"]}
    assert actual["compute003"]["actual_by_s"] is None
    assert actual["compute002"]["actual_by_s"] is not None
    assert actual["compute001"]["by_s"] == rows["compute001"]["by_s"]


def test_history_of_a_rehearsal_is_on_the_run_s_own_clock(tmp_path: Path) -> None:
    """A --virtual-time run's history starts and ends each move where the run's (virtual) clock had them, not at
    the wall-clock moments the journal stamped, a fraction of a second apart."""
    scenario = write_json(tmp_path / "s.json", {**DRAIN, "migration": {"setup_s": 30.0}})
    host_map = write_json(tmp_path / "map.json", MAP)
    journal = tmp_path / "j.db"
    applied = run_cli(["apply", str(host_map), "--yes", "-f", "json", "--max-per-host", "1", "--journal",
                       str(journal), "--sim-scenario", str(scenario), "--virtual-time", "--log-file",
                       str(tmp_path / "log")])
    assert applied.code == 0, applied.err
    report = {m["server"]: m for m in applied.json()["moves"]}
    assert report["c"]["finished_s"] > 90  # three moves of over 30 s each, one after another, on virtual time
    with Journal.open(journal) as opened:
        moves = journal_moves(opened.run(1).moves)
    assert [(m.server, m.start_s, m.end_s) for m in moves] == [
        (s, pytest.approx(report[s]["started_s"], abs=0.01), pytest.approx(report[s]["finished_s"], abs=0.01))
        for s in ("a", "b", "c")]
    rows = {m["host"]: m for m in run_cli(["history", "1", "--journal", str(journal), "-f", "json"]).json()[
        "milestones"]}
    assert rows["compute001"]["actual_by_s"] == pytest.approx(report["c"]["finished_s"], abs=0.01)
