"""The expected end of a running migration, from nova's byte counters: pure arithmetic, no cloud."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostmap.progress import Progress, Sample, expected_end, save_time

GIB = 1 << 30


def test_a_clean_copy_ends_when_what_is_left_is_sent() -> None:
    """At 1 GiB/s with nothing dirtied, 6 GiB left and no switch-over allowance end 6 s after the save."""
    base = Sample(100.0, 100.5, 0, 8 * GIB)
    newest = Sample(102.0, 102.5, 2 * GIB, 6 * GIB)
    assert expected_end(base, newest, saved_at=50.0, switchover_s=0.0) == pytest.approx(56.0)


def test_the_switch_over_comes_before_zero() -> None:
    """Nova switches over once what is left fits in the downtime allowance at the copy rate."""
    base = Sample(0.0, 0.0, 0, 8 * GIB)
    newest = Sample(2.0, 2.0, 2 * GIB, 6 * GIB)
    assert expected_end(base, newest, saved_at=0.0, switchover_s=1.0) == pytest.approx(5.0)


def test_dirtying_slows_the_shrink_not_the_copy() -> None:
    """Copying 2 GiB/s while the guest dirties 1 GiB/s shrinks what is left by 1 GiB/s."""
    base = Sample(0.0, 0.0, 0, 8 * GIB)
    newest = Sample(2.0, 2.0, 4 * GIB, 6 * GIB)
    assert expected_end(base, newest, saved_at=10.0, switchover_s=0.5) == pytest.approx(10.0 + 5.0)


def test_no_end_while_nothing_shrinks() -> None:
    """A migration whose remaining bytes do not fall has no expected end."""
    base = Sample(0.0, 0.0, 0, 8 * GIB)
    assert expected_end(base, Sample(4.0, 4.0, 3 * GIB, 8 * GIB), 0.0, 0.5) is None
    assert expected_end(base, Sample(4.0, 4.0, 3 * GIB, 9 * GIB), 0.0, 0.5) is None


def test_no_end_from_two_reads_of_one_instant() -> None:
    """Two samples without time between them give no rate."""
    base = Sample(None, 3.0, 0, 8 * GIB)
    assert expected_end(base, Sample(None, 3.0, GIB, 7 * GIB), 0.0, 0.5) is None


def test_nova_stamps_measure_time_between_saves_when_both_have_one() -> None:
    """The span between saves is nova's when both are stamped, else when hostmap saw them."""
    assert Sample(15.0, 40.0, 0, 0).since(Sample(10.0, 31.0, 0, 0)) == 5.0
    assert Sample(None, 40.0, 0, 0).since(Sample(10.0, 31.0, 0, 0)) == 9.0
    assert Sample(10.0, 40.0, 0, 0).since(Sample(10.0, 31.0, 0, 0)) == 9.0


def test_a_save_is_placed_at_the_latest_moment_its_stamp_allows() -> None:
    """A save first seen now happened no later than its stamp says, or now when nova gave no stamp."""
    assert save_time(now=20.0, saved_s=None, offset=None, read_before=None) == 20.0
    assert save_time(now=20.0, saved_s=None, offset=None, read_before=16.0) == 20.0
    assert save_time(now=20.0, saved_s=1000.0, offset=-985.0, read_before=None) == 15.0
    assert save_time(now=20.0, saved_s=1000.0, offset=-985.0, read_before=11.0) == 15.0


def test_a_stamp_older_than_the_last_read_moves_halfway_towards_it() -> None:
    """When the stamp puts the save before the previous read (a poorly known offset), the estimate goes halfway."""
    assert save_time(now=20.0, saved_s=1000.0, offset=-990.0, read_before=16.0) == 13.0


def test_the_same_save_read_twice_is_kept_once() -> None:
    """Counters nova has not saved again since the last read add no sample."""
    progress = Progress()
    assert progress.add(Sample(5.0, 5.5, GIB, 7 * GIB), window_s=10.0)
    assert not progress.add(Sample(5.0, 7.5, GIB, 7 * GIB), window_s=10.0)
    assert len(progress.samples) == 1


def test_the_window_keeps_the_newest_save_a_whole_window_old() -> None:
    """Older saves fall out once a newer one is at least a window older than the newest."""
    progress = Progress()
    for t in range(0, 30, 5):
        progress.add(Sample(float(t), float(t), t * GIB, (100 - t) * GIB), window_s=10.0)
    assert [s.saved_s for s in progress.samples] == [15.0, 20.0, 25.0]


@given(
    rate=st.floats(0.05, 4.0), dirty=st.floats(0.0, 0.9), left_gib=st.floats(0.5, 64.0),
    span=st.floats(1.0, 20.0), switchover=st.floats(0.0, 2.0),
)
def test_a_steady_migration_ends_when_the_arithmetic_says(
    rate: float, dirty: float, left_gib: float, span: float, switchover: float,
) -> None:
    """For any steady copy faster than the guest dirties, the estimate is the time to shrink to the allowance."""
    copy, shrink = rate * GIB, rate * (1 - dirty) * GIB
    start_left = left_gib * GIB + shrink * span
    base = Sample(0.0, 0.0, 0, round(start_left))
    newest = Sample(span, span, round(copy * span), round(start_left - shrink * span))
    end = expected_end(base, newest, saved_at=span, switchover_s=switchover)
    assert end is not None
    want = span + max(0.0, left_gib * GIB - copy * switchover) / shrink
    assert end == pytest.approx(want, rel=1e-6, abs=1e-6)
