"""Errors that carry data; only the CLI turns them into words and exit codes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hostmap.model import Resources


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
    #: Those servers that are cold-migrated (stopped, with `--cold`): hostmap never sends them through a pivot.
    cold: Sequence[str] = ()


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
class UnknownCloud(HostmapError):
    """`--os-cloud NAME` (or OS_CLOUD) names no cloud of the clouds.yaml files read."""

    name: str
    #: The clouds that exist, sorted.
    known: Sequence[str]
    #: The clouds.yaml file read, None when there is none.
    config_file: str | None


@dataclass
class MissingCredentials(HostmapError):
    """Authentication needs options nobody gave (a password, say), and there is no terminal to ask on."""

    #: The missing options, as the openstack client names them (`--os-password`).
    options: Sequence[str]
    username: str | None
    auth_url: str | None
    #: The clouds.yaml entry used, None for the OS_* variables.
    cloud: str | None


@dataclass
class CloudError(HostmapError):
    """The cloud refused or failed a request (auth, connection, unexpected API answer)."""

    action: str
    problem: str
    status: int | None = None

    def __str__(self) -> str:
        return f"{self.action}: {self.problem}"


@dataclass
class UnknownHostError(HostmapError):
    """A host named to drain is no compute host of this cloud, or matches several."""

    host: str
    #: The service hosts it matches when it matches several; empty when it matches none.
    matches: Sequence[str] = ()
    #: Every service host of the cloud.
    known: Sequence[str] = ()

    def __str__(self) -> str:
        return f"{self.host}: matches {'/'.join(self.matches)}" if self.matches else f"{self.host}: no such host"


@dataclass
class UnfitServer:
    """A server on a host to drain that no target host can take."""

    server: str
    name: str
    #: The drained host it is on.
    host: str
    demand: Resources
    #: The hard server group that keeps it off hosts with room ("" when none), and that group's policy.
    group: str = ""
    policy: str = ""
    #: Its pinned availability zone, when that keeps it off hosts with room.
    zone: str | None = None


@dataclass
class DrainDoesNotFit(HostmapError):
    """The hosts cannot be emptied onto the others within capacity, headroom, groups and zones; nothing moved."""

    unfit: Sequence[UnfitServer]
    #: Room left per target host (under the headroom) once the servers that fit are placed.
    room: Mapping[str, Resources]
    #: Per resource, the most room any target host has left.
    most_room: Resources
    headroom_pct: float = 0.0

    def __str__(self) -> str:
        return f"{len(self.unfit)} server(s) do not fit: " + ", ".join(u.name for u in self.unfit)


@dataclass
class NotLiveMigratable(HostmapError):
    """Servers a drain must move that nova cannot live-migrate (SHUTOFF, SUSPENDED, ...); nothing moved."""

    servers: Sequence[str]
    #: Each server's status, in the same order.
    statuses: Sequence[str] = ()
    #: True when cold migration was allowed (`--cold`): these are the ones nova moves neither way.
    cold: bool = False

    def __str__(self) -> str:
        return "not live-migratable: " + ", ".join(self.servers)


@dataclass
class ZoneViolation:
    """A move that takes a server pinned to an availability zone onto a host outside it."""

    server: str
    server_id: str
    zone: str
    host: str
    #: The host's zone; None when the cloud does not say.
    host_zone: str | None
    #: True when the pin is assumed (the cloud's compute API is older than 2.96 and shows no pins).
    assumed: bool = False


@dataclass
class ZoneError(HostmapError):
    """The desired placement moves pinned servers out of their availability zone; nothing moved."""

    violations: Sequence[ZoneViolation]

    def __str__(self) -> str:
        return "; ".join(f"{v.server} (zone {v.zone}) to {v.host} (zone {v.host_zone})" for v in self.violations)


@dataclass
class MissingExtra(HostmapError):
    """A feature needs an optional extra that is not installed."""

    feature: str
    extra: str
    module: str

    def __str__(self) -> str:
        return f"{self.feature} needs {self.module}, which is not installed: pip install 'hostmap[{self.extra}]'"
