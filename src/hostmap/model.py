"""The placement model: frozen dataclasses for hosts, servers, demand and planned moves."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

#: Placement resource class for each field of `Resources`, for messages that name what is short.
RESOURCE_CLASSES: Mapping[str, str] = {"vcpu": "VCPU", "memory_mb": "MEMORY_MB", "disk_gb": "DISK_GB"}

#: Server statuses from which nova accepts a live migration.
MIGRATABLE_STATUSES = frozenset({"ACTIVE", "PAUSED"})
#: Server statuses hostmap moves by cold migration (nova's `migrate` action, with `--cold`): stopped servers. Nova
#: also cold-migrates ACTIVE ones (stopping them), which hostmap never asks for; SUSPENDED ones it refuses both ways.
COLD_MIGRATABLE_STATUSES = frozenset({"SHUTOFF"})


@dataclass(frozen=True)
class Resources:
    """An amount of each placement resource class hostmap accounts for."""

    vcpu: int = 0
    memory_mb: int = 0
    disk_gb: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.vcpu + other.vcpu, self.memory_mb + other.memory_mb, self.disk_gb + other.disk_gb)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.vcpu - other.vcpu, self.memory_mb - other.memory_mb, self.disk_gb - other.disk_gb)

    def items(self) -> Iterator[tuple[str, int]]:
        """Yield (placement resource class, amount) pairs."""
        yield RESOURCE_CLASSES["vcpu"], self.vcpu
        yield RESOURCE_CLASSES["memory_mb"], self.memory_mb
        yield RESOURCE_CLASSES["disk_gb"], self.disk_gb

    def fits_within(self, capacity: Resources) -> bool:
        """True when every amount is at most the same amount of `capacity`."""
        return (
            self.vcpu <= capacity.vcpu
            and self.memory_mb <= capacity.memory_mb
            and self.disk_gb <= capacity.disk_gb
        )

    def over(self, capacity: Resources) -> list[tuple[str, int, int]]:
        """The (resource class, needed, available) triples where this exceeds `capacity`."""
        return [
            (name, need, have)
            for (name, need), (_, have) in zip(self.items(), capacity.items(), strict=True)
            if need > have
        ]


@dataclass(frozen=True)
class Host:
    """A compute host: its service name (what the API's `host` takes) and its placement figures."""

    name: str
    hypervisor_hostname: str
    enabled: bool
    up: bool
    #: Usable amount per resource as placement computes it: int((total - reserved) * allocation_ratio).
    capacity: Resources
    #: What placement counts as allocated on this host now (in-flight migrations count on both ends).
    used: Resources
    disabled_reason: str | None = None
    #: The availability zone the host is in, when known.
    zone: str | None = None
    #: The compute service's `updated_at` in seconds since the epoch (its last heartbeat or change), when given.
    heartbeat_s: float | None = None


@dataclass(frozen=True)
class Server:
    """A server (instance) as hostmap needs it."""

    id: str
    name: str
    host: str | None
    status: str
    task_state: str | None
    flavor: str
    demand: Resources
    project_id: str = ""
    #: The availability zone the server must stay in (requested at boot or pinned), None when it may go anywhere.
    pinned_zone: str | None = None
    #: True when `pinned_zone` is the server's current zone, taken as its pin because the cloud does not show pins
    #: (compute API older than 2.96).
    zone_pin_assumed: bool = False

    #: RAM in MiB, the figure migration time is proportional to (same as demand.memory_mb).
    @property
    def ram_mb(self) -> int:
        """The flavor's RAM in MiB."""
        return self.demand.memory_mb


@dataclass(frozen=True)
class ServerGroup:
    """A server group and its policy (affinity, anti-affinity, soft-*)."""

    id: str
    name: str
    policy: str
    members: tuple[str, ...]
    #: The anti-affinity rule max_server_per_host (microversion 2.64); 1 when the group has no rule.
    max_per_host: int = 1


@dataclass(frozen=True)
class ZoneAggregate:
    """A host aggregate whose metadata names an availability zone, and its hosts (service names)."""

    zone: str
    hosts: frozenset[str]


@dataclass(frozen=True)
class Inventory:
    """Everything hostmap reads from the cloud before planning."""

    hosts: tuple[Host, ...]
    servers: tuple[Server, ...]
    groups: tuple[ServerGroup, ...] = ()
    #: The host aggregates that name an availability zone (where nova's scheduler keeps a pinned server); None when
    #: hostmap could not read them, and then a pinned server is kept on hosts that show its zone.
    zone_aggregates: tuple[ZoneAggregate, ...] | None = None

    def server(self, server_id: str) -> Server | None:
        """The server with id `server_id`, if any."""
        for server in self.servers:
            if server.id == server_id:
                return server
        return None


@dataclass(frozen=True)
class Move:
    """One migration of one server from one host to another: live, or cold for a stopped server."""

    server_id: str
    server_name: str
    source: str
    target: str
    demand: Resources
    #: The host the server must end on; differs from `target` on the first leg of a detour via a pivot.
    final_target: str = ""
    #: Estimated seconds this migration takes, from the planner's duration model.
    estimate_s: float = 0.0
    #: A cold migration (nova's `migrate` of a SHUTOFF server, then `confirmResize`), never a detour.
    cold: bool = False
    #: Ids of the server groups the server is a member of (what `Limits.per_group` counts).
    groups: tuple[str, ...] = ()

    @property
    def is_detour(self) -> bool:
        """True for the first leg of a detour through a pivot host."""
        return bool(self.final_target) and self.final_target != self.target


@dataclass(frozen=True)
class Step:
    """A move in the schedule, with the steps that must complete before it may start."""

    index: int
    move: Move
    after: tuple[int, ...] = ()
    #: Those of `after` that take a member of one of this server's anti-affinity groups off the target host: this
    #: step starts only `Plan.group_settle_s` after they ended, once nova's scheduler has seen the member go.
    settle_after: tuple[int, ...] = ()


@dataclass(frozen=True)
class Limits:
    """How many migrations may run at once: per source host (nova's max_concurrent_live_migrations) and in total."""

    max_per_host: int = 1
    #: None: as many as the hosts allow.
    parallel: int | None = None
    #: At most this many members of one server group in flight at once (None: no such limit).
    per_group: int | None = None
    #: At most this many migrations arriving at one host at once (None: no limit; nova counts outgoing only).
    max_in_per_host: int | None = None

    def __post_init__(self) -> None:
        if self.max_per_host < 1:
            raise ValueError("max_per_host must be at least 1")
        if self.max_in_per_host is not None and self.max_in_per_host < 1:
            raise ValueError("max_in_per_host must be at least 1 or None")
        if self.parallel is not None and self.parallel < 1:
            raise ValueError("parallel must be at least 1 or None")
        if self.per_group is not None and self.per_group < 1:
            raise ValueError("per_group must be at least 1 or None")


@dataclass(frozen=True)
class Plan:
    """An ordered, capacity-safe schedule of moves plus the servers already in place."""

    steps: tuple[Step, ...]
    in_place: tuple[Server, ...] = ()
    #: Estimated makespan with the schedule's limits, and the lower bound it is measured against.
    estimated_s: float = 0.0
    lower_bound_s: float = 0.0
    #: Which term sets the lower bound: "longest" (the longest move), "source" (the busiest source host at
    #: `max_per_host` at a time), "parallel" (all the work at `parallel` at a time) or "room:<resource>" (the
    #: cloud's free amount of that resource, held twice by every server in flight); "" without moves.
    lower_bound_by: str = ""
    #: The limits the plan was made for; the executor runs it within them.
    limits: Limits = field(default=Limits())
    notes: tuple[str, ...] = field(default=())
    #: Seconds a step waits after each of its `settle_after` steps ended.
    group_settle_s: float = 0.0
    #: Per step, when it is expected to start and end (seconds from the run's start), as the estimate replays it.
    spans: tuple[tuple[float, float], ...] = ()

    @property
    def max_per_host(self) -> int:
        """At most this many migrations from one source host at a time."""
        return self.limits.max_per_host

    @property
    def parallel(self) -> int | None:
        """At most this many migrations at a time in all (None: no cap)."""
        return self.limits.parallel
