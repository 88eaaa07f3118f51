"""hostmap's plans pass the benchmark's independent schedule checker, which catches a schedule that breaks a rule."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_makespan as bm
from bench_reference import hostmap_plan, plan_legs, problem_of
from schedule_check import Violation, check

from hostmap.sim.scenario import parse_scenario


@pytest.mark.parametrize("case", ["ring", "rebalance"])
def test_hostmaps_plans_pass_the_independent_checker(case: str) -> None:
    """A zero-slack ring (one detour) and a rebalance at 85 % use, as planned, hold every rule at every moment."""
    data, host_map = bm.s3_ring(4, pivot=True) if case == "ring" else bm.s2_rebalance(3, n_hosts=10, n_servers=50)
    the_plan, _ = hostmap_plan(data, host_map)
    legs = plan_legs(the_plan)
    problem = problem_of(parse_scenario(data, case), host_map, 0)
    assert check(problem.cloud, legs) == pytest.approx(max(leg.end for leg in legs))


def test_the_checker_refuses_a_leg_into_a_full_host() -> None:
    """A ring move started at once, before anything left its full target host, is reported as an overfill."""
    data, host_map = bm.s3_ring(2, pivot=True)
    the_plan, _ = hostmap_plan(data, host_map)
    legs = plan_legs(the_plan)
    problem = problem_of(parse_scenario(data, "ring"), host_map, 0)
    servers = [leg.server for leg in legs]
    waiting = next(leg for leg in legs if leg.start > 0 and servers.count(leg.server) == 1)
    early = [replace(leg, start=0.0, end=leg.end - leg.start) if leg is waiting else leg for leg in legs]
    with pytest.raises(Violation, match=r"t=0\.0: .* holds \d+ MEMORY_MB of \d+"):
        check(problem.cloud, early)
