"""Full-scale rehearsal: 3,000 moves among 10,000 servers on 1,000 hosts, on virtual time, and twice (or a fifth of) it.

Each size runs in a child process bounded by ``--timeout`` (wall seconds): the simulated cloud over HTTP on
loopback with a shared VirtualClock, the openstacksdk adapter, and ``apply_map`` as ``hostmap apply --yes`` runs it
(run lock, journal, resolve, plan, executor). The child prints one JSON line: wall seconds, CPU seconds of the
process (the client and the simulated cloud together: the figure to compare on a shared, loaded machine), the load
average, peak RSS, requests per migration, journal size; with ``--profile`` it also writes a cProfile dump (of the
client's thread) and prints the top functions.

Run from the repository root: ``python bench/bench_scale.py [--sizes 200,1000,2000] [--timeout 600] [--profile]``.
Not a test (minutes of wall time); the issue's bound is under 2 minutes at 1,000 hosts and at most 2.2x that for
twice the work. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

#: Servers per host, and moves per host: 10,000 servers and 3,000 moves at 1,000 hosts.
PER_HOST = 10
MOVES_PER_HOST = 3
FLAVORS = [(1, 2048, 20), (2, 4096, 40), (4, 8192, 80), (8, 16384, 160)]


def scenario(n_hosts: int, seed: int = 1) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A cloud of `n_hosts` hosts with PER_HOST servers each, and a map moving MOVES_PER_HOST * n_hosts of them to
    hosts with room for them (the end state fits; the order is the planner's)."""
    rng = random.Random(seed)
    hosts = [f"cmp{i:05d}" for i in range(n_hosts)]
    capacity = (128, 196608, 3200)  # room for ten of the largest flavor
    servers: list[dict[str, Any]] = []
    used = {h: [0, 0, 0] for h in hosts}
    for h in hosts:
        for j in range(PER_HOST):
            flavor = rng.randrange(len(FLAVORS))
            servers.append({"name": f"{h}-vm{j:02d}", "flavor": f"f{flavor}", "host": h})
            for k in range(3):
                used[h][k] += FLAVORS[flavor][k]
    free = {h: [capacity[k] - used[h][k] for k in range(3)] for h in hosts}
    placement = {s["name"]: s["host"] for s in servers}
    order = list(servers)
    rng.shuffle(order)
    moved = 0
    for server in order:
        if moved >= MOVES_PER_HOST * n_hosts:
            break
        demand = FLAVORS[int(server["flavor"][1:])]
        target = rng.choice(hosts)
        if target == server["host"] or any(demand[k] > free[target][k] for k in range(3)):
            continue
        for k in range(3):
            free[target][k] -= demand[k]
            free[server["host"]][k] += demand[k]
        placement[server["name"]] = target
        moved += 1
    data = {
        "description": f"scale {n_hosts} hosts",
        "hosts": [{"name": h, "vcpus": capacity[0], "memory_mb": capacity[1], "disk_gb": capacity[2],
                   "reserved_host_memory_mb": 0, "ram_allocation_ratio": 1.0, "cpu_allocation_ratio": 1.0,
                   "disk_allocation_ratio": 1.0} for h in hosts],
        "flavors": [{"name": f"f{i}", "vcpus": v, "ram": r, "disk": d} for i, (v, r, d) in enumerate(FLAVORS)],
        "servers": servers,
    }
    host_map: dict[str, list[str]] = {h: [] for h in hosts}
    for name, host in sorted(placement.items()):
        host_map[host].append(name)
    return data, host_map


def rehearse(n_hosts: int, profile: Path | None) -> dict[str, Any]:
    """One rehearsal at `n_hosts`, in this process; its figures."""
    from hostmap.apply import ApplySettings, apply_map
    from hostmap.clock import VirtualClock
    from hostmap.cloud.openstack import connect_with
    from hostmap.executor import ExecutorOptions
    from hostmap.hostmap_file import parse_host_map
    from hostmap.sim.scenario import parse_scenario
    from hostmap.sim.server import SimServer
    from hostmap.timing import MigrationParams, duration_model, nic_links

    data, host_map = scenario(n_hosts)
    params = MigrationParams()
    wall = time.perf_counter()
    start = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = start.ru_utime + start.ru_stime
    clock = VirtualClock()
    profiler = cProfile.Profile() if profile else None
    with tempfile.TemporaryDirectory() as tmp, SimServer(parse_scenario(data, "bench"), clock=clock) as sim:
        journal = Path(tmp) / "journal.sqlite"
        cloud = connect_with(sim.connect_kwargs())
        try:
            settings = ApplySettings(ExecutorOptions(), journal, duration_model(params), nic_links(params))
            if profiler:
                profiler.enable()
            result = apply_map(cloud, cloud_key=cloud.identity, clock=clock, host_map=parse_host_map(host_map, "map"),
                               map_text=json.dumps(host_map), settings=settings, reporters=[],
                               confirm_for=lambda inventory: None, interrupts=lambda: 0)
            if profiler:
                profiler.disable()
        finally:
            cloud.close()
        with sim.state.lock:
            requests = list(sim.state.requests)
            migrations = len(sim.state.migrations)
        journal_bytes = sum(p.stat().st_size for p in Path(tmp).glob("journal.sqlite*"))
    wall_s = time.perf_counter() - wall
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = usage.ru_utime + usage.ru_stime - cpu_before
    compute = sum(1 for _, path, _, _ in requests if path.startswith("/compute"))
    outcomes: dict[str, int] = {}
    for move in result.moves:
        outcomes[move.outcome] = outcomes.get(move.outcome, 0) + 1
    if profiler and profile:
        profiler.dump_stats(str(profile))
    return {
        "hosts": n_hosts, "servers": len(data["servers"]),
        "moves": sum(n for o, n in outcomes.items() if o != "skipped"), "reached": result.reached,
        "outcomes": outcomes, "makespan_s": round(result.makespan_s or 0.0, 1), "wall_s": round(wall_s, 1),
        "cpu_s": round(cpu_s, 1), "load_avg_1m": round(os.getloadavg()[0], 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "migrations": migrations, "compute_requests": compute,
        "requests_per_migration": round(compute / max(1, migrations), 1), "journal_kib": round(journal_bytes / 1024),
    }


def top_functions(profile: Path, count: int = 25) -> str:
    """The functions that took the most time, with what they called (cumulative), as pstats prints them."""
    out = io.StringIO()
    stats = pstats.Stats(str(profile), stream=out)
    stats.sort_stats("tottime").print_stats(count)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,2000", help="host counts, comma-separated (default 200,1000,2000)")
    parser.add_argument("--timeout", type=float, default=900.0, help="wall seconds allowed per size (default 900)")
    parser.add_argument("--profile", action="store_true", help="profile each size (cProfile), print the top functions")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        figures = rehearse(args.one, Path(args.profile_file) if args.profile_file else None)
        print(json.dumps(figures), flush=True)
        return 0
    for size in (int(s) for s in args.sizes.split(",")):
        profile = Path(tempfile.gettempdir()) / f"hostmap-scale-{size}.prof" if args.profile else None
        command = [sys.executable, __file__, "--one", str(size)]
        if profile:
            command += ["--profile-file", str(profile)]
        try:
            child = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=False)
        except subprocess.TimeoutExpired:
            print(json.dumps({"hosts": size, "timed_out_after_s": args.timeout}), flush=True)
            continue
        if child.returncode != 0:
            print(json.dumps({"hosts": size, "exit": child.returncode, "stderr": child.stderr[-2000:]}), flush=True)
            continue
        print(child.stdout.strip().splitlines()[-1], flush=True)
        if profile:
            print(top_functions(profile), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
