"""Makespan benchmark: end-to-end runs on the simulated cloud, against a lower bound and the one-at-a-time baseline.

Each scenario runs through the real path: the simulated cloud over HTTP on loopback with a shared VirtualClock,
the openstacksdk adapter, host map resolution, the planner and the executor without prompts (``--yes``).  The same
scenario then runs again the seed's way (``parallel=1``, ``max_per_host=1``) as the baseline.

Run from the repository root: ``python bench/bench_makespan.py [--quick] [--seeds N] [--json FILE]``.  Not a test:
every target is printed as PASS or MISS and the exit status is 0.  See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hostmap.clock import VirtualClock
from hostmap.cloud.openstack import connect_with
from hostmap.errors import InfeasiblePlanError
from hostmap.executor import Executor
from hostmap.hostmap_file import parse_host_map
from hostmap.planner import plan
from hostmap.resolve import resolve
from hostmap.sim.scenario import parse_scenario
from hostmap.sim.server import SimServer
from hostmap.timing import MigrationParams, duration_model, gbps_to_bytes_per_s, nic_links, solo_duration_s

GIB_MB = 1024
#: The migration timing the CLI gives the planner (`hostmap.timing.duration_model`): the documented defaults.
CLI_PARAMS = MigrationParams()

Scenario = dict[str, Any]
HostMapData = dict[str, list[str]]


# -- scenario helpers -----------------------------------------------------------------------------------------


def _host(name: str, memory_mb: int, *, vcpus: int = 256, disk_gb: int = 100_000) -> dict[str, Any]:
    """A compute host whose placement capacity is exactly `memory_mb` of RAM (no reserve, ratio 1)."""
    return {
        "name": name, "hypervisor_hostname": f"{name}.cloud.example.com", "vcpus": vcpus, "memory_mb": memory_mb,
        "disk_gb": disk_gb, "reserved_host_memory_mb": 0, "ram_allocation_ratio": 1.0,
        "cpu_allocation_ratio": 1.0, "disk_allocation_ratio": 1.0,
    }


def _flavors(sizes_gib: list[int]) -> list[dict[str, Any]]:
    return [{"name": f"r{g}g", "vcpus": max(1, g // 4), "ram": g * GIB_MB, "disk": 20} for g in sizes_gib]


def _host_map(placement: Mapping[str, str], hosts: list[str]) -> HostMapData:
    """Server name -> host as a host map: every host key, each with its servers."""
    result: HostMapData = {h: [] for h in hosts}
    for server, host in sorted(placement.items()):
        result[host].append(server)
    return result


def s1_drain() -> tuple[Scenario, HostMapData]:
    """S1: one host with 30 mixed VMs (2-32 GiB) drained to six empty, roomy hosts."""
    rng = random.Random(1)
    sizes = [2, 4, 8, 16, 32]
    targets = [f"compute{i:03d}" for i in range(2, 8)]
    servers = [{"name": f"vm-{j:02d}", "flavor": f"r{rng.choice(sizes)}g", "host": "compute001"} for j in range(30)]
    data: Scenario = {
        "description": "S1 drain compute001",
        "hosts": [_host("compute001", 1024 * GIB_MB)] + [_host(h, 1024 * GIB_MB) for h in targets],
        "flavors": _flavors(sizes),
        "servers": servers,
    }
    desired = {s["name"]: targets[j % len(targets)] for j, s in enumerate(servers)}
    return data, _host_map(desired, ["compute001", *targets])


def _random_fit(rng: random.Random, ram: Mapping[str, int], hosts: list[str], capacity: int) -> dict[str, str] | None:
    """Largest first, each server on a random host where it fits; None if some server found no room."""
    free = dict.fromkeys(hosts, capacity)
    placement: dict[str, str] = {}
    for name in sorted(ram, key=lambda n: (-ram[n], rng.random())):
        fitting = [h for h in hosts if free[h] >= ram[name]]
        if not fitting:
            return None
        host = rng.choice(fitting)
        placement[name] = host
        free[host] -= ram[name]
    return placement


def s2_rebalance(seed: int, n_hosts: int = 40, n_servers: int = 200, use: float = 0.85) -> tuple[Scenario, HostMapData]:
    """S2: 200 VMs (2-16 GiB) over 40 equal hosts at 85 % RAM use; random current and desired placements."""
    rng = random.Random(1000 + seed)
    sizes = [2, 4, 8, 16]
    hosts = [f"compute{i:03d}" for i in range(1, n_hosts + 1)]
    ram = {f"vm-{j:03d}": rng.choice(sizes) * GIB_MB for j in range(n_servers)}
    capacity = -(-int(sum(ram.values()) / use / n_hosts) // GIB_MB) * GIB_MB  # whole GiB, use <= 85 %
    current = desired = None
    while current is None or desired is None:
        current = _random_fit(rng, ram, hosts, capacity)
        desired = _random_fit(rng, ram, hosts, capacity)
    data: Scenario = {
        "description": f"S2 rebalance, seed {seed}",
        "hosts": [_host(h, capacity) for h in hosts],
        "flavors": _flavors(sizes),
        "servers": [{"name": n, "flavor": f"r{ram[n] // GIB_MB}g", "host": current[n]} for n in sorted(ram)],
    }
    return data, _host_map(desired, hosts)


def s3_ring(k: int, *, pivot: bool, per_host: int = 4, size_gib: int = 8) -> tuple[Scenario, HostMapData]:
    """S3: k exactly full hosts, each sending one VM to the next; a spare host with one free slot, or none."""
    ring = [f"ring{i:02d}" for i in range(k)]
    spare = "spare01"
    servers: list[dict[str, Any]] = []
    desired: dict[str, str] = {}
    for i, h in enumerate(ring):
        for j in range(per_host):
            name = f"{h}-vm{j}"
            servers.append({"name": name, "flavor": f"r{size_gib}g", "host": h})
            desired[name] = ring[(i + 1) % k] if j == 0 else h
    # The spare host holds per_host - 1 VMs; with a pivot its capacity leaves exactly one slot, without it is full.
    for j in range(per_host - 1):
        name = f"{spare}-vm{j}"
        servers.append({"name": name, "flavor": f"r{size_gib}g", "host": spare})
        desired[name] = spare
    full = per_host * size_gib * GIB_MB
    data: Scenario = {
        "description": f"S3 ring of {k}, {'with' if pivot else 'without'} a pivot slot",
        "hosts": [_host(h, full) for h in ring] + [_host(spare, full if pivot else full - size_gib * GIB_MB)],
        "flavors": _flavors([size_gib]),
        "servers": servers,
    }
    return data, _host_map(desired, [*ring, spare])


# -- the lower bound ------------------------------------------------------------------------------------------


@dataclass
class Bound:
    """The makespan lower bound and its three terms (seconds), and the room bound the issue's bound leaves out."""

    seconds: float
    per_source_s: float
    nic_s: float
    longest_s: float
    #: RAM x solo duration summed over the moves / the RAM free in the whole cloud before the first move.  Nova
    #: holds an in-flight server's RAM on its source and its target, so at any moment the servers in flight hold
    #: at most the free RAM: no schedule, detours or not, ends sooner.  Not part of `seconds` (the issue's bound).
    room_s: float

    @property
    def capacity_aware_s(self) -> float:
        """The issue's bound with the room term: what a schedule on a nearly full cloud can be measured against."""
        return max(self.seconds, self.room_s)


def lower_bound(data: Scenario, host_map: HostMapData) -> Bound:
    """max(busiest source at one migration at a time, busiest NIC direction, longest migration), from the scenario.

    Durations are solo durations (`timing.solo_duration_s` at min(stream, both NICs)).  A migration's bytes through
    a NIC are at least rate x copy time of its solo run: it cannot copy faster and dirties memory all the while.
    Independent of the planner: only which server must go from where to where counts.
    """
    migration = data.get("migration", {})
    params = MigrationParams(**{k: v for k, v in migration.items() if k != "max_concurrent_live_migrations"})
    nic = {h["name"]: float(h.get("nic_gbps", params.nic_gbps)) for h in data["hosts"]}
    ram = {f["name"]: int(f["ram"]) for f in data["flavors"]}
    where = {s["name"]: (s["host"], ram[s["flavor"]]) for s in data["servers"]}
    per_source: dict[str, float] = {}
    out_bytes: dict[str, float] = {}
    in_bytes: dict[str, float] = {}
    longest = 0.0
    ram_s = 0.0
    used = dict.fromkeys(nic, 0)
    for source, ram_mb in where.values():
        used[source] += ram_mb
    # Capacity as placement computes it, from the simulator's own host model (reserved and allocation ratio).
    free_ram = sum(max(0, h.capacity()[1] - used[h.name]) for h in parse_scenario(data, "bench").hosts)
    for target, names in host_map.items():
        for name in names:
            source, ram_mb = where[name]
            if source == target:
                continue
            gbps = min(params.stream_gbps, nic[source], nic[target])
            seconds = solo_duration_s(ram_mb, params, gbps)
            moved = gbps_to_bytes_per_s(gbps) * (seconds - params.setup_s)
            per_source[source] = per_source.get(source, 0.0) + seconds
            out_bytes[source] = out_bytes.get(source, 0.0) + moved
            in_bytes[target] = in_bytes.get(target, 0.0) + moved
            longest = max(longest, seconds)
            ram_s += ram_mb * seconds
    limit = int(migration.get("max_concurrent_live_migrations", 1))
    src = max(per_source.values(), default=0.0) / limit
    nic_s = max(
        [b / gbps_to_bytes_per_s(nic[h]) for h, b in out_bytes.items()]
        + [b / gbps_to_bytes_per_s(nic[h]) for h, b in in_bytes.items()],
        default=0.0,
    )
    return Bound(max(src, nic_s, longest), src, nic_s, longest, ram_s / free_ram if free_ram > 0 else 0.0)


# -- one end-to-end run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one end-to-end run measured."""

    makespan_s: float
    #: When the last migration switched over in the simulated cloud (makespan_s minus observation lag).
    sim_end_s: float
    planned_s: float
    steps: int
    detours: int
    migrations: int
    no_valid_host: int
    outcomes: dict[str, int]
    reached: bool
    compute_requests: int
    requests_per_migration: float
    infeasible: str = ""
    mutating_requests: int = 0
    wall_s: float = 0.0


_duration = duration_model(CLI_PARAMS)


def run(data: Scenario, host_map: HostMapData, *, parallel: int | None, max_per_host: int) -> Run:
    """Plan and apply `host_map` on a fresh simulated cloud of `data`, on virtual time."""
    wall = time.perf_counter()
    clock = VirtualClock()
    with SimServer(parse_scenario(data, data.get("description", "bench")), clock=clock) as sim:
        cloud = connect_with(sim.connect_kwargs())
        try:
            inventory = cloud.inventory()
            desired = resolve(parse_host_map(host_map, "bench map"), inventory).targets
            try:
                the_plan = plan(inventory, desired, max_per_host=max_per_host, parallel=parallel, duration=_duration,
                                links=nic_links(CLI_PARAMS))
            except InfeasiblePlanError as error:
                return Run(0.0, 0.0, 0.0, 0, 0, 0, 0, {}, False, 0, 0.0, infeasible=str(error),
                           mutating_requests=sim.state.mutating_request_count(),
                           wall_s=time.perf_counter() - wall)
            first_request = len(sim.state.requests)
            started = clock.now()
            result = Executor(cloud, clock).run(the_plan, inventory)  # within the plan's limits
        finally:
            cloud.close()
        with sim.state.lock:
            requests = list(sim.state.requests[first_request:])
            migrations = list(sim.state.migrations)
    compute = sum(1 for _, path, _, _ in requests if path.startswith("/compute"))
    outcomes: dict[str, int] = {}
    for move in result.moves:
        outcomes[move.outcome] = outcomes.get(move.outcome, 0) + 1
    ends = [m.finished_s for m in migrations if m.finished_s is not None]
    return Run(
        makespan_s=result.makespan_s or 0.0,
        sim_end_s=max(ends, default=started) - started,
        planned_s=the_plan.estimated_s,
        steps=len(the_plan.steps),
        detours=sum(1 for s in the_plan.steps if s.move.is_detour),
        migrations=len(migrations),
        no_valid_host=sum(1 for m in result.moves if "no valid host" in m.reason.lower()),
        outcomes=outcomes,
        reached=result.reached,
        compute_requests=compute,
        requests_per_migration=compute / max(1, len(migrations)),
        mutating_requests=sim.state.mutating_request_count(),
        wall_s=time.perf_counter() - wall,
    )


# -- scenarios, targets and printing --------------------------------------------------------------------------


@dataclass
class Case:
    """One scenario instance: its bound, the parallel run and the baseline run."""

    scenario: str
    name: str
    bound: Bound
    hostmap: Run
    baseline: Run | None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.hostmap.makespan_s / self.bound.seconds if self.bound.seconds else 0.0

    @property
    def estimate_error(self) -> float:
        """(makespan - the plan's estimate) / estimate: how much later (> 0) the run ended than planned."""
        r = self.hostmap
        return (r.makespan_s - r.planned_s) / r.planned_s if r.planned_s else 0.0

    @property
    def aware_ratio(self) -> float:
        """The makespan against the capacity-aware bound (the issue's bound with the room term)."""
        aware = self.bound.capacity_aware_s
        return self.hostmap.makespan_s / aware if aware else 0.0


@dataclass
class Target:
    """One target of the issue and whether this run met it."""

    scenario: str
    text: str
    value: str
    met: bool


def _outcomes(run_: Run) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(run_.outcomes.items())) or "-"


def print_case(case: Case) -> None:
    """One line for the hostmap run and one for the baseline."""
    r, b = case.hostmap, case.baseline
    if r.infeasible:
        print(f"  {case.name:<22} InfeasiblePlanError ({r.infeasible}); mutating requests {r.mutating_requests}")
        return
    print(
        f"  {case.name:<22} makespan {r.makespan_s:8.1f} s (sim end {r.sim_end_s:7.1f}, plan est. {r.planned_s:7.1f})"
        f"  bound {case.bound.seconds:7.1f} s  ratio {case.ratio:5.3f}  room bound {case.bound.room_s:6.1f} s"
        f"  ratio to max(bound, room) {case.aware_ratio:5.3f}  est. error {case.estimate_error:+6.1%}"
        f"  moves {r.steps:3d}  detours {r.detours}"
        f"  no-valid-host {r.no_valid_host}  req/mig {r.requests_per_migration:5.1f}  [{_outcomes(r)}]"
    )
    if b is not None:
        speedup = b.makespan_s / r.makespan_s if r.makespan_s else 0.0
        print(
            f"  {'  baseline (1 at a time)':<22} makespan {b.makespan_s:8.1f} s (sim end {b.sim_end_s:7.1f})"
            f"{'':>20}  ratio {b.makespan_s / case.bound.seconds:5.3f}  moves {b.steps:3d}  detours {b.detours}"
            f"  no-valid-host {b.no_valid_host}  req/mig {b.requests_per_migration:5.1f}  [{_outcomes(b)}]"
            f"  speed-up x{speedup:.2f}"
        )


def compute(scenario: str, name: str, data: Scenario, host_map: HostMapData, *, baseline: bool = True) -> Case:
    """Run one scenario instance both ways."""
    bound = lower_bound(data, host_map)
    fast = run(data, host_map, parallel=None, max_per_host=1)
    slow = run(data, host_map, parallel=1, max_per_host=1) if baseline and not fast.infeasible else None
    return Case(scenario, name, bound, fast, slow)


def measure(scenario: str, name: str, data: Scenario, host_map: HostMapData, *, baseline: bool = True) -> Case:
    """Run one scenario instance both ways and print it."""
    case = compute(scenario, name, data, host_map, baseline=baseline)
    print_case(case)
    sys.stdout.flush()
    return case


def _s2_case(seed: int) -> Case:
    data, host_map = s2_rebalance(seed)
    return compute("S2", f"seed {seed}", data, host_map)


def bench_s1() -> tuple[list[Case], list[Target]]:
    print("S1 drain one host of 30 mixed VMs (2-32 GiB) to six empty hosts")
    data, host_map = s1_drain()
    case = measure("S1", "drain compute001", data, host_map)
    targets = [Target("S1", "makespan <= 1.05 x bound", f"{case.ratio:.3f}", case.ratio <= 1.05)]
    return [case], targets


def bench_s2(seeds: int, jobs: int) -> tuple[list[Case], list[Target]]:
    print(f"S2 rebalance 200 VMs (2-16 GiB) over 40 hosts at 85 % RAM use, {seeds} seeds")
    cases: list[Case] = []
    # Each seed has its own simulated cloud and virtual clock, so running seeds side by side changes no figure.
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for case in pool.map(_s2_case, range(seeds)):
            print_case(case)
            sys.stdout.flush()
            cases.append(case)
    ratios = [c.ratio for c in cases]
    failures = sum(c.hostmap.no_valid_host for c in cases)
    speedups = [c.baseline.makespan_s / c.hostmap.makespan_s for c in cases if c.baseline and c.hostmap.makespan_s]
    median, worst = statistics.median(ratios), max(ratios)
    room = [c.bound.room_s / c.bound.seconds for c in cases]
    aware = [c.aware_ratio for c in cases]
    print(f"  ratio median {median:.3f}, worst {worst:.3f}; speed-up median x{statistics.median(speedups):.2f}; "
          f"'No valid host' {failures}")
    print(f"  room bound / bound: median {statistics.median(room):.3f}, worst {max(room):.3f}, "
          f"{sum(r > 1.15 for r in room)} of {len(room)} seeds above 1.15 (no schedule can beat the room bound); "
          f"ratio to max(bound, room) median {statistics.median(aware):.3f}, worst {max(aware):.3f}")
    targets = [
        Target("S2", "median ratio <= 1.15", f"{median:.3f}", median <= 1.15),
        Target("S2", "worst ratio <= 1.3", f"{worst:.3f}", worst <= 1.3),
        Target("S2", "zero 'No valid host'", str(failures), failures == 0),
    ]
    return cases, targets


def bench_s3() -> tuple[list[Case], list[Target]]:
    print("S3 zero-slack rings of k full hosts (8 GiB VMs), with one pivot slot elsewhere and without")
    cases: list[Case] = []
    targets: list[Target] = []
    for k in (2, 4, 8):
        data, host_map = s3_ring(k, pivot=True)
        case = measure("S3", f"ring of {k}, pivot", data, host_map)
        d = solo_duration_s(8 * GIB_MB, CLI_PARAMS)
        goal = (k + 1) * d
        case.extra = {"k_plus_1_d_s": goal}
        ratio = case.hostmap.makespan_s / goal
        print(f"  {'':<22} (k+1) x d = {goal:.2f} s, makespan / (k+1)d = {ratio:.3f}, sim end / (k+1)d = "
              f"{case.hostmap.sim_end_s / goal:.3f}")
        ok = case.hostmap.reached and case.hostmap.detours == 1
        targets.append(Target("S3", f"ring {k}: one detour, all migrated", str(case.hostmap.detours), ok))
        targets.append(Target("S3", f"ring {k}: makespan <= 1.02 x (k+1) x d", f"{ratio:.3f}", ratio <= 1.02))
        cases.append(case)
        data, host_map = s3_ring(k, pivot=False)
        case = measure("S3", f"ring of {k}, no pivot", data, host_map, baseline=False)
        r = case.hostmap
        targets.append(Target("S3", f"ring {k} no pivot: InfeasiblePlanError, nothing moved",
                              f"{'infeasible' if r.infeasible else 'planned'}, {r.mutating_requests} mutating",
                              bool(r.infeasible) and r.mutating_requests == 0))
        cases.append(case)
    return cases, targets


def main(argv: list[str] | None = None) -> int:
    """Run S1, S2 and S3 and print the figures and PASS/MISS per target; always returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="S2 with 2 seeds")
    parser.add_argument("--seeds", type=int, default=None, metavar="N", help="S2 seeds (default 20)")
    parser.add_argument("--jobs", type=int, default=2, metavar="J", help="S2 seeds run side by side (default 2)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write every figure to FILE as JSON")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 20)
    wall = time.perf_counter()
    cases: list[Case] = []
    targets: list[Target] = []
    for part in (bench_s1(), bench_s2(max(1, seeds), args.jobs), bench_s3()):
        cases += part[0]
        targets += part[1]
    for scenario in ("S1", "S2", "S3"):
        errors = [abs(c.estimate_error) for c in cases if c.scenario == scenario and not c.hostmap.infeasible]
        if errors:
            worst_error = max(errors)
            targets.append(Target(scenario, "plan's estimate within 5 % of the run (worst)", f"{worst_error:.1%}",
                                  worst_error <= 0.05))
    print("\nTargets")
    for t in targets:
        print(f"  {'PASS' if t.met else 'MISS'}  {t.scenario} {t.text}: {t.value}")
    elapsed = time.perf_counter() - wall
    print(f"\n{len(cases)} scenario runs in {elapsed:.0f} s wall")
    if args.json:
        document = {
            "date": time.strftime("%Y-%m-%d"),
            "seeds": seeds,
            "command": " ".join(["python", "bench/bench_makespan.py", *(argv if argv is not None else sys.argv[1:])]),
            "wall_s": elapsed,
            "cases": [{**asdict(c), "ratio": c.ratio, "aware_ratio": c.aware_ratio, "estimate_error": c.estimate_error}
                      for c in cases],
            "targets": [asdict(t) for t in targets],
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
