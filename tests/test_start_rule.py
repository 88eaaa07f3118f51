"""Tests of the start rule the executor and the planner's replay share."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from hostmap.model import Limits
from hostmap.start_rule import Verdict, ready_at, verdict


def _never() -> float:
    raise AssertionError("the head's start time was asked for although it does not matter")


def test_a_full_source_comes_before_the_total_cap() -> None:
    """A step whose source has no free slot is told so, even when the total cap is reached too."""
    said = verdict(Limits(max_per_host=1, parallel=1), running=1, from_source=1, ends_at=5.0, head_ready_at=None)
    assert said is Verdict.SOURCE_FULL


def test_the_total_cap_holds_a_step_with_a_free_source() -> None:
    """`parallel` migrations in flight hold back a step whose source is free."""
    said = verdict(Limits(max_per_host=2, parallel=3), running=3, from_source=0, ends_at=5.0, head_ready_at=None)
    assert said is Verdict.TOTAL_FULL


def test_a_step_that_ends_before_the_head_can_start_takes_the_last_slot() -> None:
    """A ready step fills the gap before the plan's earlier step from its source can start."""
    said = verdict(Limits(), running=0, from_source=0, ends_at=10.0, head_ready_at=lambda: 10.0)
    assert said is Verdict.START


def test_a_step_that_would_delay_the_head_is_held() -> None:
    """A ready step that would still run when the head can start waits for the head."""
    said = verdict(Limits(), running=0, from_source=0, ends_at=10.5, head_ready_at=lambda: 10.0)
    assert said is Verdict.HOLD_FOR_HEAD


def test_a_head_waiting_for_an_unstarted_step_holds_the_last_slot() -> None:
    """When the head's start cannot be told (it waits for a step not yet started), the ready step waits."""
    said = verdict(Limits(), running=0, from_source=0, ends_at=1.0, head_ready_at=lambda: math.inf)
    assert said is Verdict.HOLD_FOR_HEAD


def test_a_slot_that_is_not_the_last_is_taken_without_asking_about_the_head() -> None:
    """With slots to spare on its source, a ready step starts and the head's start time is not computed."""
    said = verdict(Limits(max_per_host=3), running=1, from_source=1, ends_at=99.0, head_ready_at=_never)
    assert said is Verdict.START


@given(
    max_per_host=st.integers(1, 4),
    parallel=st.none() | st.integers(1, 8),
    running=st.integers(0, 8),
    from_source=st.integers(0, 4),
    ends_at=st.floats(0, 1e4),
    head=st.none() | st.floats(0, 1e4) | st.just(math.inf),
)
def test_a_step_starts_only_within_both_limits(
    *, max_per_host: int, parallel: int | None, running: int, from_source: int, ends_at: float, head: float | None
) -> None:
    """Whatever the head, a START never exceeds the source's slots or the total cap."""
    said = verdict(Limits(max_per_host=max_per_host, parallel=parallel), running=running, from_source=from_source,
                   ends_at=ends_at, head_ready_at=None if head is None else (lambda: head))
    if said is Verdict.START:
        assert from_source < max_per_host
        assert parallel is None or running < parallel
        if head is not None and from_source + 1 >= max_per_host:
            assert ends_at <= head < math.inf


def test_ready_at_is_the_latest_end_with_settling() -> None:
    """A step is ready at its latest dependency's end, `group_settle_s` later for a departing anti-affine member."""
    assert ready_at([(4.0, False), (3.0, True)], group_settle_s=2.0) == 5.0
    assert ready_at([(4.0, False), (math.inf, False)], group_settle_s=2.0) == math.inf
    assert ready_at([], group_settle_s=2.0) == 0.0


def test_a_target_receiving_its_limit_holds_a_step_with_a_free_source() -> None:
    """A step whose target already receives max_in_per_host migrations waits, whatever its source's slots."""
    limits = Limits(max_per_host=2, max_in_per_host=1)
    held = verdict(limits, running=1, from_source=0, ends_at=1.0, head_ready_at=None, to_target=1)
    assert held is Verdict.TARGET_FULL
    assert verdict(limits, running=1, from_source=0, ends_at=1.0, head_ready_at=None, to_target=0) is Verdict.START
