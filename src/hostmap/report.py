"""Final report and plan rendering: rich tables for people, JSON for programs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from hostmap.journal import MoveRecord, RunDetail, RunSummary
from hostmap.model import Inventory, Plan
from hostmap.results import RunResult

_STYLE = {"migrated": "green", "skipped": "dim", "failed": "red", "timed_out": "red", "declined": "yellow",
          "not_started": "yellow", "stranded": "red"}


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


def run_json(result: RunResult) -> dict[str, Any]:
    """The report as the JSON document `-f json` prints."""
    return {
        "reached": result.reached,
        "interrupted": result.interrupted,
        "error": result.error or None,
        "makespan_s": None if result.makespan_s is None else round(result.makespan_s, 3),
        "moves": [
            {
                "server": m.server_name,
                "id": m.server_id,
                "source": m.source,
                "target": m.target,
                "outcome": m.outcome,
                "reason": m.reason,
                "seconds": None if m.seconds is None else round(m.seconds, 3),
                "started_s": None if m.started_s is None else round(m.started_s, 3),
                "finished_s": None if m.finished_s is None else round(m.finished_s, 3),
                "unresolved": m.unresolved,
            }
            for m in result.moves
        ],
    }


def print_run(result: RunResult, out: IO[str], fmt: str) -> None:
    """Print the final report, one row per server."""
    if fmt == "json":
        out.write(json.dumps(run_json(result), indent=2) + "\n")
        return
    console = _console(out)
    table = Table(title="hostmap: migration report", title_justify="left")
    for column in ("server", "source", "target", "outcome", "reason", "seconds"):
        # Names are never cut short (two servers may differ only at the end): on a narrow terminal they wrap.
        table.add_column(column, justify="right" if column == "seconds" else "left", overflow="fold")
    for m in result.moves:
        style = _STYLE.get(m.outcome, "")
        table.add_row(m.server_name, m.source, m.target, f"[{style}]{m.outcome}[/]", m.reason, _seconds(m.seconds))
    console.print(table)
    counts: dict[str, int] = {}
    for m in result.moves:
        counts[m.outcome] = counts.get(m.outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(counts.items()))
    verdict = "the cloud matches the host map" if result.reached else "the cloud does NOT match the host map"
    makespan = f" in {result.makespan_s:.1f} s" if result.makespan_s else ""
    console.print(f"{summary or 'nothing to do'}{makespan}: {verdict}.", highlight=False)
    if any(m.unresolved for m in result.moves):
        console.print("Some migrations could not be confirmed; run `hostmap apply` with the same map again to "
                      "watch them to their end.", highlight=False)


def plan_json(plan: Plan, inventory: Inventory) -> dict[str, Any]:
    """The plan as the JSON document `plan -f json` prints."""
    names = {s.id: s for s in inventory.servers}
    return {
        "moves": [
            {
                "step": step.index + 1,
                "server": step.move.server_name,
                "id": step.move.server_id,
                "flavor": names[step.move.server_id].flavor if step.move.server_id in names else "",
                "source": step.move.source,
                "target": step.move.target,
                "final_target": step.move.final_target or step.move.target,
                "detour": step.move.is_detour,
                "after": [i + 1 for i in step.after],
                "settle_after": [i + 1 for i in step.settle_after],
                "estimate_s": round(step.move.estimate_s, 3),
            }
            for step in plan.steps
        ],
        "in_place": [{"server": s.name, "id": s.id, "host": s.host} for s in plan.in_place],
        "estimated_s": round(plan.estimated_s, 3),
        "lower_bound_s": round(plan.lower_bound_s, 3),
        "lower_bound_by": plan.lower_bound_by,
        "max_per_host": plan.max_per_host,
        "parallel": plan.parallel,
        "group_settle_s": plan.group_settle_s,
        "notes": list(plan.notes),
    }


def print_plan(plan: Plan, inventory: Inventory, out: IO[str], fmt: str) -> None:
    """Print what would move, in order, and what is already in place."""
    if fmt == "json":
        out.write(json.dumps(plan_json(plan, inventory), indent=2) + "\n")
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
            after = ",".join(f"{i + 1}" + ("+settle" if i in step.settle_after else "") for i in step.after)
            table.add_row(str(step.index + 1), move.server_name, flavor, move.source, target, after,
                          f"{move.estimate_s:.0f}")
        console.print(table)
    for note in plan.notes:
        console.print(f"note: {note}", highlight=False)
    if plan.in_place:
        names = ", ".join(f"{s.name} ({s.host})" for s in plan.in_place)
        console.print(f"already in place: {names}", highlight=False)
    if plan.steps:
        bound_by = _BOUND_BY.get(plan.lower_bound_by, plan.lower_bound_by)
        console.print(
            f"{len(plan.steps)} migrations; estimated {plan.estimated_s:.0f} s "
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


def export_map(inventory: Inventory) -> dict[str, list[str]]:
    """The current placement as a host map; a name shared by several servers is written as the UUID."""
    counts: dict[str, int] = {}
    for server in inventory.servers:
        counts[server.name] = counts.get(server.name, 0) + 1
    placement: dict[str, list[str]] = {host.name: [] for host in inventory.hosts}
    for server in sorted(inventory.servers, key=lambda s: (s.name, s.id)):
        if server.host is None or server.host not in placement:
            continue
        placement[server.host].append(server.name if counts[server.name] == 1 else server.id)
    return placement


def _summary_json(run: RunSummary) -> dict[str, Any]:
    return {"run": run.id, "cloud": run.cloud, "map": run.map_source, "started_at": run.started_at,
            "finished_at": run.finished_at, "status": run.status, "moves": run.moves, "migrated": run.migrated}


def print_history(runs: Sequence[RunSummary], out: IO[str], fmt: str) -> None:
    """List journal runs, newest first."""
    if fmt == "json":
        out.write(json.dumps([_summary_json(r) for r in runs], indent=2) + "\n")
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


def _detour_finals(plan: Mapping[str, Any]) -> dict[int, str]:
    """Plan step (from 1) -> final host, for the first legs of detours in a journal run's stored plan."""
    finals: dict[int, str] = {}
    for move in plan.get("moves", []) if isinstance(plan, dict) else []:
        if isinstance(move, dict) and move.get("detour") and move.get("final_target") != move.get("target"):
            finals[int(move.get("step", 0))] = str(move.get("final_target"))
    return finals


def _leg_note(arrived: set[tuple[str, str]], move: MoveRecord, final: str | None) -> str:
    """What a detour's first leg means for where its server is; `arrived`: (server id, host) it migrated to."""
    if final is None:
        return ""
    if move.outcome == "migrated" and (move.server_id, final) not in arrived:
        return f"on pivot {move.target}, not on its final host {final}"
    return f"first leg, via pivot {move.target} to {final}"


def print_history_run(detail: RunDetail, out: IO[str], fmt: str) -> None:
    """Show one journal run: its map and every move with its outcome (a detour's legs say where the server is)."""
    finals = _detour_finals(detail.plan)
    arrived = {(m.server_id, m.target) for m in detail.moves if m.outcome == "migrated"}
    moves = [
        {"step": m.step + 1, "server": m.server_name, "id": m.server_id, "source": m.source, "target": m.target,
         "final_target": finals.get(m.step + 1, m.target), "submitted_at": m.submitted_at,
         "request_id": m.request_id, "migration_id": m.migration_id, "outcome": m.outcome,
         "reason": "; ".join(r for r in (_leg_note(arrived, m, finals.get(m.step + 1)), m.reason) if r),
         "seconds": m.seconds}
        for m in detail.moves
    ]
    if fmt == "json":
        out.write(json.dumps({**_summary_json(detail.summary), "plan": detail.plan, "moves": moves}, indent=2) + "\n")
        return
    console = _console(out)
    s = detail.summary
    console.print(f"run {s.id}: {s.status}; map {s.map_source}; started {s.started_at}"
                  + (f", finished {s.finished_at}" if s.finished_at else ""), highlight=False)
    table = Table(title_justify="left")
    for column in ("step", "server", "source", "target", "migration", "outcome", "reason", "seconds"):
        table.add_column(column, justify="right" if column in ("step", "migration", "seconds") else "left",
                         overflow="fold")
    for m, row in zip(detail.moves, moves, strict=True):
        table.add_row(str(m.step + 1), m.server_name, m.source, m.target,
                      "" if m.migration_id is None else str(m.migration_id),
                      m.outcome or "(unfinished)", str(row["reason"]), _seconds(m.seconds))
    console.print(table)
