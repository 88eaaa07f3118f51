"""A drain's map document and its summary: per target host the servers arriving and its use before and after."""

from __future__ import annotations

import json
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from hostmap.drain import Drain, TargetUse
from hostmap.model import Inventory, Plan, Resources


def map_document(drain: Drain, inventory: Inventory) -> dict[str, list[str]]:
    """The drain's placement as a host map for `hostmap apply`: names, or the UUID where a name is shared."""
    counts: dict[str, int] = {}
    for server in inventory.servers:
        counts[server.name] = counts.get(server.name, 0) + 1
    names = {s.id: s.name for s in inventory.servers}
    return {
        host: [names[i] if counts[names[i]] == 1 else i for i in sorted(ids, key=lambda i: (names[i], i))]
        for host, ids in drain.placement.items()
    }


def _amounts(resources: Resources) -> dict[str, int]:
    return dict(resources.items())


def _target_json(target: TargetUse, names: dict[str, str]) -> dict[str, Any]:
    return {
        "host": target.host,
        "arriving": sorted(names.get(i, i) for i in target.arriving),
        "capacity": _amounts(target.capacity),
        "before": _amounts(target.before),
        "after": _amounts(target.after),
        "peak_before": round(target.peak_before, 4),
        "peak_after": round(target.peak_after, 4),
    }


def drain_json(drain: Drain, inventory: Inventory, plan: Plan) -> dict[str, Any]:
    """The summary `drain -f json` prints: the hosts drained, each target's use, and the plan's size and duration."""
    names = {s.id: s.name for s in inventory.servers}
    return {
        "drained": list(drain.hosts),
        "headroom_pct": drain.headroom_pct,
        "servers": len(drain.moves),
        "peak_after": round(drain.peak, 4),
        "targets": [_target_json(t, names) for t in drain.targets],
        "migrations": len(plan.steps),
        "detours": sum(1 for s in plan.steps if s.move.is_detour),
        "estimated_s": round(plan.estimated_s, 3),
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _use(amount: int, capacity: int) -> str:
    return f"{amount}/{capacity} ({100 * amount / capacity:.0f}%)" if capacity > 0 else f"{amount}/0"


def print_drain(drain: Drain, inventory: Inventory, plan: Plan, out: IO[str], fmt: str) -> None:
    """Print the drain's summary: a table per target host, or JSON."""
    if fmt == "json":
        out.write(json.dumps(drain_json(drain, inventory, plan), indent=2) + "\n")
        return
    console = Console(file=out) if out.isatty() else Console(file=out, width=200, soft_wrap=False)
    names = {s.id: s.name for s in inventory.servers}
    table = Table(title=f"hostmap: drain {', '.join(drain.hosts)}", title_justify="left")
    for column in ("target", "arriving", "VCPU before -> after", "MEMORY_MB before -> after",
                   "DISK_GB before -> after"):
        table.add_column(column, overflow="fold")
    for target in drain.targets:
        if not target.arriving:
            continue
        cells = [
            f"{_use(before, cap)} -> {_use(after, cap)}"
            for (_, before), (_, after), (_, cap) in zip(
                target.before.items(), target.after.items(), target.capacity.items(), strict=True)
        ]
        table.add_row(target.host, ", ".join(sorted(names.get(i, i) for i in target.arriving)), *cells)
    console.print(table)
    idle = sum(1 for t in drain.targets if not t.arriving)
    headroom = f", keeping {drain.headroom_pct:g} % of each resource free" if drain.headroom_pct else ""
    console.print(
        f"{_count(len(drain.moves), 'server')} leave {', '.join(drain.hosts)} for "
        f"{_count(len(drain.targets) - idle, 'host')}"
        f"{headroom}; the most used resource of any host ends at {100 * drain.peak:.0f} %",
        highlight=False,
    )
    console.print(
        f"{len(plan.steps)} migrations, estimated {plan.estimated_s:.0f} s "
        f"(`hostmap plan` on the map shows their order)",
        highlight=False,
    )
