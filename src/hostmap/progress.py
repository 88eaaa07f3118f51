"""A running migration's progress from nova's byte counters: the copy rate and when it should end (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    """One save of a migration's byte counters: when nova saved it (its clock, if it said) and when hostmap saw it."""

    saved_s: float | None
    seen_s: float
    processed: int
    remaining: int

    def since(self, older: Sample) -> float:
        """Seconds between two saves: by nova's stamps when both have them, else by when hostmap saw them."""
        if self.saved_s is not None and older.saved_s is not None and self.saved_s > older.saved_s:
            return self.saved_s - older.saved_s
        return self.seen_s - older.seen_s


@dataclass
class Progress:
    """What hostmap has read of one migration's counters, and the end it expects from them (clock times)."""

    #: When to read the counters next.
    next_read_at: float = 0.0
    #: When they were last read (whatever they showed): a save first seen now happened after that.
    read_at: float | None = None
    #: Distinct saves seen lately (oldest first, about a rate window of them): the copy rate, and so the expected
    #: end, come from the oldest and the newest.
    samples: list[Sample] = field(default_factory=list)
    expected_end: float | None = None
    #: When the plan's estimate says the migration ends: paces the polls until the counters give a measured end
    #: (nova saves them only every few seconds, too rarely for a short migration).
    planned_end: float | None = None

    def add(self, sample: Sample, window_s: float) -> bool:
        """Keep `sample` if nova saved the counters again since the last one; False when it is the same save."""
        samples = self.samples
        if samples and (samples[-1].processed, samples[-1].remaining) == (sample.processed, sample.remaining):
            return False
        samples.append(sample)
        while len(samples) > 2 and sample.since(samples[1]) >= window_s:
            samples.pop(0)  # keep the newest save that is a whole window old (or the oldest there is)
        return True


def save_time(now: float, saved_s: float | None, offset: float | None, read_before: float | None) -> float:
    """When (on hostmap's clock) nova most likely saved counters first seen at `now`.

    The latest moment nova's stamp allows, translated by `offset` (the smallest hostmap-clock minus nova-stamp seen
    so far).  The save came after the previous read (`read_before`), since it was not seen then: when that read is
    later than the stamp allows, the offset is not yet known well, and the estimate goes halfway towards the read.
    """
    latest = now if saved_s is None or offset is None else min(now, saved_s + offset)
    return latest if read_before is None else (max(read_before, latest) + latest) / 2


def expected_end(base: Sample, newest: Sample, saved_at: float, switchover_s: float) -> float | None:
    """When the migration should switch over, from two saves; None while what is left does not shrink.

    What is left shrinks at the copy rate less the guest's dirty rate; nova switches over once what is left can be
    sent within its downtime allowance (`switchover_s` at the copy rate), not at zero.  `saved_at` is when the
    newest save was made, on the clock the answer is in.
    """
    span = newest.since(base)
    if span <= 0:
        return None
    shrink = (base.remaining - newest.remaining) / span
    rate = max(0.0, (newest.processed - base.processed) / span)
    left = max(0.0, newest.remaining - rate * switchover_s)
    return saved_at + left / shrink if shrink > 0 else None
