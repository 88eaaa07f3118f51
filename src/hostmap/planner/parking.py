"""Parking: free room on an idle source host at once by sending a waiting server to another host of the plan.

A source host sits idle when every server it still has to send waits for room on its target while servers wait
for room on the source itself.  Parking sends one of them to a host that has room now and keeps room for it at
the end (a detour, two steps), instead of waiting for the end of a chain of "arrive once something has left".
`Parking` watches a scheduling pass (the scheduler tells it what it creates, starts, completes and stalls) and
proposes detours; the scheduler carries them out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from hostmap.planner.board import Board, divert_order, has_slot
from hostmap.planner.moves import RESOURCES, Detour, Leg, Mv, Request, Vec, add_into, covers, sub_into
from hostmap.start_rule import inbound_full

#: Parking looks at most at this many hosts, the roomiest at the end first, and weighs the first few where the
#: server fits now.
SPOTS_SCANNED = 32
SPOTS_WEIGHED = 16


class Parking:
    """Observes one scheduling pass and proposes detours that park servers; attached to one scheduler."""

    def __init__(self) -> None:
        self.board: Board | None = None

    def attach(self, board: Board) -> None:
        """Start watching `board` (a scheduler with no moves yet)."""
        n = len(board.hosts)
        self.board = board
        #: Demand still to arrive at and to leave each host, and seconds still to send from it.
        self.incoming: list[list[int]] = [[0, 0, 0] for _ in range(n)]
        self.outgoing: list[list[int]] = [[0, 0, 0] for _ in range(n)]
        self.to_send: list[float] = [0.0] * n
        #: Per source, its plain moves that waited for room, and its departures running.
        self.stalled: list[list[Mv]] = [[] for _ in range(n)]
        self.leaving: list[list[Mv]] = [[] for _ in range(n)]
        #: Sources to look at after the current start phase; hosts the plan moves servers between.
        self.check: set[int] = set()
        self.involved = [False] * n
        #: Candidate hosts, roomiest at the end first, and their room at the end (computed once, when first needed).
        self.spots: list[int] | None = None
        self.spot_room: list[Vec] = []
        #: Demands no spot fits until the next completion.
        self.no_spot: list[Vec] = []

    # -- what the scheduler tells ---------------------------------------------------------------------------

    def requested(self, req: Request) -> None:
        """A server of the plan will move from `req.src` to `req.dst`."""
        self.involved[req.src] = self.involved[req.dst] = True

    def created(self, mv: Mv) -> None:
        """`mv` is still to come."""
        self._account(mv, 1)

    def withdrawn(self, mv: Mv) -> None:
        """`mv`, which had not started, will never start (it became a detour)."""
        self._account(mv, -1)

    def _account(self, mv: Mv, sign: int) -> None:
        incoming, outgoing = self.incoming[mv.dst], self.outgoing[mv.src]
        for c in RESOURCES:
            incoming[c] += sign * mv.demand[c]
            outgoing[c] += sign * mv.demand[c]
        self.to_send[mv.src] += sign * mv.dur

    def started(self, mv: Mv) -> None:
        """`mv` started."""
        sub_into(self.incoming[mv.dst], mv.demand)
        self.to_send[mv.src] -= mv.dur
        self.leaving[mv.src].append(mv)

    def completed(self, mv: Mv) -> None:
        """`mv` completed: its source has more room."""
        sub_into(self.outgoing[mv.src], mv.demand)
        self.leaving[mv.src].remove(mv)
        if self.stalled[mv.src]:
            self.check.add(mv.src)

    def stalled_on_room(self, mv: Mv) -> None:
        """`mv` waits for room on its target."""
        if mv.leg == Leg.PLAIN:
            self.stalled[mv.src].append(mv)
            self.check.add(mv.src)

    # -- what it proposes -----------------------------------------------------------------------------------

    def proposals(self, now: float) -> Iterator[Detour]:
        """Park a server of each idle source whose every remaining server waits for room, if that frees room
        needed; one detour at a time, each carried out by the caller before the next is looked for."""
        if not self.check:
            return
        assert self.board is not None
        sources = sorted(self.check)
        self.check.clear()
        self.no_spot = []
        for src in sources:
            while has_slot(self.board, src):
                detour = self._park_one(src, now)
                if detour is None:
                    break
                yield detour

    def _park_one(self, src: int, now: float) -> Detour | None:
        board = self.board
        assert board is not None
        stalled = [m for m in dict.fromkeys(self.stalled[src]) if m.waiting and not m.dead]
        self.stalled[src] = stalled
        arriving = [w for w in board.cap_wait[src] if not w.dead]
        if not stalled or not arriving:
            return None
        for mv in divert_order(board, stalled, now):
            if board.pinned(mv) or self._room_by(mv) <= now + mv.dur:
                continue  # the target has room within one migration: waiting costs less than a second leg
            spot = self._spot(mv, now)
            if spot is None:
                continue
            hosts = board.hosts
            return Detour(mv, spot, f"detour of {mv.server.name} via {hosts[spot].name} to free room on "
                                    f"{hosts[src].name} before {hosts[mv.dst].name} has room")
        return None

    def _room_by(self, mv: Mv) -> float:
        """When the target of waiting `mv` has room for it as far as running departures tell; inf if not by then."""
        assert self.board is not None
        room = self.board.ledger.room(mv.dst)
        finish = self.board.flow.finish
        for leaving in sorted(self.leaving[mv.dst], key=lambda m: (finish(m.uid), m.index)):
            add_into(room, leaving.demand)
            if covers(room, mv.demand):
                return finish(leaving.uid)
        return math.inf

    def _spot(self, mv: Mv, now: float) -> int | None:
        """A host of the plan, other than the move's ends, where the server fits now and still fits at the end.

        Of the `SPOTS_SCANNED` hosts roomiest at the end, the first `SPOTS_WEIGHED` that qualify are weighed and
        the one with the least left to send wins (its own departures delay the second leg least).
        """
        board = self.board
        assert board is not None
        if self.spots is None:
            n = len(board.hosts)
            final = [self._final_room(h) for h in range(n)]
            spots = [h for h in range(n) if board.usable[h] and self.involved[h]]
            spots.sort(key=lambda h: (-final[h][1], -final[h][0], -final[h][2], board.hosts[h].name))
            self.spots = spots
            self.spot_room = final
        demand = mv.demand
        if any(covers(demand, other) for other in self.no_spot):
            return None
        best: tuple[float, str, int] | None = None
        weighed = 0
        ends = False
        for h in self.spots[:SPOTS_SCANNED]:
            left = self.spot_room[h]
            if left[1] < demand[1]:
                break
            if not covers(left, demand) or not board.ledger.fits(h, mv, now):
                continue
            if h in (mv.src, mv.dst):
                ends = True
                continue
            if inbound_full(board.limits, board.inbound[h]):
                continue  # it receives as many migrations at once as the run allows
            if not board.allows(mv, h):
                ends = True  # kept out by its zone, not by room: the no-spot shortcut must not learn from it
                continue
            candidate = (self.to_send[h], board.hosts[h].name, h)
            if best is None or candidate < best:
                best = candidate
            weighed += 1
            if weighed >= SPOTS_WEIGHED:
                break
        if best is None and not ends and not mv.tokens:
            self.no_spot.append(demand)  # rooms only shrink until the next completion: no bigger server fits either
        return None if best is None else best[2]

    def _final_room(self, host: int) -> Vec:
        """Room left on `host` once every move still to come has happened (a detour's legs cancel out)."""
        assert self.board is not None
        room = self.board.ledger.room(host)
        incoming, outgoing = self.incoming[host], self.outgoing[host]
        return Vec(*(room[c] - incoming[c] + outgoing[c] for c in RESOURCES))
