"""List scheduling in simulated time under the safety rule (`Ledger`), carrying out detours when proposed.

Ready moves start by priority, bounded by ``max_per_host`` per source and ``parallel`` in total; one that does
not fit waits until a departure from its target completes.  When nothing can start and nothing is running, the
deadlock breaker proposes detours; an optional parking strategy proposes others after each start phase.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from hostmap.flow import Flow
from hostmap.model import Host
from hostmap.planner.deadlock import break_deadlock
from hostmap.planner.ledger import Admission, Ledger
from hostmap.planner.moves import Detour, KeyOf, Leg, Mv, Priority, Request
from hostmap.planner.parking import Parking
from hostmap.planner.requests import PassInputs
from hostmap.start_rule import inbound_full


class Scheduler:
    """One scheduling pass: list scheduling in simulated time, with detours to break deadlocks (and to park)."""

    def __init__(
        self, hosts: Sequence[Host], inputs: PassInputs, key_of: KeyOf, parking: Parking | None = None
    ) -> None:
        n = len(hosts)
        self.hosts: Sequence[Host] = hosts
        self.ledger = Ledger(hosts, inputs.members_at, inputs.group_settle_s)
        self.pinned_ids = inputs.pinned
        self.zone_hosts = inputs.zone_hosts
        self.group_names: Sequence[str] = inputs.group_names
        self.limits = inputs.limits
        self.max_per_host = inputs.limits.max_per_host
        self.parallel = inputs.limits.parallel
        self.key_of = key_of
        self.usable = [h.enabled and h.up for h in hosts]
        #: Every move by uid; the started ones in start order; the ready ones by priority.
        self.moves: list[Mv] = []
        self.order: list[Mv] = []
        self.ready: list[tuple[Priority, int]] = []
        #: Per host: moves waiting for room on it, moves from it waiting for a slot, moves from it running.
        self.cap_wait: list[list[Mv]] = [[] for _ in range(n)]
        self.slot_wait: list[list[tuple[Priority, int]]] = [[] for _ in range(n)]
        self.busy: list[int] = [0] * n
        #: Per host: moves arriving at it now, and ready moves waiting for it to receive fewer (max_in_per_host).
        self.inbound: list[int] = [0] * n
        self.in_wait: list[list[tuple[Priority, int]]] = [[] for _ in range(n)]
        #: Moves that may arrive once a member's departure has settled: (when, uid).
        self.timers: list[tuple[float, int]] = []
        self.flow = Flow(n, inputs.links)
        self.unstarted = 0
        self.now = 0.0
        #: The detours taken: server id -> pivot host, and why.
        self.pivots: dict[str, int] = {}
        self.notes: dict[str, str] = {}
        self.parking = parking
        if parking is not None:
            parking.attach(self)

    def pinned(self, mv: Mv) -> bool:
        """Whether the server of `mv` may not detour (a member of a hard affinity group)."""
        return mv.server.id in self.pinned_ids

    def allows(self, mv: Mv, host: int) -> bool:
        """Whether the server of `mv` may visit `host` (a pivot): inside its pinned availability zone, if any."""
        zone = self.zone_hosts.get(mv.server.id)
        return zone is None or host in zone

    # -- adding moves -----------------------------------------------------------------------------------

    def add_plain(self, req: Request) -> None:
        """Schedule `req` as one move."""
        if self.parking is not None:
            self.parking.requested(req)
        mv = self._new(req, req.src, req.dst, Leg.PLAIN)
        heapq.heappush(self.ready, (mv.key, mv.uid))

    def add_detour(self, req: Request, pivot: int) -> None:
        """Schedule `req` as a detour through `pivot`."""
        if self.parking is not None:
            self.parking.requested(req)
        first = self._legs(req, pivot)
        heapq.heappush(self.ready, (first.key, first.uid))

    def _new(self, req: Request, src: int, dst: int, leg: Leg) -> Mv:
        mv = Mv(len(self.moves), req.server, src, dst, req.dst, req.demand, req.dur, leg, req.tokens)
        mv.key = self.key_of(req.server, leg, src, req.dur)
        self.moves.append(mv)
        self.unstarted += 1
        if self.parking is not None:
            self.parking.created(mv)
        return mv

    def _legs(self, req: Request, pivot: int) -> Mv:
        """Create the two legs of a detour of `req` through `pivot`, partners of each other; the first leg."""
        first = self._new(req, req.src, pivot, Leg.FIRST)
        second = self._new(req, pivot, req.dst, Leg.SECOND)
        first.partner, second.partner = second, first
        return first

    def _divert(self, detour: Detour, now: float) -> None:
        """Replace waiting plain move `detour.move` by a detour through `detour.pivot`; start its first leg now."""
        mv, pivot = detour.move, detour.pivot
        if inbound_full(self.limits, self.inbound[pivot]):
            return  # the pivot receives as many migrations at once as the run allows: the move waits on
        mv.dead = True
        mv.waiting = False
        self.cap_wait[mv.dst].remove(mv)
        self.unstarted -= 1
        if self.parking is not None:
            self.parking.withdrawn(mv)
        first = self._legs(mv.request(), pivot)
        admitted = self.ledger.admit(pivot, first)
        assert admitted is not None
        self._start(first, admitted, now)
        self.pivots[mv.server.id] = pivot
        self.notes[mv.server.id] = detour.note

    # -- starting and completing ------------------------------------------------------------------------

    def _promote(self, host: int) -> None:
        if self.slot_wait[host] and self.busy[host] < self.max_per_host:
            heapq.heappush(self.ready, heapq.heappop(self.slot_wait[host]))

    def _start(self, mv: Mv, admitted: Admission, now: float) -> None:
        mv.index = len(self.order)
        mv.settle_after = tuple(sorted(set(admitted.settle_after)))
        deps = admitted.after
        if mv.leg == Leg.SECOND:
            assert mv.partner is not None
            deps = [*deps, mv.partner.index]
        mv.after = tuple(sorted(set(deps)))
        self.ledger.arrive(mv)
        self.busy[mv.src] += 1
        self.inbound[mv.dst] += 1
        self.unstarted -= 1
        self.order.append(mv)
        if self.parking is not None:
            self.parking.started(mv)
        self.flow.start(mv.uid, mv.src, mv.dst, mv.dur, now)

    def _complete(self, mv: Mv) -> None:
        src = mv.src
        self.busy[src] -= 1
        self.inbound[mv.dst] -= 1
        for entry in self.in_wait[mv.dst]:
            heapq.heappush(self.ready, entry)
        self.in_wait[mv.dst].clear()
        self.ledger.depart(mv, self.now)
        for waiting in self.cap_wait[src]:
            waiting.waiting = False
            heapq.heappush(self.ready, (waiting.key, waiting.uid))
        self.cap_wait[src].clear()
        self._promote(src)
        if self.parking is not None:
            self.parking.completed(mv)
        if mv.leg == Leg.FIRST:
            assert mv.partner is not None
            heapq.heappush(self.ready, (mv.partner.key, mv.partner.uid))

    def _start_phase(self, now: float) -> None:
        ledger = self.ledger
        while self.ready and (self.parallel is None or len(self.flow) < self.parallel):
            key, uid = heapq.heappop(self.ready)
            mv = self.moves[uid]
            if mv.dead or mv.index >= 0:
                continue
            if self.busy[mv.src] >= self.max_per_host:
                heapq.heappush(self.slot_wait[mv.src], (key, uid))
                continue
            if inbound_full(self.limits, self.inbound[mv.dst]):
                heapq.heappush(self.in_wait[mv.dst], (key, uid))
                self._promote(mv.src)
                continue
            admitted = ledger.admit(mv.dst, mv)
            settled = ledger.group_settled_at(admitted.settle_after) if admitted is not None else 0.0
            if settled > now + 1e-9:
                heapq.heappush(self.timers, (settled, uid))
                self._promote(mv.src)
                continue
            if admitted is None:
                self.cap_wait[mv.dst].append(mv)
                mv.waiting = True
                if self.parking is not None:
                    self.parking.stalled_on_room(mv)
                self._promote(mv.src)
                continue
            self._start(mv, admitted, now)
        if self.parking is not None:
            for detour in self.parking.proposals(now):
                self._divert(detour, now)

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self) -> None:
        """Schedule every move added; raises `Stuck` when moves wait on each other and no detour helps."""
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
                    self._release_slot_waits()
                    continue
                for detour in break_deadlock(self, now):
                    self._divert(detour, now)
                continue
            now = self.flow.next_time()
            self.now = now
            for uid in self.flow.advance(now):
                self._complete(self.moves[uid])

    def _release_slot_waits(self) -> None:
        """Nothing runs: every move waiting for its source's slot is ready again."""
        for heap in self.slot_wait:
            for entry in heap:
                heapq.heappush(self.ready, entry)
            heap.clear()
