"""One `maintain`: roll maintenance across hosts batch by batch (drain, command, wait for the service, enable,
put back), each step journaled so a rerun continues where the rollout stopped.

The migrations go through `apply` (the `RunMap` it is given); the command runs through `Exec`; both are injected,
as is the clock, so the same rollout runs on wall time against a cloud and on virtual time in a rehearsal.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from hostmap.apply import ServiceChanges
from hostmap.clock import Clock
from hostmap.cloud.base import Cloud
from hostmap.journal import Journal, Rollout, RolloutStepName, ServiceChange
from hostmap.model import Host, Inventory
from hostmap.results import RunResult
from hostmap.rollout import batch_drain, batches, settle_wait
from hostmap.serialise import export_map
from hostmap.services import disabled_by, drained_state


class RunMap(Protocol):
    """Carries a host map document out as `apply` does; returns the run's result and its id in the journal."""

    def __call__(self, document: Mapping[str, list[str]], services: ServiceChanges, label: str) -> tuple[RunResult,
                                                                                                            int | None]:
        ...


#: Runs the maintenance command for one host; returns its exit code.
Exec = Callable[[str], int]

#: Why a rollout stopped before its end.
StopReason = Literal["drain_incomplete", "exec_failed", "exec_unknown", "not_up", "restore_incomplete"]

#: Seconds between two looks at a host's compute service while waiting for it to come back.
UP_POLL_S = 10.0

#: Seconds between two looks while the service is up but has not reported since the command ended.
FRESH_POLL_S = 2.0


@dataclass(frozen=True)
class MaintainOptions:
    """What a rollout does besides its hosts."""

    batch: int = 1
    headroom_pct: float = 0.0
    restore: bool = False
    up_timeout_s: float = 1800.0
    rerun_exec: bool = False
    command: str = ""
    #: Seconds nova's scheduler may still count an anti-affine member on the host it left (see `settle_wait`).
    group_settle_s: float = 0.0


@dataclass(frozen=True)
class Stopped:
    """Where a rollout stopped: the host, why, and the command's exit code or the run's result when they tell."""

    host: str
    reason: StopReason
    code: int | None = None
    run: RunResult | None = None


@dataclass(frozen=True)
class MaintainResult:
    """A rollout's end: its journal record (every step per host), the runs it made, and where it stopped if it did."""

    rollout: Rollout
    runs: tuple[RunResult, ...]
    stopped: Stopped | None
    #: True when this invocation continued a rollout an earlier one had started.
    continued: bool


def run_rollout(cloud: Cloud, clock: Clock, journal: Journal, *, cloud_key: str, hosts: Sequence[str],
                options: MaintainOptions, run_map: RunMap, execute: Exec,
                say: Callable[[str], None] = lambda text: None,
                on_service: Callable[[ServiceChange], None] = lambda change: None) -> MaintainResult:
    """Roll maintenance over `hosts` (service host names, in order), continuing an unfinished rollout of them.

    `on_service` is told each compute service the rollout enables between its runs (a run's own changes go through
    `run_map`).
    """
    rollout = journal.open_rollout(cloud_key, hosts,
                                   former=[k for k in cloud.former_identities if k != cloud_key])
    continued = rollout is not None
    if rollout is None:
        names = set(hosts)
        original = {s.id: s.host for s in cloud.inventory().servers if s.host is not None and s.host in names}
        rollout_id = journal.start_rollout(cloud=cloud_key, hosts=hosts, batch=options.batch,
                                           restore=options.restore, command=options.command, original=original)
    else:
        rollout_id = rollout.id
        say(f"continuing rollout {rollout_id}, started earlier over the same hosts")
    roller = _Roller(cloud, clock, journal=journal, rollout_id=rollout_id, options=options, run_map=run_map,
                     execute=execute, say=say, on_service=on_service)
    groups = batches(hosts, journal.rollout(rollout_id).batch)
    for i, group in enumerate(groups):
        stopped = roller.batch(group, groups[i + 1:])
        if stopped is not None:
            journal.finish_rollout(rollout_id, "stopped")
            return MaintainResult(journal.rollout(rollout_id), tuple(roller.runs), stopped, continued)
    journal.finish_rollout(rollout_id, "done")
    return MaintainResult(journal.rollout(rollout_id), tuple(roller.runs), None, continued)


class _Roller:
    """The steps of one rollout, batch by batch; every step is journaled before the next begins."""

    def __init__(self, cloud: Cloud, clock: Clock, *, journal: Journal, rollout_id: int, options: MaintainOptions,
                 run_map: RunMap, execute: Exec, say: Callable[[str], None],
                 on_service: Callable[[ServiceChange], None]) -> None:
        self.cloud, self.clock, self.journal, self.rollout_id = cloud, clock, journal, rollout_id
        self.options, self.run_map, self.execute, self.say = options, run_map, execute, say
        self.on_service = on_service
        self.runs: list[RunResult] = []
        #: (server id, host it left, when) for every migration of this invocation's runs.
        self.departures: list[tuple[str, str, float]] = []
        #: Per host, its compute service's `updated_at` as read just after its command ended (see `_wait_up`).
        self.baselines: dict[str, float | None] = {}

    def _run(self, inventory: Inventory, moves: Mapping[str, str], document: Mapping[str, list[str]],
             services: ServiceChanges, label: str) -> tuple[RunResult, int | None]:
        """One run of the rollout, once anti-affine members that left its targets have settled."""
        wait = settle_wait(inventory, moves, self.departures, self.options.group_settle_s, self.clock.now())
        if wait > 0:
            self.say(f"waiting {wait:.0f} s for nova's scheduler to see anti-affine servers leave their hosts "
                     "(--group-settle)")
            self.clock.sleep(wait)
        result, run_id = self.run_map(document, services, label)
        self.runs.append(result)
        now = self.clock.now()
        self.departures.extend((m.server_id, m.source, now) for m in result.moves if m.outcome == "migrated")
        return result, run_id

    def _state(self) -> Rollout:
        return self.journal.rollout(self.rollout_id)

    def _step(self, host: str, step: RolloutStepName, *, run_id: int | None = None, code: int | None = None) -> None:
        self.journal.rollout_step(self.rollout_id, host, step, run_id=run_id, code=code)

    def batch(self, group: Sequence[str], later: Sequence[Sequence[str]]) -> Stopped | None:
        """Take `group` through drain, command, service up, enable and (with restore) restore; where it stopped."""
        rollout = self._state()
        if all(rollout.done(h, "enabled") and (rollout.done(h, "restored") or not rollout.restore) for h in group):
            return None
        stopped = self._drain(group, later)
        if stopped is None:
            stopped = self._commands(group)
        if stopped is None:
            stopped = self._back_up(group)
        if stopped is None and self._state().restore:
            stopped = self._restore(group)
        return stopped

    def _drain(self, group: Sequence[str], later: Sequence[Sequence[str]]) -> Stopped | None:
        """Disable and drain the batch, unless an earlier invocation did."""
        rollout = self._state()
        if all(rollout.done(h, "drained") for h in group):
            return None
        inventory = self.cloud.inventory()
        not_done = [[h for h in g if not rollout.done(h, "enabled")] for g in later]
        drain = batch_drain(inventory, group, not_done, self.options.headroom_pct)
        self.say(f"batch {', '.join(group)}: draining {len(drain.moves)} server(s)")
        result, run_id = self._run(inventory, drain.moves, export_map(inventory, drain.moves),
                                   ServiceChanges(disable=drain.hosts, purpose="maintain"),
                                   f"maintain {', '.join(group)}: drain")
        for state in drained_state(self.cloud.inventory(), drain.hosts, result.moves):
            if not state.empty:
                return Stopped(state.host, "drain_incomplete", run=result)
        for h in group:
            self._step(h, "drained", run_id=run_id)
        return None

    def _commands(self, group: Sequence[str]) -> Stopped | None:
        """The batch's commands, all at once; one whose outcome is unknown is not run again unless asked.

        Each start is journaled before any command runs, and each end as it comes; the batch goes on only once every
        command has ended, and the first host (in batch order) whose command failed stops the rollout.
        """
        hosts: list[str] = []
        for h in group:
            rollout = self._state()
            started, ended = rollout.last(h, "exec_started"), rollout.last(h, "exec_ended")
            if ended > started and rollout.steps[ended].code == 0:
                continue  # done by an earlier invocation
            if started > ended and not self.options.rerun_exec:
                return Stopped(h, "exec_unknown")
            # A command that failed before is run again: the operator reran the rollout after seeing why.
            hosts.append(h)
        for h in hosts:
            self._step(h, "exec_started")
        if hosts:
            self.say(f"{', '.join(hosts)}: running the maintenance command" + (" on each at once" if len(hosts) > 1
                                                                               else ""))
        codes: dict[str, int] = {}
        for h, code in _at_once(self.execute, hosts):
            self._step(h, "exec_ended", code=code)
            self.baselines[h] = _heartbeat(self.cloud, h)
            codes[h] = code
        failed = next((h for h in hosts if codes[h] != 0), None)
        return None if failed is None else Stopped(failed, "exec_failed", code=codes[failed])

    def _back_up(self, group: Sequence[str]) -> Stopped | None:
        """Wait for each host's compute service, then enable it if it still carries the drain's reason."""
        for h in group:
            rollout = self._state()
            drained = rollout.done(h, "drained")
            drain_run = drained.run_id if drained else None
            host: Host | None = None
            if not rollout.done(h, "up"):
                # Seen by an earlier invocation: a fresh read, so a heartbeat after this one is asked for.
                after = self.baselines[h] if h in self.baselines else _heartbeat(self.cloud, h)
                host = _wait_up(self.cloud, self.clock, h, self.options.up_timeout_s, after)
                if host is None:
                    return Stopped(h, "not_up")
                self._step(h, "up")
            if not rollout.done(h, "enabled"):
                if host is None:  # seen up by an earlier invocation: read it once now
                    host = next((x for x in self.cloud.inventory().hosts if x.name == h), None)
                if host is not None and drain_run is not None and disabled_by(host, drain_run):
                    self.cloud.set_service(h, enabled=True)
                    self.on_service(self.journal.service_changed(drain_run, h, "enabled", ""))
                    self.say(f"{h}: compute service enabled")
                self._step(h, "enabled", run_id=drain_run)
        return None

    def _restore(self, group: Sequence[str]) -> Stopped | None:
        """Put the servers the batch's hosts held before the rollout back on them."""
        rollout = self._state()
        if all(rollout.done(h, "restored") for h in group):
            return None
        inventory = self.cloud.inventory()
        where = {s.id: s.host for s in inventory.servers}
        back = {sid: host for sid, host in rollout.original.items()
                if host in group and sid in where and where[sid] != host}
        run_id = None
        if back:
            document = {k: v for k, v in export_map(inventory, back, only=back.keys()).items() if v}
            result, run_id = self._run(inventory, back, document, ServiceChanges(),
                                       f"maintain {', '.join(group)}: restore")
            if not result.reached:
                return Stopped(group[0], "restore_incomplete", run=result)
        for h in group:
            self._step(h, "restored", run_id=run_id)
        return None


def _at_once(execute: Exec, hosts: Sequence[str]) -> Iterator[tuple[str, int]]:
    """Run `execute` for every host at once, each in its own thread; yields (host, exit code) as each ends.

    Every command is bounded by its own timeout (the `Exec`'s), so the wait for all of them is bounded too. An
    exception from a command is re-raised here, once the others have been waited for.
    """
    if len(hosts) <= 1:
        for h in hosts:
            yield h, execute(h)
        return
    ended: queue.Queue[tuple[str, int | BaseException]] = queue.Queue()

    def run(host: str) -> None:
        try:
            ended.put((host, execute(host)))
        except BaseException as error:  # carried to the main thread and re-raised there
            ended.put((host, error))

    for h in hosts:
        threading.Thread(target=run, args=(h,), name=f"exec {h}", daemon=True).start()
    failure: BaseException | None = None
    for _ in hosts:
        host, outcome = ended.get()
        if isinstance(outcome, BaseException):
            failure = failure or outcome
            continue
        yield host, outcome
    if failure is not None:
        raise failure


def _heartbeat(cloud: Cloud, host: str) -> float | None:
    """The compute service's `updated_at` now (seconds since the epoch), or None when the cloud does not say."""
    return next((h.heartbeat_s for h in cloud.inventory().hosts if h.name == host), None)


def _wait_up(cloud: Cloud, clock: Clock, host: str, timeout_s: float, after: float | None) -> Host | None:
    """Wait (at most `timeout_s`) until `host`'s compute service is back; the host as then read, or None.

    Back means up with a heartbeat later than `after` (its `updated_at` read just after the command ended). nova
    counts a service up until its last heartbeat is older than service_down_time (60 s by default), so a host
    rebooting still looks up for a while after the command; a heartbeat that came after the command did not. When
    the cloud gives no `updated_at`, up is all that is asked.
    """
    deadline = clock.now() + timeout_s
    for _ in range(math.ceil(timeout_s / FRESH_POLL_S) + 2):
        found = next((h for h in cloud.inventory().hosts if h.name == host), None)
        stale = found is not None and found.up and None not in (after, found.heartbeat_s) \
            and (found.heartbeat_s or 0.0) <= (after or 0.0)
        if found is not None and found.up and not stale:
            return found
        if clock.now() >= deadline:
            return None
        # Up but stale: nova-compute reports every report_interval (10 s) while it runs, so look again soon.
        clock.sleep(min(FRESH_POLL_S if stale else UP_POLL_S, max(0.0, deadline - clock.now())))
    return None
