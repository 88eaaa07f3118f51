"""Local checks before remote ones: a host map is read and validated as a file before the cloud is contacted."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Running, run_cli

BAD_MAPS = {
    "not-json": "{ compute004: [web-0",
    "wrong-shape": '{"compute004": "web-0"}',
    "not-a-mapping": '["web-0"]',
}


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize("content", BAD_MAPS.values(), ids=BAD_MAPS.keys())
def test_a_malformed_map_makes_no_request_at_all(env_cloud: Callable[..., Running], tmp_path: Path, command: str,
                                                 content: str) -> None:
    """plan and apply refuse a map that does not parse or has the wrong shape with exit 2, before any request
    (not even keystone's) reaches the cloud."""
    running = env_cloud()
    path = tmp_path / "map.json"
    path.write_text(content)
    yes = ["--yes"] if command == "apply" else []
    result = run_cli([command, str(path), *yes, "--log-file", str(tmp_path / "log")])
    assert result.code == 2, result.err
    assert running.sim.state.requests == []


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_a_missing_map_on_an_unreachable_cloud_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          command: str) -> None:
    """A map file that does not exist is a usage error (2), even when the cloud cannot be reached (which is 4)."""
    for name in list(os.environ):
        if name.startswith("OS_"):
            monkeypatch.delenv(name)
    for name, value in {"OS_AUTH_URL": "http://127.0.0.1:9/identity/v3", "OS_USERNAME": "admin",
                        "OS_PASSWORD": "x", "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
                        "OS_PROJECT_DOMAIN_NAME": "Default"}.items():
        monkeypatch.setenv(name, value)
    result = run_cli([command, str(tmp_path / "nowhere.json"), "--log-file", str(tmp_path / "log")])
    assert result.code == 2, result.err
    assert "nowhere.json" in result.err
