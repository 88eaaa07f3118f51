"""The event stream (`--events FILE`): every event of a run as one JSON object a line, written as it happens.

`EventReporter` is one more reporter on the seam the core tells; the CLI also hands it what happens around the
executor (the run's id, prompts answered, compute services switched, the run's end).  `EventStream` writes the
lines from a thread of its own through a bounded queue, flushing each, so a slow or closed consumer never stalls
or breaks the run: when the queue is full a line is dropped (and counted), when a write fails the stream is lost
(and said once).  The vocabulary is documented in docs/events.md; `EVENT_FIELDS` is its checked form.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any

from hostmap.advice import explained
from hostmap.clock import Clock
from hostmap.cloud.base import MigrationRecord, Submission
from hostmap.executor import Answer, Confirm
from hostmap.journal import ServiceChange
from hostmap.model import Plan, Step
from hostmap.progress import Sample, expected_end
from hostmap.reporter import Reporter
from hostmap.results import MoveResult, RunResult
from hostmap.serialise import check_json, stall_json
from hostmap.stall import StallFacts

log = logging.getLogger("hostmap.events")

#: The version of the vocabulary below; a consumer checks it in each line's `v`.
EVENTS_VERSION = 1

#: Fields every line has.
COMMON_FIELDS = ("v", "event", "time", "run_s", "run")
#: The fields of a move (a step of the plan: a detour's two legs are two steps).
_STEP = ("step", "server_id", "server", "source", "target")
#: The fields of an ended move: the step's and its outcome, as the report's rows give them.
_RESULT = (*_STEP, "outcome", "reason", "seconds", "started_s", "finished_s", "migration_id", "unresolved", "cold",
           "stall", "checks")

#: Each event and the fields it carries besides `COMMON_FIELDS` (a field is null where it is not known).
EVENT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "run_started": (),
    "planned": ("moves", "in_place", "estimated_s"),
    "prompt_answered": (*_STEP, "answer"),
    "submitted": (*_STEP, "request_id", "cold"),
    "progress": (*_STEP, "migration_id", "status", "total_bytes", "processed_bytes", "remaining_bytes",
                 "rate_bytes_s", "expected_end_s"),
    "stalled": (*_STEP, "stalled", "stall"),
    "finished": _RESULT,
    "aborted": _RESULT,
    "failed": _RESULT,
    "host_disabled": ("host", "reason"),
    "host_enabled": ("host",),
    "run_ended": ("reached", "interrupted", "error", "makespan_s", "estimated_s", "estimate_error", "exit_code",
                  "dropped"),
}


class EventStream:
    """JSON lines to `handle`, one per event, written and flushed by a thread of its own.

    `on_lost` is told once, from that thread, when a write fails (a closed pipe, a full disk): the stream stops
    there and the run goes on.
    """

    def __init__(self, handle: IO[str], *, on_lost: Callable[[str], None], capacity: int = 10_000,
                 close_handle: bool = True) -> None:
        self._handle = handle
        self._on_lost = on_lost
        self._close_handle = close_handle
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=capacity)
        self.lost: str | None = None
        #: Lines dropped because the consumer was too slow (the queue was full).
        self.dropped = 0
        self._thread = threading.Thread(target=self._write, name="hostmap-events", daemon=True)
        self._thread.start()

    def emit(self, event: Mapping[str, Any]) -> None:
        """Queue one event; never blocks."""
        if self.lost is not None:
            return
        try:
            self._queue.put_nowait(json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n")
        except queue.Full:
            self.dropped += 1

    def close(self, wait_s: float = 5.0) -> None:
        """Write what is queued (for at most `wait_s`), then close; a consumer that reads nothing is left behind."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=wait_s)
        self._thread.join(wait_s)
        if self._thread.is_alive():
            return  # blocked on a consumer that does not read: the daemon thread ends with the process
        if self._close_handle:
            with contextlib.suppress(OSError):
                self._handle.close()

    def _write(self) -> None:
        while (line := self._queue.get()) is not None:
            if self.lost is not None:
                continue
            try:
                self._handle.write(line)
                self._handle.flush()
            except (OSError, ValueError) as error:
                self.lost = str(error) or type(error).__name__
                self._on_lost(self.lost)


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _step(step: Step) -> dict[str, Any]:
    m = step.move
    return {"step": step.index + 1, "server_id": m.server_id, "server": m.server_name, "source": m.source,
            "target": m.target}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def aborted(result: MoveResult) -> bool:
    """Whether hostmap asked nova to abort this move's migration: at the timeout or on a stall (the executor's
    outcomes say so: `stalled` always, `timed_out` unless it was left running with --on-timeout leave)."""
    if result.outcome == "stalled":
        return True
    return result.outcome == "timed_out" and (result.advice is None or result.advice.kind != "left_running")


class EventReporter(Reporter):
    """Turns the events of one run into lines of an `EventStream`, on the run's clock."""

    def __init__(self, stream: EventStream, clock: Clock | None, *, run_id: int | None = None) -> None:
        """`clock` None: an event outside any run (its `run_s` is null)."""
        self._stream = stream
        self._clock = clock
        self._t0 = clock.now() if clock is not None else 0.0
        self.run_id = run_id
        #: Each step's last distinct save of the byte counters, and the copy rate and end measured up to it.
        self._last: dict[int, Sample] = {}
        self._measured: dict[int, tuple[float | None, float | None]] = {}

    def _emit(self, event: str, **fields: Any) -> None:
        assert set(fields) == set(EVENT_FIELDS[event]), (event, sorted(fields))
        self._stream.emit({"v": EVENTS_VERSION, "event": event, "time": _now_iso(),
                           "run_s": None if self._clock is None else round(self._clock.now() - self._t0, 3),
                           "run": self.run_id, **fields})

    # -- around the executor (the CLI tells these) -------------------------------------------------------------

    def run_started(self, run_id: int) -> None:
        """The journal opened run `run_id`: later lines carry it."""
        self.run_id = run_id
        self._emit("run_started")

    def confirming(self, confirm: Confirm | None) -> Confirm | None:
        """`confirm`, telling each answer the operator gives."""
        if confirm is None:
            return None
        inner = confirm

        def asked(step: Step, meanwhile: Callable[[], None]) -> Answer:
            answer = inner(step, meanwhile)
            self._emit("prompt_answered", **_step(step), answer=answer)
            return answer

        return asked

    def service_changed(self, change: ServiceChange) -> None:
        """A compute service the run disabled or enabled."""
        if change.action == "disabled":
            self._emit("host_disabled", host=change.host, reason=change.reason)
        else:
            self._emit("host_enabled", host=change.host)

    def run_ended(self, result: RunResult | None, exit_code: int, error: str = "") -> None:
        """The run is over (`result` None when it stopped before executing, with `error`)."""
        self._emit("run_ended", reached=None if result is None else result.reached,
                   interrupted=False if result is None else result.interrupted,
                   error=(error or (result.error if result is not None else "")) or None,
                   makespan_s=None if result is None else _rounded(result.makespan_s),
                   estimated_s=None if result is None else _rounded(result.estimated_s),
                   estimate_error=None if result is None or result.estimate_error is None
                   else round(result.estimate_error, 4),
                   exit_code=exit_code, dropped=self._stream.dropped)

    # -- the seam ----------------------------------------------------------------------------------------------

    def planned(self, plan: Plan) -> None:
        """The plan's moves and the servers already in place."""
        self._emit("planned", moves=[{**_step(s), "final_target": s.move.final_target or s.move.target,
                                      "detour": s.move.is_detour, "after": [i + 1 for i in s.after],
                                      "estimate_s": round(s.move.estimate_s, 3)} for s in plan.steps],
                   in_place=[{"server_id": s.id, "server": s.name, "host": s.host} for s in plan.in_place],
                   estimated_s=round(plan.estimated_s, 3))

    def started(self, step: Step, submission: Submission) -> None:
        """Nova accepted the request (or hostmap found its migration)."""
        self._emit("submitted", **_step(step), request_id=submission.request_id, cold=step.move.cold)

    def progress(self, step: Step, record: MigrationRecord) -> None:
        """A migration record read: its status and, when nova saved them, its byte counters and the rate."""
        now = self._clock.now() if self._clock is not None else 0.0
        if record.memory_remaining_bytes is not None:
            sample = Sample(record.updated_s, now, record.memory_processed_bytes or 0, record.memory_remaining_bytes)
            last = self._last.get(step.index)
            if last is None or (last.processed, last.remaining) != (sample.processed, sample.remaining):
                self._last[step.index] = sample
                span = 0.0 if last is None else sample.since(last)
                if last is not None and span > 0:
                    at = expected_end(last, sample, now, 0.0)
                    self._measured[step.index] = (max(0.0, (sample.processed - last.processed) / span),
                                                  None if at is None else at - self._t0)
        # A read without new counters (the migration list has none) carries the last measured rate and end.
        rate, end = self._measured.get(step.index, (None, None))
        self._emit("progress", **_step(step), migration_id=record.id, status=record.status,
                   total_bytes=record.memory_total_bytes, processed_bytes=record.memory_processed_bytes,
                   remaining_bytes=record.memory_remaining_bytes, rate_bytes_s=_rounded(rate),
                   expected_end_s=_rounded(end))

    def stalled(self, step: Step, facts: StallFacts | None) -> None:
        """Stalled (with the figures and the action), or no longer (`stalled` false)."""
        self._emit("stalled", **_step(step), stalled=facts is not None,
                   stall=None if facts is None else stall_json(facts))

    def finished(self, step: Step, result: MoveResult) -> None:
        """The server is on its target."""
        self._emit("finished", **self._result(step, result))

    def failed(self, step: Step, result: MoveResult) -> None:
        """Any other end; `aborted` first when hostmap had aborted the migration."""
        if aborted(result):
            self._emit("aborted", **self._result(step, result))
        self._emit("failed", **self._result(step, result))

    @staticmethod
    def _result(step: Step, result: MoveResult) -> dict[str, Any]:
        return {**_step(step), "outcome": result.outcome, "reason": explained(result),
                "seconds": _rounded(result.seconds), "started_s": _rounded(result.started_s),
                "finished_s": _rounded(result.finished_s), "migration_id": result.migration_id,
                "unresolved": result.unresolved, "cold": result.cold,
                "stall": None if result.stall is None else stall_json(result.stall),
                "checks": [check_json(c) for c in result.checks]}
