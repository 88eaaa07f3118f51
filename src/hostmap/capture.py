"""A twin of a cloud: what `hostmap sim capture` reads, and the scenario document the simulated cloud loads (pure).

`cloud/openstack.py` fills a `Snapshot` (read-only); `copy_rates` measures per host pair from the journal's
moves; `scenario_document` turns both into the plain data of a scenario file (docs/simulated-cloud.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING, Any

from hostmap.timing import MigrationParams, touched_bytes

if TYPE_CHECKING:
    from hostmap.journal import RunDetail

#: The placement resource classes a scenario host describes, with the scenario's names for them.
INVENTORY_KEYS: Mapping[str, tuple[str, str, str]] = {
    # resource class: (total key, reserved key, allocation ratio key)
    "VCPU": ("vcpus", "reserved_host_cpus", "cpu_allocation_ratio"),
    "MEMORY_MB": ("memory_mb", "reserved_host_memory_mb", "ram_allocation_ratio"),
    "DISK_GB": ("disk_gb", "reserved_host_disk_gb", "disk_allocation_ratio"),
}


@dataclass(frozen=True)
class InventoryRecord:
    """One placement inventory of a resource provider."""

    resource_class: str
    total: int
    reserved: int
    allocation_ratio: float


@dataclass(frozen=True)
class HostRecord:
    """A compute host as captured: service, hypervisor, placement inventories and service state."""

    name: str
    hypervisor_hostname: str
    inventories: tuple[InventoryRecord, ...]
    enabled: bool
    up: bool
    disabled_reason: str | None
    zone: str | None


@dataclass(frozen=True)
class FlavorRecord:
    """A flavor: RAM in MiB, disk in GiB."""

    id: str
    name: str
    vcpus: int
    ram: int
    disk: int


@dataclass(frozen=True)
class ServerRecord:
    """A server as captured; `flavor` is the flavor's name, with its sizes as the server shows them."""

    id: str
    name: str
    flavor: str
    vcpus: int
    ram: int
    disk: int
    host: str
    status: str
    project: str
    zone: str | None
    pinned_zone: str | None
    created_at: str


@dataclass(frozen=True)
class GroupRecord:
    """A server group with its policy, rules and members (server ids)."""

    id: str
    name: str
    policy: str
    max_server_per_host: int | None
    members: tuple[str, ...]
    project: str


@dataclass(frozen=True)
class Snapshot:
    """Everything a capture read, and where and when from (no secret)."""

    hosts: tuple[HostRecord, ...]
    flavors: tuple[FlavorRecord, ...]
    servers: tuple[ServerRecord, ...]
    groups: tuple[GroupRecord, ...]
    auth_url: str
    region: str
    project: str
    captured_at: str
    microversion: str
    #: The zone hosts in no aggregate are in; capture writes a host's zone only when it differs.
    default_zone: str = "nova"


@dataclass(frozen=True)
class PairRate:
    """The copy rate measured between two hosts: the median over `samples` migrations, in Gbit/s."""

    source: str
    target: str
    gbps: float
    samples: int


@dataclass(frozen=True)
class PastMove:
    """One migrated move of the journal, as the rates need it."""

    source: str
    target: str
    flavor: str
    seconds: float


def copy_rates(moves: Iterable[PastMove], flavors: Mapping[str, int], params: MigrationParams) -> tuple[PairRate, ...]:
    """Per host pair, the median copy rate of past live migrations: the memory the model copies over the copy time.

    `flavors` maps flavor names to RAM (MiB). A move's copy time is its seconds less the model's setup, but at least
    half its seconds (the journal's seconds are as coarse as the executor's polling); moves of an unknown flavor or
    of no measurable time are left out.
    """
    samples: dict[tuple[str, str], list[float]] = {}
    for move in moves:
        ram = flavors.get(move.flavor)
        copy_s = max(move.seconds - params.setup_s, move.seconds / 2.0)
        if ram is None or copy_s <= 0.0:
            continue
        bits = touched_bytes(ram, params.touched) * 8.0
        samples.setdefault((move.source, move.target), []).append(bits / copy_s / 1e9)
    return tuple(PairRate(s, t, round(median(v), 3), len(v)) for (s, t), v in sorted(samples.items()))


def _host_entry(host: HostRecord, default_zone: str, nic_gbps: float | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": host.name, "hypervisor_hostname": host.hypervisor_hostname}
    by_class = {inv.resource_class: inv for inv in host.inventories}
    for resource_class, (total, reserved, ratio) in INVENTORY_KEYS.items():
        inv = by_class.get(resource_class)
        # A provider without this class offers none of it; the scenario needs a total of at least 1.
        entry[total] = max(1, inv.total) if inv else 1
        entry[reserved] = inv.reserved if inv else 1
        entry[ratio] = inv.allocation_ratio if inv else 1.0
    entry["enabled"] = host.enabled
    entry["up"] = host.up
    if not host.enabled and host.disabled_reason:
        entry["disabled_reason"] = host.disabled_reason
    if host.zone and host.zone != default_zone:
        entry["zone"] = host.zone
    if nic_gbps is not None:
        entry["nic_gbps"] = nic_gbps
    return entry


def scenario_document(
    snapshot: Snapshot, params: MigrationParams, statuses: Iterable[str], rates: tuple[PairRate, ...] = ()
) -> dict[str, Any]:
    """The scenario file's plain data for `snapshot`: the migration model is `params`, hosts' NICs from `rates`.

    Servers whose status is not among `statuses` (those the simulated cloud models) are left out and listed.

    A scenario has one rate per host (its NIC) and one per stream, not one per pair: a host's NIC is the highest
    rate measured on any pair it is an end of, the stream rate the highest measured; the pairs themselves are kept
    under `captured.rates`.
    """
    nic: dict[str, float] = {}
    for rate in rates:
        for host in (rate.source, rate.target):
            nic[host] = max(nic.get(host, 0.0), rate.gbps)
    stream = max((r.gbps for r in rates), default=params.stream_gbps)
    statuses = frozenset(statuses)
    flavors = [{"id": f.id, "name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk} for f in snapshot.flavors]
    known = {f.name for f in snapshot.flavors}
    hosts = {h.name for h in snapshot.hosts}
    servers: list[dict[str, Any]] = []
    skipped: list[str] = []
    # Oldest first: the simulated cloud lists its servers newest first, as nova does, so the twin lists them alike.
    for server in sorted(snapshot.servers, key=lambda s: (s.created_at, s.id)):
        if server.host not in hosts or server.status not in statuses:
            # Not on a compute host (shelved, never scheduled), or in a state the simulated cloud does not model
            # (a resize awaiting confirmation, a build): left out, and listed.
            skipped.append(server.id)
            continue
        if server.flavor not in known:
            # A flavor deleted since the server was booted: nova keeps its sizes with the server.
            known.add(server.flavor)
            flavors.append({"id": f"captured-{len(flavors) + 1}", "name": server.flavor, "vcpus": max(1, server.vcpus),
                            "ram": max(1, server.ram), "disk": server.disk})
        entry: dict[str, Any] = {"id": server.id, "name": server.name, "flavor": server.flavor, "host": server.host,
                                 "status": server.status, "project": server.project}
        if server.pinned_zone:
            entry["pinned_zone"] = server.pinned_zone
        servers.append(entry)
    placed = {s["id"] for s in servers}
    groups = []
    for group in snapshot.groups:
        members = [m for m in group.members if m in placed]
        item: dict[str, Any] = {"id": group.id, "name": group.name, "policy": group.policy, "members": members,
                                "project": group.project}
        if group.max_server_per_host is not None and group.policy == "anti-affinity":
            item["rules"] = {"max_server_per_host": group.max_server_per_host}
        groups.append(item)
    return {
        "description": f"captured from {snapshot.auth_url} (region {snapshot.region or '-'}) at {snapshot.captured_at}",
        "captured": {
            "at": snapshot.captured_at, "auth_url": snapshot.auth_url, "region": snapshot.region,
            "project": snapshot.project, "microversion": snapshot.microversion,
            "rates": [{"source": r.source, "target": r.target, "gbps": r.gbps, "samples": r.samples} for r in rates],
            "rates_from": "journal" if rates else "options",
            "servers_left_out": skipped,
        },
        "migration": {
            "nic_gbps": params.nic_gbps, "stream_gbps": stream, "touched": params.touched,
            "dirty_mb_s": params.dirty_mb_s, "downtime_ms": params.downtime_ms, "setup_s": params.setup_s,
            "max_concurrent_live_migrations": params.max_concurrent_live_migrations,
            "instance_sync_s": params.instance_sync_s, "monitor_interval_s": params.monitor_interval_s,
        },
        "default_availability_zone": snapshot.default_zone,
        "hosts": [_host_entry(h, snapshot.default_zone, nic.get(h.name)) for h in snapshot.hosts],
        "flavors": flavors,
        "servers": servers,
        "server_groups": groups,
    }



def past_moves(runs: Iterable[RunDetail]) -> list[PastMove]:
    """The live migrations the journal's runs carried out, with their flavor (from each run's plan) and seconds."""
    found: list[PastMove] = []
    for run in runs:
        steps = run.plan.get("moves")
        flavor_of = {
            int(s["step"]): str(s.get("flavor") or "")
            for s in (steps if isinstance(steps, list) else [])
            if isinstance(s, dict) and isinstance(s.get("step"), int)
        }
        for move in run.moves:
            if move.outcome == "migrated" and not move.cold and move.seconds is not None:
                found.append(PastMove(move.source, move.target, flavor_of.get(move.step + 1, ""), move.seconds))
    return found
