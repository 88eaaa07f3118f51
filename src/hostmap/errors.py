"""Errors that carry data; only the CLI turns them into words and exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class HostmapError(Exception):
    """Base of every error hostmap raises on purpose."""


@dataclass
class InputError(HostmapError):
    """A host map, scenario or option is invalid; nothing was changed in the cloud."""

    source: str
    entry: str
    problem: str
    hint: str = ""
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        return f"{self.source}: {self.entry}: {self.problem}"


@dataclass
class InputErrors(HostmapError):
    """Several input problems found in one pass, reported together."""

    errors: Sequence[InputError]

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)


@dataclass
class CapacityShortfall:
    """One resource on one host that the requested placement would overfill."""

    host: str
    resource: str
    needed: int
    available: int


@dataclass
class CapacityError(HostmapError):
    """The desired final placement does not fit on its hosts; nothing moved."""

    shortfalls: Sequence[CapacityShortfall]

    def __str__(self) -> str:
        return ", ".join(f"{s.host} {s.resource} needs {s.needed} > {s.available}" for s in self.shortfalls)


@dataclass
class CycleInfo:
    """Servers that must swap between full hosts, with the hosts involved."""

    servers: Sequence[str]
    hosts: Sequence[str]
    #: Hard anti-affinity groups that keep these servers waiting (rather than, or besides, lack of room).
    groups: Sequence[str] = ()
    #: Those servers that belong to hard affinity groups: nova moves them only next to a member, never to a pivot.
    pinned: Sequence[str] = ()


@dataclass
class InfeasiblePlanError(HostmapError):
    """No capacity-safe order exists for these moves (no pivot host with room); nothing moved."""

    cycles: Sequence[CycleInfo]
    #: Hosts never used as pivots, with why: (name, "down" or "disabled").
    unusable: Sequence[tuple[str, str]] = ()

    def __str__(self) -> str:
        return "; ".join(f"{'/'.join(c.servers)} over {'/'.join(c.hosts)}" for c in self.cycles)


@dataclass
class PolicyViolation:
    """Moves that a hard server-group policy forbids, as nova's scheduler filters would refuse them."""

    group: str
    policy: str
    #: The host the moves go to.
    host: str
    #: Names of the group's servers the map moves there.
    servers: Sequence[str]
    #: anti-affinity: members the map leaves on `host` and the rule's limit; affinity: hosts the group is on now.
    members_on_host: int = 0
    limit: int = 1
    group_hosts: Sequence[str] = ()


@dataclass
class PolicyError(HostmapError):
    """The desired placement breaks a hard affinity or anti-affinity policy; nothing moved."""

    violations: Sequence[PolicyViolation]

    def __str__(self) -> str:
        return "; ".join(f"{v.group} ({v.policy}) on {v.host}: {'/'.join(v.servers)}" for v in self.violations)


@dataclass
class CloudConfigError(HostmapError):
    """No usable cloud configuration was found."""

    problem: str


@dataclass
class CloudError(HostmapError):
    """The cloud refused or failed a request (auth, connection, unexpected API answer)."""

    action: str
    problem: str
    status: int | None = None

    def __str__(self) -> str:
        return f"{self.action}: {self.problem}"
