"""D2: rolling maintenance of 12 hosts in batches of 2 at 75 % RAM use, with and without --restore.

Reports, per seed: the rollout's total moves against the minimum (servers on maintained hosts, x2 with restore)
and against host-by-host drains with no plan across batches (each batch spread onto the emptiest hosts, later
ones included); and the duration of hostmap's rollout on the simulated cloud (virtual time) with a fixed 60 s
command per host that simulates a reboot (the compute service forced down for the 60 s, then up again). The reboots
of a batch run at once, as maintain runs its commands: they share the one virtual clock (`ParallelReboots`), so a
batch of two takes 60 s of commands, not 120.

Run on demand:  python bench/bench_maintain.py [--seeds N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_makespan import GIB_MB, Scenario, _flavors, _host, _random_fit

from hostmap.apply import ApplySettings, ServiceChanges, apply_map
from hostmap.clock import VirtualClock
from hostmap.cloud.openstack import connect_with
from hostmap.executor import ExecutorOptions
from hostmap.hostmap_file import parse_host_map
from hostmap.journal import Journal
from hostmap.maintain import MaintainOptions, run_rollout
from hostmap.model import Limits
from hostmap.results import RunResult
from hostmap.rollout import plan_rollout
from hostmap.sim.scenario import parse_scenario
from hostmap.sim.server import SimServer
from hostmap.timing import MigrationParams, duration_model, nic_links

REBOOT_S = 60.0
SETTLE_S = 130.0
BATCH = 2
#: Wall seconds a reboot waits for its batch-mates to start before it goes on alone (they start at once).
ARRIVAL_WAIT_S = 30.0


class ParallelReboots:
    """The simulated reboots of a batch, running at once on one virtual clock.

    maintain starts a batch's commands together, one thread each. A `VirtualClock.sleep` in each thread would add
    their 60 s one after the other; here each reboot forces its service down, waits until every reboot of its batch
    has started, and the last to start advances the clock once to the end of the reboots, so that they overlap as
    real commands would. Then each clears its own forced-down flag.
    """

    def __init__(self, sim: SimServer, clock: VirtualClock, batches: Sequence[Sequence[str]]) -> None:
        self._sim, self._clock = sim, clock
        self._batch_of = {h: tuple(b) for b in batches for h in b}
        self._ends: dict[str, float] = {}
        self._cond = threading.Condition()
        #: Virtual seconds during which some command of the rollout ran (a batch's reboots counted once).
        self.commands_s = 0.0

    def __call__(self, host: str) -> int:
        uuid = self._sim.state.hosts[host].service_uuid
        self._sim.state.update_service(uuid, {"forced_down": True})
        batch = self._batch_of.get(host, (host,))
        with self._cond:
            self._ends[host] = self._clock.now() + REBOOT_S
            if all(h in self._ends for h in batch):  # the last to start moves the clock for all of them
                end = max(self._ends[h] for h in batch)
                self.commands_s += end - self._clock.now()
                self._clock.sleep(end - self._clock.now())
                self._cond.notify_all()
            else:
                self._cond.wait_for(lambda: self._clock.now() >= self._ends[host], timeout=ARRIVAL_WAIT_S)
                if self._clock.now() < self._ends[host]:  # a batch-mate never came: go on alone
                    self.commands_s += self._ends[host] - self._clock.now()
                    self._clock.sleep(self._ends[host] - self._clock.now())
        self._sim.state.update_service(uuid, {"forced_down": False})
        return 0


def d2_cloud(seed: int, n_hosts: int = 12, n_servers: int = 60, use: float = 0.75) -> Scenario:
    """12 equal hosts at 75 % RAM use, servers of 2-16 GiB placed at random, anti-affinity groups of 3."""
    rng = random.Random(2000 + seed)
    sizes = [2, 4, 8, 16]
    hosts = [f"compute{i:03d}" for i in range(1, n_hosts + 1)]
    ram = {f"vm-{j:03d}": rng.choice(sizes) * GIB_MB for j in range(n_servers)}
    capacity = -(-int(sum(ram.values()) / use / n_hosts) // GIB_MB) * GIB_MB
    placement = None
    while placement is None:
        placement = _random_fit(rng, ram, hosts, capacity)
    return {
        "description": f"D2 rolling maintenance, seed {seed}",
        "hosts": [_host(h, capacity) for h in hosts],
        "flavors": _flavors(sizes),
        "servers": [{"name": n, "flavor": f"r{ram[n] // GIB_MB}g", "host": placement[n]} for n in sorted(ram)],
    }


def planned_moves(data: Scenario, hosts: list[str], *, restore: bool, across: bool) -> tuple[int, int]:
    """(moves, minimum) of the rollout as planned; `across=False`: each batch drained with no look ahead."""
    with SimServer(parse_scenario(data, "d2"), clock=VirtualClock()) as sim:
        cloud = connect_with(sim.connect_kwargs())
        try:
            inventory = cloud.inventory()
        finally:
            cloud.close()
    rollout = plan_rollout(inventory, hosts, batch=2, headroom_pct=0, restore=restore, plan_across=across)
    return rollout.moves, rollout.minimum


def strict_minimum(data: Scenario, hosts: list[str], *, restore: bool, batch: int = 2) -> int:
    """The fewest moves when every host of the cloud is maintained: without restore, the first batch's servers
    have no done or unmaintained host to go to, so each of them moves twice; with restore, every server twice."""
    maintained = set(hosts)
    leaving = sum(1 for s in data["servers"] if s["host"] in maintained)
    if restore:
        return 2 * leaving
    outside = [h["name"] for h in data["hosts"] if h["name"] not in maintained]
    first = set(hosts[:batch])
    return leaving + (0 if outside else sum(1 for s in data["servers"] if s["host"] in first))


def run_d2(data: Scenario, hosts: list[str], *, restore: bool) -> dict[str, Any]:
    """hostmap's rollout on the simulated cloud, virtual time, a 60 s simulated reboot per host."""
    wall = time.perf_counter()
    clock = VirtualClock()
    params = MigrationParams()
    with SimServer(parse_scenario(data, "d2"), clock=clock) as sim, tempfile.TemporaryDirectory() as tmp:
        cloud = connect_with(sim.connect_kwargs())
        settings = ApplySettings(ExecutorOptions(timeout_s=1800.0), Path(tmp) / "journal.sqlite",
                                 duration_model(params), nic_links(params), SETTLE_S, Limits())

        def run_map(document: Mapping[str, list[str]], services: ServiceChanges,
                    label: str) -> tuple[RunResult, int | None]:
            started: list[int] = []
            result = apply_map(cloud, cloud_key=cloud.identity, clock=clock,
                               host_map=parse_host_map(dict(document), label), map_text=json.dumps(document),
                               settings=settings, reporters=[], confirm_for=lambda inventory: None,
                               interrupts=lambda: 0, services=services, on_start=started.append)
            return result, started[0] if started else None

        reboot = ParallelReboots(sim, clock, [hosts[i:i + BATCH] for i in range(0, len(hosts), BATCH)])
        start = clock.now()
        try:
            with Journal.open(Path(tmp) / "journal.sqlite") as journal:
                result = run_rollout(cloud, clock, journal, cloud_key=cloud.identity, hosts=hosts,
                                     options=MaintainOptions(batch=BATCH, restore=restore,
                                                             group_settle_s=SETTLE_S),
                                     run_map=run_map, execute=reboot)
        finally:
            cloud.close()
        migrated = sum(1 for run in result.runs for m in run.moves if m.outcome == "migrated")
        return {
            "done": result.stopped is None,
            "stopped": None if result.stopped is None else f"{result.stopped.host}: {result.stopped.reason}",
            "migrated": migrated,
            "duration_s": round(clock.now() - start, 1),
            "migration_s": round(sum(r.makespan_s or 0.0 for r in result.runs), 1),
            "commands_s": round(reboot.commands_s, 1),
            "wall_s": round(time.perf_counter() - wall, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one seed")
    args = parser.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    print("D2: 12 hosts, batches of 2, 75 % RAM use, 60 s simulated reboot per host (a batch's at once)")
    print(f"{'seed':>4} {'restore':>7} {'minimum':>7} {'strict min':>10} {'hostmap plan':>12} {'no look-ahead':>13} "
          f"{'executed':>8} {'duration s':>10} {'of which moving s':>17} {'commands s':>10} {'done':>5}")
    for seed in range(seeds):
        data = d2_cloud(seed)
        hosts = [h["name"] for h in data["hosts"]]
        for restore in (False, True):
            ours, minimum = planned_moves(data, hosts, restore=restore, across=True)
            naive, _ = planned_moves(data, hosts, restore=restore, across=False)
            ran = run_d2(data, hosts, restore=restore)
            strict = strict_minimum(data, hosts, restore=restore)
            print(f"{seed:>4} {restore!s:>7} {minimum:>7} {strict:>10} {ours:>12} {naive:>13} {ran['migrated']:>8} "
                  f"{ran['duration_s']:>10} {ran['migration_s']:>17} {ran['commands_s']:>10} {ran['done']!s:>5}"
                  + (f"  stopped at {ran['stopped']}" if ran["stopped"] else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
