"""Drain benchmark D1: `drain_map`'s peak use against a lower bound and the exact optimum, its makespan, the usual way.

D1 drains 2 of 40 hosts of a cloud at 85 % RAM use whose servers are all in anti-affinity groups of 3, for several
seeds.  Per seed it reports:

1. the highest use of any resource on any target host after the drain (`Drain.peak`) against a lower bound (see
   `peak_lower_bound`) and, with OR-Tools installed (`pip install -e '.[bench]'`), the exact minimum peak from
   CP-SAT within a time limit;
2. the makespan of planning and applying the drain map with hostmap on the simulated cloud (virtual time, the path
   of bench_makespan.py) against max(bound, room bound) of bench_makespan.py;
3. the same drain done the usual way: the drained hosts' services disabled, then one `openstack server migrate
   --live-migration --wait` at a time with no host (the simulated scheduler picks the target), its makespan and
   the peak it leaves.

A side experiment (`--small N`) compares `drain_map` with the exact optimum on N small random drains.

Run from the repository root: ``python bench/bench_drain.py [--quick] [--seeds N] [--small N] [--json FILE]``.  Not
a test: it prints figures and exits 0.  Everything is bounded by `--time-limit` (wall seconds).  See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import openstack
from bench_makespan import GIB_MB, Bound, Run, _flavors, _host, lower_bound, run

from hostmap.clock import VirtualClock
from hostmap.cloud.openstack import connect_with
from hostmap.drain import Drain, drain_map, use_fraction
from hostmap.errors import DrainDoesNotFit
from hostmap.model import Host, Inventory, Resources, Server, ServerGroup
from hostmap.policy import exclusive_groups
from hostmap.sim.scenario import parse_scenario
from hostmap.sim.server import SimServer

try:
    from ortools.sat.python import cp_model
except ImportError:  # an optional extra: the bound still runs without it
    cp_model = None

Scenario = dict[str, Any]
#: `openstack server migrate --wait` polls the server every 5 s (osc-lib's `wait_for_status` default).
OSC_POLL_S = 5.0
#: The usual way gives up on a server that is still migrating after this many virtual seconds.
OSC_WAIT_LIMIT_S = 3600.0
#: CP-SAT's objective is the peak in units of 1 / PEAK_SCALE.
PEAK_SCALE = 100_000


# -- the D1 cloud ---------------------------------------------------------------------------------------------


def d1_cloud(seed: int, n_hosts: int = 40, host_gib: int = 128, use: float = 0.85,
             group_size: int = 3) -> tuple[Scenario, list[str]]:
    """D1's cloud for `seed` and the 2 hosts to drain.

    Servers of 2, 4, 8 or 16 GiB are created one by one until 85 % of the RAM is used, each group of `group_size`
    consecutive servers an anti-affinity group, and each placed as nova's default scheduler places a new server:
    on the host with the most free RAM that has room and no member of its group.
    """
    rng = random.Random(5000 + seed)
    sizes = [2, 4, 8, 16]
    hosts = [f"compute{i:03d}" for i in range(1, n_hosts + 1)]
    free = dict.fromkeys(hosts, host_gib)
    goal = round(use * n_hosts * host_gib)
    servers: list[dict[str, Any]] = []
    groups: list[list[str]] = []
    total = 0
    while total < goal:
        size = rng.choice([s for s in sizes if total + s <= goal] or [goal - total])
        name = f"vm-{len(servers):03d}"
        if len(servers) % group_size == 0:
            groups.append([])
        taken = {s["host"] for s in servers if s["name"] in groups[-1]}
        fitting = [h for h in hosts if free[h] >= size and h not in taken]
        if not fitting:
            break
        host = max(fitting, key=lambda h: (free[h], -hosts.index(h)))
        free[host] -= size
        total += size
        servers.append({"name": name, "flavor": f"r{size}g", "host": host})
        groups[-1].append(name)
    drained = sorted(rng.sample(hosts, 2))
    data: Scenario = {
        "description": f"D1 drain {' '.join(drained)}, seed {seed}",
        "hosts": [_host(h, host_gib * GIB_MB) for h in hosts],
        "flavors": _flavors(sorted({int(s["flavor"][1:-1]) for s in servers})),
        "servers": servers,
        "server_groups": [{"name": f"aa-{i:03d}", "policy": "anti-affinity", "members": members}
                          for i, members in enumerate(groups) if len(members) >= 2],
    }
    return data, drained


def inventory_of(data: Scenario) -> Inventory:
    """The inventory `hostmap drain` reads: the simulated cloud of `data` through the openstacksdk adapter."""
    with SimServer(parse_scenario(data, "bench"), clock=VirtualClock()) as sim:
        cloud = connect_with(sim.connect_kwargs())
        try:
            return cloud.inventory()
        finally:
            cloud.close()


# -- the lower bound on the peak ------------------------------------------------------------------------------


@dataclass
class PeakBound:
    """A lower bound on the lowest peak any drain can reach, and its terms."""

    value: float
    #: The highest use of a target before the drain: targets only receive.
    before: float
    #: Per resource, the lowest level the targets' room up to which holds the moving demand, in its granularity.
    fill: float
    #: The largest-server term: each moving server raises some allowed host to at least this.
    largest: float

    @property
    def by(self) -> str:
        """Which term sets the bound."""
        return max((self.before, "before"), (self.fill, "fill"), (self.largest, "largest"))[1]


@dataclass(frozen=True)
class Problem:
    """The drain as the exact model and the bound see it: targets, moving servers and the hard groups."""

    targets: tuple[Host, ...]
    moving: tuple[Server, ...]
    #: Per moving server, the target indices that have room and whose staying group members allow it.
    allowed: tuple[tuple[int, ...], ...]
    #: (group number, allowed per host) -> per target, members that stay there.
    staying: Mapping[tuple[int, int], tuple[int, ...]]
    #: Moving server index -> its (group number, allowed per host) tokens.
    tokens: tuple[tuple[tuple[int, int], ...], ...]


def problem_of(inventory: Inventory, drained: Sequence[str]) -> Problem:
    """The drain of `drained` with hostmap's rules (capacity, hard anti-affinity); affinity and zones are refused."""
    if any(g.policy == "affinity" for g in inventory.groups) or any(s.pinned_zone for s in inventory.servers):
        raise ValueError("the exact model covers capacity and hard anti-affinity only")
    names = set(drained)
    targets = tuple(sorted((h for h in inventory.hosts if h.enabled and h.up and h.name not in names),
                           key=lambda h: h.name))
    index = {h.name: i for i, h in enumerate(targets)}
    moving = tuple(sorted((s for s in inventory.servers if s.host in names), key=lambda s: (s.name, s.id)))
    exclusive = exclusive_groups(inventory)
    staying: dict[tuple[int, int], list[int]] = {}
    for server in inventory.servers:
        for token in exclusive.get(server.id, ()):
            counts = staying.setdefault(token, [0] * len(targets))
            if server.host in index:
                counts[index[server.host]] += 1
    allowed = tuple(
        tuple(h for h, host in enumerate(targets)
              if (host.used + s.demand).fits_within(host.capacity)
              and all(staying[t][h] < t[1] for t in exclusive.get(s.id, ())))
        for s in moving)
    return Problem(targets, moving, allowed, {t: tuple(c) for t, c in staying.items()},
                   tuple(exclusive.get(s.id, ()) for s in moving))


def _fields(r: Resources) -> tuple[int, int, int]:
    return r.vcpu, r.memory_mb, r.disk_gb


def peak_lower_bound(problem: Problem) -> PeakBound:
    """max(highest use before, fill level, largest server): no drain of `problem` peaks lower.

    * before: a target's use only grows.
    * fill (per resource r): the moving demand D_r must fit into the targets' room below the peak p, and a host
      receives whole servers, so it takes at most the largest multiple of g_r (the gcd of the moving sizes) that
      keeps it at or under p: p must satisfy sum over targets of floor_g((p x cap - used) / g) x g >= D_r.  The
      smallest such p is a bound for every resource, so their largest is one for the peak.
    * largest: a moving server lands on a host that has room and no staying member of its anti-affinity groups;
      the lowest peak it can give there (over every resource) bounds the peak, for every server.
    """
    targets = problem.targets
    if not problem.moving:
        return PeakBound(0.0, 0.0, 0.0, 0.0)
    before = max((use_fraction(h.used, h.capacity) for h in targets), default=0.0)
    fill = 0.0
    for r in range(3):
        sizes = [_fields(s.demand)[r] for s in problem.moving]
        demand = sum(sizes)
        grain = math.gcd(*sizes)
        if demand == 0 or grain == 0:
            continue
        caps = [_fields(h.capacity)[r] for h in targets]
        used = [_fields(h.used)[r] for h in targets]
        fill = max(fill, _fill_level(caps, used, demand, grain))
    largest = 0.0
    for s, hosts in zip(problem.moving, problem.allowed, strict=True):
        largest = max(largest, min((use_fraction(targets[h].used + s.demand, targets[h].capacity) for h in hosts),
                                   default=math.inf))
    return PeakBound(max(before, fill, largest), before, fill, largest)


def _fill_level(caps: Sequence[int], used: Sequence[int], demand: int, grain: int) -> float:
    """The smallest level p at which the whole-grain room under p x cap, summed over hosts, holds `demand`."""
    hosts = [(c, u) for c, u in zip(caps, used, strict=True) if c > 0]

    def room(p: Fraction) -> int:
        return sum(max(0, math.floor((p * c - u) / grain)) * grain for c, u in hosts)

    if room(Fraction(1)) < demand:
        return math.inf
    lo, hi = Fraction(0), Fraction(1)
    for _ in range(40):
        mid = (lo + hi) / 2
        if room(mid) >= demand:
            hi = mid
        else:
            lo = mid
    # Room grows only at a host's use after whole grains: the level is the first of these above `lo` that holds it.
    levels = [Fraction(u + grain * (math.floor((lo * c - u) / grain) + 1), c) for c, u in hosts]
    return float(min((v for v in levels if lo < v <= hi and room(v) >= demand), default=hi))


# -- the exact optimum ----------------------------------------------------------------------------------------


@dataclass
class Exact:
    """CP-SAT's answer: the status, the best peak found (exact, from its placement) and its proven bound."""

    status: str
    peak: float | None
    bound: float
    seconds: float


def exact_min_peak(problem: Problem, time_limit_s: float, workers: int = 2) -> Exact | None:
    """The lowest peak of any drain of `problem` (capacity, hard anti-affinity) by CP-SAT; None without OR-Tools."""
    if cp_model is None:
        return None
    started = time.perf_counter()
    targets, moving = problem.targets, problem.moving
    if any(not hosts for hosts in problem.allowed):
        return Exact("INFEASIBLE", None, math.inf, 0.0)
    model = cp_model.CpModel()
    x = {(s, h): model.new_bool_var(f"x{s}_{h}") for s, hosts in enumerate(problem.allowed) for h in hosts}
    for s, hosts in enumerate(problem.allowed):
        model.add_exactly_one(x[s, h] for h in hosts)
    peak = model.new_int_var(0, PEAK_SCALE, "peak")
    for h, host in enumerate(targets):
        arriving = [s for s in range(len(moving)) if (s, h) in x]
        for r in range(3):
            cap, used = _fields(host.capacity)[r], _fields(host.used)[r]
            load = used + sum(_fields(moving[s].demand)[r] * x[s, h] for s in arriving)
            model.add(load <= cap)
            if cap > 0:
                model.add(PEAK_SCALE * load <= cap * peak)
    for token, counts in problem.staying.items():
        members = [s for s in range(len(moving)) if token in problem.tokens[s]]
        if len(members) < 2 and not any(counts):
            continue
        for h in range(len(targets)):
            here = [x[s, h] for s in members if (s, h) in x]
            if here:
                model.add(counts[h] + sum(here) <= token[1])
    model.minimize(peak)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    status = solver.solve(model)
    name = solver.status_name(status)
    found: float | None = None
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        load = [h.used for h in targets]
        for (s, h), var in x.items():
            if solver.value(var):
                load[h] = load[h] + moving[s].demand
        found = max(use_fraction(load[h], host.capacity) for h, host in enumerate(targets))
    # The objective counts the peak rounded up to 1 / PEAK_SCALE: the true optimum is above bound - 1 unit.
    proven = (solver.best_objective_bound - 1) / PEAK_SCALE if name != "INFEASIBLE" else math.inf
    if name == "OPTIMAL" and found is not None:
        proven = found
    return Exact(name, found, max(0.0, proven), time.perf_counter() - started)


# -- the usual way --------------------------------------------------------------------------------------------


@dataclass
class Usual:
    """The one-at-a-time drain with targets left to the scheduler."""

    makespan_s: float
    migrated: int
    failed: int
    peak: float
    #: Target host -> servers it received.
    arrivals: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    wall_s: float = 0.0


def usual_way(data: Scenario, drained: Sequence[str]) -> Usual:
    """Disable the drained hosts, then `openstack server migrate --live-migration --wait` each server on them in turn.

    `--live-migration` without `--host` sends os-migrateLive with host null (block_migration auto), and the
    scheduler chooses; `--wait` polls the server every OSC_POLL_S until it is ACTIVE (or ERROR) again.  Servers
    go in name order, host by host.
    """
    wall = time.perf_counter()
    clock = VirtualClock()
    with SimServer(parse_scenario(data, "bench usual way"), clock=clock) as sim:
        cloud = connect_with(sim.connect_kwargs())
        conn = openstack.connect(load_envvars=False, load_yaml_config=False, **sim.connect_kwargs())
        try:
            for host in drained:
                cloud.set_service(host, enabled=False, reason="bench: usual-way drain")
            before = {s.id: s.host for s in cloud.inventory().servers}
            leaving = sorted((s for s in cloud.inventory().servers if s.host in drained),
                             key=lambda s: (drained.index(s.host or ""), s.name))
            first_request = len(sim.state.requests)
            started = clock.now()
            failed = 0
            for server in leaving:
                try:
                    conn.compute.live_migrate_server(server.id, host=None, force=False, block_migration="auto")
                except openstack.exceptions.HttpException:
                    failed += 1
                    continue
                waited = 0.0
                while waited < OSC_WAIT_LIMIT_S:
                    clock.sleep(OSC_POLL_S)
                    waited += OSC_POLL_S
                    if conn.compute.get_server(server.id).status in ("ACTIVE", "ERROR"):
                        break
            makespan = clock.now() - started
            inventory = cloud.inventory()
            requests = len(sim.state.requests) - first_request
        finally:
            conn.close()
            cloud.close()
    after = {s.id: s.host for s in inventory.servers}
    arrivals: dict[str, int] = {}
    for server in leaving:
        host = after[server.id]
        if host != before[server.id]:
            arrivals[host or ""] = arrivals.get(host or "", 0) + 1
    stuck = sum(1 for s in leaving if after[s.id] in drained)
    targets = [h for h in inventory.hosts if h.name not in drained and h.enabled and h.up]
    peak = max(use_fraction(h.used, h.capacity) for h in targets)
    return Usual(makespan, len(leaving) - stuck, stuck, peak, dict(sorted(arrivals.items())), requests,
                 time.perf_counter() - wall)


# -- one D1 seed ----------------------------------------------------------------------------------------------


@dataclass
class D1Case:
    """Every figure of one D1 seed."""

    seed: int
    drained: list[str]
    servers: int
    moving: int
    peak_before: float
    drain_peak: float
    drain_ms: float
    bound: PeakBound
    exact: Exact | None
    makespan: Bound
    hostmap: Run
    usual: Usual


def _names(drain: Drain, inventory: Inventory) -> dict[str, list[str]]:
    name = {s.id: s.name for s in inventory.servers}
    return {host: [name[i] for i in ids] for host, ids in drain.host_map().items()}


def time_drain(inventory: Inventory, drained: Sequence[str], repeat: int = 3) -> tuple[Drain, float]:
    """drain_map's result and its fastest time of `repeat` runs, in milliseconds."""
    best = math.inf
    result: Drain | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = drain_map(inventory, drained)
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return result, best * 1000


def d1_case(seed: int, exact_s: float, workers: int) -> D1Case:
    """Build seed `seed`'s cloud, drain it three ways and measure."""
    data, drained = d1_cloud(seed)
    inventory = inventory_of(data)
    drain, drain_ms = time_drain(inventory, drained)
    problem = problem_of(inventory, drained)
    bound = peak_lower_bound(problem)
    exact = exact_min_peak(problem, exact_s, workers) if exact_s > 0 else None
    host_map = _names(drain, inventory)
    hostmap_run = run(data, host_map, parallel=None, max_per_host=1)
    return D1Case(
        seed=seed, drained=list(drained), servers=len(inventory.servers), moving=len(problem.moving),
        peak_before=max(use_fraction(h.used, h.capacity) for h in problem.targets),
        drain_peak=drain.peak, drain_ms=drain_ms, bound=bound, exact=exact,
        makespan=lower_bound(data, host_map), hostmap=hostmap_run, usual=usual_way(data, drained),
    )


def print_d1(case: D1Case) -> None:
    """Three lines for one seed: peak, hostmap's run, the usual way."""
    e = case.exact
    exact = "exact: no OR-Tools" if e is None else (
        f"exact {e.peak:.4f} ({e.status}, proven >= {e.bound:.4f}, {e.seconds:.1f} s)" if e.peak is not None
        else f"exact: {e.status} ({e.seconds:.1f} s)")
    print(f"  seed {case.seed}: drain {' '.join(case.drained)}: {case.moving} of {case.servers} servers move; "
          f"targets' peak before {case.peak_before:.4f}")
    print(f"    drain_map peak {case.drain_peak:.4f} in {case.drain_ms:.0f} ms; bound {case.bound.value:.4f} "
          f"(before {case.bound.before:.4f}, fill {case.bound.fill:.4f}, largest {case.bound.largest:.4f}); {exact}")
    r, b = case.hostmap, case.makespan
    aware = b.capacity_aware_s
    print(f"    hostmap: makespan {r.makespan_s:.1f} s (plan est. {r.planned_s:.1f}), bound {b.seconds:.1f} s, room "
          f"bound {b.room_s:.1f} s, ratio to max(bound, room) {r.makespan_s / aware if aware else 0:.3f}; "
          f"moves {r.steps}, detours {r.detours}, reached {r.reached}, no-valid-host {r.no_valid_host}")
    u = case.usual
    print(f"    usual way: makespan {u.makespan_s:.1f} s (x{u.makespan_s / r.makespan_s if r.makespan_s else 0:.2f}), "
          f"peak {u.peak:.4f}, migrated {u.migrated}, left {u.failed}, targets used {len(u.arrivals)}, "
          f"most arrivals on one host {max(u.arrivals.values(), default=0)}")
    sys.stdout.flush()


# -- the side experiment: small random drains -----------------------------------------------------------------


def small_drain(rng: random.Random) -> tuple[Inventory, list[str]]:
    """A small cloud shaped as tests/test_drain.py's property draws it (3-7 hosts, servers filling at most half of
    each), hard anti-affinity groups only, and up to half the hosts drained."""
    n_hosts = rng.randint(3, 7)
    hosts = [(f"h{i}", Resources(rng.randint(2, 16), rng.randint(2, 20) * 512, rng.randint(2, 10) * 10))
             for i in range(n_hosts)]
    free = {name: Resources(*(v // 2 for v in _fields(cap))) for name, cap in hosts}
    servers: list[Server] = []
    for i in range(rng.randint(1, 14)):
        demand = Resources(rng.randint(0, 3), rng.randint(1, 4) * 512, rng.randint(0, 2) * 10)
        homes = [h for h in sorted(free) if demand.fits_within(free[h])]
        if not homes:
            continue
        home = rng.choice(homes)
        free[home] = free[home] - demand
        servers.append(Server(f"s{i:02d}", f"s{i:02d}", home, "ACTIVE", None, "f", demand))
    ids = [s.id for s in servers]
    groups: list[ServerGroup] = []
    for g in range(rng.randint(0, 3)):
        if not ids:
            break
        members = rng.sample(ids, min(len(ids), rng.randint(0, 4)))
        groups.append(ServerGroup(f"g{g}", f"g{g}", "anti-affinity", tuple(members), rng.choice([1, 2])))
    used = {name: Resources() for name, _ in hosts}
    for s in servers:
        used[s.host or ""] = used[s.host or ""] + s.demand
    inventory = Inventory(
        hosts=tuple(Host(name, f"{name}.example", True, True, cap, used[name]) for name, cap in hosts),
        servers=tuple(servers), groups=tuple(groups))
    return inventory, rng.sample([name for name, _ in hosts], rng.randint(1, max(1, n_hosts // 2)))


@dataclass
class SmallResult:
    """The side experiment's counts."""

    instances: int = 0
    feasible: int = 0
    infeasible: int = 0
    unknown: int = 0
    false_unfit: int = 0
    above: int = 0
    gaps: list[float] = field(default_factory=list)
    drain_ms: list[float] = field(default_factory=list)
    #: (seed, gap or -1 for a false "does not fit") of the worst instances.
    worst: list[tuple[int, float]] = field(default_factory=list)


def small_experiment(n: int, exact_s: float, workers: int, deadline: float) -> SmallResult | None:
    """drain_map against CP-SAT's exact optimum on `n` small random drains with nothing to move excluded."""
    if cp_model is None:
        return None
    result = SmallResult()
    seed = 0
    while result.instances < n and time.perf_counter() < deadline:
        seed += 1
        inventory, drained = small_drain(random.Random(seed))
        problem = problem_of(inventory, drained)
        if not problem.moving:
            continue
        result.instances += 1
        exact = exact_min_peak(problem, exact_s, workers)
        assert exact is not None
        started = time.perf_counter()
        try:
            peak: float | None = drain_map(inventory, drained).peak
        except DrainDoesNotFit:
            peak = None
        result.drain_ms.append((time.perf_counter() - started) * 1000)
        if exact.status == "INFEASIBLE":
            result.infeasible += 1
            assert peak is None, f"seed {seed}: drain_map placed what CP-SAT proves cannot fit"
            continue
        if exact.status != "OPTIMAL" or exact.peak is None:
            result.unknown += 1
            continue
        result.feasible += 1
        if peak is None:
            result.false_unfit += 1
            result.worst.append((seed, -1.0))
            continue
        gap = peak - exact.peak
        result.gaps.append(gap)
        if gap > 1e-9:
            result.above += 1
            result.worst.append((seed, gap))
    result.worst.sort(key=lambda t: (t[1] >= 0, -t[1]))
    result.worst = result.worst[:10]
    return result


def print_small(result: SmallResult) -> None:
    feasible = max(1, result.feasible)
    gaps = [g for g in result.gaps if g > 1e-9]
    print(f"  {result.instances} drains: {result.feasible} can be emptied, {result.infeasible} cannot (proven), "
          f"{result.unknown} not solved in time")
    print(f"  drain_map says 'does not fit' for {result.false_unfit} that can be emptied "
          f"({100 * result.false_unfit / feasible:.1f} %); peak above the optimum in {result.above} "
          f"({100 * result.above / feasible:.1f} %), by at most {max(gaps, default=0.0):.4f}, "
          f"mean gap where above {statistics.mean(gaps) if gaps else 0.0:.4f}")
    print(f"  drain_map time: median {statistics.median(result.drain_ms):.2f} ms, max {max(result.drain_ms):.1f} ms"
          if result.drain_ms else "")
    if result.worst:
        print("  worst seeds (gap, -1 = false 'does not fit'): "
              + ", ".join(f"{s}:{g:.3f}" for s, g in result.worst))


# -- main -----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run D1 for each seed and the small-drain experiment; print the figures; always returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, 10 s per exact solve, 40 small drains (under about 2 minutes)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N", help="D1 seeds (default 5, --quick 2)")
    parser.add_argument("--exact-s", type=float, default=None, metavar="S",
                        help="CP-SAT time limit per D1 instance (default 20, --quick 10; 0 skips it)")
    parser.add_argument("--small", type=int, default=None, metavar="N",
                        help="small random drains for the side experiment (default 300, --quick 40; 0 skips it)")
    parser.add_argument("--small-exact-s", type=float, default=5.0, metavar="S",
                        help="CP-SAT time limit per small drain (default 5)")
    parser.add_argument("--workers", type=int, default=2, metavar="W", help="CP-SAT workers (default 2)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="S",
                        help="wall seconds for everything; no new part starts after it (default 1500, --quick 110)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write every figure to FILE as JSON")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 5)
    exact_s = args.exact_s if args.exact_s is not None else (10.0 if args.quick else 20.0)
    small = args.small if args.small is not None else (40 if args.quick else 300)
    wall = time.perf_counter()
    deadline = wall + (args.time_limit if args.time_limit is not None else (110.0 if args.quick else 1500.0))
    if cp_model is None:
        print("OR-Tools is not installed (pip install -e '.[bench]'): no exact optimum, no small-drain experiment; "
              "the lower bound still runs.")
    print(f"D1 drain 2 of 40 hosts at 85 % RAM use, anti-affinity groups of 3, {seeds} seeds")
    cases: list[D1Case] = []
    for seed in range(seeds):
        if time.perf_counter() > deadline:
            print(f"  time limit reached: seeds {seed}..{seeds - 1} not run")
            break
        case = d1_case(seed, exact_s, args.workers)
        print_d1(case)
        cases.append(case)
    if cases:
        gaps = [c.drain_peak - c.bound.value for c in cases]
        speed = [c.usual.makespan_s / c.hostmap.makespan_s for c in cases if c.hostmap.makespan_s]
        print(f"  drain_map peak - bound: median {statistics.median(gaps):.4f}, worst {max(gaps):.4f}; "
              f"usual way / hostmap makespan: median x{statistics.median(speed):.2f}" if speed else "")
    result: SmallResult | None = None
    if small > 0 and cp_model is not None:
        print(f"Side experiment: drain_map against the exact optimum on {small} small random drains")
        result = small_experiment(small, args.small_exact_s, args.workers, deadline)
        if result is not None:
            if result.instances < small:
                print(f"  time limit reached after {result.instances} drains")
            print_small(result)
    elapsed = time.perf_counter() - wall
    print(f"\n{len(cases)} D1 seeds in {elapsed:.0f} s wall")
    if args.json:
        document = {
            "date": time.strftime("%Y-%m-%d"),
            "command": " ".join(["python", "bench/bench_drain.py", *(argv if argv is not None else sys.argv[1:])]),
            "ortools": cp_model is not None,
            "wall_s": elapsed,
            "d1": [asdict(c) for c in cases],
            "small": asdict(result) if result is not None else None,
        }
        Path(args.json).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
