"""nova's version discovery (`GET /compute/v2.1`) is retried like the other reads, never misread as an old cloud."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import run_cli, scenario, write_json

#: The compute endpoint's version document, with or without its trailing slash.
DISCOVERY = "^/compute/v2\\.1/?$"


def _apply(tmp_path: Path, faults: list[dict[str, Any]]) -> Any:
    scenario_path = write_json(tmp_path / "scenario.json", scenario(faults=faults))
    map_path = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    return run_cli(["apply", str(map_path), "--yes", "-f", "json", "--sim-scenario", str(scenario_path),
                    "--virtual-time", "--log-file", str(tmp_path / "log"), "--journal", str(tmp_path / "j.sqlite")])


def test_compute_discovery_failing_twice_is_retried(tmp_path: Path) -> None:
    """The version document answers 503 twice: read again, the microversion is 2.96 and the move is made."""
    result = _apply(tmp_path, [{"kind": "api_error", "method": "GET", "path_regex": DISCOVERY, "status": 503,
                                "count": 2}])
    assert result.code == 0, result.err
    assert [m["outcome"] for m in result.json()["moves"]] == ["migrated"]
    assert "compute API microversion 2.96" in (tmp_path / "log").read_text()


def test_compute_discovery_down_is_a_cloud_error_not_an_old_cloud(tmp_path: Path) -> None:
    """The version document answers 503 through every retry: exit 4 naming the 503, never "supports none"."""
    result = _apply(tmp_path, [{"kind": "api_error", "method": "GET", "path_regex": DISCOVERY, "status": 503}])
    assert result.code == 4, result.err
    assert "HTTP 503" in result.err
    assert "microversion none" not in result.err
