"""`hostmap restore`: the map that puts back what a run moved, from the journal, and its refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from conftest import Running, run_cli, write_json
from hostmap.journal import MoveRecord, RunDetail, RunSummary
from hostmap.model import Host, Inventory, Resources, Server
from hostmap.restore import restore_placement


def _apply(tmp_path: Path, host_map: dict[str, list[str]], journal: Path) -> None:
    path = write_json(tmp_path / "map.json", host_map)
    result = run_cli(["apply", str(path), "--yes", "--journal", str(journal), "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err


def test_restore_puts_back_what_a_run_moved(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """After a run moved two servers, restore's map lists just them on their old host, and apply takes them back."""
    env_cloud(virtual=False)
    journal = tmp_path / "journal.sqlite"
    _apply(tmp_path, {"compute002": ["web-0"], "compute003": ["web-1"]}, journal)
    out = tmp_path / "back.json"
    result = run_cli(["restore", "1", "-o", str(out), "--journal", str(journal), "--log-file", str(tmp_path / "l")])
    assert result.code == 0, result.err
    assert json.loads(out.read_text()) == {"compute001": ["web-0", "web-1"]}
    assert "run 1 moved 2 server(s); the map puts 2 back" in result.err
    _apply(tmp_path, json.loads(out.read_text()), journal)
    placement = run_cli(["export", "--log-file", str(tmp_path / "l")]).json()
    assert placement["compute001"] == ["web-0", "web-1"]


def test_restore_of_a_run_on_another_cloud_is_refused(
    tmp_path: Path, env_cloud: Callable[..., Running],
) -> None:
    """A run recorded against one cloud is not restored onto another: exit 2, one line, nothing written."""
    env_cloud(virtual=False)
    journal = tmp_path / "journal.sqlite"
    _apply(tmp_path, {"compute002": ["web-0"]}, journal)
    env_cloud(virtual=False)  # a second cloud, with its own auth URL
    result = run_cli(["restore", "1", "--journal", str(journal), "--log-file", str(tmp_path / "l")])
    assert result.code == 2
    assert "run 1 was against another cloud" in result.err
    assert result.out == ""


def test_an_unknown_run_exits_2(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A run id the journal does not have is named, with where to look."""
    env_cloud(virtual=False)
    journal = tmp_path / "journal.sqlite"
    _apply(tmp_path, {"compute002": ["web-0"]}, journal)
    result = run_cli(["restore", "7", "--journal", str(journal), "--log-file", str(tmp_path / "l")])
    assert result.code == 2
    assert "no run 7 in the journal" in result.err


def _move(step: int, server: str, source: str, target: str, outcome: str) -> MoveRecord:
    return MoveRecord(step + 1, 1, step, server, server, source, target, None, None, None, outcome,
                      "", None)


def _server(name: str, host: str) -> Server:
    return Server(name, name, host, "ACTIVE", None, "m1", Resources(1, 1024, 10))


def test_a_detour_goes_back_to_its_first_source_and_deleted_servers_are_left_out() -> None:
    """A server that took a detour returns to where it started; one deleted since is named, not mapped."""
    detail = RunDetail(
        RunSummary(1, "cloud", "map.json", "", None, "reached", 4, 3), "", {},
        (
            _move(0, "a", "h1", "pivot", "migrated"),
            _move(1, "b", "h2", "h1", "migrated"),
            _move(2, "a", "pivot", "h2", "migrated"),
            _move(3, "gone", "h3", "h1", "migrated"),
            _move(4, "declined", "h3", "h2", "declined"),
        ),
    )
    host = Host("h1", "h1", True, True, Resources(8, 8192, 100), Resources())
    inventory = Inventory((host,), (_server("a", "h2"), _server("b", "h1"), _server("declined", "h3")))
    back = restore_placement(detail, inventory)
    assert dict(back.placement) == {"a": "h1", "b": "h2"}
    assert back.deleted == ("gone",)
    assert back.in_place == ()
