"""The run lock and the journal name a cloud as keystone identifies it, and know the key an older hostmap gave it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import Running
from hostmap.apply import ApplySettings, apply_map
from hostmap.cloud.openstack import OpenStackCloud, connect_with
from hostmap.executor import ExecutorOptions
from hostmap.hostmap_file import parse_host_map
from hostmap.journal import Journal
from hostmap.results import RunResult
from hostmap.runlock import LockHeld, RunLock


@pytest.fixture
def respelled() -> Iterator[Callable[[Running, str], OpenStackCloud]]:
    """Connect to a running simulated cloud again with its auth URL written another way; closed at the end."""
    opened: list[OpenStackCloud] = []

    def connect(running: Running, auth_url: str) -> OpenStackCloud:
        kwargs = running.sim.connect_kwargs()
        cloud = connect_with({**kwargs, "auth": {**kwargs["auth"], "auth_url": auth_url}})
        opened.append(cloud)
        return cloud

    yield connect
    for cloud in opened:
        cloud.close()


def _apply(cloud: OpenStackCloud, running: Running, journal: Path, host_map: dict[str, list[str]]) -> RunResult:
    assert running.clock is not None
    return apply_map(
        cloud, cloud_key=cloud.identity, clock=running.clock, host_map=parse_host_map(host_map, "map.json"),
        map_text=json.dumps(host_map), settings=ApplySettings(ExecutorOptions(), journal),
        reporters=[], confirm_for=lambda inventory: None, interrupts=lambda: 0,
    )


def test_two_spellings_of_one_cloud_contend_for_one_lock(
        tmp_path: Path, start_sim: Callable[..., Running],
        respelled: Callable[[Running, str], OpenStackCloud]) -> None:
    """`localhost` with a trailing slash and `127.0.0.1` are one cloud: while one holds its lock, apply on the other is
    refused before it reads or moves anything."""
    running = start_sim()
    other = respelled(running, f"http://localhost:{running.sim.port}/identity/v3/")
    assert other.identity == running.cloud.identity
    assert running.cloud.identity.startswith(f"http://127.0.0.1:{running.sim.port}/identity|")
    with RunLock(running.cloud.identity), pytest.raises(LockHeld):
        _apply(other, running, tmp_path / "journal.sqlite", {"compute004": ["web-0"]})
    posts = [r for r in running.sim.state.requests if r[0] == "POST" and "/servers/" in r[1]]
    assert posts == []


def test_a_run_holding_the_old_key_lock_keeps_a_new_run_out(
        tmp_path: Path, start_sim: Callable[..., Running]) -> None:
    """An older hostmap holding the lock of the cloud as it spelled it keeps a run of this version out."""
    running = start_sim()
    (old_key,) = running.cloud.former_identities
    assert old_key == f"{running.sim.auth_url}|{running.sim.state.project_name}|RegionOne"
    with RunLock(old_key), pytest.raises(LockHeld):
        _apply(running.cloud, running, tmp_path / "journal.sqlite", {"compute004": ["web-0"]})


def test_a_run_journaled_under_the_old_key_is_resumed(tmp_path: Path, start_sim: Callable[..., Running]) -> None:
    """A run an older hostmap journaled under the auth URL as spelled, killed with its migration in flight, is found
    and watched to its end by this version, and its migration is not sent again."""
    running = start_sim()
    (old_key,) = running.cloud.former_identities
    server_id = next(s.id for s in running.cloud.inventory().servers if s.name == "web-0")
    journal_path = tmp_path / "journal.sqlite"
    with Journal.open(journal_path) as journal:
        run_id = journal.start_run(cloud=old_key, map_source="map.json", map_text="{}", plan={}, pid=999_999)
        move_id = journal.intend(run_id, step=0, server_id=server_id, server_name="web-0", source="compute001",
                                 target="compute004", known_migration_ids=[])
        submission = running.cloud.start_live_migration(server_id, "compute004")
        journal.accepted(move_id, submission.request_id)
    result = _apply(running.cloud, running, journal_path, {"compute004": ["web-0"]})
    assert [(m.server_name, m.outcome) for m in result.moves] == [("web-0", "migrated")]
    assert "resumed" in result.moves[0].reason
    posts = [r for r in running.sim.state.requests if r[0] == "POST" and f"/servers/{server_id}/action" in r[1]]
    assert len(posts) == 1
    with Journal.open(journal_path) as journal:
        assert journal.run(run_id).summary.status == "crashed"
        assert journal.run(run_id).moves[0].outcome == "migrated"
        assert journal.unfinished(running.cloud.identity, former=(old_key,)) == []
