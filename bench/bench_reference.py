"""hostmap's schedules against the reference solver's (issue 15), per scenario and seed.

For each scenario instance (S1, S2 seeds, S3 rings with a pivot slot):

1. hostmap plans it (the real planner, on the inventory read from a simulated cloud of the scenario); its plan is
   re-timed by the planner's own replay with solo durations (no NIC sharing) and checked by the independent
   checker (`schedule_check`);
2. the reference (`reference_solver`, OR-Tools CP-SAT) solves the same problem warm-started from hostmap's plan,
   within fixed settings, and the checker checks what it returns; with `--freeze` the schedules are written to
   `bench/reference_schedules.json`, which later runs compare against without the solver;
3. with `--executor`, both schedules run through hostmap's executor on the simulated cloud (virtual time, NIC
   sharing as the simulated cloud models it): hostmap's own plan as `apply` runs it, and the solver's schedule
   turned into a plan whose steps wait for exactly the departures that made room for them in the schedule.

Printed per instance: hostmap's solo-replay makespan against the reference's, the solver's proven bound, and with
`--executor` the simulated makespans and hostmap's against the best known (the better of the frozen schedule and
its executor run).  Run from the repository root:
``python bench/bench_reference.py [--quick] [--seeds N] [--time-limit S] [--freeze] [--executor]``.
Not a test: every figure is printed and the exit status is 0.  See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import bench_makespan as bm  # noqa: E402
from reference_solver import TICKS_PER_S, Problem, Settings, Solution, candidate_pivots, cp_model, solve  # noqa: E402
from schedule_check import Cloud, Leg, Violation, check  # noqa: E402

from hostmap.clock import VirtualClock  # noqa: E402
from hostmap.cloud.openstack import connect_with  # noqa: E402
from hostmap.executor import Executor  # noqa: E402
from hostmap.hostmap_file import parse_host_map  # noqa: E402
from hostmap.model import Inventory, Limits, Move, Plan, Step  # noqa: E402
from hostmap.planner import plan  # noqa: E402
from hostmap.planner.replay import spans  # noqa: E402
from hostmap.resolve import resolve  # noqa: E402
from hostmap.sim.scenario import Scenario, parse_scenario  # noqa: E402
from hostmap.sim.server import SimServer  # noqa: E402
from hostmap.timing import duration_model, nic_links, solo_duration_s  # noqa: E402

FROZEN = HERE / "reference_schedules.json"


def problem_of(scenario: Scenario, host_map: dict[str, list[str]], pivots: int,
               extra_pivots: dict[str, list[str]] | None = None) -> Problem:
    """The cloud as numbers, from the scenario itself (not from hostmap's reading of it)."""
    flavors = {f.id: f for f in scenario.flavors}
    names = {s.id: s.name for s in scenario.servers}
    demand = {s.name: (flavors[s.flavor].vcpus, flavors[s.flavor].ram, flavors[s.flavor].disk)
              for s in scenario.servers}
    current = {s.name: s.host for s in scenario.servers}
    desired = {name: host for host, servers in host_map.items() for name in servers}
    limit = scenario.migration.max_concurrent_live_migrations
    groups = tuple((frozenset(names[m] for m in g.members), g.max_server_per_host or 1)
                   for g in scenario.server_groups if g.policy == "anti-affinity")
    cloud = Cloud({h.name: h.capacity() for h in scenario.hosts}, demand, current, desired,
                  max_per_host=int(limit or 1), groups=groups)
    candidates = candidate_pivots(cloud, pivots, extra_pivots or {})
    params = scenario.migration
    nic = {h.name: h.nic_gbps or params.nic_gbps for h in scenario.hosts}
    duration: dict[tuple[str, str, str], float] = {}
    for server, target in desired.items():
        source = current[server]
        if source == target:
            continue
        for a, b in [(source, target)] + [(x, y) for p in candidates[server] for x, y in ((source, p), (p, target))]:
            seconds = solo_duration_s(demand[server][1], params, min(params.stream_gbps, nic[a], nic[b]))
            duration[(a, b, server)] = round(seconds * TICKS_PER_S) / TICKS_PER_S
    return Problem(cloud, duration, candidates)


def hostmap_plan(data: bm.Scenario, host_map: bm.HostMapData) -> tuple[Plan, float]:
    """hostmap's plan of the instance and the planner's CPU seconds."""
    with SimServer(parse_scenario(data, "bench")) as sim:
        cloud = connect_with(sim.connect_kwargs())
        try:
            inventory = cloud.inventory()
        finally:
            cloud.close()
    desired = resolve(parse_host_map(host_map, "bench map"), inventory).targets
    cpu = time.process_time()
    the_plan = plan(inventory, desired, max_per_host=1, parallel=None, duration=duration_model(bm.CLI_PARAMS),
                    links=nic_links(bm.CLI_PARAMS))
    return the_plan, time.process_time() - cpu


def plan_legs(the_plan: Plan) -> list[Leg]:
    """hostmap's plan as legs timed by the planner's replay with solo durations, each rounded to the solver's
    time step (so both schedules are timed in the same unit and the warm start fits the model exactly)."""
    steps = [replace(step, move=replace(step.move, estimate_s=round(step.move.estimate_s * TICKS_PER_S) / TICKS_PER_S))
             for step in the_plan.steps]
    timed = spans(steps, the_plan.limits, None, the_plan.group_settle_s)
    return [Leg(step.move.server_name, step.move.source, step.move.target, start, end)
            for step, (start, end) in zip(the_plan.steps, timed, strict=True)]


def plan_of_legs(legs: Sequence[Leg], inventory: Inventory, duration: Any) -> Plan:
    """A solver schedule as a hostmap plan: steps in start order, each waiting for its server's previous leg and
    for every departure from its target that ended before it started in the schedule.

    The last rule is the planner's safety rule made true by the schedule itself: the arrivals at a host indexed up
    to a step are those that started by then, and the departures it waits for are those that had ended, so the
    checked schedule's room at that instant holds in every execution order the executor may take.
    """
    servers = {s.name: s for s in inventory.servers}
    ordered = sorted(legs, key=lambda g: (g.start, g.end, g.server))
    finals = {g.server: g.target for g in ordered}
    steps: list[Step] = []
    last_of: dict[str, int] = {}
    for index, leg in enumerate(ordered):
        server = servers[leg.server]
        after = {i for i in range(index) if ordered[i].source == leg.target and ordered[i].end <= leg.start}
        if leg.server in last_of:
            after.add(last_of[leg.server])
        move = Move(server.id, server.name, leg.source, leg.target, server.demand, final_target=finals[leg.server],
                    estimate_s=duration(server))
        steps.append(Step(index, move, tuple(sorted(after))))
        last_of[leg.server] = index
    return Plan(tuple(steps), estimated_s=max((g.end for g in legs), default=0.0), limits=Limits(max_per_host=1))


def execute(data: bm.Scenario, host_map: bm.HostMapData, legs: Sequence[Leg] | None) -> tuple[float, bool, int]:
    """Run hostmap's plan (legs None) or the solver's schedule through the executor; (makespan, reached, moves)."""
    clock = VirtualClock()
    with SimServer(parse_scenario(data, "bench"), clock=clock) as sim:
        cloud = connect_with(sim.connect_kwargs())
        try:
            inventory = cloud.inventory()
            if legs is None:
                desired = resolve(parse_host_map(host_map, "bench map"), inventory).targets
                the_plan = plan(inventory, desired, max_per_host=1, parallel=None,
                                duration=duration_model(bm.CLI_PARAMS), links=nic_links(bm.CLI_PARAMS))
            else:
                the_plan = plan_of_legs(legs, inventory, duration_model(bm.CLI_PARAMS))
            result = Executor(cloud, clock).run(the_plan, inventory)
        finally:
            cloud.close()
    return result.makespan_s or 0.0, result.reached, len(the_plan.steps)


def instances(seeds: int, quick: bool) -> list[tuple[str, bm.Scenario, bm.HostMapData]]:
    found: list[tuple[str, bm.Scenario, bm.HostMapData]] = [("S1", *bm.s1_drain())]
    found += [(f"S2 seed {seed}", *bm.s2_rebalance(seed)) for seed in range(seeds)]
    found += [(f"S3 ring {k}", *bm.s3_ring(k, pivot=True)) for k in ((2, 4) if quick else (2, 4, 8))]
    return found


def _legs_json(legs: Sequence[Leg]) -> list[list[Any]]:
    return [[g.server, g.source, g.target, round(g.start, 1), round(g.end, 1)] for g in sorted(
        legs, key=lambda g: (g.start, g.server))]


def _legs_of(rows: Sequence[Sequence[Any]]) -> list[Leg]:
    return [Leg(str(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4])) for r in rows]


def one_instance(name: str, data: bm.Scenario, host_map: bm.HostMapData, settings: Settings,
                 frozen: dict[str, Any], *, freeze: bool, executor: bool) -> dict[str, Any]:
    """Plan, solve, check and (with `executor`) run one instance; its figures as a row."""
    the_plan, cpu_s = hostmap_plan(data, host_map)
    ours = plan_legs(the_plan)
    desired = {s: h for h, servers in host_map.items() for s in servers}
    pivots_used = {g.server: [g.target] for g in ours if g.target != desired.get(g.server)}
    problem = problem_of(parse_scenario(data, name), host_map, settings.pivots, pivots_used)
    row: dict[str, Any] = {"case": name, "moves": len(ours), "planner_cpu_s": round(cpu_s, 3)}
    try:
        row["hostmap_solo_s"] = check(problem.cloud, ours)
    except Violation as error:
        row["hostmap_solo_s"], row["hostmap_violation"] = None, str(error)
    solution: Solution | None = solve(problem, settings, ours) if cp_model is not None else None
    reference: list[Leg] | None = None
    if solution is not None:
        row["solver_status"] = solution.status
    if solution is not None and solution.legs:
        try:
            check(problem.cloud, solution.legs)
            reference = solution.legs
            row.update(solver_s=solution.makespan_s, solver_bound_s=solution.bound_s,
                       solver_wall_s=round(solution.wall_s, 1))
            if freeze:
                frozen["cases"][name] = {"makespan_s": solution.makespan_s, "bound_s": solution.bound_s,
                                         "status": solution.status, "settings": asdict(settings),
                                         "legs": _legs_json(solution.legs)}
        except Violation as error:
            row["solver_violation"] = str(error)
    if name in frozen["cases"]:
        stored = _legs_of(frozen["cases"][name]["legs"])
        try:
            row["frozen_s"] = check(problem.cloud, stored)
            if reference is None or row["frozen_s"] < row.get("solver_s", float("inf")):
                reference = stored
        except Violation as error:
            row["frozen_violation"] = str(error)
    known = [x for x in (row.get("solver_s"), row.get("frozen_s")) if x is not None]
    row["reference_s"] = min(known) if known else None
    if row["reference_s"] and row["hostmap_solo_s"]:
        row["solo_ratio"] = row["hostmap_solo_s"] / row["reference_s"]
    if executor and reference is not None:
        ours_sim, ours_reached, _ = execute(data, host_map, None)
        ref_sim, ref_reached, _ = execute(data, host_map, reference)
        row.update(hostmap_sim_s=ours_sim, hostmap_reached=ours_reached, reference_sim_s=ref_sim,
                   reference_reached=ref_reached)
        row["best_known_s"] = min(x for x in (row["reference_s"], ref_sim if ref_reached else None) if x)
        row["sim_ratio"] = ours_sim / row["best_known_s"]
    return row


def main(argv: list[str] | None = None) -> int:
    """Compare hostmap's plans with the reference solver's schedules and print the figures; always returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="S1, S2 seeds 0-1, S3 rings 2 and 4")
    parser.add_argument("--seeds", type=int, default=None, metavar="N", help="S2 seeds (default 6; 2 with --quick)")
    parser.add_argument("--time-limit", type=float, default=60.0, metavar="S", help="solver seconds per instance")
    parser.add_argument("--workers", type=int, default=2, help="solver workers (default 2)")
    parser.add_argument("--freeze", action="store_true", help=f"write the solver's schedules to {FROZEN.name}")
    parser.add_argument("--executor", action="store_true", help="also run both schedules through the executor")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 6)
    settings = Settings(time_limit_s=args.time_limit, workers=args.workers)
    frozen: dict[str, Any] = json.loads(FROZEN.read_text()) if FROZEN.exists() else {"cases": {}}
    if cp_model is None:
        print(f"OR-Tools is not installed (pip install '.[bench]'): comparing with the frozen schedules in "
              f"{FROZEN.name} only")
    rows: list[dict[str, Any]] = []
    wall = time.perf_counter()
    for name, data, host_map in instances(seeds, args.quick):
        row = one_instance(name, data, host_map, settings, frozen, freeze=args.freeze, executor=args.executor)
        rows.append(row)
        _print(row)
        if args.freeze:  # after each instance, so that a run cut short keeps what it found
            _write_frozen(frozen, argv)
    if args.freeze:
        print(f"wrote {FROZEN}")
    _summary(rows)
    print(f"{len(rows)} instances in {time.perf_counter() - wall:.0f} s wall")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


def _write_frozen(frozen: dict[str, Any], argv: list[str] | None) -> None:
    frozen["date"] = time.strftime("%Y-%m-%d")
    frozen["command"] = " ".join(["python", "bench/bench_reference.py", *(argv if argv is not None else sys.argv[1:])])
    FROZEN.write_text(json.dumps(frozen, indent=1) + "\n", encoding="utf-8")


def _print(row: dict[str, Any]) -> None:
    def f(key: str, fmt: str = "8.1f") -> str:
        value = row.get(key)
        return format(value, fmt) if isinstance(value, float) else f"{'-':>8}"

    line = (f"  {row['case']:<12} moves {row['moves']:3d}  hostmap solo {f('hostmap_solo_s')} s"
            f"  reference {f('reference_s')} s ({row.get('solver_status', 'frozen')}, bound {f('solver_bound_s')})"
            f"  ratio {f('solo_ratio', '6.3f')}  planner {row['planner_cpu_s']:.2f} s CPU")
    if "sim_ratio" in row:
        line += (f"  | simulated: hostmap {f('hostmap_sim_s')} s, reference via executor {f('reference_sim_s')} s,"
                 f" best known {f('best_known_s')} s, ratio {f('sim_ratio', '6.3f')}")
    for key in ("hostmap_violation", "solver_violation", "frozen_violation"):
        if key in row:
            line += f"\n    {key}: {row[key]}"
    print(line)
    sys.stdout.flush()


def _summary(rows: Sequence[dict[str, Any]]) -> None:
    for family in ("S1", "S2", "S3"):
        mine = [r for r in rows if r["case"].startswith(family)]
        for key in ("solo_ratio", "sim_ratio"):
            values = [r[key] for r in mine if key in r]
            if values:
                print(f"  {family} {key}: median {statistics.median(values):.3f}, worst {max(values):.3f} "
                      f"over {len(values)}")


if __name__ == "__main__":
    sys.exit(main())
