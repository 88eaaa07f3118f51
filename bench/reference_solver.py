"""The reference solver: an exact model of hostmap's planning problem in OR-Tools CP-SAT (the `bench` extra).

Given the cloud at time zero and the desired placement, find the shortest schedule of live migrations that nova
would carry out without refusing one:

- each moving server goes straight to its desired host, or through one pivot host (a detour, two legs), the pivot
  taken among a few candidates (the hosts with the most free RAM, plus any pivot the warm start uses);
- a leg's duration is its solo duration (`timing.solo_duration_s` at min(stream, both NICs)); NIC sharing between
  concurrent legs is left out, as in the planner's solo replay;
- at most `max_per_host` legs leave one host at once;
- placement capacity holds at every moment in every resource, a migrating server held on its source and its target
  for the whole leg;
- anti-affinity groups keep at most `max_server_per_host` members on one host at every moment, held twice too.

Time is in hundredths of a second (durations rounded to the nearest).  The model is warm-started from hostmap's
own plan (its legs and their solo-replay start times) and run with fixed settings (time limit, workers, random
seed); what it returns is checked by `schedule_check.check`, which shares no code with this model.  Not imported
by hostmap; benchmarks only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schedule_check import Cloud, Leg

try:
    from ortools.sat.python import cp_model
except ImportError:  # the `bench` extra is not installed
    cp_model = None

TICKS_PER_S = 100


@dataclass(frozen=True)
class Settings:
    """The solver's fixed settings, recorded beside every frozen schedule."""

    time_limit_s: float = 60.0
    workers: int = 2
    seed: int = 0
    pivots: int = 8


@dataclass(frozen=True)
class Problem:
    """The cloud as the checker sees it, plus each possible leg's duration."""

    cloud: Cloud
    #: (source, target, server) -> solo duration in seconds.
    duration: Mapping[tuple[str, str, str], float]
    #: Each moving server's candidate pivots.
    pivots: Mapping[str, tuple[str, ...]]


@dataclass
class Solution:
    """What one solver run returned."""

    status: str
    legs: list[Leg]
    makespan_s: float
    #: The solver's proven lower bound on the makespan (seconds).
    bound_s: float
    wall_s: float
    settings: Settings = field(default_factory=Settings)


def _ticks(seconds: float) -> int:
    return max(1, round(seconds * TICKS_PER_S))


Option = tuple[str | None, Any, list[tuple[str, str, Any, int]]]


class _Model:
    """The CP-SAT model of one problem: a route choice per moving server and the intervals each route holds."""

    def __init__(self, problem: Problem, horizon: int) -> None:
        self.problem, self.cloud, self.horizon = problem, problem.cloud, horizon
        self.model = cp_model.CpModel()
        self.makespan = self.model.NewIntVar(0, horizon, "makespan")
        hosts = self.cloud.capacity
        #: Per host: (interval, demand) held on it; the leg intervals leaving it; (server, interval) present on it.
        self.held: dict[str, list[tuple[Any, tuple[int, int, int]]]] = {h: [] for h in hosts}
        self.leaving: dict[str, list[Any]] = {h: [] for h in hosts}
        self.presence: dict[str, list[tuple[str, Any]]] = {h: [] for h in hosts}
        self.choices: dict[str, list[Option]] = {}

    def _hold(self, host: str, server: str, interval: Any) -> None:
        self.held[host].append((interval, self.cloud.demand[server]))
        self.presence[host].append((server, interval))

    def _route(self, server: str, pivot: str | None, leave: Any, arrive: Any) -> Option:
        model, source, target = self.model, self.cloud.current[server], self.cloud.desired[server]
        chosen = model.NewBoolVar(f"via_{pivot}_{server}")
        path = [(source, target)] if pivot is None else [(source, pivot), (pivot, target)]
        legs: list[tuple[str, str, Any, int]] = []
        for a, b in path:
            d = _ticks(self.problem.duration[(a, b, server)])
            start = model.NewIntVar(0, self.horizon - d, f"s_{a}_{b}_{server}")
            self.leaving[a].append(model.NewOptionalFixedSizeIntervalVar(start, d, chosen, f"leg_{a}_{b}_{server}"))
            model.Add(start + d <= self.makespan).OnlyEnforceIf(chosen)
            legs.append((a, b, start, d))
        if pivot is not None:  # on the pivot from the first leg's start to the second leg's end
            first, second = legs
            model.Add(second[2] >= first[2] + first[3]).OnlyEnforceIf(chosen)
            stay = model.NewIntVar(0, self.horizon, f"stay_{pivot}_{server}")
            model.Add(stay == second[2] + second[3] - first[2]).OnlyEnforceIf(chosen)
            self._hold(pivot, server, model.NewOptionalIntervalVar(first[2], stay, second[2] + second[3], chosen,
                                                                   f"on_{pivot}_{server}"))
        model.Add(leave == legs[0][2] + legs[0][3]).OnlyEnforceIf(chosen)
        model.Add(arrive == legs[-1][2]).OnlyEnforceIf(chosen)
        return pivot, chosen, legs

    def add_server(self, server: str) -> None:
        """The server's routes (straight, or through each candidate pivot), exactly one chosen."""
        model = self.model
        leave = model.NewIntVar(0, self.horizon, f"leave_{server}")
        arrive = model.NewIntVar(0, self.horizon, f"arrive_{server}")
        options = [self._route(server, pivot, leave, arrive)
                   for pivot in (None, *self.problem.pivots.get(server, ()))]
        model.AddExactlyOne(chosen for _, chosen, _ in options)
        self._hold(self.cloud.current[server], server, model.NewIntervalVar(0, leave, leave, f"src_{server}"))
        self._hold(self.cloud.desired[server], server,
                   model.NewIntervalVar(arrive, self.horizon - arrive, self.horizon, f"dst_{server}"))
        self.choices[server] = options

    def add_rules(self) -> None:
        """Capacity per host and resource, the source limit, and anti-affinity, at every moment."""
        cloud, model = self.cloud, self.model
        static_use = {h: [0, 0, 0] for h in cloud.capacity}
        for server, host in cloud.current.items():
            if server not in self.choices:
                for r in range(3):
                    static_use[host][r] += cloud.demand[server][r]
        for host, items in self.held.items():
            for r in range(3):
                room = cloud.capacity[host][r] - static_use[host][r]
                if sum(d[r] for _, d in items) > room:  # the resource can bind on this host
                    model.AddCumulative([i for i, _ in items], [d[r] for _, d in items], room)
        for intervals in self.leaving.values():
            if len(intervals) > cloud.max_per_host:
                if cloud.max_per_host == 1:
                    model.AddNoOverlap(intervals)
                else:
                    model.AddCumulative(intervals, [1] * len(intervals), cloud.max_per_host)
        for members, limit in cloud.groups:
            for host, present in self.presence.items():
                static = sum(1 for s in members if s not in self.choices and cloud.current.get(s) == host)
                mine = [i for s, i in present if s in members]
                if len(mine) + static > limit:
                    model.AddCumulative(mine, [1] * len(mine), limit - static)

    def add_hint(self, hint: Sequence[Leg]) -> None:
        """Warm start: each server's route and leg times as `hint` has them (where the model offers that route)."""
        hinted: dict[str, list[Leg]] = {}
        for leg in sorted(hint, key=lambda g: g.start):
            hinted.setdefault(leg.server, []).append(leg)
        for server, options in self.choices.items():
            legs = hinted.get(server, [])
            if not 1 <= len(legs) <= 2:  # a route the model does not offer: the solver chooses
                continue
            route = None if len(legs) == 1 else legs[0].target
            for pivot, chosen, option_legs in options:
                on = pivot == route
                self.model.AddHint(chosen, on)
                if on:
                    for (_, _, start, _), leg in zip(option_legs, legs, strict=True):
                        self.model.AddHint(start, round(leg.start * TICKS_PER_S))
        if hint:
            self.model.AddHint(self.makespan, _ticks(max(leg.end for leg in hint)))

    def legs(self, solver: Any) -> list[Leg]:
        found: list[Leg] = []
        for server, options in self.choices.items():
            for _, chosen, option_legs in options:
                if solver.BooleanValue(chosen):
                    for a, b, start, d in option_legs:
                        begin = solver.Value(start)
                        found.append(Leg(server, a, b, begin / TICKS_PER_S, (begin + d) / TICKS_PER_S))
        return found


def solve(problem: Problem, settings: Settings, hint: Sequence[Leg] = ()) -> Solution | None:
    """The shortest schedule CP-SAT finds within `settings`; None without OR-Tools.

    `hint` must be timed in the model's units (durations rounded to `TICKS_PER_S`), or the solver cannot use it.
    """
    if cp_model is None:
        return None
    started = time.perf_counter()
    cloud = problem.cloud
    moving = sorted(s for s, h in cloud.desired.items() if h != cloud.current[s])
    # A horizon the warm start fits in with room to spare; without one, every server's longest route in turn.
    slowest = sum(max(d for (_, _, srv), d in problem.duration.items() if srv == s) * 2 for s in moving)
    horizon = _ticks(max(leg.end for leg in hint) * 1.5 if hint else slowest)
    built = _Model(problem, horizon)
    for server in moving:
        built.add_server(server)
    built.add_rules()
    built.add_hint(hint)
    built.model.Minimize(built.makespan)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = settings.time_limit_s
    solver.parameters.num_workers = settings.workers
    solver.parameters.random_seed = settings.seed
    status = solver.Solve(built.model)
    wall = time.perf_counter() - started
    bound = solver.BestObjectiveBound() / TICKS_PER_S
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Solution(solver.StatusName(status), [], math.inf, bound, wall, settings)
    return Solution(solver.StatusName(status), built.legs(solver), solver.Value(built.makespan) / TICKS_PER_S,
                    bound, wall, settings)


def candidate_pivots(cloud: Cloud, count: int,
                     extra: Mapping[str, Sequence[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """Per moving server: the `count` hosts with the most free RAM at time zero (not its source or target), plus
    the pivots `extra` names for it (the warm start's)."""
    extra = extra or {}
    use = dict.fromkeys(cloud.capacity, 0)
    for server, host in cloud.current.items():
        use[host] += cloud.demand[server][1]
    roomiest = sorted(cloud.capacity, key=lambda h: (use[h] - cloud.capacity[h][1], h))
    result: dict[str, tuple[str, ...]] = {}
    for server, target in cloud.desired.items():
        source = cloud.current[server]
        if source == target:
            continue
        chosen = [h for h in roomiest if h not in (source, target)][:count]
        for h in extra.get(server, ()):
            if h not in chosen and h not in (source, target):
                chosen.append(h)
        result[server] = tuple(chosen)
    return result
