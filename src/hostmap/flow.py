"""Migrations running side by side in simulated time, slowed down while they share a host's NIC (pure, no I/O).

The planner uses this to estimate when a schedule's migrations end.  A migration first prepares for
`Links.setup_s` seconds, which uses no network, then copies; its copy part is its solo duration minus the setup,
and it advances at a speed of ``min(1, streams / n_out(source), streams / n_in(target))`` solo-seconds per
second, where ``streams`` (`Links.streams_per_nic`) is how many full-speed migration streams one NIC direction
carries and ``n_out`` / ``n_in`` count the migrations copying out of / into a host.  The guest dirties memory all
the while (`Links.dirty_share` of a full-speed stream), so what is left shrinks at ``f - dirty_share`` where a
solo copy's shrinks at ``1 - dirty_share``: a copy at a fraction f < 1 of full speed advances at
``(f - dirty_share) / (1 - dirty_share)`` solo-seconds per second.  This is the simulated cloud's sharing rule
(docs/simulated-cloud.md) but for the switch-over allowance, which shrinks with the rate, so a shared copy is
still estimated a little short.  Without `Links` every migration simply takes its solo duration.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

__all__ = ["Flow", "Links"]

#: Events closer together than this (seconds) happen at once.
_EPS = 1e-9
#: The slowest pace (solo-seconds per second) the estimate lets a copy fall to.
_CRAWL = 1e-3


@dataclass(frozen=True, slots=True)
class Links:
    """How migrations share host NICs, for estimating a schedule."""

    #: Seconds a migration prepares before copying (no NIC use).
    setup_s: float = 3.0
    #: NIC rate of one direction over one migration stream's top rate (10 / 8 Gbit/s by default).
    streams_per_nic: float = 1.25
    #: The guest's dirtying rate over one migration stream's top rate (20 MB/s / 1 GB/s by default).
    dirty_share: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.setup_s) and self.setup_s >= 0):
            raise ValueError("setup_s must be a finite number >= 0")
        if not self.streams_per_nic > 0:
            raise ValueError("streams_per_nic must be > 0")
        if not 0 <= self.dirty_share < 1:
            raise ValueError("dirty_share must be at least 0 and below 1")


@dataclass(slots=True)
class _Run:
    src: int
    dst: int
    #: Solo-seconds of copying left as of `since`, and the current speed (solo-seconds per second).
    left: float
    speed: float = 1.0
    since: float = 0.0
    copying: bool = False
    version: int = 0
    finish: float = math.inf


class Flow:
    """The migrations running now, keyed by the caller's ints; `advance` hands back those that ended."""

    def __init__(self, n_hosts: int, links: Links | None) -> None:
        self.links = links
        self._runs: dict[int, _Run] = {}
        self._events: list[tuple[float, int, int, int]] = []  # (time, key, version, kind)
        self._out: list[set[int]] = [set() for _ in range(n_hosts)]
        self._in: list[set[int]] = [set() for _ in range(n_hosts)]

    def __len__(self) -> int:
        return len(self._runs)

    def start(self, key: int, src: int, dst: int, duration: float, now: float) -> None:
        """Start migration `key` of solo `duration` seconds from host `src` to `dst` at `now`."""
        if self.links is None:
            run = _Run(src, dst, 0.0, finish=now + duration)
            self._runs[key] = run
            heapq.heappush(self._events, (run.finish, key, 0, _END))
            return
        setup = min(self.links.setup_s, duration)
        run = _Run(src, dst, duration - setup, finish=now + duration)
        self._runs[key] = run
        heapq.heappush(self._events, (now + setup, key, 0, _COPY))

    def finish(self, key: int) -> float:
        """When running migration `key` ends if nothing else starts or ends meanwhile."""
        return self._runs[key].finish

    def next_time(self) -> float:
        """When the next event happens; inf when nothing runs."""
        while self._events:
            at, key, version, _ = self._events[0]
            run = self._runs.get(key)
            if run is not None and run.version == version:
                return at
            heapq.heappop(self._events)
        return math.inf

    def advance(self, now: float) -> list[int]:
        """Process every event up to `now` (copies starting, migrations ending); the keys that ended, in order."""
        ended: list[int] = []
        while self._events and self._events[0][0] <= now + _EPS:
            at, key, version, kind = heapq.heappop(self._events)
            run = self._runs.get(key)
            if run is None or run.version != version:
                continue
            if kind == _COPY:
                self._copy(key, run, at)
            else:
                self._end(key, run, at)
                ended.append(key)
        return ended

    # -- internals ---------------------------------------------------------------------------------------

    def _copy(self, key: int, run: _Run, at: float) -> None:
        if run.left <= 0:
            self._schedule_end(key, run, at)
            return
        run.copying = True
        run.since = at
        self._out[run.src].add(key)
        self._in[run.dst].add(key)
        self._respeed(run.src, run.dst, at)

    def _end(self, key: int, run: _Run, at: float) -> None:
        del self._runs[key]
        if run.copying:
            self._out[run.src].discard(key)
            self._in[run.dst].discard(key)
            self._respeed(run.src, run.dst, at)

    def _respeed(self, src: int, dst: int, at: float) -> None:
        assert self.links is not None
        streams, dirty = self.links.streams_per_nic, self.links.dirty_share
        for key in self._out[src] | self._in[dst]:  # each run's update is its own: order does not matter
            run = self._runs[key]
            share = min(1.0, streams / len(self._out[run.src]), streams / len(self._in[run.dst]))
            # A share at or below the dirtying rate never converges; nova gives up on it after its completion
            # timeout, which this estimate does not model: it crawls instead, so the schedule still ends.
            speed = 1.0 if share >= 1.0 else max((share - dirty) / (1.0 - dirty), _CRAWL)
            if speed == run.speed and run.version:
                continue
            run.left = max(run.left - run.speed * (at - run.since), 0.0)
            run.since = at
            run.speed = speed
            self._schedule_end(key, run, at)

    def _schedule_end(self, key: int, run: _Run, at: float) -> None:
        run.version += 1
        run.finish = at + run.left / run.speed
        heapq.heappush(self._events, (run.finish, key, run.version, _END))


_COPY, _END = 0, 1
