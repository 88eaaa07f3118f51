"""`openstack hostmap ...`: the real openstack command, its authentication and cliff's formatters, on a simulated cloud.

The openstack command takes a second or more to start, so the invocations are few and share one served cloud.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import scenario, write_json

OPENSTACK = shutil.which("openstack", path=str(Path(sys.executable).parent)) or shutil.which("openstack")
pytestmark = pytest.mark.skipif(OPENSTACK is None, reason="python-openstackclient is not installed (the osc extra)")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """A `hostmap sim serve` process, the environment that reaches it (OS_* only) and a directory for files."""
    where = tmp_path_factory.mktemp("osc")
    scenario_file = write_json(where / "scenario.json", scenario(
        migration={"setup_s": 0.1}, report_interval_s=0.5,
        aggregates=[{"name": "ssd", "hosts": ["compute001", "compute002"]},
                    {"name": "edge", "hosts": ["compute004"], "availability_zone": "edge"}],
        # The first two listings of servers fail: the plugin's connection must retry them, as `hostmap`'s does.
        faults=[{"kind": "api_error", "method": "GET", "path_regex": "/servers/detail", "status": 503, "count": 2}]))
    process = subprocess.Popen([sys.executable, "-m", "hostmap", "sim", "serve", "--scenario", str(scenario_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["XDG_STATE_HOME"] = str(where / "state")
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while "OS_USER_DOMAIN_NAME" not in env:
            assert time.monotonic() < deadline, "sim serve printed no variables within 30 s"
            line = process.stdout.readline()
            assert line, "sim serve ended before printing its variables"
            name, _, value = line.removeprefix("export ").strip().partition("=")
            env[name] = value
        yield env, where
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def _openstack(env: dict[str, str], where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert OPENSTACK is not None
    return subprocess.run([OPENSTACK, "--log-file", str(where / "log"), "hostmap", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False, cwd=where)


def test_export_plan_apply_and_history_through_the_openstack_command(cloud: tuple[dict[str, str], Path]) -> None:
    """export (with --insecure: warned; through a 503 the connection retries), plan and an apply that reaches its
    map authenticate with OS_*; history and restore find the run."""
    env, where = cloud
    journal = str(where / "journal.sqlite")
    assert OPENSTACK is not None
    exported = subprocess.run([OPENSTACK, "--insecure", "hostmap", "export", "-f", "json"], capture_output=True,
                              text=True, env=env, timeout=120, check=False, cwd=where)
    assert exported.returncode == 0, exported.stderr
    assert "openstack hostmap: warning: --insecure: the API's TLS certificate is NOT verified" in exported.stderr
    assert {"host": "compute001", "count": 2, "servers": ["web-0", "web-1"]} in json.loads(exported.stdout)
    host_map = write_json(where / "map.json", {"compute004": ["web-0"]})
    planned = _openstack(env, where, "plan", str(host_map), "-f", "value", "-c", "server", "-c", "target")
    assert (planned.returncode, planned.stdout) == (0, "web-0 compute004\n"), planned.stderr
    applied = _openstack(env, where, "apply", str(host_map), "--yes", "--journal", journal, "-f", "json")
    assert applied.returncode == 0, applied.stderr
    assert [(m["server"], m["target"], m["outcome"]) for m in json.loads(applied.stdout)] == \
        [("web-0", "compute004", "migrated")]

    listed = _openstack(env, where, "history", "--journal", journal, "-f", "yaml", "-c", "run", "-c", "status")
    assert listed.returncode == 0, listed.stderr
    assert yaml.safe_load(listed.stdout) == [{"run": 1, "status": "reached"}]
    back = _openstack(env, where, "restore", "1", "--journal", journal, "-f", "csv", "-c", "host", "-c", "count")
    assert back.returncode == 0, back.stderr
    assert list(csv.reader(io.StringIO(back.stdout))) == [["host", "count"], ["compute001", "1"]]


def test_drain_maintain_and_a_bad_map_through_the_openstack_command(cloud: tuple[dict[str, str], Path]) -> None:
    """drain's summary (table) and maintain's dry run come through cliff; a bad map exits 2 with one line of error."""
    env, where = cloud
    drained = _openstack(env, where, "drain", "compute003", "-o", str(where / "drain.json"), "--sort-column", "host")
    assert drained.returncode == 0, drained.stderr
    assert "| cache-0" in drained.stdout
    assert json.loads((where / "drain.json").read_text())["compute003"] == []
    dry = _openstack(env, where, "maintain", "compute003", "--exec", "true", "--dry-run", "-f", "json")
    assert dry.returncode == 0, dry.stderr
    assert [row["moves"] for row in json.loads(dry.stdout)] == [1]
    bad = _openstack(env, where, "plan", str(write_json(where / "bad.json", {"compute001": ["nope"]})))
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, bad.stderr
    assert 'no server named or with id "nope"' in errors[0]


def test_drain_restore_and_maintain_change_the_cloud_through_the_openstack_command(
        cloud: tuple[dict[str, str], Path]) -> None:
    """drain --apply empties a host, restore --apply puts its server back, and maintain (events on stdout, its
    report through cliff on stderr) takes another host through drain, command, enable and restore."""
    env, where = cloud
    journal = str(where / "changes.sqlite")
    drained = _openstack(env, where, "drain", "compute003", "--apply", "--yes", "--journal", journal, "-f", "json")
    assert drained.returncode == 0, drained.stderr
    assert [(m["server"], m["source"], m["outcome"]) for m in json.loads(drained.stdout)
            if m["outcome"] != "skipped"] == [("cache-0", "compute003", "migrated")]
    assert "compute service of compute003 disabled (hostmap run 1 (drain))" in drained.stderr
    back = _openstack(env, where, "restore", "1", "--apply", "--yes", "--journal", journal, "-f", "value",
                      "-c", "server", "-c", "target", "-c", "outcome")
    assert back.returncode == 0, back.stderr
    assert "cache-0 compute003 migrated" in back.stdout.splitlines()
    maintained = _openstack(env, where, "maintain", "compute002", "--exec", "true", "--restore", "--yes",
                            "--group-settle", "0", "--journal", journal, "--events", "-", "-f", "json")
    assert maintained.returncode == 0, maintained.stderr
    events = [json.loads(line) for line in maintained.stdout.splitlines()]
    assert [(e["event"], e.get("host")) for e in events if e["event"].startswith("host_")] == \
        [("host_disabled", "compute002"), ("host_enabled", "compute002")]
    assert [e["server"] for e in events if e["event"] == "finished"] == ["db-0", "db-0"]
    ended = [e for e in events if e["event"] == "run_ended"]
    assert [(e["reached"], e["exit_code"]) for e in ended] == [(True, 0), (True, 0)]
    there, home = [(e["source"], e["target"]) for e in events if e["event"] == "finished"]
    assert there[0] == "compute002"
    assert home == (there[1], "compute002")


def _client(env: dict[str, str], where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The `openstack` command itself (not the plugin), as an operator types it."""
    assert OPENSTACK is not None
    return subprocess.run([OPENSTACK, *args], capture_output=True, text=True, env=env, timeout=120, check=False,
                          cwd=where)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_what_operators_type_during_maintenance_through_the_openstack_command(
        cloud: tuple[dict[str, str], Path]) -> None:
    """compute service set/list (the conductor and scheduler listed, only compute services settable), hypervisor
    show, availability zone list, aggregate list/show and host list answer as nova 34 does."""
    env, where = cloud
    disabled = _client(env, where, "compute", "service", "set", "--disable", "--disable-reason", "rack 4 power",
                       "compute001", "nova-compute")
    assert disabled.returncode == 0, disabled.stderr
    listed = {(s["Binary"], s["Host"]): s for s in _json(_client(env, where, "compute", "service", "list", "--long",
                                                                  "-f", "json"))}
    assert (listed["nova-compute", "compute001"]["Status"], listed["nova-compute", "compute001"]["Disabled Reason"]) \
        == ("disabled", "rack 4 power")
    assert [(s["Zone"], s["Status"], s["State"]) for key, s in listed.items() if key[1] == "controller"] == \
        [("internal", "enabled", "up")] * 2
    assert {b for b, h in listed if h == "controller"} == {"nova-conductor", "nova-scheduler"}
    assert _client(env, where, "compute", "service", "set", "--enable", "compute001", "nova-compute").returncode == 0
    shown = _json(_client(env, where, "hypervisor", "show", "compute001.cloud.example.com", "-f", "json"))
    assert (shown["service_host"], shown["status"], shown["state"]) == ("compute001", "enabled", "up")
    zones = _json(_client(env, where, "availability", "zone", "list", "--long", "-f", "json"))
    assert sorted((z["Zone Name"], z["Host Name"], z["Service Name"]) for z in zones) == [
        ("edge", "compute004", "nova-compute"), ("internal", "controller", "nova-conductor"),
        ("internal", "controller", "nova-scheduler"), ("nova", "compute001", "nova-compute"),
        ("nova", "compute002", "nova-compute"), ("nova", "compute003", "nova-compute")]
    aggregates = _json(_client(env, where, "aggregate", "list", "-f", "json"))
    assert [(a["ID"], a["Name"], a["Availability Zone"]) for a in aggregates] == [(1, "ssd", None), (2, "edge", "edge")]
    edge = _json(_client(env, where, "aggregate", "show", "edge", "-f", "json"))
    assert (edge["hosts"], edge["availability_zone"], edge["is_deleted"]) == (["compute004"], "edge", False)
    hosts = _json(_client(env, where, "host", "list", "-f", "json"))
    assert [(h["Host Name"], h["Service"], h["Zone"]) for h in hosts] == [
        ("compute001", "compute", "nova"), ("compute002", "compute", "nova"), ("compute003", "compute", "nova"),
        ("compute004", "compute", "edge"), ("controller", "conductor", "internal"),
        ("controller", "scheduler", "internal")]
    refused = _client(env, where, "compute", "service", "set", "--disable", "controller", "nova-scheduler")
    assert refused.returncode == 1
    assert "nova-scheduler of host controller failed to set" in refused.stderr
