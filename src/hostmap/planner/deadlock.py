"""Deadlocks: when nothing runs and nothing can start, the waiting moves form cycles of full hosts.

The hosts waiting for room and the moves between them form a graph; each sink component (Tarjan) is a cycle
that nothing outside will unblock.  One server per cycle takes a detour through a pivot host with room now.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence

from hostmap.errors import CycleInfo
from hostmap.planner.board import Board, divert_order
from hostmap.planner.moves import Detour, Leg, Mv, Stuck

#: Preference among pivots, smallest first: (waits for room, has moves to make, -free memory, name).
PivotKey = tuple[bool, bool, int, str]


def break_deadlock(board: Board, now: float) -> Iterator[Detour]:
    """Detours that break every sink cycle that can be broken, one at a time: the caller carries each out before
    asking for the next.  Raises `Stuck` with the cycles when none can be broken."""
    hosts = board.hosts
    blocked = [h for h in range(len(hosts)) if any(not m.dead for m in board.cap_wait[h])]
    blocked_set = set(blocked)
    leaving: dict[int, list[Mv]] = {h: [] for h in blocked}
    for h in blocked:
        for mv in board.cap_wait[h]:
            if not mv.dead and mv.src in blocked_set:
                leaving[mv.src].append(mv)
    edges = {h: sorted({m.dst for m in leaving[h]}) for h in blocked}
    sinks = [scc for scc in sccs(blocked, edges) if is_sink(scc, edges)]
    sinks.sort(key=lambda scc: min(hosts[h].name for h in scc))
    pivots = _Pivots(board, blocked_set)
    stuck: list[CycleInfo] = []
    broken = 0
    for scc in sinks:
        members = set(scc)
        inside = [m for h in scc for m in leaving[h] if m.dst in members]
        detour = _detour_one(board, scc, inside, pivots, now)
        if detour is not None:
            yield detour
            pivots.active.add(detour.pivot)
            broken += 1
            continue
        names = {m.server.name for m in inside} or {m.server.name for h in scc for m in board.cap_wait[h]}
        stuck.append(CycleInfo(servers=sorted(names), hosts=sorted(hosts[h].name for h in scc),
                               groups=exclusive_blockers(board, inside),
                               pinned=sorted({m.server.name for m in inside if board.pinned(m)})))
    if not broken:
        if not stuck:  # cannot happen when the final state fits; report every waiting server rather than loop
            stuck.append(
                CycleInfo(
                    servers=sorted({m.server.name for h in blocked for m in board.cap_wait[h] if not m.dead}),
                    hosts=sorted(hosts[h].name for h in blocked),
                )
            )
        raise Stuck(stuck)


def _detour_one(board: Board, scc: list[int], inside: list[Mv], pivots: _Pivots, now: float) -> Detour | None:
    """A detour for one plain move of the cycle `scc` through the most preferred pivot where it fits."""
    for mv in divert_order(board, (m for m in inside if m.leg == Leg.PLAIN and not board.pinned(m)), now):
        pivot = pivots.find(mv, now)
        if pivot is None:
            continue
        names = [board.hosts[h].name for h in scc]
        what = f"a swap between {names[0]} and {names[1]}" if len(names) == 2 else "a cycle among " + ", ".join(names)
        return Detour(mv, pivot, f"detour of {mv.server.name} via {board.hosts[pivot].name} to break {what}")
    return None


def exclusive_blockers(board: Board, waiting: Sequence[Mv]) -> list[str]:
    """Names of the anti-affinity groups that keep some of `waiting` from arriving, where room alone would not."""
    ledger = board.ledger
    names: set[str] = set()
    for mv in waiting:
        if ledger.over(mv.dst, mv):
            continue
        for group, limit in mv.tokens:
            if ledger.members_present(mv.dst, group) + 1 > limit:
                names.add(board.group_names[group])
    return sorted(names)


class _Pivots:
    """The usable hosts of one deadlock in order of preference, kept in a heap whose keys only get worse."""

    def __init__(self, board: Board, blocked: set[int]) -> None:
        self.board = board
        self.blocked = blocked
        #: Hosts with moves still to make (a pivot among them delays them).
        self.active: set[int] = set()
        for mv in board.moves:
            if not mv.dead and mv.index < 0:
                self.active.add(mv.src)
                self.active.add(mv.dst)
        self.heap = [(self.key(h), h) for h in range(len(board.hosts)) if board.usable[h]]
        heapq.heapify(self.heap)

    def key(self, h: int) -> PivotKey:
        """Preference among pivots: hosts not waiting for room, idle hosts, most free memory, then name."""
        return (h in self.blocked, h in self.active, -self.board.ledger.room(h)[1], self.board.hosts[h].name)

    def find(self, mv: Mv, now: float) -> int | None:
        """The most preferred enabled, up host (not the move's own ends) where the server fits now."""
        heap = self.heap
        held: list[tuple[PivotKey, int]] = []
        found: int | None = None
        while heap:
            key, h = heapq.heappop(heap)
            current = self.key(h)
            if current != key:  # keys only get worse within one deadlock: re-file and look again
                heapq.heappush(heap, (current, h))
                continue
            held.append((key, h))
            if h not in (mv.src, mv.dst) and self.board.allows(mv, h) and self.board.ledger.fits(h, mv, now):
                found = h
                break
        for entry in held:
            heapq.heappush(heap, entry)
        return found


def sccs(nodes: list[int], edges: Mapping[int, list[int]]) -> list[list[int]]:
    """Strongly connected components (Tarjan, iterative), each sorted, in a deterministic order."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    result: list[list[int]] = []
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[int, int]] = [(root, 0)]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, i = work[-1]
            succ = edges.get(node, [])
            if i < len(succ):
                work[-1] = (node, i + 1)
                nxt = succ[i]
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                result.append(_pop_component(stack, on_stack, node))
    return result


def _pop_component(stack: list[int], on_stack: set[int], node: int) -> list[int]:
    """Pop the component rooted at `node` off Tarjan's stack, sorted."""
    component: list[int] = []
    while True:
        top = stack.pop()
        on_stack.discard(top)
        component.append(top)
        if top == node:
            return sorted(component)


def is_sink(scc: list[int], edges: Mapping[int, list[int]]) -> bool:
    """Whether no edge leaves component `scc`."""
    members = set(scc)
    return all(t in members for h in scc for t in edges.get(h, []))
