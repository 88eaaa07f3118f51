"""Helpers for planner tests: build inventories from scenario files and replay plans under nova's rules."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hostmap.model import Host, Inventory, Move, Plan, Resources, Server, ServerGroup

SCENARIO_DIR = Path(__file__).parent / "scenarios"


@dataclass
class Case:
    """One planner scenario file, parsed."""

    name: str
    description: str
    inventory: Inventory
    desired: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)


def make_server(name: str, host: str | None, vcpu: int, memory_mb: int, disk_gb: int) -> Server:
    """A migratable server whose id is its name."""
    return Server(
        id=name,
        name=name,
        host=host,
        status="ACTIVE",
        task_state=None,
        flavor=f"{vcpu}c{memory_mb}m{disk_gb}g",
        demand=Resources(vcpu, memory_mb, disk_gb),
    )


def make_inventory(
    hosts: Sequence[Mapping[str, Any]], servers: Sequence[Server], groups: Sequence[ServerGroup] = ()
) -> Inventory:
    """An inventory whose host usage is the sum of the demand of the servers on each host."""
    used: dict[str, Resources] = {h["name"]: Resources() for h in hosts}
    for server in servers:
        assert server.host is not None
        used[server.host] = used[server.host] + server.demand
    built = tuple(
        Host(
            name=h["name"],
            hypervisor_hostname=f"{h['name']}.example",
            enabled=h.get("enabled", True),
            up=h.get("up", True),
            capacity=Resources(h["capacity"]["vcpu"], h["capacity"]["memory_mb"], h["capacity"]["disk_gb"]),
            used=used[h["name"]],
            zone=h.get("zone"),
        )
        for h in hosts
    )
    return Inventory(hosts=built, servers=tuple(servers), groups=tuple(groups))


def load_case(path: Path) -> Case:
    """Parse one scenario JSON file."""
    data = json.loads(path.read_text())
    servers = [replace(make_server(s["name"], s["host"], s["vcpu"], s["memory_mb"], s["disk_gb"]),
                       pinned_zone=s.get("pinned_zone")) for s in data["servers"]]
    groups = [
        ServerGroup(g["name"], g["name"], g["policy"], tuple(g["members"]), g.get("max_per_host", 1))
        for g in data.get("groups", [])
    ]
    return Case(
        name=path.stem,
        description=data["description"],
        inventory=make_inventory(data["hosts"], servers, groups),
        desired=dict(data["map"]),
        options=dict(data.get("options", {})),
        expect=dict(data["expect"]),
    )


def all_cases() -> list[Path]:
    """Every scenario file, sorted by name."""
    return sorted(SCENARIO_DIR.glob("*.json"))


# -- replaying plans ------------------------------------------------------------------------------------------


def check_structure(inventory: Inventory, desired: Mapping[str, str], plan: Plan) -> None:
    """Assert index order, dependency shape, detour legs and in-place servers are consistent."""
    servers = {s.id: s for s in inventory.servers}
    assert [s.index for s in plan.steps] == list(range(len(plan.steps)))
    legs: dict[str, list[int]] = {}
    for step in plan.steps:
        assert list(step.after) == sorted(set(step.after))
        assert all(0 <= a < step.index for a in step.after), "after must point to earlier steps (DAG in index order)"
        assert step.move.source != step.move.target
        assert step.move.final_target == desired[step.move.server_id]
        assert step.move.demand == servers[step.move.server_id].demand
        legs.setdefault(step.move.server_id, []).append(step.index)
    for server_id, indexes in legs.items():
        assert len(indexes) <= 2, f"{server_id} moves more than twice"
        if len(indexes) == 2:
            first, second = (plan.steps[i].move for i in indexes)
            assert first.is_detour
            assert not second.is_detour
            assert first.target == second.source
            assert indexes[0] in plan.steps[indexes[1]].after
        else:
            assert not plan.steps[indexes[0]].move.is_detour
    expected_in_place = sorted(
        (sid for sid, host in desired.items() if servers[sid].host == host), key=lambda sid: servers[sid].name
    )
    assert [s.id for s in plan.in_place] == expected_in_place
    assert set(legs) | set(expected_in_place) == set(desired)
    assert plan.estimated_s >= plan.lower_bound_s - 1e-9


def _check_groups(
    inventory: Inventory, move: Move, where: Mapping[str, str | None], arriving: Mapping[str, str], at: str
) -> None:
    """Assert that `move` may start under its server's hard group policies, as nova's filters judge."""
    for group in inventory.groups:
        if move.server_id not in group.members:
            continue
        if group.policy == "anti-affinity":  # counting members on their way there, as the planner does
            there = sum(1 for m in group.members if move.target in (where.get(m), arriving.get(m)))
            assert there < group.max_per_host, f"{at}: {move.server_name} joins {group.name} on {move.target}"
        if group.policy == "affinity":  # only a host where a member is now (its own host included)
            hosts = {where.get(m) for m in group.members}
            assert move.target in hosts, f"{at}: {move.server_name} to {move.target}, no member of {group.name} there"


def replay(inventory: Inventory, desired: Mapping[str, str], plan: Plan, mode: str, rng: random.Random) -> None:
    """Execute `plan` in one order `Step.after` allows, per `mode`, asserting every state fits (in-flight twice)."""
    # mode: "sequential" (index order, one at a time), "eager" (start everything ready before completing anything)
    # or "random" (any interleaving of starts and completions).
    capacity = {h.name: h.capacity for h in inventory.hosts}
    usage = {h.name: h.used for h in inventory.hosts}
    where = {s.id: s.host for s in inventory.servers}
    arriving: dict[str, str] = {}
    steps = plan.steps
    started: set[int] = set()
    done: set[int] = set()
    running: list[int] = []

    def ready() -> list[int]:
        return [s.index for s in steps if s.index not in started and all(a in done for a in s.after)]

    def start(i: int) -> None:
        move = steps[i].move
        assert where[move.server_id] == move.source, f"step {i}: {move.server_name} is not on {move.source}"
        usage[move.target] = usage[move.target] + move.demand
        assert usage[move.target].fits_within(capacity[move.target]), (
            f"step {i} ({mode}): {move.target} over capacity: {usage[move.target]} > {capacity[move.target]}"
        )
        _check_groups(inventory, move, where, arriving, f"step {i} ({mode})")
        arriving[move.server_id] = move.target
        started.add(i)
        running.append(i)

    def complete(i: int) -> None:
        move = steps[i].move
        usage[move.source] = usage[move.source] - move.demand
        where[move.server_id] = move.target
        del arriving[move.server_id]
        running.remove(i)
        done.add(i)

    if mode == "sequential":
        for step in steps:
            assert all(a in done for a in step.after)
            start(step.index)
            complete(step.index)
    else:
        while len(done) < len(steps):
            candidates = ready()
            if mode == "eager":
                if candidates:
                    for i in candidates:
                        start(i)
                    continue
                complete(rng.choice(running))
                continue
            assert candidates or running, "replay stuck: dependencies never satisfied"
            if candidates and (not running or rng.random() < 0.5):
                start(rng.choice(candidates))
            else:
                complete(rng.choice(running))
    for server_id, host in desired.items():
        assert where[server_id] == host, f"{server_id} ends on {where[server_id]}, wanted {host}"
    for server in inventory.servers:
        if server.id not in desired:
            assert where[server.id] == server.host


def check_plan(inventory: Inventory, desired: Mapping[str, str], plan: Plan, seed: int = 0, randoms: int = 3) -> None:
    """Structure checks plus sequential, eager and several random replays."""
    check_structure(inventory, desired, plan)
    rng = random.Random(seed)
    replay(inventory, desired, plan, "sequential", rng)
    replay(inventory, desired, plan, "eager", rng)
    for _ in range(randoms):
        replay(inventory, desired, plan, "random", rng)


def final_usage(inventory: Inventory, desired: Mapping[str, str]) -> dict[str, Resources]:
    """Each host's usage once every server in `desired` is on its target."""
    usage = {h.name: h.used for h in inventory.hosts}
    for server in inventory.servers:
        target = desired.get(server.id)
        if target is not None and target != server.host:
            assert server.host is not None
            usage[server.host] = usage[server.host] - server.demand
            usage[target] = usage[target] + server.demand
    return usage
