"""Scenario files for the simulated cloud: parsed and validated into frozen dataclasses.

A scenario describes compute hosts, flavors, servers, server groups, the migration timing model, API
limits, credentials and injected faults. Every problem raises `hostmap.errors.InputError` naming the
entry (such as ``servers[3].flavor``). The format is documented in docs/simulated-cloud.md.
"""

from __future__ import annotations

import importlib
import math
import re
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from hostmap.documents import read_document
from hostmap.errors import InputError
from hostmap.timing import MigrationParams

#: Highest compute API microversion the simulated nova implements.
MAX_COMPUTE_MICROVERSION = (2, 96)
#: Namespace for the deterministic ids derived from scenario names.
SIM_NAMESPACE = uuid.UUID("6f1d2f5e-3c1a-4f7e-9a51-4d1b7a0c2e11")

#: Server statuses a scenario may give, with nova's (vm_state, power_state) for each.
SERVER_STATUSES: Mapping[str, tuple[str, int]] = {
    "ACTIVE": ("active", 1),
    "PAUSED": ("paused", 3),
    "SHUTOFF": ("stopped", 4),
    "SUSPENDED": ("suspended", 7),
    "SHELVED_OFFLOADED": ("shelved_offloaded", 4),
    "ERROR": ("error", 0),
}
#: nova's [DEFAULT] default_availability_zone and internal_service_availability_zone as shipped.
DEFAULT_ZONE = "nova"
INTERNAL_ZONE = "internal"
GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


def sim_uuid(*parts: object) -> str:
    """A uuid that depends only on `parts` (stable across runs)."""
    return str(uuid.uuid5(SIM_NAMESPACE, "\x1f".join(str(p) for p in parts)))


def parse_microversion(text: str) -> tuple[int, int] | None:
    """Parse "2.33" into (2, 33); None when malformed."""
    match = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


#: A path_regex is matched against every request's path: these bound the time one match may take (the
#: backtracking of nested or many repetitions grows exponentially or as a high power of the path's length).
MAX_REGEX_LENGTH = 256
MAX_REGEX_REPEATS = 3
MAX_REGEX_COUNT = 1000
_RE_PARSER: Any = importlib.import_module("re._parser")  # the parser re.compile uses (sre_parse)


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` may not be a scenario's path_regex (invalid, or matching it could take unbounded time)."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"is longer than {MAX_REGEX_LENGTH} characters"
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: the pattern is judged below, not warned
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
            parsed = _RE_PARSER.parse(pattern)
    except re.error as exc:
        return f"is not a valid regular expression: {exc}"
    except (OverflowError, RecursionError, ValueError):
        return "is not a valid regular expression: a repetition count or nesting is too large"
    repeats = 0
    todo: list[tuple[Any, bool]] = [(parsed, False)]
    while todo:
        sub, in_repeat = todo.pop()
        for op, av in sub:
            name = str(op)
            if name.endswith("REPEAT"):
                low, high, body = av
                many = high > 1
                if high != _RE_PARSER.MAXREPEAT and max(low, high) > MAX_REGEX_COUNT:
                    return f"repeats more than {MAX_REGEX_COUNT} times"
                if many and in_repeat:
                    return "nests one repetition inside another, which can take exponential time to match"
                repeats += many
                todo.append((body, in_repeat or many))
            elif name == "BRANCH":
                if in_repeat:
                    return "repeats an alternation, which can take exponential time to match"
                todo.extend((branch, in_repeat) for branch in av[1])
            elif name in ("SUBPATTERN", "ATOMIC_GROUP", "ASSERT", "ASSERT_NOT"):
                todo.append((av if name == "ATOMIC_GROUP" else av[-1], in_repeat))
            elif name == "GROUPREF_EXISTS":
                todo.extend((branch, in_repeat) for branch in av[1:] if branch is not None)
    if repeats > MAX_REGEX_REPEATS:
        return f"has more than {MAX_REGEX_REPEATS} repetitions (*, +, {{m,n}}), which can take long to match"
    return None


@dataclass(frozen=True)
class HostSpec:
    """One compute host (nova-compute service + hypervisor + placement resource provider)."""

    name: str
    hypervisor_hostname: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    cpu_allocation_ratio: float = 16.0
    ram_allocation_ratio: float = 1.5
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 512
    reserved_host_cpus: int = 0
    reserved_host_disk_gb: int = 0
    enabled: bool = True
    up: bool = True
    disabled_reason: str | None = None
    nic_gbps: float | None = None
    max_concurrent_live_migrations: int | None = None
    #: The availability zone of the host aggregate(s) it is in; None: in none, so in the default zone.
    zone: str | None = None

    def capacity(self) -> tuple[int, int, int]:
        """(VCPU, MEMORY_MB, DISK_GB) as placement computes it: int((total - reserved) * ratio)."""
        return (
            int((self.vcpus - self.reserved_host_cpus) * self.cpu_allocation_ratio),
            int((self.memory_mb - self.reserved_host_memory_mb) * self.ram_allocation_ratio),
            int((self.disk_gb - self.reserved_host_disk_gb) * self.disk_allocation_ratio),
        )


@dataclass(frozen=True)
class FlavorSpec:
    """A flavor: RAM in MiB, disk in GiB."""

    id: str
    name: str
    vcpus: int
    ram: int
    disk: int


@dataclass(frozen=True)
class ServerSpec:
    """A server at the start of the simulation; `flavor` is a flavor id, `host` a host (service) name."""

    id: str
    name: str
    flavor: str
    host: str
    status: str = "ACTIVE"
    project: str = "admin"
    touched: float | None = None
    dirty_mb_s: float | None = None
    #: The availability zone it was booted into (its request spec's), which nova keeps it in; None: not pinned.
    pinned_zone: str | None = None


@dataclass(frozen=True)
class AggregateSpec:
    """A host aggregate: its hosts (service names) and, in its metadata, the availability zone they are in."""

    name: str
    hosts: tuple[str, ...]
    availability_zone: str | None = None
    id: int = 0


@dataclass(frozen=True)
class ServerGroupSpec:
    """A server group; `members` are server ids."""

    id: str
    name: str
    policy: str
    members: tuple[str, ...]
    project: str = "admin"
    #: The anti-affinity rule max_server_per_host; None when the group has no rules.
    max_server_per_host: int | None = None


@dataclass(frozen=True)
class ApiSpec:
    """API limits: the highest compute microversion offered and nova's max page size."""

    max_microversion: tuple[int, int] = MAX_COMPUTE_MICROVERSION
    page_size: int = 1000


@dataclass(frozen=True)
class AuthSpec:
    """Admin credentials; `password` None means a random one per server."""

    username: str = "admin"
    password: str | None = None
    project_name: str = "admin"
    token_ttl_s: float = 3600.0


@dataclass(frozen=True)
class PrecheckFail:
    """The scheduler/conductor refuses every live migration of `server` (a server id)."""

    server: str
    reason: str = "No valid host was found. "


@dataclass(frozen=True)
class FailMidway:
    """The migration of `server` fails once `at_fraction` of its memory has been sent."""

    server: str
    at_fraction: float = 0.5
    reason: str = "Live migration failed: the hypervisor reported an error during the memory copy."


@dataclass(frozen=True)
class NeverConverge:
    """`server` dirties memory faster than any stream can copy it."""

    server: str


@dataclass(frozen=True)
class BusyThenQuiet:
    """`server`'s guest is busy for the first `busy_s` of its migration's copy, dirtying memory at `busy_dirty_mb_s`
    (None: faster than any stream copies it), then quiet again (its usual rate): a stall that clears by itself."""

    server: str
    busy_s: float = 90.0
    busy_dirty_mb_s: float | None = None


@dataclass(frozen=True)
class AbortLeavesError:
    """An abort of `server`'s migration is carried out, but nova's rollback leaves the server in ERROR."""

    server: str


@dataclass(frozen=True)
class ApiError:
    """Matching requests fail with `status`, with probability `rate` (seeded), at most `count` times."""

    path_regex: str
    status: int
    method: str | None = None
    rate: float = 1.0
    count: int | None = None
    seed: int = 0
    #: Carry the request out, then answer with the error: a lost response, as after a proxy timeout.
    after: bool = False
    #: Seconds on the sim clock from which the fault is active (an outage that starts mid-run).
    from_s: float = 0.0


@dataclass(frozen=True)
class Slow:
    """Matching requests take `seconds` more on the sim clock."""

    path_regex: str
    seconds: float
    method: str | None = None


@dataclass(frozen=True)
class ServiceDown:
    """The nova-compute service of `host` goes down at `at_s`."""

    host: str
    at_s: float


@dataclass(frozen=True)
class ServiceDisabled:
    """The nova-compute service of `host` is disabled at `at_s`."""

    host: str
    at_s: float
    reason: str = "disabled by an operator"


@dataclass(frozen=True)
class CapacityTaken:
    """Something outside the scenario claims room on `host` at `at_s`."""

    host: str
    at_s: float
    vcpu: int = 0
    memory_mb: int = 0
    disk_gb: int = 0


Fault = (
    PrecheckFail | FailMidway | NeverConverge | BusyThenQuiet | AbortLeavesError | ApiError | Slow | ServiceDown
    | ServiceDisabled | CapacityTaken
)


@dataclass(frozen=True)
class Scenario:
    """A whole simulated cloud at time zero."""

    hosts: tuple[HostSpec, ...]
    flavors: tuple[FlavorSpec, ...]
    servers: tuple[ServerSpec, ...]
    server_groups: tuple[ServerGroupSpec, ...] = ()
    migration: MigrationParams = field(default_factory=MigrationParams)
    api: ApiSpec = field(default_factory=ApiSpec)
    auth: AuthSpec = field(default_factory=AuthSpec)
    faults: tuple[Fault, ...] = ()
    source: str = "<scenario>"
    #: Host aggregates, those implied by hosts' `zone` included.
    aggregates: tuple[AggregateSpec, ...] = ()
    #: nova's [DEFAULT] default_availability_zone: the zone of hosts in no aggregate with one.
    default_zone: str = DEFAULT_ZONE
    #: nova's [DEFAULT] report_interval: seconds between two heartbeats of a compute service.
    report_interval_s: float = 10.0
    #: nova's [DEFAULT] service_down_time: a service whose last heartbeat is older than this is counted down.
    service_down_time_s: float = 60.0

    def host(self, name: str) -> HostSpec:
        """The host named `name` (KeyError if none)."""
        for host in self.hosts:
            if name in (host.name, host.hypervisor_hostname):
                return host
        raise KeyError(name)

    def server(self, name_or_id: str) -> ServerSpec:
        """The server with this id or name (KeyError if none)."""
        for server in self.servers:
            if name_or_id in (server.id, server.name):
                return server
        raise KeyError(name_or_id)

    def flavor(self, flavor_id: str) -> FlavorSpec:
        """The flavor with this id or name (KeyError if none)."""
        for flavor in self.flavors:
            if flavor_id in (flavor.id, flavor.name):
                return flavor
        raise KeyError(flavor_id)


def demo_scenario_path() -> Path:
    """Path of the bundled demo scenario."""
    return Path(str(resources.files("hostmap.sim") / "scenarios" / "demo.json"))


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a JSON or YAML scenario file."""
    return parse_scenario(read_document(path), str(path))


# --------------------------------------------------------------------------------------------------
# Validation helpers


_T = TypeVar("_T")


class _Reader:
    """Reads typed fields out of one mapping, raising InputError naming `entry.key`."""

    def __init__(self, source: str, entry: str, data: object, known: tuple[str, ...]) -> None:
        self.source = source
        self.entry = entry
        if not isinstance(data, dict):
            raise InputError(source, entry, f"must be an object, not {_kind(data)}", _known_hint(known))
        for key in data:
            if not isinstance(key, str) or key not in known:
                raise InputError(
                    source, self.at(str(key)), "unknown key", f"known keys here: {', '.join(known)}"
                )
        self.data: dict[str, object] = data

    def at(self, key: str) -> str:
        return f"{self.entry}.{key}" if self.entry else key

    def error(self, key: str, problem: str, hint: str = "") -> InputError:
        return InputError(self.source, self.at(key), problem, hint)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def required(self, key: str) -> object:
        if key not in self.data:
            raise InputError(self.source, self.entry or "(top level)", f"missing required key {key!r}")
        return self.data[key]

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        if required:
            value = self.required(key)
        elif not self.has(key):
            if default is None:
                raise self.error(key, "is required")
            return default
        else:
            value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, not {_kind(value)}")
        return value

    def opt_string(self, key: str) -> str | None:
        return self.string(key) if self.has(key) else None

    def _default(self, key: str, default: _T | None) -> _T:
        """The value of absent `key`: `default`, or an error when there is none."""
        if default is None:
            self.required(key)
            raise self.error(key, "is required")
        return default

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0) -> int:
        if not self.has(key):
            return self._default(key, default)
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {_kind(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, not {value}")
        return value

    def opt_integer(self, key: str, *, minimum: int = 0) -> int | None:
        return self.integer(key, minimum=minimum) if self.has(key) else None

    def number(
        self, key: str, default: float | None = None, *, minimum: float = 0.0, exclusive: bool = False
    ) -> float:
        if not self.has(key):
            return self._default(key, default)
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(key, f"must be a finite number, not {_kind(value)}")
        if value < minimum or (exclusive and value == minimum):
            bound = "greater than" if exclusive else "at least"
            raise self.error(key, f"must be {bound} {minimum:g}, not {value:g}")
        return float(value)

    def opt_number(self, key: str, *, minimum: float = 0.0, exclusive: bool = False) -> float | None:
        return self.number(key, minimum=minimum, exclusive=exclusive) if self.has(key) else None

    def boolean(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_kind(value)}")
        return value

    def items(self, key: str, *, required: bool = False) -> list[object]:
        if not self.has(key):
            if required:
                self.required(key)
            return []
        value = self.data[key]
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {_kind(value)}")
        return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _known_hint(known: tuple[str, ...]) -> str:
    return f"expected an object with keys among: {', '.join(known)}"


_TOP = (
    "hosts", "flavors", "servers", "server_groups", "migration", "api", "auth", "faults", "description", "aggregates",
    "default_availability_zone", "report_interval_s", "service_down_time_s", "captured",
)
_HOST = (
    "name", "hypervisor_hostname", "vcpus", "memory_mb", "disk_gb", "cpu_allocation_ratio",
    "ram_allocation_ratio", "disk_allocation_ratio", "reserved_host_memory_mb", "reserved_host_cpus",
    "reserved_host_disk_gb", "enabled", "up", "disabled_reason", "nic_gbps", "max_concurrent_live_migrations", "zone",
)
_FLAVOR = ("name", "vcpus", "ram", "disk", "id")
_SERVER = ("name", "id", "flavor", "host", "status", "project", "touched", "dirty_mb_s", "pinned_zone")
_AGGREGATE = ("name", "availability_zone", "hosts", "id")
_GROUP = ("name", "policy", "members", "id", "project", "rules")
_RULES = ("max_server_per_host",)
_MIGRATION = (
    "nic_gbps", "stream_gbps", "touched", "dirty_mb_s", "downtime_ms", "setup_s", "max_concurrent_live_migrations",
    "instance_sync_s", "monitor_interval_s", "permit_post_copy",
)
_API = ("max_microversion", "page_size")
_AUTH = ("username", "password", "project_name", "token_ttl_s")
_FAULT_KEYS: Mapping[str, tuple[str, ...]] = {
    "precheck_fail": ("kind", "server", "reason"),
    "fail_midway": ("kind", "server", "at_fraction", "reason"),
    "never_converge": ("kind", "server"),
    "busy_then_quiet": ("kind", "server", "busy_s", "busy_dirty_mb_s"),
    "abort_leaves_error": ("kind", "server"),
    "api_error": ("kind", "method", "path_regex", "status", "rate", "count", "seed", "after", "from_s"),
    "slow": ("kind", "method", "path_regex", "seconds"),
    "service_down": ("kind", "host", "at_s"),
    "service_disabled": ("kind", "host", "at_s", "reason"),
    "capacity_taken": ("kind", "host", "at_s", "vcpu", "memory_mb", "disk_gb"),
}


def parse_scenario(data: object, source: str) -> Scenario:
    """Validate plain data (as read from JSON/YAML) into a Scenario; InputError on any problem."""
    top = _Reader(source, "", data, _TOP)
    if top.has("description") and not isinstance(top.data["description"], str):
        raise top.error("description", "must be a string")
    if top.has("captured") and not isinstance(top.data["captured"], dict):
        raise top.error("captured", "must be an object (where and when `hostmap sim capture` read the cloud)")
    migration = _parse_migration(source, top.data.get("migration"))
    hosts = _parse_hosts(source, top.items("hosts", required=True))
    default_zone = top.string("default_availability_zone", DEFAULT_ZONE)
    hosts, aggregates = _parse_aggregates(source, top.items("aggregates"), hosts)
    flavors = _parse_flavors(source, top.items("flavors", required=True))
    servers = _parse_servers(source, top.items("servers"), hosts, flavors)
    _check_pins(source, hosts, servers, default_zone)
    _check_capacity(source, hosts, flavors, servers)
    groups = _parse_groups(source, top.items("server_groups"), servers)
    api = _parse_api(source, top.data.get("api"))
    auth = _parse_auth(source, top.data.get("auth"))
    faults = tuple(
        _parse_fault(source, f"faults[{i}]", raw, hosts, servers) for i, raw in enumerate(top.items("faults"))
    )
    return Scenario(
        hosts=hosts, flavors=flavors, servers=servers, server_groups=groups, migration=migration,
        api=api, auth=auth, faults=faults, source=source, aggregates=aggregates, default_zone=default_zone,
        report_interval_s=top.number("report_interval_s", 10.0, exclusive=True),
        service_down_time_s=top.number("service_down_time_s", 60.0, exclusive=True),
    )


def _parse_migration(source: str, raw: object) -> MigrationParams:
    base = MigrationParams()
    if raw is None:
        return base
    r = _Reader(source, "migration", raw, _MIGRATION)
    touched = r.number("touched", base.touched)
    if touched > 1.0:
        raise r.error("touched", f"must be a fraction between 0 and 1, not {touched:g}")
    return MigrationParams(
        nic_gbps=r.number("nic_gbps", base.nic_gbps, exclusive=True),
        stream_gbps=r.number("stream_gbps", base.stream_gbps, exclusive=True),
        touched=touched,
        dirty_mb_s=r.number("dirty_mb_s", base.dirty_mb_s),
        downtime_ms=r.number("downtime_ms", base.downtime_ms),
        setup_s=r.number("setup_s", base.setup_s),
        max_concurrent_live_migrations=r.integer(
            "max_concurrent_live_migrations", base.max_concurrent_live_migrations, minimum=1
        ),
        instance_sync_s=r.number("instance_sync_s", base.instance_sync_s),
        monitor_interval_s=r.number("monitor_interval_s", base.monitor_interval_s),
        permit_post_copy=r.boolean("permit_post_copy", base.permit_post_copy),
    )


def _parse_hosts(source: str, raw: list[object]) -> tuple[HostSpec, ...]:
    if not raw:
        raise InputError(source, "hosts", "must list at least one host")
    hosts: list[HostSpec] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(raw):
        r = _Reader(source, f"hosts[{i}]", item, _HOST)
        name = r.string("name", required=True)
        hyp = r.string("hypervisor_hostname", f"{name}.localdomain")
        for key, value in (("name", name), ("hypervisor_hostname", hyp)):
            if value in seen and not (key == "hypervisor_hostname" and value == name and seen[value] == r.entry):
                raise r.error(key, f"duplicate host name {value!r} (also {seen[value]})")
        seen[name] = r.entry
        seen.setdefault(hyp, r.entry)
        host = HostSpec(
            name=name,
            hypervisor_hostname=hyp,
            vcpus=r.integer("vcpus", minimum=1),
            memory_mb=r.integer("memory_mb", minimum=1),
            disk_gb=r.integer("disk_gb", minimum=1),
            cpu_allocation_ratio=r.number("cpu_allocation_ratio", 16.0, exclusive=True),
            ram_allocation_ratio=r.number("ram_allocation_ratio", 1.5, exclusive=True),
            disk_allocation_ratio=r.number("disk_allocation_ratio", 1.0, exclusive=True),
            reserved_host_memory_mb=r.integer("reserved_host_memory_mb", 512),
            reserved_host_cpus=r.integer("reserved_host_cpus", 0),
            reserved_host_disk_gb=r.integer("reserved_host_disk_gb", 0),
            enabled=r.boolean("enabled", True),
            up=r.boolean("up", True),
            disabled_reason=r.opt_string("disabled_reason"),
            nic_gbps=r.opt_number("nic_gbps", exclusive=True),
            max_concurrent_live_migrations=r.opt_integer("max_concurrent_live_migrations", minimum=1),
            zone=r.opt_string("zone"),
        )
        for resource, amount in zip(("VCPU", "MEMORY_MB", "DISK_GB"), host.capacity(), strict=True):
            if amount < 0:
                raise InputError(source, r.entry, f"reserves more {resource} than it has")
        hosts.append(host)
    return tuple(hosts)


def _parse_flavors(source: str, raw: list[object]) -> tuple[FlavorSpec, ...]:
    if not raw:
        raise InputError(source, "flavors", "must list at least one flavor")
    flavors: list[FlavorSpec] = []
    names: set[str] = set()
    ids: set[str] = set()
    for i, item in enumerate(raw):
        r = _Reader(source, f"flavors[{i}]", item, _FLAVOR)
        name = r.string("name", required=True)
        if name in names:
            raise r.error("name", f"duplicate flavor name {name!r}")
        fid = r.data.get("id", str(i + 1))
        if isinstance(fid, int) and not isinstance(fid, bool):
            fid = str(fid)
        if not isinstance(fid, str) or not fid:
            raise r.error("id", f"must be a string, not {_kind(fid)}")
        if fid in ids:
            raise r.error("id", f"duplicate flavor id {fid!r}")
        names.add(name)
        ids.add(fid)
        flavors.append(
            FlavorSpec(
                id=fid,
                name=name,
                vcpus=r.integer("vcpus", minimum=1),
                ram=r.integer("ram", minimum=1),
                disk=r.integer("disk", minimum=0),
            )
        )
    return tuple(flavors)


def _find_host(hosts: tuple[HostSpec, ...], name: str) -> HostSpec | None:
    return next((h for h in hosts if name in (h.name, h.hypervisor_hostname)), None)


def _find_flavor(flavors: tuple[FlavorSpec, ...], ref: str) -> FlavorSpec | None:
    return next((f for f in flavors if ref == f.name), None) or next((f for f in flavors if ref == f.id), None)


def _find_server(source: str, entry: str, servers: tuple[ServerSpec, ...], ref: str) -> ServerSpec:
    by_id = [s for s in servers if s.id == ref]
    if by_id:
        return by_id[0]
    by_name = [s for s in servers if s.name == ref]
    if not by_name:
        raise InputError(source, entry, f"unknown server {ref!r}")
    if len(by_name) > 1:
        raise InputError(
            source, entry, f"server name {ref!r} is shared by {len(by_name)} servers", "refer to it by id"
        )
    return by_name[0]


def _parse_servers(
    source: str, raw: list[object], hosts: tuple[HostSpec, ...], flavors: tuple[FlavorSpec, ...]
) -> tuple[ServerSpec, ...]:
    servers: list[ServerSpec] = []
    ids: set[str] = set()
    for i, item in enumerate(raw):
        r = _Reader(source, f"servers[{i}]", item, _SERVER)
        name = r.string("name", required=True)
        sid = r.string("id", sim_uuid("server", i, name))
        if sid in ids:
            raise r.error("id", f"duplicate server id {sid!r}")
        flavor_ref = r.data.get("flavor")
        if isinstance(flavor_ref, int) and not isinstance(flavor_ref, bool):
            flavor_ref = str(flavor_ref)
        if not isinstance(flavor_ref, str):
            r.required("flavor")
            raise r.error("flavor", f"must be a flavor name or id, not {_kind(flavor_ref)}")
        flavor = _find_flavor(flavors, flavor_ref)
        if flavor is None:
            raise r.error("flavor", f"unknown flavor {flavor_ref!r}", f"known: {', '.join(f.name for f in flavors)}")
        host_ref = r.string("host", required=True)
        host = _find_host(hosts, host_ref)
        if host is None:
            raise r.error("host", f"unknown host {host_ref!r}", f"known: {', '.join(h.name for h in hosts)}")
        status = r.string("status", "ACTIVE").upper()
        if status not in SERVER_STATUSES:
            raise r.error("status", f"unsupported status {status!r}", f"one of {', '.join(SERVER_STATUSES)}")
        touched = r.opt_number("touched")
        if touched is not None and touched > 1.0:
            raise r.error("touched", f"must be a fraction between 0 and 1, not {touched:g}")
        ids.add(sid)
        servers.append(
            ServerSpec(
                id=sid, name=name, flavor=flavor.id, host=host.name, status=status,
                project=r.string("project", "admin"), touched=touched, dirty_mb_s=r.opt_number("dirty_mb_s"),
                pinned_zone=r.opt_string("pinned_zone"),
            )
        )
    return tuple(servers)


def _parse_aggregates(
    source: str, raw: list[object], hosts: tuple[HostSpec, ...]
) -> tuple[tuple[HostSpec, ...], tuple[AggregateSpec, ...]]:
    """The aggregates listed plus one per zone named by hosts' `zone`; each host's `zone` set to its aggregates'.

    As nova's aggregate API, a host may be in several aggregates but in one availability zone only.
    """
    listed: list[AggregateSpec] = []
    for i, item in enumerate(raw):
        r = _Reader(source, f"aggregates[{i}]", item, _AGGREGATE)
        name = r.string("name", required=True)
        if any(a.name == name for a in listed):
            raise r.error("name", f"duplicate aggregate name {name!r}")
        zone = r.opt_string("availability_zone")
        if zone == INTERNAL_ZONE:
            raise r.error("availability_zone", f"{INTERNAL_ZONE!r} is nova's zone of its internal services")
        members: list[str] = []
        for j, ref in enumerate(r.items("hosts")):
            host = _find_host(hosts, ref) if isinstance(ref, str) else None
            if host is None:
                raise InputError(source, f"{r.entry}.hosts[{j}]", f"unknown host {ref!r}",
                                 f"known: {', '.join(h.name for h in hosts)}")
            if host.name not in members:
                members.append(host.name)
        listed.append(AggregateSpec(name, tuple(members), zone, r.integer("id", i + 1, minimum=1)))
    # A host's own `zone` puts it in the aggregate named after that zone (added when not listed).
    for i, host in enumerate(hosts):
        if host.zone is None:
            continue
        if host.zone == INTERNAL_ZONE:
            raise InputError(source, f"hosts[{i}].zone", f"{INTERNAL_ZONE!r} is nova's zone of its internal services")
        at = next((k for k, a in enumerate(listed) if a.name == host.zone), None)
        if at is None:
            listed.append(AggregateSpec(host.zone, (host.name,), host.zone, max((a.id for a in listed), default=0) + 1))
        elif listed[at].availability_zone != host.zone:
            raise InputError(source, f"hosts[{i}].zone", f"aggregate {host.zone!r} is not the availability zone "
                             f"{host.zone!r} (its zone: {listed[at].availability_zone})")
        elif host.name not in listed[at].hosts:
            listed[at] = replace(listed[at], hosts=(*listed[at].hosts, host.name))
    ids = [a.id for a in listed]
    if len(set(ids)) != len(ids):
        raise InputError(source, "aggregates", "aggregate ids must be unique")
    placed: list[HostSpec] = []
    for i, host in enumerate(hosts):
        zones = sorted({a.availability_zone for a in listed if a.availability_zone and host.name in a.hosts})
        if len(zones) > 1:
            raise InputError(source, f"hosts[{i}]", f"host {host.name} is in aggregates of several availability "
                             f"zones ({', '.join(zones)}); nova keeps a host in one")
        placed.append(replace(host, zone=zones[0] if zones else None))
    return tuple(placed), tuple(listed)


def _check_pins(source: str, hosts: tuple[HostSpec, ...], servers: tuple[ServerSpec, ...], default_zone: str) -> None:
    """A pinned server must be in its zone now: nova booted it there and refuses to move it out."""
    zone_of = {h.name: h.zone or default_zone for h in hosts}
    for i, server in enumerate(servers):
        if server.pinned_zone is not None and zone_of[server.host] != server.pinned_zone:
            raise InputError(source, f"servers[{i}].pinned_zone",
                             f"server {server.name} is pinned to zone {server.pinned_zone!r} but its host "
                             f"{server.host} is in zone {zone_of[server.host]!r}")


def _check_capacity(
    source: str, hosts: tuple[HostSpec, ...], flavors: tuple[FlavorSpec, ...], servers: tuple[ServerSpec, ...]
) -> None:
    by_id = {f.id: f for f in flavors}
    for i, host in enumerate(hosts):
        used = [0, 0, 0]
        for server in servers:
            if server.host == host.name:
                flavor = by_id[server.flavor]
                used[0] += flavor.vcpus
                used[1] += flavor.ram
                used[2] += flavor.disk
        for resource, need, have in zip(("VCPU", "MEMORY_MB", "DISK_GB"), used, host.capacity(), strict=True):
            if need > have:
                raise InputError(
                    source,
                    f"hosts[{i}]",
                    f"host {host.name} is over capacity: its servers need {need} {resource}, it has {have}",
                    "placement capacity is int((total - reserved) * allocation_ratio)",
                )


def _parse_groups(source: str, raw: list[object], servers: tuple[ServerSpec, ...]) -> tuple[ServerGroupSpec, ...]:
    groups: list[ServerGroupSpec] = []
    member_of: dict[str, str] = {}
    names: set[str] = set()
    for i, item in enumerate(raw):
        r = _Reader(source, f"server_groups[{i}]", item, _GROUP)
        name = r.string("name", required=True)
        if name in names:
            raise r.error("name", f"duplicate server group name {name!r}")
        names.add(name)
        policy = r.string("policy", required=True)
        if policy not in GROUP_POLICIES:
            raise r.error("policy", f"unknown policy {policy!r}", f"one of {', '.join(GROUP_POLICIES)}")
        max_server_per_host: int | None = None
        if r.has("rules"):
            rules = _Reader(source, r.at("rules"), r.data["rules"], _RULES)
            if rules.data and policy != "anti-affinity":
                raise r.error("rules", f"nova accepts rules only with the anti-affinity policy, not {policy!r}")
            max_server_per_host = rules.opt_integer("max_server_per_host", minimum=1)
        members: list[str] = []
        for j, ref in enumerate(r.items("members", required=True)):
            entry = f"{r.entry}.members[{j}]"
            if not isinstance(ref, str):
                raise InputError(source, entry, f"must be a server name or id, not {_kind(ref)}")
            server = _find_server(source, entry, servers, ref)
            if server.id in member_of:
                raise InputError(source, entry, f"server {server.name} is already in group {member_of[server.id]}")
            member_of[server.id] = name
            members.append(server.id)
        groups.append(
            ServerGroupSpec(
                id=r.string("id", sim_uuid("group", i, name)), name=name, policy=policy,
                members=tuple(members), project=r.string("project", "admin"),
                max_server_per_host=max_server_per_host,
            )
        )
    return tuple(groups)


def _parse_api(source: str, raw: object) -> ApiSpec:
    if raw is None:
        return ApiSpec()
    r = _Reader(source, "api", raw, _API)
    top = MAX_COMPUTE_MICROVERSION
    if r.has("max_microversion"):
        text = r.data["max_microversion"]
        parsed = parse_microversion(text) if isinstance(text, str) else None
        if parsed is None or parsed[0] != 2 or not (1 <= parsed[1] <= MAX_COMPUTE_MICROVERSION[1]):
            raise r.error(
                "max_microversion",
                f"must be a compute microversion string between 2.1 and 2.{top[1]}, not {_kind(text)}",
            )
        top = parsed
    return ApiSpec(max_microversion=top, page_size=r.integer("page_size", 1000, minimum=1))


def _parse_auth(source: str, raw: object) -> AuthSpec:
    if raw is None:
        return AuthSpec()
    r = _Reader(source, "auth", raw, _AUTH)
    return AuthSpec(
        username=r.string("username", "admin"),
        password=r.opt_string("password"),
        project_name=r.string("project_name", "admin"),
        token_ttl_s=r.number("token_ttl_s", 3600.0, exclusive=True),
    )


def _parse_fault(
    source: str, entry: str, raw: object, hosts: tuple[HostSpec, ...], servers: tuple[ServerSpec, ...]
) -> Fault:
    if not isinstance(raw, dict):
        raise InputError(source, entry, f"must be an object, not {_kind(raw)}")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in _FAULT_KEYS:
        raise InputError(source, f"{entry}.kind", f"unknown fault kind {kind!r}", f"one of {', '.join(_FAULT_KEYS)}")
    r = _Reader(source, entry, raw, _FAULT_KEYS[kind])

    def server_id() -> str:
        return _find_server(source, r.at("server"), servers, r.string("server", required=True)).id

    def host_name() -> str:
        ref = r.string("host", required=True)
        host = _find_host(hosts, ref)
        if host is None:
            raise r.error("host", f"unknown host {ref!r}", f"known: {', '.join(h.name for h in hosts)}")
        return host.name

    def regex() -> str:
        pattern = r.string("path_regex", required=True)
        problem = regex_problem(pattern)
        if problem is not None:
            raise r.error("path_regex", problem, "a path_regex is a short pattern such as /action$")
        return pattern

    def method() -> str | None:
        value = r.opt_string("method")
        return value.upper() if value else None

    if kind == "precheck_fail":
        sid = server_id()
        reason = r.opt_string("reason")
        return PrecheckFail(sid, reason) if reason else PrecheckFail(sid)
    if kind == "fail_midway":
        sid = server_id()
        fraction = r.number("at_fraction", 0.5)
        if fraction > 1.0:
            raise r.error("at_fraction", f"must be between 0 and 1, not {fraction:g}")
        reason = r.opt_string("reason")
        return FailMidway(sid, fraction, reason) if reason else FailMidway(sid, fraction)
    if kind == "never_converge":
        return NeverConverge(server_id())
    if kind == "busy_then_quiet":
        sid = server_id()
        busy_s = r.number("busy_s", 90.0)
        return BusyThenQuiet(sid, busy_s, r.number("busy_dirty_mb_s") if r.has("busy_dirty_mb_s") else None)
    if kind == "abort_leaves_error":
        return AbortLeavesError(server_id())
    if kind == "api_error":
        pattern = regex()
        status = r.integer("status", minimum=400)
        if status > 599:
            raise r.error("status", f"must be an HTTP error status (400-599), not {status}")
        rate = r.number("rate", 1.0)
        if rate > 1.0:
            raise r.error("rate", f"must be between 0 and 1, not {rate:g}")
        return ApiError(
            path_regex=pattern, status=status, method=method(), rate=rate,
            count=r.opt_integer("count", minimum=1), seed=r.integer("seed", 0), after=r.boolean("after", False),
            from_s=r.number("from_s", 0.0),
        )
    if kind == "slow":
        return Slow(path_regex=regex(), seconds=r.number("seconds"), method=method())
    if kind == "service_down":
        return ServiceDown(host_name(), r.number("at_s", 0.0))
    if kind == "service_disabled":
        host = host_name()
        at_s = r.number("at_s", 0.0)
        reason = r.opt_string("reason")
        return ServiceDisabled(host, at_s, reason) if reason else ServiceDisabled(host, at_s)
    return CapacityTaken(
        host=host_name(), at_s=r.number("at_s", 0.0), vcpu=r.integer("vcpu", 0),
        memory_mb=r.integer("memory_mb", 0), disk_gb=r.integer("disk_gb", 0),
    )
