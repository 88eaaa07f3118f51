"""`hostmap drain --apply` and `hostmap restore --apply`: services switched, journaled, and put back, on the sim."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import Running, run_cli, scenario
from hostmap.journal import Journal

GIB_MB = 1024


def _cloud() -> dict[str, Any]:
    """Four hosts of 16 GiB; compute001 holds three servers of 4 GiB, compute002 one."""
    data = scenario()
    data["flavors"].append({"name": "m1.medium", "vcpus": 2, "ram": 4 * GIB_MB, "disk": 20})
    data["servers"] = [
        {"name": f"app-{i}", "flavor": "m1.medium", "host": "compute001"} for i in range(3)
    ] + [{"name": "db-0", "flavor": "m1.medium", "host": "compute002"}]
    return data


def _services(running: Running) -> dict[str, tuple[bool, str | None]]:
    return {h.name: (h.enabled, h.disabled_reason) for h in running.cloud.inventory().hosts}


def _opts(tmp_path: Path) -> list[str]:
    return ["--journal", str(tmp_path / "journal.sqlite"), "--log-file", str(tmp_path / "hostmap.log")]


def test_drain_apply_disables_then_empties_and_restore_apply_undoes_it(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """The drained host is disabled naming the run, ends empty, and restore re-enables it and brings them back."""
    running = env_cloud(_cloud(), virtual=False)
    result = run_cli(["drain", "compute001", "--apply", "--yes", "-f", "json", *_opts(tmp_path)])
    assert result.code == 0, result.err
    report = result.json()
    assert report["reached"] is True
    assert report["drained"] == [{"host": "compute001", "empty": True, "service": "disabled", "up": True,
                                  "disabled_reason": "hostmap run 1 (drain)", "left": []}]
    assert "compute service of compute001 disabled (hostmap run 1 (drain))" in result.err
    assert _services(running)["compute001"] == (False, "hostmap run 1 (drain)")
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        changes = journal.service_changes(1)
    assert [(c.host, c.action, c.reason) for c in changes] == [("compute001", "disabled", "hostmap run 1 (drain)")]
    placement = run_cli(["export", "--log-file", str(tmp_path / "l")]).json()
    assert placement["compute001"] == []

    back = run_cli(["restore", "1", "--apply", "--yes", "-f", "json", *_opts(tmp_path)])
    assert back.code == 0, back.err
    assert back.json()["enabled"] == ["compute001"]
    assert _services(running)["compute001"] == (True, None)
    placement = run_cli(["export", "--log-file", str(tmp_path / "l")]).json()
    assert placement["compute001"] == ["app-0", "app-1", "app-2"]
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        assert [(c.host, c.action) for c in journal.service_changes(2)] == [("compute001", "enabled")]


def test_restore_apply_leaves_a_service_someone_else_disabled_since(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """A service re-disabled with another reason after the drain stays disabled; restore says so and plans around it."""
    running = env_cloud(_cloud(), virtual=False)
    assert run_cli(["drain", "compute001", "--apply", "--yes", *_opts(tmp_path)]).code == 0
    running.cloud.set_service("compute001", enabled=True)
    running.cloud.set_service("compute001", enabled=False, reason="disk replacement")
    back = run_cli(["restore", "1", "--apply", "--yes", *_opts(tmp_path)])
    assert "leaving the compute service of compute001 as it is" in back.err
    assert _services(running)["compute001"] == (False, "disk replacement")
    assert back.code == 2, back.err  # the map's target is disabled: refused before anything moves, as in apply
    placement = run_cli(["export", "--log-file", str(tmp_path / "l")]).json()
    assert placement["compute001"] == []


def test_a_drain_that_is_refused_disables_nothing(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A drain that does not fit exits 3 and leaves every compute service as it was."""
    data = _cloud()
    data["servers"] += [{"name": f"big-{i}", "flavor": "m1.medium", "host": f"compute00{2 + i % 3}"}
                        for i in range(9)]
    running = env_cloud(data, virtual=False)
    result = run_cli(["drain", "compute001", "--apply", "--yes", "--headroom", "20", *_opts(tmp_path)])
    assert result.code == 3, result.err
    assert all(enabled for enabled, _ in _services(running).values())
    assert running.sim.state.mutating_request_count() == 0


def test_drain_apply_reports_what_is_left_when_the_operator_declines(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """Declining the moves leaves the servers on the disabled host, and the report names them and why."""
    env_cloud(_cloud(), virtual=False)
    result = run_cli(["drain", "compute001", "--apply", *_opts(tmp_path)], stdin="n\nn\nn\n")
    assert result.code == 1, result.err
    assert "compute001: 3 servers left; compute service disabled (hostmap run 1 (drain))" in result.out
    assert "app-0 (ACTIVE): declined" in result.out
