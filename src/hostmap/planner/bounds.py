"""What no schedule can beat: the lower bound a plan's estimate is measured against, and the cloud's free room."""

from __future__ import annotations

from collections.abc import Sequence

from hostmap.model import Host, Limits, Step
from hostmap.planner.moves import RESOURCES, Vec


def lower_bound(steps: Sequence[Step], limits: Limits, room: Vec) -> tuple[float, str]:
    """A bound no schedule of the requested moves can beat, and the term that sets it (`Plan.lower_bound_by`).

    Detours' second legs are left out, so the bound does not depend on the plan (a plan with more detours must
    not look closer to its bound).  Three terms ignore capacity: the longest move, the busiest source host at
    `max_per_host` moves at a time, and all the work at `parallel` moves at a time.  The fourth is the room
    term: nova holds an in-flight server on its target as well as its source, so the servers in flight at any
    moment together hold at most `room` of a resource, the free amount summed over hosts before the first move
    (moving servers adds no free room).  Summed over time, demand x duration of the moves cannot exceed room x
    makespan.
    """
    first_legs: dict[str, Step] = {}
    for s in sorted(steps, key=lambda step: step.index):
        first_legs.setdefault(s.move.server_id, s)
    if not first_legs:
        return 0.0, ""
    per_host: dict[str, float] = {}
    for s in first_legs.values():
        per_host[s.move.source] = per_host.get(s.move.source, 0.0) + s.move.estimate_s
    terms = [(max(s.move.estimate_s for s in first_legs.values()), "longest"),
             (max(per_host.values()) / limits.max_per_host, "source")]
    if limits.parallel is not None:
        terms.append((sum(per_host.values()) / limits.parallel, "parallel"))
    for c, resource in zip(RESOURCES, Vec._fields, strict=True):
        if room[c] > 0:
            area = sum(Vec.of(s.move.demand)[c] * s.move.estimate_s for s in first_legs.values())
            terms.append((area / room[c], f"room:{resource}"))
    return max(terms, key=lambda term: term[0])


def free_room(hosts: Sequence[Host]) -> Vec:
    """Each resource's free amount summed over the hosts that have some free (an overfull host counts as 0)."""
    total = [0, 0, 0]
    for h in hosts:
        for c, (cap, used) in enumerate(zip(Vec.of(h.capacity), Vec.of(h.used), strict=True)):
            total[c] += max(0, cap - used)
    return Vec(*total)
