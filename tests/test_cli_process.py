"""hostmap as separate processes: sim serve, clouds.yaml, TLS warnings, log file mode and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from conftest import Running, run_cli, scenario, write_json

# As a shell's `&` starts a job: SIGINT ignored, which exec keeps.
_SIGINT_IGNORED = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                   "os.execv(sys.executable, [sys.executable, '-m', 'hostmap', *sys.argv[1:]])")


def _hostmap(*args: str, env: dict[str, str] | None = None, sigint_ignored: bool = False) -> subprocess.Popen[str]:
    start = ["-c", _SIGINT_IGNORED] if sigint_ignored else ["-m", "hostmap"]
    return subprocess.Popen([sys.executable, *start, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=env if env is not None else dict(os.environ))


def _read_variables(process: subprocess.Popen[str]) -> dict[str, str]:
    """The OS_* variables `sim serve` prints, read within 30 s."""
    variables: dict[str, str] = {}
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    wanted = {"OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME",
              "OS_PROJECT_DOMAIN_NAME"}
    while not wanted <= variables.keys():
        assert time.monotonic() < deadline, "sim serve printed no variables within 30 s"
        line = process.stdout.readline()
        assert line, "sim serve ended before printing its variables"
        name, _, value = line.removeprefix("export ").strip().partition("=")
        variables[name] = value
    return variables


def _stop(process: subprocess.Popen[str], signum: int) -> str:
    """Send `signum`, wait up to 30 s for the exit (killing it if it does not end), and return its stderr."""
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=30)
        raise
    return err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`hostmap sim serve --port 0` in its own process, and the OS_* variables it printed."""
    scenario_file = write_json(tmp_path / "scenario.json", scenario())
    process = _hostmap("sim", "serve", "--port", "0", "--scenario", str(scenario_file))
    try:
        yield _read_variables(process)
    finally:
        _stop(process, signal.SIGTERM)
        assert process.returncode == 0


def _env_with(variables: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(variables)
    return env


def _wait_for_a_migration(log: Path) -> None:
    """Wait (at most 60 s) until the run's log says a migration started."""
    deadline = time.monotonic() + 60
    while not (log.exists() and "started:" in log.read_text()):
        assert time.monotonic() < deadline, "no migration started within 60 s"
        time.sleep(0.05)


def _apply_two_moves(served: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """`hostmap apply --yes -f json` of web-0 and web-1 onto compute004 in its own process, once a migration
    started; the process and its log file."""
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1"]})
    log = tmp_path / "log"
    process = _hostmap("apply", str(host_map), "--yes", "-f", "json", "--log-file", str(log), env=_env_with(served))
    _wait_for_a_migration(log)
    return process, log


def test_sim_serve_prints_variables_any_client_can_use(served: dict[str, str], tmp_path: Path) -> None:
    """sim serve prints export lines at once, and hostmap in another process reaches the cloud with them."""
    assert served["OS_AUTH_URL"].startswith("http://127.0.0.1:")
    env = _env_with(served)
    result = subprocess.run([sys.executable, "-m", "hostmap", "export", "--log-file", str(tmp_path / "log")],
                            capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["compute001"] == ["web-0", "web-1"]


def test_sim_serve_says_how_to_stop_and_stops_on_sigint_even_if_started_with_it_ignored(tmp_path: Path) -> None:
    """sim serve started with SIGINT ignored (`&`) still stops on SIGINT, exit 0, after saying where it serves."""
    scenario_file = write_json(tmp_path / "scenario.json", scenario())
    process = _hostmap("sim", "serve", "--port", "0", "--scenario", str(scenario_file),
                       sigint_ignored=True)
    try:
        variables = _read_variables(process)
    except BaseException:
        _stop(process, signal.SIGKILL)
        raise
    err = _stop(process, signal.SIGINT)
    assert process.returncode == 0, err
    assert f"serving the simulated cloud at {variables['OS_AUTH_URL'].removesuffix('/identity/v3')}" in err
    assert "Ctrl-C or SIGTERM stops it" in err


def _use_clouds_yaml(running: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                     **settings: object) -> None:
    """A clouds.yaml with one entry `name` for the simulated cloud (and `settings`), and no OS_* variable set."""
    env = running.sim.env()
    clouds = {"clouds": {name: {
        "auth": {"auth_url": env["OS_AUTH_URL"], "username": env["OS_USERNAME"], "password": env["OS_PASSWORD"],
                 "project_name": env["OS_PROJECT_NAME"], "user_domain_name": env["OS_USER_DOMAIN_NAME"],
                 "project_domain_name": env["OS_PROJECT_DOMAIN_NAME"]},
        "region_name": env["OS_REGION_NAME"], "identity_api_version": 3, **settings,
    }}}
    config = tmp_path / "clouds.yaml"
    config.write_text(yaml.safe_dump(clouds))
    for variable in list(os.environ):
        if variable.startswith("OS_"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(config))


def test_os_cloud_reads_clouds_yaml(start_sim: Callable[..., Running], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """--os-cloud NAME takes auth from clouds.yaml, as the openstack client does."""
    _use_clouds_yaml(start_sim(), tmp_path, monkeypatch, "rehearsal")
    result = run_cli(["export", "--os-cloud", "rehearsal", "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert "compute004" in result.json()


def test_insecure_warns(start_sim: Callable[..., Running], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--insecure works but prints a warning that TLS is not verified."""
    running = start_sim()
    monkeypatch.delenv("OS_CLOUD", raising=False)
    for name, value in running.sim.env().items():
        monkeypatch.setenv(name, value)
    result = run_cli(["export", "--insecure", "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert "warning: --insecure" in result.err


def test_os_insecure_warns_as_insecure_does(start_sim: Callable[..., Running], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """OS_INSECURE=true turns verification off as --insecure does, and gets the same warning."""
    running = start_sim()
    monkeypatch.delenv("OS_CLOUD", raising=False)
    for name, value in running.sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OS_INSECURE", "true")
    result = run_cli(["export", "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert "warning: OS_INSECURE: the API's TLS certificate is NOT verified" in result.err


def test_clouds_yaml_verify_false_warns(start_sim: Callable[..., Running], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`verify: false` in a clouds.yaml entry gets the same warning, naming the cloud."""
    _use_clouds_yaml(start_sim(), tmp_path, monkeypatch, "lab", verify=False)
    result = run_cli(["export", "--os-cloud", "lab", "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert "cloud lab" in result.err
    assert "TLS certificate is NOT verified" in result.err


def test_a_verified_cloud_gets_no_warning(start_sim: Callable[..., Running], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """With verification on, no TLS warning is printed."""
    running = start_sim()
    monkeypatch.delenv("OS_CLOUD", raising=False)
    monkeypatch.delenv("OS_INSECURE", raising=False)
    for name, value in running.sim.env().items():
        monkeypatch.setenv(name, value)
    result = run_cli(["export", "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert "NOT verified" not in result.err


def test_log_file_is_private_and_names_actions(tmp_path: Path) -> None:
    """The log file is created 0600 and records every migration request and outcome."""
    data = write_json(tmp_path / "scenario.json", scenario())
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    log = tmp_path / "hostmap.log"
    result = run_cli(["apply", str(host_map), "--yes", "--sim-scenario", str(data), "--virtual-time",
                      "--log-file", str(log)])
    assert result.code == 0, result.err
    assert log.stat().st_mode & 0o777 == 0o600
    text = log.read_text()
    assert "POST live-migrate server" in text
    assert "migrated: web-0 to compute004" in text


def test_sigterm_is_taken_as_a_first_ctrl_c_and_exits_143(served: dict[str, str], tmp_path: Path) -> None:
    """SIGTERM (systemd, timeout, CI runners) once: nothing new starts, the migration in flight is watched to its
    end, the report printed, exit 143."""
    process, _log = _apply_two_moves(served, tmp_path)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    outcomes = sorted(m["outcome"] for m in json.loads(out)["moves"])
    assert outcomes == ["migrated", "not_started"]
    assert "terminated (SIGTERM): starting no new migrations" in err


def test_sighup_does_not_stop_a_run_started_with_yes(served: dict[str, str], tmp_path: Path) -> None:
    """A lost terminal (SIGHUP) during a run started with --yes: the run goes on to its map and exits 0."""
    process, log = _apply_two_moves(served, tmp_path)
    process.send_signal(signal.SIGHUP)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert sorted(m["outcome"] for m in json.loads(out)["moves"]) == ["migrated", "migrated"]
    assert "SIGHUP" in log.read_text()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_maintains_drain_stops_the_rollout_with_its_exit_code(
    served: dict[str, str], tmp_path: Path, signum: int, code: int
) -> None:
    """Ctrl-C (or SIGTERM) while maintain drains its first host: the drain's migration in flight ends, the command
    is never run, and maintain exits 130 (or 143)."""
    log = tmp_path / "log"
    ran = tmp_path / "ran"
    process = _hostmap("maintain", "compute001", "--exec", f"touch {ran}", "--yes", "-f", "json",
                       "--log-file", str(log), env=_env_with(served))
    _wait_for_a_migration(log)
    process.send_signal(signum)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert not ran.exists()


def test_ctrl_c_once_finishes_in_flight_and_exits_130(served: dict[str, str], tmp_path: Path) -> None:
    """Ctrl-C once: nothing new starts, the migration in flight is watched to its end, the report printed, exit 130."""
    process, _log = _apply_two_moves(served, tmp_path)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    outcomes = sorted(m["outcome"] for m in json.loads(out)["moves"])
    assert outcomes == ["migrated", "not_started"]
    assert "interrupted" in err


def test_sigterm_while_planning_exits_143_in_one_line(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """SIGTERM while `plan` reads the cloud (outside any run): exit 143, one line saying so, no traceback, and no
    request that changes the cloud."""
    data = scenario(faults=[{"kind": "slow", "method": "GET", "path_regex": "/servers/detail$", "seconds": 5.0}])
    running = env_cloud(data, virtual=False)
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    log = tmp_path / "hostmap.log"
    process = _hostmap("plan", str(host_map), "--log-file", str(log))
    deadline = time.monotonic() + 60
    while not (log.exists() and "compute API microversion" in log.read_text()):
        assert time.monotonic() < deadline, "plan never began reading the cloud"
        time.sleep(0.05)
    time.sleep(0.3)  # inside the slow read of the servers
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if "SIGTERM" in line] == [
        "hostmap: terminated (SIGTERM) while no migration was in flight"]
    assert running.sim.state.mutating_request_count() == 0
