"""What the scheduler shows the parts that propose detours (deadlock breaking, parking), and what they share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from hostmap.flow import Flow
from hostmap.model import Host, Limits
from hostmap.planner.ledger import Ledger
from hostmap.planner.moves import Mv


class Board(Protocol):
    """The scheduler's state as the detour proposers read it; they change nothing, the scheduler carries out."""

    hosts: Sequence[Host]
    ledger: Ledger
    #: Per host: whether moves may go there, moves started from it and running, moves waiting for room on it.
    usable: list[bool]
    busy: list[int]
    #: Per host: moves arriving at it now (bounded by `limits.max_in_per_host`).
    inbound: list[int]
    limits: Limits
    cap_wait: list[list[Mv]]
    #: Every move created so far, by uid.
    moves: list[Mv]
    max_per_host: int
    parallel: int | None
    flow: Flow
    group_names: Sequence[str]

    def pinned(self, mv: Mv) -> bool:
        """Whether the server of `mv` may not detour (a member of a hard affinity group)."""
        ...

    def allows(self, mv: Mv, host: int) -> bool:
        """Whether the server of `mv` may visit `host` (a pivot): inside its pinned availability zone, if any."""
        ...


def has_slot(board: Board, src: int) -> bool:
    """Whether a move from `src` may start now as far as the run's limits go."""
    return board.busy[src] < board.max_per_host and (board.parallel is None or len(board.flow) < board.parallel)


def divert_order(board: Board, moves: Iterable[Mv], now: float) -> list[Mv]:
    """Moves to divert first: those whose departure would let a waiting arrival in, then the shortest."""
    ledger = board.ledger

    def unblocks(mv: Mv) -> bool:
        return any(ledger.fits(mv.src, w, now, mv) for w in board.cap_wait[mv.src] if not w.dead)

    return sorted(moves, key=lambda m: (not unblocks(m), m.dur, m.server.name, m.server.id))
