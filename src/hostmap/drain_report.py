"""A drain's summary for people: per target host the servers arriving and its use before and after."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO

from rich.console import Console
from rich.table import Table

from hostmap.drain import Drain
from hostmap.model import Inventory, Plan
from hostmap.serialise import drain_json
from hostmap.services import DrainedHost
from hostmap.wording import counted


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
        f"{counted(len(plan.steps), 'migration')}, estimated {plan.estimated_s:.0f} s "
        f"(`hostmap plan` on the map shows their order)",
        highlight=False,
    )


def print_drained(states: Sequence[DrainedHost], out: IO[str]) -> None:
    """Each drained host after the run: empty, or what is left on it and why; and its compute service."""
    console = Console(file=out) if out.isatty() else Console(file=out, width=200, soft_wrap=False)
    for state in states:
        service = (f"compute service disabled ({state.disabled_reason or 'no reason given'})" if not state.enabled
                   else "compute service ENABLED")
        if state.empty:
            console.print(f"{state.host}: empty; {service}", highlight=False)
            continue
        console.print(f"{state.host}: {_count(len(state.left), 'server')} left; {service}:", highlight=False)
        for server in state.left:
            console.print(f"  {server.name} ({server.status}): {server.outcome + ': ' if server.outcome else ''}"
                          f"{server.reason}", highlight=False, markup=False)
