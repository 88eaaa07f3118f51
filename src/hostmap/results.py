"""What happened to each planned move: outcomes and the run's result, as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hostmap.stall import StallFacts

#: "stranded": a detour's first leg reached its pivot host and the second did not happen (the report's rows only;
#: the journal records each leg with its own outcome).
#: "stalled": hostmap aborted a migration that stopped converging (the server confirmed on its source);
#: "check_failed": the operator's pre-move health check failed, so nothing was sent.
Outcome = Literal["migrated", "failed", "timed_out", "declined", "skipped", "not_started", "stranded", "stalled",
                  "check_failed"]
#: Outcomes after which the server is where the map wants it.
GOOD_OUTCOMES: frozenset[Outcome] = frozenset({"migrated", "skipped"})


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
    #: The stall hostmap saw (or the figures it forced or aborted on at the timeout), and the action it took.
    stall: StallFacts | None = None


@dataclass(frozen=True)
class RunResult:
    """All outcomes of one run, in plan order, and whether the cloud now matches the map."""

    moves: tuple[MoveResult, ...]
    makespan_s: float | None = None
    interrupted: bool = False
    #: Why the run stopped early, when it did (the API stopped answering, the journal failed, ...).
    error: str = ""

    @property
    def reached(self) -> bool:
        """True when every server named in the map ended on its final host (a later row for a server wins)."""
        finals: dict[str, bool] = {}
        for move in self.moves:
            finals[move.server_id] = move.outcome in GOOD_OUTCOMES
        return all(finals.values())
