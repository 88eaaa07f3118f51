"""The safety rule as one ledger: what each host holds, may hold, and has been freed of by completed departures.

A step arriving at host H is admitted when, in every resource, H's load (what is on it plus every arrival
started so far, this one included) minus the demand of departures from H it waits for stays within H's
capacity; the departures it must wait for are the completed ones, earliest first, up to the one that makes the
difference.  Hard anti-affinity is counted the same way, one token per member.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from hostmap.model import Host
from hostmap.planner.moves import RESOURCES, Mv, Vec, add_into


@dataclass(frozen=True, slots=True)
class Admission:
    """Why an arrival is safe: the completed departures (step indexes) it must wait for, and those of them that
    take a member of one of its anti-affinity groups away (nova's scheduler needs time to see those go)."""

    after: list[int]
    settle_after: list[int]


class Ledger:
    """Load, capacity, credit from completed departures and anti-affinity member counts of every host."""

    def __init__(self, hosts: Sequence[Host], members_at: Sequence[dict[int, int]], group_settle_s: float) -> None:
        n = len(hosts)
        self.group_settle_s = group_settle_s
        self.cap: list[Vec] = [Vec.of(h.capacity) for h in hosts]
        #: What is on each host plus every arrival started there.
        self.load: list[list[int]] = [list(Vec.of(h.used)) for h in hosts]
        #: Demand of the completed departures from each host, and its running totals in completion order.
        self.credit: list[list[int]] = [[0, 0, 0] for _ in range(n)]
        self.done_pref: list[tuple[list[int], list[int], list[int]]] = [([], [], []) for _ in range(n)]
        #: Per host, the step indexes of its completed departures, in completion order; and when each ended.
        self.done_index: list[list[int]] = [[] for _ in range(n)]
        self.done_at: dict[int, float] = {}
        # Hard anti-affinity, counted like a resource: members on or arriving at each host per group, and the
        # positions in `done_index` of the completed departures of each group's members.
        self.tok_load: list[dict[int, int]] = [dict(members) for members in members_at] or [{} for _ in range(n)]
        self.tok_pos: list[dict[int, list[int]]] = [{} for _ in range(n)]

    def admit(self, host: int, mv: Mv) -> Admission | None:
        """What the arrival of `mv` at `host` must wait for under the safety rule, or None if too full."""
        demand = mv.demand
        load, cap, credit = self.load[host], self.cap[host], self.credit[host]
        position = -1
        for c in RESOURCES:
            need = load[c] + demand[c] - cap[c]
            if need > 0:
                if need > credit[c]:
                    return None
                position = max(position, bisect_left(self.done_pref[host][c], need))
        done = self.done_index[host]
        settle_after: list[int] = []
        for group, limit in mv.tokens:
            need = self.tok_load[host].get(group, 0) + 1 - limit
            if need > 0:
                gone = self.tok_pos[host].get(group, ())
                if need > len(gone):
                    return None
                position = max(position, gone[need - 1])
                settle_after.extend(done[p] for p in gone[:need])
        return Admission(done[: position + 1], settle_after)

    def group_settled_at(self, departures: Sequence[int]) -> float:
        """When nova's scheduler has seen every departure in `departures` (indexes of completed moves)."""
        if not self.group_settle_s:
            return 0.0
        return max((self.done_at[i] + self.group_settle_s for i in departures), default=0.0)

    def over(self, host: int, mv: Mv, extra: Sequence[int] = (0, 0, 0)) -> bool:
        """Whether `mv` would overfill `host` now, counting completed departures and `extra` as gone."""
        load, cap, credit, demand = self.load[host], self.cap[host], self.credit[host], mv.demand
        return any(load[c] + demand[c] - cap[c] > credit[c] + extra[c] for c in RESOURCES)

    def members_present(self, host: int, group: int) -> int:
        """Members of `group` on or arriving at `host` that have not left it."""
        return self.tok_load[host].get(group, 0) - len(self.tok_pos[host].get(group, ()))

    def fits(self, host: int, mv: Mv, now: float, freed: Mv | None = None) -> bool:
        """Whether `mv` could arrive at `host` now, or once `freed` (a departure from it) has completed."""
        if self.over(host, mv, freed.demand if freed is not None else (0, 0, 0)):
            return False
        for group, limit in mv.tokens:
            gone = self.tok_pos[host].get(group, ())
            present = self.tok_load[host].get(group, 0) - len(gone)
            if freed is not None and any(g == group for g, _ in freed.tokens):
                present -= 1
            if present + 1 > limit:
                return False
            need = present + len(gone) + 1 - limit
            if freed is None and need > 0 and self.group_settled_at([self.done_index[host][gone[need - 1]]]) > now:
                return False  # a member left too recently for nova's scheduler to have seen it go
        return True

    def room(self, host: int) -> list[int]:
        """Room on `host` now: capacity minus load plus what completed departures freed."""
        cap, load, credit = self.cap[host], self.load[host], self.credit[host]
        return [cap[0] - load[0] + credit[0], cap[1] - load[1] + credit[1], cap[2] - load[2] + credit[2]]

    def arrive(self, mv: Mv) -> None:
        """Count started `mv` on its target."""
        add_into(self.load[mv.dst], mv.demand)
        tokens = self.tok_load[mv.dst]
        for group, _ in mv.tokens:
            tokens[group] = tokens.get(group, 0) + 1

    def depart(self, mv: Mv, now: float) -> None:
        """Credit completed `mv` to its source."""
        src = mv.src
        done = self.done_index[src]
        done.append(mv.index)
        self.done_at[mv.index] = now
        for group, _ in mv.tokens:
            self.tok_pos[src].setdefault(group, []).append(len(done) - 1)
        credit, pref = self.credit[src], self.done_pref[src]
        add_into(credit, mv.demand)
        pref[0].append(credit[0])
        pref[1].append(credit[1])
        pref[2].append(credit[2])
