"""The openstacksdk edge: SDK objects become hostmap's dataclasses here and nowhere else."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, ParamSpec, TypeVar

import keystoneauth1.exceptions as ksa_exc
import openstack
import openstack.config
import openstack.connection
import openstack.exceptions as sdk_exc

from hostmap.capture import FlavorRecord, GroupRecord, HostRecord, InventoryRecord, ServerRecord, Snapshot
from hostmap.cloud.base import (
    ActionRecord,
    ColdMigrationUnsupported,
    IdentityUnavailable,
    MigrationRecord,
    MigrationRefused,
    ServerStatus,
    Submission,
)
from hostmap.errors import CloudConfigError, CloudError, MissingCredentials, UnknownCloud
from hostmap.model import Host, Inventory, Resources, Server, ServerGroup, ZoneAggregate
from hostmap.wording import counted

log = logging.getLogger("hostmap.api")

#: Highest compute microversion hostmap knows the behaviour of; the cloud's own maximum may be lower.
CLIENT_MAX_MICROVERSION = (2, 96)
#: The lowest microversion at which `host` may be given without `force` (so the scheduler checks it).
MIN_MICROVERSION = (2, 30)
#: From this microversion compute services are addressed by UUID (PUT os-services/{id}).
SERVICE_MICROVERSION = (2, 53)
#: From this microversion the `migrate` action takes a host (a cold migration to a chosen host).
COLD_MICROVERSION = (2, 56)
#: From this microversion os-migrations takes changes-since, so one request watches every migration.
WATCH_MICROVERSION = (2, 59)
#: From this microversion a server shows `pinned_availability_zone`, the zone its request spec keeps it in.
PINNED_ZONE_MICROVERSION = (2, 96)

#: The sizes of a flavor embedded in a server (2.47+).
_FLAVOR_FIELDS = ("original_name", "vcpus", "ram", "disk", "ephemeral", "swap")
#: At most this many pages of one listing (nova's pages hold up to 1,000 items).
MAX_PAGES = 1000

#: Reads are retried on connection failures and these answers, with keystoneauth's exponential backoff.
READ_RETRIES = 4
#: How many placement inventories `snapshot` reads at once.
_INVENTORY_READERS = 8
#: A bound on the pages of servers `snapshot` reads (nova pages by 1,000 at most: ten million servers).
_MAX_SERVER_PAGES = 10_000
RETRIABLE_STATUS_CODES = (500, 502, 503, 504)
#: Seconds one HTTP request may take; past it the request fails (and a read is retried) instead of hanging.
API_TIMEOUT_S = 120
_RETRY_SETTINGS: dict[str, Any] = {
    "api_timeout": API_TIMEOUT_S,
    "connect_retries": READ_RETRIES,
    "status_code_retries": READ_RETRIES,
    "retriable_status_codes": list(RETRIABLE_STATUS_CODES),
}

#: keystoneauth's first retry delay, doubled at each retry (its exponential backoff, which nova's reads get).
FIRST_RETRY_DELAY_S = 0.5

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach a cloud: a clouds.yaml entry or the OS_* variables, and TLS settings."""

    cloud: str | None = None
    insecure: bool = False
    cacert: str | None = None
    #: The other openstacksdk options given (`SdkOptions.given`: os_auth_url, os_password, os_region_name, ...).
    given: Mapping[str, Any] = field(default_factory=dict)
    #: Asks for a missing secret (the password) on a terminal; None where there is none: then it is an error.
    ask: Callable[..., str] | None = None


def tls_unverified(options: ConnectOptions) -> str | None:
    """Where certificate verification is turned off for this cloud, if it is: `--insecure`, `OS_INSECURE`, or
    `verify: false` / `insecure: true` in clouds.yaml; None when it is on (or the configuration cannot be read,
    which connecting then reports). Reads the configuration only; contacts nothing."""
    if options.insecure:
        return "--insecure"
    try:
        region = openstack.config.OpenStackConfig().get_one(cloud=options.cloud, validate=False)
        verify, _ = region.get_requests_verify_args()
    except Exception:  # any configuration problem is reported by connect(), in its own words
        return None
    if verify is not False:
        return None
    if os.environ.get("OS_INSECURE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "OS_INSECURE"
    return f"clouds.yaml (cloud {region.name}: verify: false or insecure: true)"


class KeystoneUnavailable(ksa_exc.ClientException):
    """Keystone (discovery or a token request) failed every retry; raised inside keystoneauth, so no request went."""


def _cloud_error(action: str, exc: BaseException) -> CloudError:
    """The CloudError for an SDK or keystoneauth exception; keystone's own outage is an IdentityUnavailable."""
    if isinstance(exc, KeystoneUnavailable):
        return IdentityUnavailable(action, str(exc))
    return CloudError(action, _describe(exc), _status_of(exc))


def _retrying_keystone(conn: Any, fixed_delay: float | None) -> None:
    """Retry keystone as nova's reads are retried: version discovery, token issue and renewal (all of which the auth
    plugin's `get_auth_ref` does), on connection failures and 5xx, READ_RETRIES times with the same backoff."""
    plugin = conn.config.get_auth()
    inner = getattr(plugin, "get_auth_ref", None)
    if inner is None:
        return
    where = (getattr(plugin, "auth_url", None) or "").rstrip("/")

    def get_auth_ref(session: Any, **kwargs: Any) -> Any:
        delay = fixed_delay or FIRST_RETRY_DELAY_S
        waited = 0.0
        for attempt in range(READ_RETRIES + 1):
            try:
                return inner(session, **kwargs)
            except ksa_exc.HttpError as exc:
                if _status_of(exc) not in RETRIABLE_STATUS_CODES:
                    raise
                last: BaseException = exc
            except (ksa_exc.ConnectionError, ksa_exc.DiscoveryFailure) as exc:
                if isinstance(exc, ksa_exc.SSLError):
                    raise
                last = exc
            if attempt == READ_RETRIES:
                break
            log.warning("keystone %s: %s; retrying in %.1f s", where, _describe(last), delay)
            time.sleep(delay)
            waited += delay
            delay = delay if fixed_delay else min(delay * 2, 60.0)
        raise KeystoneUnavailable(f"keystone ({where}) did not answer after {READ_RETRIES + 1} attempts over "
                                  f"{waited:.1f} s: {_describe(last)}")

    plugin.get_auth_ref = get_auth_ref


def _identity_endpoint(catalog: Any, region: str) -> str | None:
    """Keystone's endpoint in the token's catalog: the public one first (whichever interface this client uses, so
    that the key does not depend on it), in the region if one is configured."""
    for interface in ("public", "internal", "admin"):
        try:
            url = catalog.url_for(service_type="identity", interface=interface, region_name=region or None)
        except ksa_exc.EndpointNotFound:
            continue
        if url:
            return str(url)
    return None


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    return status if isinstance(status, int) else None


def _edge(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn SDK and keystoneauth exceptions raised while doing `action` into CloudError."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except (sdk_exc.SDKException, ksa_exc.ClientException) as exc:
                error = _cloud_error(action, exc)
                log.warning("%s failed: %s", action, error.problem)
                raise error from None

        return inner

    return wrap


#: What urllib3's words for a failed connection mean, in the order they are looked for.
_CONNECTION_CAUSES = (
    (("NameResolutionError", "Name or service not known", "nodename nor servname", "name resolution",
      "getaddrinfo failed"), "its host name does not resolve"),
    (("Connection refused",), "the connection was refused (nothing listens on that port)"),
    (("No route to host", "Network is unreachable"), "there is no route to it from this machine"),
    (("timed out", "Timeout"), "it did not answer in time"),
    (("Connection reset", "RemoteDisconnected", "Connection aborted"), "it closed the connection"),
)
_UNREACHABLE = re.compile(r"Unable to establish connection to (?P<url>[^\s:]+://[^\s]+?):? ")


def _connection_words(text: str) -> str | None:
    """A failed connection said plainly: which URL, what happened, what to check; None when `text` is no such."""
    found = _UNREACHABLE.search(text)
    if found is None:
        return None
    url = found.group("url").rstrip(":")
    cause = next((words for needles, words in _CONNECTION_CAUSES if any(n in text for n in needles)),
                 "the connection failed")
    return (f"{url} cannot be reached: {cause}; check the URL (OS_AUTH_URL or the auth_url of clouds.yaml for "
            "keystone, keystone's catalog for the others), that the service runs, and that this machine can reach "
            "it (VPN, proxy, firewall)")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ksa_exc.Unauthorized):
        return "authentication failed: the user name, password or project was refused"
    if not isinstance(exc, ksa_exc.SSLError) and (words := _connection_words(str(exc))) is not None:
        return words
    if isinstance(exc, ksa_exc.ConnectFailure):
        return f"cannot connect: {exc}"
    if isinstance(exc, ksa_exc.SSLError):
        return f"TLS verification failed: {exc} (give the CA with --os-cacert)"
    if isinstance(exc, sdk_exc.HttpException):
        details = exc.details or exc.message
        return f"HTTP {exc.status_code}: {details}"
    return str(exc) or type(exc).__name__


def _asked_microversion(text: object) -> tuple[int, int] | None:
    """The highest compute microversion the operator allows ("2.60"); None for a bare major version ("2")."""
    major, _, minor = str(text or "").partition(".")
    if not (major.isdigit() and minor.isdigit()):
        return None
    return int(major), int(minor)


def _version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def connect(options: ConnectOptions, env: Mapping[str, str] | None = None) -> OpenStackCloud:
    """Connect as the openstack client does: clouds.yaml (`--os-cloud`/OS_CLOUD), the OS_* variables and the `--os-*`
    options over them; TLS verified unless told not to; a missing password asked for through `options.ask`."""
    env = os.environ if env is None else env
    try:
        config = openstack.config.OpenStackConfig(pw_func=options.ask, app_name="hostmap")
        # openstacksdk names the OS_* variables "envvars", and with no clouds.yaml at all offers "defaults".
        ignored = {"envvars"} if config.config_filename else {"envvars", "defaults"}
        names = sorted(n for n in config.get_cloud_names() if n not in ignored)
    except sdk_exc.ConfigException as exc:
        raise CloudConfigError(f"clouds.yaml cannot be read: {exc}") from None
    cloud_name = options.cloud or env.get("OS_CLOUD")
    if cloud_name and cloud_name not in names:
        raise UnknownCloud(cloud_name, names, config.config_filename)
    if not cloud_name and not env.get("OS_AUTH_URL") and not options.given.get("os_auth_url"):
        if len(names) == 1:
            cloud_name = names[0]
        elif names:
            raise CloudConfigError(f"clouds.yaml defines several clouds ({', '.join(names)}) and none was chosen")
        else:
            raise CloudConfigError("no cloud is configured")
    given = {k: v for k, v in options.given.items() if k != "os_cloud"}
    if options.insecure:
        given["insecure"] = True
    if options.cacert:
        given["os_cacert"] = options.cacert
    parsed = argparse.Namespace(**given)

    def missing(names: Sequence[str], settings: Mapping[str, Any] | None = None) -> MissingCredentials:
        if settings is None:
            settings = config.get_one(cloud=cloud_name, argparse=parsed, validate=False).config
        known = {**settings, **(settings.get("auth") or {})}
        return MissingCredentials(tuple(f"--os-{n.replace('_', '-')}" for n in names),
                                  known.get("username") or known.get("user_id"), known.get("auth_url"), cloud_name)

    try:
        region = config.get_one(cloud=cloud_name, argparse=parsed, **_RETRY_SETTINGS)
    except ksa_exc.MissingRequiredOptions as exc:
        raise missing([o.name for o in exc.options]) from None
    except (sdk_exc.SDKException, ksa_exc.ClientException) as exc:
        raise CloudConfigError(_describe(exc)) from None
    # The generic password plugin does not require its password: without one, keystoneauth would fail at the first
    # request ("password is a required attribute"). An option it would prompt for is missing now, or never.
    unasked = _unanswered_prompts(region.config)
    if unasked:
        raise missing(unasked, region.config)
    conn = openstack.connection.Connection(config=region)
    _retrying_keystone(conn, None)
    return OpenStackCloud(conn)


def adopt(conn: Any, *, assume_unpinned: bool = False) -> OpenStackCloud:
    """Another client's connection (the openstack command's: its authentication, clouds.yaml and TLS as they are)
    with hostmap's retries and request timeout, as `connect` gives its own.

    The retry settings apply to the service proxies made from here on; a service-prefixed setting of the user's
    (`compute_status_code_retries` in clouds.yaml) still wins, as it does for `hostmap`.
    """
    config = conn.config.config
    for key, value in _RETRY_SETTINGS.items():
        if key != "api_timeout":
            config[key] = value
    session = conn.session
    if getattr(session, "timeout", None) is None:  # the openstack client leaves it unset
        session.timeout = API_TIMEOUT_S
    _retrying_keystone(conn, None)
    return OpenStackCloud(conn, assume_unpinned=assume_unpinned)


def connection_unverified(conn: Any, insecure_option: bool) -> str | None:
    """Where certificate verification is off for a connection another client made, if it is (as `tls_unverified`
    says it for hostmap's own options): the client's `--insecure`, `OS_INSECURE`, or its clouds.yaml entry."""
    verify, _ = conn.config.get_requests_verify_args()
    if verify is not False:
        return None
    if insecure_option:
        return "--insecure"
    if os.environ.get("OS_INSECURE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "OS_INSECURE"
    return f"clouds.yaml (cloud {conn.config.name}: verify: false or insecure: true)"


def _unanswered_prompts(config: Mapping[str, Any]) -> list[str]:
    """The options of the cloud's auth plugin that keystoneauth asks for at a prompt (the password) and that have no
    value."""
    from keystoneauth1 import loading

    try:
        options = loading.get_plugin_loader(config.get("auth_type") or "password").get_options()
    except ksa_exc.NoMatchingPlugin:
        return []
    auth = config.get("auth") or {}
    return [o.name for o in options if getattr(o, "prompt", None) and not auth.get(o.dest)]


@dataclass(frozen=True)
class SdkOptions:
    """The options openstacksdk registered on a parser: their destinations and the defaults that no one gave."""

    dests: tuple[str, ...]
    defaults: Mapping[str, Any]

    def given(self, args: argparse.Namespace, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The values of these options in `args` that someone gave, on the command line or in an OS_* variable: a
        parser default (`--os-interface public`, `--insecure` off) must not override what clouds.yaml says."""
        env = os.environ if env is None else env
        out: dict[str, Any] = {}
        for dest in self.dests:
            value = getattr(args, dest, None)
            if value is None or value == "":
                continue
            if dest in self.defaults and value == self.defaults[dest] and not env.get(dest.upper()):
                continue
            out[dest] = value
        return out


def sdk_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, SdkOptions]:
    """openstacksdk's own options as the openstack client has them, in a parser to use as a parent: `--os-cloud`, the
    auth plugin's (`--os-auth-url`, `--os-username`, `--os-password`, ... for the auth type `argv`, clouds.yaml or
    OS_AUTH_TYPE chose), the session's (`--insecure`, `--os-cacert`, ...) and the compute service's
    (`--os-region-name`, `--os-interface`, `--os-compute-api-version`, ...). keystoneauth's `--timeout` (an HTTP
    timeout) is left out: hostmap's `--timeout` is a migration's, and API_TIMEOUT_S bounds each request."""

    def registered(config: openstack.config.OpenStackConfig, peek: list[str]) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(add_help=False)
        config.register_argparse_arguments(parser, peek, service_keys=["compute"])  # it rewrites `peek` (_ to -)
        return parser

    try:
        parser = registered(openstack.config.OpenStackConfig(), list(argv))
    except sdk_exc.ConfigException:
        # An unknown --os-cloud, or a clouds.yaml that cannot be read: the options are registered as for no cloud,
        # and connecting reports the problem in its own words.
        without = [a for i, a in enumerate(argv)
                   if not (a.startswith("--os-cloud") or (i > 0 and argv[i - 1] == "--os-cloud"))]
        try:
            parser = registered(openstack.config.OpenStackConfig(load_yaml_config=False, load_envvars=False), without)
        except sdk_exc.ConfigException as exc:  # an unknown --os-auth-type
            raise CloudConfigError(str(exc)) from None
    timeout = parser._option_string_actions.get("--timeout")
    if timeout is not None:
        parser._handle_conflict_resolve(timeout, [("--timeout", timeout)])
    actions = [a for a in parser._actions if a.option_strings]
    return parser, SdkOptions(tuple(a.dest for a in actions),
                              {a.dest: a.default for a in actions if a.default is not None})


def connect_with(kwargs: Mapping[str, Any]) -> OpenStackCloud:
    """Connect with explicit keyword arguments only (no clouds.yaml, no OS_* variables): for the simulated cloud."""
    conn = openstack.connect(load_envvars=False, load_yaml_config=False, **{**_RETRY_SETTINGS, **kwargs})
    _retrying_keystone(conn, kwargs.get("connect_retry_delay"))
    return OpenStackCloud(conn)


class OpenStackCloud:
    """hostmap's Cloud over openstacksdk: admin view of compute, placement and migrations."""

    def __init__(self, conn: Any, *, assume_unpinned: bool = False) -> None:
        self._conn = conn
        self._microversion: tuple[int, int] | None = None
        #: Below 2.96 (no `pinned_availability_zone`): take servers as unpinned instead of pinned where they are
        #: (`--assume-unpinned`).
        self.assume_unpinned = assume_unpinned
        self._identity: str | None = None

    def close(self) -> None:
        """Release the SDK connection's sessions."""
        self._conn.close()

    @property
    def identity(self) -> str:
        """Which cloud this is as keystone identifies it, for the run lock and the journal (no secret): the public
        identity endpoint of the token's catalog, the project id and the region, so that `localhost` and
        `127.0.0.1`, or an auth URL with a trailing slash, name the same cloud. Asked once (it authenticates)."""
        if self._identity is None:
            self._identity = self._keystone_identity()
        return self._identity

    @property
    def former_identities(self) -> tuple[str, ...]:
        """The key earlier versions of hostmap gave this cloud (the auth URL and project as spelled in the
        configuration): the run lock and the journal match it too, so that a run journaled under it is still resumed."""
        spelled = self._spelled_identity()
        return () if spelled == self.identity else (spelled,)

    def _spelled_identity(self) -> str:
        config = self._conn.config
        auth = config.auth or {}
        project = auth.get("project_name") or auth.get("project_id") or ""
        return f"{auth.get('auth_url', '')}|{project}|{config.region_name or ''}"

    @_edge("identify the cloud through keystone")
    def _keystone_identity(self) -> str:
        session = self._conn.session
        access = session.auth.get_access(session)
        region = self._conn.config.region_name or ""
        endpoint = _identity_endpoint(access.service_catalog, region)
        if endpoint is None:  # a catalog without keystone in it: the auth URL as configured is all there is
            endpoint = str((self._conn.config.auth or {}).get("auth_url", ""))
        return f"{endpoint.rstrip('/')}|{access.project_id or ''}|{region}"

    @property
    @_edge("negotiate the compute API microversion")
    def microversion(self) -> tuple[int, int]:
        """The highest compute microversion both hostmap and the cloud support."""
        if self._microversion is None:
            data = self._conn.compute.get_endpoint_data()
            raw_max = getattr(data, "max_microversion", None)
            cloud_max = (int(raw_max[0]), int(raw_max[1])) if raw_max else self._read_max_microversion()
            if cloud_max is None or cloud_max < MIN_MICROVERSION:
                found = "none" if cloud_max is None else _version_text(cloud_max)
                raise CloudError(
                    "negotiate the compute API microversion",
                    f"the cloud supports compute microversion {found}; hostmap needs at least 2.30 so that nova's "
                    "scheduler checks a requested host",
                )
            asked = _asked_microversion(self._conn.config.config.get("compute_api_version"))
            if asked is not None and asked < MIN_MICROVERSION:
                raise CloudError(
                    "negotiate the compute API microversion",
                    f"compute API version {_version_text(asked)} was asked for (--os-compute-api-version, "
                    "OS_COMPUTE_API_VERSION or clouds.yaml); hostmap needs at least 2.30 so that nova's scheduler "
                    "checks a requested host",
                )
            self._microversion = min(cloud_max, CLIENT_MAX_MICROVERSION, *([asked] if asked else []))
            log.info("compute API microversion %s", _version_text(self._microversion))
        return self._microversion

    def _read_max_microversion(self) -> tuple[int, int] | None:
        """nova's newest microversion from its version document, read as every read is (retried on 5xx and dropped
        connections): keystoneauth's own discovery gives up silently on one failure and reports no microversion at
        all, which would refuse a healthy cloud as too old. None when the document names none (a cloud without
        microversions); a CloudError when nova does not answer through the retries."""
        response = self._conn.compute.get("/", microversion=None)
        if response.status_code >= 400:
            raise CloudError("negotiate the compute API microversion",
                             f"nova's version document ({response.url}) answered HTTP {response.status_code}",
                             response.status_code)
        try:
            document = response.json()
        except ValueError:
            return None
        version = document.get("version") if isinstance(document, dict) else None
        text = version.get("version") if isinstance(version, dict) else None
        try:
            major, minor = str(text).split(".")
            return int(major), int(minor)
        except ValueError:
            return None

    @property
    def microversion_text(self) -> str:
        """The negotiated microversion as nova writes it."""
        return _version_text(self.microversion)

    @_edge("read the cloud's hosts, servers and capacity")
    def inventory(self) -> Inventory:
        """Read compute services, hypervisors, placement capacity and usage, servers and server groups."""
        compute = self._conn.compute
        _ = self.microversion  # a cloud too old to migrate safely is refused before anything is planned
        services = {s.host: s for s in compute.services(binary="nova-compute")}
        hosts: list[Host] = []
        providers = {rp.name: rp for rp in self._conn.placement.resource_providers()}
        for hyp in compute.hypervisors(details=True):
            service_host = (hyp.service_details or {}).get("host")
            if not service_host:
                continue
            service = services.get(service_host)
            provider = providers.get(hyp.name)
            capacity, used = self._provider_figures(provider) if provider is not None else (Resources(), Resources())
            hosts.append(Host(
                name=service_host,
                hypervisor_hostname=hyp.name,
                enabled=service is not None and service.status == "enabled",
                up=service is not None and service.state == "up",
                capacity=capacity,
                used=used,
                disabled_reason=getattr(service, "disabled_reason", None),
                zone=_zone_of(service),
                heartbeat_s=_epoch_s(getattr(service, "updated_at", None)),
            ))
        flavors: dict[str, Any] = {}
        pins_visible = self.microversion >= PINNED_ZONE_MICROVERSION
        # As JSON rather than the SDK's resources, which cost milliseconds each: 10,000 servers took most of a minute.
        servers = tuple(
            self._server_of(item, flavors, pins_visible)
            for item in self._pages("/servers/detail", {"all_tenants": "True"}, "servers", "list servers")
        )
        groups = tuple(self._group(g) for g in compute.server_groups(all_projects=True))
        log.info("read %s, %s, %s", counted(len(hosts), "compute host"), counted(len(servers), "server"),
                 counted(len(groups), "server group"))
        return Inventory(tuple(sorted(hosts, key=lambda h: h.name)), servers, groups,
                         zone_aggregates=self._zone_aggregates())

    def _zone_aggregates(self) -> tuple[ZoneAggregate, ...] | None:
        """The host aggregates whose metadata names an availability zone (GET /os-aggregates); None when nova
        does not show them (a policy that refuses it), so that pins are read the safe way."""
        response = self._conn.compute.get("/os-aggregates", microversion=self.microversion_text, raise_exc=False)
        if response.status_code != 200:
            log.warning("os-aggregates not readable (HTTP %s): a pinned server is kept on hosts showing its zone",
                        response.status_code)
            return None
        found: list[ZoneAggregate] = []
        for raw in response.json().get("aggregates") or []:
            zone = raw.get("availability_zone") or (raw.get("metadata") or {}).get("availability_zone")
            if isinstance(zone, str) and zone:
                found.append(ZoneAggregate(zone, frozenset(h for h in raw.get("hosts") or [] if isinstance(h, str))))
        return tuple(found)

    @_edge("capture the cloud's hosts, flavors, servers and server groups")
    def snapshot(self) -> Snapshot:
        """Read (GET only, every list paged) what a scenario of this cloud needs: `hostmap sim capture`."""
        compute, placement = self._conn.compute, self._conn.placement
        version = self.microversion
        services = {s.host: s for s in compute.services(binary="nova-compute")}
        providers = {rp.name: rp for rp in placement.resource_providers()}
        hypervisors = [h for h in compute.hypervisors(details=True) if (h.service_details or {}).get("host")]

        def inventories_of(hypervisor_name: str) -> tuple[InventoryRecord, ...]:
            provider = providers.get(hypervisor_name)
            return tuple(
                InventoryRecord(inv.resource_class, int(inv.total), int(inv.reserved or 0),
                                float(inv.allocation_ratio or 1.0))
                for inv in (placement.resource_provider_inventories(provider) if provider is not None else ())
            )

        # Placement has no call for many providers' inventories (GET /resource_providers/{uuid}/inventories is
        # per provider), so they are read a few at a time; keystoneauth's session is shared by threads (its auth
        # plugin locks the token renewal) as openstacksdk's own pool executor shares it.
        with ThreadPoolExecutor(max_workers=_INVENTORY_READERS, thread_name_prefix="hostmap-capture") as pool:
            inventories = list(pool.map(inventories_of, [h.name for h in hypervisors]))
        hosts: list[HostRecord] = []
        for hyp, inventory in zip(hypervisors, inventories, strict=True):
            name = hyp.service_details["host"]
            service = services.get(name)
            hosts.append(HostRecord(
                name=name, hypervisor_hostname=hyp.name, inventories=inventory,
                enabled=service is not None and service.status == "enabled",
                up=service is not None and service.state == "up",
                disabled_reason=getattr(service, "disabled_reason", None) or None, zone=_zone_of(service),
            ))
        flavors = tuple(
            FlavorRecord(str(f.id), f.name, int(f.vcpus or 0), int(f.ram or 0), int(f.disk or 0))
            for f in compute.flavors(details=True)
        )
        by_id = {f.id: f for f in flavors}
        pins_visible = version >= PINNED_ZONE_MICROVERSION
        servers = [_server_record(raw, by_id, pins_visible) for raw in self._server_bodies()]
        groups: list[GroupRecord] = []
        for raw in compute.server_groups(all_projects=True):
            group = self._group(raw)
            rules = raw.rules if isinstance(raw.rules, dict) else {}
            groups.append(GroupRecord(group.id, group.name, group.policy,
                                      group.max_per_host if rules.get("max_server_per_host") else None,
                                      group.members, raw.project_id or ""))
        config = self._conn.config
        auth = config.auth or {}
        log.info("captured %s, %s, %s, %s", counted(len(hosts), "compute host"), counted(len(flavors), "flavor"),
                 counted(len(servers), "server"), counted(len(groups), "server group"))
        return Snapshot(
            hosts=tuple(sorted(hosts, key=lambda h: h.name)), flavors=flavors, servers=tuple(servers),
            groups=tuple(groups), auth_url=str(auth.get("auth_url", "")), region=config.region_name or "",
            project=str(auth.get("project_name") or auth.get("project_id") or ""),
            captured_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), microversion=_version_text(version),
        )

    def _server_bodies(self) -> Iterator[Mapping[str, Any]]:
        """Every server of every project as nova's JSON, page by page (nova's limit and marker).

        Read as JSON, not as openstacksdk's Server objects: building those costs milliseconds a server, over a
        minute for 10,000 of them, where the pages themselves take a second.
        """
        action = "list the servers of every project"
        marker: str | None = None
        for _ in range(_MAX_SERVER_PAGES):
            params = {"all_tenants": "True", **({"marker": marker} if marker else {})}
            try:
                response = self._conn.compute.get("/servers/detail", params=params,
                                                  microversion=self.microversion_text, raise_exc=False)
            except ksa_exc.ClientException as exc:
                raise _cloud_error(action, exc) from None
            if response.status_code != 200:
                raise CloudError(action, f"HTTP {response.status_code}: {_error_message(response)}",
                                 response.status_code)
            body = response.json()
            page = [s for s in body.get("servers") or [] if isinstance(s, dict)]
            yield from page
            more = any(isinstance(link, dict) and link.get("rel") == "next" for link in body.get("servers_links") or [])
            if not page or not more:
                return
            marker = str(page[-1].get("id"))
        raise CloudError(action, f"nova still had more servers after {_MAX_SERVER_PAGES} pages")

    def _provider_figures(self, provider: Any) -> tuple[Resources, Resources]:
        placement = self._conn.placement
        capacity: dict[str, int] = {}
        for inv in placement.resource_provider_inventories(provider):
            capacity[inv.resource_class] = int((inv.total - inv.reserved) * inv.allocation_ratio)
        usages = placement.fetch_resource_provider_usages(provider).usages or {}
        return _resources(capacity), _resources(usages)

    def _flavor_of(self, raw: Any, cache: dict[str, Any]) -> Any:
        """The server's flavor with its sizes: embedded from 2.47, looked up by id (once per flavor) before."""
        flavor = raw.flavor
        if flavor is not None and getattr(flavor, "original_name", None):
            return flavor  # from 2.47 the sizes are embedded (the SDK reports 0, not None, when they are not)
        flavor_id = getattr(flavor, "id", None)
        if not flavor_id:
            raise CloudError("read the cloud's hosts, servers and capacity",
                             f"server {raw.id} reports no flavor, so its size is unknown")
        if flavor_id not in cache:
            try:
                cache[flavor_id] = self._conn.compute.get_flavor(flavor_id)
            except sdk_exc.NotFoundException:
                raise CloudError("read the cloud's hosts, servers and capacity",
                                 f"flavor {flavor_id} of server {raw.id} no longer exists, so its size is unknown; "
                                 "hostmap cannot check capacity for it") from None
        return cache[flavor_id]

    def _server_of(self, item: Mapping[str, Any], flavors: dict[str, Any], pins_visible: bool) -> Server:
        """A server from nova's JSON, as `_server` makes one from an SDK resource."""
        embedded = item.get("flavor")
        flavor: Any
        if isinstance(embedded, dict) and embedded.get("original_name"):
            flavor = SimpleNamespace(**{k: embedded.get(k) for k in _FLAVOR_FIELDS})
        else:
            flavor_id = embedded.get("id") if isinstance(embedded, dict) else None
            flavor = self._flavor_of(SimpleNamespace(id=item.get("id"), flavor=SimpleNamespace(id=flavor_id)), flavors)
        image = item.get("image")
        fields = SimpleNamespace(
            id=item.get("id"), name=item.get("name"), compute_host=item.get("OS-EXT-SRV-ATTR:host"),
            status=item.get("status"), task_state=item.get("OS-EXT-STS:task_state"), project_id=item.get("tenant_id"),
            image=SimpleNamespace(id=image.get("id")) if isinstance(image, dict) else None,
            pinned_availability_zone=item.get("pinned_availability_zone"),
            availability_zone=item.get("OS-EXT-AZ:availability_zone"),
        )
        return self._server(fields, flavors, pins_visible, flavor=flavor)

    def _server(self, raw: Any, flavors: dict[str, Any], pins_visible: bool, flavor: Any = None) -> Server:
        flavor = flavor if flavor is not None else self._flavor_of(raw, flavors)
        swap = getattr(flavor, "swap", 0) or 0
        volume_backed = not raw.image or not getattr(raw.image, "id", None)
        disk = (0 if volume_backed else int(flavor.disk or 0)) + int(getattr(flavor, "ephemeral", 0) or 0)
        disk += -(-int(swap) // 1024) if isinstance(swap, int) else 0
        return Server(
            id=raw.id,
            name=raw.name,
            host=raw.compute_host,
            status=raw.status,
            task_state=raw.task_state,
            flavor=str(getattr(flavor, "original_name", None) or getattr(flavor, "name", None) or flavor.id),
            demand=Resources(int(flavor.vcpus or 0), int(flavor.ram or 0), disk),
            project_id=raw.project_id or "",
            **_pin_of(raw, pins_visible, assume_unpinned=self.assume_unpinned),
        )

    @staticmethod
    def _group(raw: Any) -> ServerGroup:
        policy = raw.policy or (raw.policies[0] if raw.policies else "")
        rules = raw.rules if isinstance(raw.rules, dict) else {}
        try:
            limit = max(1, int(rules.get("max_server_per_host") or 1))
        except (TypeError, ValueError):
            limit = 1
        return ServerGroup(raw.id, raw.name, policy, tuple(raw.member_ids or ()), limit)

    @_edge("list a server's live migrations")
    def live_migrations(self, server_id: str) -> Sequence[MigrationRecord]:
        """Every live-migration record of one server, newest first."""
        found = self._migration_items({"instance_uuid": server_id, "migration_type": "live-migration"})
        return sorted((_migration_of(m) for m in found), key=lambda m: m.id, reverse=True)

    def _migration_items(self, params: Mapping[str, str]) -> Iterator[Mapping[str, Any]]:
        """os-migrations as JSON, every page.

        Not through the SDK's Migration resources: building one costs milliseconds, and a watch round reads one per
        migration nova changed recently, hundreds of them at full scale."""
        return self._pages("/os-migrations", params, "migrations", "list migrations")

    def _pages(self, path: str, params: Mapping[str, str], key: str, action: str) -> Iterator[Mapping[str, Any]]:
        """A compute listing as JSON, every page (followed through `{key}_links`), read as every read is (retried)."""
        version = self.microversion_text
        url: str | None = path
        query: Mapping[str, str] | None = params
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._conn.compute.get(url, params=query, microversion=version, raise_exc=False)
            if response.status_code >= 400:
                raise CloudError(action, f"HTTP {response.status_code}: {_error_message(response)}",
                                 response.status_code)
            body = response.json()
            items = body.get(key) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise CloudError(action, f"nova's answer has no list of {key}")
            yield from (item for item in items if isinstance(item, dict))
            links = body.get(f"{key}_links") or []
            url = next((str(link["href"]) for link in links if isinstance(link, dict) and link.get("rel") == "next"
                        and link.get("href")), None)
            query = None  # the next link carries the query and the marker
        raise CloudError(action, f"more than {MAX_PAGES} pages of {key}")

    def start_live_migration(self, server_id: str, target: str) -> Submission:
        """POST os-migrateLive with `host`, block_migration auto and no force, at the negotiated microversion."""
        body = {"os-migrateLive": {"host": target, "block_migration": "auto"}}
        return self._post_move(server_id, target, body, "live-migrate")

    @_edge("list a server's cold migrations")
    def cold_migrations(self, server_id: str) -> Sequence[MigrationRecord]:
        """Every cold-migration record of one server, newest first."""
        found = self._migration_items({"instance_uuid": server_id, "migration_type": "migration"})
        return sorted((_migration_of(m) for m in found), key=lambda m: m.id, reverse=True)

    def start_cold_migration(self, server_id: str, target: str) -> Submission:
        """POST migrate with `host` at the negotiated microversion; refused here below 2.56 (nova ignores a host
        there and the scheduler would choose)."""
        if self.microversion < COLD_MICROVERSION:
            raise ColdMigrationUnsupported(server_id, self.microversion_text, _version_text(COLD_MICROVERSION))
        return self._post_move(server_id, target, {"migrate": {"host": target}}, "cold-migrate")

    def confirm_resize(self, server_id: str) -> None:
        """POST confirmResize (204)."""
        self._post_resize_action(server_id, "confirmResize", "confirm the cold migration of")

    def _post_resize_action(self, server_id: str, name: str, what: str) -> None:
        action = f"{what} server {server_id}"
        log.info("POST %s server %s", name, server_id)
        try:
            response = self._conn.compute.post(
                f"/servers/{server_id}/action", json={name: None}, microversion=self.microversion_text,
                raise_exc=False,
            )
        except ksa_exc.ClientException as exc:
            raise _cloud_error(action, exc) from None
        if response.status_code not in (202, 204):
            reason = _error_message(response)
            log.warning("%s refused: HTTP %s %s", name, response.status_code, reason)
            raise CloudError(action, f"HTTP {response.status_code}: {reason}", response.status_code)

    def _post_move(self, server_id: str, target: str, body: Mapping[str, Any], verb: str) -> Submission:
        version = self.microversion_text
        log.info("POST %s server %s to %s (microversion %s)", verb, server_id, target, version)
        try:
            # Never retried blindly: after an ambiguous failure the executor looks for the migration first.
            response = self._conn.compute.post(
                f"/servers/{server_id}/action", json=body, microversion=version, raise_exc=False,
                connect_retries=0, status_code_retries=0,
            )
        except ksa_exc.ClientException as exc:
            log.warning("%s server %s: %s", verb, server_id, _describe(exc))
            raise _cloud_error(f"{verb} server {server_id}", exc) from None
        request_id = response.headers.get("x-openstack-request-id") or response.headers.get("x-compute-request-id")
        if response.status_code == 202:
            log.info("%s server %s accepted (request %s)", verb, server_id, request_id)
            return Submission(server_id, target, request_id, version)
        reason = _error_message(response)
        log.warning("%s server %s refused: HTTP %s %s", verb, server_id, response.status_code, reason)
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403):
            raise MigrationRefused(server_id, target, response.status_code, reason)
        raise CloudError(f"{verb} server {server_id}", f"HTTP {response.status_code}: {reason}",
                         response.status_code)

    @_edge("watch live migrations")
    def watch(self, servers: Collection[str], since: str) -> Sequence[MigrationRecord]:
        """One os-migrations query (live migrations changed since `since`) from 2.59, else one per server."""
        wanted = set(servers)
        if self.microversion >= WATCH_MICROVERSION:
            query: dict[str, str] = {"migration_type": "live-migration"}
            if since:
                query["changes-since"] = since
            return [record for record in map(_migration_of, self._migration_items(query))
                    if record.server_id in wanted]
        return [_migration(raw) for sid in sorted(wanted)
                for raw in self._conn.compute.migrations(server_id=sid, migration_type="live-migration")]

    def migration_progress(self, server_id: str, migration_id: int) -> MigrationRecord | None:
        """Bytes copied so far for an in-progress migration; None once nova no longer lists it as in progress."""
        # JSON rather than the SDK's resource (milliseconds each): read every round for every copying migration.
        try:
            item = self._json_get(f"/servers/{server_id}/migrations/{migration_id}", "migration",
                                  "read migration progress")
        except CloudError as error:
            if error.status == 404:
                return None
            raise
        record = _migration_of({**item, "instance_uuid": server_id})
        return replace(record, memory_total_bytes=item.get("memory_total_bytes"),
                       memory_processed_bytes=item.get("memory_processed_bytes"),
                       memory_remaining_bytes=item.get("memory_remaining_bytes"))

    def server_status(self, server_id: str) -> ServerStatus:
        """Fresh host, status and task state of one server."""
        item = self._json_get(f"/servers/{server_id}", "server", "read a server")
        host, task = item.get("OS-EXT-SRV-ATTR:host"), item.get("OS-EXT-STS:task_state")
        return ServerStatus(str(item.get("id") or server_id), str(host) if host else None,
                            str(item.get("status") or ""), str(task) if task else None)

    def _json_get(self, path: str, key: str, action: str) -> Mapping[str, Any]:
        """GET one compute document at the negotiated microversion (retried as every read), its `key` object."""
        version = self.microversion_text
        try:
            response = self._conn.compute.get(path, microversion=version, raise_exc=False)
        except (sdk_exc.SDKException, ksa_exc.ClientException) as exc:
            error = _cloud_error(action, exc)
            log.warning("%s failed: %s", action, error.problem)
            raise error from None
        if response.status_code >= 400:
            error = CloudError(action, f"HTTP {response.status_code}: {_error_message(response)}",
                               response.status_code)
            if response.status_code != 404:
                log.warning("%s failed: %s", action, error.problem)
            raise error
        try:
            body = response.json()
        except ValueError:
            body = None
        item = body.get(key) if isinstance(body, dict) else None
        if not isinstance(item, dict):
            raise CloudError(action, f"nova's answer has no {key} object")
        return item

    @_edge("read instance actions")
    def failure_reason(
        self, server_id: str, request_id: str | None, since: str | None = None, *, action: str = "live-migration"
    ) -> str | None:
        """The failure nova recorded for the `action` started by `request_id` (or the latest since `since`)."""
        actions = [a for a in self._conn.compute.server_actions(server_id) if a.action == action]
        chosen = next((a for a in actions if request_id and a.request_id == request_id), None)
        if chosen is None and since:
            # The action starts in nova-api a moment before the conductor creates the migration record.
            earliest = _timestamp(since) - timedelta(seconds=60)
            recent = [a for a in actions if _timestamp(a.start_time) >= earliest]
            chosen = max(recent, key=lambda a: _timestamp(a.start_time), default=None)
        if chosen is None:
            return None
        found = self._conn.compute.get_server_action(chosen.request_id, server_id)
        # Newest first whatever order the API lists them in (nova: newest first; a stable sort keeps its order
        # among events that started in the same second).
        events = sorted(found.events or [], key=lambda e: _timestamp(getattr(e, "start_time", None)), reverse=True)
        for event in events:
            result = getattr(event, "result", None)
            if result and result.lower() == "error":
                details = getattr(event, "details", None)
                if details:
                    return str(details)
                traceback = getattr(event, "traceback", None)
                if traceback:
                    return str(traceback).strip().splitlines()[-1]
                return f"{event.event} failed"
        return found.message or None

    @_edge("read instance actions")
    def requests_after(self, server_id: str, after: str | None, *, action: str = "live-migration"
                       ) -> Sequence[ActionRecord]:
        """The server's `action` instance actions that started after `after` (None: all), newest first."""
        floor = _instant(after)
        found = [
            ActionRecord(str(a.action), str(a.request_id), str(a.start_time or ""), a.message or None)
            for a in self._conn.compute.server_actions(server_id)
            if a.action == action and _instant(a.start_time) > floor
        ]
        return sorted(found, key=lambda a: _instant(a.start_time), reverse=True)

    @_edge("abort a live migration")
    def abort_migration(self, server_id: str, migration: MigrationRecord) -> None:
        """DELETE the server's in-progress migration (2.24; 2.65 for a queued one)."""
        log.info("DELETE migration %s of server %s (status %s)", migration.id, server_id, migration.status)
        self._conn.compute.abort_server_migration(migration.id, server_id)


    @_edge("force a live migration to complete")
    def force_complete_migration(self, server_id: str, migration: MigrationRecord) -> None:
        """POST the force_complete action of the server's running migration (2.22)."""
        log.info("force_complete migration %s of server %s (status %s)", migration.id, server_id, migration.status)
        self._conn.compute.force_complete_server_migration(migration.id, server_id)

    @_edge("enable or disable a compute service")
    def set_service(self, host: str, *, enabled: bool, reason: str | None = None) -> None:
        """PUT os-services/{id} with status (and disabled_reason) at the negotiated microversion (2.53 or later)."""
        if self.microversion < SERVICE_MICROVERSION:
            raise CloudError(
                f"{'enable' if enabled else 'disable'} the compute service of {host}",
                f"the cloud supports compute microversion {self.microversion_text}; hostmap changes services by id, "
                "which needs 2.53",
            )
        found = list(self._conn.compute.services(host=host, binary="nova-compute"))
        if len(found) != 1:
            raise CloudError(f"{'enable' if enabled else 'disable'} the compute service of {host}",
                             f"nova lists {len(found)} nova-compute services on {host}, expected one")
        body: dict[str, str] = {"status": "enabled" if enabled else "disabled"}
        if not enabled and reason:
            body["disabled_reason"] = reason[:255]
        log.info("PUT os-services/%s (%s): %s", found[0].id, host, body["status"])
        response = self._conn.compute.put(f"/os-services/{found[0].id}", json=body,
                                          microversion=self.microversion_text, raise_exc=False)
        if response.status_code != 200:
            raise CloudError(f"{'enable' if enabled else 'disable'} the compute service of {host}",
                             f"HTTP {response.status_code}: {_error_message(response)}", response.status_code)


def _server_record(raw: Mapping[str, Any], flavors: Mapping[str, FlavorRecord], pins_visible: bool) -> ServerRecord:
    """A server from nova's JSON: its flavor's sizes embedded from 2.47, looked up by flavor id before."""
    embedded = raw.get("flavor")
    flavor: Mapping[str, Any] = embedded if isinstance(embedded, dict) else {}
    known = flavors.get(str(flavor.get("id", "") or ""))
    pinned = raw.get("pinned_availability_zone") if pins_visible else None

    def size(key: str, fallback: int) -> int:
        return int(flavor.get(key) or fallback)

    return ServerRecord(
        id=str(raw.get("id", "")), name=str(raw.get("name", "")),
        flavor=str(flavor.get("original_name") or (known.name if known else flavor.get("id", ""))),
        vcpus=size("vcpus", known.vcpus if known else 0), ram=size("ram", known.ram if known else 0),
        disk=size("disk", known.disk if known else 0),
        host=str(raw.get("OS-EXT-SRV-ATTR:host") or ""), status=str(raw.get("status") or ""),
        project=str(raw.get("tenant_id") or ""), zone=raw.get("OS-EXT-AZ:availability_zone") or None,
        pinned_zone=pinned if isinstance(pinned, str) and pinned else None, created_at=str(raw.get("created") or ""),
    )


def _zone_of(service: Any) -> str | None:
    """A compute service's availability zone, as os-services shows it (`zone`); None when it shows none.

    nova computes it for every service, enabled or not (`set_availability_zones`), while the availability-zone
    detail lists the hosts of enabled services only: a disabled (drained) host would have no zone there.
    """
    zone = getattr(service, "availability_zone", None) if service is not None else None
    return zone if isinstance(zone, str) and zone else None


def _pin_of(raw: Any, visible: bool, *, assume_unpinned: bool = False) -> dict[str, Any]:
    """The server's pinned zone: `pinned_availability_zone` from 2.96; below, its current zone, marked assumed.

    Below 2.96 nova does not show the request spec's zone, so a pinned server cannot be told from a free one. The
    safe reading is that every server is pinned to the zone it is in: a cross-zone move is then refused before
    anything moves (and the refusal says the pin is assumed), rather than nova refusing it mid-run, which could
    leave a server halfway through a detour.
    """
    if visible:
        pinned = getattr(raw, "pinned_availability_zone", None)
        return {"pinned_zone": pinned if isinstance(pinned, str) and pinned else None}
    if assume_unpinned:  # the operator's word (--assume-unpinned): no server was booted into a zone
        return {}
    current = getattr(raw, "availability_zone", None)
    if isinstance(current, str) and current:
        return {"pinned_zone": current, "zone_pin_assumed": True}
    return {}


def _timestamp(text: str | None) -> datetime:
    """A nova timestamp (ISO 8601, UTC, with or without zone and fraction) as a naive UTC datetime."""
    if not text:
        return datetime.min
    try:
        return datetime.fromisoformat(text.replace("Z", "").split("+")[0].split(".")[0])
    except ValueError:
        return datetime.min


def _instant(text: str | None) -> datetime:
    """A nova timestamp to the microsecond (an instance action and the migration it makes can share a second)."""
    if text:
        try:
            return datetime.fromisoformat(text.replace("Z", "").split("+")[0])
        except ValueError:
            pass
    return _timestamp(text)


def _epoch_s(text: str | None) -> float | None:
    """A nova timestamp as seconds since the epoch (naive = UTC); None when absent or malformed."""
    when = _timestamp(text)
    return None if when == datetime.min else when.replace(tzinfo=timezone.utc).timestamp()


def _resources(figures: Mapping[str, Any]) -> Resources:
    return Resources(
        int(figures.get("VCPU", 0) or 0), int(figures.get("MEMORY_MB", 0) or 0), int(figures.get("DISK_GB", 0) or 0)
    )


def _migration(raw: Any, server_id: str | None = None) -> MigrationRecord:
    """An os-migrations record, or a server's in-progress migration (which also carries byte counts)."""
    return MigrationRecord(
        id=int(raw.id),
        server_id=server_id or raw.server_id,
        status=raw.status,
        source=raw.source_compute,
        dest=raw.dest_compute,
        created_at=raw.created_at or "",
        updated_at=raw.updated_at,
        updated_s=_epoch_s(raw.updated_at),
        memory_total_bytes=getattr(raw, "memory_total_bytes", None),
        memory_processed_bytes=getattr(raw, "memory_processed_bytes", None),
        memory_remaining_bytes=getattr(raw, "memory_remaining_bytes", None),
        migration_type=getattr(raw, "migration_type", None) or "live-migration",
    )


def _migration_of(item: Mapping[str, Any]) -> MigrationRecord:
    """An os-migrations record from nova's JSON (as `_migration` makes one from an SDK resource)."""
    updated = item.get("updated_at")
    return MigrationRecord(
        id=int(item["id"]),
        server_id=str(item.get("instance_uuid") or ""),
        status=str(item.get("status") or ""),
        source=str(item.get("source_compute") or ""),
        dest=item.get("dest_compute"),
        created_at=str(item.get("created_at") or ""),
        updated_at=updated,
        updated_s=_epoch_s(updated),
        migration_type=str(item.get("migration_type") or "live-migration"),
    )


def _error_message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason or ""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
    return str(body)[:500]
