"""maintain's wait for a host to be back judges a fresh heartbeat, as nova counts services up."""

from __future__ import annotations

from collections.abc import Callable

from conftest import Running
from hostmap.maintain import _heartbeat, _wait_up


def test_a_host_that_stopped_reporting_is_back_only_after_a_fresh_heartbeat(
    start_sim: Callable[..., Running],
) -> None:
    """A host whose nova-compute went silent still looks up to nova for service_down_time, but the wait does not
    take it as back until nova-compute reports again, after the moment the command ended."""
    running = start_sim()
    assert running.clock is not None
    state = running.sim.state
    state.stop_heartbeats("compute001")
    after = _heartbeat(running.cloud, "compute001")
    assert after is not None
    seen_up = next(h for h in running.cloud.inventory().hosts if h.name == "compute001")
    assert seen_up.up  # nova still counts it up: up alone would be taken as back
    assert _wait_up(running.cloud, running.clock, "compute001", 120.0, after) is None
    state.start_heartbeats("compute001")
    back = _wait_up(running.cloud, running.clock, "compute001", 120.0, after)
    assert back is not None
    assert back.up
    assert back.heartbeat_s is not None
    assert back.heartbeat_s > after
