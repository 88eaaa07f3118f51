"""What happened to each planned move: outcomes and the run's result, as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hostmap.checks import CheckResult
from hostmap.stall import StallFacts

#: "stranded": a detour's first leg reached its pivot host and the second did not happen (the report's rows only;
#: the journal records each leg with its own outcome).
#: "stalled": hostmap aborted a migration that stopped converging (the server confirmed on its source);
#: "check_failed": the operator's pre-move health check failed, so nothing was sent.
Outcome = Literal["migrated", "failed", "timed_out", "declined", "skipped", "not_started", "stranded", "stalled",
                  "check_failed"]
#: What the operator can do next about a move that ended unclearly (see `Advice`).
AdviceKind = Literal["check", "rerun", "left_running", "confirm_cold", "finish_detour"]
#: Outcomes after which the server is where the map wants it.
GOOD_OUTCOMES: frozenset[Outcome] = frozenset({"migrated", "skipped"})


@dataclass(frozen=True)
class Advice:
    """What the operator can do next about a move; the executor names it, the CLI's readers word it
    (`advice.explained`).

    "check": nova may still be running the migration, look or run again to watch it; "rerun": nova started nothing,
    running again is safe; "left_running": left to nova on purpose (--on-timeout leave); "confirm_cold": a cold
    migration left to nova, to confirm once the server is VERIFY_RESIZE on `host`; "finish_detour": the server waits
    on a pivot host, to move on to `host`.
    """

    kind: AdviceKind
    host: str = ""


@dataclass(frozen=True)
class MoveResult:
    """The outcome of one planned move (or of a server found already in place)."""

    server_id: str
    server_name: str
    source: str
    target: str
    outcome: Outcome
    reason: str = ""
    seconds: float | None = None
    started_s: float | None = None
    finished_s: float | None = None
    migration_id: int | None = None
    #: True when hostmap could not confirm how the migration ended; the journal leaves it for the next run.
    unresolved: bool = False
    #: True for a cold migration (a SHUTOFF server moved with nova's `migrate`, then confirmed).
    cold: bool = False
    #: What the operator can do next, when there is something to do (worded by `advice.explained`).
    advice: Advice | None = None
    #: The stall hostmap saw (or the figures it forced or aborted on at the timeout), and the action it took.
    stall: StallFacts | None = None
    #: The health checks run around this move (`--check`), in order: pre, then post.
    checks: tuple[CheckResult, ...] = ()

    @property
    def check_failed(self) -> bool:
        """True when one of its health checks failed."""
        return any(not c.ok for c in self.checks)


@dataclass(frozen=True)
class RunResult:
    """All outcomes of one run, in plan order, and whether the cloud now matches the map."""

    moves: tuple[MoveResult, ...]
    makespan_s: float | None = None
    interrupted: bool = False
    #: Why the run stopped early, when it did (the API stopped answering, the journal failed, ...).
    error: str = ""
    #: True when the run stopped because keystone did not answer through its retries (the CLI exits 4).
    identity_lost: bool = False
    #: The plan's estimate of the makespan (`Plan.estimated_s`), to say how far the run was from it.
    estimated_s: float | None = None

    @property
    def estimate_error(self) -> float | None:
        """(makespan - estimate) / estimate: how much later (> 0) or sooner the run ended than planned."""
        if not self.estimated_s or self.makespan_s is None:
            return None
        return (self.makespan_s - self.estimated_s) / self.estimated_s

    @property
    def checks_failed(self) -> bool:
        """True when a health check around a move failed (the run then exits 1, even if the map was reached)."""
        return any(m.check_failed for m in self.moves)

    @property
    def reached(self) -> bool:
        """True when every server named in the map ended on its final host (a later row for a server wins)."""
        finals: dict[str, bool] = {}
        for move in self.moves:
            finals[move.server_id] = move.outcome in GOOD_OUTCOMES
        return all(finals.values())
