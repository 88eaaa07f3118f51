"""The migration timing model: closed form, and the simulated cloud agreeing with it event by event."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostmap.clock import VirtualClock
from hostmap.sim.scenario import parse_scenario
from hostmap.sim.state import SimCloud, SimError, SimMigration
from hostmap.timing import MigrationParams, completion_timeout_s, solo_duration_s


def cloud(migration: dict[str, Any] | None = None, faults: list[dict[str, Any]] | None = None,
          ram: int = 4096, **host: Any) -> tuple[SimCloud, VirtualClock]:
    """A cloud of four big hosts with one server per host of `ram` MiB on the first three."""
    data: dict[str, Any] = {
        "hosts": [{"name": f"h{i}", "vcpus": 64, "memory_mb": 262144, "disk_gb": 2000, **host} for i in range(4)],
        "flavors": [{"name": "f", "vcpus": 2, "ram": ram, "disk": 10}],
        "servers": [
            {"name": "a", "flavor": "f", "host": "h0"},
            {"name": "b", "flavor": "f", "host": "h1"},
            {"name": "c", "flavor": "f", "host": "h0"},
        ],
        "migration": migration or {},
        "faults": faults or [],
    }
    clock = VirtualClock()
    return SimCloud(parse_scenario(data, "timing test"), clock), clock


def start(sim: SimCloud, name: str, dest: str) -> SimMigration:
    """Start a live migration of `name` to `dest` the way a 2.96 request would."""
    m = sim.live_migrate(sim.scenario.server(name).id, dest, force=False, request_id=f"req-{name}", async_checks=True)
    assert m is not None
    assert m.status in ("queued", "preparing")
    return m


def duration(m: SimMigration) -> float:
    """Seconds from acceptance to the end of the migration."""
    assert m.finished_s is not None
    return m.finished_s - m.created_s


def test_solo_duration_by_hand() -> None:
    """The closed form matches a hand computation for the documented defaults."""
    params = MigrationParams()
    rate = 8e9 / 8
    total = 0.7 * 4096 * 2**20
    expected = 3.0 + (total - rate * 0.5) / (rate - 20e6)
    assert solo_duration_s(4096, params) == pytest.approx(expected, rel=1e-12)
    assert solo_duration_s(4096, params, rate_gbps=0.1) == math.inf
    assert solo_duration_s(1, params) == 3.0


def test_completion_timeout_floor() -> None:
    """Nova's completion timeout is 800 s per GiB of RAM, counting at least 2 GiB."""
    assert completion_timeout_s(1024) == 1600.0
    assert completion_timeout_s(8192) == 6400.0


def test_single_migration_matches_closed_form() -> None:
    """One uncontended migration takes exactly solo_duration_s."""
    sim, clock = cloud({"setup_s": 2.5})
    m = start(sim, "a", "h2")
    clock.advance(1.0)
    sim.advance()
    assert m.status == "preparing"
    clock.advance(2.0)
    sim.advance()
    assert m.status == "running"
    assert m.sent_bytes == pytest.approx(0.5 * 1e9)
    clock.advance(1000)
    sim.advance()
    assert m.status == "completed"
    assert duration(m) == pytest.approx(solo_duration_s(4096, sim.params), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    ram=st.integers(min_value=256, max_value=65536),
    stream=st.floats(min_value=0.5, max_value=40),
    nic=st.floats(min_value=0.5, max_value=40),
    dirty=st.floats(min_value=0, max_value=500),
    setup=st.floats(min_value=0, max_value=20),
    polls=st.lists(st.floats(min_value=0.01, max_value=50), max_size=5),
)
def test_sim_agrees_with_closed_form(
    ram: int, stream: float, nic: float, dirty: float, setup: float, *, polls: list[float]
) -> None:
    """However often the state is polled, a lone migration ends at solo_duration_s (or fails at the timeout)."""
    migration = {"stream_gbps": stream, "nic_gbps": nic, "dirty_mb_s": dirty, "setup_s": setup}
    sim, clock = cloud(migration, ram=ram)
    m = start(sim, "a", "h2")
    for step in polls:
        clock.advance(step)
        sim.advance()
    clock.advance(10**6)
    sim.advance()
    expected = solo_duration_s(ram, sim.params)
    if math.isinf(expected):
        assert m.status == "cancelled"  # libvirt aborts the job at the completion timeout
        assert duration(m) == pytest.approx(setup + completion_timeout_s(ram), rel=1e-9)
    else:
        assert m.status == "completed"
        assert duration(m) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_two_streams_share_a_nic() -> None:
    """Two migrations into one host each get half of its NIC while both copy."""
    sim, clock = cloud({"setup_s": 1, "stream_gbps": 8, "nic_gbps": 10})
    first, second = start(sim, "a", "h2"), start(sim, "b", "h2")
    clock.advance(1.5)
    sim.advance()
    assert first.rate_bps == pytest.approx(5e9 / 8)
    assert second.rate_bps == pytest.approx(5e9 / 8)
    clock.advance(1000)
    sim.advance()
    shared = solo_duration_s(4096, sim.params, rate_gbps=5)
    assert duration(first) == pytest.approx(shared, rel=1e-9)
    assert duration(second) == pytest.approx(shared, rel=1e-9)
    assert shared > solo_duration_s(4096, sim.params)


def test_concurrency_limit_queues() -> None:
    """With one slot per source host, the second outgoing migration waits queued for the first."""
    sim, clock = cloud({"setup_s": 1})
    first, second = start(sim, "a", "h2"), start(sim, "c", "h3")
    assert (first.status, second.status) == ("preparing", "queued")
    clock.advance(1000)
    sim.advance()
    solo = solo_duration_s(4096, sim.params)
    assert duration(first) == pytest.approx(solo, rel=1e-9)
    assert duration(second) == pytest.approx(2 * solo, rel=1e-9)


def test_two_slots_per_host() -> None:
    """A host allowing two concurrent migrations runs both, sharing its outgoing NIC."""
    sim, clock = cloud({"setup_s": 1}, max_concurrent_live_migrations=2)
    first, second = start(sim, "a", "h2"), start(sim, "c", "h3")
    assert (first.status, second.status) == ("preparing", "preparing")
    clock.advance(1000)
    sim.advance()
    assert duration(second) == pytest.approx(solo_duration_s(4096, sim.params, rate_gbps=5), rel=1e-9)


def test_never_converge_fails_at_timeout() -> None:
    """A never-converging migration is cancelled at setup + the completion timeout (nova's default timeout action
    is abort); the server stays on its source."""
    sim, clock = cloud({"setup_s": 2}, faults=[{"kind": "never_converge", "server": "a"}], ram=1024)
    m = start(sim, "a", "h2")
    clock.advance(2 + 1599)
    sim.advance()
    assert m.status == "running"
    clock.advance(2)
    sim.advance()
    assert m.status == "cancelled"
    assert duration(m) == pytest.approx(2 + 1600)
    server = sim.servers[m.server_id]
    assert (server.host, server.status) == ("h0", "ACTIVE")
    assert sim.usage("h2") == (0, 0, 0)


def test_fail_midway() -> None:
    """fail_midway fails the migration when that fraction of memory was sent; as in nova, the API shows no reason
    (the compute's event succeeded when it queued the work) and a rollback event on the destination."""
    faults = [{"kind": "fail_midway", "server": "a", "at_fraction": 0.25, "reason": "libvirt said no"}]
    sim, clock = cloud({"setup_s": 1}, faults=faults)
    m = start(sim, "a", "h2")
    clock.advance(100)
    sim.advance()
    assert m.status == "failed"
    assert m.sent_bytes == pytest.approx(0.25 * m.total_bytes)
    action = sim.actions[m.server_id][0]
    event = action.event("compute_live_migration")
    assert event is not None
    assert (event.result, event.details) == ("Success", None)
    rollback = action.event("compute_rollback_live_migration_at_destination")
    assert rollback is not None
    assert (rollback.host, rollback.result) == ("h2", "Success")
    assert action.message is None
    assert sim.servers[m.server_id].host == "h0"


def test_scheduler_picks_a_host_when_none_given() -> None:
    """Without a host the scheduler picks the fitting host with the most free RAM, never the source."""
    sim, clock = cloud({"setup_s": 1})
    m = sim.live_migrate(sim.scenario.server("a").id, None, force=False, request_id="req-x", async_checks=True)
    assert m is not None
    assert m.dest in ("h2", "h3")
    clock.advance(100)
    sim.advance()
    assert sim.servers[m.server_id].host == m.dest


def force(sim: SimCloud, m: SimMigration) -> None:
    """force_complete as the API route calls it."""
    sim.force_complete(m.server_id, str(m.id), request_id="req-force")


def test_force_complete_pauses_for_remaining_over_rate() -> None:
    """A forced never-converging migration pauses its guest (dirty rate 0) and finishes once what was left is
    copied at the stream's rate; the paused seconds are recorded on the migration."""
    sim, clock = cloud({"setup_s": 2}, faults=[{"kind": "never_converge", "server": "a"}], ram=4096)
    m = start(sim, "a", "h2")
    clock.advance(60)
    sim.advance()
    left, rate = m.left_bytes, m.rate_bps
    force(sim, m)
    assert m.status == "running"
    assert m.paused_s == 0.0
    clock.advance(left / rate - 0.01)
    sim.advance()
    assert m.status == "running"
    clock.advance(0.02)
    sim.advance()
    assert m.status == "completed"
    assert m.paused_s == pytest.approx(left / rate)
    server = sim.servers[m.server_id]
    assert (server.host, server.status, server.task_state) == ("h2", "ACTIVE", None)


def test_force_complete_post_copy_switches_at_once() -> None:
    """With permit_post_copy a forced migration shows `running (post-copy)` until its pages are pulled, and the
    guest is never paused."""
    sim, clock = cloud({"setup_s": 2, "permit_post_copy": True}, faults=[{"kind": "never_converge", "server": "a"}])
    m = start(sim, "a", "h2")
    clock.advance(30)
    sim.advance()
    left, rate = m.left_bytes, m.rate_bps
    force(sim, m)
    assert m.status == "running (post-copy)"
    with pytest.raises(SimError) as refused:  # nova accepts force_complete only in `running`
        force(sim, m)
    assert refused.value.status == 400
    clock.advance(left / rate + 0.01)
    sim.advance()
    assert (m.status, m.paused_s) == ("completed", 0.0)


def test_force_complete_refused_outside_running() -> None:
    """force_complete of a preparing migration is a 400 as nova words it; of a server not migrating, a 409."""
    sim, clock = cloud({"setup_s": 5})
    m = start(sim, "a", "h2")
    with pytest.raises(SimError) as early:
        force(sim, m)
    assert early.value.status == 400
    assert "is preparing" in str(early.value)
    clock.advance(100)
    sim.advance()
    assert m.status == "completed"
    with pytest.raises(SimError) as late:
        force(sim, m)
    assert late.value.status == 409


def test_busy_then_quiet_converges_after_its_busy_spell() -> None:
    """busy_then_quiet: remaining memory does not shrink for the busy spell, then the migration converges."""
    sim, clock = cloud({"setup_s": 2}, faults=[{"kind": "busy_then_quiet", "server": "a", "busy_s": 90}])
    m = start(sim, "a", "h2")
    clock.advance(2 + 89)
    sim.advance()
    assert m.status == "running"
    assert m.left_bytes >= m.total_bytes
    clock.advance(30)
    sim.advance()
    assert m.status == "completed"
    assert m.finished_s is not None
    assert m.finished_s > 92
