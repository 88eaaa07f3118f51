"""Final report and plan rendering: rich tables for people; the JSON for programs is built in `serialise.py`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from hostmap.advice import explained
from hostmap.journal import RunDetail, RunSummary
from hostmap.listing import Listing, cell
from hostmap.model import Inventory, Plan
from hostmap.results import RunResult
from hostmap.serialise import history_run_json, plan_json, run_json, stall_from_json, summary_json
from hostmap.stall import StallFacts
from hostmap.wording import counted

_STYLE = {"migrated": "green", "skipped": "dim", "failed": "red", "timed_out": "red", "declined": "yellow",
          "not_started": "yellow", "stranded": "red", "stalled": "red", "check_failed": "yellow"}


#: What sets a plan's lower bound (`Plan.lower_bound_by`), in words.
_BOUND_BY = {
    "longest": "the longest migration",
    "source": "the busiest source host",
    "parallel": "--parallel",
    "room:vcpu": "the cloud's free vCPUs, held on source and target during each migration",
    "room:memory_mb": "the cloud's free RAM, held on source and target during each migration",
    "room:disk_gb": "the cloud's free disk, held on source and target during each migration",
}


def _console(out: IO[str]) -> Console:
    """A console for tables: the terminal's width, or wide enough not to cut names when output is a file or pipe."""
    if out.isatty():
        return Console(file=out)
    return Console(file=out, width=200, soft_wrap=False)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def print_run(result: RunResult, out: IO[str], fmt: str, extra: Mapping[str, object] | None = None) -> None:
    """Print the final report, one row per server; `extra` keys join the JSON document (a command's own)."""
    if fmt == "json":
        out.write(json.dumps({**run_json(result), **(extra or {})}, indent=2) + "\n")
        return
    console = _console(out)
    table = Table(title="hostmap: migration report", title_justify="left")
    for column in ("server", "source", "target", "outcome", "reason", "seconds"):
        # Names are never cut short (two servers may differ only at the end): on a narrow terminal they wrap.
        table.add_column(column, justify="right" if column == "seconds" else "left", overflow="fold")
    for m in result.moves:
        style = _STYLE.get(m.outcome, "")
        outcome = f"{m.outcome} (cold)" if m.cold else m.outcome
        reason = "; ".join(r for r in (explained(m), stall_words(m.stall) if m.stall else "") if r)
        table.add_row(m.server_name, m.source, m.target, f"[{style}]{outcome}[/]", reason, _seconds(m.seconds))
    console.print(table)
    counts: dict[str, int] = {}
    for m in result.moves:
        counts[m.outcome] = counts.get(m.outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(counts.items()))
    verdict = "the cloud matches the host map" if result.reached else "the cloud does NOT match the host map"
    makespan = f" in {result.makespan_s:.1f} s" if result.makespan_s else ""
    error = result.estimate_error
    if result.makespan_s and result.estimated_s and error is not None:
        makespan += f" (estimated {result.estimated_s:.1f} s, {error:+.1%})"
    console.print(f"{summary or 'nothing to do'}{makespan}: {verdict}.", highlight=False)
    if any(m.unresolved for m in result.moves):
        console.print("Some migrations could not be confirmed; run `hostmap apply` with the same map again to "
                      "watch them to their end.", highlight=False)


def detail_words(detail: Mapping[str, Any]) -> str:
    """A journaled move's detail in words: the stall and what hostmap did about it, and the health checks."""
    facts = stall_from_json(detail.get("stall"))
    words = [stall_words(facts)] if facts is not None else []
    checks = detail.get("checks")
    for check in checks if isinstance(checks, list) else []:
        if isinstance(check, dict):
            said = "passed" if check.get("ok") else ("timed out" if check.get("timed_out")
                                                     else f"failed (exit {check.get('code')})")
            words.append(f"{check.get('phase')}-check {said}")
    return "; ".join(words)


def stall_words(facts: StallFacts) -> str:
    """A stall's figures and what hostmap did about it, in words."""
    pause = facts.predicted_pause_s
    pause_text = "an endless pause" if pause == float("inf") else f"a pause of {pause:.1f} s"
    seen = (f"stalled for {facts.stalled_s:.0f} s" if facts.trigger == "stall" and facts.stalled_s > 0
            else "at the timeout" if facts.trigger == "timeout" else "stalled")
    figures = (f"{seen}: {facts.remaining_bytes / 2**30:.2f} GiB left, copying {facts.copy_bps / 1e6:.0f} MB/s "
               f"against {facts.dirty_bps / 1e6:.0f} MB/s dirtied")
    if facts.action == "force-complete":
        return f"{figures}; force-completed ({pause_text} predicted)"
    if facts.pause_too_long:
        return f"{figures}; aborted, not forced: {pause_text} predicted, over --max-pause-s"
    if facts.action == "abort":
        return f"{figures}; aborted (--on-stall abort)"
    return f"{figures}; waited (--on-stall wait)"


def _clock(seconds: float) -> str:
    """Seconds from the start as h:mm:ss."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


_WORDS = {"empty": "empty by", "emptied": "last out by", "full": "full by"}


def _when(row: Mapping[str, Any], key: str) -> str:
    at = row.get(key)
    return f"{_WORDS[row['state']]} {_clock(at)}" if isinstance(at, int | float) else "not reached"


def print_milestones(rows: Sequence[Mapping[str, Any]], console: Console, *, actual: bool = False) -> None:
    """The text timeline: per host emptied or filled, when the schedule has it empty or full (and when it was)."""
    if not rows:
        return
    table = Table(title="hosts emptied or filled (h:mm:ss from the start)", title_justify="left")
    columns = ("host", "leaving", "arriving", "servers after", "planned", *(("actual",) if actual else ()))
    for column in columns:
        table.add_column(column, justify="right" if column in ("leaving", "arriving", "servers after") else "left",
                         overflow="fold")
    for row in rows:
        after = row.get("servers_after")
        cells = [str(row["host"]), str(row["leaving"]), str(row["arriving"]), "" if after is None else str(after),
                 _when(row, "by_s")]
        if actual:
            cells.append(_when(row, "actual_by_s"))
        table.add_row(*cells)
    console.print(table)


def plan_summary(plan: Plan) -> str:
    """The plan in one line, as the question before an interactive run shows it."""
    detours = sum(1 for step in plan.steps if step.move.is_detour)
    via = f" ({detours} of them to a pivot host on a detour)" if detours else ""
    bound_by = _BOUND_BY.get(plan.lower_bound_by, plan.lower_bound_by)
    return (f"{len(plan.steps)} migration{'' if len(plan.steps) == 1 else 's'}{via}; estimated "
            f"{plan.estimated_s:.0f} s (lower bound {plan.lower_bound_s:.0f} s, set by {bound_by})")


def print_plan(plan: Plan, inventory: Inventory, out: IO[str], fmt: str) -> None:
    """Print what would move, in order, when each host is empty or full, and what is already in place."""
    document = plan_json(plan, inventory)
    if fmt == "json":
        out.write(json.dumps(document, indent=2) + "\n")
        return
    console = _console(out)
    servers: Mapping[str, Any] = {s.id: s for s in inventory.servers}
    if plan.steps:
        table = Table(title="hostmap: plan", title_justify="left")
        for column in ("step", "server", "flavor", "source", "target", "after", "est. s"):
            table.add_column(column, justify="right" if column in ("step", "est. s") else "left", overflow="fold")
        for step in plan.steps:
            move = step.move
            server = servers.get(move.server_id)
            flavor = f"{server.flavor} ({server.demand.memory_mb} MiB)" if server else ""
            target = move.target + (f" (pivot, then {move.final_target})" if move.is_detour else "")
            target += " (cold)" if move.cold else ""
            after = ",".join(f"{i + 1}" + ("+settle" if i in step.settle_after else "") for i in step.after)
            table.add_row(str(step.index + 1), move.server_name, flavor, move.source, target, after,
                          f"{move.estimate_s:.0f}")
        console.print(table)
        print_milestones(document["milestones"], console)
    for note in plan.notes:
        console.print(f"note: {note}", highlight=False)
    if plan.in_place:
        names = ", ".join(f"{s.name} ({s.host})" for s in plan.in_place)
        console.print(f"already in place: {names}", highlight=False)
    if plan.steps:
        bound_by = _BOUND_BY.get(plan.lower_bound_by, plan.lower_bound_by)
        console.print(
            f"{counted(len(plan.steps), 'migration')}; estimated {plan.estimated_s:.0f} s "
            f"(lower bound {plan.lower_bound_s:.0f} s, set by {bound_by})"
            f" with at most {plan.max_per_host} per source host"
            + (f" and {plan.parallel} in total" if plan.parallel else ""),
            highlight=False,
        )
        settling = sum(1 for step in plan.steps if step.settle_after)
        if settling:
            console.print(
                f"{settling} of them wait {plan.group_settle_s:g} s after a member of their anti-affinity group "
                "left the target (+settle), until nova's scheduler has seen it go (--group-settle)",
                highlight=False,
            )
    else:
        console.print("nothing to migrate: the cloud already matches the host map.", highlight=False)


def print_history(runs: Sequence[RunSummary], out: IO[str], fmt: str) -> None:
    """List journal runs, newest first."""
    if fmt == "json":
        out.write(json.dumps([summary_json(r) for r in runs], indent=2) + "\n")
        return
    console = _console(out)
    if not runs:
        console.print("no runs recorded yet", highlight=False)
        return
    table = Table(title="hostmap: runs", title_justify="left")
    for column in ("run", "started", "finished", "status", "moves", "migrated", "map", "cloud"):
        table.add_column(column, justify="right" if column in ("run", "moves", "migrated") else "left", overflow="fold")
    for r in runs:
        table.add_row(str(r.id), r.started_at, r.finished_at or "", r.status, str(r.moves), str(r.migrated),
                      r.map_source, r.cloud)
    console.print(table)


def print_history_run(detail: RunDetail, out: IO[str], fmt: str) -> None:
    """Show one journal run: its map and every move with its outcome (a detour's legs say where the server is)."""
    document = history_run_json(detail)
    if fmt == "json":
        out.write(json.dumps(document, indent=2) + "\n")
        return
    moves = document["moves"]
    console = _console(out)
    s = detail.summary
    console.print(f"run {s.id}: {s.status}; map {s.map_source}; started {s.started_at}"
                  + (f", finished {s.finished_at}" if s.finished_at else ""), highlight=False)
    table = Table(title_justify="left")
    for column in ("step", "server", "source", "target", "migration", "outcome", "reason", "detail", "seconds"):
        table.add_column(column, justify="right" if column in ("step", "migration", "seconds") else "left",
                         overflow="fold")
    for m, row in zip(detail.moves, moves, strict=True):
        table.add_row(str(m.step + 1), m.server_name, m.source, m.target,
                      "" if m.migration_id is None else str(m.migration_id),
                      m.outcome or "(unfinished)", str(row["reason"]), detail_words(row["detail"]),
                      _seconds(m.seconds))
    console.print(table)
    print_milestones(document["milestones"], console, actual=True)


def print_listing(listing: Listing, out: IO[str]) -> None:
    """A listing's chosen columns (`-c`) as a plain table, named by their JSON keys."""
    table = Table()
    for column in listing.columns:
        table.add_column(column, overflow="fold")
    for row in listing.rows:
        table.add_row(*(cell(v) for v in row))
    _console(out).print(table, markup=False, highlight=False)
