"""The simulated cloud's state and its timing model (thread-safe, no HTTP).

Time is taken from a `hostmap.clock.Clock`. Every read or write first calls `advance()`, which moves
the world from the last instant it was computed at to `clock.now()` event by event: between two events
(a phase change, a switch-over, a failure, a scheduled fault) every rate is constant, so the progress
of each migration is computed in closed form. Nothing ticks in the background, which is why the same
code runs on a wall clock and on a `VirtualClock` that jumps hours at once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial

from hostmap.clock import Clock
from hostmap.sim.scenario import (
    SERVER_STATUSES,
    AbortLeavesError,
    ApiError,
    BusyThenQuiet,
    CapacityTaken,
    FailMidway,
    FlavorSpec,
    HostSpec,
    NeverConverge,
    PrecheckFail,
    Scenario,
    ServiceDisabled,
    ServiceDown,
    Slow,
    sim_uuid,
)
from hostmap.sim.zones import Zones
from hostmap.timing import (
    MigrationParams,
    completion_timeout_s,
    copy_time_s,
    dirty_bytes_per_s,
    gbps_to_bytes_per_s,
    touched_bytes,
)

#: The status nova's libvirt driver gives a migration that switched to post-copy (the guest runs on the
#: destination, which pulls the pages it still lacks from the source).
POST_COPY = "running (post-copy)"
#: Statuses in which memory is being copied.
COPYING = ("running", POST_COPY)
#: Migration statuses during which the migration holds claims and the server is MIGRATING.
IN_PROGRESS = ("accepted", "queued", "preparing", "running", POST_COPY)
#: Statuses that hold one of the source host's live-migration slots.
ACTIVE_PHASES = ("preparing", "running", POST_COPY)
#: Task states of a cold migration (a resize to the same flavor) on its way, as nova names them.
RESIZE_TASK_STATES = ("resize_prep", "resize_migrating", "resize_migrated", "resize_finish")
#: Cold-migration statuses during which nova holds the flavor on both hosts (until confirmed or reverted).
COLD_HOLDING = ("pre-migrating", "migrating", "post-migrating", "finished", "confirming", "reverting")
#: Resource classes in the order of every (vcpu, memory_mb, disk_gb) triple here.
RESOURCE_CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB")
#: Tolerance, in seconds, within which events count as simultaneous.
EPSILON_S = 1e-9

Triple = tuple[int, int, int]
#: A fault applied at its scheduled time rather than on a request.
TimedFault = ServiceDown | ServiceDisabled | CapacityTaken
#: A deferred state transition, run when the world reaches its event time.
EventHandler = Callable[[], None]

log = logging.getLogger("hostmap.sim")


class SimError(Exception):
    """A request the simulated cloud refuses, as nova would: HTTP status, fault name and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SimHost:
    """Live state of one compute host."""

    spec: HostSpec
    index: int
    uuid: str
    service_uuid: str
    enabled: bool
    up: bool
    disabled_reason: str | None
    changed_s: float
    nic_bps: float
    max_concurrent: int
    generation: int = 1
    #: Set by `PUT /os-services/{id}` (2.53+): nova then counts the service down whatever its heartbeat says.
    forced_down: bool = False
    #: When nova-compute stopped reporting (the host went down, e.g. to reboot); None while it reports. nova goes on
    #: counting the service up until its last heartbeat is older than service_down_time.
    silent_since_s: float | None = None
    #: When nova-compute (re)started reporting: a heartbeat then and every report_interval after.
    reporting_since_s: float = -3600.0

    def heartbeat_s(self, now_s: float, interval_s: float) -> float:
        """The last heartbeat (nova's `last_seen_up`) as of `now_s`; a host found down keeps the moment it went."""
        if not self.up:
            return self.changed_s
        last = now_s if self.silent_since_s is None else self.silent_since_s
        return self.reporting_since_s + math.floor((last - self.reporting_since_s) / interval_s) * interval_s

    def updated_s(self, now_s: float, interval_s: float) -> float:
        """The service row's `updated_at`: its last heartbeat or its last change (a PUT), whichever came last."""
        return max(self.heartbeat_s(now_s, interval_s), self.changed_s)

    @property
    def alive(self) -> bool:
        """Whether nova counts the compute service up: it reports in, and no one forced it down."""
        return self.up and not self.forced_down

    @property
    def name(self) -> str:
        """Service host name (what os-migrateLive's `host` takes)."""
        return self.spec.name

    @property
    def hypervisor_hostname(self) -> str:
        """Hypervisor (compute node, resource provider) name."""
        return self.spec.hypervisor_hostname

    @property
    def inventory_totals(self) -> Triple:
        """Totals as reported to placement."""
        return self.spec.vcpus, self.spec.memory_mb, self.spec.disk_gb

    @property
    def reserved(self) -> Triple:
        """Reserved amounts as reported to placement."""
        return self.spec.reserved_host_cpus, self.spec.reserved_host_memory_mb, self.spec.reserved_host_disk_gb

    @property
    def ratios(self) -> tuple[float, float, float]:
        """Allocation ratios per resource class."""
        return self.spec.cpu_allocation_ratio, self.spec.ram_allocation_ratio, self.spec.disk_allocation_ratio


@dataclass
class SimInstance:
    """Live state of one server (a nova instance)."""

    id: str
    name: str
    index: int
    flavor: FlavorSpec
    host: str
    node: str
    vm_state: str
    power_state: int
    task_state: str | None
    project_id: str
    user_id: str
    created_s: float
    updated_s: float
    touched: float
    dirty_bps: float

    @property
    def status(self) -> str:
        """Nova's status, derived from vm_state and task_state."""
        if self.task_state == "migrating" and self.vm_state in ("active", "paused"):
            return "MIGRATING"
        # As nova's api/openstack/compute/views: a move in progress shows RESIZE, a finished one VERIFY_RESIZE.
        if self.task_state in RESIZE_TASK_STATES and self.vm_state in ("active", "stopped"):
            return "RESIZE"
        if self.vm_state == "resized":
            return "REVERT_RESIZE" if self.task_state == "resize_reverting" else "VERIFY_RESIZE"
        for status, (vm_state, _) in SERVER_STATUSES.items():
            if vm_state == self.vm_state:
                return status
        return self.vm_state.upper()

    @property
    def resources(self) -> Triple:
        """What the server's flavor claims in placement."""
        return self.flavor.vcpus, self.flavor.ram, self.flavor.disk

    @property
    def instance_name(self) -> str:
        """Libvirt domain name as nova makes it."""
        return f"instance-{self.index + 1:08x}"


@dataclass
class SimMigration:
    """One live migration and its progress."""

    id: int
    uuid: str
    server_id: str
    source: str
    source_node: str
    dest: str
    dest_node: str
    status: str
    created_s: float
    updated_s: float
    flavor_int_id: int
    user_id: str
    project_id: str
    request_id: str
    total_bytes: float
    ram_bytes: float
    dirty_bps: float
    stream_bps: float
    timeout_s: float
    sent_bytes: float = 0.0
    left_bytes: float = 0.0
    rate_bps: float = 0.0
    started_s: float | None = None
    copy_started_s: float | None = None
    finished_s: float | None = None
    fail_fraction: float | None = None
    fail_reason: str = ""
    #: When force_complete paused the guest (libvirt's pause, post-copy not permitted); None while it runs.
    paused_at_s: float | None = None
    #: Seconds the guest was paused by a force_complete: what an operator cannot see through the API.
    paused_s: float = 0.0
    #: A guest whose dirty rate changes during the migration (fault busy_then_quiet): when, and the new rate.
    dirty_change_s: float | None = None
    dirty_after_bps: float = 0.0
    error: str = ""
    #: The byte counters as nova last saved them (total, processed, remaining); None before the first save.
    saved: tuple[float, float, float] | None = None
    next_save_s: float | None = None
    #: "live-migration", or "migration" for a cold migration (sim/cold.py runs those).
    migration_type: str = "live-migration"
    #: A cold migration's next phase change (None when it waits for a confirm or revert, or has ended).
    phase_end_s: float | None = None
    on_phase_end: EventHandler | None = None

    @property
    def remaining_bytes(self) -> float:
        """What is left to copy."""
        return self.left_bytes if self.status in (*COPYING, "completed") else self.total_bytes

    @property
    def effective_dirty_bps(self) -> float:
        """The rate at which the source's memory gets dirty again: none once paused or switched to post-copy."""
        return 0.0 if self.paused_at_s is not None or self.status == POST_COPY else self.dirty_bps


@dataclass
class SimEvent:
    """One event of an instance action."""

    event: str
    start_s: float
    host: str
    finish_s: float | None = None
    result: str | None = None
    traceback: str | None = None
    details: str | None = None


@dataclass
class SimAction:
    """One instance action (such as live-migration) and its events."""

    action: str
    request_id: str
    server_id: str
    user_id: str
    project_id: str
    start_s: float
    updated_s: float
    message: str | None = None
    events: list[SimEvent] = field(default_factory=list)

    def event(self, name: str) -> SimEvent | None:
        """The event called `name`, if recorded."""
        return next((e for e in self.events if e.event == name), None)


@dataclass
class Consumer:
    """A placement consumer: allocations per host name."""

    project_id: str
    user_id: str
    allocations: dict[str, Triple]
    generation: int = 1


@dataclass
class Token:
    """An issued keystone token."""

    expires_s: float
    issued_s: float
    audit_id: str


#: The reason nova 34 records (event details, 400 message) when its scheduler refuses a requested host.
NO_VALID_HOST = "No valid host was found. "
#: What nova 34's conductor records when placement offered hosts and the scheduler's filters refused them all.
NO_VALID_HOST_FILTERED = "No valid host was found. There are not enough hosts available."


class SimCloud:
    """The whole simulated cloud; thread-safe; all times are seconds since the cloud was created."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Clock,
        *,
        password: str | None = None,
        epoch: datetime | None = None,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.lock = threading.RLock()
        self._t0 = clock.now()
        self._t = 0.0
        # On a whole second: nova stamps its records in whole seconds, so the stamps of a run depend only on its
        # offsets, and the same run on virtual time reads the same stamps every time.
        self.epoch = (epoch or datetime.now(timezone.utc).replace(microsecond=0)).replace(tzinfo=None)
        auth = scenario.auth
        self.username = auth.username
        self.password = password or auth.password or secrets.token_urlsafe(18)
        self.project_name = auth.project_name
        self.token_ttl_s = auth.token_ttl_s
        self.user_id = sim_uuid("user", auth.username).replace("-", "")
        self.admin_project_id = self.project_id(auth.project_name)
        self.requests: list[tuple[str, str, int, str | None]] = []
        self.params: MigrationParams = scenario.migration
        self.hosts: dict[str, SimHost] = {}
        for i, spec in enumerate(scenario.hosts):
            self.hosts[spec.name] = SimHost(
                spec=spec, index=i, uuid=sim_uuid("compute_node", spec.hypervisor_hostname),
                service_uuid=sim_uuid("service", spec.name), enabled=spec.enabled, up=spec.up,
                disabled_reason=spec.disabled_reason if not spec.enabled else None, changed_s=-3600.0,
                nic_bps=gbps_to_bytes_per_s(spec.nic_gbps or self.params.nic_gbps),
                max_concurrent=spec.max_concurrent_live_migrations or self.params.max_concurrent_live_migrations,
            )
        self.flavors: dict[str, FlavorSpec] = {f.id: f for f in scenario.flavors}
        self._flavor_int_ids = {f.id: i + 1 for i, f in enumerate(scenario.flavors)}
        self.servers: dict[str, SimInstance] = {}
        self.consumers: dict[str, Consumer] = {}
        count = len(scenario.servers)
        self._never_converge = {f.server for f in scenario.faults if isinstance(f, NeverConverge)}
        self._abort_error = {f.server for f in scenario.faults if isinstance(f, AbortLeavesError)}
        self._precheck = {f.server: f.reason for f in scenario.faults if isinstance(f, PrecheckFail)}
        self._midway = {f.server: f for f in scenario.faults if isinstance(f, FailMidway)}
        self._busy = {f.server: f for f in scenario.faults if isinstance(f, BusyThenQuiet)}
        for i, sspec in enumerate(scenario.servers):
            vm_state, power = SERVER_STATUSES[sspec.status]
            flavor = self.flavors[sspec.flavor]
            project_id = self.project_id(sspec.project)
            created = -60.0 * (count - i) - 86400.0
            server = SimInstance(
                id=sspec.id, name=sspec.name, index=i, flavor=flavor, host=sspec.host,
                node=self.hosts[sspec.host].hypervisor_hostname, vm_state=vm_state, power_state=power,
                task_state=None, project_id=project_id, user_id=self.user_id, created_s=created,
                updated_s=created, touched=sspec.touched if sspec.touched is not None else self.params.touched,
                dirty_bps=dirty_bytes_per_s(
                    sspec.dirty_mb_s if sspec.dirty_mb_s is not None else self.params.dirty_mb_s
                ),
            )
            self.servers[sspec.id] = server
            self.consumers[sspec.id] = Consumer(project_id, self.user_id, {sspec.host: server.resources})
        self.groups = scenario.server_groups
        self.zones = Zones(scenario)
        self.migrations: list[SimMigration] = []
        self.actions: dict[str, list[SimAction]] = {s: [] for s in self.servers}
        self.tokens: dict[str, Token] = {}
        self._timeline: list[tuple[float, int, TimedFault]] = sorted(
            (f.at_s, i, f)
            for i, f in enumerate(scenario.faults)
            if isinstance(f, TimedFault)
        )
        self._api_faults = [
            (f, random.Random(f.seed), [0]) for f in scenario.faults if isinstance(f, ApiError)
        ]
        self._slow = [f for f in scenario.faults if isinstance(f, Slow)]
        #: (when, host): a silent host whose last heartbeat gets older than service_down_time then.
        self._silences: list[tuple[float, str]] = []
        self.advance()

    # ------------------------------------------------------------------------------------------
    # Identity helpers

    @staticmethod
    def project_id(name: str) -> str:
        """Deterministic project id for a project name (keystone-style hex)."""
        return sim_uuid("project", name).replace("-", "")

    def now_s(self) -> float:
        """Seconds since the cloud started, on its clock."""
        return self.clock.now() - self._t0

    def timestamp(self, offset_s: float, *, style: str = "nova") -> str:
        """The wall datetime at `offset_s`: nova style (microseconds, no zone), "z" or "keystone"."""
        when = self.epoch + timedelta(seconds=offset_s)
        if style == "z":
            return when.strftime("%Y-%m-%dT%H:%M:%SZ")
        if style == "keystone":
            return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f")

    def parse_timestamp(self, text: str) -> float | None:
        """Offset in seconds of an ISO 8601 datetime (naive = UTC); None when malformed."""
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            return None
        if when.tzinfo is not None:
            when = when.astimezone(timezone.utc).replace(tzinfo=None)
        return (when - self.epoch).total_seconds()

    @contextmanager
    def view(self) -> Iterator[SimCloud]:
        """Hold the lock with the world brought up to now."""
        with self.lock:
            self.advance()
            yield self

    # ------------------------------------------------------------------------------------------
    # Requests, tokens and API faults

    def record_request(self, method: str, path: str, status: int, microversion: str | None) -> None:
        """Remember one answered request."""
        with self.lock:
            self.requests.append((method, path, status, microversion))

    def mutating_request_count(self) -> int:
        """POST/PUT/PATCH/DELETE requests to nova or placement (keystone token requests excluded)."""
        with self.lock:
            return sum(
                1
                for method, path, _, _ in self.requests
                if method in ("POST", "PUT", "PATCH", "DELETE") and path.startswith(("/compute", "/placement"))
            )

    def issue_token(self, username: str, password: str, project_name: str) -> tuple[str, Token]:
        """A new token for the admin user; SimError 401 on bad credentials."""
        with self.view():
            if not (
                secrets.compare_digest(username, self.username)
                and secrets.compare_digest(password.encode(), self.password.encode())
                and project_name == self.project_name
            ):
                raise SimError(401, "The request you have made requires authentication.")
            token = "gAAAAA" + secrets.token_urlsafe(48)
            record = Token(self._t + self.token_ttl_s, self._t, secrets.token_urlsafe(16)[:22])
            self.tokens[token] = record
            return token, record

    def token_valid(self, token: str | None) -> bool:
        """True when `token` was issued here and has not expired on the sim clock."""
        if not token:
            return False
        with self.view():
            record = self.tokens.get(token)
            return record is not None and self._t < record.expires_s

    def api_fault(self, method: str, path: str, *, after: bool = False) -> int | None:
        """The status an `api_error` fault injects into this request (before or after carrying it out), if any."""
        with self.lock:
            for fault, rng, used in self._api_faults:
                if fault.after != after or (fault.method and fault.method != method) or self.now_s() < fault.from_s:
                    continue
                if not re.search(fault.path_regex, path):
                    continue
                if fault.count is not None and used[0] >= fault.count:
                    continue
                if rng.random() < fault.rate:
                    used[0] += 1
                    return fault.status
            return None

    def slow_seconds(self, method: str, path: str) -> float:
        """Extra seconds `slow` faults add to this request."""
        return sum(
            f.seconds for f in self._slow if (not f.method or f.method == method) and re.search(f.path_regex, path)
        )

    # ------------------------------------------------------------------------------------------
    # Placement figures

    def capacity(self, host: SimHost) -> Triple:
        """Usable amounts: int((total - reserved) * allocation_ratio) per resource class."""
        return host.spec.capacity()

    def usage(self, host_name: str) -> Triple:
        """Sum of allocations against a host."""
        v = m = d = 0
        for consumer in self.consumers.values():
            alloc = consumer.allocations.get(host_name)
            if alloc:
                v, m, d = v + alloc[0], m + alloc[1], d + alloc[2]
        return v, m, d

    def shortfall(self, host: SimHost, need: Triple) -> str | None:
        """Why `need` does not fit on `host` now (None when it fits)."""
        used = self.usage(host.name)
        cap = self.capacity(host)
        for rc, n, u, c, total in zip(RESOURCE_CLASSES, need, used, cap, host.inventory_totals, strict=True):
            if n > total:
                return f"{rc} request {n} exceeds max_unit {total} on {host.name}"
            if u + n > c:
                return f"not enough {rc} on {host.name}: {n} requested, {c - u} free of {c}"
        return None

    def host_by_uuid(self, ident: str) -> SimHost | None:
        """A host by compute node uuid (resource provider uuid)."""
        return next((h for h in self.hosts.values() if h.uuid == ident), None)

    # ------------------------------------------------------------------------------------------
    # Time

    def advance(self) -> None:
        """Bring the world to clock.now(), processing every event on the way in order."""
        with self.lock:
            target = max(self.now_s(), self._t)
            while True:
                self._start_queued()
                next_at, handlers = self._next_events()
                step_to = min(next_at, target)
                if step_to > self._t:
                    self._progress(step_to - self._t)
                    self._t = step_to
                if next_at > target:
                    break
                for handler in handlers:
                    handler()

    def _rates(self) -> None:
        running = [m for m in self.migrations if m.status in COPYING]
        out_count: dict[str, int] = {}
        in_count: dict[str, int] = {}
        for m in running:
            out_count[m.source] = out_count.get(m.source, 0) + 1
            in_count[m.dest] = in_count.get(m.dest, 0) + 1
        for m in self.migrations:
            if m.status in COPYING:
                m.rate_bps = min(
                    m.stream_bps,
                    self.hosts[m.source].nic_bps / out_count[m.source],
                    self.hosts[m.dest].nic_bps / in_count[m.dest],
                )
            else:
                m.rate_bps = 0.0

    def _next_events(self) -> tuple[float, list[EventHandler]]:
        self._rates()
        best = math.inf
        handlers: list[EventHandler] = []

        def offer(at: float, handler: EventHandler) -> None:
            nonlocal best, handlers
            if at < best - EPSILON_S:
                best, handlers = at, [handler]
            elif at <= best + EPSILON_S:
                handlers.append(handler)

        for at_s, _, fault in self._timeline:
            offer(max(at_s, self._t), partial(self._apply_fault, fault))
            break
        for at_s, name in self._silences:
            offer(max(at_s, self._t), partial(self._counted_down, name))
        for m in self.migrations:
            if m.phase_end_s is not None and m.on_phase_end is not None:  # a cold migration's (sim/cold.py)
                offer(m.phase_end_s, m.on_phase_end)
        for m in self.migrations:
            if m.status == "preparing" and m.started_s is not None:
                offer(m.started_s + self.params.setup_s, partial(self._start_copy, m))
            elif m.status in COPYING and m.copy_started_s is not None:
                if m.next_save_s is not None:
                    offer(m.next_save_s, partial(self._save_stats, m))
                if m.paused_at_s is not None or m.status == POST_COPY:
                    # Forced: what is left is sent at the stream's rate, the guest not dirtying it any more (paused,
                    # or running on the destination and pulling its pages); libvirt's completion timeout is off.
                    offer(self._t + (m.left_bytes / m.rate_bps if m.rate_bps > 0 else math.inf),
                          partial(self._complete, m))
                    continue
                offer(m.copy_started_s + m.timeout_s, partial(self._fail, m, "timeout"))
                if m.dirty_change_s is not None:
                    offer(max(m.dirty_change_s, self._t), partial(self._change_dirty, m))
                offer(
                    self._t + copy_time_s(m.left_bytes, m.rate_bps, m.dirty_bps, self.params.downtime_ms),
                    partial(self._complete, m),
                )
                if m.fail_fraction is not None and m.rate_bps > 0:
                    goal = m.fail_fraction * m.total_bytes
                    offer(self._t + max(goal - m.sent_bytes, 0.0) / m.rate_bps, partial(self._fail, m, "midway"))
        return best, handlers

    def _progress(self, dt: float) -> None:
        live = self.params.monitor_interval_s <= 0
        for m in self.migrations:
            if m.status in COPYING and m.rate_bps > 0:
                m.sent_bytes += m.rate_bps * dt
                m.left_bytes = min(max(m.left_bytes - (m.rate_bps - m.effective_dirty_bps) * dt, 0.0), m.ram_bytes)
                if live:  # counters saved continuously: so is updated_at, as each of nova's saves stamps it
                    m.updated_s = self._t + dt

    def _start_queued(self) -> None:
        """Start queued migrations on sources with a free slot (FIFO)."""
        for m in self.migrations:
            if m.status != "queued":
                continue
            busy = sum(1 for o in self.migrations if o.source == m.source and o.status in ACTIVE_PHASES)
            if busy < self.hosts[m.source].max_concurrent:
                m.status = "preparing"
                m.started_s = m.updated_s = self._t
                action = self._action_for(m)
                if action is not None:
                    action.events.append(SimEvent("compute_pre_live_migration", self._t, m.dest))

    def update_service(self, service_uuid: str, changes: Mapping[str, object]) -> SimHost:
        """Apply a validated `PUT /os-services/{id}` body (status, disabled_reason, forced_down) to that host.

        Raises SimError as nova does: 404 for an unknown service, 400 for a reason given while enabling or for a body
        that changes nothing.
        """
        with self.view():
            host = next((h for h in self.hosts.values() if h.service_uuid == service_uuid), None)
            if host is None:
                raise SimError(404, f"Service {service_uuid} could not be found.")
            if "status" not in changes and "forced_down" not in changes:
                raise SimError(400, "No updates were requested. Fields 'status' or 'forced_down' should be specified.")
            if changes.get("status") == "enabled":
                if changes.get("disabled_reason"):
                    raise SimError(400, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
                host.enabled, host.disabled_reason = True, None
            elif changes.get("status") == "disabled":
                reason = changes.get("disabled_reason")
                host.enabled, host.disabled_reason = False, reason if isinstance(reason, str) else None
            if "forced_down" in changes:
                host.forced_down = bool(changes["forced_down"])
            host.changed_s = self._t
            return host

    def stop_heartbeats(self, name: str) -> None:
        """nova-compute on `name` stops reporting (the host goes down): nova counts it up until its last heartbeat
        is older than service_down_time, as `servicegroup.drivers.db.DbDriver.is_up` does."""
        with self.view():
            host = self.hosts[name]
            if host.silent_since_s is not None or not host.up:
                return
            host.silent_since_s = self._t
            interval = self.scenario.report_interval_s
            self._silences.append((host.heartbeat_s(self._t, interval) + self.scenario.service_down_time_s, name))

    def start_heartbeats(self, name: str) -> None:
        """nova-compute on `name` starts again: it reports at once and every report_interval after."""
        with self.view():
            host = self.hosts[name]
            host.up, host.silent_since_s, host.reporting_since_s = True, None, self._t
            self._silences = [(at, h) for at, h in self._silences if h != name]

    def _counted_down(self, name: str) -> None:
        self._silences = [(at, h) for at, h in self._silences if h != name]
        host = self.hosts[name]
        if host.silent_since_s is not None:
            last = host.heartbeat_s(self._t, self.scenario.report_interval_s)
            host.up, host.changed_s = False, max(host.changed_s, last)
            host.silent_since_s = None

    def _apply_fault(self, fault: TimedFault) -> None:
        self._timeline.pop(0)
        if isinstance(fault, ServiceDown):
            host = self.hosts[fault.host]
            host.up, host.changed_s = False, self._t
        elif isinstance(fault, ServiceDisabled):
            host = self.hosts[fault.host]
            host.enabled, host.disabled_reason, host.changed_s = False, fault.reason, self._t
        elif isinstance(fault, CapacityTaken):
            consumer = sim_uuid("capacity_taken", fault.host, fault.at_s, len(self.consumers))
            self.consumers[consumer] = Consumer(
                self.admin_project_id, self.user_id, {fault.host: (fault.vcpu, fault.memory_mb, fault.disk_gb)}
            )
            self.hosts[fault.host].generation += 1

    def _start_copy(self, m: SimMigration) -> None:
        if m.status != "preparing":
            return
        m.status = "running"
        m.copy_started_s = m.updated_s = self._t
        m.left_bytes = m.total_bytes
        if m.dirty_change_s is not None:  # the fault's busy spell counts from the start of the copy
            m.dirty_change_s += self._t
        if self.params.monitor_interval_s > 0:
            m.next_save_s = self._t  # libvirt's monitor saves the counters as the copy starts, then periodically
        action = self._action_for(m)
        event = action.event("compute_pre_live_migration") if action else None
        if event is not None:
            event.finish_s, event.result = self._t, "Success"

    def _save_stats(self, m: SimMigration) -> None:
        """Nova's libvirt monitor saving the migration's byte counters (and so its updated_at)."""
        if m.status not in COPYING:
            return
        m.saved = (m.total_bytes, m.sent_bytes, m.left_bytes)
        m.updated_s = self._t
        m.next_save_s = self._t + self.params.monitor_interval_s

    def _change_dirty(self, m: SimMigration) -> None:
        """The guest's workload changes (fault busy_then_quiet): from now on it dirties memory at the new rate."""
        m.dirty_bps, m.dirty_change_s = m.dirty_after_bps, None

    def _complete(self, m: SimMigration) -> None:
        if m.status not in COPYING:
            return
        if m.paused_at_s is not None:
            # The guest is resumed on the destination (libvirt starts it there, nova records it ACTIVE).
            m.paused_s += self._t - m.paused_at_s
            m.paused_at_s = None
        m.sent_bytes += m.left_bytes
        m.left_bytes = 0.0
        m.status = "completed"
        m.finished_s = m.updated_s = self._t
        server = self.servers[m.server_id]
        server.host, server.node = m.dest, m.dest_node
        server.task_state = None
        server.updated_s = self._t
        self.consumers.pop(m.uuid, None)
        self.hosts[m.source].generation += 1
        action = self._action_for(m)
        if action is not None:
            action.events.append(
                SimEvent("compute_post_live_migration_at_destination", self._t, m.dest, self._t, "Success")
            )
            action.updated_s = self._t

    def _fail(self, m: SimMigration, why: str) -> None:
        if m.status != "running":
            return
        if why == "timeout":
            # libvirt's monitor aborts the job (live_migration_timeout_action = abort): nova then reports the
            # migration `cancelled`, as if an operator had aborted it.
            reason = (
                f"Live migration of instance {m.server_id} did not complete within "
                f"{m.timeout_s:g} s (live_migration_completion_timeout); aborting it."
            )
            self._rollback(m, "cancelled", reason)
        else:
            self._rollback(m, "failed", m.fail_reason)

    def _rollback(self, m: SimMigration, status: str, reason: str) -> None:
        """End `m` with `status`, leaving the server on its source and releasing the destination claim."""
        m.status = status
        m.finished_s = m.updated_s = self._t
        m.error = reason
        if m.paused_at_s is not None:  # nova's rollback unpauses a guest that force_complete paused
            m.paused_s += self._t - m.paused_at_s
            m.paused_at_s = None
        server = self.servers[m.server_id]
        server.task_state = None
        server.updated_s = self._t
        claim = self.consumers.pop(m.uuid, None)
        consumer = self.consumers[m.server_id]
        consumer.allocations = dict(claim.allocations) if claim else {m.source: server.resources}
        consumer.generation += 1
        self.hosts[m.dest].generation += 1
        action = self._action_for(m)
        if action is None:
            return
        action.updated_s = self._t
        pre = action.event("compute_pre_live_migration")
        if pre is not None and pre.finish_s is None:
            pre.finish_s, pre.result = self._t, "Success"
        # As nova: the reason goes to nova-compute's log only; the API shows the status and a rollback event.
        log.warning("nova-compute %s: live migration of instance %s ended %s: %s", m.source, m.server_id, status,
                    reason)
        action.events.append(
            SimEvent("compute_rollback_live_migration_at_destination", self._t, m.dest, self._t, "Success")
        )

    def _action_for(self, m: SimMigration) -> SimAction | None:
        return next(
            (
                a
                for a in self.actions.get(m.server_id, [])
                if a.request_id == m.request_id and a.action == "live-migration"
            ),
            None,
        )

    # ------------------------------------------------------------------------------------------
    # Live migration

    def live_migrate(
        self, server_id: str, host: str | None, *, force: bool, request_id: str, async_checks: bool
    ) -> SimMigration | None:
        """Nova's os-migrateLive after body validation.

        Raises SimError for synchronous refusals (409 state, 400 unknown host, and below 2.34 the
        conductor pre-checks). With `async_checks` a refused pre-check still returns the migration,
        in status `error`. None is returned only when nova would not create a migration record.
        """
        with self.view():
            server = self.get_server(server_id)
            if server.vm_state not in ("active", "paused"):
                raise SimError(
                    409, f"Cannot 'os-migrateLive' instance {server.id} while it is in vm_state {server.vm_state}"
                )
            if server.task_state is not None:
                raise SimError(
                    409, f"Cannot 'os-migrateLive' instance {server.id} while it is in task_state {server.task_state}"
                )
            target = None
            if host is not None:
                target = self.hosts.get(host)
                if target is None:
                    raise SimError(400, f"Compute host {host} could not be found.")
            action = SimAction(
                "live-migration", request_id, server.id, self.user_id, server.project_id, self._t, self._t
            )
            self.actions[server.id].append(action)
            conductor = SimEvent("conductor_live_migrate_instance", self._t, "controller")
            action.events.append(conductor)
            problem, chosen = self._precheck_live(server, target, force)
            dest = chosen or target
            source = self.hosts[server.host]
            m = self._new_migration(server, source, dest or source, request_id)
            conductor.finish_s = self._t
            if problem is not None or dest is None:
                message = problem or NO_VALID_HOST
                m.status = "error"
                m.error = message
                conductor.result = "Error"
                conductor.details = message
                kind = "NoValidHost" if "No valid host" in message else "MigrationPreCheckError"
                conductor.traceback = _traceback(kind, message)
                action.message = "Error"
                if not async_checks:
                    raise SimError(400, message)
                return m
            conductor.result = "Success"
            action.events.append(
                SimEvent("compute_check_can_live_migrate_destination", self._t, dest.name, self._t, "Success")
            )
            self.consumers[m.uuid] = Consumer(server.project_id, server.user_id, {source.name: server.resources})
            self.consumers[server.id].allocations = {dest.name: server.resources}
            self.consumers[server.id].generation += 1
            dest.generation += 1
            server.task_state = "migrating"
            server.updated_s = self._t
            m.status = "queued"
            # Nova's compute manager only queues the work (status queued) and returns: its event ends at once,
            # a success whatever becomes of the migration.
            action.events.append(SimEvent("compute_live_migration", self._t, source.name, self._t, "Success"))
            self._start_queued()
            return m

    def _precheck_live(
        self, server: SimInstance, target: SimHost | None, force: bool
    ) -> tuple[str | None, SimHost | None]:
        """The conductor/scheduler checks: (problem or None, host chosen by the scheduler)."""
        source = self.hosts[server.host]
        if not source.alive:  # the conductor checks the source first, forced or not
            return f"Compute service of {source.name} is unavailable at this time.", None
        if target is not None and target.name == server.host:
            if force:
                return f"Unable to migrate instance ({server.id}) to current host ({target.name}).", None
            # The scheduler is asked with the source among the hosts to ignore: whatever placement offers, no host.
            short = self.shortfall(target, server.resources)
            return (NO_VALID_HOST if short is not None else NO_VALID_HOST_FILTERED), None
        if target is not None and force:
            if not target.alive:
                return f"Compute service of {target.name} is unavailable at this time.", None
            short = self.shortfall(target, server.resources)
            if short is not None:
                return (
                    f"Unable to move instance {server.id} to host {target.name}. There is not enough "
                    f"capacity on the host for the instance. ({short})"
                ), None
            return None, None
        if server.id in self._precheck:
            return self._precheck[server.id], None
        candidates = [target] if target is not None else [h for h in self.hosts.values() if h.name != server.host]
        reasons: list[str] = []
        fitting: list[SimHost] = []
        filtered = False  # some host passed placement (enabled, room) and a scheduler filter refused it
        for host in candidates:
            short = self.shortfall(host, server.resources)
            # A host outside the server's pinned zone is no placement candidate (nova's request filter asks
            # placement for the zone's aggregates only), like a disabled one: neither counts as filtered.
            outside = self.zones.outside(server.id, host.name)
            reason = outside or self._filter(server, host, short)
            if reason is None:
                fitting.append(host)
            else:
                reasons.append(reason)
                filtered = filtered or (host.enabled and short is None and outside is None)
        if not fitting:
            # Nova 34 records only one of these sentences (checked against the real control plane,
            # docs/realnova.md); the filter that refused each host goes to the scheduler's log, as nova's does.
            log.info("scheduler refused %s: %s", server.id, "; ".join(reasons))
            return (NO_VALID_HOST_FILTERED if filtered else NO_VALID_HOST), None
        if target is not None:
            return None, target
        free = {h.name: self.capacity(h)[1] - self.usage(h.name)[1] for h in fitting}
        return None, max(fitting, key=lambda h: (free[h.name], -h.index))

    def _filter(self, server: SimInstance, host: SimHost, short: str | None) -> str | None:
        """Why the scheduler refuses `host` for `server` (None if it passes); `short`: placement's shortfall."""
        if not host.alive:
            return f"compute service of {host.name} is down"
        if not host.enabled:
            return f"compute service of {host.name} is disabled"
        if short is not None:
            return short
        for group in self.groups:
            if server.id not in group.members:
                continue
            if group.policy == "anti-affinity":
                # Members on the host, counting those arriving there (nova's scheduler or, failing that, the
                # destination's late check refuses them) and those that left it since its last instance sync
                # (nova's scheduler still counts them there).
                limit = group.max_server_per_host or 1
                stale = self._left_unsynced(host.name)
                there = sum(1 for s in group.members
                            if s != server.id and (host.name in self.hosts_of(s) or s in stale))
                if there >= limit:
                    return (f"server group {group.name} (anti-affinity, max_server_per_host {limit}) already has "
                            f"{there} member(s) on {host.name}")
            if group.policy == "affinity":
                # ServerGroupAffinityFilter: the group's hosts are those of all its members, this one included.
                placed = {self.servers[s].host for s in group.members if s in self.servers}
                if host.name not in placed:
                    return f"server group {group.name} (affinity) has members on {', '.join(sorted(placed))} only"
        return None

    def _left_unsynced(self, host: str) -> set[str]:
        """Servers live-migrated off `host` since its last instance sync: the scheduler still counts them there."""
        interval = self.params.instance_sync_s
        if interval <= 0:
            return set()
        last_sync = math.floor(self._t / interval) * interval
        return {m.server_id for m in self.migrations
                if m.source == host and m.status == "completed" and m.finished_s is not None
                and m.finished_s > last_sync}

    def hosts_of(self, server_id: str) -> set[str]:
        """Hosts a server occupies: its host and, while migrating (live or cold, until confirmed), the other end."""
        server = self.servers[server_id]
        hosts = {server.host}
        for m in self.migrations:
            if m.server_id == server_id and (m.status in IN_PROGRESS if m.migration_type == "live-migration"
                                             else m.status in COLD_HOLDING):
                hosts.update((m.source, m.dest))
        return hosts

    def _new_migration(self, server: SimInstance, source: SimHost, dest: SimHost, request_id: str) -> SimMigration:
        ram_bytes = float(server.flavor.ram) * 2**20
        stream = gbps_to_bytes_per_s(self.params.stream_gbps)
        dirty = server.dirty_bps
        if server.id in self._never_converge:
            dirty = max(dirty, stream * 1.25)
        busy = self._busy.get(server.id)
        quiet = dirty
        if busy is not None:
            dirty = max(dirty, stream * 1.25) if busy.busy_dirty_mb_s is None \
                else dirty_bytes_per_s(busy.busy_dirty_mb_s)
        midway = self._midway.get(server.id)
        m = SimMigration(
            id=len(self.migrations) + 1, uuid=sim_uuid("migration", len(self.migrations) + 1, server.id),
            server_id=server.id, source=source.name, source_node=source.hypervisor_hostname, dest=dest.name,
            dest_node=dest.hypervisor_hostname, status="accepted", created_s=self._t, updated_s=self._t,
            flavor_int_id=self._flavor_int_ids[server.flavor.id], user_id=server.user_id,
            project_id=server.project_id, request_id=request_id,
            total_bytes=touched_bytes(server.flavor.ram, server.touched), ram_bytes=ram_bytes, dirty_bps=dirty,
            stream_bps=stream, timeout_s=completion_timeout_s(server.flavor.ram),
            fail_fraction=midway.at_fraction if midway else None, fail_reason=midway.reason if midway else "",
            dirty_change_s=busy.busy_s if busy else None, dirty_after_bps=quiet,
        )
        self.migrations.append(m)
        return m

    def get_server(self, server_id: str) -> SimInstance:
        """A server by id; SimError 404 as nova words it."""
        server = self.servers.get(server_id)
        if server is None:
            raise SimError(404, f"Instance {server_id} could not be found.")
        return server

    def server_migration(self, server_id: str, migration_id: str) -> SimMigration:
        """A live migration of a server by its integer id (as nova looks it up); SimError 404 if unknown."""
        self.get_server(server_id)
        m = next((m for m in self.migrations if migration_id == str(m.id) and m.server_id == server_id), None)
        if m is None:
            raise SimError(404, f"Migration {migration_id} for instance {server_id} could not be found.")
        return m

    def _act_on_migration(
        self, server_id: str, migration_id: str, request_id: str, *, what: tuple[str, str, str, str],
        allowed: tuple[str, ...], missing_status: int,
    ) -> SimMigration:
        """Nova's checks and instance action for an operation on a server's in-progress migration.

        `what`: the operation as nova's 409 and 400 messages name it, its instance action and its event;
        `missing_status`: the route's answer to a migration id the server does not have.
        """
        verb, phrase, action_name, event_name = what
        server = self.get_server(server_id)
        if server.task_state != "migrating":  # nova's check_instance_state comes before the lookup
            # nova's raise_http_conflict_for_instance_invalid_state names the state only when there is one.
            raise SimError(409, f"Instance {server_id} is in an invalid state for '{verb}'" if server.task_state is None
                           else f"Cannot '{verb}' instance {server_id} while it is in task_state {server.task_state}")
        m = next((m for m in self.migrations if migration_id == str(m.id) and m.server_id == server_id), None)
        if m is None:
            # MigrationNotFoundForInstance: the abort route answers it with 404, force_complete's with 400.
            raise SimError(missing_status, f"Migration {migration_id} not found for instance {server_id}")
        if m.status not in allowed:
            raise SimError(
                400, f"Migration {migration_id} state of instance {server_id} is {m.status}. Cannot "
                f"{phrase} while the migration is in this state."
            )
        action = SimAction(action_name, request_id, server_id, self.user_id, server.project_id, self._t, self._t)
        action.events.append(SimEvent(event_name, self._t, m.source, self._t, "Success"))
        self.actions[server_id].append(action)
        return m

    def abort(self, server_id: str, migration_id: str, *, allow_queued: bool, request_id: str) -> None:
        """DELETE /servers/{id}/migrations/{mid}: abort an in-progress live migration."""
        with self.view():
            m = self._act_on_migration(
                server_id, migration_id, request_id,
                what=("abort live migration", "abort live migration", "live_migration_cancel",
                      "compute_live_migration_abort"),
                allowed=("running", "queued", "preparing") if allow_queued else ("running",), missing_status=404,
            )
            self._rollback(m, "cancelled", "aborted by request")
            if server_id in self._abort_error:
                self.servers[server_id].vm_state = "error"
            self._start_queued()

    def force_complete(self, server_id: str, migration_id: str, *, request_id: str) -> None:
        """POST .../migrations/{mid}/action force_complete: switch over now."""
        with self.view():
            m = self._act_on_migration(
                server_id, migration_id, request_id,
                what=("force_complete", "force complete", "live_migration_force_complete",
                      "compute_live_migration_force_complete"),
                allowed=("running",), missing_status=400,
            )
            if self.params.permit_post_copy:
                # libvirt's migrate_start_postcopy: the guest switches over to the destination at once.
                m.status, m.updated_s = POST_COPY, self._t
            elif m.paused_at_s is None:
                m.paused_at_s = self._t  # libvirt's pause: the guest stops dirtying memory until it is resumed
        self.advance()


def _traceback(kind: str, message: str) -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3/dist-packages/nova/conductor/manager.py", line 501, in _live_migrate\n'
        "    task.execute()\n"
        f"nova.exception.{kind}: {message}\n"
    )


def host_id(project_id: str, host: str) -> str:
    """Nova's hostId: sha224 of project id + host name."""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def new_request_id() -> str:
    """An openstack request id: req-<uuid4>."""
    return f"req-{uuid.uuid4()}"
