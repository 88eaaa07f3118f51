"""Log files only for commands that talk to a cloud: one refused on its own arguments or files leaves none."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, write_json


def _logs(state: Path) -> list[Path]:
    return sorted((state / "hostmap").glob("hostmap-*.log"))


def test_a_command_refused_before_the_cloud_leaves_no_log_file(tmp_path: Path, private_state: Path) -> None:
    """A malformed map (plan, apply), a missing map and history create no log file; a plan that reads the cloud
    creates one."""
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    for argv in (["plan", str(bad), "--sim"], ["apply", str(bad), "--sim", "--yes"],
                 ["plan", str(tmp_path / "missing.json"), "--sim"], ["history"]):
        result = run_cli(argv)
        assert result.code in (0, 2), result.err
        assert "log file" not in result.err
    assert _logs(private_state) == []
    result = run_cli(["plan", str(write_json(tmp_path / "map.json", {"compute001": ["kswenm01-vnflaf-services-0"]})),
                      "--sim"])
    assert result.code == 0, result.err
    assert "log file" in result.err
    assert len(_logs(private_state)) == 1


def test_a_map_of_many_problems_still_has_them_all_in_a_log_file(tmp_path: Path, private_state: Path) -> None:
    """A map whose own shape has more problems than the terminal lists opens the log file that holds each one."""
    bad = write_json(tmp_path / "bad.json", {f"compute{i:03d}": f"not-a-list-{i}" for i in range(30)})
    result = run_cli(["plan", str(bad), "--sim"])
    assert result.code == 2, result.err
    assert "... and 10 more (each one is in the log file)" in result.err
    (log,) = _logs(private_state)
    assert log.read_text().count("InputError") == 30
