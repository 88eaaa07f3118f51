"""The real-Nova tier's harness, in the main Python: the nova venv, keystone, and one real Nova cloud per scenario.

Nothing here imports nova: nova runs in its own virtual environment (tests/realnova/requirements.txt, pinned
exactly), built once under ~/.cache/hostmap-realnova (or $HOSTMAP_REALNOVA_CACHE) and keyed by a hash of the
requirements file and the Python version. keystone_server.py and cloud_server.py run in that venv as subprocesses.

When the environment cannot be built or started, `session()` skips the calling test with the reason (set
HOSTMAP_REALNOVA_REQUIRED=1 to make that a failure instead).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
KEYSTONE_START_S = 180
CLOUD_START_S = 180


class Unavailable(Exception):
    """The real-Nova environment cannot be built or started here."""


def _unavailable(reason: str) -> Any:
    if os.environ.get("HOSTMAP_REALNOVA_REQUIRED") == "1":
        pytest.fail(f"real-Nova tier required but unavailable: {reason}")
    pytest.skip(f"real-Nova tier unavailable: {reason}")


def cache_dir() -> Path:
    return Path(os.environ.get("HOSTMAP_REALNOVA_CACHE") or Path.home() / ".cache" / "hostmap-realnova")


def venv_dir() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.split()[0].encode()).hexdigest()[:12]
    return cache_dir() / f"venv-{digest}"


def ensure_venv() -> Path:
    """The nova venv's python, building the venv from the pinned requirements if it is not there yet."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    marker = venv / ".hostmap-complete"
    if marker.exists() and python.exists():
        return python
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (cache_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and python.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        build_log = cache_dir() / "build.log"
        started = time.monotonic()
        try:
            with build_log.open("w") as out:
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out,
                               timeout=300)
                subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                "--retries", "2", "-r", str(REQUIREMENTS)],
                               check=True, stdout=out, stderr=out, timeout=1200)
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(venv, ignore_errors=True)
            tail = build_log.read_text(errors="replace")[-600:] if build_log.exists() else ""
            raise Unavailable(f"building the nova venv failed ({exc}); see {build_log}: {tail}") from exc
        marker.write_text(f"built in {time.monotonic() - started:.1f} s\n")
    return python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[str], timeout: float, what: str, log: Path) -> dict[str, Any]:
    """Read the child's stdout until its READY line; raise Unavailable if it dies or takes too long."""
    found: list[dict[str, Any]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY "):
                found.append(json.loads(line[6:]))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        proc.kill()
        proc.wait()
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        raise Unavailable(f"{what} did not start within {timeout:.0f} s (exit {proc.returncode}); {log}: {tail}")
    return found[0]


@dataclass
class Session:
    """The nova venv, a running keystone, and the loopback ports every cloud of this session serves on."""

    python: Path
    workdir: Path
    password: str
    keystone_port: int
    nova_port: int
    placement_port: int
    keystone: subprocess.Popen[str] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.keystone_port}/v3"

    def env(self) -> dict[str, str]:
        """The OS_* variables a sourced keystone rc file would set."""
        return {"OS_AUTH_URL": self.auth_url, "OS_USERNAME": "admin", "OS_PASSWORD": self.password,
                "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_REGION_NAME": "RegionOne", "OS_IDENTITY_API_VERSION": "3", "OS_INTERFACE": "public"}

    def stop(self) -> None:
        if self.keystone is not None and self.keystone.poll() is None:
            self.keystone.kill()
        if self.keystone is not None:
            self.keystone.wait()
            for pipe in (self.keystone.stdin, self.keystone.stdout):
                if pipe is not None:
                    pipe.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @contextlib.contextmanager
    def cloud(self, scenario: Mapping[str, Any], *, slow: Mapping[str, float] | None = None) -> Iterator[RealCloud]:
        """A real Nova control plane built from a simulator scenario (hosts, flavors, servers, groups); stopped at exit.

        `slow` gives live-migration durations in seconds per server name (default 1 s).
        """
        cloud = RealCloud.start(self, scenario, slow or {})
        try:
            yield cloud
        finally:
            cloud.stop()


_SESSION: list[Session] = []
_FAILED: list[str] = []


def session() -> Session:
    """The tier's session, started on first use (skips the test if the environment cannot be had)."""
    if _SESSION:
        return _SESSION[0]
    if _FAILED:
        return _unavailable(_FAILED[0])
    try:
        _SESSION.append(_start_session())
    except Unavailable as exc:
        _FAILED.append(str(exc))
        return _unavailable(str(exc))
    atexit.register(_SESSION[0].stop)
    return _SESSION[0]


def _start_session() -> Session:
    started = time.monotonic()
    python = ensure_venv()
    venv_s = time.monotonic() - started
    work = Path(tempfile.mkdtemp(prefix="hostmap-realnova-"))
    sess = Session(python, work, secrets.token_urlsafe(16), _free_port(), _free_port(), _free_port())
    sess.timings["venv_s"] = round(venv_s, 1)
    log = work / "keystone.stderr"
    with log.open("w") as err:
        sess.keystone = subprocess.Popen(
            [str(python), str(HERE / "keystone_server.py"), "--workdir", str(work / "keystone"),
             "--port", str(sess.keystone_port), f"--password={sess.password}",  # it may start with "-"
             "--compute-url", f"http://127.0.0.1:{sess.nova_port}/v2.1",
             "--placement-url", f"http://127.0.0.1:{sess.placement_port}"],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.PIPE, text=True)
    try:
        _wait_ready(sess.keystone, KEYSTONE_START_S, "keystone", work / "keystone" / "keystone.log")
    except Unavailable:
        sess.stop()
        raise
    sess.timings["keystone_s"] = round(time.monotonic() - started - venv_s, 1)
    return sess


def real_spec(sess: Session, scenario: Mapping[str, Any], slow: Mapping[str, float], workdir: Path) -> dict[str, Any]:
    """cloud_server.py's spec from a simulator scenario: the same hosts, flavors, servers (pinned zones and SHUTOFF
    included), server groups, host aggregates with their zones and instance sync interval
    (`migration.instance_sync_s`; absent, the computes never sync)."""
    hosts = []
    for host in scenario["hosts"]:
        hosts.append({
            "name": host["name"],
            "hypervisor_hostname": host.get("hypervisor_hostname", host["name"] + ".localdomain"),
            "vcpus": host["vcpus"], "memory_mb": host["memory_mb"], "disk_gb": host["disk_gb"],
            "cpu_allocation_ratio": host.get("cpu_allocation_ratio", 16.0),
            "ram_allocation_ratio": host.get("ram_allocation_ratio", 1.5),
            "disk_allocation_ratio": host.get("disk_allocation_ratio", 1.0),
            "reserved_host_memory_mb": host.get("reserved_host_memory_mb", 512),
            "reserved_host_cpus": host.get("reserved_host_cpus", 0),
            "reserved_host_disk_gb": host.get("reserved_host_disk_gb", 0),
            "enabled": host.get("enabled", True), "disabled_reason": host.get("disabled_reason"),
            "max_concurrent_live_migrations": host.get("max_concurrent_live_migrations", 1),
        })
    by_hypervisor = {h["hypervisor_hostname"]: h["name"] for h in hosts}
    servers = [{"name": s["name"], "flavor": s["flavor"], "host": by_hypervisor.get(s["host"], s["host"]),
                "migration_s": slow.get(s["name"], 1.0), "pinned_zone": s.get("pinned_zone"),
                "status": s.get("status", "ACTIVE")} for s in scenario["servers"]]
    groups = [{"name": g["name"], "policy": g["policy"], "members": list(g["members"]), "rules": g.get("rules") or {}}
              for g in scenario.get("server_groups", [])]
    return {"workdir": str(workdir), "keystone_url": sess.auth_url, "password": sess.password,
            "nova_port": sess.nova_port, "placement_port": sess.placement_port,
            "paste_ini": str(sess.python.parent.parent / "etc" / "nova" / "api-paste.ini"),
            "hosts": hosts, "flavors": scenario["flavors"], "servers": servers, "server_groups": groups,
            "aggregates": _aggregates(scenario),
            "instance_sync_s": (scenario.get("migration") or {}).get("instance_sync_s")}


def _aggregates(scenario: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The scenario's host aggregates as the simulator reads them (those implied by hosts' `zone` included)."""
    from hostmap.sim.scenario import parse_scenario

    return [{"name": a.name, "availability_zone": a.availability_zone, "hosts": list(a.hosts)}
            for a in parse_scenario(json.loads(json.dumps(scenario)), "real-Nova spec").aggregates]


class RealCloud:
    """One real Nova control plane (cloud_server.py) with its fake computes, and an admin API session to it."""

    def __init__(self, sess: Session, proc: subprocess.Popen[str], workdir: Path) -> None:
        self.session = sess
        self.proc = proc
        self.workdir = workdir
        self.start_s = 0.0
        self.forced: list[str] = []  # group members booted on a forced host (see cloud_server.py)
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import v3

        auth = v3.Password(auth_url=sess.auth_url, username="admin", password=sess.password, project_name="admin",
                           user_domain_name="Default", project_domain_name="Default")
        self.api = ks_session.Session(auth=auth)

    @classmethod
    def start(cls, sess: Session, scenario: Mapping[str, Any], slow: Mapping[str, float]) -> RealCloud:
        workdir = sess.workdir / f"cloud-{uuid.uuid4().hex[:8]}"
        workdir.mkdir()
        # Nova's test fixtures put their sqlite files under TMPDIR; the process is killed, so they live in the
        # session's work directory, which Session.stop removes.
        (workdir / "tmp").mkdir()
        spec = workdir / "spec.json"
        spec.write_text(json.dumps(real_spec(sess, scenario, slow, workdir)), encoding="utf-8")
        started = time.monotonic()
        log = workdir / "stderr.log"
        with log.open("w") as err:
            proc = subprocess.Popen([str(sess.python), str(HERE / "cloud_server.py"), str(spec)],
                                    stdout=subprocess.PIPE, stderr=err, stdin=subprocess.PIPE, text=True,
                                    env={**os.environ, "HOSTMAP_REALNOVA_ERR": str(workdir / "traceback.txt"),
                                         "TMPDIR": str(workdir / "tmp")})
        try:
            ready = _wait_ready(proc, CLOUD_START_S, "the real Nova cloud", workdir / "traceback.txt")
        except Unavailable as exc:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
            _unavailable(str(exc))
        cloud = cls(sess, proc, workdir)
        cloud.start_s = time.monotonic() - started
        cloud.forced = list(ready.get("forced", []))
        return cloud

    def stop(self) -> None:
        self.api.session.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def env(self) -> dict[str, str]:
        return self.session.env()

    def compute(self, method: str, path: str, body: Any = None, version: str = "2.96") -> Any:
        return self.api.request(path, method, json=body, raise_exc=False,
                                    endpoint_filter={"service_type": "compute", "interface": "public"},
                                    headers={"OpenStack-API-Version": f"compute {version}"})

    def placement(self, method: str, path: str, body: Any = None, version: str = "1.39") -> Any:
        return self.api.request(path, method, json=body, raise_exc=False,
                                endpoint_filter={"service_type": "placement", "interface": "public"},
                                headers={"OpenStack-API-Version": f"placement {version}"})

    def requests(self) -> list[dict[str, Any]]:
        """Every request the cloud answered, in order: service, method, path, status, microversion."""
        path = self.workdir / "requests.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
