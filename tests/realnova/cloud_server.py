"""The real Nova control plane with fake compute hosts, for the real-Nova test tier.  Runs inside the nova venv.

    python cloud_server.py SPEC.json

SPEC (written by tests/realnova/harness.py):

    {"workdir", "keystone_url", "password", "nova_port", "placement_port", "paste_ini",
     "hosts": [{"name", "hypervisor_hostname", "vcpus", "memory_mb", "disk_gb", "cpu_allocation_ratio"?,
                "ram_allocation_ratio"?, "disk_allocation_ratio"?, "reserved_host_memory_mb"?, "enabled"?}],
     "flavors": [{"name", "vcpus", "ram", "disk"}],
     "servers": [{"name", "flavor", "host", "migration_s"?, "pinned_zone"?, "status"?: "ACTIVE" | "SHUTOFF"}],
     "server_groups"?: [{"name", "policy", "members": [server names], "rules"?: {"max_server_per_host": N}}],
     "aggregates"?: [{"name", "availability_zone"?, "hosts": [service hosts]}],
     "instance_sync_s"?: null | 0 | N}

It composes nova's functional-test fixtures (databases, in-memory RPC, placement, fake glance/neutron/cinder, real
policy), starts conductor, scheduler and one nova-compute per host with `HostmapFakeDriver`, serves the real
nova-api WSGI app (keystonemiddleware auth_token against the real keystone) and placement (auth_token in front of
the very placement app nova itself uses) on loopback, creates the flavors, server groups and host aggregates (with
their availability zones, through os-aggregates as an operator would) and boots the servers through the API (a group
member with the scheduler hint `group`, a server with `pinned_zone` into that zone, so that its request spec keeps it
there; one with status SHUTOFF is stopped after its boot), then prints `READY {json}` and serves until killed.

A member whose host would break its group's hard policy among the members booted before it (an affinity group split
over two hosts, say) cannot be booted by the scheduler: it is booted on a forced host (`availability_zone`
"nova:HOST", which skips the scheduler's filters) with `[workarounds] disable_group_policy_check_upcall` set for
that boot only, so that the compute's late policy check lets it be. READY names these servers under "forced".

The fake driver's live migration lasts `migration_s` seconds (server metadata `hostmap_migration_s`, default
1.0), reports progress in the migration record, and honours abort and force-complete.

`instance_sync_s` (the simulator's `migration.instance_sync_s`): absent or null, the computes never sync the
scheduler's view of their instances (nova's fixtures run no periodic task); N > 0, every N seconds from READY each
compute runs nova's own periodic `_sync_scheduler_instance_info` (`scheduler_instance_sync_interval` = N); 0, the
scheduler reads instances from the database (`[filter_scheduler] track_instance_changes = False`).
"""

from __future__ import annotations

# ruff: noqa: E402 - nova.monkey_patch.patch() has to run before the imports below
import os

os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "1")

import nova.monkey_patch

nova.monkey_patch.patch()

import functools
import json
import logging
import socketserver
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from wsgiref import simple_server

import futurist
import requests
from keystoneauth1 import loading as ks_loading
from nova import context as nova_context
from nova import test, thread_pool_factory
from nova.api import wsgi as nova_wsgi
from nova.compute import manager as compute_manager
from nova.conf import CONF
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import fixtures as func_fixtures
from nova.virt import fake

SPEC: dict[str, Any] = {}
HOSTS: dict[str, dict[str, Any]] = {}
DEFAULT_MIGRATION_S = 1.0
IMAGE_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # nova's GlanceFixture image
log = logging.getLogger("hostmap.realnova")


class HostmapFakeDriver(fake.FakeDriver):
    """Per-host capacity and hypervisor hostname; live migrations that take time, report progress, can be aborted."""

    def __init__(self, virtapi: Any, read_only: bool = False) -> None:
        host = HOSTS[CONF.host]
        self.vcpus = host["vcpus"]
        self.memory_mb = host["memory_mb"]
        self.local_gb = host["disk_gb"]
        self._hm_host = host
        super().__init__(virtapi, read_only)
        self._hm_flags: dict[str, dict[str, bool]] = {}

    def init_host(self, host: str) -> None:
        super().init_host(host)
        self._set_nodes([self._hm_host["hypervisor_hostname"]])

    def update_provider_tree(self, provider_tree: Any, nodename: str, allocations: Any = None) -> None:
        super().update_provider_tree(provider_tree, nodename, allocations)
        host = self._hm_host
        inventory = provider_tree.data(nodename).inventory
        inventory["VCPU"].update(allocation_ratio=host.get("cpu_allocation_ratio", 1.0),
                                 reserved=host.get("reserved_host_cpus", 0))
        inventory["MEMORY_MB"].update(allocation_ratio=host.get("ram_allocation_ratio", 1.0),
                                      reserved=host.get("reserved_host_memory_mb", 0))
        inventory["DISK_GB"].update(allocation_ratio=host.get("disk_allocation_ratio", 1.0),
                                    reserved=host.get("reserved_host_disk_gb", 0))
        provider_tree.update_inventory(nodename, inventory)

    def live_migration(  # noqa: PLR0917 - nova's driver interface
        self, context: Any, instance: Any, dest: str, post_method: Any, recover_method: Any,
        block_migration: bool = False, migrate_data: Any = None,
    ) -> None:
        seconds = float((instance.metadata or {}).get("hostmap_migration_s", DEFAULT_MIGRATION_S))
        flags = self._hm_flags.setdefault(instance.uuid, {"abort": False, "force": False})
        flags.update(abort=False, force=False)
        migration = getattr(migrate_data, "migration", None) if migrate_data is not None else None
        total = int(instance.flavor.memory_mb) * 2**20
        started = time.monotonic()
        last_report = 0.0
        while not flags["abort"] and not flags["force"]:
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                break
            if migration is not None and elapsed - last_report >= 0.5:
                last_report = elapsed
                done = int(total * elapsed / seconds)
                migration.memory_total, migration.memory_processed = total, done
                migration.memory_remaining = total - done
                try:
                    migration.save()
                except Exception:  # progress is best effort
                    log.exception("progress update failed")
            time.sleep(0.05)
        self._hm_flags.pop(instance.uuid, None)
        if flags["abort"]:
            recover_method(context, instance, dest, migrate_data, migration_status="cancelled")
        else:
            post_method(context, instance, dest, block_migration, migrate_data)

    def live_migration_force_complete(self, instance: Any) -> None:
        if instance.uuid in self._hm_flags:
            self._hm_flags[instance.uuid]["force"] = True

    def live_migration_abort(self, instance: Any) -> None:
        if instance.uuid in self._hm_flags:
            self._hm_flags[instance.uuid]["abort"] = True

    def post_live_migration(
        self, context: Any, instance: Any, block_device_info: Any, migrate_data: Any = None
    ) -> None:
        self.destroy(context, instance, network_info=None, block_device_info=block_device_info)


# nova loads compute drivers from nova.virt only.
sys.modules["nova.virt.hostmap_realnova"] = sys.modules[__name__]


def _per_compute_live_migration_pool() -> None:
    """One live-migration executor per compute manager (nova's is one per process), sized by the host's limit."""
    original = compute_manager.ComputeManager._start_recorded_task

    def start(  # noqa: PLR0917 - ComputeManager._start_recorded_task's signature
        self: Any, executor_type: Any, task_name: str, instance: Any, context: Any, func: Any,
        *args: Any, **kwargs: Any,
    ) -> Any:
        if executor_type is not thread_pool_factory.ExecutorType.LIVE_MIGRATION:
            return original(self, executor_type, task_name, instance, context, func, *args, **kwargs)
        executor = self.__dict__.get("_hm_lm_executor")
        if executor is None:
            limit = HOSTS.get(self.host, {}).get("max_concurrent_live_migrations", 1)
            executor = self.__dict__["_hm_lm_executor"] = futurist.ThreadPoolExecutor(max_workers=limit)
        key = self._record_task_start(task_name, instance.uuid, context.request_id)

        def run(*a: Any, **k: Any) -> Any:
            context.update_store()
            return func(*a, **k)

        future = executor.submit(run, *args, **kwargs)
        future.add_done_callback(functools.partial(self._record_task_end, key))
        return future

    compute_manager.ComputeManager._start_recorded_task = start


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        logging.getLogger("hostmap.realnova.http").debug(format, *args)


def _recorded(app: Any, service: str) -> Any:
    """Append (service, method, path, status, microversion) of every request to requests.jsonl in the workdir."""
    path = Path(SPEC["workdir"]) / "requests.jsonl"
    lock = threading.Lock()

    def wrapper(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            version = {k.lower(): v for k, v in headers}.get("openstack-api-version")
            line = json.dumps({"service": service, "method": environ["REQUEST_METHOD"],
                               "path": environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
                               "status": int(status.split(maxsplit=1)[0]), "microversion": version})
            with lock, path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapper


def _serve(app: Any, port: int) -> None:
    server = simple_server.make_server("127.0.0.1", port, app, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name=f"http-{port}").start()


def _configure_authtoken() -> None:
    """keystonemiddleware's auth_token validates every token against the real keystone, as in a deployment."""
    from keystonemiddleware import auth_token  # noqa: F401 - registers [keystone_authtoken]

    group = "keystone_authtoken"
    ks_loading.register_auth_conf_options(CONF, group)
    CONF.register_opts(ks_loading.get_auth_plugin_conf_options("password"), group=group)
    CONF.set_override("auth_type", "password", group)
    for name, value in {"auth_url": SPEC["keystone_url"], "www_authenticate_uri": SPEC["keystone_url"],
                        "username": "admin", "password": SPEC["password"], "project_name": "admin",
                        "user_domain_name": "Default", "project_domain_name": "Default"}.items():
        CONF.set_override(name, value, group)
    CONF.set_override("api_paste_config", SPEC["paste_ini"], "wsgi")


def _placement_app(placement_fixture: Any) -> Any:
    """auth_token in front of the placement app nova's fixture runs (noauth): the validated user's roles pass on."""
    from keystonemiddleware import auth_token
    from placement import deploy

    inner = deploy.loadapp(placement_fixture.conf_fixture.conf)

    def identity(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_X_IDENTITY_STATUS") == "Confirmed":
            environ["HTTP_X_AUTH_TOKEN"] = f"{environ.get('HTTP_X_USER_ID')}:{environ.get('HTTP_X_PROJECT_ID')}"
        return inner(environ, start_response)

    conf = {"auth_url": SPEC["keystone_url"], "www_authenticate_uri": SPEC["keystone_url"], "auth_type": "password",
            "username": "admin", "password": SPEC["password"], "project_name": "admin",
            "user_domain_name": "Default", "project_domain_name": "Default", "delay_auth_decision": False}
    return auth_token.AuthProtocol(identity, conf)


class Cloud(test.TestCase):
    """Nova's functional-test base, used as a fixture composer rather than as a test."""

    STUB_RPC = True
    REQUIRES_LOCKING = True

    def runTest(self) -> None:  # pragma: no cover - never run as a test
        pass

    def setUp(self) -> None:
        self.flags(compute_driver="hostmap_realnova.HostmapFakeDriver")
        super().setUp()
        self.flags(instances_path=str(Path(SPEC["workdir"]) / "instances"))
        self.useFixture(nova_fixtures.RealPolicyFixture())
        self.useFixture(nova_fixtures.NeutronFixture(self))
        self.useFixture(nova_fixtures.GlanceFixture(self))
        self.useFixture(nova_fixtures.CinderFixture(self))
        self.placement_fixture = self.useFixture(func_fixtures.PlacementFixture())
        self.useFixture(nova_fixtures.AllServicesCurrent())
        self.flags(transport_url=self.cell_mappings["cell1"].transport_url)
        # nova's WarningsFixture turns library deprecation warnings into errors (an HTTP 500 on live-migrate with
        # SQLAlchemy 2.1): this is a service, not a test of nova's own warnings.
        warnings.resetwarnings()
        warnings.simplefilter("ignore")
        # The test fixture validates API responses strictly ("error"); a deployment only warns.
        self.flags(response_validation="warn", group="api")
        # Scenarios may have more servers than nova's default quota (10 instances) allows.
        self.flags(instances=-1, cores=-1, ram=-1, group="quota")
        sync_s = SPEC.get("instance_sync_s")
        if sync_s == 0:  # the scheduler reads each host's instances from the database; computes send nothing
            self.flags(track_instance_changes=False, group="filter_scheduler")
        elif sync_s is not None:
            self.flags(scheduler_instance_sync_interval=int(sync_s))
        self.start_service("conductor")
        self.start_service("scheduler")
        for name in HOSTS:
            self._start_compute(name)


def _api(method: str, url: str, token: str, body: Any = None, version: str = "2.latest") -> Any:
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version.replace('2.latest', 'latest')}"}
    response = requests.request(method, url, json=body, headers=headers, timeout=60)
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:500]}")
    return response.json() if response.content else None


def _populate(token: str) -> dict[str, Any]:
    base = f"http://127.0.0.1:{SPEC['nova_port']}/v2.1"
    flavors = {}
    for existing in _api("GET", base + "/flavors", token)["flavors"]:  # nova's fixtures create m1.tiny .. m1.xlarge
        _api("DELETE", f"{base}/flavors/{existing['id']}", token)
    for flavor in SPEC["flavors"]:
        made = _api("POST", base + "/flavors", token, {"flavor": {
            "name": flavor["name"], "vcpus": flavor["vcpus"], "ram": flavor["ram"], "disk": flavor["disk"]}})
        flavors[flavor["name"]] = made["flavor"]["id"]
    groups = _create_groups(base, token)
    _create_aggregates(base, token)
    forced: list[str] = []
    # One boot at a time: nova's fixtures can deadlock when many servers build at once.
    for server in SPEC["servers"]:
        metadata = {"hostmap_migration_s": str(server.get("migration_s", DEFAULT_MIGRATION_S))}
        body: dict[str, Any] = {"server": {
            "name": server["name"], "flavorRef": flavors[server["flavor"]], "imageRef": IMAGE_ID,
            "networks": "none", "host": server["host"], "metadata": metadata}}
        if server.get("pinned_zone"):
            body["server"]["availability_zone"] = server["pinned_zone"]
        group = groups.get(server["name"])
        force = group is not None and not group.admits(server["host"])
        if group is not None:
            body["os:scheduler_hints"] = {"group": group.id}
        if force:
            del body["server"]["host"]
            body["server"]["availability_zone"] = f"{server.get('pinned_zone') or 'nova'}:{server['host']}"
            CONF.set_override("disable_group_policy_check_upcall", True, "workarounds")
            forced.append(server["name"])
        try:
            _boot(base, token, body, server)
        finally:
            if force:
                CONF.clear_override("disable_group_policy_check_upcall", "workarounds")
        if group is not None:
            group.hosts.append(server["host"])
    for host in SPEC["hosts"]:
        if not host.get("enabled", True):
            _api("PUT", base + "/os-services/" + _service_id(base, token, host["name"]), token,
                 {"status": "disabled", "disabled_reason": host.get("disabled_reason") or "maintenance"})
    return {"forced": forced}


def _sync_instance_info_every(computes: dict[str, Any], seconds: float) -> None:
    """Run each compute's periodic task `_sync_scheduler_instance_info` every `seconds` from now, in a thread."""
    # The periodic task runner is off in nova's fixtures (and the task's spacing is fixed when nova.compute.manager
    # is imported), so this thread stands in for it; the task itself is nova's.
    admin = nova_context.get_admin_context()
    started = time.monotonic()

    def run() -> None:
        tick = 0
        while True:
            tick += 1
            time.sleep(max(started + tick * seconds - time.monotonic(), 0.0))
            for name, compute in list(computes.items()):
                try:
                    compute.manager._sync_scheduler_instance_info(admin)
                except Exception:
                    log.exception("instance sync of %s failed", name)

    threading.Thread(target=run, daemon=True, name="instance-sync").start()


class _Group:
    """A server group as created, and the hosts of its members booted so far."""

    def __init__(self, gid: str, policy: str, max_per_host: int) -> None:
        self.id, self.policy, self.max_per_host = gid, policy, max_per_host
        self.hosts: list[str] = []

    def admits(self, host: str) -> bool:
        """Whether the scheduler's group filters pass `host` for the next member (as at boot)."""
        if self.policy == "anti-affinity":
            return self.hosts.count(host) < self.max_per_host
        if self.policy == "affinity":
            return not self.hosts or host in self.hosts
        return True


def _create_groups(base: str, token: str) -> dict[str, _Group]:
    """POST /os-server-groups (2.64: policy and rules) for each group; server name -> its group."""
    by_member: dict[str, _Group] = {}
    for spec in SPEC.get("server_groups", []):
        body: dict[str, Any] = {"name": spec["name"], "policy": spec["policy"]}
        if spec.get("rules"):
            body["rules"] = spec["rules"]
        made = _api("POST", base + "/os-server-groups", token, {"server_group": body}, version="2.64")
        group = _Group(made["server_group"]["id"], spec["policy"],
                       int((spec.get("rules") or {}).get("max_server_per_host", 1)))
        by_member.update(dict.fromkeys(spec["members"], group))
    return by_member


def _create_aggregates(base: str, token: str) -> None:
    """POST /os-aggregates (with its availability zone) and add_host for each aggregate of the spec."""
    for spec in SPEC.get("aggregates", []):
        body: dict[str, Any] = {"name": spec["name"]}
        if spec.get("availability_zone"):
            body["availability_zone"] = spec["availability_zone"]
        made = _api("POST", base + "/os-aggregates", token, {"aggregate": body})["aggregate"]
        for host in spec["hosts"]:
            _api("POST", f"{base}/os-aggregates/{made['id']}/action", token, {"add_host": {"host": host}})


def _boot(base: str, token: str, body: dict[str, Any], server: dict[str, Any]) -> None:
    sid = _api("POST", base + "/servers", token, body)["server"]["id"]
    _wait_status(base, token, sid, server, "ACTIVE")
    if server.get("status", "ACTIVE") == "SHUTOFF":
        _api("POST", f"{base}/servers/{sid}/action", token, {"os-stop": None})
        _wait_status(base, token, sid, server, "SHUTOFF")


def _wait_status(base: str, token: str, sid: str, server: dict[str, Any], wanted: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        found = _api("GET", f"{base}/servers/{sid}", token)["server"]
        if found["status"] == wanted and found.get("OS-EXT-STS:task_state") is None:
            return
        if found["status"] == "ERROR" or time.monotonic() > deadline:
            raise RuntimeError(f"server {server['name']} did not become {wanted} on {server['host']}: "
                               f"{found['status']}")
        time.sleep(0.05)


def _service_id(base: str, token: str, host: str) -> str:
    services = _api("GET", f"{base}/os-services?binary=nova-compute&host={host}", token)["services"]
    return str(services[0]["id"])


def _token() -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": SPEC["password"], "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    response = requests.post(SPEC["keystone_url"] + "/auth/tokens", json=body, timeout=30)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def main() -> None:
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    SPEC.update(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
    HOSTS.update({host["name"]: host for host in SPEC["hosts"]})
    work = Path(SPEC["workdir"])
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    sys.argv[1:] = []
    _per_compute_live_migration_pool()
    cloud = Cloud("runTest")
    cloud.setUp()
    handler = logging.FileHandler(work / "nova.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    _configure_authtoken()
    _serve(_recorded(nova_wsgi.Loader().load_app("osapi_compute"), "compute"), SPEC["nova_port"])
    _serve(_recorded(_placement_app(cloud.placement_fixture), "placement"), SPEC["placement_port"])
    populated = _populate(_token())
    if SPEC.get("instance_sync_s"):
        _sync_instance_info_every(cloud.computes, float(SPEC["instance_sync_s"]))
    print("READY " + json.dumps({"seconds": round(time.monotonic() - started, 2), **populated}), flush=True)
    sys.stdin.read()  # the harness holds our stdin open: its end (the test run died) ends us too
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        import traceback

        with open(os.path.join(os.environ.get("HOSTMAP_REALNOVA_ERR", "/dev/stderr")), "a") as err:
            traceback.print_exc(file=err)
        os._exit(1)
