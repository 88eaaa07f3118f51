"""The fallback: a one-at-a-time order, found by a bounded search, for maps list scheduling gets stuck on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hostmap.model import Host
from hostmap.planner.moves import RESOURCES, Request, Vec, add_into, sub_into

#: Requests the search for a one-at-a-time order may look at before giving up (about 0.1 s).
ORDER_BUDGET = 200_000


class _Placement:
    """Load and anti-affinity member counts of every host while requests are moved and taken back one by one."""

    def __init__(self, hosts: Sequence[Host], members_at: Sequence[Mapping[int, int]]) -> None:
        self.cap = [Vec.of(h.capacity) for h in hosts]
        self.load = [list(Vec.of(h.used)) for h in hosts]
        self.members = [dict(m) for m in members_at]

    def allows(self, req: Request) -> bool:
        """Whether `req`, moved directly and alone now, fits on its target and finds there fewer members of each
        of its anti-affinity groups than the group allows per host."""
        load, cap = self.load[req.dst], self.cap[req.dst]
        return all(load[c] + req.demand[c] <= cap[c] for c in RESOURCES) and all(
            self.members[req.dst].get(g, 0) < limit for g, limit in req.tokens
        )

    def move(self, req: Request, sign: int) -> None:
        """Carry out (sign 1) or take back (-1) `req`."""
        if sign > 0:
            add_into(self.load[req.dst], req.demand)
            sub_into(self.load[req.src], req.demand)
        else:
            sub_into(self.load[req.dst], req.demand)
            add_into(self.load[req.src], req.demand)
        for g, _ in req.tokens:
            self.members[req.dst][g] = self.members[req.dst].get(g, 0) + sign
            self.members[req.src][g] = self.members[req.src].get(g, 0) - sign


def sequential_order(
    hosts: Sequence[Host], requests: Sequence[Request], members_at: Sequence[Mapping[int, int]]
) -> list[Request] | None:
    """The requests in an order in which each, moved directly and alone, fits on its target when it starts, and
    finds there fewer members of each of its anti-affinity groups than the group allows per host.

    Depth-first over the sets of servers moved so far, each set expanded once; None when there is no such order
    or the search looked at `ORDER_BUDGET` requests without finding one.
    """
    placement = _Placement(hosts, members_at)
    n = len(requests)
    seen: set[int] = set()
    order: list[int] = []
    nexts = [0]  # per depth, the next request to try
    mask, checks = 0, 0
    while nexts:
        if len(order) == n:
            return [requests[i] for i in order]
        i = nexts[-1]
        if i == 0:
            i = n if mask in seen else 0  # a set reached before leads nowhere: back up
            seen.add(mask)
        while i < n:
            checks += 1
            if not mask >> i & 1 and placement.allows(requests[i]):
                break
            i += 1
        if checks > ORDER_BUDGET:
            return None
        if i < n:  # move request i next and go deeper
            nexts[-1] = i + 1
            nexts.append(0)
            order.append(i)
            mask |= 1 << i
            sign = 1
        else:  # nothing more to try here: take back the last move
            nexts.pop()
            if not order:
                return None
            i = order.pop()
            mask &= ~(1 << i)
            sign = -1
        placement.move(requests[i], sign)
    return None
