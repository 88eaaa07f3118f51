"""Live progress on a terminal (rich)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from hostmap.advice import explained
from hostmap.cloud.base import MigrationRecord, Submission
from hostmap.model import Plan, Step
from hostmap.reporter import Reporter
from hostmap.results import MoveResult, RunResult
from hostmap.stall import StallFacts


class _BytesOnly(ProgressColumn):
    """Shows the wrapped byte column for migration lines and a count of migrations for the overall bar."""

    def __init__(self, inner: ProgressColumn, overall: bool) -> None:
        super().__init__()
        self._inner = inner
        self._overall = overall

    def render(self, task: Task) -> Text:
        if task.fields.get("overall"):
            return Text(f"{task.completed:.0f}/{task.total:.0f} done" if self._overall else "")
        rendered = self._inner.render(task)
        return rendered if isinstance(rendered, Text) else Text(str(rendered))


class LiveDisplay(Reporter):
    """One progress line per in-flight migration (bytes, percent, rate, ETA) and an overall bar."""

    def __init__(self, out: IO[str]) -> None:
        self._console = Console(file=out)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            _BytesOnly(DownloadColumn(binary_units=True), overall=True),
            _BytesOnly(TransferSpeedColumn(), overall=False),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._tasks: dict[int, TaskID] = {}
        self._overall: TaskID | None = None
        self._running = False
        #: Verdicts of migrations that ended while a question was on screen: shown once it is answered.
        self._held: list[str] | None = None
        #: Per step index, the mark of a stalled migration on its line (what hostmap does about it).
        self._stalled: dict[int, str] = {}

    def planned(self, plan: Plan) -> None:
        """Start the display with an overall bar counting finished migrations."""
        if not plan.steps:
            return
        self._overall = self._progress.add_task("all migrations", total=len(plan.steps), overall=True)
        self._progress.start()
        self._running = True

    def started(self, step: Step, submission: Submission) -> None:
        """Add a line for a migration nova accepted."""
        m = step.move
        self._tasks[step.index] = self._progress.add_task(f"{m.server_name}: {m.source} -> {m.target}", total=None)

    def progress(self, step: Step, record: MigrationRecord) -> None:
        """Update a line from a fresh migration record."""
        task = self._tasks.get(step.index)
        if task is None:
            return
        m = step.move
        desc = f"{m.server_name}: {m.source} -> {m.target} [{record.status}]{self._stalled.get(step.index, '')}"
        if record.memory_total_bytes:
            self._progress.update(task, description=desc, total=record.memory_total_bytes,
                                  completed=record.memory_processed_bytes or 0)
        else:
            self._progress.update(task, description=desc)

    def stalled(self, step: Step, facts: StallFacts | None) -> None:
        """Mark (or unmark) a stalled migration's line."""
        if facts is None:
            self._stalled.pop(step.index, None)
        else:
            self._stalled[step.index] = f" [yellow]STALLED {facts.stalled_s:.0f} s: {facts.action}[/]"

    def say(self, text: str) -> None:
        """Print a line above the display (never into it, nor into a question on screen)."""
        if self._held is not None:
            self._held.append(text)
            return
        self._console.print(text, highlight=False, markup=False)

    def _end(self, step: Step, text: str) -> None:
        task = self._tasks.pop(step.index, None)
        if task is not None:
            self._progress.remove_task(task)
            if self._overall is not None:  # only a migration that was started counts as done, however it ended
                self._progress.advance(self._overall)
        if self._held is not None:  # the operator is reading a question: do not print into it
            self._held.append(text)
            return
        self._console.print(text, highlight=False)

    def finished(self, step: Step, result: MoveResult) -> None:
        """Replace the line by a one-line verdict."""
        self._end(step, f"[green]migrated[/] {result.server_name} {result.source} -> {result.target} "
                        f"in {result.seconds or 0:.1f} s")

    def failed(self, step: Step, result: MoveResult) -> None:
        """Replace the line by a one-line verdict with the reason."""
        self._end(step, f"[red]{result.outcome.replace('_', ' ')}[/] {result.server_name} "
                        f"{result.source} -> {result.target}: {explained(result)}")

    def done(self, result: RunResult) -> None:
        """Stop the display."""
        if self._running:
            self._progress.stop()
            self._running = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop redrawing while the operator answers a prompt."""
        if not self._running:
            yield
            return
        self._progress.stop()
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            # Drawn again below the question and its answer: rich would otherwise move the cursor up by the height of
            # its last frame before drawing, over the lines printed meanwhile (a prompt that wrapped, the answer).
            live_render = getattr(self._progress.live, "_live_render", None)
            if live_render is not None:
                live_render._shape = None
            for text in held:
                self._console.print(text, highlight=False)
            self._progress.start()
