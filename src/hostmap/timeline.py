"""The schedule as data for a picture or a table (pure): bars per migration, planned and actual, and host milestones.

It reads the plan as its JSON document (`serialise.plan_json`, also stored in the journal), so `plan`, `apply` and
`history RUN` build it alike; `timeline_html.py` draws it. `milestones` (when each emptied host is empty, each
filled one full) is the text timeline the plan and history tables print (`serialise.milestones_json`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from hostmap.timing import touched_bytes

if TYPE_CHECKING:
    from hostmap.journal import MoveRecord

BarKind = Literal["planned", "actual"]


@dataclass(frozen=True)
class ActualMove:
    """A migration as it happened: seconds from the run's start; `step` (from 1) when known."""

    server_id: str
    server: str
    source: str
    target: str
    outcome: str
    reason: str
    start_s: float | None
    end_s: float | None
    step: int | None = None


@dataclass(frozen=True)
class Bar:
    """One migration from `start_s` to `end_s` on its source host's lane."""

    kind: BarKind
    step: int
    server: str
    server_id: str
    flavor: str
    source: str
    target: str
    start_s: float
    end_s: float
    outcome: str
    reason: str
    #: Guest memory the model copies (touched x RAM), when the flavor's RAM is known.
    bytes: float | None
    #: bytes over the bar's length, in Gbit/s.
    rate_gbps: float | None
    #: The step of the other leg of this server's detour (the leg before, or else the leg after), if any.
    linked_step: int | None = None

    @property
    def lane(self) -> str:
        """The host whose lane the bar is drawn on: its source."""
        return self.source


@dataclass(frozen=True)
class Timeline:
    """Everything the picture shows."""

    title: str
    lanes: tuple[str, ...]
    bars: tuple[Bar, ...]
    estimated_s: float
    lower_bound_s: float
    makespan_s: float | None = None


@dataclass(frozen=True)
class HostMilestone:
    """A host the schedule empties of servers or fills: when its last departure or arrival is expected to end."""

    host: str
    leaving: int
    arriving: int
    #: When the last server leaves (emptied hosts) or arrives (filled hosts), seconds from the start; None when, as
    #: it happened, one of those moves did not migrate (the host never got there).
    at_s: float | None

    @property
    def emptied(self) -> bool:
        """True when more servers leave the host than arrive for good."""
        return self.leaving > self.arriving


def _moves(plan: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    moves = plan.get("moves")
    return [m for m in moves if isinstance(m, Mapping)] if isinstance(moves, list) else []


def _num(value: object, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def planned_spans(plan: Mapping[str, Any]) -> dict[int, tuple[float, float]]:
    """Step (from 1) -> (start, end) planned; a plan stored without times is laid out one step after another."""
    spans: dict[int, tuple[float, float]] = {}
    clock = 0.0
    for move in _moves(plan):
        step = int(_num(move.get("step")))
        if "start_s" in move and "end_s" in move:
            spans[step] = (_num(move["start_s"]), _num(move["end_s"]))
        else:
            estimate = _num(move.get("estimate_s"))
            spans[step] = (clock, clock + estimate)
            clock += estimate
    return spans


def _links(plan: Mapping[str, Any]) -> dict[int, int]:
    """Step -> the step of the same server's previous leg (or, for a first leg, its next one)."""
    by_server: dict[str, list[int]] = {}
    for move in _moves(plan):
        by_server.setdefault(str(move.get("id", "")), []).append(int(_num(move.get("step"))))
    links: dict[int, int] = {}
    for steps in by_server.values():
        for before, after in itertools.pairwise(steps):
            links[after] = before
            links.setdefault(before, after)
    return links


def _rate(size: float | None, start: float, end: float) -> float | None:
    return size * 8.0 / (end - start) / 1e9 if size is not None and end > start else None


def build_timeline(
    plan: Mapping[str, Any], *, title: str, actual: Sequence[ActualMove] | None = None,
    ram_mb: Mapping[str, int] | None = None, touched: float = 0.7, makespan_s: float | None = None,
) -> Timeline:
    """The bars of `plan` (its JSON document) and, when given, of the migrations as they happened.

    Each bar's bytes and rate come from the RAM of the plan's moves (`ram_mb`) or the `ram_mb` mapping (server id ->
    MiB); actual moves match planned steps by `step`, else by server, source and target in plan order.
    """
    ram = {str(m.get("id")): int(_num(m.get("ram_mb"))) for m in _moves(plan) if m.get("ram_mb")}
    ram.update(ram_mb or {})
    spans, links = planned_spans(plan), _links(plan)
    bars: list[Bar] = []
    planned: dict[int, Mapping[str, Any]] = {}
    for move in _moves(plan):
        step = int(_num(move.get("step")))
        planned[step] = move
        start, end = spans[step]
        sid = str(move.get("id", ""))
        size = touched_bytes(ram[sid], touched) if sid in ram else None
        via = f"detour via {move.get('target')} to {move.get('final_target')}" if move.get("detour") else ""
        bars.append(Bar("planned", step, str(move.get("server", "")), sid, str(move.get("flavor", "")),
                        str(move.get("source", "")), str(move.get("target", "")), start, end, "planned", via, size,
                        _rate(size, start, end), links.get(step)))
    unmatched: dict[tuple[str, str, str], list[int]] = {}
    for step, move in sorted(planned.items()):
        unmatched.setdefault((str(move.get("id")), str(move.get("source")), str(move.get("target"))), []).append(step)
    for m in actual or ():
        queue = unmatched.get((m.server_id, m.source, m.target), [])
        matched = m.step if m.step is not None else (queue[0] if queue else None)
        if matched in queue:
            queue.remove(matched)
        if matched is None or m.start_s is None or m.end_s is None:
            continue  # never started (declined, not started, skipped): no bar of its own
        step = matched
        move = planned.get(step, {})
        size = touched_bytes(ram[m.server_id], touched) if m.server_id in ram else None
        bars.append(Bar("actual", step, m.server, m.server_id, str(move.get("flavor", "")), m.source, m.target,
                        m.start_s, m.end_s, m.outcome, m.reason, size, _rate(size, m.start_s, m.end_s),
                        links.get(step)))
    lanes = sorted({b.lane for b in bars} | {b.target for b in bars})
    return Timeline(title, tuple(lanes), tuple(bars), _num(plan.get("estimated_s")), _num(plan.get("lower_bound_s")),
                    makespan_s)


def milestones(plan: Mapping[str, Any], actual: Sequence[ActualMove] | None = None) -> list[HostMilestone]:
    """Per host the schedule empties or fills, when its last departure or arrival ends (planned, or as it happened).

    A pivot that a detour passes through gains and loses the same server and is neither.  As it happened (`actual`),
    a host whose departures (emptied) or arrivals (filled) did not all migrate has no time: it was never reached.
    """
    spans = planned_spans(plan)
    ended: dict[tuple[str, str, str], float] = {}
    if actual is not None:
        ended = {(m.server_id, m.source, m.target): m.end_s for m in actual
                 if m.outcome == "migrated" and m.end_s is not None}
    leaving: dict[str, int] = {}
    arriving: dict[str, int] = {}
    last_out: dict[str, float | None] = {}
    last_in: dict[str, float | None] = {}

    def later(seen: dict[str, float | None], host: str, end: float | None) -> None:
        before = seen.get(host, 0.0)
        seen[host] = None if before is None or end is None else max(before, end)

    for move in _moves(plan):
        step = int(_num(move.get("step")))
        source, target = str(move.get("source", "")), str(move.get("target", ""))
        end = spans[step][1] if actual is None else ended.get((str(move.get("id")), source, target))
        leaving[source] = leaving.get(source, 0) + 1
        arriving[target] = arriving.get(target, 0) + 1
        later(last_out, source, end)
        later(last_in, target, end)
    found: list[HostMilestone] = []
    for host in sorted(set(leaving) | set(arriving)):
        out, into = leaving.get(host, 0), arriving.get(host, 0)
        if out != into:
            found.append(HostMilestone(host, out, into, last_out[host] if out > into else last_in[host]))
    return sorted(found, key=lambda h: (h.at_s is None, h.at_s or 0.0, h.host))


def _stamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def journal_moves(moves: Sequence[MoveRecord]) -> list[ActualMove]:
    """A journal run's moves on the run's own clock: each starts when it started and lasts its seconds.

    The journal keeps each move's start on the run's clock (`started_s`, virtual for a rehearsal); a run journaled
    before it did (or with a move recorded without it) falls back to the wall-clock stamps of the submissions,
    on which a run on virtual time has its bars bunched at the start.
    """
    sent = [m for m in moves if m.submitted_at is not None and m.seconds is not None]
    if sent and all(m.started_s is not None for m in sent):
        return [ActualMove(m.server_id, m.server_name, m.source, m.target, m.outcome or "unknown", m.reason,
                           m.started_s, None if m.started_s is None or m.seconds is None else m.started_s + m.seconds,
                           m.step + 1) for m in moves]
    stamps = [s for s in (_stamp(m.submitted_at or m.intended_at) for m in moves) if s is not None]
    zero = min(stamps, default=0.0)
    found: list[ActualMove] = []
    for m in moves:
        at = _stamp(m.submitted_at or m.intended_at)
        start = None if at is None or m.submitted_at is None else at - zero
        end = None if start is None or m.seconds is None else start + m.seconds
        found.append(ActualMove(m.server_id, m.server_name, m.source, m.target, m.outcome or "unknown", m.reason,
                                start, end, m.step + 1))
    return found
