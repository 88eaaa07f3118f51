"""`hostmap maintain`: a rollout planned as a whole, carried out batch by batch, journaled and continued."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Running, run_cli, scenario, write_json
from hostmap.journal import Journal
from hostmap.model import Inventory, ServerGroup
from hostmap.rollout import plan_rollout, settle_wait
from planner_cases import make_inventory, make_server

GIB_MB = 1024


def _cloud(hosts: int = 5, per_host: int = 2) -> dict[str, Any]:
    """`hosts` hosts of 16 GiB, the first three with `per_host` servers of 4 GiB each, the rest empty.

    nova-compute heartbeats every second and is counted down after 6 (nova's 10 and 60 s, scaled down in the same
    ratio), so that the wall-clock tests wait for a fresh heartbeat as maintain must, but not for 10 s each; the
    migration network is 40 Gbit/s, so that a 4 GiB server moves in about a second of wall time."""
    data = scenario(report_interval_s=1.0, service_down_time_s=6.0,
                    migration={"setup_s": 0.2, "nic_gbps": 40, "stream_gbps": 40})
    data["hosts"] = [dict(data["hosts"][0], name=f"compute{i:03d}", hypervisor_hostname=f"compute{i:03d}.example")
                     for i in range(1, hosts + 1)]
    data["flavors"].append({"name": "m1.medium", "vcpus": 2, "ram": 4 * GIB_MB, "disk": 20})
    data["servers"] = [{"name": f"vm-{h}-{k}", "flavor": "m1.medium", "host": f"compute{h:03d}"}
                       for h in range(1, 4) for k in range(per_host)]
    return data


def _opts(tmp_path: Path) -> list[str]:
    return ["--journal", str(tmp_path / "journal.sqlite"), "--log-file", str(tmp_path / "hostmap.log"),
            "--group-settle", "0"]


def _ran(tmp_path: Path) -> list[str]:
    path = tmp_path / "ran.txt"
    return path.read_text().split() if path.exists() else []


def _command(tmp_path: Path, code: int = 0) -> str:
    return f"echo {{host}} >> {tmp_path / 'ran.txt'}; exit {code}"


def _inventory(hosts: int, servers: dict[str, int], groups: tuple[ServerGroup, ...] = ()) -> Inventory:
    specs = [{"name": f"h{i}", "capacity": {"vcpu": 64, "memory_mb": 16 * GIB_MB, "disk_gb": 1000}}
             for i in range(1, hosts + 1)]
    vms = [make_server(f"{host}-{k}", host, 2, 4 * GIB_MB, 10) for host, n in servers.items() for k in range(n)]
    return make_inventory(specs, vms, groups)


def test_a_rollout_drains_onto_hosts_done_or_never_maintained() -> None:
    """Each server on a maintained host moves once (twice with restore): none lands on a host maintained later,
    even when that host is the emptiest."""
    inventory = _inventory(4, {"h1": 2, "h3": 1, "h4": 1})
    once = plan_rollout(inventory, ["h1", "h2"], batch=1, headroom_pct=0, restore=False)
    assert set(once.batches[0].drain.moves.values()) <= {"h3", "h4"}
    assert once.moves == once.minimum == 2
    twice = plan_rollout(inventory, ["h1", "h2", "h3"], batch=1, headroom_pct=0, restore=True)
    assert twice.moves == twice.minimum == 6
    assert twice.batches[0].back == {s.id: "h1" for s in inventory.servers if s.host == "h1"}


def test_a_rollout_falls_back_to_later_hosts_when_nothing_else_has_room() -> None:
    """With no never-maintained host, the first batch must use a later one, and those servers move again."""
    inventory = _inventory(2, {"h1": 2, "h2": 1})
    rollout = plan_rollout(inventory, ["h1", "h2"], batch=1, headroom_pct=0, restore=False)
    assert set(rollout.batches[0].drain.moves.values()) == {"h2"}
    assert rollout.moves == 5
    assert rollout.minimum == 3


def test_settle_wait_holds_only_anti_affine_members_landing_where_one_just_left() -> None:
    """A member going where another member left 30 s ago waits the rest of the settle time; others do not wait."""
    group = ServerGroup("g", "g", "anti-affinity", ("a", "b"))
    inventory = _inventory(2, {})
    inventory = Inventory(inventory.hosts, (), (group,))
    assert settle_wait(inventory, {"b": "h1"}, [("a", "h1", 100.0)], 130.0, 130.0) == pytest.approx(100.0)
    assert settle_wait(inventory, {"b": "h2"}, [("a", "h1", 100.0)], 130.0, 130.0) == 0.0
    assert settle_wait(inventory, {"c": "h1"}, [("a", "h1", 100.0)], 130.0, 130.0) == 0.0


def test_maintain_with_restore_runs_each_command_once_and_puts_servers_back(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """Two batches of one host: commands ran once each, services enabled, servers home, moves at the minimum."""
    running = env_cloud(_cloud(hosts=4), virtual=False)
    before = run_cli(["export", "--log-file", str(tmp_path / "l")]).json()
    result = run_cli(["maintain", "compute001", "compute002", "--exec", _command(tmp_path), "--restore", "--yes",
                      "-f", "json", *_opts(tmp_path)])
    assert result.code == 0, result.err
    report = result.json()
    assert report["done"] is True
    assert [h["command_exit"] for h in report["hosts"]] == [0, 0]
    assert _ran(tmp_path) == ["compute001", "compute002"]
    assert all(h.enabled for h in running.cloud.inventory().hosts)
    assert run_cli(["export", "--log-file", str(tmp_path / "l")]).json() == before
    moved = [m for run in report["runs"] for m in run["moves"] if m["outcome"] == "migrated"]
    assert len(moved) == 8  # four servers out and back


def test_a_failing_command_stops_the_rollout_and_a_rerun_continues_it(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """A non-zero exit leaves the host disabled and stops; the rerun neither drains it again nor skips the command."""
    running = env_cloud(_cloud(hosts=4), virtual=False)
    failed = run_cli(["maintain", "compute001", "compute002", "--exec", _command(tmp_path, 3), "--yes",
                      *_opts(tmp_path)])
    assert failed.code == 1, failed.err
    assert "the rollout STOPPED at compute001 (exit 3): the command failed" in failed.out
    hosts = {h.name: h for h in running.cloud.inventory().hosts}
    assert not hosts["compute001"].enabled
    assert hosts["compute002"].enabled
    again = run_cli(["maintain", "compute001", "compute002", "--exec", _command(tmp_path), "--yes", "-f", "json",
                     *_opts(tmp_path)])
    assert again.code == 0, again.err
    report = again.json()
    assert report["continued"] is True
    assert _ran(tmp_path) == ["compute001", "compute001", "compute002"]
    drains = [r for r in report["runs"] if any(m["outcome"] == "migrated" and m["source"] == "compute001"
                                               for m in r["moves"])]
    assert drains == []  # compute001 was drained once, by the first invocation
    assert all(h.enabled for h in running.cloud.inventory().hosts)


def test_a_command_whose_end_was_never_seen_is_not_run_again_unless_asked(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """After a crash between start and end of the command, the rerun stops and names it; --rerun-exec runs it."""
    env_cloud(_cloud(hosts=4), virtual=False)
    hosts = ["compute001"]
    assert run_cli(["maintain", *hosts, "--exec", "exit 1", "--yes", *_opts(tmp_path)]).code == 1
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        rollout = journal.open_rollout(journal.rollout(1).cloud, hosts)
        assert rollout is not None
        journal.rollout_step(rollout.id, "compute001", "exec_started")  # as if killed while the command ran
    stopped = run_cli(["maintain", *hosts, "--exec", _command(tmp_path), "--yes", "-f", "json", *_opts(tmp_path)])
    assert stopped.code == 1
    assert stopped.json()["stopped"]["reason"] == "exec_unknown"
    assert _ran(tmp_path) == []
    rerun = run_cli(["maintain", *hosts, "--exec", _command(tmp_path), "--yes", "--rerun-exec", *_opts(tmp_path)])
    assert rerun.code == 0, rerun.err
    assert _ran(tmp_path) == ["compute001"]


def test_maintain_dry_run_changes_nothing_and_shows_each_batch(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """The dry run lists batches with their moves and the total against the minimum, sending no change."""
    running = env_cloud(_cloud(hosts=5))
    result = run_cli(["maintain", "compute001", "compute002", "compute003", "--batch", "2", "--restore",
                      "--exec", "false", "--dry-run", "-f", "json", *_opts(tmp_path)])
    assert result.code == 0, result.err
    plan = result.json()
    assert [b["hosts"] for b in plan["batches"]] == [["compute001", "compute002"], ["compute003"]]
    assert plan["moves"] == plan["minimum_moves"] == 12
    assert running.sim.state.mutating_request_count() == 0


def test_maintain_refuses_a_rollout_that_cannot_drain_before_anything(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """When a batch cannot be emptied, exit 3 before any service is disabled or command run."""
    data = _cloud(hosts=3, per_host=4)
    running = env_cloud(data, virtual=False)
    result = run_cli(["maintain", "compute001", "compute002", "--batch", "2", "--exec", _command(tmp_path),
                      "--yes", *_opts(tmp_path)])
    assert result.code == 3, result.err
    assert running.sim.state.mutating_request_count() == 0
    assert _ran(tmp_path) == []


def test_the_command_gets_the_host_and_reaches_the_embedded_cloud(tmp_path: Path) -> None:
    """{host} and HOSTMAP_HOST name the host, and OS_AUTH_URL points the command at the simulated cloud."""
    cloud = write_json(tmp_path / "cloud.json", _cloud(hosts=4))
    out = tmp_path / "env.txt"
    result = run_cli(["maintain", "compute001", "--exec", f'echo "{{host}} $HOSTMAP_HOST $OS_AUTH_URL" >> {out}',
                      "--yes", "--sim-scenario", str(cloud), "--virtual-time", *_opts(tmp_path)])
    assert result.code == 0, result.err
    host, env_host, auth_url = out.read_text().split()
    assert host == env_host == "compute001"
    assert auth_url.startswith("http://127.0.0.1:")


def test_a_stopped_server_on_a_later_batch_is_refused_before_anything_without_cold(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """A SHUTOFF server on the second batch's host stops the rollout before the first batch is touched."""
    data = _cloud(hosts=4)
    data["servers"][2]["status"] = "SHUTOFF"  # on compute002
    running = env_cloud(data, virtual=False)
    result = run_cli(["maintain", "compute001", "compute002", "--exec", _command(tmp_path), "--yes",
                      *_opts(tmp_path)])
    assert result.code == 3, result.err
    assert "--cold" in result.err
    assert running.sim.state.mutating_request_count() == 0
    assert _ran(tmp_path) == []


def _embedded(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    """The options that run hostmap against an embedded simulated cloud on virtual time."""
    return ["--sim-scenario", str(write_json(tmp_path / "cloud.json", data)), "--virtual-time"]


def _marks(tmp_path: Path) -> list[str]:
    path = tmp_path / "marks.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_a_batchs_commands_run_at_once_and_the_next_batch_waits_for_all(
    tmp_path: Path,
) -> None:
    """Both commands of a batch start before either ends, and the next batch starts only after both ended."""
    sim = _embedded(tmp_path, _cloud(hosts=5))
    marks = tmp_path / "marks.txt"
    command = f"echo start {{host}} >> {marks}; sleep 0.4; echo end {{host}} >> {marks}"
    result = run_cli(["maintain", "compute001", "compute002", "compute003", "--batch", "2", "--exec", command,
                      "--yes", "-f", "json", *sim, *_opts(tmp_path)])
    assert result.code == 0, result.err
    lines = _marks(tmp_path)
    assert sorted(lines[:2]) == ["start compute001", "start compute002"]
    assert sorted(lines[2:4]) == ["end compute001", "end compute002"]
    assert lines[4:] == ["start compute003", "end compute003"]
    log = (tmp_path / "hostmap.log").read_text()
    assert "compute001: the command exited with 0" in log
    assert "compute002: the command exited with 0" in log


def test_a_failing_command_in_a_batch_stops_after_the_others_ended_each_journaled(
    tmp_path: Path,
) -> None:
    """One command of the batch fails: its sibling still runs to its end, both ends are journaled with their codes,
    and the next batch is not started."""
    sim = _embedded(tmp_path, _cloud(hosts=5))
    marks = tmp_path / "marks.txt"
    command = (f'if [ {{host}} = compute001 ]; then exit 5; fi; sleep 0.3; echo end {{host}} >> {marks}; '
               f'echo "hello from {{host}}"')
    hosts = ["compute001", "compute002", "compute003"]
    failed = run_cli(["maintain", *hosts, "--batch", "2", "--exec", command, "--yes", "-f", "json",
                      *sim, *_opts(tmp_path)])
    assert failed.code == 1, failed.err
    assert failed.json()["stopped"]["host"] == "compute001"
    assert _marks(tmp_path) == ["end compute002"]
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        steps = journal.rollout(1).steps
    ended = {s.host: s.code for s in steps if s.step == "exec_ended"}
    assert ended == {"compute001": 5, "compute002": 0}
    assert not any(s.host == "compute003" for s in steps)  # the next batch was not touched
    assert "compute002: stdout: hello from compute002" in (tmp_path / "hostmap.log").read_text()


def test_each_command_of_a_batch_is_bounded_by_the_exec_timeout(
    tmp_path: Path,
) -> None:
    """A command that outlives --exec-timeout is killed (exit 124) while its quick sibling ends normally."""
    sim = _embedded(tmp_path, _cloud(hosts=4))
    command = "if [ {host} = compute001 ]; then sleep 30; fi; true"
    result = run_cli(["maintain", "compute001", "compute002", "--batch", "2", "--exec", command,
                      "--exec-timeout", "0.5", "--yes", "-f", "json", *sim, *_opts(tmp_path)])
    assert result.code == 1, result.err
    report = result.json()
    assert (report["stopped"]["host"], report["stopped"]["exit_code"]) == ("compute001", 124)
    assert [h["command_exit"] for h in report["hosts"]] == [124, 0]
