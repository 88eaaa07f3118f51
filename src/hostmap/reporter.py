"""The seam the core tells: events of a run; every hook does nothing unless overridden."""

from __future__ import annotations

from hostmap.cloud.base import MigrationRecord, Submission
from hostmap.model import Plan, Step
from hostmap.results import MoveResult, RunResult


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

    def finished(self, step: Step, result: MoveResult) -> None:
        """The step ended with the server on its target."""

    def failed(self, step: Step, result: MoveResult) -> None:
        """The step ended any other way (failed, timed out, declined, not started)."""

    def done(self, result: RunResult) -> None:
        """The run is over."""
