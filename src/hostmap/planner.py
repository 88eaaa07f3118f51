"""Turn a desired placement into an ordered, capacity-safe schedule of live migrations.

The planner is pure: it reads an `Inventory` and a desired map and returns a `Plan`, with no I/O and no clock.

Safety rule (nova counts an in-flight server on both its source and its target): a step j arriving at host H
is admitted only if ``H.used + demand of every step with index <= j arriving at H - demand of the departures
from H that j (transitively) waits for <= H.capacity`` in every resource.  At any moment the arrivals started
at H are a subset of those indexed up to the latest started one, k, and all of k's dependencies have completed,
so every execution order that respects `Step.after` stays within capacity, whatever the interleaving.

The order is built by list scheduling in simulated time (busiest source hosts and longest migrations first,
bounded by ``max_per_host`` and ``parallel``).  When nothing can start and nothing is running, the stuck moves
form cycles of full hosts; one server per cycle then takes a detour through a pivot host with room.  A second
pass replays the plan with those detours decided up front and critical-path priorities.

When neither comes close to the lower bound, further passes may also park servers: a source host that sits idle
because every server it still has to send waits for room on its target, while servers wait for room on the
source itself, sends one of them to another host of the plan that has room now and keeps room for it at the end
(a detour, two steps).  That frees room on the source at once instead of at the end of a chain of "arrive once
something has left", which is what makes schedules on nearly full clouds long.  Each such pass takes its
priorities from the critical paths of the previous one; the fastest schedule of all passes is returned (fewer
steps on a tie).
"""

from __future__ import annotations

import gc
import heapq
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from hostmap.errors import CapacityError, CapacityShortfall, CycleInfo, InfeasiblePlanError
from hostmap.flow import Flow, Links
from hostmap.model import Host, Inventory, Move, Plan, Resources, Server, Step
from hostmap.policy import check_policies, exclusive_group_names, exclusive_groups, pinned_servers

__all__ = ["Links", "default_duration", "plan"]

_Vec = tuple[int, int, int]
#: Hard anti-affinity groups of a server: (group number, members allowed per host).
_Tokens = tuple[tuple[int, int], ...]
_Key = tuple[float, float, float, str, str, int]

#: Leg kinds of an internal move.
_PLAIN, _FIRST, _SECOND = 0, 1, 2

#: Passes that may park servers, after the first two; each costs about one first pass.  Fewer for big plans:
#: at most `_PARKING_BUDGET` moves scheduled in all, and at least one pass.
_PARKING_PASSES = 30
_PARKING_BUDGET = 30_000
#: No parking passes when the best schedule is already within this factor of the lower bound.
_CLOSE_ENOUGH = 1.02
#: Parking looks at most at this many hosts, the roomiest at the end first, and weighs the first few where the
#: server fits now.
_SPOTS_SCANNED = 32
_SPOTS_WEIGHED = 16


def default_duration(server: Server) -> float:
    """Estimated seconds to live-migrate `server`: 3 s of setup plus its RAM copied at about 1 GB/s."""
    return 3.0 + 0.7 * server.ram_mb * 2**20 / 1e9


def _vec(resources: Resources) -> _Vec:
    return (resources.vcpu, resources.memory_mb, resources.disk_gb)


@dataclass(slots=True, eq=False)
class _Mv:
    """A move while planning: hosts are indexes into the sorted host list."""

    uid: int
    server: Server
    src: int
    dst: int
    final: int
    demand: _Vec
    dur: float
    leg: int
    tokens: _Tokens = ()
    key: _Key = (0.0, 0.0, 0.0, "", "", 0)
    index: int = -1
    after: tuple[int, ...] = ()
    #: The departures of anti-affine members among `after`: nova's scheduler needs time to see them gone.
    settle: tuple[int, ...] = ()
    partner: _Mv | None = None
    dead: bool = False
    #: True while the move sits in the `cap_wait` list of its target.
    waiting: bool = False


@dataclass(frozen=True, slots=True)
class _Request:
    """One server that must change host: the plain move before any detour."""

    server: Server
    src: int
    dst: int
    demand: _Vec
    dur: float
    tokens: _Tokens = ()


@dataclass(slots=True)
class _Built:
    """The outcome of one scheduling pass."""

    order: list[_Mv]
    pivots: dict[str, int]
    notes: dict[str, str]


class _Stuck(Exception):
    """A pass found cycles it cannot break."""

    def __init__(self, cycles: list[CycleInfo]) -> None:
        super().__init__("stuck")
        self.cycles = cycles


class _Scheduler:
    """List scheduling in simulated time under the safety rule, with detours to break deadlocks."""

    def __init__(
        self,
        hosts: Sequence[Host],
        max_per_host: int,
        parallel: int | None,
        key_of: Callable[[Server, int, int, float], _Key],
        *,
        park: bool = False,
        links: Links | None = None,
        members_at: Sequence[Mapping[int, int]] = (),
        pinned: frozenset[str] = frozenset(),
        group_names: Sequence[str] = (),
        settle_s: float = 0.0,
    ) -> None:
        self.pinned_ids = pinned
        self.group_names = group_names
        self.settle_s = settle_s
        #: Moves that may arrive once a member's departure has settled: (when, uid).
        self.timers: list[tuple[float, int]] = []
        #: When each started move (by index) completed, and the current simulated time.
        self.done_at: dict[int, float] = {}
        self.now = 0.0
        self.hosts = hosts
        n = len(hosts)
        self.cap: list[_Vec] = [_vec(h.capacity) for h in hosts]
        self.load: list[list[int]] = [list(_vec(h.used)) for h in hosts]
        self.credit: list[list[int]] = [[0, 0, 0] for _ in range(n)]
        self.done_index: list[list[int]] = [[] for _ in range(n)]
        self.done_pref: list[tuple[list[int], list[int], list[int]]] = [([], [], []) for _ in range(n)]
        self.cap_wait: list[list[_Mv]] = [[] for _ in range(n)]
        self.slot_wait: list[list[tuple[_Key, int]]] = [[] for _ in range(n)]
        self.busy: list[int] = [0] * n
        # Hard anti-affinity, counted like a resource: members on or arriving at each host per group, and the
        # positions in `done_index` of the completed departures of each group's members.
        self.tok_load: list[dict[int, int]] = [dict(members) for members in members_at] or [{} for _ in range(n)]
        self.tok_pos: list[dict[int, list[int]]] = [{} for _ in range(n)]
        self.usable = [h.enabled and h.up for h in hosts]
        self.max_per_host = max_per_host
        self.parallel = parallel
        self.key_of = key_of
        self.moves: list[_Mv] = []
        self.order: list[_Mv] = []
        self.ready: list[tuple[_Key, int]] = []
        self.flow = Flow(n, links)
        self.unstarted = 0
        self.notes: dict[str, str] = {}
        self.pivots: dict[str, int] = {}
        self.pivot_heap: list[tuple[tuple[bool, bool, int, str], int]] = []
        # Parking: demand still to arrive at and to leave each host, seconds still to send from it, the moves
        # of each source that waited for room, the sources to look at, and the hosts a plan moves servers on.
        self.park = park
        self.incoming: list[list[int]] = [[0, 0, 0] for _ in range(n)]
        self.outgoing: list[list[int]] = [[0, 0, 0] for _ in range(n)]
        self.to_send: list[float] = [0.0] * n
        self.stalled: list[list[_Mv]] = [[] for _ in range(n)]
        self.leaving: list[list[_Mv]] = [[] for _ in range(n)]
        self.check: set[int] = set()
        self.involved = [False] * n
        self.spots: list[int] | None = None
        self.spot_room: list[_Vec] = []
        self.no_spot: list[_Vec] = []

    # -- building blocks -------------------------------------------------------------------------------

    def _new(self, req: _Request, src: int, dst: int, leg: int) -> _Mv:
        mv = _Mv(len(self.moves), req.server, src, dst, req.dst, req.demand, req.dur, leg, req.tokens)
        mv.key = self.key_of(req.server, leg, src, req.dur)
        self.moves.append(mv)
        self.unstarted += 1
        if self.park:
            self._account(mv, 1)
        return mv

    def _account(self, mv: _Mv, sign: int) -> None:
        """Count (sign 1) or uncount (-1) a move that has not started in what is still to come (parking only)."""
        incoming, outgoing = self.incoming[mv.dst], self.outgoing[mv.src]
        for c in range(3):
            incoming[c] += sign * mv.demand[c]
            outgoing[c] += sign * mv.demand[c]
        self.to_send[mv.src] += sign * mv.dur

    def add_plain(self, req: _Request) -> None:
        mv = self._new(req, req.src, req.dst, _PLAIN)
        self.involved[req.src] = self.involved[req.dst] = True
        heapq.heappush(self.ready, (mv.key, mv.uid))

    def add_detour(self, req: _Request, pivot: int) -> None:
        self.involved[req.src] = self.involved[req.dst] = True
        first = self._legs(req, pivot)
        heapq.heappush(self.ready, (first.key, first.uid))

    def _legs(self, req: _Request, pivot: int) -> _Mv:
        """Create the two legs of a detour of `req` through `pivot`, partners of each other; the first leg."""
        first = self._new(req, req.src, pivot, _FIRST)
        second = self._new(req, pivot, req.dst, _SECOND)
        first.partner, second.partner = second, first
        return first

    def admit(self, host: int, mv: _Mv) -> tuple[list[int], list[int]] | None:
        """The completed departures from `host` the arrival of `mv` must wait for, and those of them that are
        anti-affine members of its groups (to settle), or None if too full."""
        demand = mv.demand
        settle: list[int] = []
        load, cap, credit = self.load[host], self.cap[host], self.credit[host]
        position = -1
        for c in range(3):
            need = load[c] + demand[c] - cap[c]
            if need > 0:
                if need > credit[c]:
                    return None
                position = max(position, bisect_left(self.done_pref[host][c], need))
        done = self.done_index[host]
        for group, limit in mv.tokens:
            need = self.tok_load[host].get(group, 0) + 1 - limit
            if need > 0:
                gone = self.tok_pos[host].get(group, ())
                if need > len(gone):
                    return None
                position = max(position, gone[need - 1])
                settle.extend(done[p] for p in gone[:need])
        return done[: position + 1], settle

    def settled_by(self, settle: Sequence[int]) -> float:
        """When nova's scheduler has seen every departure in `settle` (indexes of completed moves)."""
        return max((self.done_at[i] + self.settle_s for i in settle), default=0.0) if self.settle_s else 0.0

    def pinned(self, mv: _Mv) -> bool:
        return mv.server.id in self.pinned_ids

    def fits(self, host: int, mv: _Mv, freed: _Mv | None = None) -> bool:
        """Whether `mv` could arrive at `host` now, or once `freed` (a departure from it) has completed."""
        load, cap, credit = self.load[host], self.cap[host], self.credit[host]
        extra = freed.demand if freed is not None else (0, 0, 0)
        if any(load[c] + mv.demand[c] - cap[c] > credit[c] + extra[c] for c in range(3)):
            return False
        for group, limit in mv.tokens:
            gone = self.tok_pos[host].get(group, ())
            present = self.tok_load[host].get(group, 0) - len(gone)
            if freed is not None and any(g == group for g, _ in freed.tokens):
                present -= 1
            if present + 1 > limit:
                return False
            need = present + len(gone) + 1 - limit
            if freed is None and need > 0 and self.settled_by([self.done_index[host][gone[need - 1]]]) > self.now:
                return False  # a member left too recently for nova's scheduler to have seen it go
        return True

    def _promote(self, host: int) -> None:
        if self.slot_wait[host] and self.busy[host] < self.max_per_host:
            heapq.heappush(self.ready, heapq.heappop(self.slot_wait[host]))

    def _start(self, mv: _Mv, deps: list[int], now: float, settle: Sequence[int] = ()) -> None:
        mv.index = len(self.order)
        mv.settle = tuple(sorted(set(settle)))
        if mv.leg == _SECOND:
            assert mv.partner is not None
            deps = [*deps, mv.partner.index]
        mv.after = tuple(sorted(set(deps)))
        load = self.load[mv.dst]
        for c in range(3):
            load[c] += mv.demand[c]
        for group, _ in mv.tokens:
            self.tok_load[mv.dst][group] = self.tok_load[mv.dst].get(group, 0) + 1
        self.busy[mv.src] += 1
        self.unstarted -= 1
        self.order.append(mv)
        if self.park:
            incoming = self.incoming[mv.dst]
            for c in range(3):
                incoming[c] -= mv.demand[c]
            self.to_send[mv.src] -= mv.dur
            self.leaving[mv.src].append(mv)
        self.flow.start(mv.uid, mv.src, mv.dst, mv.dur, now)

    def _complete(self, mv: _Mv) -> None:
        src = mv.src
        self.busy[src] -= 1
        self.done_index[src].append(mv.index)
        self.done_at[mv.index] = self.now
        for group, _ in mv.tokens:
            self.tok_pos[src].setdefault(group, []).append(len(self.done_index[src]) - 1)
        credit, pref = self.credit[src], self.done_pref[src]
        for c in range(3):
            credit[c] += mv.demand[c]
            pref[c].append(credit[c])
        for waiting in self.cap_wait[src]:
            waiting.waiting = False
            heapq.heappush(self.ready, (waiting.key, waiting.uid))
        self.cap_wait[src].clear()
        self._promote(src)
        if self.park:
            outgoing = self.outgoing[src]
            for c in range(3):
                outgoing[c] -= mv.demand[c]
            self.leaving[src].remove(mv)
            if self.stalled[src]:
                self.check.add(src)
        if mv.leg == _FIRST:
            assert mv.partner is not None
            heapq.heappush(self.ready, (mv.partner.key, mv.partner.uid))

    def _start_phase(self, now: float) -> None:
        while self.ready and (self.parallel is None or len(self.flow) < self.parallel):
            key, uid = heapq.heappop(self.ready)
            mv = self.moves[uid]
            if mv.dead or mv.index >= 0:
                continue
            if self.busy[mv.src] >= self.max_per_host:
                heapq.heappush(self.slot_wait[mv.src], (key, uid))
                continue
            admitted = self.admit(mv.dst, mv)
            settled = self.settled_by(admitted[1]) if admitted is not None else 0.0
            if settled > now + 1e-9:
                heapq.heappush(self.timers, (settled, uid))
                self._promote(mv.src)
                continue
            if admitted is None:
                self.cap_wait[mv.dst].append(mv)
                mv.waiting = True
                if self.park and mv.leg == _PLAIN:
                    self.stalled[mv.src].append(mv)
                    self.check.add(mv.src)
                self._promote(mv.src)
                continue
            self._start(mv, admitted[0], now, admitted[1])
        if self.check:
            self._parking(now)

    # -- parking ----------------------------------------------------------------------------------------

    def _parking(self, now: float) -> None:
        """Park a server of each idle source whose every remaining server waits for room, if that frees room needed."""
        sources = sorted(self.check)
        self.check.clear()
        self.no_spot = []
        for src in sources:
            while self.busy[src] < self.max_per_host and (self.parallel is None or len(self.flow) < self.parallel):
                if not self._park_one(src, now):
                    break

    def _park_one(self, src: int, now: float) -> bool:
        stalled = [m for m in dict.fromkeys(self.stalled[src]) if m.waiting and not m.dead]
        self.stalled[src] = stalled
        arriving = [w for w in self.cap_wait[src] if not w.dead]
        if not stalled or not arriving:
            return False

        for mv in self._divert_order(stalled):
            if self.pinned(mv) or self._room_by(mv) <= now + mv.dur:
                continue  # the target has room within one migration: waiting costs less than a second leg
            spot = self._spot(mv)
            if spot is None:
                continue
            self._divert(mv, spot, now)
            self.notes[mv.server.id] = (
                f"detour of {mv.server.name} via {self.hosts[spot].name} to free room on "
                f"{self.hosts[src].name} before {self.hosts[mv.dst].name} has room"
            )
            return True
        return False

    def _room_by(self, mv: _Mv) -> float:
        """When the target of waiting `mv` has room for it as far as running departures tell; inf if not by then."""
        room = [self.cap[mv.dst][c] - self.load[mv.dst][c] + self.credit[mv.dst][c] for c in range(3)]
        finish = self.flow.finish
        for leaving in sorted(self.leaving[mv.dst], key=lambda m: (finish(m.uid), m.index)):
            for c in range(3):
                room[c] += leaving.demand[c]
            if all(room[c] >= mv.demand[c] for c in range(3)):
                return finish(leaving.uid)
        return math.inf

    def _spot(self, mv: _Mv) -> int | None:
        """A host of the plan, other than the move's ends, where the server fits now and still fits at the end.

        Of the `_SPOTS_SCANNED` hosts roomiest at the end, the first `_SPOTS_WEIGHED` that qualify are weighed and
        the one with the least left to send wins (its own departures delay the second leg least).
        """
        if self.spots is None:
            final = [self._final_room(h) for h in range(len(self.hosts))]
            spots = [h for h in range(len(self.hosts)) if self.usable[h] and self.involved[h]]
            spots.sort(key=lambda h: (-final[h][1], -final[h][0], -final[h][2], self.hosts[h].name))
            self.spots = spots
            self.spot_room = final
        demand = mv.demand
        if any(all(demand[c] >= other[c] for c in range(3)) for other in self.no_spot):
            return None
        best: tuple[float, str, int] | None = None
        weighed = 0
        ends = False
        for h in self.spots[:_SPOTS_SCANNED]:
            left = self.spot_room[h]
            if left[1] < demand[1]:
                break
            if any(left[c] < demand[c] for c in range(3)) or not self.fits(h, mv):
                continue
            if h in (mv.src, mv.dst):
                ends = True
                continue
            candidate = (self.to_send[h], self.hosts[h].name, h)
            if best is None or candidate < best:
                best = candidate
            weighed += 1
            if weighed >= _SPOTS_WEIGHED:
                break
        if best is None and not ends and not mv.tokens:
            self.no_spot.append(demand)  # rooms only shrink until the next completion: no bigger server fits either
        return None if best is None else best[2]

    def _final_room(self, host: int) -> _Vec:
        """Room left on `host` once every move still to come has happened (a detour's legs cancel out)."""
        load, cap, credit = self.load[host], self.cap[host], self.credit[host]
        incoming, outgoing = self.incoming[host], self.outgoing[host]
        v, m, d = (cap[c] - load[c] - incoming[c] + credit[c] + outgoing[c] for c in range(3))
        return (v, m, d)

    def _divert(self, mv: _Mv, pivot: int, now: float) -> None:
        """Replace waiting plain move `mv` by a detour through `pivot` and start its first leg now."""
        mv.dead = True
        mv.waiting = False
        self.cap_wait[mv.dst].remove(mv)
        self.unstarted -= 1
        if self.park:
            self._account(mv, -1)
        req = _Request(mv.server, mv.src, mv.dst, mv.demand, mv.dur, mv.tokens)
        first = self._legs(req, pivot)
        admitted = self.admit(pivot, first)
        assert admitted is not None
        self._start(first, admitted[0], now, admitted[1])
        self.pivots[mv.server.id] = pivot

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self) -> None:
        now = 0.0
        while True:
            self.now = now
            self._start_phase(now)
            if self.timers and (not len(self.flow) or self.timers[0][0] <= self.flow.next_time()):
                now = self.timers[0][0]
                while self.timers and self.timers[0][0] <= now:
                    uid = heapq.heappop(self.timers)[1]
                    heapq.heappush(self.ready, (self.moves[uid].key, uid))
                continue
            if not len(self.flow):
                if self.unstarted == 0:
                    return
                if any(self.slot_wait):
                    for heap in self.slot_wait:
                        for entry in heap:
                            heapq.heappush(self.ready, entry)
                        heap.clear()
                    continue
                self._break_deadlock(now)
                continue
            now = self.flow.next_time()
            self.now = now
            for uid in self.flow.advance(now):
                self._complete(self.moves[uid])

    # -- deadlocks --------------------------------------------------------------------------------------

    def _break_deadlock(self, now: float) -> None:
        blocked = [h for h in range(len(self.hosts)) if any(not m.dead for m in self.cap_wait[h])]
        blocked_set = set(blocked)
        leaving: dict[int, list[_Mv]] = {h: [] for h in blocked}
        for h in blocked:
            for mv in self.cap_wait[h]:
                if not mv.dead and mv.src in blocked_set:
                    leaving[mv.src].append(mv)
        edges = {h: sorted({m.dst for m in leaving[h]}) for h in blocked}
        sinks = [scc for scc in _sccs(blocked, edges) if _is_sink(scc, edges)]
        sinks.sort(key=lambda scc: min(self.hosts[h].name for h in scc))
        active: set[int] = set()
        for mv in self.moves:
            if not mv.dead and mv.index < 0:
                active.add(mv.src)
                active.add(mv.dst)
        self.pivot_heap = [
            (self._pivot_key(h, blocked_set, active), h) for h in range(len(self.hosts)) if self.usable[h]
        ]
        heapq.heapify(self.pivot_heap)
        stuck: list[CycleInfo] = []
        broken = 0
        for scc in sinks:
            members = set(scc)
            inside = [m for h in scc for m in leaving[h] if m.dst in members]
            if self._detour_one(scc, inside, blocked_set, active, now):
                broken += 1
                continue
            names = {m.server.name for m in inside} or {m.server.name for h in scc for m in self.cap_wait[h]}
            stuck.append(CycleInfo(servers=sorted(names), hosts=sorted(self.hosts[h].name for h in scc),
                                   groups=self._exclusive_blockers(inside),
                                   pinned=sorted({m.server.name for m in inside if self.pinned(m)})))
        if not broken:
            if not stuck:  # cannot happen when the final state fits; report every waiting server rather than loop
                stuck.append(
                    CycleInfo(
                        servers=sorted({m.server.name for h in blocked for m in self.cap_wait[h] if not m.dead}),
                        hosts=sorted(self.hosts[h].name for h in blocked),
                    )
                )
            raise _Stuck(stuck)

    def _exclusive_blockers(self, waiting: Sequence[_Mv]) -> list[str]:
        """Names of the anti-affinity groups that keep some of `waiting` from arriving, where room alone would not."""
        names: set[str] = set()
        for mv in waiting:
            load, cap, credit = self.load[mv.dst], self.cap[mv.dst], self.credit[mv.dst]
            if any(load[c] + mv.demand[c] - cap[c] > credit[c] for c in range(3)):
                continue
            for group, limit in mv.tokens:
                if self.tok_load[mv.dst].get(group, 0) - len(self.tok_pos[mv.dst].get(group, ())) + 1 > limit:
                    names.add(self.group_names[group])
        return sorted(names)

    def _divert_order(self, moves: Iterable[_Mv]) -> list[_Mv]:
        """Moves to divert first: those whose departure would let a waiting arrival in, then the shortest."""

        def unblocks(mv: _Mv) -> bool:
            return any(self.fits(mv.src, w, mv) for w in self.cap_wait[mv.src] if not w.dead)

        return sorted(moves, key=lambda m: (not unblocks(m), m.dur, m.server.name, m.server.id))

    def _detour_one(self, scc: list[int], inside: list[_Mv], blocked: set[int], active: set[int], now: float) -> bool:
        for mv in self._divert_order(m for m in inside if m.leg == _PLAIN and not self.pinned(m)):
            pivot = self._pivot(mv, blocked, active)
            if pivot is None:
                continue
            self._divert(mv, pivot, now)
            active.add(pivot)
            names = [self.hosts[h].name for h in scc]
            if len(names) == 2:
                what = f"a swap between {names[0]} and {names[1]}"
            else:
                what = "a cycle among " + ", ".join(names)
            self.notes[mv.server.id] = (
                f"detour of {mv.server.name} via {self.hosts[pivot].name} to break {what}"
            )
            return True
        return False

    def _pivot_key(self, h: int, blocked: set[int], active: set[int]) -> tuple[bool, bool, int, str]:
        """Preference among pivots: hosts not waiting for room, idle hosts, most free memory, then name."""
        room = self.cap[h][1] - self.load[h][1] + self.credit[h][1]
        return (h in blocked, h in active, -room, self.hosts[h].name)

    def _pivot(self, mv: _Mv, blocked: set[int], active: set[int]) -> int | None:
        """The most preferred enabled, up host (not the move's own ends) where the server fits now."""
        heap = self.pivot_heap
        held: list[tuple[tuple[bool, bool, int, str], int]] = []
        found: int | None = None
        while heap:
            key, h = heapq.heappop(heap)
            current = self._pivot_key(h, blocked, active)
            if current != key:  # keys only get worse within one deadlock: re-file and look again
                heapq.heappush(heap, (current, h))
                continue
            held.append((key, h))
            if h not in (mv.src, mv.dst) and self.fits(h, mv):
                found = h
                break
        for entry in held:
            heapq.heappush(heap, entry)
        return found


def _sccs(nodes: list[int], edges: Mapping[int, list[int]]) -> list[list[int]]:
    """Strongly connected components (Tarjan, iterative), each sorted, in a deterministic order."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    result: list[list[int]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[int, int]] = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, i = work[-1]
            succ = edges.get(node, [])
            if i < len(succ):
                work[-1] = (node, i + 1)
                nxt = succ[i]
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
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
                component: list[int] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                result.append(sorted(component))
    return result


def _is_sink(scc: list[int], edges: Mapping[int, list[int]]) -> bool:
    members = set(scc)
    return all(t in members for h in scc for t in edges.get(h, []))


def _replay_index(steps: Sequence[Step]) -> tuple[list[list[int]], dict[str, int], dict[str, list[int]]]:
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


def _simulate(
    steps: Sequence[Step], max_per_host: int, parallel: int | None, links: Links | None, settle_s: float = 0.0
) -> float:
    """Makespan as the executor runs the plan: ready steps start in index order, limited per source host and in
    total, and a step takes its source's last slot ahead of an earlier step of that source only if it ends before
    that one can start (and all that one waits for has started).  A step is ready `settle_s` after its
    `settle_after` steps ended."""
    return _Replay(steps, max_per_host, parallel, links, settle_s).run()


class _Replay:
    """The executor's rules in simulated time (see `_simulate`)."""

    def __init__(
        self, steps: Sequence[Step], max_per_host: int, parallel: int | None, links: Links | None, settle_s: float
    ) -> None:
        self.steps, self.max_per_host, self.parallel, self.settle_s = steps, max_per_host, parallel, settle_s
        n = len(steps)
        self.waiting = [len(s.after) for s in steps]
        self.children, self.names, self.queue = _replay_index(steps)
        self.ready = [s.index for s in steps if not s.after]
        heapq.heapify(self.ready)
        self.timers: list[tuple[float, int]] = []  # dependencies ended; waiting for a departure to settle
        self.busy: dict[str, int] = {}
        self.parked: dict[str, list[int]] = {}
        self.started = [False] * n
        self.finished: list[float | None] = [None] * n
        self.flow = Flow(len(self.names), links)

    def ready_at(self, i: int) -> float:
        """When step i may start as far as the running steps tell; inf if one it waits for has not started."""
        at = 0.0
        for a in self.steps[i].after:
            end = self.finished[a]
            if end is None:
                if not self.started[a]:
                    return math.inf
                end = self.flow.finish(a)
            at = max(at, end + (self.settle_s if a in self.steps[i].settle_after else 0.0))
        return at

    def start_ready(self, now: float) -> None:
        held: list[int] = []
        while self.ready and (self.parallel is None or len(self.flow) < self.parallel):
            i = heapq.heappop(self.ready)
            move = self.steps[i].move
            mine = self.queue[move.source]
            while self.started[mine[0]]:
                heapq.heappop(mine)
            if self.busy.get(move.source, 0) >= self.max_per_host:
                heapq.heappush(self.parked.setdefault(move.source, []), i)
                continue
            last_slot = self.busy.get(move.source, 0) + 1 >= self.max_per_host
            if mine[0] != i and last_slot and not now + move.estimate_s <= self.ready_at(mine[0]) < math.inf:
                held.append(i)  # it would still hold the source's last slot when the earlier head can start
                continue
            self.busy[move.source] = self.busy.get(move.source, 0) + 1
            self.started[i] = True
            self.flow.start(i, self.names[move.source], self.names[move.target], move.estimate_s, now)
        for i in held:
            heapq.heappush(self.ready, i)

    def complete(self, i: int, now: float) -> None:
        self.finished[i] = now
        src = self.steps[i].move.source
        self.busy[src] -= 1
        for j in self.parked.pop(src, []):
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


def _lower_bound(steps: Sequence[Step], max_per_host: int, parallel: int | None, room: _Vec) -> tuple[float, str]:
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
             (max(per_host.values()) / max_per_host, "source")]
    if parallel is not None:
        terms.append((sum(per_host.values()) / parallel, "parallel"))
    for c, resource in enumerate(("vcpu", "memory_mb", "disk_gb")):
        if room[c] > 0:
            area = sum(_vec(s.move.demand)[c] * s.move.estimate_s for s in first_legs.values())
            terms.append((area / room[c], f"room:{resource}"))
    return max(terms, key=lambda term: term[0])


def _free_room(hosts: Sequence[Host]) -> _Vec:
    """Each resource's free amount summed over the hosts that have some free (an overfull host counts as 0)."""
    total = [0, 0, 0]
    for h in hosts:
        for c, (cap, used) in enumerate(zip(_vec(h.capacity), _vec(h.used), strict=True)):
            total[c] += max(0, cap - used)
    return (total[0], total[1], total[2])


def _to_steps(order: Sequence[_Mv], hosts: Sequence[Host]) -> tuple[Step, ...]:
    return tuple(
        Step(
            index=mv.index,
            move=Move(
                server_id=mv.server.id,
                server_name=mv.server.name,
                source=hosts[mv.src].name,
                target=hosts[mv.dst].name,
                demand=mv.server.demand,
                final_target=hosts[mv.final].name,
                estimate_s=mv.dur,
            ),
            after=mv.after,
            settle_after=mv.settle,
        )
        for mv in order
    )


def _final_check(hosts: Sequence[Host], requests: Sequence[_Request]) -> None:
    final = [list(_vec(h.used)) for h in hosts]
    receiving: set[int] = set()
    for req in requests:
        receiving.add(req.dst)
        for c in range(3):
            final[req.src][c] -= req.demand[c]
            final[req.dst][c] += req.demand[c]
    shortfalls = [
        CapacityShortfall(hosts[h].name, resource, needed, available)
        for h in sorted(receiving)
        for resource, needed, available in Resources(*final[h]).over(hosts[h].capacity)
    ]
    if shortfalls:
        raise CapacityError(shortfalls)


def plan(
    inventory: Inventory,
    desired: Mapping[str, str],
    *,
    max_per_host: int = 1,
    parallel: int | None = None,
    duration: Callable[[Server], float] | None = None,
    links: Links | None = None,
    group_settle_s: float = 0.0,
) -> Plan:
    """Schedule live migrations that take `inventory` to `desired` (server id -> host) safely and quickly.

    Raises `CapacityError` when the final placement overfills a host that receives servers, `PolicyError` when
    it breaks a hard server-group policy (`hostmap.policy`), and `InfeasiblePlanError` when moves wait on each
    other around full hosts and no pivot host has room.  Hard anti-affinity is kept at every step like a
    resource: a member arrives only once the members it would meet have left.
    """
    if max_per_host < 1:
        raise ValueError("max_per_host must be at least 1")
    if parallel is not None and parallel < 1:
        raise ValueError("parallel must be at least 1 or None")
    with _collector_paused():
        return _plan(inventory, desired, max_per_host, parallel, duration=duration, links=links,
                     group_settle_s=group_settle_s)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: planning allocates many small objects and few cycles, and
    full collections scanning a big inventory again and again cost a quarter of the time on large clouds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(
    inventory: Inventory,
    desired: Mapping[str, str],
    max_per_host: int,
    parallel: int | None,
    *,
    duration: Callable[[Server], float] | None,
    links: Links | None,
    group_settle_s: float,
) -> Plan:
    if not (math.isfinite(group_settle_s) and group_settle_s >= 0):
        raise ValueError("group_settle_s must be a finite number >= 0")
    hosts = sorted(inventory.hosts, key=lambda h: h.name)
    exclusive = exclusive_groups(inventory)
    in_place, requests = _requests(inventory, hosts, desired, duration or default_duration, exclusive)
    _final_check(hosts, requests)
    check_policies(inventory, desired)
    limits = _Limits(
        max_per_host, parallel, links, _members_at(inventory, hosts, exclusive), frozenset(pinned_servers(inventory)),
        tuple(exclusive_group_names(inventory)), group_settle_s,
    )

    work = [0.0] * len(hosts)
    for req in requests:
        work[req.src] += req.dur

    def first_key(server: Server, leg: int, src: int, dur: float) -> _Key:
        return (-work[src], 0.0, -dur, server.name, server.id, leg)

    try:
        first = _schedule(hosts, requests, {}, limits, first_key)
    except _Stuck as stuck:
        # List scheduling never takes a start back: moves that fit at once may have taken the room a cycle of full
        # hosts needed to turn.  Before calling the moves infeasible, replay one at a time an order that a bounded
        # search finds; the scheduler checks each start under the safety rule as always.
        order = _sequential_order(hosts, requests, limits.members_at)
        if order is None:
            raise InfeasiblePlanError(stuck.cycles, _unusable(hosts)) from None
        rank = {req.server.id: float(i) for i, req in enumerate(order)}

        def rank_key(server: Server, leg: int, src: int, dur: float) -> _Key:
            return (rank[server.id], 0.0, -dur, server.name, server.id, leg)

        try:
            first = _schedule(hosts, requests, {}, replace(limits, parallel=1), rank_key)
        except _Stuck:  # the replay waited for nova to see a member leave and took another move meanwhile
            raise InfeasiblePlanError(stuck.cycles, _unusable(hosts)) from None
    best_steps = _to_steps(first.order, hosts)
    best_time = _simulate(best_steps, max_per_host, parallel, links, group_settle_s)
    best_notes = first.notes

    def consider(built: _Built) -> Sequence[Step]:
        nonlocal best_steps, best_time, best_notes
        steps = _to_steps(built.order, hosts)
        seconds = _simulate(steps, max_per_host, parallel, links, group_settle_s)
        if (seconds, len(steps)) < (best_time, len(best_steps)):
            best_steps, best_time, best_notes = steps, seconds, built.notes
        return steps

    # The bound counts each server's first leg only, the same in every pass's plan: one computation serves all.
    bound, bound_by = _lower_bound(best_steps, max_per_host, parallel, _free_room(hosts))
    if requests:
        second = _second_pass(hosts, requests, first, best_steps, limits)
        if second is not None:
            second.notes = {**{k: v for k, v in first.notes.items() if k in second.pivots}, **second.notes}
            consider(second)
        if best_time > _CLOSE_ENOUGH * bound:
            _parking_passes(hosts, requests, limits, first_key, consider)

    leg_one = {s.move.server_id: s.index for s in best_steps if s.move.is_detour}
    notes = tuple(best_notes[sid] for sid in sorted(leg_one, key=leg_one.__getitem__) if sid in best_notes)
    return Plan(
        steps=best_steps,
        in_place=tuple(in_place),
        estimated_s=best_time,
        lower_bound_s=bound,
        lower_bound_by=bound_by,
        max_per_host=max_per_host,
        parallel=parallel,
        notes=notes,
        group_settle_s=group_settle_s,
    )


def _unusable(hosts: Sequence[Host]) -> list[tuple[str, str]]:
    """Hosts no move may go to, pivots included, and why."""
    return [(h.name, "down" if not h.up else "disabled") for h in hosts if not (h.enabled and h.up)]


#: Requests the search for a one-at-a-time order may look at before giving up (about 0.1 s).
_ORDER_BUDGET = 200_000


def _sequential_order(
    hosts: Sequence[Host], requests: Sequence[_Request], members_at: Sequence[Mapping[int, int]]
) -> list[_Request] | None:
    """The requests in an order in which each, moved directly and alone, fits on its target when it starts, and
    finds there fewer members of each of its anti-affinity groups than the group allows per host.

    Depth-first over the sets of servers moved so far, each set expanded once; None when there is no such order
    or the search looked at `_ORDER_BUDGET` requests without finding one.
    """
    cap = [_vec(h.capacity) for h in hosts]
    load = [list(_vec(h.used)) for h in hosts]
    members = [dict(m) for m in members_at]
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
            req = requests[i]
            if (
                not mask >> i & 1
                and all(load[req.dst][c] + req.demand[c] <= cap[req.dst][c] for c in range(3))
                and all(members[req.dst].get(g, 0) < limit for g, limit in req.tokens)
            ):
                break
            i += 1
        if checks > _ORDER_BUDGET:
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
        req = requests[i]
        for c in range(3):
            load[req.dst][c] += sign * req.demand[c]
            load[req.src][c] -= sign * req.demand[c]
        for g, _ in req.tokens:
            members[req.dst][g] = members[req.dst].get(g, 0) + sign
            members[req.src][g] = members[req.src].get(g, 0) - sign
    return None


@dataclass(frozen=True, slots=True)
class _Limits:
    """What every pass shares: the run's limits, NIC sharing, and where anti-affinity members are."""

    max_per_host: int
    parallel: int | None
    links: Links | None
    #: Per host (index): group number -> members on it now, for hard anti-affinity groups.
    members_at: tuple[dict[int, int], ...]
    #: Servers that may not detour (members of hard affinity groups).
    pinned: frozenset[str]
    #: Names of the hard anti-affinity groups, by the numbers `members_at` and the moves use.
    group_names: tuple[str, ...]
    #: Seconds between a member's departure and another member's arrival on that host.
    settle_s: float


def _members_at(
    inventory: Inventory, hosts: Sequence[Host], exclusive: Mapping[str, _Tokens]
) -> tuple[dict[int, int], ...]:
    host_index = {h.name: i for i, h in enumerate(hosts)}
    counts: list[dict[int, int]] = [{} for _ in hosts]
    for server in inventory.servers:
        where = host_index.get(server.host or "")
        if where is None:
            continue
        for group, _ in exclusive.get(server.id, ()):
            counts[where][group] = counts[where].get(group, 0) + 1
    return tuple(counts)


def _requests(
    inventory: Inventory,
    hosts: Sequence[Host],
    desired: Mapping[str, str],
    estimate: Callable[[Server], float],
    exclusive: Mapping[str, _Tokens],
) -> tuple[list[Server], list[_Request]]:
    """Split `desired` into servers already in place and moves to make, both sorted by server name."""
    host_index = {h.name: i for i, h in enumerate(hosts)}
    if len(host_index) != len(hosts):
        raise ValueError("host names must be unique")
    servers = {s.id: s for s in inventory.servers}
    in_place: list[Server] = []
    requests: list[_Request] = []
    for server_id, target in desired.items():
        server = servers.get(server_id)
        if server is None:
            raise ValueError(f"unknown server {server_id!r}")
        if target not in host_index:
            raise ValueError(f"unknown host {target!r} for server {server.name!r}")
        if server.host == target:
            in_place.append(server)
            continue
        if server.host is None or server.host not in host_index:
            raise ValueError(f"server {server.name!r} is on no known host")
        seconds = float(estimate(server))
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"duration for {server.name!r} must be a finite non-negative number")
        requests.append(_Request(server, host_index[server.host], host_index[target], _vec(server.demand), seconds,
                                 exclusive.get(server.id, ())))
    requests.sort(key=lambda r: (r.server.name, r.server.id))
    in_place.sort(key=lambda s: (s.name, s.id))
    return in_place, requests


def _levels(order: Sequence[_Mv], steps: Sequence[Step]) -> dict[tuple[str, int], float]:
    """Each move's critical path: its seconds plus the longest chain of steps that wait for it, by (server, leg)."""
    level: dict[tuple[str, int], float] = {}
    below = [0.0] * len(steps)
    for step, mv in zip(reversed(steps), reversed(order), strict=True):
        below[step.index] += step.move.estimate_s
        level[(mv.server.id, mv.leg)] = below[step.index]
        for a in step.after:
            below[a] = max(below[a], below[step.index])
    return level


def _second_pass(
    hosts: Sequence[Host],
    requests: Sequence[_Request],
    first: _Built,
    steps: Sequence[Step],
    limits: _Limits,
) -> _Built | None:
    """Reschedule with the first pass's detours decided up front and its critical paths as priorities."""
    level = _levels(first.order, steps)
    work = [0.0] * len(hosts)
    for mv in first.order:
        work[mv.src] += mv.dur

    def key(server: Server, leg: int, src: int, dur: float) -> _Key:
        bl = level.get((server.id, leg), dur)
        return (-max(bl, work[src]), -bl, -dur, server.name, server.id, leg)

    try:
        return _schedule(hosts, requests, first.pivots, limits, key)
    except _Stuck:
        return None


def _parking_passes(
    hosts: Sequence[Host],
    requests: Sequence[_Request],
    limits: _Limits,
    first_key: Callable[[Server, int, int, float], _Key],
    consider: Callable[[_Built], Sequence[Step]],
) -> None:
    """Schedule with parking, first with the first pass's priorities, then each time with critical-path
    priorities from the pass before; `consider` keeps the fastest."""
    key_of = first_key
    for _ in range(max(1, min(_PARKING_PASSES, _PARKING_BUDGET // len(requests)))):
        try:
            built = _schedule(hosts, requests, {}, limits, key_of, park=True)
        except _Stuck:
            return
        steps = consider(built)
        level = _levels(built.order, steps)

        def key_of(server: Server, leg: int, src: int, dur: float, level: dict[tuple[str, int], float] = level) -> _Key:
            # A server parked in one pass and not in the other: its plain move and its first leg stand for each other.
            bl = level.get((server.id, leg)) or level.get((server.id, _PLAIN)) or level.get((server.id, _FIRST), dur)
            return (-bl, 0.0, -dur, server.name, server.id, leg)


def _schedule(
    hosts: Sequence[Host],
    requests: Sequence[_Request],
    pivots: Mapping[str, int],
    limits: _Limits,
    key_of: Callable[[Server, int, int, float], _Key],
    *,
    park: bool = False,
) -> _Built:
    sched = _Scheduler(
        hosts, limits.max_per_host, limits.parallel, key_of,
        park=park, links=limits.links, members_at=limits.members_at, pinned=limits.pinned,
        group_names=limits.group_names, settle_s=limits.settle_s,
    )
    for req in requests:
        pivot = pivots.get(req.server.id)
        if pivot is None:
            sched.add_plain(req)
        else:
            sched.add_detour(req, pivot)
    sched.run()
    pivots_used = dict(pivots)
    pivots_used.update(sched.pivots)
    return _Built(sched.order, pivots_used, sched.notes)
