"""Planner benchmark: CPU seconds to plan the S4 cloud (10,000 servers, 1,000 hosts, 3,000 moves) and twice that.

Run from the repository root: ``PYTHONPATH=src python bench/bench_planning.py``.  Not a test.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hostmap.model import Host, Inventory, Resources, Server
from hostmap.planner import passes, plan
from hostmap.timing import MigrationParams, duration_model, nic_links

FLAVORS = [Resources(1, 2048, 20), Resources(2, 4096, 40), Resources(4, 8192, 80), Resources(8, 16384, 160)]
CAPACITY = Resources(64, 98304, 1600)


def build(n_hosts: int, per_host: int, n_moves: int, n_cycles: int, seed: int) -> tuple[Inventory, dict[str, str]]:
    """A cloud with `n_hosts` hosts, `per_host` servers each, and a map of `n_moves` moves.

    The map holds `n_cycles` zero-slack rotations (2 to 4 full hosts each) embedded among random moves whose
    end state fits; the other hosts keep room, so pivots are available.
    """
    rng = random.Random(seed)
    names = [f"cmp{i:05d}" for i in range(n_hosts)]
    servers: list[Server] = []
    used = {n: Resources() for n in names}
    for h in names:
        for j in range(per_host):
            demand = FLAVORS[2] if j == 0 else rng.choice(FLAVORS)
            sid = f"{h}-vm{j:02d}"
            servers.append(Server(sid, sid, h, "ACTIVE", None, "f", demand))
            used[h] = used[h] + demand
    capacity = dict.fromkeys(names, CAPACITY)
    by_id = {s.id: s for s in servers}
    desired: dict[str, str] = {}
    # Zero-slack rotations on dedicated hosts: every cycle host is exactly full.
    cycle_hosts: set[str] = set()
    pool = names[-n_cycles * 4 :]
    cursor = 0
    for _ in range(n_cycles):
        length = rng.randint(2, 4)
        ring = pool[cursor : cursor + length]
        cursor += length
        cycle_hosts.update(ring)
        movers = [by_id[f"{h}-vm00"] for h in ring]
        for i, server in enumerate(movers):
            desired[server.id] = ring[(i + 1) % length]
        for h in ring:
            capacity[h] = used[h]
    free = {h: capacity[h] - used[h] for h in names}
    candidates = [s for s in servers if s.host not in cycle_hosts]
    rng.shuffle(candidates)
    open_hosts = [h for h in names if h not in cycle_hosts]
    for server in candidates:
        if len(desired) >= n_moves:
            break
        assert server.host is not None
        target = rng.choice(open_hosts)
        if target != server.host and server.demand.fits_within(free[target]):
            desired[server.id] = target
            free[target] = free[target] - server.demand
            free[server.host] = free[server.host] + server.demand
    hosts = tuple(Host(h, f"{h}.example", True, True, capacity[h], used[h]) for h in names)
    return Inventory(hosts=hosts, servers=tuple(servers)), desired


#: The CLI's duration model and NIC sharing for the documented defaults (hostmap.timing).
PARAMS = MigrationParams()
LINKS = nic_links(PARAMS)
_duration = duration_model(PARAMS)


def measure(n_hosts: int, per_host: int, n_moves: int, n_cycles: int, repeats: int = 9) -> float:
    """Best-of-`repeats` CPU seconds `plan` takes on one generated cloud (building it is not counted)."""
    inventory, desired = build(n_hosts, per_host, n_moves, n_cycles, seed=n_hosts)
    seconds = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.process_time()
        result = plan(inventory, desired, max_per_host=2, parallel=40, duration=_duration, links=LINKS)
        seconds = min(seconds, time.process_time() - start)
    detours = sum(s.move.is_detour for s in result.steps)
    print(
        f"{n_hosts} hosts, {len(inventory.servers)} servers, {len(desired)} moves, {n_cycles} cycles: "
        f"{seconds:.2f} s CPU; {len(result.steps)} steps, {detours} detours, "
        f"estimate {result.estimated_s:.0f} s vs lower bound {result.lower_bound_s:.0f} s"
    )
    return seconds


def main() -> None:
    """Plan S4 and 2x S4 and print CPU seconds and their ratio, as shipped and with equal work per move."""
    s4 = measure(1000, 10, 3000, 20)
    double = measure(2000, 10, 6000, 40)
    print(f"S4 {s4:.2f} s, 2x {double:.2f} s, ratio {double / s4:.2f} (target: S4 <= 2 s, ratio <= 2.5)")
    # As shipped, the improvement passes share a budget of scheduled moves, so the 2x plan gets fewer passes.
    # With the same number of passes at both sizes, the ratio shows how one pass scales.
    passes.PARKING_PASSES, passes.PARKING_BUDGET = 3, 10**9
    s4 = measure(1000, 10, 3000, 20, repeats=3)
    double = measure(2000, 10, 6000, 40, repeats=3)
    print(f"with 3 improvement passes at both sizes: S4 {s4:.2f} s, 2x {double:.2f} s, ratio {double / s4:.2f}")


if __name__ == "__main__":
    main()
