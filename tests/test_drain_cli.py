"""`hostmap drain`: the map it writes, its summary, and its refusals, on the simulated cloud."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import Running, run_cli, scenario, write_json

GIB_MB = 1024


def _cloud(**changes: Any) -> dict[str, Any]:
    """Four hosts of 16 GiB; compute001 holds three servers of 4 GiB, compute002 one, the others none."""
    data = scenario(**changes)
    if "servers" not in changes:
        data["flavors"].append({"name": "m1.medium", "vcpus": 2, "ram": 4 * GIB_MB, "disk": 20})
        data["servers"] = [
            {"name": f"app-{i}", "flavor": "m1.medium", "host": "compute001"} for i in range(3)
        ] + [{"name": "db-0", "flavor": "m1.medium", "host": "compute002"}]
    return data


def _log(tmp_path: Path) -> list[str]:
    return ["--log-file", str(tmp_path / "hostmap.log")]


def test_drain_writes_a_map_that_apply_carries_out(tmp_path: Path) -> None:
    """The map empties the host, keeps every other server where it is, and apply reaches it on the same cloud."""
    cloud = ["--sim-scenario", str(write_json(tmp_path / "cloud.json", _cloud())), "--virtual-time", *_log(tmp_path)]
    out = tmp_path / "drain.json"
    result = run_cli(["drain", "compute001", "-o", str(out), *cloud])
    assert result.code == 0, result.err
    document = json.loads(out.read_text())
    assert document["compute001"] == []
    assert "db-0" in document["compute002"]
    assert sorted(n for names in document.values() for n in names) == ["app-0", "app-1", "app-2", "db-0"]
    assert "3 servers leave compute001" in result.out
    applied = run_cli(["apply", str(out), "--yes", "-f", "json", *cloud])
    assert applied.code == 0, applied.err
    report = applied.json()
    assert report["reached"] is True
    moved = {m["server"]: m["outcome"] for m in report["moves"] if m["outcome"] != "skipped"}
    assert moved == {"app-0": "migrated", "app-1": "migrated", "app-2": "migrated"}


def test_drain_changes_nothing_in_the_cloud(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """Computing a drain sends no mutating request."""
    running = env_cloud(_cloud())
    assert run_cli(["drain", "compute001", *_log(tmp_path)]).code == 0
    assert running.sim.state.mutating_request_count() == 0


def test_drain_spreads_the_servers_instead_of_piling_them_on_one_host(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """Three servers leaving a host go to three hosts, the emptiest first, so no host ends above a quarter full."""
    env_cloud(_cloud())
    result = run_cli(["drain", "compute001", "-f", "json", "-o", str(tmp_path / "m.json"), *_log(tmp_path)])
    assert result.code == 0, result.err
    summary = result.json()
    arriving = {t["host"]: t["arriving"] for t in summary["targets"]}
    assert sorted(len(names) for names in arriving.values()) == [1, 1, 1]
    assert summary["peak_after"] <= 0.5
    assert summary["migrations"] == 3


def test_the_map_goes_to_stdout_and_the_summary_to_stderr(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """Without -o the map is stdout's only content, ready for a pipe, and the summary goes to stderr."""
    env_cloud(_cloud())
    result = run_cli(["drain", "compute001.cloud.example.com", *_log(tmp_path)])
    assert result.code == 0, result.err
    assert json.loads(result.out)["compute001"] == []
    assert "hostmap: drain compute001" in result.err


def test_headroom_is_kept_free_on_every_target(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """With --headroom 60 no target may pass 40 % of any resource, so the drain does not fit (exit 3); 20 fits."""
    running = env_cloud(_cloud(servers=[
        {"name": f"big-{i}", "flavor": "m1.large", "host": "compute001"} for i in range(2)
    ] + [{"name": f"small-{i}", "flavor": "m1.small", "host": h} for i, h in enumerate(
        ("compute002", "compute003", "compute004"))]))
    result = run_cli(["drain", "compute001", "--headroom", "60", *_log(tmp_path)])
    assert result.code == 3
    assert "cannot be emptied keeping 60 % free" in result.err
    assert "big-" in result.err
    assert running.sim.state.mutating_request_count() == 0
    assert run_cli(["drain", "compute001", "--headroom", "20", *_log(tmp_path)]).code == 0


def test_an_unknown_host_is_one_line_and_exit_2(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A host that is not in the cloud is named, with the cloud's hosts, and nothing is written."""
    env_cloud(_cloud())
    out = tmp_path / "m.json"
    result = run_cli(["drain", "compute009", "-o", str(out), *_log(tmp_path)])
    assert result.code == 2
    errors = [line for line in result.err.splitlines() if line.startswith("hostmap: error")]
    assert errors == ["hostmap: error: no compute host 'compute009' in this cloud; nothing was migrated"]
    assert not out.exists()


def test_a_shut_off_server_is_refused_by_name(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A server live migration cannot move makes the drain refuse (exit 3), naming it and its status."""
    data = _cloud()
    data["servers"][1]["status"] = "SHUTOFF"
    env_cloud(data)
    result = run_cli(["drain", "compute001", *_log(tmp_path)])
    assert result.code == 3
    assert "live migration cannot move app-1 (SHUTOFF)" in result.err
    assert result.out == ""


def test_anti_affinity_members_never_share_a_target(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """Members of an anti-affinity group leaving one host land on different hosts than each other and the rest."""
    data = _cloud()
    data["server_groups"] = [{"name": "ha", "policy": "anti-affinity", "members": ["app-0", "db-0"]}]
    env_cloud(data)
    result = run_cli(["drain", "compute001", *_log(tmp_path)])
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert "app-0" not in document["compute002"]
