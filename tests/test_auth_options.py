"""Authentication as the openstack client does it: openstacksdk's own --os-* options, the password prompt, --debug."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
import yaml

from conftest import Running, run_cli


def _rc_without_password(running: Running, monkeypatch: pytest.MonkeyPatch) -> str:
    """The OS_* variables of a keystone rc that prompts for the password (so OS_PASSWORD is unset); the password."""
    env = running.sim.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OS_PASSWORD")
    return env["OS_PASSWORD"]


def test_a_missing_password_without_a_terminal_is_one_line_and_exit_4(
        env_cloud: Callable[..., Running], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A keystone rc environment without OS_PASSWORD and no terminal: one error line naming --os-password, exit 4."""
    running = env_cloud()
    _rc_without_password(running, monkeypatch)
    result = run_cli(["export", "--log-file", str(tmp_path / "log")])
    assert result.code == 4, result.err
    errors = [line for line in result.err.splitlines() if "error" in line]
    assert len(errors) == 1, result.err
    assert "--os-password not given for user admin at http://127.0.0.1:" in errors[0]
    assert "Traceback" not in result.err
    assert len(result.err.splitlines()) <= 2  # the error and the log file's name


def test_os_password_on_the_command_line_completes_a_keystone_rc(
        env_cloud: Callable[..., Running], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """openstacksdk's --os-password (and --os-region-name) work over the OS_* variables, as in the openstack client."""
    password = _rc_without_password(env_cloud(), monkeypatch)
    result = run_cli(["export", "--os-password", password, "--os-region-name", "RegionOne",
                      "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert "compute001" in result.json()


def test_the_password_is_asked_on_a_terminal_and_not_echoed(
        env_cloud: Callable[..., Running], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, a missing password is asked for ("Password: "), the answer is not echoed, and export runs."""
    password = _rc_without_password(env_cloud(), monkeypatch)
    child = pexpect.spawn(sys.executable, ["-m", "hostmap", "export", "--log-file", str(tmp_path / "log")],
                          env=dict(os.environ), encoding="utf-8", timeout=60, dimensions=(24, 80))
    child.expect("hostmap: Password: ")
    child.sendline(password)
    child.expect(pexpect.EOF)
    child.close()
    transcript = child.before or ""
    assert child.exitstatus == 0, transcript
    assert password not in transcript
    assert '"compute001"' in transcript


def test_debug_logs_http_requests_without_token_or_password(
        env_cloud: Callable[..., Running], tmp_path: Path) -> None:
    """--debug shows each HTTP request on stderr and in the log, and neither shows a token or the password."""
    running = env_cloud()
    log = tmp_path / "log"
    result = run_cli(["export", "--debug", "--log-file", str(log)])
    assert result.code == 0, result.err
    assert "REQ: curl" in result.err
    assert "GET" in log.read_text()
    secrets = [running.sim.env()["OS_PASSWORD"], *running.sim.state.tokens]
    assert len(secrets) > 1
    for secret in secrets:
        assert secret not in result.err
        assert secret not in log.read_text()


def test_verbose_shows_the_log_lines_on_stderr(env_cloud: Callable[..., Running], tmp_path: Path) -> None:
    """-v shows the log's own lines (the API actions) on stderr, and no HTTP request."""
    env_cloud()
    result = run_cli(["export", "-v", "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert "hostmap.api: compute API microversion 2.96" in result.err
    assert "REQ: curl" not in result.err


def test_an_unknown_os_cloud_lists_the_clouds_that_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--os-cloud naming no entry of clouds.yaml says which clouds there are, and exits 4."""
    config = tmp_path / "clouds.yaml"
    config.write_text(yaml.safe_dump({"clouds": {
        name: {"auth": {"auth_url": "http://127.0.0.1:9/identity", "username": "u", "password": "p"}}
        for name in ("lab", "prod")}}))
    for variable in list(os.environ):
        if variable.startswith("OS_"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(config))
    result = run_cli(["export", "--os-cloud", "labb", "--log-file", str(tmp_path / "log")])
    assert result.code == 4, result.err
    assert f"no cloud 'labb' in {config}; the clouds there: lab, prod" in result.err
    assert "Traceback" not in result.err


def test_os_compute_api_version_caps_the_microversion(env_cloud: Callable[..., Running], tmp_path: Path) -> None:
    """--os-compute-api-version 2.60 is the highest microversion hostmap then uses; below 2.30 is refused."""
    env_cloud()
    result = run_cli(["export", "-v", "--os-compute-api-version", "2.60", "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert "compute API microversion 2.60" in result.err
    result = run_cli(["export", "--os-compute-api-version", "2.20", "--log-file", str(tmp_path / "log")])
    assert result.code == 4
    assert "compute API version 2.20 was asked for" in result.err
