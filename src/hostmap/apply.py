"""One `apply`: take the run lock, resume what a crashed run left in flight, plan, and execute with a journal."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from hostmap.clock import Clock
from hostmap.cloud.base import Cloud, MigrationRecord
from hostmap.errors import CloudError
from hostmap.executor import Confirm, Executor, ExecutorOptions
from hostmap.flow import Links
from hostmap.hostmap_file import HostMap
from hostmap.journal import Journal, ServiceChange
from hostmap.model import Inventory, Limits, Move, Plan, Resources, Server, Step
from hostmap.planner import plan as make_plan
from hostmap.recording import JournalRecorder, recorded_force
from hostmap.reporter import Reporter, Reporters
from hostmap.resolve import resolve
from hostmap.results import MoveResult, RunResult
from hostmap.runlock import RunLock
from hostmap.serialise import plan_json
from hostmap.services import disabled_reason, with_enabled
from hostmap.stall import StallFacts


@dataclass(frozen=True)
class ApplySettings:
    """What an apply needs besides the cloud: timings, the journal's place, the duration model and the limits."""

    options: ExecutorOptions
    journal_path: Path | None
    duration: Callable[[Server], float] | None = None
    links: Links | None = None
    group_settle_s: float = 0.0
    limits: Limits = field(default=Limits())
    #: Cold-migrate SHUTOFF servers (`--cold`) instead of refusing them.
    cold: bool = False


@dataclass(frozen=True)
class ServiceChanges:
    """Compute services a run switches, each journaled under the run.

    `enable` (restore): planned as if enabled, switched on once the plan is valid.  `disable` (drain): switched off
    once the plan is valid, before any migration, with a reason naming the run and `purpose`; a service already
    disabled is left as it is (and not recorded: it is not the run's to enable later).
    """

    disable: tuple[str, ...] = ()
    enable: tuple[str, ...] = ()
    purpose: str = "drain"


def plan_map(host_map: HostMap, inventory: Inventory, limits: Limits, *,
             duration: Callable[[Server], float] | None, links: Links | None = None,
             group_settle_s: float = 0.0, cold: bool = False, in_flight: frozenset[str] = frozenset()) -> Plan:
    """Resolve the map against the inventory and plan it with the run's limits (the plan carries them).

    With `cold`, SHUTOFF servers in the map are cold-migrated rather than refused; servers in `in_flight` are left
    where they are (an earlier run's request for them is still unresolved in nova).
    """
    desired = resolve(host_map, inventory, cold=cold, in_flight=in_flight)
    return make_plan(inventory, desired.targets, max_per_host=limits.max_per_host, parallel=limits.parallel,
                     per_group=limits.per_group, max_in_per_host=limits.max_in_per_host,
                     duration=duration, links=links, group_settle_s=group_settle_s, cold=cold)


def apply_map(
    cloud: Cloud,
    *,
    cloud_key: str,
    clock: Clock,
    host_map: HostMap,
    map_text: str,
    settings: ApplySettings,
    reporters: Sequence[Reporter],
    confirm_for: Callable[[Inventory], Confirm | None],
    interrupts: Callable[[], int],
    on_plan: Callable[[Plan], None] = lambda plan: None,
    on_resumed: Callable[[RunResult], None] = lambda result: None,
    services: ServiceChanges = ServiceChanges(),
    on_service: Callable[[ServiceChange], None] = lambda change: None,
    on_start: Callable[[int], None] = lambda run_id: None,
) -> RunResult:
    """Carry the host map out; raises input, capacity and infeasibility errors before anything moves.

    With `services`, compute services are switched after the plan is valid and before the first migration; when
    nova refuses one, the run ends there with nothing moved and the `CloudError` is raised.
    """
    # The key an earlier hostmap gave this cloud is locked too (an older hostmap may be running on it) and its
    # journal entries are this cloud's: a run interrupted before an upgrade is still resumed.
    former = tuple(k for k in cloud.former_identities if k != cloud_key)
    # One lock directory per machine, whichever journal a run writes to.
    with _locked((cloud_key, *former)), Journal.open(settings.journal_path) as journal:
        # Under the lock, any other run of this cloud still marked running has died.
        journal.mark_abandoned(cloud_key, alive=lambda pid: False, former=former)
        resumed = _resume(cloud, clock, journal, cloud_key=cloud_key, former=former, settings=settings,
                          reporters=reporters, interrupts=interrupts)
        if resumed is not None:
            # Shown at once: if the map turns out invalid below, the operator still learns what was watched.
            on_resumed(resumed)
            if resumed.interrupted:
                return resumed
        inventory = with_enabled(cloud.inventory(), services.enable)
        # A server whose earlier request nova still works on (unresolved) is neither moved again nor refused.
        in_flight = frozenset(m.server_id for m in resumed.moves if m.unresolved) if resumed else frozenset()
        the_plan = plan_map(host_map, inventory, settings.limits, duration=settings.duration, links=settings.links,
                            group_settle_s=settings.group_settle_s, cold=settings.cold, in_flight=in_flight)
        on_plan(the_plan)
        run_id = journal.start_run(cloud=cloud_key, map_source=host_map.source, map_text=map_text,
                                   plan=plan_json(the_plan, inventory), pid=os.getpid())
        on_start(run_id)
        try:
            _switch_services(cloud, journal, run_id, inventory=inventory, services=services, on_service=on_service)
        except CloudError:
            journal.finish_run(run_id, reached=False, interrupted=False)
            raise
        recorder = JournalRecorder(journal, run_id)
        # The recorder goes first: it may veto a request (when the journal cannot be written) before it shows.
        executor = Executor(cloud, clock, reporter=Reporters([recorder, *reporters]), confirm=confirm_for(inventory),
                            options=settings.options, interrupts=interrupts)
        result = _with_journal_problem(executor.run(the_plan, inventory), recorder)
    return _combine(resumed, result)


@contextlib.contextmanager
def _locked(keys: Sequence[str]) -> Iterator[None]:
    """Hold the run lock of every key, or raise `LockHeld` for the first one held elsewhere."""
    with contextlib.ExitStack() as held:
        for key in keys:
            held.enter_context(RunLock(key))
        yield


def _switch_services(cloud: Cloud, journal: Journal, run_id: int, *, inventory: Inventory,
                     services: ServiceChanges, on_service: Callable[[ServiceChange], None]) -> None:
    """Switch the run's compute services, journaling each; a `CloudError` stops at the first that fails."""
    enabled = {h.name: h.enabled for h in inventory.hosts}
    reason = disabled_reason(run_id, services.purpose)
    for host in services.enable:
        cloud.set_service(host, enabled=True)
        on_service(journal.service_changed(run_id, host, "enabled", ""))
    for host in services.disable:
        if enabled.get(host, True):
            cloud.set_service(host, enabled=False, reason=reason)
            on_service(journal.service_changed(run_id, host, "disabled", reason))


def _with_journal_problem(result: RunResult, recorder: JournalRecorder) -> RunResult:
    """The run's result, with the journal's failure as its error if a write failed (the run itself went on)."""
    if recorder.broken is None or result.error:
        return result
    return replace(result, error=f"{recorder.broken}; migrations already in flight were watched to their end, "
                                 "no new one was started")


def _resume(
    cloud: Cloud, clock: Clock, journal: Journal, *, cloud_key: str, former: Sequence[str], settings: ApplySettings,
    reporters: Sequence[Reporter], interrupts: Callable[[], int],
) -> RunResult | None:
    """Watch to their end the migrations a crashed run started; never submit them again.

    A cold migration found finished (the server VERIFY_RESIZE on its target) is confirmed; one still running is
    watched, then confirmed.
    """
    orphans = journal.unfinished(cloud_key, former=former)
    if not orphans:
        return None
    inventory = cloud.inventory()
    servers = {s.id: s for s in inventory.servers}
    steps: list[Step] = []
    adopted: dict[int, MigrationRecord] = {}
    unanswered: dict[int, frozenset[int]] = {}
    ages: dict[int, float] = {}
    forced: dict[int, tuple[StallFacts, float]] = {}
    recorder = JournalRecorder(journal, 0, finish=False)
    for orphan in orphans:
        known = journal.known_migration_ids(orphan.id)
        try:
            server_id = orphan.server_id
            records = cloud.cold_migrations(server_id) if orphan.cold else cloud.live_migrations(server_id)
            fresh = [r for r in records if r.id not in known]
        except CloudError as error:
            if error.status == 404:
                journal.outcome(orphan.id, "failed", "the server no longer exists", None)
            continue  # otherwise left unfinished: a later run looks again
        server = servers.get(orphan.server_id)
        demand = server.demand if server is not None else Resources()
        step = Step(len(steps), Move(orphan.server_id, orphan.server_name, orphan.source, orphan.target, demand,
                                     orphan.target, cold=orphan.cold))
        steps.append(step)
        if fresh:
            adopted[step.index] = min(fresh, key=lambda r: r.id)
            force = recorded_force(orphan.detail)
            if force is not None:  # the crashed run force-completed it: never sent again
                forced[step.index] = force
        else:
            # Sent, and hostmap stopped before nova answered: nova may still be carrying it out. Never resent;
            # the executor watches for its migration (its task state) for a bounded time and adopts it.
            unanswered[step.index] = known
        ages[step.index] = journal.age_s(orphan)  # --timeout counts from the original request, not from now
        recorder.adopt(step, orphan.id, orphan.detail)
    if not steps:
        return None
    executor = Executor(cloud, clock, reporter=Reporters([recorder, *reporters]), options=settings.options,
                        interrupts=interrupts)
    result = _with_journal_problem(
        executor.run(Plan(tuple(steps), limits=settings.limits), inventory, adopted=adopted, adopted_age=ages,
                     unanswered=unanswered, forced=forced),
        recorder,
    )
    note = "resumed: an interrupted run had sent this request"
    return RunResult(tuple(_noted(m, note) for m in result.moves), result.makespan_s, result.interrupted,
                     identity_lost=result.identity_lost)


def _noted(move: MoveResult, note: str) -> MoveResult:
    return replace(move, reason=f"{note}; {move.reason}" if move.reason else note)


def _combine(resumed: RunResult | None, result: RunResult) -> RunResult:
    if resumed is None:
        return result
    # Rows keep their order: a resumed server's later row (e.g. a fresh attempt) decides `reached`.  A server the
    # resumed migration put on its target shows once, as migrated, not again as "already on its target".
    moved = {m.server_id for m in resumed.moves if m.outcome == "migrated"}
    fresh = tuple(m for m in result.moves if not (m.outcome == "skipped" and m.server_id in moved))
    spans = [s for s in (resumed.makespan_s, result.makespan_s) if s is not None]
    return RunResult(resumed.moves + fresh, sum(spans) if spans else None,
                     resumed.interrupted or result.interrupted, resumed.error or result.error,
                     resumed.identity_lost or result.identity_lost)
