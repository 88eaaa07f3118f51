"""A corpus of bad host maps and scenario files: each exits 2 with one line that says where and what, moving nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Running, run_cli

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
MAPS = sorted((CORPUS / "maps").iterdir())
SCENARIOS = sorted((CORPUS / "scenarios").iterdir())


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if not line.startswith("hostmap: log file")]


@pytest.fixture
def cloud_env(env_cloud: Callable[..., Running]) -> Running:
    """A simulated cloud reached through the OS_* variables, as a real one would be."""
    return env_cloud()


def test_corpus_is_large_enough() -> None:
    """The corpus holds at least 30 bad host maps and scenario files together."""
    assert len(MAPS) + len(SCENARIOS) >= 30


@pytest.mark.parametrize("path", MAPS, ids=[p.name for p in MAPS])
def test_bad_map_exits_2_and_moves_nothing(path: Path, cloud_env: Running, tmp_path: Path) -> None:
    """A bad host map exits 2, names the file, and sends no mutating request."""
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    lines = _error_lines(result.err)
    assert result.code == 2, result.err
    assert lines, "an error message is printed"
    assert lines[0].startswith("hostmap: error: ")
    assert path.name in result.err
    assert "Traceback" not in result.err
    if path.name != "several_problems.json":
        assert len(lines) == 1, lines
    assert cloud_env.sim.state.mutating_request_count() == 0


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_bad_scenario_exits_2(path: Path, tmp_path: Path) -> None:
    """A bad scenario file exits 2 with one line naming the file and the entry."""
    result = run_cli(["plan", str(CORPUS / "maps" / "unknown_host.json"), "--sim-scenario", str(path),
                      "--log-file", str(tmp_path / "log")])
    lines = _error_lines(result.err)
    assert result.code == 2, result.err
    assert len(lines) == 1, lines
    assert path.name in lines[0]
    assert "Traceback" not in result.err


def test_huge_map_is_refused_before_parsing(tmp_path: Path, cloud_env: Running) -> None:
    """A map larger than any real host map is refused without reading it all."""
    path = tmp_path / "huge.json"
    with path.open("w") as handle:
        handle.write('{"compute001": [')
        handle.write(", ".join(f'"vm-{i:08d}"' for i in range(1_200_000)))
        handle.write("]}")
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert "larger than" in result.err
    assert cloud_env.sim.state.mutating_request_count() == 0


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deeply_nested_map_is_refused(tmp_path: Path, cloud_env: Running, suffix: str) -> None:
    """A pathologically nested document is refused with exit 2, not a crash."""
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 50000 + "]" * 50000)
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert cloud_env.sim.state.mutating_request_count() == 0


def test_conflicting_flags_are_usage_errors(tmp_path: Path) -> None:
    """--virtual-time without a simulated cloud is refused as usage, exit 2."""
    result = run_cli(["plan", str(CORPUS / "maps" / "unknown_host.json"), "--virtual-time",
                      "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert "--virtual-time" in result.err


def test_missing_map_file_exits_2(tmp_path: Path, cloud_env: Running) -> None:
    """A map path that does not exist exits 2 with a one-line message."""
    result = run_cli(["apply", str(tmp_path / "nope.json"), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert "no such file" in result.err
