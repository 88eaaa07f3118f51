"""The executor's rules in simulated time: how long a plan takes as `hostmap apply` runs it.

Ready steps start in index order under the start rule (`hostmap.start_rule`); a step is ready once the steps it
waits for ended, `group_settle_s` after those of its `settle_after`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from functools import partial

from hostmap.flow import Flow, Links
from hostmap.model import Limits, Step
from hostmap.start_rule import Verdict, busiest_group, ready_at, verdict


def simulate(steps: Sequence[Step], limits: Limits, links: Links | None, group_settle_s: float = 0.0) -> float:
    """Makespan of `steps` as the executor runs them within `limits`."""
    return Replay(steps, limits, links, group_settle_s).run()


def spans(
    steps: Sequence[Step], limits: Limits, links: Links | None, group_settle_s: float = 0.0
) -> tuple[tuple[float, float], ...]:
    """Each step's (start, end) in seconds from the run's start, as the executor would run them within `limits`."""
    replay = Replay(steps, limits, links, group_settle_s)
    replay.run()
    return tuple((start, end if end is not None else start)
                 for start, end in zip(replay.started_at, replay.finished, strict=True))


def _index(steps: Sequence[Step]) -> tuple[list[list[int]], dict[str, int], dict[str, list[int]]]:
    """The steps waiting for each step, a number per host, and per source host its steps in index order."""
    children: list[list[int]] = [[] for _ in steps]
    names: dict[str, int] = {}
    queue: dict[str, list[int]] = {}
    for s in steps:
        names.setdefault(s.move.source, len(names))
        names.setdefault(s.move.target, len(names))
        queue.setdefault(s.move.source, []).append(s.index)
        for a in s.after:
            children[a].append(s.index)
    return children, names, queue


class Replay:
    """One run of a plan in simulated time (see `simulate`)."""

    def __init__(self, steps: Sequence[Step], limits: Limits, links: Links | None, group_settle_s: float) -> None:
        self.steps, self.limits, self.group_settle_s = steps, limits, group_settle_s
        n = len(steps)
        self.waiting = [len(s.after) for s in steps]
        self.children, self.names, self.queue = _index(steps)
        self.ready = [s.index for s in steps if not s.after]
        heapq.heapify(self.ready)
        self.timers: list[tuple[float, int]] = []  # dependencies ended; waiting for a departure to settle
        self.busy: dict[str, int] = {}
        #: Per server group, its members in flight (for `Limits.per_group`).
        self.in_group: dict[str, int] = {}
        #: Per target host, migrations arriving at it now (`Limits.max_in_per_host`).
        self.inbound: dict[str, int] = {}
        #: Per source host, ready steps waiting for one of its slots; per target host, those waiting to arrive.
        self.parked: dict[str, list[int]] = {}
        self.parked_in: dict[str, list[int]] = {}
        self.started = [False] * n
        self.started_at = [0.0] * n
        self.finished: list[float | None] = [None] * n
        self.flow = Flow(len(self.names), links)

    def _ends(self, i: int) -> Iterator[tuple[float, bool]]:
        settle_after = self.steps[i].settle_after
        for a in self.steps[i].after:
            end = self.finished[a]
            if end is None:
                end = self.flow.finish(a) if self.started[a] else math.inf
            yield end, a in settle_after

    def ready_at(self, i: int) -> float:
        """When step i may start as far as the running steps tell; inf if one it waits for has not started."""
        return ready_at(self._ends(i), self.group_settle_s)

    def start_ready(self, now: float) -> None:
        """Start what the start rule lets start now."""
        held: list[int] = []
        parallel = self.limits.parallel
        while self.ready and (parallel is None or len(self.flow) < parallel):
            i = heapq.heappop(self.ready)
            move = self.steps[i].move
            mine = self.queue[move.source]
            while self.started[mine[0]]:
                heapq.heappop(mine)
            said = verdict(self.limits, running=len(self.flow), from_source=self.busy.get(move.source, 0),
                           ends_at=now + move.estimate_s,
                           head_ready_at=None if mine[0] == i else partial(self.ready_at, mine[0]),
                           in_group=busiest_group(move, self.in_group),
                           to_target=self.inbound.get(move.target, 0))
            if said is Verdict.SOURCE_FULL:
                heapq.heappush(self.parked.setdefault(move.source, []), i)
                continue
            if said is Verdict.TARGET_FULL:
                heapq.heappush(self.parked_in.setdefault(move.target, []), i)
                continue
            if said is not Verdict.START:
                # It would still hold the source's last slot when the earlier head can start, or its group is full:
                # looked at again after the next event.
                held.append(i)
                continue
            self.busy[move.source] = self.busy.get(move.source, 0) + 1
            for group in move.groups:
                self.in_group[group] = self.in_group.get(group, 0) + 1
            self.inbound[move.target] = self.inbound.get(move.target, 0) + 1
            self.started[i] = True
            self.started_at[i] = now
            self.flow.start(i, self.names[move.source], self.names[move.target], move.estimate_s, now)
        for i in held:
            heapq.heappush(self.ready, i)

    def complete(self, i: int, now: float) -> None:
        """Step i ended at `now`."""
        self.finished[i] = now
        src, dst = self.steps[i].move.source, self.steps[i].move.target
        self.busy[src] -= 1
        for group in self.steps[i].move.groups:
            self.in_group[group] -= 1
        self.inbound[dst] -= 1
        for j in self.parked.pop(src, []) + self.parked_in.pop(dst, []):
            heapq.heappush(self.ready, j)
        for c in self.children[i]:
            self.waiting[c] -= 1
            if not self.waiting[c]:
                at = self.ready_at(c)
                if at > now:
                    heapq.heappush(self.timers, (at, c))
                else:
                    heapq.heappush(self.ready, c)

    def run(self) -> float:
        """The makespan."""
        now = 0.0
        while True:
            self.start_ready(now)
            if not len(self.flow) and not self.timers:
                return now
            now = min(self.flow.next_time(), self.timers[0][0] if self.timers else math.inf)
            while self.timers and self.timers[0][0] <= now:
                heapq.heappush(self.ready, heapq.heappop(self.timers)[1])
            for i in self.flow.advance(now):
                self.complete(i, now)
