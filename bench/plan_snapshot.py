"""Snapshot of `hostmap plan -f json` on every planner scenario file and on the makespan benchmark's S2 seeds.

A refactoring that must leave plans unchanged is checked by taking a snapshot before and after and comparing:

    python bench/plan_snapshot.py -o before.json      # on the old code
    python bench/plan_snapshot.py --compare before.json

The scenario files under tests/scenarios/ are planned as the planner tests plan them (their own options, the
default duration model); the S2 seeds and the bundled demo go through the CLI (`hostmap plan MAP --sim-scenario
FILE -f json`, the simulated cloud over HTTP), so the duration model, NIC sharing and map resolution are the
CLI's.  Not a test: it prints what differs and exits 1 if anything does.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_makespan import s2_rebalance

from hostmap import cli
from hostmap.errors import HostmapError
from hostmap.planner import plan
from hostmap.serialise import plan_json
from planner_cases import SCENARIO_DIR, load_case

ROOT = Path(__file__).resolve().parent.parent


def _planner_cases() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted(SCENARIO_DIR.glob("*.json")):
        case = load_case(path)
        try:
            out[f"scenario:{case.name}"] = plan_json(plan(case.inventory, case.desired, **case.options),
                                                     case.inventory)
        except (HostmapError, ValueError) as exc:
            out[f"scenario:{case.name}"] = {"error": type(exc).__name__, "text": str(exc)}
    return out


def _cli_plan(scenario: dict[str, Any] | None, host_map: Any, work: Path, name: str) -> Any:
    map_file = work / f"{name}.map.json"
    map_file.write_text(json.dumps(host_map))
    argv = ["plan", str(map_file), "-f", "json"]
    if scenario is None:
        argv.append("--sim")
    else:
        scenario_file = work / f"{name}.scenario.json"
        scenario_file.write_text(json.dumps(scenario))
        argv += ["--sim-scenario", str(scenario_file)]
    stdout = io.StringIO()
    code = cli.main(argv, stdout=stdout, stderr=io.StringIO())
    return {"exit": code, "plan": json.loads(stdout.getvalue()) if stdout.getvalue().strip() else None}


def snapshot(seeds: int) -> dict[str, Any]:
    out = _planner_cases()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["XDG_STATE_HOME"] = str(work / "state")
        out["cli:demo"] = _cli_plan(None, json.loads((ROOT / "examples" / "host_map.json").read_text()), work, "demo")
        for seed in range(seeds):
            data, host_map = s2_rebalance(seed)
            out[f"cli:S2 seed {seed}"] = _cli_plan(data, host_map, work, f"s2-{seed}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, help="write the snapshot here")
    parser.add_argument("--compare", type=Path, help="compare with this earlier snapshot")
    parser.add_argument("--seeds", type=int, default=20, help="S2 seeds (default 20)")
    args = parser.parse_args()
    now = snapshot(args.seeds)
    if args.output:
        args.output.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"{len(now)} plans written to {args.output}")
    if args.compare:
        before = json.loads(args.compare.read_text())
        differ = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        for key in differ:
            print(f"DIFFERS: {key}")
        print(f"{len(before.keys() | now.keys()) - len(differ)} identical, {len(differ)} differ")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
