"""What to do next after a move: named by the executor as data, worded once for the report, the log and the journal."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from conftest import SWAP_MAP, Running, scenario, swap_scenario
from hostmap.advice import advice_text, explained
from hostmap.apply import ApplySettings, apply_map
from hostmap.executor import ExecutorOptions
from hostmap.hostmap_file import parse_host_map
from hostmap.results import Advice, MoveResult, RunResult
from hostmap.serialise import run_json


def _apply(running: Running, journal: Path, host_map: dict[str, list[str]], **options: object) -> RunResult:
    assert running.clock is not None
    return apply_map(
        running.cloud, cloud_key="sim", clock=running.clock, host_map=parse_host_map(host_map, "map.json"),
        map_text=json.dumps(host_map), settings=ApplySettings(ExecutorOptions(**options), journal),  # type: ignore[arg-type]
        reporters=[], confirm_for=lambda inventory: None, interrupts=lambda: 0,
    )


def _journal_reasons(journal: Path) -> list[str]:
    with sqlite3.connect(journal) as db:
        return [row[0] for row in db.execute("SELECT reason FROM moves ORDER BY id")]


def test_every_advice_is_worded_and_follows_the_reason() -> None:
    """Each kind of advice has its own sentence, placed after the reason (or alone when there is none)."""
    kinds = ("check", "rerun", "left_running", "confirm_cold", "finish_detour")
    texts = {advice_text(Advice(kind, "compute009")) for kind in kinds}  # type: ignore[arg-type]
    assert len(texts) == len(kinds)
    move = MoveResult("id", "vm", "a", "b", "failed", "nova said no", advice=Advice("rerun"))
    assert explained(move) == "nova said no; it is safe to run hostmap again"
    assert explained(MoveResult("id", "vm", "a", "b", "failed", "", advice=Advice("rerun"))) == \
        "it is safe to run hostmap again"
    assert explained(MoveResult("id", "vm", "a", "b", "failed", "nova said no")) == "nova said no"


def test_left_running_is_advice_not_part_of_the_executors_reason(
    start_sim: Callable[..., Running], tmp_path: Path
) -> None:
    """With --on-timeout leave, the executor states the fact and names the advice; the JSON report and the journal
    give the worded sentence, the CLI flag included, and the executor's reason names no flag."""
    running = start_sim(scenario(faults=[{"kind": "never_converge", "server": "db-0"}]))
    journal = tmp_path / "journal.sqlite"
    result = _apply(running, journal, {"compute004": ["db-0"]}, timeout_s=30, on_timeout="leave")
    (row,) = (m for m in result.moves if m.server_name == "db-0")
    assert row.advice == Advice("left_running")
    assert "--" not in row.reason
    (moved,) = (m for m in run_json(result)["moves"] if m["server"] == "db-0")
    assert moved["reason"] == f"{row.reason}; left running (--on-timeout leave)"
    assert moved["reason"] in _journal_reasons(journal)


def test_stranded_detour_says_where_to_move_it_next(start_sim: Callable[..., Running], tmp_path: Path) -> None:
    """A server stranded on its pivot gets advice naming its final host, in the JSON report's reason."""
    running = start_sim(swap_scenario(faults=[{"kind": "service_disabled", "host": "compute002", "at_s": 7}]))
    result = _apply(running, tmp_path / "journal.sqlite", SWAP_MAP)
    row = next(m for m in result.moves if m.server_name == "a")
    assert row.outcome == "stranded"
    assert row.advice == Advice("finish_detour", "compute002")
    reported = next(m for m in run_json(result)["moves"] if m["server"] == "a")
    assert reported["reason"].endswith("; run hostmap apply again to move it on to compute002")
