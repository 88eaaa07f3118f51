"""`--events`: the JSON lines of real runs on the simulated cloud follow the documented vocabulary (docs/events.md)."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from conftest import run_cli, scenario, write_json
from hostmap.events import COMMON_FIELDS, EVENT_FIELDS, EVENTS_VERSION, EventStream

#: Three moves: web-0 migrates, web-1 fails midway, db-0 never converges and is aborted at the 30 s timeout.
MIXED = scenario(faults=[{"kind": "never_converge", "server": "db-0"},
                         {"kind": "fail_midway", "server": "web-1", "at_fraction": 0.3}])
MIXED_MAP = {"compute004": ["db-0", "web-0"], "compute003": ["web-1", "cache-0"]}


def _sim(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    return ["--sim-scenario", str(write_json(tmp_path / "scenario.json", data)), "--virtual-time",
            "--log-file", str(tmp_path / "hostmap.log"), "--journal", str(tmp_path / "journal.sqlite")]


def _checked(lines: list[str]) -> list[dict[str, Any]]:
    """Each line parsed and checked against the vocabulary: the common fields and exactly its event's fields."""
    events = []
    for line in lines:
        event = json.loads(line)
        assert event["v"] == EVENTS_VERSION
        assert set(event) == {*COMMON_FIELDS, *EVENT_FIELDS[event["event"]]}, event
        assert datetime.datetime.fromisoformat(event["time"].replace("Z", "+00:00")).tzinfo is not None
        assert event["run_s"] is None or event["run_s"] >= 0
        events.append(event)
    return events


def _rebuilt(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The final report as docs/events.md says a consumer rebuilds it from the stream alone."""
    (planned,) = [e for e in events if e["event"] == "planned"]
    (ended,) = [e for e in events if e["event"] == "run_ended"]
    by_step = {e["step"]: e for e in events if e["event"] in ("finished", "failed")}
    rows = [{"server": s["server"], "id": s["server_id"], "source": s["host"], "target": s["host"],
             "outcome": "skipped", "reason": "already on its target host", "seconds": None, "started_s": None,
             "finished_s": None, "unresolved": False, "cold": False, "stall": None, "checks": []}
            for s in planned["in_place"]]
    for move in planned["moves"]:
        e = by_step[move["step"]]
        rows.append({"server": e["server"], "id": e["server_id"], "source": e["source"], "target": e["target"],
                     **{k: e[k] for k in ("outcome", "reason", "seconds", "started_s", "finished_s", "unresolved",
                                          "cold", "stall", "checks")}})
    return {"reached": ended["reached"], "interrupted": ended["interrupted"], "error": ended["error"],
            "makespan_s": ended["makespan_s"], "estimated_s": ended["estimated_s"],
            "estimate_error": ended["estimate_error"], "moves": rows}


def test_every_line_of_a_run_with_a_failed_and_an_aborted_move_follows_the_vocabulary(tmp_path: Path) -> None:
    """A prompted run (a migrated, a failed, an aborted move, one in place) writes only documented lines, in order,
    and the report rebuilt from them alone is the `-f json` report."""
    events_file = tmp_path / "events.jsonl"
    result = run_cli(["apply", str(write_json(tmp_path / "map.json", MIXED_MAP)), "--timeout", "30", "-f", "json",
                      "--events", str(events_file), *_sim(tmp_path, MIXED)], stdin="a\n")
    assert result.code == 1, result.err
    events = _checked(events_file.read_text().splitlines())
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["run_started", "planned", "prompt_answered"]
    assert kinds[-1] == "run_ended"
    assert events[2]["answer"] == "all"
    assert {e["run"] for e in events} == {1}
    ends = [(e["event"], e["server"], e["outcome"]) for e in events if e["event"] in ("finished", "failed", "aborted")]
    assert sorted(ends) == [("aborted", "db-0", "timed_out"), ("failed", "db-0", "timed_out"),
                            ("failed", "web-1", "failed"), ("finished", "web-0", "migrated")]
    aborted_at = kinds.index("aborted")
    assert (events[aborted_at + 1]["event"], events[aborted_at + 1]["server"]) == ("failed", "db-0")
    assert {e["server"] for e in events if e["event"] == "submitted"} == {"db-0", "web-0", "web-1"}
    measured = [e for e in events if e["event"] == "progress" and e["rate_bytes_s"] is not None]
    assert measured
    assert all(e["migration_id"] for e in measured)
    assert any(e["total_bytes"] for e in measured)
    assert (events[-1]["exit_code"], events[-1]["dropped"]) == (1, 0)
    assert _rebuilt(events) == result.json()


def test_events_to_stdout_send_the_report_to_stderr(tmp_path: Path) -> None:
    """With `--events -` standard output holds event lines only; the report goes to standard error."""
    result = run_cli(["apply", str(write_json(tmp_path / "map.json", {"compute004": ["web-0"]})), "--yes",
                      "-f", "json", "--events", "-", *_sim(tmp_path, scenario())])
    assert result.code == 0, result.err
    events = _checked(result.out.splitlines())
    assert [e["event"] for e in events if e["event"] != "progress"] == \
        ["run_started", "planned", "submitted", "finished", "run_ended"]
    report = json.loads(result.err[result.err.index("{"):])
    assert report["reached"] is True


def test_maintain_streams_each_run_and_the_services_it_switches(tmp_path: Path) -> None:
    """maintain's stream holds its drain run and its restore run, with the compute service disabled and enabled."""
    events_file = tmp_path / "events.jsonl"
    result = run_cli(["maintain", "compute003", "--exec", "true", "--restore", "--yes", "--group-settle", "0",
                      "--events", str(events_file), *_sim(tmp_path, scenario())])
    assert result.code == 0, result.err
    events = _checked(events_file.read_text().splitlines())
    told = [(e["event"], e["run"], e.get("host")) for e in events
            if e["event"] in ("run_started", "host_disabled", "host_enabled", "run_ended")]
    assert told == [("run_started", 1, None), ("host_disabled", 1, "compute003"), ("run_ended", 1, None),
                    ("host_enabled", 1, "compute003"), ("run_started", 2, None), ("run_ended", 2, None)]
    assert "hostmap run 1" in next(e["reason"] for e in events if e["event"] == "host_disabled")


def test_a_reader_that_closes_the_pipe_mid_run_does_not_stop_the_run(tmp_path: Path) -> None:
    """The reader of `--events -` goes away after two lines (the run waits at its prompt meanwhile): the run then
    reaches its map and says the stream was lost."""
    argv = [sys.executable, "-m", "hostmap", "apply", str(write_json(tmp_path / "map.json", {"compute004": ["web-0"]})),
            "-f", "json", "--events", "-", *_sim(tmp_path, scenario())]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE,
                          text=True) as process:
        assert process.stdout is not None
        first = [process.stdout.readline(), process.stdout.readline()]
        process.stdout.close()
        _, err = process.communicate("a\n", timeout=120)  # all, at the plan's question
    assert process.returncode == 0, err
    assert [json.loads(line)["event"] for line in first] == ["run_started", "planned"]
    assert "the event stream was lost" in err
    assert json.loads(err[err.index("{\n"):])["reached"] is True


class _Stuck:
    """A consumer that reads nothing: its first write blocks until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.release.wait(30)
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_consumer_that_reads_nothing_never_blocks_the_writer() -> None:
    """Past the queue's capacity events are dropped and counted, emit returns at once, and close gives up."""
    stuck = _Stuck()
    stream = EventStream(stuck, on_lost=lambda problem: None, capacity=3)  # type: ignore[arg-type]
    for i in range(10):
        stream.emit({"event": "progress", "i": i})
    assert stream.dropped >= 6
    stream.close(wait_s=0.1)
    stuck.release.set()
