"""Turn a desired placement into an ordered, capacity-safe schedule of live migrations.

The planner is pure: it reads an `Inventory` and a desired map and returns a `Plan`, with no I/O and no clock.

Safety rule (nova counts an in-flight server on both its source and its target): a step j arriving at host H
is admitted only if ``H.used + demand of every step with index <= j arriving at H - demand of the departures
from H that j (transitively) waits for <= H.capacity`` in every resource.  At any moment the arrivals started
at H are a subset of those indexed up to the latest started one, k, and all of k's dependencies have completed,
so every execution order that respects `Step.after` stays within capacity, whatever the interleaving.
`ledger.Ledger` is that rule, and the only place it is applied.

The order is built by list scheduling in simulated time (`scheduler`: busiest source hosts and longest
migrations first, bounded by ``max_per_host`` and ``parallel``).  When nothing can start and nothing is
running, the stuck moves form cycles of full hosts; one server per cycle then takes a detour through a pivot
host with room (`deadlock`).  A second pass replays the plan with those detours decided up front and
critical-path priorities (`passes`, `priorities`).

When neither comes close to the lower bound (`bounds`), further passes may also park servers (`parking`): a
source host that sits idle because every server it still has to send waits for room on its target, while
servers wait for room on the source itself, sends one of them to another host of the plan that has room now and
keeps room for it at the end (a detour, two steps).  That frees room on the source at once instead of at the
end of a chain of "arrive once something has left", which is what makes schedules on nearly full clouds long.
Each such pass takes its priorities from the critical paths of the previous one; the fastest schedule of all
passes, as `replay` times it under the executor's start rule, is returned (fewer steps on a tie).

The parts: `requests` (inventory and map -> what must move, the final capacity check), `moves` (the planner's
own types), `ledger`, `scheduler`, `board` (what the scheduler shows the detour proposers), `deadlock`,
`parking`, `sequential` (the one-at-a-time fallback), `priorities`, `bounds`, `replay` and `passes` (`plan()`).
"""

from hostmap.flow import Links
from hostmap.planner.passes import default_duration, plan

__all__ = ["Links", "default_duration", "plan"]
