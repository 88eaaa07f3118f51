"""Keystone outages: discovery, token issue and renewal are retried like nova's reads, within the same bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import run_cli, scenario, write_json


def _apply(tmp_path: Path, faults: list[dict[str, Any]], **changes: Any) -> Any:
    scenario_path = write_json(tmp_path / "scenario.json", scenario(faults=faults, **changes))
    map_path = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1", "cache-0"]})
    return run_cli(["apply", str(map_path), "--yes", "-f", "json", "--sim-scenario", str(scenario_path),
                    "--virtual-time", "--log-file", str(tmp_path / "log"), "--journal", str(tmp_path / "j.sqlite")])


def _token_fault(**fields: Any) -> dict[str, Any]:
    return {"kind": "api_error", "method": "POST", "path_regex": "/identity/v3/auth/tokens", "status": 503, **fields}


def test_keystone_outage_at_start_up_is_retried(tmp_path: Path) -> None:
    """Discovery and the first token request each fail twice with 503: retried, and the run reaches its map."""
    result = _apply(tmp_path, [
        {"kind": "api_error", "method": "GET", "path_regex": "/identity/v3$", "status": 503, "count": 2},
        _token_fault(count=2),
    ])
    assert result.code == 0, result.err
    assert result.json()["reached"] is True
    assert "keystone http://127.0.0.1" in (tmp_path / "log").read_text()


def test_keystone_down_at_start_up_exits_4_naming_it(tmp_path: Path) -> None:
    """Keystone answering 503 through every retry ends the run before anything moves, exit 4, naming keystone."""
    result = _apply(tmp_path, [_token_fault()])
    assert result.code == 4
    assert "keystone (http://127.0.0.1:" in result.err
    assert "did not answer after 5 attempts" in result.err


def test_keystone_outage_during_token_renewal_is_survived(tmp_path: Path) -> None:
    """The token expires every 5 s; renewals fail three times from second 3 on: retried, and every move is made."""
    result = _apply(tmp_path, [_token_fault(from_s=3, count=3)], auth={"token_ttl_s": 5})
    assert result.code == 0, result.err
    assert [m["outcome"] for m in result.json()["moves"]] == ["migrated"] * 3
    # The renewal met the outage: each of the three refused token requests was retried.
    log = (tmp_path / "log").read_text().splitlines()
    retried = [line for line in log if "keystone" in line and "retrying" in line]
    assert len(retried) == 3


def test_keystone_down_mid_run_exits_4_and_starts_nothing_more(tmp_path: Path) -> None:
    """Keystone gone for good from second 3: no new migration is sent, the report names keystone, exit 4."""
    result = _apply(tmp_path, [_token_fault(from_s=3)], auth={"token_ttl_s": 5})
    assert result.code == 4, result.err
    assert "keystone (http://127.0.0.1:" in result.err
    moves = result.json()["moves"]
    assert moves[0]["outcome"] == "migrated"
    assert all(m["outcome"] != "migrated" for m in moves[2:])
