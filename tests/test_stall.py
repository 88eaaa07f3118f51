"""The stall rule on nova's saved counters: converging migrations never stall, stuck ones do within stall_s."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from hostmap.progress import Sample
from hostmap.stall import StallWatch, predicted_pause, rates

GIB = 2**30


def saves(phases: list[tuple[float, float, float]], left: float, every_s: float = 5.0,
          stamp: float = 1.0) -> list[Sample]:
    """Saves every `every_s` s (stamped to `stamp` s, as nova's updated_at) of a copy through `phases` of
    (seconds, copy bytes/s, dirty bytes/s), starting with `left` bytes to copy; stops when nothing is left."""
    out: list[Sample] = []
    t, processed = 0.0, 0.0
    for seconds, copy, dirty in phases:
        end = t + seconds
        while t < end and left > 0:
            out.append(Sample(math.floor(t / stamp) * stamp, t, round(processed), round(left)))
            step = min(every_s, end - t)
            processed += copy * step
            left = max(0.0, left - (copy - dirty) * step)
            t += step
    return out


def first_stall(samples: list[Sample], stall_s: float = 60.0) -> float | None:
    """The save time (seen) at which the watch first calls the migration stalled, or None."""
    watch = StallWatch(stall_s)
    for sample in samples:
        watch.add(sample)
        if watch.facts() is not None:
            return sample.seen_s
    return None


@settings(max_examples=200, deadline=None)
@given(
    phases=st.lists(
        st.tuples(st.floats(5, 400), st.floats(1e6, 1.25e9), st.floats(0, 0.999)), min_size=1, max_size=6,
    ),
    left=st.floats(0.1 * GIB, 64 * GIB),
    every_s=st.sampled_from([1.0, 5.0, 7.0]),
)
def test_converging_migration_never_stalls(phases: list[tuple[float, float, float]], left: float,
                                          every_s: float) -> None:
    """A migration whose copy rate always beats its dirty rate, however slowly and whatever its rate changes
    (streams sharing a NIC, a large guest at a low rate), is never called stalled."""
    concrete = [(seconds, copy, copy * share) for seconds, copy, share in phases]
    assert first_stall(saves(concrete, left, every_s)) is None


def test_never_converging_migration_stalls_within_stall_s_and_a_save() -> None:
    """A guest dirtying faster than the copy is stalled once its counters cover stall_s (plus at most one save)."""
    at = first_stall(saves([(600, 1e9, 1.25e9)], 4 * GIB))
    assert at is not None
    assert 60 <= at <= 65


def test_sawtooth_without_new_minimum_stalls() -> None:
    """Remaining bytes that rise and fall around the same low (libvirt's passes) without a new minimum stall."""
    samples = [Sample(5.0 * i, 5.0 * i, int(1e9 * i), GIB + (i % 4) * 2**28) for i in range(30)]
    at = first_stall(samples)
    assert at is not None
    assert at <= 65


def test_stall_that_clears_is_seen_then_gone() -> None:
    """A guest busy for 90 s then quiet is stalled after 60 s and no longer once it converges."""
    samples = saves([(90, 1e9, 1.25e9), (200, 1e9, 1e7)], 4 * GIB)
    watch = StallWatch(60.0)
    seen = []
    for sample in samples:
        watch.add(sample)
        seen.append(watch.facts() is not None)
    assert any(seen)
    assert not seen[-1]


def test_facts_give_rates_and_pause() -> None:
    """The stall's figures: copy and dirty rates from the saves, the predicted pause remaining / copy rate."""
    watch = StallWatch(60.0)
    for sample in saves([(100, 1e9, 1.25e9)], 4 * GIB):
        watch.add(sample)
    facts = watch.facts()
    assert facts is not None
    assert facts.copy_bps == 1e9
    assert abs(facts.dirty_bps - 1.25e9) < 1e3
    assert facts.predicted_pause_s == facts.remaining_bytes / 1e9
    assert facts.stalled_s >= 60


def test_rates_and_pause_edges() -> None:
    """Two saves at the same instant give no rate; nothing copied predicts an endless pause."""
    a = Sample(1.0, 1.0, 0, 10)
    assert rates(a, a) is None
    assert predicted_pause(10, 0.0) == math.inf
