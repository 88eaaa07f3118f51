"""Run a plan through the Cloud seam on an injected clock: start, watch, abort and judge each migration."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from typing import Literal

from hostmap.checks import CheckCall, Checker, CheckResult, Phase, check_words
from hostmap.clock import Clock
from hostmap.cloud.base import (
    COLD_FINISHED,
    POST_COPY,
    UNSUCCESSFUL_STATUSES,
    ActionRecord,
    Cloud,
    ColdMigrationUnsupported,
    IdentityUnavailable,
    MigrationRecord,
    MigrationRefused,
    ServerStatus,
    Submission,
)
from hostmap.errors import CloudError, HostmapError
from hostmap.model import COLD_MIGRATABLE_STATUSES, MIGRATABLE_STATUSES, Inventory, Limits, Plan, Server, Step
from hostmap.progress import Progress, Sample, expected_end, save_time
from hostmap.reporter import Reporter
from hostmap.results import GOOD_OUTCOMES, Advice, MoveResult, Outcome, RunResult
from hostmap.stall import StallFacts, StallWatch, predicted_pause
from hostmap.start_rule import Verdict, busiest_group, group_counts, ready_at, verdict

Answer = Literal["yes", "no", "all", "quit"]
#: Asks the operator about one step and returns their answer; while it waits for them it calls the second argument
#: every few seconds, which watches the migrations in flight (their timeouts and failures do not wait for answers).
Confirm = Callable[[Step, Callable[[], None]], Answer]
OnTimeout = Literal["abort", "leave", "force-complete"]
OnStall = Literal["abort", "force-complete", "wait"]


#: How far before the newest change seen a watch round asks from (`ExecutorOptions.changes_margin_s`).
WATCH_OVERLAP_S = 120.0


@dataclass(frozen=True)
class ExecutorOptions:
    """Timings of a run (its limits come with the plan: `Plan.limits`); every wait below is bounded by one of these."""

    timeout_s: float = 600.0
    on_timeout: OnTimeout = "abort"
    stop_on_failure: bool = False
    #: Longest pause between two watch rounds while a flight has no expected end ahead (being found, aborted, late,
    #: coming to rest), and the shortest (used when a migration is about to finish).
    poll_s: float = 2.0
    min_poll_s: float = 0.1
    #: Longest pause between two watch rounds while every flight has an expected end ahead: it bounds how late an
    #: unexpected end (a failure) is seen, and how often nova's saves of the counters are seen.
    quiet_poll_s: float = 10.0
    #: The shared watch asks os-migrations for the records nova changed since the newest change it saw, less this
    #: much: a change stamped before that read may be committed after it, and nova's timestamps come from the clocks
    #: of the services that save a record (the conductor, each compute host), which may disagree by whole seconds.
    changes_margin_s: float = WATCH_OVERLAP_S
    #: Nova's live_migration_downtime default (500 ms): the switch-over comes when this much copying is left.
    switchover_s: float = 0.5
    #: How often, at most, to read byte-level progress of one running migration.
    progress_every_s: float = 2.0
    #: The copy rate is measured over about this long: nova saves the byte counters every few seconds
    #: (live_migration_monitor_interval, 5 s) and stamps them to the second, so two saves in a row are too coarse.
    rate_window_s: float = 10.0
    #: After nova says a migration ended, how long the server may take to come to rest (no task, not MIGRATING) and
    #: show its final host and state.
    rest_wait_s: float = 60.0
    #: After an abort, how long nova may take to cancel the migration and put the server back.
    abort_wait_s: float = 300.0
    #: How long to wait before sending again an abort that nova refused or that failed on the way (and a
    #: confirmResize).
    abort_retry_s: float = 15.0
    #: After nova first refused the confirmResize of a cold migration (4xx: its source's service down, say), how long
    #: hostmap keeps sending it before it leaves the server VERIFY_RESIZE to the operator.
    confirm_wait_s: float = 120.0
    #: After nova accepted the request, how long its migration record may take to appear (while the server is
    #: not busy; a busy server is waited for up to the timeout).
    record_wait_s: float = 120.0
    #: After a request whose answer never came (an unclear failure, a crash before the answer, a 409 because the
    #: server is already migrating), how long from the request to look for its migration before concluding that
    #: nova started none (a server nova shows busy is looked at up to the timeout).
    ambiguous_grace_s: float = 30.0
    #: How long the API may fail every read before hostmap stops watching and says what it could not confirm.
    outage_s: float = 300.0
    #: A running migration is stalled after this long without progress (the rule: stall.py), and then handled so.
    stall_s: float = 60.0
    on_stall: OnStall = "abort"
    #: Force a migration to complete only if the guest's predicted pause (remaining / copy rate) is within this.
    max_pause_s: float = 5.0
    #: The operator's health check (`--check`), run before each migration is sent and after it completes; it is
    #: bounded by its own timeout (`--check-timeout`, given here for the words of a failure).
    check: Checker | None = None
    check_timeout_s: float = 30.0


@dataclass
class _Abort:
    """An abort hostmap asked nova for, and how nova has taken it so far."""

    since: float
    #: Why hostmap aborts, and the outcome the move gets once the server is back.
    problem: str
    outcome: Outcome
    #: What went wrong with the abort requests themselves: (HTTP status or None, text), the first of each kind.
    trouble: list[tuple[int | None, str]] = field(default_factory=list)
    #: The migration status in which nova last refused the abort ("" when it was accepted).
    refused_in: str = ""
    #: When the abort was last sent: a refused or failed one is sent again once the state moves on, or after
    #: `abort_retry_s` (an API error may have eaten it).
    sent_at: float = 0.0


@dataclass
class _Flight:
    """A migration hostmap asked for (or adopted) and is watching."""

    step: Step
    submission: Submission
    submitted_at: float
    known_ids: frozenset[int]
    original_status: str
    record: MigrationRecord | None = None
    #: Set when the request failed without a clear answer: the problem seen, and when the answer came back.
    ambiguous: str = ""
    answered_at: float = 0.0
    #: Set once hostmap asked nova to abort the migration.
    abort: _Abort | None = None
    ended_at: float | None = None
    progress: Progress = field(default_factory=Progress)
    #: For a cold migration: when hostmap last sent confirmResize (the record reached `finished`).
    confirmed_at: float | None = None
    #: When nova first refused that confirmResize (4xx), and its answer; None while nothing was refused.
    confirm_refused_at: float | None = None
    confirm_refusal: str = ""
    #: Set for a request an earlier run sent and whose answer never came (it stopped first): resumed by this run.
    unanswered: bool = False
    #: What nova showed of an unanswered request once its migration appeared; it leads the move's reason.
    found_note: str = ""
    #: For a request without an answer: when nova created the newest migration it had for the server before (its
    #: instance actions started after it are this request), and the action found for the request once looked for.
    known_newest: str | None = None
    request_seen: ActionRecord | None = None
    #: The stall rule's view of nova's saved counters, and the stall it last reported (None: not stalled).
    #: (Made at the first save read, with the run's stall_s.)
    stall: StallWatch | None = None
    stall_seen: StallFacts | None = None
    #: When hostmap sent force_complete, and the figures it forced on.
    forced_at: float | None = None
    #: Set for a cold migration in flight when the operator asked to abort everything (interrupted twice): nova
    #: cannot abort it, so it is watched to its end and confirmed, and its row says so.
    kept_running: str = ""
    #: The health checks run for this move so far (the pre-check).
    checks: tuple[CheckResult, ...] = ()
    #: The record's updated_at when hostmap last read its counters: nova has saved them again once it moved on.
    read_stamp: str | None = None

    @property
    def server_id(self) -> str:
        return self.step.move.server_id

    @property
    def cold(self) -> bool:
        return self.step.move.cold

    @property
    def answered_or_submitted(self) -> float:
        """Since when nova may have recorded the migration: the request, or for an unclear one its failure."""
        return self.answered_at if self.ambiguous else self.submitted_at


@dataclass
class _RunState:
    results: dict[int, MoveResult] = field(default_factory=dict)
    flights: dict[int, _Flight] = field(default_factory=dict)
    stop_reason: str = ""
    all_yes: bool = False
    #: When reads started failing without a success since (None while the API answers).
    failing_since: float | None = None
    #: The earliest time a step waiting for an anti-affine member's departure to settle may start.
    wake_at: float | None = None
    #: Per source host, migrations hostmap stopped watching while nova may still run them: they hold a slot.
    held: dict[str, list[str]] = field(default_factory=dict)
    #: Set once keystone failed through its retries: no new request is sent, the flights are watched on.
    identity_lost: str = ""
    #: Server groups whose moves stop: group id -> the member whose post-check failed.
    closed_groups: dict[str, str] = field(default_factory=dict)
    #: The newest updated_at (epoch seconds) of any live-migration record read: the shared watch's changes-since.
    newest_change_s: float | None = None


def _resting_status(server: Server | None, cold: bool = False) -> str:
    """The status a migrating server must return to; empty when its status before the migration is unknown."""
    if server is None or server.status not in (COLD_MIGRATABLE_STATUSES if cold else MIGRATABLE_STATUSES):
        return ""
    return server.status


def _expected(flight: _Flight) -> frozenset[str]:
    """The statuses the server may rest in after its migration, moved or not."""
    if flight.original_status:
        return frozenset({flight.original_status})
    return COLD_MIGRATABLE_STATUSES if flight.cold else MIGRATABLE_STATUSES


def _action_name(flight: _Flight) -> str:
    """The instance action nova records for the flight's request."""
    return "migrate" if flight.cold else "live-migration"


def _migrations_of(cloud: Cloud, server_id: str, cold: bool) -> list[MigrationRecord]:
    """The server's migration records of one kind: cold (`migration`) or live."""
    return list(cloud.cold_migrations(server_id) if cold else cloud.live_migrations(server_id))


class Executor:
    """Carries out a plan: starts each step when its dependencies are done and its source host has a slot."""

    def __init__(
        self,
        cloud: Cloud,
        clock: Clock,
        *,
        reporter: Reporter | None = None,
        confirm: Confirm | None = None,
        options: ExecutorOptions | None = None,
        interrupts: Callable[[], int] = lambda: 0,
    ) -> None:
        self._cloud = cloud
        self._clock = clock
        self._reporter = reporter or Reporter()
        self._confirm = confirm
        self._options = options or ExecutorOptions()
        self._interrupts = interrupts
        self._start = 0.0
        self._limits = Limits()
        #: The smallest (our clock - nova's save time) seen for progress counters: nova's clock against ours.
        self._offset: float | None = None
        opts = self._options
        #: No flight is watched longer than this from its submission, whatever happens.
        self._flight_limit = opts.timeout_s + opts.abort_wait_s + opts.rest_wait_s + opts.outage_s + 4 * opts.poll_s

    def run(
        self,
        plan: Plan,
        inventory: Inventory,
        adopted: Mapping[int, MigrationRecord] | None = None,
        adopted_age: Mapping[int, float] | None = None,
        unanswered: Mapping[int, frozenset[int]] | None = None,
        *,
        forced: Mapping[int, tuple[StallFacts, float]] | None = None,
    ) -> RunResult:
        """Execute `plan`; returns one result per server, in plan order, skipped ones first.

        `adopted` maps step indexes to migrations already in flight in nova (found after a crash): those steps
        are watched to their end instead of being submitted again.  `adopted_age` says how many seconds ago each
        was requested: its timeout counts from then (one already past it is aborted at once).  `unanswered` maps
        step indexes to requests an earlier run sent without seeing nova's answer, with the server's migration ids
        listed before it: nova is watched for what it did with each (never sent again) and a migration that
        appears is adopted.  `forced` maps adopted steps an earlier run force-completed to the figures it forced on
        and how many seconds ago: the force is not sent again, and the move is reported forced.
        """
        self._start = self._clock.now()
        self._group_settle_s = plan.group_settle_s
        self._limits = plan.limits
        state = _RunState(all_yes=self._confirm is None)
        servers = {s.id: s for s in inventory.servers}
        adopted = adopted or {}
        unanswered = unanswered or {}
        pending = [step for step in plan.steps if step.index not in adopted and step.index not in unanswered]
        self._reporter.planned(plan)
        for step in plan.steps:
            if step.index in unanswered:
                age = max((adopted_age or {}).get(step.index, 0.0), 0.0)
                self._unanswered_flight(step, state, unanswered[step.index], age, servers)
        for step in plan.steps:
            record = adopted.get(step.index)
            if record is not None:
                submission = Submission(step.move.server_id, step.move.target, None, "")
                age = min(max((adopted_age or {}).get(step.index, 0.0), 0.0), self._options.timeout_s)
                state.flights[step.index] = _Flight(step, submission, self._start - age, frozenset(),
                                                    _resting_status(servers.get(step.move.server_id), step.move.cold),
                                                    record=record)
                self._adopt_force(state.flights[step.index], (forced or {}).get(step.index))
                self._reporter.started(step, submission)
        error = ""
        try:
            # Bounded: every pending step is started or finished, and every flight ends by its own limit.
            while pending or state.flights:
                self._check_interrupts(state)
                pending = self._start_ready(pending, state)
                if state.flights:
                    self._clock.sleep(self._next_pause(state))
                    self._watch_round(state)
                elif pending and state.wake_at is not None:
                    self._clock.sleep(max(state.wake_at - self._clock.now(), self._options.min_poll_s))
                elif pending:  # nothing runs and nothing is due: cannot happen with a plan whose steps form a DAG
                    for step in pending:
                        self._finish(state, step, "not_started", "hostmap found nothing it waits for (a bug)")
                    pending = []
        except (HostmapError, OSError) as exc:
            # Never leave without a report: say what was in flight and what was never started.
            error = str(exc) or type(exc).__name__
            if isinstance(exc, IdentityUnavailable):
                state.identity_lost = state.identity_lost or error
            for flight in list(state.flights.values()):
                self._finish(state, flight.step, "failed",
                             f"hostmap stopped watching ({error}) while the migration was "
                             f"{flight.record.status if flight.record else 'being requested'}",
                             flight=flight, unresolved=True, advice=Advice("check"))
            for step in pending:
                self._finish(state, step, "not_started", f"hostmap stopped before starting it ({error})")
        skipped = tuple(
            MoveResult(s.id, s.name, s.host or "", s.host or "", "skipped", "already on its target host")
            for s in plan.in_place
        )
        finished = [r.finished_s for r in state.results.values() if r.finished_s is not None]
        result = RunResult(
            skipped + self._merge(plan, state.results),
            makespan_s=max(finished, default=0.0),
            interrupted=self._interrupts() > 0,
            error=error or state.identity_lost,
            identity_lost=bool(state.identity_lost),
            estimated_s=plan.estimated_s or None,
        )
        self._reporter.done(result)
        return result

    def _adopt_force(self, flight: _Flight, force: tuple[StallFacts, float] | None) -> None:
        """An adopted migration the earlier run force-completed: watched as forced (its end waited for, aborted
        `abort_wait_s` after the force if it never took), never forced again."""
        if force is None:
            return
        facts, age = force
        flight.stall_seen = facts
        flight.forced_at = self._start - max(age, 0.0)
        flight.found_note = "force-complete sent by the interrupted run; not sent again"

    # -- starting -------------------------------------------------------------------------------------------

    def _check_interrupts(self, state: _RunState) -> None:
        count = self._interrupts()
        if count >= 1 and not state.stop_reason:
            state.stop_reason = "interrupted by the operator before it started"
        if count >= 2:
            for flight in state.flights.values():
                if flight.cold:
                    # Nova cannot abort a cold migration: it is watched to its end and confirmed.
                    flight.kept_running = flight.kept_running or (
                        "interrupted twice, but nova cannot abort a cold migration: watched to its end")
                elif flight.abort is None and flight.record is not None and not flight.record.terminal:
                    self._abort(flight, "aborted by the operator (interrupted twice)", outcome="failed")

    def _start_ready(self, pending: list[Step], state: _RunState) -> list[Step]:
        still: list[Step] = []
        #: Per source host, the first step of the plan still waiting for its dependencies (its next move).
        heads: dict[str, Step] = {}
        state.wake_at = None
        for step in pending:
            blocked = self._blocked_by(step, state)
            if blocked is not None:
                self._finish(state, step, "not_started", blocked)
                continue
            if state.stop_reason:
                self._finish(state, step, "not_started", state.stop_reason)
                continue
            closed = next((state.closed_groups[g] for g in step.move.groups if g in state.closed_groups), None)
            if closed is not None:
                self._finish(state, step, "not_started",
                             f"the post-check failed after the move of {closed}, a member of its server group: no "
                             "more moves of that group's members in this run; nothing was sent")
                continue
            if any(dep not in state.results for dep in step.after):
                heads.setdefault(step.move.source, step)
                still.append(step)
                continue
            settled = self._group_settled_at(step, state)
            if settled > self._clock.now():
                # A member of its anti-affinity group has just left the target: nova's scheduler sees it go
                # only at its next instance sync, and until then refuses this server there.
                heads.setdefault(step.move.source, step)
                state.wake_at = settled if state.wake_at is None else min(state.wake_at, settled)
                still.append(step)
                continue
            held = state.held.get(step.move.source, [])
            if self._held_back(step, state):
                continue
            from_source = len(held) + sum(1 for f in state.flights.values() if f.step.move.source == step.move.source)
            to_target = sum(1 for f in state.flights.values() if f.step.move.target == step.move.target)
            head = heads.get(step.move.source)
            in_group = 0 if self._limits.per_group is None else busiest_group(
                step.move, group_counts(f.step.move for f in state.flights.values()))
            if verdict(self._limits, running=len(state.flights), from_source=from_source,
                       ends_at=self._clock.now() + step.move.estimate_s,
                       head_ready_at=None if head is None else partial(self._ready_at, head, state),
                       in_group=in_group, to_target=to_target) is not Verdict.START:
                still.append(step)  # no slot, or it would hold the source when the plan's next move can start
                continue
            if not state.all_yes and self._confirm is not None and not self._approved(step, state):
                continue
            self._submit(step, state)
        return still

    def _approved(self, step: Step, state: _RunState) -> bool:
        """Ask the operator about `step`; False (the step finished as declined or not started) unless it may go."""
        assert self._confirm is not None

        def watch_meanwhile() -> None:
            if state.flights:
                self._watch_round(state)

        answer = self._confirm(step, watch_meanwhile)
        if self._interrupts() > 0:  # interrupted while the question was on screen
            self._check_interrupts(state)
            self._finish(state, step, "not_started", "interrupted by the operator at the prompt")
            return False
        if answer == "quit":
            state.stop_reason = "the operator quit at the prompt"
            self._finish(state, step, "declined", "the operator quit at the prompt")
            return False
        if answer == "no":
            self._finish(state, step, "declined", "the operator declined this migration")
            return False
        if answer == "all":
            state.all_yes = True
        if state.flights:
            # A last look at the migrations in flight (the answer may come between two watches: a failure, a
            # timeout) before this one may start.
            self._watch_round(state)
            blocked = self._blocked_by(step, state)
            if blocked is not None or state.stop_reason:
                self._finish(state, step, "not_started", blocked or state.stop_reason)
                return False
            if self._held_back(step, state):
                return False
        return True

    def _held_back(self, step: Step, state: _RunState) -> bool:
        """Finish `step` as not started if migrations hostmap stopped watching may still fill its source's slots."""
        held = state.held.get(step.move.source, [])
        if len(held) < self._limits.max_per_host:
            return False
        self._finish(state, step, "not_started",
                     f"the migration of {', '.join(held)} from {step.move.source} may still be running in nova "
                     "(hostmap stopped watching it), and nova runs one at a time per host "
                     "(max_concurrent_live_migrations); nothing was sent")
        return True

    @staticmethod
    def _blocked_by(step: Step, state: _RunState) -> str | None:
        for dep in step.after:
            result = state.results.get(dep)
            if result is not None and result.outcome not in GOOD_OUTCOMES:  # skipped: it is already there
                return (f"waits on the move of {result.server_name} to {result.target}, "
                        f"which ended {result.outcome.replace('_', ' ')}")
        return None

    def _group_settled_at(self, step: Step, state: _RunState) -> float:
        """When the departures `step` must let settle have settled (clock time), given they ended."""
        ends = [state.results[dep].finished_s for dep in step.settle_after]
        return max((self._start + end + self._group_settle_s for end in ends if end is not None), default=0.0)

    def _ready_at(self, head: Step, state: _RunState) -> float:
        """When `head` (a step still waiting for its dependencies) is expected to be able to start (clock time);
        inf when one of those dependencies has not started yet: it may start any moment."""
        ends: list[tuple[float, bool]] = [(self._group_settled_at(head, state), False)]
        for dep in head.after:
            if dep in state.results:
                continue
            flight = state.flights.get(dep)
            if flight is None:
                return math.inf
            end = flight.progress.expected_end
            if end is None:
                end = max(flight.submitted_at, self._start) + flight.step.move.estimate_s
            ends.append((end, dep in head.settle_after))
        return ready_at(ends, self._group_settle_s)

    def _submit(self, step: Step, state: _RunState) -> None:
        move = step.move
        try:
            # The plan may be old: look at the server again right before asking nova to move it.
            current = self._cloud.server_status(move.server_id)
            known = frozenset(m.id for m in _migrations_of(self._cloud, move.server_id, move.cold))
        except CloudError as error:
            reason = "the server no longer exists" if error.status == 404 else f"could not read it ({error.problem})"
            self._lose_identity(state, error)
            self._finish(state, step, "not_started", f"{reason}; nothing was sent")
            return
        if current.host != move.source or current.task_state is not None:
            busy = f" (task {current.task_state})" if current.task_state else ""
            outcome: Outcome = "skipped" if current.host == move.target and not busy else "not_started"
            self._finish(state, step, outcome,
                         f"the server changed since planning: now {current.status} on {current.host}{busy}; "
                         "nothing was sent")
            return
        pre = self._check(step, "pre")
        if pre is not None and not pre.ok:
            self._finish(state, step, "check_failed", f"{check_words(pre, self._options.check_timeout_s)}; nothing "
                         "was sent", checks=(pre,))
            return
        if self._interrupts() > 0:  # Ctrl-C during a burst of starts (or a check): this one and the rest stay unsent
            self._check_interrupts(state)
            self._finish(state, step, "not_started", state.stop_reason)
            return
        now = self._clock.now()
        try:
            self._reporter.submitting(step, known)
        except HostmapError as error:  # the journal could not record the intent: send nothing unrecorded
            state.stop_reason = state.stop_reason or f"hostmap could not record its intent ({error})"
            self._finish(state, step, "not_started", f"{state.stop_reason}; nothing was sent")
            return
        # The status the server must come back to: as it is now (a tenant may have paused it since planning).
        original = current.status if current.status in (COLD_MIGRATABLE_STATUSES if move.cold
                                                         else MIGRATABLE_STATUSES) else ""
        try:
            if move.cold:
                submission = self._cloud.start_cold_migration(move.server_id, move.target)
            else:
                submission = self._cloud.start_live_migration(move.server_id, move.target)
        except ColdMigrationUnsupported as unsupported:
            self._finish(state, step, "failed", f"not sent: {unsupported}", started=now)
            return
        except MigrationRefused as refused:
            if refused.status == 409 and self._adopt_conflict(step, state, known=known, original=original,
                                                                       sent_at=now, refused=refused):
                return
            self._finish(state, step, "failed", f"nova refused the request (HTTP {refused.status}): {refused.reason}",
                         started=now)
            return
        except IdentityUnavailable as error:
            # No token, so keystoneauth sent nothing: a clear answer, unlike the failures below.
            self._lose_identity(state, error)
            self._finish(state, step, "not_started", f"{error.problem}; nothing was sent", started=now)
            return
        except CloudError as error:
            # The request may or may not have reached nova: never resend it; look for its migration instead.
            self._look_for_answer(step, state, known=known, original=original, sent_at=now,
                                  problem=f"sent, no answer: {error.problem}")
            return
        estimate = step.move.estimate_s
        state.flights[step.index] = _Flight(step, submission, now, known, original,
                                            progress=Progress(planned_end=now + estimate if estimate > 0 else None),
                                            checks=() if pre is None else (pre,))
        self._reporter.started(step, submission)

    # -- requests whose answer never came: find what nova did, never send them again --------------------------

    def _look_for_answer(self, step: Step, state: _RunState, *, known: frozenset[int], original: str, sent_at: float,
                         problem: str, unanswered: bool = False) -> None:
        """Watch for the migration of a request nova may or may not have carried out; adopt it once it appears.

        The grace counts from when the request failed (now), or for an earlier run's request from when it was sent.
        """
        submission = Submission(step.move.server_id, step.move.target, None, "")
        state.flights[step.index] = _Flight(step, submission, sent_at, known, original, ambiguous=problem,
                                            answered_at=sent_at if unanswered else self._clock.now(),
                                            unanswered=unanswered)

    @staticmethod
    def _lose_identity(state: _RunState, error: CloudError) -> None:
        """Keystone failed through its retries: start nothing more; the flights are watched as far as the token
        allows (their reads are retried up to `outage_s`)."""
        if isinstance(error, IdentityUnavailable) and not state.identity_lost:
            state.identity_lost = str(error)
            state.stop_reason = state.stop_reason or f"not started: {error.problem}"

    def _adopt_conflict(self, step: Step, state: _RunState, *, known: frozenset[int], original: str, sent_at: float,
                        refused: MigrationRefused) -> bool:
        """A 409 to the request: when the server is migrating (a request of ours whose answer was lost, or one
        sent a moment before), find that migration and adopt it; False when the server is not migrating."""
        try:
            server = self._cloud.server_status(step.move.server_id)
        except CloudError:
            return False
        if server.status != "MIGRATING" and server.task_state not in ("migrating", "resize_prep", "resize_migrating"):
            return False
        self._look_for_answer(step, state, known=known, original=original, sent_at=sent_at,
                              problem=f"nova answered 409 ({refused.reason}): the server was already migrating")
        return True

    def _unanswered_flight(self, step: Step, state: _RunState, known: frozenset[int], age: float,
                           servers: Mapping[str, Server]) -> None:
        """Watch a request an earlier run sent `age` seconds ago and stopped before nova answered."""
        original = _resting_status(servers.get(step.move.server_id), step.move.cold)
        self._look_for_answer(step, state, known=known, original=original, sent_at=self._start - age,
                              problem="sent, no answer (hostmap stopped before nova answered)", unanswered=True)

    def _request_seen(self, flight: _Flight) -> ActionRecord | None:
        """The instance action nova's API recorded for the request, if it received it (read once found)."""
        if flight.request_seen is None:
            found = self._cloud.requests_after(flight.server_id, flight.known_newest, action=_action_name(flight))
            flight.request_seen = found[-1] if found else None  # the first after the older migrations: this one
        return flight.request_seen

    def _received_unmigrated(self, flight: _Flight, server: ServerStatus, request: ActionRecord,
                             state: _RunState) -> None:
        """nova received the request (its instance action is there) yet shows no migration, and the server idle."""
        why = self._cloud.failure_reason(flight.server_id, request.request_id, action=_action_name(flight))
        result = f", {request.message}" if request.message else ""
        self._finish(state, flight.step, "failed",
                     f"{flight.ambiguous}; nova received it (request {request.request_id} at {request.start_time}"
                     f"{result}) but shows no migration for it and the server {server.status} on {server.host} with "
                     f"no task" + (f": {why}" if why else ""), flight=flight, advice=Advice("rerun"))

    def _found_answer(self, flight: _Flight, record: MigrationRecord) -> None:
        """The migration of an unanswered request appeared: say so, and report it started."""
        flight.found_note = f"{flight.ambiguous}; nova shows migration {record.id} ({record.status}): adopted"
        self._reporter.started(flight.step, flight.submission)

    def _no_answer(self, flight: _Flight, server: ServerStatus, state: _RunState) -> None:
        """The grace ran out and nova shows no migration for the request, no instance action for it either, and the
        server idle or busy with another task: say what is known."""
        waited = self._clock.now() - flight.answered_at
        action = _action_name(flight)
        if server.task_state is None and server.status != "MIGRATING":
            seen = (f"after {waited:.0f} s nova shows no migration for it and the server {server.status} on "
                    f"{server.host} with no task, nor a {action} request among its instance actions")
        else:
            seen = (f"after {waited:.0f} s nova shows no migration for it, nor a {action} request among its instance "
                    f"actions, and the server {server.status} on {server.host} busy with another task "
                    f"({server.task_state})")
        if flight.unanswered:
            self._finish(state, flight.step, "not_started",
                         f"{flight.ambiguous}; {seen}: nova did not carry it out; not sent again", flight=flight)
        else:
            self._finish(state, flight.step, "failed",
                         f"{flight.ambiguous}; {seen}: nova started no migration", flight=flight,
                         advice=Advice("rerun"))

    # -- watching -------------------------------------------------------------------------------------------

    def _next_pause(self, state: _RunState) -> float:
        opts = self._options
        now = self._clock.now()
        # The next round comes when the first flight is expected to end (or to have ended, when it runs late), and
        # at the regular pace while some flight has no expected end ahead (it is being found, aborted, forced, late
        # past every estimate, or coming to rest). With an end ahead for every flight, only the quiet pace bounds
        # the pause: it is what sees an unexpected end, and nova's new saves of long migrations' counters.
        ends = [self._end_in(f, now) for f in state.flights.values()]
        regular = opts.poll_s if any(end is None for end in ends) else opts.quiet_poll_s
        # A running flight's timeout is a decision too: the round comes as it runs out.
        timeouts = [due - now for f in state.flights.values()
                    if f.abort is None and f.ended_at is None
                    and (due := f.submitted_at + opts.timeout_s + opts.min_poll_s) > now]
        return max(opts.min_poll_s, min([regular, *(end for end in ends if end is not None), *timeouts]))

    def _end_in(self, flight: _Flight, now: float) -> float | None:
        """How long to wait before looking for the flight's end (None: no end expected, the regular pace)."""
        if flight.abort is not None or flight.ended_at is not None:
            return None
        if flight.record is None or flight.record.terminal or flight.cold or flight.forced_at is not None:
            return None
        poll = self._options.poll_s
        # The sooner of the measured end and the plan's (until the plan's is a round late): a measured end can be
        # late by the age of nova's last save, and looking a little early costs a read or two.
        progress = flight.progress
        fresh = [e for e in (progress.expected_end, progress.planned_end) if e is not None and now < e + poll]
        end = min(fresh) if fresh else None
        if end is None:
            return None
        if end > now:
            return end - now
        # Late: look again after as long as it is late already (a close miss is seen at once), at most 4 times a round.
        return min(poll / 4, now - end)

    def _watch_round(self, state: _RunState) -> None:
        try:
            self._read_records(state)
        except CloudError:
            now = self._clock.now()
            if state.failing_since is None:
                state.failing_since = now
            if now - state.failing_since > self._options.outage_s:
                raise
            return
        state.failing_since = None
        for flight in list(state.flights.values()):
            try:
                self._judge(flight, state)
            except CloudError as error:
                if error.status == 404:
                    self._finish(state, flight.step, "failed", "the server no longer exists", flight=flight)
                elif self._clock.now() - flight.submitted_at > self._flight_limit:
                    self._finish(state, flight.step, "failed",
                                 f"could not confirm the outcome ({error.problem})",
                                 flight=flight, unresolved=True, advice=Advice("check"))

    def _read_records(self, state: _RunState) -> None:
        """One watch round's reads: one shared os-migrations query for every live migration in flight (new ones
        found in it too), a server's own listing only for a new record the query cannot show yet."""
        flights = list(state.flights.values())
        now = self._clock.now()
        since = self._changes_since(state)
        for flight in flights:
            # A new cold migration, or a live one before any change stamp is known (the first of a run) or still
            # not in the shared query a few rounds after its request (nova leaves updated_at empty at creation).
            if flight.record is None and (flight.cold or since is None
                                          or now - flight.answered_or_submitted > 2 * self._options.poll_s):
                self._find_record(flight, state)
        for flight in flights:
            if flight.cold and flight.record is not None:  # os-migrations' watch query lists live migrations only
                record_id = flight.record.id
                flight.record = next((r for r in self._cloud.cold_migrations(flight.server_id) if r.id == record_id),
                                     flight.record)
        live = [f for f in flights if not f.cold]
        if not live:
            return
        if since is None:
            created = [f.record.created_at for f in live if f.record is not None]
            if not created:
                return
            since = min(created)
        listed = self._cloud.watch({f.server_id for f in live}, since)
        self._saw(state, listed)
        by_id = {r.id: r for r in listed}
        for flight in live:
            if flight.record is not None:
                flight.record = by_id.get(flight.record.id, flight.record)
                continue
            new = sorted((r for r in listed if r.server_id == flight.server_id and r.id not in flight.known_ids),
                         key=lambda r: r.id)
            if new:
                self._found(flight, new[0])

    def _changes_since(self, state: _RunState) -> str | None:
        """The shared watch's changes-since: the newest change seen less the margin; None before any."""
        if state.newest_change_s is None:
            return None
        when = datetime.fromtimestamp(state.newest_change_s - self._options.changes_margin_s, timezone.utc)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def _saw(state: _RunState, records: Iterable[MigrationRecord]) -> None:
        for record in records:
            if record.updated_s is not None and record.migration_type != "migration":
                state.newest_change_s = max(state.newest_change_s or record.updated_s, record.updated_s)

    def _found(self, flight: _Flight, record: MigrationRecord) -> None:
        flight.record = record
        if flight.ambiguous:
            self._found_answer(flight, record)

    def _find_record(self, flight: _Flight, state: _RunState) -> None:
        records = _migrations_of(self._cloud, flight.server_id, flight.cold)
        self._saw(state, records)
        for record in sorted(records, key=lambda r: r.id):
            if record.id not in flight.known_ids:
                self._found(flight, record)
                return
        if flight.ambiguous:
            flight.known_newest = max((r.created_at for r in records), default=None)

    def _judge(self, flight: _Flight, state: _RunState) -> None:
        now = self._clock.now()
        if now - flight.submitted_at > self._flight_limit:
            status = flight.record.status if flight.record else "not yet recorded"
            self._finish(state, flight.step, "failed",
                         f"still {status} after {self._flight_limit:.0f} s",
                         flight=flight, unresolved=True, advice=Advice("check"))
            return
        record = flight.record
        if record is None:
            self._judge_unrecorded(flight, state)
        elif record.terminal:
            self._judge_ended(flight, record, state)
        elif flight.abort is not None:
            self._judge_aborting(flight, flight.abort, record, state)
        elif flight.cold:
            self._judge_cold(flight, record, state)
        else:
            self._judge_running(flight, record, state)

    def _judge_unrecorded(self, flight: _Flight, state: _RunState) -> None:
        """No migration record yet: nova may still be creating it, or (after an unclear failure) never will."""
        now = self._clock.now()
        opts = self._options
        if flight.ambiguous and now - flight.answered_at <= opts.ambiguous_grace_s:
            return
        if not flight.ambiguous and now - flight.submitted_at <= opts.record_wait_s:
            return
        server = self._cloud.server_status(flight.server_id)
        busy = server.task_state is not None or server.status == "MIGRATING"
        if flight.ambiguous:
            # nova's API records the instance action right after it sets the task state, long before the grace
            # ends: busy without it is another task, and idle with it is a request nova received and gave up.
            request = self._request_seen(flight)
            if busy and request is None:
                self._no_answer(flight, server, state)
                return
            if not busy and request is not None:
                self._received_unmigrated(flight, server, request, state)
                return
        if busy and now - flight.submitted_at <= opts.timeout_s:
            return  # nova is working on it; keep looking for the record until the timeout
        if flight.ambiguous and not busy:
            self._no_answer(flight, server, state)
            return
        reason = self._reason(flight, None)
        if busy:
            self._finish(state, flight.step, "failed",
                         f"nova accepted the request but recorded no migration within {opts.timeout_s:.0f} s "
                         f"while the server stays busy (task {server.task_state})",
                         flight=flight, unresolved=True, advice=Advice("check"))
        else:
            self._finish(state, flight.step, "failed",
                         reason or f"nova accepted the request but started no migration "
                                   f"(server {server.status} on {server.host})", flight=flight)

    def _judge_cold(self, flight: _Flight, record: MigrationRecord, state: _RunState) -> None:
        """A cold migration not ended yet: confirm it once nova has finished it (VERIFY_RESIZE); it cannot be
        aborted, so at the timeout it is left to nova, holding its source's slot."""
        now = self._clock.now()
        opts = self._options
        self._reporter.progress(flight.step, record)
        if record.status == COLD_FINISHED:
            if flight.confirmed_at is None or now - flight.confirmed_at >= opts.abort_retry_s:
                # Sent again after a while if the record stays `finished`: an API error may have eaten the confirm,
                # and what nova refused (its source's service down) may pass.
                flight.confirmed_at = now
                self._confirm_resize(flight)
            refused_at = flight.confirm_refused_at
            if refused_at is not None and now - refused_at >= opts.confirm_wait_s:
                target = flight.step.move.target
                self._finish(state, flight.step, "failed",
                             f"the cold migration finished, but nova refused to confirm it for {now - refused_at:.0f} "
                             f"s ({flight.confirm_refusal}): the server waits VERIFY_RESIZE on {target}, its source "
                             f"{flight.step.move.source} still holds its disk and its resources",
                             flight=flight, unresolved=True, advice=Advice("confirm_cold", target))
            return
        if now - flight.submitted_at > opts.timeout_s:
            self._finish(state, flight.step, "timed_out",
                         f"cold migration still {record.status} after {opts.timeout_s:.0f} s; nova cannot abort a "
                         "cold migration, so it was left running (it keeps its source's slot)",
                         flight=flight, unresolved=True, advice=Advice("confirm_cold", flight.step.move.target))

    def _confirm_resize(self, flight: _Flight) -> None:
        """Send confirmResize; nova's refusal (4xx) is kept on the flight, a failure on the way is raised (retried)."""
        try:
            self._cloud.confirm_resize(flight.server_id)
        except CloudError as error:
            if error.status is None or error.status >= 500 or error.status == 404:
                raise
            if flight.confirm_refused_at is None:
                flight.confirm_refused_at = self._clock.now()
                flight.confirm_refusal = error.problem

    def _judge_aborting(self, flight: _Flight, abort: _Abort, record: MigrationRecord, state: _RunState) -> None:
        self._reporter.progress(flight.step, record)
        if abort.refused_in and (
            abort.refused_in != record.status or self._clock.now() - abort.sent_at >= self._options.abort_retry_s
        ):
            # Nova refuses to abort in some states (queued below 2.65), and an API error may eat the request:
            # try again once the state moved on, or after a while.
            self._send_abort(flight, abort)
        if self._clock.now() - abort.since > self._options.abort_wait_s:
            self._finish(state, flight.step, abort.outcome,
                         f"{'; '.join([abort.problem, *(t for _, t in abort.trouble)])}; "
                         f"abort requested, but the migration is still {record.status} after "
                         f"{self._options.abort_wait_s:.0f} s", flight=flight, unresolved=True, advice=Advice("check"))

    def _judge_running(self, flight: _Flight, record: MigrationRecord, state: _RunState) -> None:
        now = self._clock.now()
        opts = self._options
        self._reporter.progress(flight.step, record)
        if flight.forced_at is not None or record.status == POST_COPY:
            self._judge_forced(flight, record, state)
            return
        if now - flight.submitted_at > opts.timeout_s:
            # Read this migration directly before acting: a completion the watch query missed must not be aborted.
            latest = next((r for r in self._cloud.live_migrations(flight.server_id) if r.id == record.id), record)
            flight.record = latest
            if latest.terminal:
                self._judge_ended(flight, latest, state)
            elif opts.on_timeout == "force-complete":
                self._force_or_abort(flight, self._timeout_facts(flight, latest), "timeout")
            elif opts.on_timeout == "leave":
                self._finish(state, flight.step, "timed_out",
                             f"still {latest.status} after {opts.timeout_s:.0f} s",
                             flight=flight, advice=Advice("left_running"))
                # Still running in nova: it keeps its source's slot, or the next move from there would queue behind.
                state.held.setdefault(flight.step.move.source, []).append(flight.step.move.server_name)
            else:
                self._abort(flight, f"not completed within {opts.timeout_s:.0f} s")
            return
        if record.status == "running" and now >= flight.progress.next_read_at and self._wants_counters(flight, now) \
                and self._read_progress(flight):
            self._judge_stall(flight)

    def _wants_counters(self, flight: _Flight, now: float) -> bool:
        """Whether reading the migration's byte counters now can change a decision.

        Only when nova saved them again since the last read (the record's updated_at moved on), and then when no
        estimate says when it ends, when that end is more than a rate window away (a measured end may move when to
        look), when the migration runs past it (the estimate was wrong: measure it, and let the stall rule see it),
        or once the stall rule holds saves of it (it judges on every save from then on).
        """
        assert flight.record is not None
        if flight.record.updated_at is not None and flight.record.updated_at == flight.read_stamp:
            return False
        planned = flight.progress.planned_end
        if planned is None or now >= planned or planned - now > self._options.rate_window_s:
            return True
        return flight.stall is not None and bool(flight.stall.samples)

    def _read_progress(self, flight: _Flight) -> bool:
        """Read the migration's byte counters; True when nova had saved them anew (the stall rule saw them)."""
        detail = self._cloud.migration_progress(flight.server_id, flight.record.id if flight.record else 0)
        return self._take_progress(flight, detail)

    def _take_progress(self, flight: _Flight, detail: MigrationRecord | None) -> bool:
        """Take one read of the migration's byte counters (None: nova no longer lists it in progress)."""
        now = self._clock.now()
        opts = self._options
        flight.read_stamp = flight.record.updated_at if flight.record else None
        progress = flight.progress
        progress.next_read_at = now + opts.progress_every_s
        read_before, progress.read_at = progress.read_at, now
        if detail is None or detail.memory_remaining_bytes is None:
            return False
        self._reporter.progress(flight.step, detail)
        sample = Sample(detail.updated_s, now, detail.memory_processed_bytes or 0, detail.memory_remaining_bytes)
        if sample.saved_s is not None:  # nova's clock against ours: a save is never seen before it happens
            seen_after = now - sample.saved_s
            self._offset = seen_after if self._offset is None else min(self._offset, seen_after)
        if not progress.add(sample, opts.rate_window_s):
            return False  # nova has not saved the counters again yet
        self._stall_watch(flight).add(sample)
        if len(progress.samples) == 1:
            # One save gives no rate: look again soon, so short migrations get an expected end too.
            progress.next_read_at = now + min(opts.progress_every_s, 0.5)
            return True
        base = progress.samples[0]
        if sample.since(base) <= 0:
            return True
        # From when nova saved the counters (on our clock), not from now: they may be a few seconds old.
        saved_at = save_time(now, sample.saved_s, self._offset, read_before)
        end = progress.expected_end = expected_end(base, sample, saved_at, opts.switchover_s)
        if end is not None and end - now < 2 * opts.progress_every_s:
            # Read progress again halfway to the expected end, to refine the estimate as the end nears.
            progress.next_read_at = now + max((end - now) / 2, opts.poll_s / 4)
        return True

    # -- stalls ---------------------------------------------------------------------------------------------

    def _judge_stall(self, flight: _Flight) -> None:
        """Apply the stall rule to the counters just read, and do what the operator chose (`on_stall`)."""
        facts = self._stall_watch(flight).facts()
        if facts is None:
            if flight.stall_seen is not None:  # it converges again (the guest got quieter)
                flight.stall_seen = None
                self._reporter.stalled(flight.step, None)
            return
        if self._options.on_stall == "wait":
            first = flight.stall_seen is None
            flight.stall_seen = replace(facts, action="wait")
            if first:
                self._reporter.stalled(flight.step, flight.stall_seen)
            return
        facts = self._still_stalled(flight)
        if facts is not None:
            self._force_or_abort(flight, facts, "stall", force=self._options.on_stall == "force-complete")

    def _still_stalled(self, flight: _Flight) -> StallFacts | None:
        """Read the migration once more right before acting on its stall: the stall's figures by that read, or None
        when it is no longer `running` (it completed, failed or went post-copy meanwhile: the watch judges it) or
        no longer stalled (a new save made a new minimum). The verdict came from counters nova saved seconds ago,
        and an abort or a force sent to a migration that has just ended or recovered is the wrong act."""
        assert flight.record is not None
        fresh = self._cloud.migration_progress(flight.server_id, flight.record.id)
        if fresh is None or fresh.status != "running":
            return None
        self._take_progress(flight, fresh)
        facts = self._stall_watch(flight).facts()
        if facts is None and flight.stall_seen is not None:
            flight.stall_seen = None
            self._reporter.stalled(flight.step, None)
        return facts

    def _stall_watch(self, flight: _Flight) -> StallWatch:
        if flight.stall is None:
            flight.stall = StallWatch(self._options.stall_s)
        return flight.stall

    def _timeout_facts(self, flight: _Flight, record: MigrationRecord) -> StallFacts:
        """The figures to force on at the timeout: the last saves' rates (an endless pause when none were read)."""
        watch = self._stall_watch(flight)
        seen = watch.samples[-1] if watch.samples else None
        remaining = seen.remaining if seen else record.memory_remaining_bytes or record.memory_total_bytes or 0
        copy, dirty = watch.rates() or (0.0, 0.0)
        stalled = flight.stall_seen.stalled_s if flight.stall_seen else 0.0
        return StallFacts(remaining, copy, dirty, stalled, predicted_pause_s=predicted_pause(remaining, copy))

    def _force_or_abort(self, flight: _Flight, facts: StallFacts, trigger: str, force: bool = True) -> None:
        """Force the migration to complete if the predicted pause is within the budget, else abort it."""
        opts = self._options
        assert flight.record is not None
        if force and facts.predicted_pause_s <= opts.max_pause_s:
            flight.stall_seen = replace(facts, action="force-complete", trigger=trigger)
            flight.forced_at = self._clock.now()
            self._reporter.stalled(flight.step, flight.stall_seen)
            # Refused (400: no longer `running`, it ended or switched to post-copy; 409: the server is not migrating
            # any more) or lost: the record says what became of it, judged as any other.
            with contextlib.suppress(CloudError):
                self._cloud.force_complete_migration(flight.server_id, flight.record)
            return
        flight.stall_seen = replace(facts, action="abort", trigger=trigger, pause_too_long=force)
        self._reporter.stalled(flight.step, flight.stall_seen)
        if trigger == "stall":
            self._abort(flight, "stalled", outcome="stalled")
        else:
            self._abort(flight, f"not completed within {opts.timeout_s:.0f} s")

    def _judge_forced(self, flight: _Flight, record: MigrationRecord, state: _RunState) -> None:
        """A forced (or post-copy) migration: nova cannot abort it any more, so hostmap waits for its end, reading
        the counters on; one still running `abort_wait_s` after the force is aborted (the force did not take)."""
        now = self._clock.now()
        opts = self._options
        if record.status == "running" and flight.forced_at is not None and now - flight.forced_at > opts.abort_wait_s:
            self._abort(flight, f"force-complete did not finish within {opts.abort_wait_s:.0f} s",
                        outcome="stalled" if flight.stall_seen and flight.stall_seen.trigger == "stall"
                        else "timed_out")
            return
        if now >= flight.progress.next_read_at:
            self._read_progress(flight)

    def _abort(self, flight: _Flight, why: str, outcome: Outcome = "timed_out") -> None:
        flight.abort = _Abort(self._clock.now(), why, outcome)
        self._send_abort(flight, flight.abort)

    def _send_abort(self, flight: _Flight, abort: _Abort) -> None:
        assert flight.record is not None
        abort.sent_at = self._clock.now()
        try:
            self._cloud.abort_migration(flight.server_id, flight.record)
        except CloudError as error:
            abort.refused_in = flight.record.status
            refused = error.status is not None and error.status < 500
            if not any(status == error.status for status, _ in abort.trouble):
                said = "nova refused the abort" if refused else "the abort request failed"
                abort.trouble.append((error.status, f"{said} while {flight.record.status} ({error.problem})"))
        else:
            abort.refused_in = ""

    def _reason(self, flight: _Flight, record: MigrationRecord | None) -> str | None:
        """Nova's recorded reason for a failure; best effort, since the outcome does not depend on it."""
        try:
            return self._cloud.failure_reason(flight.server_id, flight.submission.request_id,
                                              record.created_at if record is not None else None,
                                              action="migrate" if flight.cold else "live-migration")
        except CloudError:
            return None

    def _judge_ended(self, flight: _Flight, record: MigrationRecord, state: _RunState) -> None:
        """The record ended: decide the outcome from it and the server together, once the server is at rest."""
        now = self._clock.now()
        move = flight.step.move
        if flight.ended_at is None:
            flight.ended_at = now
        server = self._cloud.server_status(flight.server_id)
        at_rest = server.task_state is None and server.status != "MIGRATING"
        if not at_rest and now - flight.ended_at <= self._options.rest_wait_s:
            return
        where = f"server is {server.status} on {server.host}" + (f" (task {server.task_state})"
                                                                 if server.task_state else "")
        if record.status in ("completed", "done", "confirmed"):
            expected = _expected(flight)
            if server.host == move.target and server.status in expected and at_rest:
                self._finish(state, flight.step, "migrated", self._post_check(flight, state), flight=flight)
            else:
                self._finish(state, flight.step, "failed",
                             f"nova reports the migration completed, but the {where}, expected "
                             f"{' or '.join(sorted(expected))} on {move.target}", flight=flight)
            return
        assert record.status in UNSUCCESSFUL_STATUSES or record.status == "reverted"
        expected = _expected(flight)
        back_as_before = server.host == move.source and server.status in expected and at_rest
        if flight.abort is not None:
            abort = flight.abort
            back = f"confirmed on its source, {server.status}" if back_as_before else f"NOT back as before: {where}"
            # A 409 (the server no longer migrating) before nova reports the migration cancelled answered a resent
            # DELETE whose first answer was lost: the abort did its job, so it is not reported as refused.
            answered = record.status == "cancelled"
            trouble = [text for status, text in abort.trouble if not (status == 409 and answered)]
            problem = "; ".join([abort.problem, *trouble])
            self._finish(state, flight.step, abort.outcome,
                         f"{problem}; aborted (migration {record.status}), server {back}", flight=flight)
            return
        reason = self._reason(flight, record)
        if reason:
            text = f"migration {record.status}: {reason}"
        elif record.status == "cancelled":
            text = ("migration cancelled by nova, not by hostmap: most likely its completion timeout ran out "
                    "(libvirt live_migration_completion_timeout, 800 s per GiB of RAM by default); "
                    f"nova-compute's log on {move.source} says why")
        else:
            text = f"migration {record.status}; nova records no reason: nova-compute's log on {move.source} has it"
        if not back_as_before:
            text += f"; {where}"
        self._finish(state, flight.step, "failed", text, flight=flight)

    # -- health checks (--check) ----------------------------------------------------------------------------

    def _check(self, step: Step, phase: Phase) -> CheckResult | None:
        """Run the operator's check for `step` (None without --check), and report it."""
        if self._options.check is None:
            return None
        m = step.move
        result = self._options.check(CheckCall(phase, m.server_id, m.server_name, m.source, m.target))
        self._reporter.checked(step, result)
        return result

    def _post_check(self, flight: _Flight, state: _RunState) -> str:
        """The check after a completed migration: the words of its failure ("" when it passed or none is set);
        a failure stops the moves of the server's groups."""
        post = self._check(flight.step, "post")
        if post is None:
            return ""
        flight.checks = (*flight.checks, post)
        if post.ok:
            return ""
        for group in flight.step.move.groups:
            state.closed_groups.setdefault(group, flight.step.move.server_name)
        return check_words(post, self._options.check_timeout_s)

    # -- results --------------------------------------------------------------------------------------------

    def _finish(
        self, state: _RunState, step: Step, outcome: Outcome, reason: str, *,
        flight: _Flight | None = None, started: float | None = None, unresolved: bool = False,
        advice: Advice | None = None, checks: tuple[CheckResult, ...] = (),
    ) -> None:
        now = self._clock.now()
        move = step.move
        # An adopted flight counts its timeout from before this run; its row reports the time this run watched it.
        begun = max(flight.submitted_at, self._start) if flight is not None else started
        if flight is not None and flight.found_note:
            reason = f"{flight.found_note}; {reason}" if reason else flight.found_note
        if flight is not None and flight.kept_running:
            reason = f"{flight.kept_running}; {reason}" if reason else flight.kept_running
        result = MoveResult(
            move.server_id, move.server_name, move.source, move.target, outcome, reason,
            seconds=None if begun is None else now - begun,
            started_s=None if begun is None else begun - self._start,
            finished_s=None if begun is None else now - self._start,
            migration_id=flight.record.id if flight is not None and flight.record is not None else None,
            unresolved=unresolved,
            cold=move.cold,
            advice=advice,
            stall=flight.stall_seen if flight is not None else None,
            checks=flight.checks if flight is not None else checks,
        )
        state.results[step.index] = result
        state.flights.pop(step.index, None)
        if unresolved and flight is not None and (flight.record is None or not flight.record.terminal):
            state.held.setdefault(move.source, []).append(move.server_name)
        if self._options.stop_on_failure and outcome in ("failed", "timed_out"):
            state.stop_reason = state.stop_reason or f"stopped after the move of {move.server_name} {outcome}"
        if outcome == "migrated":
            self._reporter.finished(step, result)
        else:
            self._reporter.failed(step, result)

    @staticmethod
    def _merge(plan: Plan, results: Mapping[int, MoveResult]) -> tuple[MoveResult, ...]:
        """One row per server: a detour's two legs become one move from the source to the final host."""
        rows: dict[str, MoveResult] = {}
        for step in plan.steps:
            leg = results[step.index]
            final = step.move.final_target or step.move.target
            first = rows.get(leg.server_id)
            if first is None:
                rows[leg.server_id] = replace(leg, target=final) if step.move.is_detour and leg.outcome != "migrated" \
                    else leg
                continue
            if first.outcome != "migrated":
                continue
            # The first leg of a detour reached the pivot; the row reports the whole journey, waits included.
            via = f"via {first.target}"
            outcome = leg.outcome
            advice = leg.advice
            if leg.outcome == "skipped":
                via = f"via {first.target}, then on to {final} by someone else"
            elif leg.outcome != "migrated" and not leg.unresolved:
                # Its own outcome: the server is neither on its source nor on its target, but on the pivot.
                outcome = "stranded"
                via = (f"on pivot {first.target}: its second leg {leg.outcome.replace('_', ' ')}; "
                       f"move it to {final} when possible")
                advice = Advice("finish_detour", final)
            elif leg.outcome != "migrated":
                via = f"via {first.target}, second leg unconfirmed"
            started = first.started_s
            rows[leg.server_id] = replace(
                leg,
                outcome=outcome,
                source=first.source,
                reason=f"{via}; {leg.reason}" if leg.reason else via,
                seconds=None if leg.finished_s is None or started is None else leg.finished_s - started,
                started_s=started,
                advice=advice,
                checks=first.checks + leg.checks,
            )
        return tuple(rows.values())
