"""Stalled migrations: what --on-stall buys on a drain with never-converging guests, and false stalls elsewhere.

1. A drain of 20 servers off one host, 3 of them never converging (the guest dirties 1.25 x the stream): makespan
   and number migrated with --on-stall abort, force-complete and wait, against today's behaviour (no stall
   detection: waiting until --timeout, 600 s, then aborting); each forced guest's recorded pause against
   --max-pause-s.
2. False stalls: the stall rule's verdicts counted (with --on-stall wait, so that nothing changes) over S1, S2 and S3
   of bench_makespan.py and over a sweep of slow but converging migrations (streams sharing a NIC, large guests at
   low rates, dirty rates close to the copy rate).

Everything runs on the simulated cloud over HTTP with a virtual clock: `python bench/bench_stall.py`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_makespan import CLI_PARAMS, s1_drain, s2_rebalance, s3_ring

from hostmap.clock import VirtualClock
from hostmap.cloud.openstack import connect_with
from hostmap.executor import Executor, ExecutorOptions
from hostmap.hostmap_file import parse_host_map
from hostmap.model import Step
from hostmap.planner import plan
from hostmap.reporter import Reporter
from hostmap.resolve import resolve
from hostmap.sim.scenario import parse_scenario
from hostmap.sim.server import SimServer
from hostmap.stall import StallFacts
from hostmap.timing import duration_model, nic_links

Scenario = dict[str, Any]


class StallCounter(Reporter):
    """Counts the migrations the stall rule called stalled at least once."""

    def __init__(self) -> None:
        self.steps: set[int] = set()

    def stalled(self, step: Step, facts: StallFacts | None) -> None:
        """Count a step the first time it is called stalled."""
        if facts is not None:
            self.steps.add(step.index)


@dataclass
class Outcome:
    makespan_s: float
    migrated: int
    outcomes: dict[str, int]
    stalled: int
    pauses: list[tuple[str, float, float]] = field(default_factory=list)
    wall_s: float = 0.0


def run(data: Scenario, host_map: dict[str, list[str]], options: ExecutorOptions) -> Outcome:
    """Plan and apply `host_map` on a fresh simulated cloud of `data` with `options`, on virtual time."""
    wall = time.perf_counter()
    clock = VirtualClock()
    counter = StallCounter()
    with SimServer(parse_scenario(data, data.get("description", "bench")), clock=clock) as sim:
        cloud = connect_with(sim.connect_kwargs())
        try:
            inventory = cloud.inventory()
            desired = resolve(parse_host_map(host_map, "bench map"), inventory).targets
            the_plan = plan(inventory, desired, duration=duration_model(CLI_PARAMS), links=nic_links(CLI_PARAMS))
            result = Executor(cloud, clock, reporter=counter, options=options).run(the_plan, inventory)
        finally:
            cloud.close()
        with sim.state.lock:
            names = {s.id: s.name for s in sim.state.servers.values()}
            pauses = [(names[m.server_id], m.paused_s, 0.0) for m in sim.state.migrations if m.paused_s > 0]
    outcomes: dict[str, int] = {}
    predicted = {m.server_name: m.stall.predicted_pause_s for m in result.moves if m.stall is not None}
    for move in result.moves:
        outcomes[move.outcome] = outcomes.get(move.outcome, 0) + 1
    return Outcome(result.makespan_s or 0.0, outcomes.get("migrated", 0), outcomes, len(counter.steps),
                   [(n, p, predicted.get(n, 0.0)) for n, p, _ in pauses], time.perf_counter() - wall)


def drain_20() -> tuple[Scenario, dict[str, list[str]]]:
    """20 servers (2-8 GiB) on compute001 drained to four roomy hosts; three 4 GiB guests never converge."""
    sizes = [2, 4, 8, 2, 4, 2, 8, 4, 2, 4, 2, 4, 8, 2, 4, 2, 4, 2, 8, 4]
    data: Scenario = {
        "description": "drain of 20, 3 never converge",
        "hosts": [{"name": f"compute00{i}", "vcpus": 256, "memory_mb": 262144, "disk_gb": 100000,
                   "max_concurrent_live_migrations": 2} for i in range(1, 6)],
        "flavors": [{"name": f"r{g}", "vcpus": 2, "ram": g * 1024, "disk": 20} for g in (2, 4, 8)],
        "servers": [{"name": f"vm-{i:02d}", "flavor": f"r{g}", "host": "compute001"} for i, g in enumerate(sizes)],
        "faults": [{"kind": "never_converge", "server": name} for name in ("vm-01", "vm-07", "vm-14")],
    }
    names = [f"vm-{i:02d}" for i in range(20)]
    host_map = {f"compute00{2 + i % 4}": names[i::4] for i in range(4)}
    return data, host_map


def slow_sweep() -> list[tuple[str, Scenario, dict[str, list[str]]]]:
    """Slow but converging drains: three streams sharing one NIC, large guests at low rates, dirty close to copy."""
    cases = []
    for nic in (1.0, 2.5):
        for share in (0.5, 0.8, 0.9):
            for ram_gib in (4, 16):
                # Three streams out of one host share `nic`; each guest dirties `share` of its share of the NIC.
                dirty_mb_s = share * nic * 1e9 / 8 / 3 / 1e6
                data: Scenario = {
                    "description": f"nic {nic} Gbit/s, dirty {share:.0%} of the copy, {ram_gib} GiB",
                    "hosts": [{"name": f"compute00{i}", "vcpus": 256, "memory_mb": 262144, "disk_gb": 100000,
                               "max_concurrent_live_migrations": 3, "nic_gbps": nic} for i in range(1, 5)],
                    "flavors": [{"name": "big", "vcpus": 2, "ram": ram_gib * 1024, "disk": 20}],
                    "servers": [{"name": f"vm-{i}", "flavor": "big", "host": "compute001",
                                 "dirty_mb_s": dirty_mb_s} for i in range(6)],
                }
                host_map = {f"compute00{2 + i % 3}": [f"vm-{j}" for j in range(i, 6, 3)] for i in range(3)}
                cases.append((data["description"], data, host_map))
    return cases


def main() -> int:
    """Print the figures; always returns 0."""
    data, host_map = drain_20()
    print("1. drain of 20 servers, 3 never converge (4 GiB guests, 2 migrations per source, --timeout 600)")
    modes = [
        ("today: wait until --timeout, abort", ExecutorOptions(on_stall="wait")),
        ("--on-stall abort", ExecutorOptions(on_stall="abort")),
        ("--on-stall force-complete", ExecutorOptions(on_stall="force-complete")),
        ("--on-stall force-complete --max-pause-s 2", ExecutorOptions(on_stall="force-complete", max_pause_s=2.0)),
        ("--on-stall wait", ExecutorOptions(on_stall="wait")),
        ("--on-timeout force-complete", ExecutorOptions(on_stall="wait", on_timeout="force-complete")),
    ]
    for name, options in modes:
        r = run(data, host_map, options)
        print(f"  {name:<44} makespan {r.makespan_s:7.1f} s, migrated {r.migrated:2d}/20, {r.outcomes}")
        for server, paused, predicted in r.pauses:
            print(f"  {'':<44}   {server} paused {paused:.2f} s (predicted {predicted:.2f} s, budget "
                  f"{options.max_pause_s:g} s)")
    print("2. false stalls (--on-stall wait: the rule's verdicts counted, nothing changed)")
    wait = ExecutorOptions(on_stall="wait", timeout_s=7200.0)
    total = migrations = 0
    cases: list[tuple[str, Scenario, dict[str, list[str]]]] = [("S1 drain", *s1_drain())]
    cases += [(f"S2 seed {seed}", *s2_rebalance(seed)) for seed in range(2)]
    cases += [(f"S3 ring {k}", *s3_ring(k, pivot=True)) for k in (2, 4, 8)]
    cases += slow_sweep()
    for name, data, host_map in cases:
        r = run(data, host_map, wait)
        moved = sum(r.outcomes.values())
        total += r.stalled
        migrations += moved
        print(f"  {name:<48} {r.stalled} stalled of {moved} moves, makespan {r.makespan_s:8.1f} s, {r.outcomes} "
              f"({r.wall_s:.1f} s wall)")
    print(f"  false stalls: {total} over {migrations} converging moves in {len(cases)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
