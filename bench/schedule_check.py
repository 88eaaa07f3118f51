"""An independent, event-by-event checker of a migration schedule: the referee between hostmap and the solver.

It shares no code with the planner or with the reference model (`reference_solver.py`): it is given the cloud as
numbers (capacities, what stays, where each moving server is and must end) and a schedule as legs (server, source,
target, start, end), and it replays time instant by instant.  The rules it enforces are nova's as hostmap models
them:

- a server's legs form a chain from its current host to its desired one, each starting after the previous ended;
- a migrating server is held on its source and its target for the whole leg (nova allocates on both);
- at every moment every host's use stays within placement's capacity, in every resource;
- at most `max_per_host` legs leave one host at once (nova's max_concurrent_live_migrations);
- an anti-affinity group has at most `max_per_host` of its members on one host at every moment (held twice too).

Intervals are half-open: a leg [start, end) has left its source at `end`, so a leg may start on a host at the very
moment another leaves it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class Leg:
    """One migration of a schedule."""

    server: str
    source: str
    target: str
    start: float
    end: float


@dataclass(frozen=True)
class Cloud:
    """What the checker needs to know about the cloud before the first move."""

    #: host -> usable (VCPU, MEMORY_MB, DISK_GB), as placement computes it.
    capacity: Mapping[str, Triple]
    #: server -> its demand.
    demand: Mapping[str, Triple]
    #: server -> its host now (every server of the cloud, moving or not).
    current: Mapping[str, str]
    #: moving server -> the host it must end on.
    desired: Mapping[str, str]
    max_per_host: int = 1
    #: Anti-affinity groups: (members, at most this many on one host).
    groups: Sequence[tuple[frozenset[str], int]] = field(default=())


class Violation(Exception):
    """The schedule breaks a rule; the message says which, where and when."""


def _chains(cloud: Cloud, legs: Sequence[Leg]) -> dict[str, list[Leg]]:
    by_server: dict[str, list[Leg]] = {}
    for leg in legs:
        if leg.end < leg.start or leg.start < 0:
            raise Violation(f"{leg.server}: leg {leg.source}->{leg.target} has start {leg.start}, end {leg.end}")
        by_server.setdefault(leg.server, []).append(leg)
    for server, chain in by_server.items():
        chain.sort(key=lambda leg: leg.start)
        if server not in cloud.current:
            raise Violation(f"{server}: not a server of the cloud")
        where = cloud.current[server]
        previous_end = 0.0
        for leg in chain:
            if leg.source != where:
                raise Violation(f"{server}: leg from {leg.source} while the server is on {where}")
            if leg.source == leg.target:
                raise Violation(f"{server}: leg from {leg.source} to itself")
            if leg.start < previous_end:
                raise Violation(f"{server}: leg to {leg.target} starts at {leg.start} before its previous ended")
            where, previous_end = leg.target, leg.end
        if where != cloud.desired.get(server, cloud.current[server]):
            raise Violation(f"{server}: ends on {where}, desired {cloud.desired.get(server)}")
    missing = [s for s, h in cloud.desired.items() if h != cloud.current[s] and s not in by_server]
    if missing:
        raise Violation(f"{len(missing)} servers never move, for example {missing[0]}")
    return by_server


def _hosts_at(cloud: Cloud, server: str, chain: Sequence[Leg], t: float) -> tuple[str, ...]:
    """The hosts holding `server` at instant t (two while a leg runs)."""
    where = cloud.current[server]
    for leg in chain:
        if t < leg.start:
            return (where,)
        if t < leg.end:
            return (leg.source, leg.target)
        where = leg.target
    return (where,)


def check(cloud: Cloud, legs: Sequence[Leg]) -> float:
    """Raise `Violation` if the schedule breaks a rule; otherwise return its makespan (the last leg's end)."""
    chains = _chains(cloud, legs)
    # Use only rises when a leg starts, so checking every start instant checks every moment.
    instants = sorted({leg.start for leg in legs} | {0.0})
    static = [s for s in cloud.current if s not in chains]
    for t in instants:
        use: dict[str, list[int]] = {h: [0, 0, 0] for h in cloud.capacity}
        on_host: dict[str, set[str]] = {h: set() for h in cloud.capacity}
        for server in static:
            host = cloud.current[server]
            on_host[host].add(server)
            for r in range(3):
                use[host][r] += cloud.demand[server][r]
        for server, chain in chains.items():
            for host in _hosts_at(cloud, server, chain, t):
                on_host[host].add(server)
                for r in range(3):
                    use[host][r] += cloud.demand[server][r]
        for host, used in use.items():
            for r, name in enumerate(("VCPU", "MEMORY_MB", "DISK_GB")):
                if used[r] > cloud.capacity[host][r]:
                    raise Violation(f"t={t:.1f}: {host} holds {used[r]} {name} of {cloud.capacity[host][r]}")
        for members, limit in cloud.groups:
            for host, present in on_host.items():
                if len(present & members) > limit:
                    raise Violation(f"t={t:.1f}: {host} holds {len(present & members)} members of an "
                                    f"anti-affinity group (at most {limit})")
        outgoing: dict[str, int] = {}
        for leg in legs:
            if leg.start <= t < leg.end:
                outgoing[leg.source] = outgoing.get(leg.source, 0) + 1
        for host, count in outgoing.items():
            if count > cloud.max_per_host:
                raise Violation(f"t={t:.1f}: {count} migrations leave {host} at once (at most {cloud.max_per_host})")
    return max((leg.end for leg in legs), default=0.0)
