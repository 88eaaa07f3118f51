"""The JSON documents hostmap writes for programs (and the journal stores), apart from any rendering: no rich here.

`apply` stores `plan_json` in the journal, so this module must stay importable without rich.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from hostmap.advice import explained
from hostmap.checks import CheckResult
from hostmap.drain import Drain
from hostmap.journal import MoveRecord, RunDetail, RunSummary
from hostmap.model import Inventory, Plan, Resources
from hostmap.results import RunResult
from hostmap.services import DrainedHost
from hostmap.stall import StallFacts
from hostmap.timeline import HostMilestone, journal_moves, milestones


def plan_json(plan: Plan, inventory: Inventory) -> dict[str, Any]:
    """The plan as the JSON document `plan -f json` prints (with its `milestones`, `milestones_json`)."""
    document = _plan_moves(plan, inventory)
    after: dict[str, int] = {}
    for server in inventory.servers:
        if server.host is not None:
            after[server.host] = after.get(server.host, 0) + 1
    for step in plan.steps:
        after[step.move.source] = after.get(step.move.source, 0) - 1
        after[step.move.target] = after.get(step.move.target, 0) + 1
    document["milestones"] = milestones_json(milestones(document), after)
    return document


def _state(milestone: HostMilestone, servers_after: int | None) -> str:
    """"empty" (no server left), "emptied" (fewer, or not known how many), "full" (all its arrivals in)."""
    if not milestone.emptied:
        return "full"
    return "empty" if servers_after == 0 else "emptied"


def milestones_json(planned: Sequence[HostMilestone], servers_after: Mapping[str, int] | None = None,
                    actual: Sequence[HostMilestone] | None = None) -> list[dict[str, Any]]:
    """Per host the schedule empties or fills, when (`by_s`, seconds from the start) it is expected empty or full.

    With `actual` (a run's), each also says when it got there (`actual_by_s`; None: it did not, or not yet).
    """
    happened = {m.host: m.at_s for m in actual or ()}
    rows: list[dict[str, Any]] = []
    for m in planned:
        after = None if servers_after is None else servers_after.get(m.host)
        row: dict[str, Any] = {"host": m.host, "leaving": m.leaving, "arriving": m.arriving, "servers_after": after,
                               "state": _state(m, after), "by_s": None if m.at_s is None else round(m.at_s, 3)}
        if actual is not None:
            at = happened.get(m.host)
            row["actual_by_s"] = None if at is None else round(at, 3)
        rows.append(row)
    return rows


def _plan_moves(plan: Plan, inventory: Inventory) -> dict[str, Any]:
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
                "ram_mb": step.move.demand.memory_mb,
                # Only on cold moves, so that plans without them read exactly as before.
                **({"cold": True} if step.move.cold else {}),
                **({"start_s": round(plan.spans[step.index][0], 3), "end_s": round(plan.spans[step.index][1], 3)}
                   if len(plan.spans) == len(plan.steps) else {}),
            }
            for step in plan.steps
        ],
        "in_place": [{"server": s.name, "id": s.id, "host": s.host} for s in plan.in_place],
        "estimated_s": round(plan.estimated_s, 3),
        "lower_bound_s": round(plan.lower_bound_s, 3),
        "lower_bound_by": plan.lower_bound_by,
        "max_per_host": plan.max_per_host,
        "parallel": plan.parallel,
        "max_in_flight_per_group": plan.limits.per_group,
        "max_in_per_host": plan.limits.max_in_per_host,
        "group_settle_s": plan.group_settle_s,
        "notes": list(plan.notes),
    }


def stall_json(facts: StallFacts) -> dict[str, Any]:
    """A stall's figures and the action hostmap took, as the JSON report and the journal give them."""
    pause = facts.predicted_pause_s
    return {
        "trigger": facts.trigger,
        "action": facts.action,
        "remaining_gib": round(facts.remaining_bytes / 2**30, 3),
        "copy_mb_s": round(facts.copy_bps / 1e6, 1),
        "dirty_mb_s": round(facts.dirty_bps / 1e6, 1),
        "stalled_s": round(facts.stalled_s, 1),
        "predicted_pause_s": None if pause == float("inf") else round(pause, 2),
        "pause_too_long": facts.pause_too_long,
    }


def stall_from_json(data: object) -> StallFacts | None:
    """The stall `stall_json` wrote (to the journal), to the precision it kept; None when `data` is not one."""
    if not isinstance(data, dict):
        return None
    try:
        pause = data.get("predicted_pause_s")
        return StallFacts(
            remaining_bytes=round(float(data["remaining_gib"]) * 2**30),
            copy_bps=float(data["copy_mb_s"]) * 1e6,
            dirty_bps=float(data["dirty_mb_s"]) * 1e6,
            stalled_s=float(data["stalled_s"]),
            action=str(data["action"]),
            predicted_pause_s=float("inf") if pause is None else float(pause),
            pause_too_long=bool(data.get("pause_too_long", False)),
            trigger=str(data.get("trigger", "stall")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def check_json(check: CheckResult) -> dict[str, Any]:
    """A health check's outcome, as the JSON report and the journal give it."""
    return {"phase": check.phase, "ok": check.ok, "code": check.code, "timed_out": check.timed_out,
            "seconds": round(check.seconds, 2), "output": check.output, "problem": check.problem or None}


def run_json(result: RunResult) -> dict[str, Any]:
    """The report as the JSON document `-f json` prints."""
    return {
        "reached": result.reached,
        "interrupted": result.interrupted,
        "error": result.error or None,
        "makespan_s": None if result.makespan_s is None else round(result.makespan_s, 3),
        "estimated_s": None if result.estimated_s is None else round(result.estimated_s, 3),
        "estimate_error": None if result.estimate_error is None else round(result.estimate_error, 4),
        "moves": [
            {
                "server": m.server_name,
                "id": m.server_id,
                "source": m.source,
                "target": m.target,
                "outcome": m.outcome,
                "reason": explained(m),
                "seconds": None if m.seconds is None else round(m.seconds, 3),
                "started_s": None if m.started_s is None else round(m.started_s, 3),
                "finished_s": None if m.finished_s is None else round(m.finished_s, 3),
                "unresolved": m.unresolved,
                "cold": m.cold,
                "stall": None if m.stall is None else stall_json(m.stall),
                "checks": [check_json(c) for c in m.checks],
            }
            for m in result.moves
        ],
    }


def export_map(inventory: Inventory, placement: Mapping[str, str | None] | None = None, *,
               only: Collection[str] | None = None) -> dict[str, list[str]]:
    """A placement as a host map (every host, each with its servers); a name shared by several servers is a UUID.

    `placement` maps server ids to hosts; without it, the servers' current hosts.  With `only`, just those servers
    are listed (a partial map: the others stay where they are).
    """
    counts: dict[str, int] = {}
    for server in inventory.servers:
        counts[server.name] = counts.get(server.name, 0) + 1
    where = placement if placement is not None else {s.id: s.host for s in inventory.servers}
    document: dict[str, list[str]] = {host.name: [] for host in inventory.hosts}
    for server in sorted(inventory.servers, key=lambda s: (s.name, s.id)):
        if only is not None and server.id not in only:
            continue
        host = where.get(server.id, server.host)
        if host is None or host not in document:
            continue
        document[host].append(server.name if counts[server.name] == 1 else server.id)
    return document


def _amounts(resources: Resources) -> dict[str, int]:
    return dict(resources.items())


def drain_json(drain: Drain, inventory: Inventory, plan: Plan) -> dict[str, Any]:
    """The summary `drain -f json` prints: the hosts drained, each target's use, and the plan's size and duration."""
    names = {s.id: s.name for s in inventory.servers}
    return {
        "drained": list(drain.hosts),
        "headroom_pct": drain.headroom_pct,
        "servers": len(drain.moves),
        "peak_after": round(drain.peak, 4),
        "targets": [
            {
                "host": t.host,
                "arriving": sorted(names.get(i, i) for i in t.arriving),
                "capacity": _amounts(t.capacity),
                "before": _amounts(t.before),
                "after": _amounts(t.after),
                "peak_before": round(t.peak_before, 4),
                "peak_after": round(t.peak_after, 4),
            }
            for t in drain.targets
        ],
        "migrations": len(plan.steps),
        "detours": sum(1 for s in plan.steps if s.move.is_detour),
        "estimated_s": round(plan.estimated_s, 3),
    }


def summary_json(run: RunSummary) -> dict[str, Any]:
    """A journal run's summary as `history -f json` lists it."""
    return {"run": run.id, "cloud": run.cloud, "map": run.map_source, "started_at": run.started_at,
            "finished_at": run.finished_at, "status": run.status, "moves": run.moves, "migrated": run.migrated}


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


def history_run_moves(detail: RunDetail) -> list[dict[str, Any]]:
    """A journal run's moves as `history RUN` shows them (a detour's legs say where the server is)."""
    finals = _detour_finals(detail.plan)
    arrived = {(m.server_id, m.target) for m in detail.moves if m.outcome == "migrated"}
    return [
        {"step": m.step + 1, "server": m.server_name, "id": m.server_id, "source": m.source, "target": m.target,
         "final_target": finals.get(m.step + 1, m.target), "submitted_at": m.submitted_at,
         "request_id": m.request_id, "migration_id": m.migration_id, "outcome": m.outcome,
         "reason": "; ".join(r for r in (_leg_note(arrived, m, finals.get(m.step + 1)), m.reason) if r),
         "seconds": m.seconds, "detail": detail_json(m.detail)}
        for m in detail.moves
    ]


def detail_json(text: str) -> dict[str, Any]:
    """A move's journaled detail (JSON text: `stall`, `checks`) as an object; empty when unreadable."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def history_run_json(detail: RunDetail) -> dict[str, Any]:
    """One journal run as the JSON document `history RUN -f json` prints: its summary, stored plan, moves, and per
    host emptied or filled when the plan expected it (`by_s`) and when it happened (`actual_by_s`)."""
    stored = detail.plan.get("milestones")
    after = ({str(m.get("host")): m["servers_after"] for m in stored
              if isinstance(m, Mapping) and isinstance(m.get("servers_after"), int)}
             if isinstance(stored, list) else None)  # a run journaled before plans said it
    rows = milestones_json(milestones(detail.plan), after, milestones(detail.plan, journal_moves(detail.moves)))
    return {**summary_json(detail.summary), "plan": detail.plan, "moves": history_run_moves(detail),
            "milestones": rows}


def drained_json(states: Sequence[DrainedHost]) -> list[dict[str, Any]]:
    """Each drained host after a `drain --apply`: its compute service and the servers left on it, and why."""
    return [
        {
            "host": state.host,
            "empty": state.empty,
            "service": "enabled" if state.enabled else "disabled",
            "up": state.up,
            "disabled_reason": state.disabled_reason,
            "left": [{"server": s.name, "id": s.server_id, "status": s.status, "outcome": s.outcome or None,
                      "reason": s.reason} for s in state.left],
        }
        for state in states
    ]
