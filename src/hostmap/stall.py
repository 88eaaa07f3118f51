"""The stall rule: whether a running live migration has stopped converging, from nova's saved counters (pure).

Nova's libvirt monitor saves a migration's `memory_remaining_bytes` and `memory_processed_bytes` (and stamps
`updated_at`) about every 5 s (live_migration_monitor_interval); hostmap sees nothing in between. From two saves
`a` and `b`, `dt` seconds apart:

- the copy rate is `(b.processed - a.processed) / dt`;
- the dirty rate is what the guest dirtied again: `(b.processed - a.processed + b.remaining - a.remaining) / dt`,
  since what is left shrinks by what was copied and grows by what was dirtied.

A migration is *stalled* when, measured on nova's save stamps,

1. its remaining bytes have made no new minimum for `stall_s` seconds (libvirt copies memory in passes: the
   remaining bytes rise at each new pass, so a migration that converges still reaches a lower low each pass, one that
   does not stays above its best), or
2. over the last `stall_s` seconds (the oldest save kept that is at least that old, and the newest) its copy rate
   has been at or below its dirty rate: what is left did not shrink at all.

Both need saves spanning `stall_s`, so a migration is never called stalled before its counters cover that long, and
the 5 s between saves only delays the verdict by up to one save. Nova changed its mind on such a rule once (its
progress timeout was removed because "low progress" was impossible to detect reliably, bug 1644248): here a
migration whose remaining bytes keep shrinking, however slowly, renews its minimum at every save and never
qualifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hostmap.progress import Sample


@dataclass(frozen=True)
class StallFacts:
    """What a stall looked like when hostmap judged it: the figures the report gives, and the action taken."""

    remaining_bytes: int
    copy_bps: float
    dirty_bps: float
    stalled_s: float
    #: "abort", "force-complete" or "wait" (the operator's choice), or "abort" when the predicted pause was too long.
    action: str = "wait"
    #: remaining / copy rate: how long a force-complete would pause the guest (inf when nothing is copied).
    predicted_pause_s: float = 0.0
    #: True when hostmap did not force because the predicted pause exceeds the budget (`--max-pause-s`).
    pause_too_long: bool = False
    #: "stall" or "timeout": what made hostmap act.
    trigger: str = "stall"


@dataclass
class StallWatch:
    """The saves seen of one migration, and its best (lowest) remaining bytes and when that was saved."""

    stall_s: float
    samples: list[Sample] = field(default_factory=list)
    best_remaining: int | None = None
    best_at: Sample | None = None

    def add(self, sample: Sample) -> None:
        """Take one new save of the counters (the caller drops repeats of the same save)."""
        if self.best_remaining is None or sample.remaining < self.best_remaining:
            self.best_remaining, self.best_at = sample.remaining, sample
        self.samples.append(sample)
        # Keep the newest save at least a whole stall_s old, and everything after it: bounded by stall_s / 5 s.
        while len(self.samples) > 2 and sample.since(self.samples[1]) >= self.stall_s:
            self.samples.pop(0)

    def rates(self) -> tuple[float, float] | None:
        """(copy, dirty) in bytes per second over the saves kept; None with fewer than two."""
        if len(self.samples) < 2:
            return None
        return rates(self.samples[0], self.samples[-1])

    def facts(self) -> StallFacts | None:
        """The stall's figures if the migration is stalled now, else None."""
        if len(self.samples) < 2 or self.best_at is None:
            return None
        oldest, newest = self.samples[0], self.samples[-1]
        span = newest.since(oldest)
        no_new_minimum = newest.since(self.best_at) if newest is not self.best_at else 0.0
        measured = self.rates()
        if measured is None:
            return None
        copy, dirty = measured
        losing = span if span >= self.stall_s and copy <= dirty else 0.0
        stalled_s = max(no_new_minimum if no_new_minimum >= self.stall_s else 0.0, losing)
        if stalled_s <= 0.0:
            return None
        return StallFacts(newest.remaining, copy, dirty, stalled_s, predicted_pause_s=predicted_pause(
            newest.remaining, copy))


def rates(a: Sample, b: Sample) -> tuple[float, float] | None:
    """(copy, dirty) rates between two saves, in bytes per second; None when they are not apart in time."""
    dt = b.since(a)
    if dt <= 0:
        return None
    copied = b.processed - a.processed
    return copied / dt, max(0.0, (copied + b.remaining - a.remaining) / dt)


def predicted_pause(remaining: int, copy_bps: float) -> float:
    """How long a force-complete pauses the guest: what is left over the copy rate (inf when nothing is copied)."""
    return remaining / copy_bps if copy_bps > 0 else float("inf")
