"""Drain hosts: a desired placement that empties them onto the other hosts, balanced, within nova's rules (pure).

Every server on a drained host gets a target; every other server keeps its host.  Targets are the hosts that are
enabled, up and not drained.  A placement never breaks placement capacity (`Host.used` already counts in-flight
migrations on both ends), the headroom kept free of each resource, hard server-group policies as nova applies them
to a live migration (`hostmap.policy`: anti-affinity with its max_server_per_host rule; an affinity member only
joins a member that stays) or pinned availability zones.  Soft policies are preferences.

The objective is lexicographic: the lowest highest use fraction of any resource on any target host; then fewer
moves for the planner (targets only receive, so room never depends on another move and no pivot is needed; among
equal peaks a soft policy is honoured); then a shorter run (fewer arrivals per target, so copies run side by side).
Units (a server, or the drained members of an affinity group together) are placed largest memory first on the
feasible host with the lowest resulting peak; a bounded repair makes room for units left over by moving one placed
unit elsewhere, and a bounded local search of moves and swaps between targets lowers the peak further.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from hostmap.errors import DrainDoesNotFit, UnfitServer, UnknownHostError
from hostmap.model import MIGRATABLE_STATUSES, Host, Inventory, Resources, Server
from hostmap.policy import exclusive_group_names, exclusive_groups
from hostmap.resolve import resolve_host
from hostmap.zones import allowed_hosts

__all__ = ["Drain", "TargetUse", "drain_map", "drained_hosts", "use_fraction"]

#: Candidate placements the repair of left-over units may try, in all.
REPAIR_BUDGET = 50_000
#: Candidate moves and swaps the local search may try, in all.
IMPROVE_BUDGET = 200_000
#: A move or swap must lower the peak it works on by more than this to count (float noise never loops).
EPSILON = 1e-12

Vec = tuple[int, int, int]


def _vec(resources: Resources) -> Vec:
    return resources.vcpu, resources.memory_mb, resources.disk_gb


def _fraction(load: Sequence[int], capacity: Vec) -> float:
    """The highest use fraction of any resource: load / capacity (an empty resource in use counts as infinite)."""
    worst = 0.0
    for used, cap in zip(load, capacity, strict=True):
        if cap > 0:
            worst = max(worst, used / cap)
        elif used > 0:
            worst = math.inf
    return worst


def use_fraction(used: Resources, capacity: Resources) -> float:
    """The highest use fraction of any resource of `used` against `capacity`."""
    return _fraction(_vec(used), _vec(capacity))


@dataclass(frozen=True)
class TargetUse:
    """A target host after the drain: the servers arriving and its use before and after, per resource."""

    host: str
    #: Ids of the servers the drain sends here, sorted.
    arriving: tuple[str, ...]
    capacity: Resources
    before: Resources
    after: Resources
    #: The most `after` may reach while keeping the headroom free.
    limit: Resources

    @property
    def peak_before(self) -> float:
        """The highest use fraction of any resource before the drain."""
        return use_fraction(self.before, self.capacity)

    @property
    def peak_after(self) -> float:
        """The highest use fraction of any resource after the drain."""
        return use_fraction(self.after, self.capacity)


@dataclass(frozen=True)
class Drain:
    """A drain's desired placement, the moves it makes, each target's use, and the servers that need care."""

    #: The service hosts drained, in the order given.
    hosts: tuple[str, ...]
    #: Every compute host (by name) -> ids of the servers on it after the drain: a host map's shape.
    placement: Mapping[str, tuple[str, ...]]
    #: Server id -> target host, for the servers on drained hosts.
    moves: Mapping[str, str]
    #: Every host that may receive servers, by name.
    targets: tuple[TargetUse, ...]
    #: Ids of moving servers nova cannot live-migrate (status not ACTIVE or PAUSED): they need a cold migration.
    cold: tuple[str, ...] = ()
    #: Ids of moving servers busy with another task now.
    busy: tuple[str, ...] = ()
    #: Ids of moving servers on a drained host whose compute service is down.
    source_down: tuple[str, ...] = ()
    headroom_pct: float = 0.0

    @property
    def peak(self) -> float:
        """The highest use fraction of any resource on any target host after the drain."""
        return max((t.peak_after for t in self.targets), default=0.0)

    def host_map(self) -> dict[str, list[str]]:
        """The placement as a host map document (host -> server ids), to write as JSON for `hostmap apply`."""
        return {host: list(ids) for host, ids in self.placement.items()}


def drained_hosts(inventory: Inventory, hosts: Sequence[str]) -> tuple[Host, ...]:
    """The compute hosts `hosts` name (service host or hypervisor hostname, resolved like a map's keys), once each.

    Raises `UnknownHostError` for a name that matches no host or several.
    """
    known = sorted(h.name for h in inventory.hosts)
    found: dict[str, Host] = {}
    for key in hosts:
        matches = resolve_host(key, inventory.hosts)
        if len(matches) != 1:
            raise UnknownHostError(key, sorted(h.name for h in matches), known)
        found.setdefault(matches[0].name, matches[0])
    return tuple(found.values())


@dataclass(frozen=True, slots=True)
class _Unit:
    """Servers that move together (one server, or an affinity group's drained members) and where they may go."""

    members: tuple[Server, ...]
    demand: Vec
    #: Hard anti-affinity group number -> (members in this unit, members allowed per host).
    anti: tuple[tuple[int, int, int], ...]
    #: Soft-anti-affinity and soft-affinity group numbers -> members in this unit.
    soft_anti: tuple[tuple[int, int], ...]
    soft_aff: tuple[tuple[int, int], ...]
    #: Target indices the pinned zone allows (None: any), and that zone.
    zone_ok: frozenset[int] | None
    zone: str | None
    #: Target indices the affinity groups allow (None: any), and the group that restricts them.
    aff_ok: frozenset[int] | None
    aff_group: str


class _Board:
    """The targets' load, group counts and which units sit where; the one place feasibility is decided."""

    def __init__(self, targets: Sequence[Host], limits: Sequence[Vec], inventory: Inventory, *,
                 exclusive: Mapping[str, tuple[tuple[int, int], ...]], soft: Mapping[str, tuple[int, ...]],
                 soft_aff: Mapping[str, tuple[int, ...]]) -> None:
        self.targets = targets
        self.cap = [_vec(h.capacity) for h in targets]
        self.limit = list(limits)
        self.load = [list(_vec(h.used)) for h in targets]
        self.anti: list[dict[int, int]] = [{} for _ in targets]
        self.soft: list[dict[int, int]] = [{} for _ in targets]
        self.soft_aff: list[dict[int, int]] = [{} for _ in targets]
        self.on: list[set[int]] = [set() for _ in targets]
        self.where: dict[int, int] = {}
        index = {h.name: i for i, h in enumerate(targets)}
        for server in inventory.servers:
            at = index.get(server.host or "")
            if at is None:
                continue
            for group, _ in exclusive.get(server.id, ()):
                self.anti[at][group] = self.anti[at].get(group, 0) + 1
            for group in soft.get(server.id, ()):
                self.soft[at][group] = self.soft[at].get(group, 0) + 1
            for group in soft_aff.get(server.id, ()):
                self.soft_aff[at][group] = self.soft_aff[at].get(group, 0) + 1

    def allowed(self, unit: _Unit, h: int) -> bool:
        """True when the unit's zone and affinity groups allow host `h`."""
        return (unit.zone_ok is None or h in unit.zone_ok) and (unit.aff_ok is None or h in unit.aff_ok)

    def has_room(self, unit: _Unit, h: int) -> bool:
        """True when host `h` has room for the unit within its headroom."""
        return all(load + need <= cap for load, need, cap in zip(self.load[h], unit.demand, self.limit[h], strict=True))

    def anti_block(self, unit: _Unit, h: int) -> int | None:
        """The hard anti-affinity group number that refuses the unit on host `h`, if any."""
        for group, count, allowed in unit.anti:
            if self.anti[h].get(group, 0) + count > allowed:
                return group
        return None

    def fits(self, unit: _Unit, h: int) -> bool:
        """True when the unit may go to host `h` now."""
        return self.allowed(unit, h) and self.has_room(unit, h) and self.anti_block(unit, h) is None

    def fraction(self, h: int) -> float:
        """Host `h`'s highest use fraction now."""
        return _fraction(self.load[h], self.cap[h])

    def fraction_with(self, unit: _Unit, h: int) -> float:
        """Host `h`'s highest use fraction with the unit added."""
        return _fraction([a + b for a, b in zip(self.load[h], unit.demand, strict=True)], self.cap[h])

    def soft_penalty(self, unit: _Unit, h: int) -> int:
        """Members of the unit's soft-anti-affinity groups on `h`, less those of its soft-affinity groups."""
        return (sum(self.soft[h].get(g, 0) for g, _ in unit.soft_anti)
                - sum(self.soft_aff[h].get(g, 0) for g, _ in unit.soft_aff))

    def add(self, u: int, unit: _Unit, h: int) -> None:
        """Put unit `u` on host `h`."""
        self._shift(unit, h, 1)
        self.on[h].add(u)
        self.where[u] = h

    def remove(self, u: int, unit: _Unit) -> int:
        """Take unit `u` off its host; that host."""
        h = self.where.pop(u)
        self._shift(unit, h, -1)
        self.on[h].discard(u)
        return h

    def _shift(self, unit: _Unit, h: int, sign: int) -> None:
        for r in range(3):
            self.load[h][r] += sign * unit.demand[r]
        for group, count, _ in unit.anti:
            self.anti[h][group] = self.anti[h].get(group, 0) + sign * count
        for table, groups in ((self.soft, unit.soft_anti), (self.soft_aff, unit.soft_aff)):
            for group, count in groups:
                table[h][group] = table[h].get(group, 0) + sign * count

    def peak(self) -> float:
        """The highest use fraction of any target now."""
        return max((self.fraction(h) for h in range(len(self.targets))), default=0.0)


def drain_map(
    inventory: Inventory,
    hosts: Sequence[str],
    headroom_pct: float = 0,
    *,
    move_affinity_groups: bool = False,
    keep_out: Collection[str] = (),
) -> Drain:
    """A placement that empties `hosts` (service hosts or hypervisor hostnames) onto the other usable hosts.

    `headroom_pct` percent of each resource's capacity stays free on every host that receives servers.  An affinity
    group whose members are all on drained hosts cannot be live-migrated (nova lets a member only join another
    member); with `move_affinity_groups` (for a cold migration) it moves as one to a single new host.  Hosts named
    in `keep_out` (service host names) keep their servers and receive none (a rollout's hosts maintained later).

    Raises `UnknownHostError` for a name that is no host, `DrainDoesNotFit` when the hosts cannot be emptied, and
    ValueError for a headroom outside [0, 100).
    """
    if not (math.isfinite(headroom_pct) and 0 <= headroom_pct < 100):
        raise ValueError("headroom_pct must be a number from 0 up to (not including) 100")
    drained = drained_hosts(inventory, hosts)
    drained_names = {h.name for h in drained}
    targets = sorted((h for h in inventory.hosts
                      if h.enabled and h.up and h.name not in drained_names and h.name not in keep_out),
                     key=lambda h: h.name)
    keep = 1 - Fraction(headroom_pct) / 100
    limits = [tuple(math.floor(c * keep) for c in _vec(h.capacity)) for h in targets]
    leaving = sorted((s for s in inventory.servers if s.host in drained_names), key=lambda s: (s.name, s.id))

    exclusive = exclusive_groups(inventory)
    soft = _group_numbers(inventory, "soft-anti-affinity")
    soft_aff = _group_numbers(inventory, "soft-affinity")
    units = _units(inventory, leaving, targets, drained_names, exclusive=exclusive, soft=soft, soft_aff=soft_aff,
                   move_affinity_groups=move_affinity_groups)
    # Spread, largest memory first; when that leaves servers over, pack tightly (which fits more) and let the local
    # search spread them; then both again, the largest share of the targets' scarcest resource first.
    total = [sum(limit[r] for limit in limits) for r in range(3)]
    by_share = sorted(range(len(units)), key=lambda u: (units[u].aff_ok is None, -max(
        (need / room if room > 0 else math.inf) if need else 0.0 for need, room in zip(units[u].demand, total,
                                                                                         strict=True)), u))
    tried: list[tuple[_Board, list[int]]] = []
    for order, pack in ((range(len(units)), False), (range(len(units)), True), (by_share, True), (by_share, False)):
        board = _Board(targets, [(a, b, c) for a, b, c in limits], inventory, exclusive=exclusive, soft=soft,
                       soft_aff=soft_aff)
        tried.append((board, _repair(board, units, _place(board, units, order, pack=pack))))
        if not tried[-1][1]:
            break
    board, unfit = min(tried, key=lambda t: len(t[1]))
    if unfit:
        raise _does_not_fit(board, units, unfit, exclusive_group_names(inventory), headroom_pct)
    _improve(board, units)

    final = {s.id: s.host for s in inventory.servers}
    moves: dict[str, str] = {}
    arriving: list[list[str]] = [[] for _ in targets]
    for u, unit in enumerate(units):
        h = board.where[u]
        for member in unit.members:
            final[member.id] = moves[member.id] = targets[h].name
            arriving[h].append(member.id)
    by_host: dict[str, list[Server]] = {h.name: [] for h in sorted(inventory.hosts, key=lambda h: h.name)}
    for server in sorted(inventory.servers, key=lambda s: (s.name, s.id)):
        host = final[server.id]
        if host is not None and host in by_host:
            by_host[host].append(server)
    summaries = tuple(
        TargetUse(host.name, tuple(sorted(arriving[h])), host.capacity, host.used, Resources(*board.load[h]),
                  Resources(*limits[h]))
        for h, host in enumerate(targets)
    )
    up = {h.name: h.up for h in inventory.hosts}
    return Drain(
        hosts=tuple(h.name for h in drained),
        placement={host: tuple(s.id for s in servers) for host, servers in by_host.items()},
        moves={s.id: moves[s.id] for s in leaving},
        targets=summaries,
        cold=tuple(s.id for s in leaving if s.status not in MIGRATABLE_STATUSES),
        busy=tuple(s.id for s in leaving if s.task_state),
        source_down=tuple(s.id for s in leaving if not up.get(s.host or "", False)),
        headroom_pct=float(headroom_pct),
    )


def _group_numbers(inventory: Inventory, policy: str) -> dict[str, tuple[int, ...]]:
    """Server id -> the numbers of the groups with `policy` it is in."""
    found: dict[str, list[int]] = {}
    for number, group in enumerate(g for g in inventory.groups if g.policy == policy):
        for member in dict.fromkeys(group.members):
            found.setdefault(member, []).append(number)
    return {server: tuple(numbers) for server, numbers in found.items()}


def _units(
    inventory: Inventory,
    leaving: Sequence[Server],
    targets: Sequence[Host],
    drained: set[str],
    *,
    exclusive: Mapping[str, tuple[tuple[int, int], ...]],
    soft: Mapping[str, tuple[int, ...]],
    soft_aff: Mapping[str, tuple[int, ...]],
    move_affinity_groups: bool,
) -> list[_Unit]:
    """The leaving servers as units: the drained members of hard affinity groups together, every other alone."""
    present = {s.id: s for s in inventory.servers}
    moving = {s.id for s in leaving}
    parent = {s.id: s.id for s in leaving}

    def root(sid: str) -> str:
        while parent[sid] != sid:
            parent[sid] = parent[parent[sid]]
            sid = parent[sid]
        return sid

    affinity = [(g.name, [m for m in dict.fromkeys(g.members) if m in present])
                for g in sorted(inventory.groups, key=lambda g: (g.name, g.id)) if g.policy == "affinity"]
    for _, group_members in affinity:
        ours = [m for m in group_members if m in moving]
        for other in ours[1:]:
            parent[root(other)] = root(ours[0])
    clusters: dict[str, list[Server]] = {}
    for server in leaving:
        clusters.setdefault(root(server.id), []).append(server)
    index = {h.name: i for i, h in enumerate(targets)}
    units: list[_Unit] = []
    for members in clusters.values():
        ids = {m.id for m in members}
        aff_ok: frozenset[int] | None = None
        aff_group = ""
        for name, group_ids in affinity:
            if not ids & set(group_ids):
                continue
            staying = {present[m].host for m in group_ids if m not in moving and present[m].host is not None}
            if not staying and move_affinity_groups:
                continue  # the whole group moves as this unit, to any host
            ok = frozenset(index[h] for h in staying if h in index and h not in drained)
            narrowed = ok if aff_ok is None else aff_ok & ok
            if narrowed != aff_ok:
                aff_ok, aff_group = narrowed, name
        # The hosts every member's pin allows (nova's rule: zones.allowed_hosts); a pin that restricts none is no pin.
        zone_ok: frozenset[int] | None = None
        zones: list[str] = []
        for member in members:
            pinned_to = allowed_hosts(inventory, member)
            if pinned_to is None:
                continue
            zones = sorted({*zones, member.pinned_zone or ""})
            ok = frozenset(i for i, h in enumerate(targets) if h.name in pinned_to)
            zone_ok = ok if zone_ok is None else zone_ok & ok
        demand = [0, 0, 0]
        anti: dict[int, list[int]] = {}
        for member in members:
            for r, amount in enumerate(_vec(member.demand)):
                demand[r] += amount
            for group, allowed in exclusive.get(member.id, ()):
                anti.setdefault(group, [0, allowed])[0] += 1
        units.append(_Unit(
            members=tuple(members),
            demand=(demand[0], demand[1], demand[2]),
            anti=tuple((g, c, a) for g, (c, a) in sorted(anti.items())),
            soft_anti=_counts(g for m in members for g in soft.get(m.id, ())),
            soft_aff=_counts(g for m in members for g in soft_aff.get(m.id, ())),
            zone_ok=zone_ok, zone=zones[0] if zones else None, aff_ok=aff_ok, aff_group=aff_group,
        ))
    # Units with no choice of host first, then the largest memory (then VCPU, disk) first.
    units.sort(key=lambda u: (u.aff_ok is None, -u.demand[1], -u.demand[0], -u.demand[2],
                              u.members[0].name, u.members[0].id))
    return units


def _counts(numbers: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """(number, how often it occurs) pairs, by number."""
    found: dict[int, int] = {}
    for number in numbers:
        found[number] = found.get(number, 0) + 1
    return tuple(sorted(found.items()))


def _best(board: _Board, unit: _Unit, peak: float, *, skip: int | None = None, pack: bool = False) -> int | None:
    """The feasible host for the unit with the lowest resulting peak, then soft policy, own use, arrivals.

    With `pack`, the feasible host it fills the most (best fit), then soft policy.
    """
    best: tuple[float, int, float, int, str] | None = None
    chosen: int | None = None
    for h in range(len(board.targets)):
        if h == skip or not board.fits(unit, h):
            continue
        after = board.fraction_with(unit, h)
        if pack:
            key = (-after, board.soft_penalty(unit, h), 0.0, len(board.on[h]), board.targets[h].name)
        else:
            key = (max(peak, after), board.soft_penalty(unit, h), after, len(board.on[h]), board.targets[h].name)
        if best is None or key < best:
            best, chosen = key, h
    return chosen


def _place(board: _Board, units: Sequence[_Unit], order: Iterable[int], *, pack: bool) -> list[int]:
    """Place every unit greedily in `order` (spread, or with `pack` best fit); the units that fit nowhere."""
    peak = board.peak()
    unfit: list[int] = []
    for u in order:
        unit = units[u]
        h = _best(board, unit, peak, pack=pack)
        if h is None:
            unfit.append(u)
            continue
        peak = max(peak, board.fraction_with(unit, h))
        board.add(u, unit, h)
    return unfit


def _repair(board: _Board, units: Sequence[_Unit], unfit: Sequence[int]) -> list[int]:
    """Make room for left-over units by sending one placed unit elsewhere; the units still left over."""
    budget = REPAIR_BUDGET
    left: list[int] = []
    for u in unfit:
        unit = units[u]
        placed = False
        for h in sorted(range(len(board.targets)), key=board.fraction):
            if placed or budget <= 0 or not board.allowed(unit, h):
                continue
            for x in sorted(board.on[h]):
                budget -= 1
                if budget <= 0:
                    break
                board.remove(x, units[x])
                if board.fits(unit, h):
                    board.add(u, unit, h)
                    elsewhere = _best(board, units[x], board.peak(), skip=h)
                    if elsewhere is not None:
                        board.add(x, units[x], elsewhere)
                        placed = True
                        break
                    board.remove(u, unit)
                board.add(x, units[x], h)
        if not placed:
            left.append(u)
    return left


def _improve(board: _Board, units: Sequence[_Unit]) -> None:
    """Lower the use of the busiest targets by moving or swapping placed units while the budget lasts."""
    budget = IMPROVE_BUDGET
    while budget > 0:
        step = _improvement(board, units, budget)
        if step is None:
            return
        budget -= step


def _improvement(board: _Board, units: Sequence[_Unit], budget: int) -> int | None:
    """Make one move or swap that lowers a target's use below what it was, each end included; the tries it took.

    Each one lowers the targets' use fractions sorted from the highest, so the search cannot cycle.
    """
    tries = 0
    for a in sorted(range(len(board.targets)), key=lambda h: (-board.fraction(h), h)):
        level = board.fraction(a) - EPSILON
        for x in sorted(board.on[a]):
            board.remove(x, units[x])
            own = board.fraction(a)
            best: tuple[float, int, int] | None = None
            for b in range(len(board.targets)):
                tries += 1
                if b != a and board.fits(units[x], b):
                    key = (max(own, board.fraction_with(units[x], b)), board.soft_penalty(units[x], b), b)
                    if key[0] < level and (best is None or key < best):
                        best = key
            board.add(x, units[x], a if best is None else best[2])
            if best is not None:
                return tries
            if tries >= budget:
                return None
        for x in sorted(board.on[a]):
            for b in range(len(board.targets)):
                if b == a:
                    continue
                for y in sorted(board.on[b]):
                    tries += 1
                    if _swap(board, units, x, y, level):
                        return tries
                    if tries >= budget:
                        return None
    return None


def _swap(board: _Board, units: Sequence[_Unit], x: int, y: int, level: float) -> bool:
    """Swap units `x` and `y` between their hosts if both then fit and both hosts end below `level`."""
    a, b = board.where[x], board.where[y]
    board.remove(x, units[x])
    board.remove(y, units[y])
    if (board.fits(units[y], a) and board.fits(units[x], b)
            and max(board.fraction_with(units[y], a), board.fraction_with(units[x], b)) < level):
        board.add(y, units[y], a)
        board.add(x, units[x], b)
        return True
    board.add(x, units[x], a)
    board.add(y, units[y], b)
    return False


def _does_not_fit(board: _Board, units: Sequence[_Unit], unfit: Sequence[int], anti_names: Sequence[str],
                  headroom_pct: float) -> DrainDoesNotFit:
    """The error for units left over: each member with its size and what blocks it, and the room left."""
    room = {h.name: Resources(*(max(0, lim - load) for lim, load in zip(board.limit[i], board.load[i], strict=True)))
            for i, h in enumerate(board.targets)}
    most = Resources(*(max((getattr(r, f) for r in room.values()), default=0) for f in ("vcpu", "memory_mb",
                                                                                         "disk_gb")))
    servers: list[UnfitServer] = []
    for u in unfit:
        unit = units[u]
        group, policy, zone = _blocker(board, unit, anti_names)
        servers.extend(UnfitServer(m.id, m.name, m.host or "", m.demand, group, policy, zone) for m in unit.members)
    servers.sort(key=lambda s: (s.name, s.server))
    return DrainDoesNotFit(servers, room, most, float(headroom_pct))


def _blocker(board: _Board, unit: _Unit, anti_names: Sequence[str]) -> tuple[str, str, str | None]:
    """(group, policy, zone) that keep the unit off targets that have room for it; empty when room is short."""
    hosts = list(range(len(board.targets)))
    roomy = [h for h in hosts if board.has_room(unit, h)]
    zone = unit.zone if unit.zone_ok is not None and any(h not in unit.zone_ok for h in roomy) else None
    if unit.aff_ok is not None and (not unit.aff_ok or any(h not in unit.aff_ok for h in roomy)):
        return unit.aff_group, "affinity", zone
    for h in _each(roomy, unit):
        group = board.anti_block(unit, h)
        if group is not None:
            return anti_names[group], "anti-affinity", zone
    return "", "", zone


def _each(hosts: Sequence[int], unit: _Unit) -> Iterator[int]:
    for h in hosts:
        if unit.zone_ok is None or h in unit.zone_ok:
            yield h
