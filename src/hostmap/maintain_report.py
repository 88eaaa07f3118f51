"""A rollout for people and programs: the dry run batch by batch, and where a rollout stands at its end."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from hostmap.maintain import MaintainResult
from hostmap.model import Inventory, Plan
from hostmap.rollout import RolloutPlan
from hostmap.serialise import export_map, run_json

#: Plans a host map document against a (projected) inventory, as `plan` would.
PlanFor = Callable[[Inventory, Mapping[str, list[str]]], Plan]

_WHY = {
    "drain_incomplete": "the drain did not empty the host; it stays disabled",
    "exec_failed": "the command failed; the host stays disabled",
    "exec_unknown": "the command was started by an interrupted rollout and its end was never seen: check the host, "
                    "then rerun with --rerun-exec to run it again",
    "not_up": "its compute service did not come up within --up-timeout; the host stays disabled",
    "restore_incomplete": "not every server went back",
}


def _console(out: IO[str]) -> Console:
    return Console(file=out) if out.isatty() else Console(file=out, width=200, soft_wrap=False)


def rollout_plan_json(rollout: RolloutPlan, plan_for: PlanFor) -> dict[str, Any]:
    """The dry run as JSON: per batch its hosts, moves out and back, and their estimated seconds."""
    batches = []
    for batch in rollout.batches:
        names = {s.id: s.name for s in batch.before.servers}
        where = {s.id: s.host for s in batch.before.servers}
        out_doc = export_map(batch.before, batch.drain.moves)
        estimate = plan_for(batch.before, out_doc).estimated_s if batch.drain.moves else 0.0
        back_s = 0.0
        if batch.back:
            back_doc = {k: v for k, v in export_map(batch.drained, batch.back, only=batch.back.keys()).items() if v}
            back_s = plan_for(batch.drained, back_doc).estimated_s
        batches.append({
            "hosts": list(batch.hosts),
            "moves": [{"server": names.get(i, i), "id": i, "source": where.get(i), "target": t}
                      for i, t in sorted(batch.drain.moves.items(), key=lambda m: names.get(m[0], m[0]))],
            "back": [{"server": names.get(i, i), "id": i, "target": t}
                     for i, t in sorted(batch.back.items(), key=lambda m: names.get(m[0], m[0]))],
            "peak_after_drain": round(batch.drain.peak, 4),
            "estimated_s": round(estimate, 1),
            "estimated_back_s": round(back_s, 1),
        })
    return {"batches": batches, "moves": rollout.moves, "minimum_moves": rollout.minimum, "restore": rollout.restore}


def print_rollout_plan(document: Mapping[str, Any], out: IO[str], fmt: str) -> None:
    """The dry run (`rollout_plan_json`): each batch's moves and estimated duration, and the total against the
    fewest possible."""
    if fmt == "json":
        out.write(json.dumps(document, indent=2) + "\n")
        return
    console = _console(out)
    table = Table(title="hostmap: rollout (dry run; nothing changed)", title_justify="left")
    for column in ("batch", "hosts", "moves out", "estimated s", "moves back", "estimated s"):
        table.add_column(column, overflow="fold")
    for n, batch in enumerate(document["batches"], 1):
        table.add_row(str(n), ", ".join(batch["hosts"]),
                      ", ".join(f"{m['server']} -> {m['target']}" for m in batch["moves"]) or "-",
                      f"{batch['estimated_s']:.0f}",
                      ", ".join(f"{m['server']} -> {m['target']}" for m in batch["back"]) or "-",
                      f"{batch['estimated_back_s']:.0f}")
    console.print(table)
    total = sum(b["estimated_s"] + b["estimated_back_s"] for b in document["batches"])
    console.print(f"{document['moves']} moves in all (the fewest possible: {document['minimum_moves']}); "
                  f"migrations estimated at {total:.0f} s, plus each host's command and restart", highlight=False)


def maintain_json(result: MaintainResult) -> dict[str, Any]:
    """Where the rollout stands: per host the steps taken, where it stopped and why, and every run's report."""
    rollout = result.rollout
    hosts = []
    for host in rollout.hosts:
        ended = rollout.done(host, "exec_ended")
        hosts.append({
            "host": host,
            "drained": rollout.done(host, "drained") is not None,
            "command_started": rollout.done(host, "exec_started") is not None,
            "command_exit": ended.code if ended else None,
            "up": rollout.done(host, "up") is not None,
            "enabled": rollout.done(host, "enabled") is not None,
            "restored": rollout.done(host, "restored") is not None if rollout.restore else None,
        })
    stopped = result.stopped
    return {
        "rollout": rollout.id,
        "continued": result.continued,
        "done": stopped is None,
        "stopped": None if stopped is None else {"host": stopped.host, "reason": stopped.reason,
                                                 "exit_code": stopped.code, "why": _WHY[stopped.reason]},
        "hosts": hosts,
        "runs": [run_json(run) for run in result.runs],
    }


def print_maintain(result: MaintainResult, out: IO[str], fmt: str) -> None:
    """The rollout's end: a row per host with its steps, then where it stopped, if it did."""
    document = maintain_json(result)
    if fmt == "json":
        out.write(json.dumps(document, indent=2) + "\n")
        return
    console = _console(out)
    table = Table(title=f"hostmap: rollout {document['rollout']}", title_justify="left")
    columns = ["host", "drained", "command", "up", "enabled"] + (["restored"] if result.rollout.restore else [])
    for column in columns:
        table.add_column(column)
    for host in document["hosts"]:
        command = ("-" if not host["command_started"] else "started, end unknown" if host["command_exit"] is None
                   else f"exit {host['command_exit']}")
        row = [host["host"], _yes(host["drained"]), command, _yes(host["up"]), _yes(host["enabled"])]
        if result.rollout.restore:
            row.append(_yes(host["restored"]))
        table.add_row(*row)
    console.print(table)
    stopped = document["stopped"]
    if stopped is None:
        console.print("the rollout is done: every host maintained and enabled", highlight=False)
    else:
        code = f" (exit {stopped['exit_code']})" if stopped["exit_code"] is not None else ""
        console.print(f"the rollout STOPPED at {stopped['host']}{code}: {stopped['why']}; run the same command again "
                      "to continue where it stopped", highlight=False)


def _yes(value: object) -> str:
    return "yes" if value else "-"
