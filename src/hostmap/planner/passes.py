"""`plan()`: check the map, then run scheduling passes and keep the fastest schedule, as the replay times it.

The first pass schedules busiest sources first and breaks deadlocks with detours.  The second replays it with
those detours decided up front and critical-path priorities.  When neither comes close to the lower bound,
parking passes follow, each taking its priorities from the critical paths of the one before.  The fastest
schedule of all passes is returned (fewer steps on a tie).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from hostmap.errors import InfeasiblePlanError
from hostmap.flow import Links
from hostmap.model import COLD_MIGRATABLE_STATUSES, Host, Inventory, Limits, Move, Plan, Server, Step
from hostmap.planner import priorities
from hostmap.planner.bounds import free_room, lower_bound
from hostmap.planner.moves import KeyOf, Mv, Request, Stuck
from hostmap.planner.parking import Parking
from hostmap.planner.replay import simulate, spans
from hostmap.planner.requests import PassInputs, final_check, pass_inputs, requests_of, unusable
from hostmap.planner.scheduler import Scheduler
from hostmap.planner.sequential import sequential_order
from hostmap.policy import check_policies, exclusive_groups
from hostmap.zones import check_zones

#: Passes that may park servers, after the first two; each costs about one first pass.  Fewer for big plans:
#: at most `PARKING_BUDGET` moves scheduled in all, and at least one pass.
PARKING_PASSES = 30
PARKING_BUDGET = 30_000
#: No parking passes when the best schedule is already within this factor of the lower bound.
CLOSE_ENOUGH = 1.02


def default_duration(server: Server) -> float:
    """Estimated seconds to live-migrate `server`: 3 s of setup plus its RAM copied at about 1 GB/s."""
    return 3.0 + 0.7 * server.ram_mb * 2**20 / 1e9


@dataclass(slots=True)
class Built:
    """The outcome of one scheduling pass."""

    order: list[Mv]
    pivots: dict[str, int]
    notes: dict[str, str]


@dataclass(slots=True)
class _Best:
    """The fastest schedule so far, timed by the replay."""

    hosts: Sequence[Host]
    inputs: PassInputs
    steps: tuple[Step, ...]
    seconds: float
    notes: dict[str, str]

    def consider(self, built: Built) -> tuple[Step, ...]:
        """Keep `built` if it is faster (or as fast in fewer steps); its steps."""
        steps = to_steps(built.order, self.hosts, self.inputs.server_groups)
        seconds = _time(steps, self.inputs)
        if (seconds, len(steps)) < (self.seconds, len(self.steps)):
            self.steps, self.seconds, self.notes = steps, seconds, built.notes
        return steps


def plan(
    inventory: Inventory,
    desired: Mapping[str, str],
    *,
    max_per_host: int = 1,
    parallel: int | None = None,
    per_group: int | None = None,
    max_in_per_host: int | None = None,
    duration: Callable[[Server], float] | None = None,
    links: Links | None = None,
    group_settle_s: float = 0.0,
    cold: bool = False,
) -> Plan:
    """Schedule live migrations that take `inventory` to `desired` (server id -> host) safely and quickly.

    Raises `CapacityError` when the final placement overfills a host that receives servers, `PolicyError` when
    it breaks a hard server-group policy (`hostmap.policy`), and `InfeasiblePlanError` when moves wait on each
    other around full hosts and no pivot host has room.  Hard anti-affinity is kept at every step like a
    resource: a member arrives only once the members it would meet have left.

    With `cold`, the moves of SHUTOFF servers are cold migrations (`Move.cold`): the same capacity rule (nova holds
    the flavor on both hosts until the resize is confirmed), but never a detour through a pivot.
    """
    limits = Limits(max_per_host, parallel, per_group=per_group, max_in_per_host=max_in_per_host)
    with _collector_paused():
        return _plan(inventory, desired, limits, duration=duration, links=links, group_settle_s=group_settle_s,
                     cold=cold)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: planning allocates many small objects and few cycles, and
    full collections scanning a big inventory again and again cost a quarter of the time on large clouds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(
    inventory: Inventory,
    desired: Mapping[str, str],
    limits: Limits,
    *,
    duration: Callable[[Server], float] | None,
    links: Links | None,
    group_settle_s: float,
    cold: bool = False,
) -> Plan:
    try:
        return _plan_moves(inventory, desired, limits, duration=duration, links=links, group_settle_s=group_settle_s,
                           cold=cold)
    except InfeasiblePlanError as error:
        if not cold:
            raise
        # The deadlock finder calls every server that may not detour pinned; say which of them are cold moves.
        stopped = {s.name for s in inventory.servers if s.status in COLD_MIGRATABLE_STATUSES}
        error.cycles = [replace(c, pinned=[n for n in c.pinned if n not in stopped],
                                cold=[n for n in c.pinned if n in stopped]) for c in error.cycles]
        raise


def _plan_moves(
    inventory: Inventory,
    desired: Mapping[str, str],
    limits: Limits,
    *,
    duration: Callable[[Server], float] | None,
    links: Links | None,
    group_settle_s: float,
    cold: bool,
) -> Plan:
    if not (math.isfinite(group_settle_s) and group_settle_s >= 0):
        raise ValueError("group_settle_s must be a finite number >= 0")
    hosts = sorted(inventory.hosts, key=lambda h: h.name)
    exclusive = exclusive_groups(inventory)
    in_place, requests = requests_of(inventory, hosts, desired, duration or default_duration, exclusive)
    final_check(hosts, requests)
    check_policies(inventory, desired)
    check_zones(inventory, desired)
    inputs = pass_inputs(inventory, hosts, exclusive, limits=limits, links=links, group_settle_s=group_settle_s)
    cold_ids = frozenset(r.server.id for r in requests if r.server.status in COLD_MIGRATABLE_STATUSES) if cold \
        else frozenset()
    if cold_ids:  # a cold move never detours: nova's resize would stop at the pivot waiting for a confirm
        inputs = replace(inputs, pinned=inputs.pinned | cold_ids)
    first_key = priorities.busiest_source_first(priorities.work_per_source(len(hosts), requests))
    first = _first_pass(hosts, requests, inputs, first_key)
    steps = to_steps(first.order, hosts, inputs.server_groups)
    best = _Best(hosts, inputs, steps, _time(steps, inputs), first.notes)
    # The bound counts each server's first leg only, the same in every pass's plan: one computation serves all.
    bound, bound_by = lower_bound(best.steps, limits, free_room(hosts))
    if requests:
        second = _second_pass(hosts, requests, first, best.steps, inputs)
        if second is not None:
            second.notes = {**{k: v for k, v in first.notes.items() if k in second.pivots}, **second.notes}
            best.consider(second)
        if best.seconds > CLOSE_ENOUGH * bound:
            _parking_passes(hosts, requests, inputs, first_key, best)
    leg_one = {s.move.server_id: s.index for s in best.steps if s.move.is_detour}
    notes = tuple(best.notes[sid] for sid in sorted(leg_one, key=leg_one.__getitem__) if sid in best.notes)
    return Plan(
        steps=_marked_cold(best.steps, cold_ids),
        in_place=tuple(in_place),
        estimated_s=best.seconds,
        lower_bound_s=bound,
        lower_bound_by=bound_by,
        limits=limits,
        notes=notes,
        group_settle_s=group_settle_s,
        spans=spans(best.steps, limits, inputs.links, group_settle_s),
    )


def _marked_cold(steps: tuple[Step, ...], cold_ids: frozenset[str]) -> tuple[Step, ...]:
    """`steps` with the moves of `cold_ids` marked as cold migrations."""
    if not cold_ids:
        return steps
    marked = tuple(replace(s, move=replace(s.move, cold=True)) if s.move.server_id in cold_ids else s for s in steps)
    assert not any(s.move.cold and s.move.is_detour for s in marked), "a cold move was given a detour"
    return marked


def _time(steps: Sequence[Step], inputs: PassInputs) -> float:
    return simulate(steps, inputs.limits, inputs.links, inputs.group_settle_s)


def _first_pass(hosts: Sequence[Host], requests: Sequence[Request], inputs: PassInputs, first_key: KeyOf) -> Built:
    """The first pass; when it is stuck, a one-at-a-time order if a bounded search finds one."""
    try:
        return schedule(hosts, requests, {}, inputs, first_key)
    except Stuck as stuck:
        # List scheduling never takes a start back: moves that fit at once may have taken the room a cycle of full
        # hosts needed to turn.  Before calling the moves infeasible, replay one at a time an order that a bounded
        # search finds; the scheduler checks each start under the safety rule as always.
        order = sequential_order(hosts, requests, inputs.members_at)
        if order is None:
            raise InfeasiblePlanError(stuck.cycles, unusable(hosts)) from None
        rank_key = priorities.by_rank({req.server.id: float(i) for i, req in enumerate(order)})
        try:
            return schedule(hosts, requests, {}, replace(inputs, limits=replace(inputs.limits, parallel=1)), rank_key)
        except Stuck:  # the replay waited for nova to see a member leave and took another move meanwhile
            raise InfeasiblePlanError(stuck.cycles, unusable(hosts)) from None


def _second_pass(
    hosts: Sequence[Host], requests: Sequence[Request], first: Built, steps: Sequence[Step], inputs: PassInputs
) -> Built | None:
    """Reschedule with the first pass's detours decided up front and its critical paths as priorities."""
    work = priorities.work_per_source(len(hosts), first.order)
    key = priorities.critical_path_or_source(priorities.levels(first.order, steps), work)
    try:
        return schedule(hosts, requests, first.pivots, inputs, key)
    except Stuck:
        return None


def _parking_passes(
    hosts: Sequence[Host], requests: Sequence[Request], inputs: PassInputs, first_key: KeyOf, best: _Best
) -> None:
    """Schedule with parking, first with the first pass's priorities, then each time with critical-path
    priorities from the pass before; `best` keeps the fastest."""
    key_of = first_key
    for _ in range(max(1, min(PARKING_PASSES, PARKING_BUDGET // len(requests)))):
        try:
            built = schedule(hosts, requests, {}, inputs, key_of, parking=Parking())
        except Stuck:
            return
        steps = best.consider(built)
        key_of = priorities.critical_path(priorities.levels(built.order, steps))


def schedule(
    hosts: Sequence[Host],
    requests: Sequence[Request],
    pivots: Mapping[str, int],
    inputs: PassInputs,
    key_of: KeyOf,
    *,
    parking: Parking | None = None,
) -> Built:
    """One scheduling pass over `requests`, those in `pivots` (server id -> pivot host) as detours from the start."""
    sched = Scheduler(hosts, inputs, key_of, parking)
    for req in requests:
        pivot = pivots.get(req.server.id)
        if pivot is None:
            sched.add_plain(req)
        else:
            sched.add_detour(req, pivot)
    sched.run()
    pivots_used = dict(pivots)
    pivots_used.update(sched.pivots)
    return Built(sched.order, pivots_used, sched.notes)


def to_steps(order: Sequence[Mv], hosts: Sequence[Host],
             groups: Mapping[str, tuple[str, ...]] | None = None) -> tuple[Step, ...]:
    """The plan's steps for the moves of a pass, in start order (`groups`: each server's server groups)."""
    return tuple(
        Step(
            index=mv.index,
            move=Move(
                server_id=mv.server.id,
                server_name=mv.server.name,
                source=hosts[mv.src].name,
                target=hosts[mv.dst].name,
                demand=mv.server.demand,
                final_target=hosts[mv.final].name,
                estimate_s=mv.dur,
                groups=(groups or {}).get(mv.server.id, ()),
            ),
            after=mv.after,
            settle_after=mv.settle_after,
        )
        for mv in order
    )
