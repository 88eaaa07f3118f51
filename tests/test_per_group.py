"""--max-in-flight-per-group: at most N members of one server group migrating at once, in the replay and the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli, write_json
from hostmap.model import Limits, Move, Resources, Step
from hostmap.planner.replay import spans


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end at t closes before a start at t)."""
    events = sorted([(s, 1) for s, e in intervals if e > s] + [(e, -1) for s, e in intervals if e > s])
    most = now = 0
    for _, change in events:
        now += change
        most = max(most, now)
    return most


@st.composite
def _steps(draw: st.DrawFn) -> tuple[list[Step], int]:
    """Independent moves off a few sources, each server in up to two of three groups, and a per-group limit."""
    n = draw(st.integers(1, 12))
    steps = []
    for i in range(n):
        groups = tuple(sorted(draw(st.sets(st.sampled_from(["g0", "g1", "g2"]), max_size=2))))
        source = f"src{draw(st.integers(0, 3))}"
        move = Move(f"s{i}", f"s{i}", source, f"dst{i % 3}", Resources(1, 1024, 10),
                    estimate_s=draw(st.floats(1.0, 100.0)), groups=groups)
        steps.append(Step(i, move))
    return steps, draw(st.integers(1, 3))


@settings(max_examples=150, deadline=None)
@given(_steps(), st.integers(1, 3), st.none() | st.integers(1, 6))
def test_replay_never_runs_more_than_n_of_a_group(drawn: tuple[list[Step], int], max_per_host: int,
                                                 parallel: int | None) -> None:
    """In the planner's replay, no moment has more than N members of one group in flight, and every move runs."""
    steps, per_group = drawn
    limits = Limits(max_per_host=max_per_host, parallel=parallel, per_group=per_group)
    timed = spans(steps, limits, None)
    assert all(end > start for start, end in timed)
    for group in ("g0", "g1", "g2"):
        members = [timed[s.index] for s in steps if group in s.move.groups]
        assert _most_at_once(members) <= per_group


def _group_cloud() -> dict[str, Any]:
    """Six hosts; three replicas of one application (a soft anti-affinity group) on three of them, all to move."""
    hosts = [{"name": f"compute00{i}", "vcpus": 8, "memory_mb": 16384, "disk_gb": 200} for i in range(1, 7)]
    return {
        "hosts": hosts,
        "flavors": [{"name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20}],
        "servers": [{"name": f"app-{i}", "flavor": "m1.small", "host": f"compute00{i + 1}"} for i in range(3)]
                   + [{"name": "other", "flavor": "m1.small", "host": "compute005"}],
        "server_groups": [{"name": "app", "policy": "soft-anti-affinity", "members": ["app-0", "app-1", "app-2"]}],
        "migration": {"setup_s": 0.2},
    }


def _apply(tmp_path: Path, *extra: str) -> list[dict[str, Any]]:
    host_map = write_json(tmp_path / "map.json", {"compute004": ["app-0"], "compute005": ["app-1"],
                                                 "compute006": ["app-2", "other"]})
    scenario = write_json(tmp_path / "scenario.json", _group_cloud())
    result = run_cli(["apply", str(host_map), "--yes", "-f", "json", "--sim-scenario", str(scenario),
                      "--virtual-time", "--log-file", str(tmp_path / "log"), *extra])
    assert result.code == 0, result.err
    moves: list[dict[str, Any]] = result.json()["moves"]
    return moves


def test_apply_moves_one_replica_at_a_time(tmp_path: Path) -> None:
    """With --max-in-flight-per-group 1 the three replicas migrate one after another (the other server alongside);
    without it, all three at once."""
    held = _apply(tmp_path, "--max-in-flight-per-group", "1")
    assert all(m["outcome"] == "migrated" for m in held)
    replicas = [(m["started_s"], m["finished_s"]) for m in held if m["server"].startswith("app-")]
    assert _most_at_once(replicas) == 1
    other = next(m for m in held if m["server"] == "other")
    assert other["started_s"] < min(end for _, end in replicas)  # not a member: not held back
    free = _apply(tmp_path)
    assert _most_at_once([(m["started_s"], m["finished_s"]) for m in free if m["server"].startswith("app-")]) == 3
