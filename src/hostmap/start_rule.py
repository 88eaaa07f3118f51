"""The start rule: whether a ready migration may start now (pure; the executor and the planner's replay apply it).

A ready step starts when its source host has a free slot (`Limits.max_per_host`), its target host receives fewer
than `Limits.max_in_per_host` (`inbound_full`, which the planner's scheduler asks too), fewer than
`Limits.parallel` migrations run in all, and fewer than `Limits.per_group` members of each of its server's groups
are in flight (`--max-in-flight-per-group`: an application's replicas are never all migrating, so never all paused
by a force-complete or slowed by a copy at once).  It takes its source's last slot ahead of the plan's earlier step from
that source (the head, still waiting for what it depends on) only if it is expected to end before the head can
start: a ready migration fills a gap but never delays the plan's order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from enum import Enum

from hostmap.model import Limits, Move


class Verdict(Enum):
    """What the start rule says about a ready step."""

    START = "start"
    #: Its source host runs `max_per_host` migrations already.
    SOURCE_FULL = "source full"
    #: `parallel` migrations run already.
    TOTAL_FULL = "total full"
    #: Its target host receives `max_in_per_host` migrations already.
    TARGET_FULL = "target full"
    #: It would hold its source's last slot when the source's earlier step (the head) can start.
    HOLD_FOR_HEAD = "hold for head"
    #: `per_group` members of one of its server's groups are in flight already.
    GROUP_FULL = "group full"


def verdict(
    limits: Limits,
    *,
    running: int,
    from_source: int,
    ends_at: float,
    head_ready_at: Callable[[], float] | None,
    in_group: int = 0,
    to_target: int = 0,
) -> Verdict:
    """The start rule for a ready step.

    `running`: migrations in flight; `from_source`: those of them (and any other slot holders) from the step's
    source; `ends_at`: when the step would end if it started now; `head_ready_at`: None when no earlier step of
    the plan from that source waits, else when that step can start (inf if it waits for one not yet started),
    asked only when it matters; `in_group`: the most members in flight of any one of the step's server's groups
    (`busiest_group`); `to_target`: migrations in flight to the step's target.
    """
    if from_source >= limits.max_per_host:
        return Verdict.SOURCE_FULL
    if inbound_full(limits, to_target):
        return Verdict.TARGET_FULL
    if limits.parallel is not None and running >= limits.parallel:
        return Verdict.TOTAL_FULL
    if limits.per_group is not None and in_group >= limits.per_group:
        return Verdict.GROUP_FULL
    last_slot = from_source + 1 >= limits.max_per_host
    if head_ready_at is not None and last_slot and not ends_at <= head_ready_at() < math.inf:
        return Verdict.HOLD_FOR_HEAD
    return Verdict.START


def inbound_full(limits: Limits, arriving: int) -> bool:
    """Whether a host that `arriving` migrations are arriving at may receive no other now."""
    return limits.max_in_per_host is not None and arriving >= limits.max_in_per_host


def ready_at(ends: Iterable[tuple[float, bool]], group_settle_s: float) -> float:
    """When a step may start given (expected end, must settle) of the dependencies that bound it: the latest end,
    `group_settle_s` later for a departure of an anti-affine member; inf when one has not started (its end is inf)."""
    at = 0.0
    for end, settles in ends:
        at = max(at, end + (group_settle_s if settles else 0.0))
    return at


def group_counts(in_flight: Iterable[Move]) -> dict[str, int]:
    """Per server group, how many of the moves in flight are of its members."""
    counts: dict[str, int] = {}
    for move in in_flight:
        for group in move.groups:
            counts[group] = counts.get(group, 0) + 1
    return counts


def busiest_group(move: Move, counts: Mapping[str, int]) -> int:
    """The most members in flight of any one of `move`'s server's groups (the `in_group` of `verdict`)."""
    return max((counts.get(group, 0) for group in move.groups), default=0)
