"""A reporter that writes each run to the journal: the intent before each request, then ids and outcomes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TypeVar

from hostmap.advice import explained
from hostmap.checks import CheckResult
from hostmap.cloud.base import MigrationRecord, Submission
from hostmap.journal import Journal, JournalError, now_stamp, stamp_age_s
from hostmap.model import Step
from hostmap.reporter import Reporter
from hostmap.results import MoveResult, RunResult
from hostmap.serialise import check_json, detail_json, stall_from_json, stall_json
from hostmap.stall import StallFacts

log = logging.getLogger(__name__)
T = TypeVar("T")


class JournalRecorder(Reporter):
    """Records a run's moves in the journal, keyed by step, so that a crashed run can be resumed.

    Once a write fails (a full disk, say), the recorder writes nothing more and vetoes every further request:
    `submitting` raises the `JournalError`, so no migration starts unrecorded, while the migrations already in
    flight are still watched to their end and reported.  `broken` keeps the first failure.
    """

    def __init__(self, journal: Journal, run_id: int, *, finish: bool = True) -> None:
        self._journal = journal
        self._run_id = run_id
        self._finish = finish
        self._moves: dict[int, int] = {}
        #: Per step index, the move's detail as written so far (each write adds its key to it).
        self._details: dict[int, dict[str, object]] = {}
        self._found: set[int] = set()
        self.broken: JournalError | None = None

    def _write(self, write: Callable[[], T]) -> T | None:
        """`write()`, unless the journal already failed; a failure is kept in `broken` and ends all writing."""
        if self.broken is not None:
            return None
        try:
            return write()
        except JournalError as error:
            self.broken = error
            log.error("journal write failed, recording stopped: %s", error)
            return None

    def adopt(self, step: Step, move_id: int, detail: str = "{}") -> None:
        """Continue recording an earlier run's move (found in flight after a crash) under its own id, adding to the
        detail it recorded."""
        self._moves[step.index] = move_id
        self._details[step.index] = detail_json(detail)

    def submitting(self, step: Step, known_migration_ids: frozenset[int]) -> None:
        """Write the intent durably before the request is sent."""
        m = step.move
        move_id = self._write(lambda: self._journal.intend(
            self._run_id, step=step.index, server_id=m.server_id, server_name=m.server_name,
            source=m.source, target=m.target, known_migration_ids=sorted(known_migration_ids), cold=m.cold,
        ))
        if move_id is None:
            assert self.broken is not None
            raise self.broken  # no intent on record: the request must not be sent
        self._moves[step.index] = move_id
        if step.index in self._details:  # the pre-check ran before the row existed
            self._write_detail(step)

    def started(self, step: Step, submission: Submission) -> None:
        """Record that nova accepted the request."""
        move_id = self._moves.get(step.index)
        if move_id is not None and submission.microversion:
            self._write(lambda: self._journal.accepted(move_id, submission.request_id))

    def progress(self, step: Step, record: MigrationRecord) -> None:
        """Record nova's migration id the first time it is seen."""
        move_id = self._moves.get(step.index)
        if move_id is not None and move_id not in self._found:
            self._found.add(move_id)
            self._write(lambda: self._journal.migration_found(move_id, record.id))

    def stalled(self, step: Step, facts: StallFacts | None) -> None:
        """Record the stall and the action before hostmap takes it (a resumed run knows a force was sent, and when:
        `recorded_force`)."""
        self._add_detail(step, "stall", None if facts is None else {**stall_json(facts), "at": now_stamp()})

    def checked(self, step: Step, check: CheckResult) -> None:
        """Record a health check's outcome; a failed pre-check gets a row of its own (nothing was sent), which its
        outcome `check_failed` then closes."""
        if step.index not in self._moves and check.phase == "pre" and not check.ok:
            m = step.move
            move_id = self._write(lambda: self._journal.intend(
                self._run_id, step=step.index, server_id=m.server_id, server_name=m.server_name,
                source=m.source, target=m.target, known_migration_ids=[], cold=m.cold,
            ))
            if move_id is not None:
                self._moves[step.index] = move_id
        checks = self._details.setdefault(step.index, {}).setdefault("checks", [])
        assert isinstance(checks, list)
        checks.append(check_json(check))
        self._write_detail(step)

    def _add_detail(self, step: Step, key: str, value: object) -> None:
        self._details.setdefault(step.index, {})[key] = value
        self._write_detail(step)

    def _write_detail(self, step: Step) -> None:
        move_id = self._moves.get(step.index)
        if move_id is not None:
            text = json.dumps(self._details.get(step.index, {}))
            self._write(lambda: self._journal.detail(move_id, text))

    def finished(self, step: Step, result: MoveResult) -> None:
        """Record the outcome."""
        self._outcome(step, result)

    def failed(self, step: Step, result: MoveResult) -> None:
        """Record the outcome of a move that was sent; moves never sent have no journal row."""
        self._outcome(step, result)

    def _outcome(self, step: Step, result: MoveResult) -> None:
        move_id = self._moves.get(step.index)
        if move_id is None:
            return
        migration_id = result.migration_id
        if migration_id is not None and move_id not in self._found:
            self._found.add(move_id)
            self._write(lambda: self._journal.migration_found(move_id, migration_id))
        if result.unresolved:
            return  # left unfinished on purpose: the next apply looks for this migration and watches it
        self._write(lambda: self._journal.outcome(move_id, result.outcome, explained(result), result.seconds,
                                                  result.started_s))

    def done(self, result: RunResult) -> None:
        """Close the run with its status (not when only resuming moves of earlier runs)."""
        if self._finish:
            self._write(
                lambda: self._journal.finish_run(self._run_id, reached=result.reached, interrupted=result.interrupted)
            )


def recorded_force(detail: str) -> tuple[StallFacts, float] | None:
    """The force-complete a move's journaled detail says hostmap sent (the figures it forced on, and how many
    seconds ago by this machine's clock), or None. The detail is written before the request, so a force recorded
    here may have been cut short by a crash before it left; it is never sent again either way."""
    stall = detail_json(detail).get("stall")
    facts = stall_from_json(stall)
    if facts is None or facts.action != "force-complete" or not isinstance(stall, dict):
        return None
    at = stall.get("at")
    return facts, stamp_age_s(at if isinstance(at, str) else None) or 0.0
