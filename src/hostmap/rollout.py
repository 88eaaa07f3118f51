"""A rolling maintenance planned as a whole: batches of hosts, each drained onto hosts already done or never
maintained (so a server moves once), and, with restore, its servers put back once the batch is done.  Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from hostmap.drain import Drain, drain_map, drained_hosts
from hostmap.errors import DrainDoesNotFit
from hostmap.model import Inventory, Resources


def batches(hosts: Sequence[str], size: int) -> tuple[tuple[str, ...], ...]:
    """`hosts` in order, `size` at a time (the last batch may be smaller)."""
    if size < 1:
        raise ValueError("a batch holds at least one host")
    return tuple(tuple(hosts[i:i + size]) for i in range(0, len(hosts), size))


def batch_drain(inventory: Inventory, batch: Sequence[str], later: Sequence[Sequence[str]],
                headroom_pct: float) -> Drain:
    """Drain `batch` onto hosts outside the `later` batches when that fits.

    Else the batches maintained last are let in, one at a time, until it fits: a server put there moves again
    when its host's turn comes, so the fewest later hosts are opened.  Raises `DrainDoesNotFit` when even all
    hosts are not enough.
    """
    for opened in range(len(later) + 1):
        kept_out = [h for group in later[:len(later) - opened] for h in group]
        try:
            return drain_map(inventory, batch, headroom_pct, keep_out=kept_out)
        except DrainDoesNotFit:
            if opened == len(later):
                raise
    raise AssertionError("unreachable: the last try opens every host")


def project(inventory: Inventory, moves: Mapping[str, str]) -> Inventory:
    """The inventory once `moves` (server id -> host) are done: servers on their new hosts, placement use moved."""
    delta: dict[str, Resources] = {}
    servers = []
    for server in inventory.servers:
        target = moves.get(server.id)
        if target is None or target == server.host:
            servers.append(server)
            continue
        if server.host is not None:
            delta[server.host] = delta.get(server.host, Resources()) - server.demand
        delta[target] = delta.get(target, Resources()) + server.demand
        servers.append(replace(server, host=target))
    hosts = tuple(replace(h, used=h.used + delta[h.name]) if h.name in delta else h for h in inventory.hosts)
    return replace(inventory, hosts=hosts, servers=tuple(servers))


@dataclass(frozen=True)
class BatchPlan:
    """One batch of a rollout: its hosts, the drain that empties them, and the moves that put servers back."""

    hosts: tuple[str, ...]
    drain: Drain
    #: Server id -> original host, for the servers this batch's hosts held before the rollout (with restore).
    back: Mapping[str, str]
    #: The projected cloud before the batch drains, and once it has drained (before the way back).
    before: Inventory
    drained: Inventory


@dataclass(frozen=True)
class RolloutPlan:
    """Every batch in order, as the cloud would go through them if nothing else changed."""

    batches: tuple[BatchPlan, ...]
    #: Servers on maintained hosts before the rollout: each moves once, twice with restore, at the least.
    leaving: int
    restore: bool

    @property
    def moves(self) -> int:
        """The moves the rollout makes in all: drains and, with restore, the way back."""
        return sum(len(b.drain.moves) + len(b.back) for b in self.batches)

    @property
    def minimum(self) -> int:
        """The fewest moves any rollout could make: each server on a maintained host leaves once (and returns)."""
        return self.leaving * (2 if self.restore else 1)


def plan_rollout(inventory: Inventory, hosts: Sequence[str], *, batch: int, headroom_pct: float,
                 restore: bool, plan_across: bool = True) -> RolloutPlan:
    """Plan the whole rollout on projections of `inventory`; raises `DrainDoesNotFit` for a batch that cannot go.

    Each batch's drain prefers hosts already done or never maintained; with `restore`, once a batch is done its
    servers go back to their original hosts before the next batch drains.  `plan_across=False` plans each batch as
    a lone drain would (no host kept out), for comparison.
    """
    groups = batches([h.name for h in drained_hosts(inventory, hosts)], batch)
    drained = {name for g in groups for name in g}
    original = {s.id: s.host for s in inventory.servers if s.host in drained}
    current = inventory
    planned: list[BatchPlan] = []
    for i, group in enumerate(groups):
        drain = batch_drain(current, group, groups[i + 1:] if plan_across else (), headroom_pct)
        before, current = current, project(current, drain.moves)
        after_drain = current
        back: dict[str, str] = {}
        if restore:
            names = set(drain.hosts)
            where = {s.id: s.host for s in current.servers}
            back = {sid: host for sid, host in original.items()
                    if host in names and sid in where and where[sid] != host}
            current = project(current, back)
        planned.append(BatchPlan(drain.hosts, drain, back, before, after_drain))
    return RolloutPlan(tuple(planned), len(original), restore)


def settle_wait(inventory: Inventory, moves: Mapping[str, str], departures: Sequence[tuple[str, str, float]],
                group_settle_s: float, now: float) -> float:
    """Seconds to wait before `moves` start: no anti-affine member lands where another left < `group_settle_s` ago.

    `departures` are (server id, host it left, when) from the rollout's earlier runs: nova's scheduler counts a
    member on its old host until the compute's next instance sync, so a move there meanwhile would be refused.
    """
    anti: dict[str, set[str]] = {}
    for group in inventory.groups:
        if group.policy == "anti-affinity":
            for member in group.members:
                anti.setdefault(member, set()).add(group.id)
    wait = 0.0
    for server_id, target in moves.items():
        mine = anti.get(server_id)
        if not mine:
            continue
        for other, host, at in departures:
            if host == target and other != server_id and mine & anti.get(other, set()):
                wait = max(wait, at + group_settle_s - now)
    return wait
