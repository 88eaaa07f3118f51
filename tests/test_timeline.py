"""The schedule as a timeline: the pure builder (bars, detour links, planned beside actual, host milestones) and
`--timeline` on plan, apply and history."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from conftest import SWAP_MAP, run_cli, swap_scenario, write_json
from hostmap.timeline import ActualMove, build_timeline, milestones

#: The swap's plan as `plan -f json` gives it: a detours via compute003, b takes its place, a goes on.
PLAN = {
    "moves": [
        {"step": 1, "server": "a", "id": "A", "flavor": "big", "source": "h1", "target": "h3", "final_target": "h2",
         "detour": True, "after": [], "estimate_s": 5.0, "ram_mb": 6144, "start_s": 0.0, "end_s": 5.0},
        {"step": 2, "server": "b", "id": "B", "flavor": "big", "source": "h2", "target": "h1", "final_target": "h1",
         "detour": False, "after": [1], "estimate_s": 5.0, "ram_mb": 6144, "start_s": 5.0, "end_s": 10.0},
        {"step": 3, "server": "a", "id": "A", "flavor": "big", "source": "h3", "target": "h2", "final_target": "h2",
         "detour": False, "after": [2], "estimate_s": 5.0, "ram_mb": 6144, "start_s": 10.0, "end_s": 15.0},
    ],
    "estimated_s": 15.0, "lower_bound_s": 10.0,
}


def test_builder_gives_one_bar_per_move_with_detour_legs_linked() -> None:
    """Each planned move is one bar on its source's lane, the detour's legs point at each other, bytes from RAM."""
    timeline = build_timeline(PLAN, title="t")
    assert [(b.step, b.lane, b.start_s, b.end_s) for b in timeline.bars] == [
        (1, "h1", 0.0, 5.0), (2, "h2", 5.0, 10.0), (3, "h3", 10.0, 15.0)]
    assert [b.linked_step for b in timeline.bars] == [3, None, 1]
    assert timeline.bars[0].bytes == pytest.approx(0.7 * 6144 * 2**20)
    assert timeline.bars[0].rate_gbps == pytest.approx(0.7 * 6144 * 2**20 * 8 / 5 / 1e9)
    assert timeline.lanes == ("h1", "h2", "h3")
    assert (timeline.estimated_s, timeline.lower_bound_s) == (15.0, 10.0)


def test_actual_bars_match_planned_steps_and_skip_moves_never_started() -> None:
    """Actual moves become bars of their planned step; a move that never started has none."""
    actual = [ActualMove("A", "a", "h1", "h3", "migrated", "", 0.0, 6.0),
              ActualMove("B", "b", "h2", "h1", "failed", "boom", 6.0, 8.0),
              ActualMove("A", "a", "h3", "h2", "not_started", "", None, None)]
    timeline = build_timeline(PLAN, title="t", actual=actual, makespan_s=8.0)
    assert [(b.kind, b.step, b.outcome) for b in timeline.bars if b.kind == "actual"] == [
        ("actual", 1, "migrated"), ("actual", 2, "failed")]
    assert timeline.makespan_s == 8.0


def test_milestones_say_when_hosts_are_emptied_or_filled_and_skip_pivots() -> None:
    """A host that loses a server is empty of it when its last departure ends; a pivot is neither emptied nor filled."""
    one_way = {"moves": [
        {"step": 1, "id": "A", "source": "h1", "target": "h2", "start_s": 0.0, "end_s": 4.0},
        {"step": 2, "id": "B", "source": "h1", "target": "h3", "start_s": 4.0, "end_s": 9.0},
        *[{**m, "step": m["step"] + 2} for m in PLAN["moves"]],  # type: ignore[dict-item]
    ]}
    found = [(m.host, m.emptied, m.at_s) for m in milestones(one_way)]
    # h1 loses A, B and a (its first leg) and gains b; h2 loses b and gains A and a; h3 gains B and a's first leg
    # and loses a's second leg: it ends with one more, filled when B arrives.
    assert found == [("h1", True, 9.0), ("h3", False, 9.0), ("h2", False, 15.0)]


def _page_bars(path: Path) -> int:
    """How many bars the page's figure holds (the data plotly is given)."""
    text = path.read_text(encoding="utf-8")
    return sum(len(json.loads(x)) for x in re.findall(r'"customdata":(\[[0-9,]*\])', text))


def test_plan_apply_and_history_write_timelines(tmp_path: Path) -> None:
    """--timeline on plan, apply and history writes a page with one bar per planned move, and beside them the actual."""
    scenario = write_json(tmp_path / "s.json", swap_scenario())
    host_map = write_json(tmp_path / "map.json", SWAP_MAP)
    common = ["--sim-scenario", str(scenario), "--virtual-time", "--log-file", str(tmp_path / "log")]
    journal = tmp_path / "j.db"
    plan = run_cli(["plan", str(host_map), "--timeline", str(tmp_path / "plan.html"), *common])
    assert plan.code == 0, plan.err
    assert _page_bars(tmp_path / "plan.html") == 3
    applied = run_cli(["apply", str(host_map), "--yes", "--journal", str(journal),
                       "--timeline", str(tmp_path / "apply.html"), *common])
    assert applied.code == 0, applied.err
    assert _page_bars(tmp_path / "apply.html") == 6
    history = run_cli(["history", "1", "--journal", str(journal), "--timeline", str(tmp_path / "history.html")])
    assert history.code == 0, history.err
    assert _page_bars(tmp_path / "history.html") == 6
    assert "<script src=\"http" not in (tmp_path / "plan.html").read_text(encoding="utf-8")


def test_timeline_without_plotly_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without plotly, --timeline refuses in one line naming the extra, before anything is read or moved."""
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    host_map = write_json(tmp_path / "map.json", SWAP_MAP)
    result = run_cli(["apply", str(host_map), "--yes", "--timeline", str(tmp_path / "t.html"), "--sim-scenario",
                      str(write_json(tmp_path / "s.json", swap_scenario())), "--virtual-time",
                      "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert "pip install 'hostmap[timeline]'" in result.err
    assert not (tmp_path / "t.html").exists()
