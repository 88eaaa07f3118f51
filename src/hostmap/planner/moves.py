"""The planner's own types: resource vectors, legs, priorities, requests and the moves being scheduled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from hostmap.errors import CycleInfo
from hostmap.model import Resources, Server

#: Hard anti-affinity groups of a server: (group number, members allowed per host).
Tokens = tuple[tuple[int, int], ...]


class Vec(NamedTuple):
    """An amount of each resource the planner counts, indexable 0-2 in the hot loops."""

    vcpu: int
    memory_mb: int
    disk_gb: int

    @classmethod
    def of(cls, resources: Resources) -> Vec:
        """The vector of a `Resources`."""
        return cls(resources.vcpu, resources.memory_mb, resources.disk_gb)


ZERO = Vec(0, 0, 0)
#: A vector, fixed (`Vec`) or mutable (a per-host running total, list of 3 ints).
Sequence3 = Vec | list[int]
#: Indexes of a `Vec`, for the loops that run over every resource.
RESOURCES = range(3)


def add_into(total: list[int], amount: Sequence3) -> None:
    """Add `amount` to the mutable vector `total`."""
    total[0] += amount[0]
    total[1] += amount[1]
    total[2] += amount[2]


def sub_into(total: list[int], amount: Sequence3) -> None:
    """Subtract `amount` from the mutable vector `total`."""
    total[0] -= amount[0]
    total[1] -= amount[1]
    total[2] -= amount[2]


def covers(room: Sequence3, amount: Sequence3) -> bool:
    """Whether `room` holds at least `amount` of every resource."""
    return room[0] >= amount[0] and room[1] >= amount[1] and room[2] >= amount[2]


class Leg(IntEnum):
    """What part of a server's way a move is: the whole way, or the first or second leg of a detour."""

    PLAIN = 0
    FIRST = 1
    SECOND = 2


class Priority(NamedTuple):
    """Scheduling priority, smallest first: two pass-specific terms, then longest first, then a stable order."""

    primary: float
    secondary: float
    neg_duration: float
    name: str
    server_id: str
    leg: int


NO_PRIORITY = Priority(0.0, 0.0, 0.0, "", "", 0)
#: A pass's priority for (server, leg, source host, seconds).
KeyOf = Callable[[Server, Leg, int, float], Priority]


@dataclass(frozen=True, slots=True)
class Request:
    """One server that must change host: the plain move before any detour."""

    server: Server
    src: int
    dst: int
    demand: Vec
    dur: float
    tokens: Tokens = ()


@dataclass(slots=True, eq=False)
class Mv:
    """A move while planning: hosts are indexes into the sorted host list."""

    uid: int
    server: Server
    src: int
    dst: int
    final: int
    demand: Vec
    dur: float
    leg: Leg
    tokens: Tokens = ()
    key: Priority = NO_PRIORITY
    index: int = -1
    after: tuple[int, ...] = ()
    #: The departures of anti-affine members among `after`: nova's scheduler needs time to see them gone.
    settle_after: tuple[int, ...] = ()
    partner: Mv | None = None
    dead: bool = False
    #: True while the move sits in the list of moves waiting for room on its target.
    waiting: bool = False

    def request(self) -> Request:
        """The plain request this move stands for."""
        return Request(self.server, self.src, self.dst, self.demand, self.dur, self.tokens)


@dataclass(frozen=True, slots=True)
class Detour:
    """A decision to send waiting plain move `move` through `pivot`, and why (the plan's note)."""

    move: Mv
    pivot: int
    note: str


class Stuck(Exception):
    """A pass found cycles it cannot break."""

    def __init__(self, cycles: list[CycleInfo]) -> None:
        super().__init__("stuck")
        self.cycles = cycles
