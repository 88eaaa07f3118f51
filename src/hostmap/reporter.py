"""The seam the core tells: events of a run; every hook does nothing unless overridden.

Beside the seam, two reporters without rich: `Reporters` fans each event out to several, and `LogReporter`
writes each to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hostmap.advice import explained
from hostmap.checks import CheckResult
from hostmap.cloud.base import MigrationRecord, Submission
from hostmap.model import Plan, Step
from hostmap.results import MoveResult, RunResult
from hostmap.stall import StallFacts
from hostmap.wording import counted

log = logging.getLogger("hostmap.run")


class Reporter:
    """Receives the executor's events; subclasses override what they display or log."""

    def planned(self, plan: Plan) -> None:
        """The plan is final and execution is about to begin."""

    def submitting(self, step: Step, known_migration_ids: frozenset[int]) -> None:
        """The live-migration request for this step is about to be sent (a journal records it first).

        Raising `HostmapError` vetoes the request: the step is not started and no further step is.
        """

    def started(self, step: Step, submission: Submission) -> None:
        """Nova accepted the live-migration request for this step (or its migration was found after a lost answer)."""

    def progress(self, step: Step, record: MigrationRecord) -> None:
        """A fresh migration record (status, bytes) was read for an in-flight step."""

    def stalled(self, step: Step, facts: StallFacts | None) -> None:
        """An in-flight step's migration is stalled (with the action hostmap takes), or no longer (None)."""

    def checked(self, step: Step, check: CheckResult) -> None:
        """A health check (`--check`) before or after the step's migration ended so."""

    def finished(self, step: Step, result: MoveResult) -> None:
        """The step ended with the server on its target."""

    def failed(self, step: Step, result: MoveResult) -> None:
        """The step ended any other way (failed, timed out, declined, not started)."""

    def done(self, result: RunResult) -> None:
        """The run is over."""


class Reporters(Reporter):
    """Fans every event out to several reporters."""

    def __init__(self, reporters: Sequence[Reporter]) -> None:
        self._reporters = tuple(reporters)

    def planned(self, plan: Plan) -> None:
        """Forward."""
        for r in self._reporters:
            r.planned(plan)

    def submitting(self, step: Step, known_migration_ids: frozenset[int]) -> None:
        """Forward."""
        for r in self._reporters:
            r.submitting(step, known_migration_ids)

    def started(self, step: Step, submission: Submission) -> None:
        """Forward."""
        for r in self._reporters:
            r.started(step, submission)

    def progress(self, step: Step, record: MigrationRecord) -> None:
        """Forward."""
        for r in self._reporters:
            r.progress(step, record)

    def stalled(self, step: Step, facts: StallFacts | None) -> None:
        """Forward."""
        for r in self._reporters:
            r.stalled(step, facts)

    def checked(self, step: Step, check: CheckResult) -> None:
        """Forward."""
        for r in self._reporters:
            r.checked(step, check)

    def finished(self, step: Step, result: MoveResult) -> None:
        """Forward."""
        for r in self._reporters:
            r.finished(step, result)

    def failed(self, step: Step, result: MoveResult) -> None:
        """Forward."""
        for r in self._reporters:
            r.failed(step, result)

    def done(self, result: RunResult) -> None:
        """Forward."""
        for r in self._reporters:
            r.done(result)


class LogReporter(Reporter):
    """Writes each event of the run to the `hostmap.run` logger."""

    def planned(self, plan: Plan) -> None:
        """Log the plan's size."""
        log.info("plan: %s, %s already in place", counted(len(plan.steps), "migration"),
                 counted(len(plan.in_place), "server"))

    def started(self, step: Step, submission: Submission) -> None:
        """Log an accepted migration."""
        m = step.move
        log.info("started: %s (%s) %s -> %s", m.server_name, m.server_id, m.source, m.target)

    def finished(self, step: Step, result: MoveResult) -> None:
        """Log a completed migration."""
        log.info("migrated: %s to %s in %.1f s", result.server_name, result.target, result.seconds or 0.0)

    def failed(self, step: Step, result: MoveResult) -> None:
        """Log any other outcome with its reason."""
        log.warning("%s: %s -> %s: %s", result.outcome, result.server_name, result.target, explained(result))


class LegRecorder(Reporter):
    """Keeps each step's own result (a detour's legs apart, as the final report merges them): for the timeline."""

    def __init__(self) -> None:
        self.legs: dict[int, MoveResult] = {}

    def finished(self, step: Step, result: MoveResult) -> None:
        self.legs[step.index] = result

    def failed(self, step: Step, result: MoveResult) -> None:
        self.legs[step.index] = result
