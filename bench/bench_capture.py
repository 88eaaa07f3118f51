"""Capture benchmark: `hostmap sim capture` of a simulated cloud of 1,000 hosts and 10,000 servers.

Prints the wall time of the capture (reading the cloud and writing the scenario), the requests it made by API and
path, and checks that the twin loads and lists the same servers. Run from the repository root:
``PYTHONPATH=src python bench/bench_capture.py [HOSTS] [SERVERS_PER_HOST]``.  Not a test.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hostmap.capture import scenario_document
from hostmap.cloud.openstack import connect_with
from hostmap.sim.scenario import SERVER_STATUSES, load_scenario, parse_scenario
from hostmap.sim.server import SimServer


def cloud(n_hosts: int, per_host: int) -> dict[str, Any]:
    """`n_hosts` hosts in 4 zones, `per_host` servers each, one anti-affinity group of 3 per 10 hosts."""
    flavors = [{"name": f"m{i}", "vcpus": 2**i, "ram": 2048 * 2**i, "disk": 20 * 2**i} for i in range(4)]
    hosts = [{"name": f"cmp{i:05d}", "vcpus": 64, "memory_mb": 262144, "disk_gb": 4000, "zone": f"az{i % 4}"}
             for i in range(n_hosts)]
    servers = [{"name": f"vm{i:05d}-{j:02d}", "flavor": f"m{(i + j) % 4}", "host": f"cmp{i:05d}",
                "project": f"p{j % 7}"} for i in range(n_hosts) for j in range(per_host)]
    groups = [{"name": f"g{k}", "policy": "anti-affinity", "members": [f"vm{k * 10 + d:05d}-00" for d in range(3)]}
              for k in range(n_hosts // 10)]
    return {"hosts": hosts, "flavors": flavors, "servers": servers, "server_groups": groups}


def main() -> None:
    n_hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    per_host = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    scenario = parse_scenario(cloud(n_hosts, per_host), "bench")
    with SimServer(scenario) as sim, tempfile.TemporaryDirectory() as tmp:
        conn = connect_with(sim.connect_kwargs())
        before = len(sim.state.requests)
        start = time.perf_counter()
        snapshot = conn.snapshot()
        document = scenario_document(snapshot, scenario.migration, SERVER_STATUSES)
        out = Path(tmp) / "twin.json"
        out.write_text(json.dumps(document, indent=1), encoding="utf-8")
        wall = time.perf_counter() - start
        requests = sim.state.requests[before:]
        conn.close()
        twin = load_scenario(out)
        size = out.stat().st_size
    by_path = Counter(f"{method} {re.sub(r'/[0-9a-f-]{36}', '/{id}', path)}" for method, path, _, _ in requests)
    mutating = sum(1 for method, _, _, _ in requests if method not in ("GET", "HEAD"))
    print(f"capture of {n_hosts} hosts, {len(scenario.servers)} servers, {len(scenario.server_groups)} groups:")
    print(f"  wall time {wall:.1f} s, {len(requests)} requests ({mutating} not GET), scenario {size / 1e6:.1f} MB")
    for path, count in by_path.most_common():
        print(f"  {count:6d}  {path}")
    same = {s.id for s in twin.servers} == {s.id for s in scenario.servers}
    print(f"  twin loads: {len(twin.hosts)} hosts, {len(twin.servers)} servers; same server ids: {same}")


if __name__ == "__main__":
    main()
