"""The priorities of the passes: busiest source first, a given rank, or the critical paths of an earlier pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hostmap.model import Server, Step
from hostmap.planner.moves import KeyOf, Leg, Mv, Priority, Request

#: A move's critical path by (server id, leg): its seconds plus the longest chain of steps that wait for it.
Levels = dict[tuple[str, int], float]


def work_per_source(n_hosts: int, moves: Sequence[Request] | Sequence[Mv]) -> list[float]:
    """Seconds of migration each host sends."""
    work = [0.0] * n_hosts
    for mv in moves:
        work[mv.src] += mv.dur
    return work


def busiest_source_first(work: Sequence[float]) -> KeyOf:
    """The first pass's priority: the source with the most left to send, then the longest migration."""

    def key(server: Server, leg: Leg, src: int, dur: float) -> Priority:
        return Priority(-work[src], 0.0, -dur, server.name, server.id, leg)

    return key


def by_rank(rank: Mapping[str, float]) -> KeyOf:
    """Servers in the order `rank` gives them (server id -> rank)."""

    def key(server: Server, leg: Leg, src: int, dur: float) -> Priority:
        return Priority(rank[server.id], 0.0, -dur, server.name, server.id, leg)

    return key


def levels(order: Sequence[Mv], steps: Sequence[Step]) -> Levels:
    """Each move's critical path: its seconds plus the longest chain of steps that wait for it, by (server, leg)."""
    level: Levels = {}
    below = [0.0] * len(steps)
    for step, mv in zip(reversed(steps), reversed(order), strict=True):
        below[step.index] += step.move.estimate_s
        level[(mv.server.id, mv.leg)] = below[step.index]
        for a in step.after:
            below[a] = max(below[a], below[step.index])
    return level


def critical_path_or_source(level: Levels, work: Sequence[float]) -> KeyOf:
    """The second pass's priority: the longer of a move's critical path and its source's work, then the path."""

    def key(server: Server, leg: Leg, src: int, dur: float) -> Priority:
        bl = level.get((server.id, leg), dur)
        return Priority(-max(bl, work[src]), -bl, -dur, server.name, server.id, leg)

    return key


def critical_path(level: Levels) -> KeyOf:
    """A parking pass's priority: the critical path in the pass before."""

    def key(server: Server, leg: Leg, src: int, dur: float) -> Priority:
        # A server parked in one pass and not in the other: its plain move and its first leg stand for each other.
        bl = level.get((server.id, leg)) or level.get((server.id, Leg.PLAIN)) or level.get((server.id, Leg.FIRST), dur)
        return Priority(-bl, 0.0, -dur, server.name, server.id, leg)

    return key
