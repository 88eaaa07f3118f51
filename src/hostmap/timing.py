"""The live-migration duration model the simulated cloud runs on, in closed form (pure, no I/O).

A migration first spends `setup_s` preparing, then copies guest memory at a rate `r` (bytes/s) while the
guest dirties `d` bytes/s; what is left shrinks at `r - d` and the switch-over happens once what is left
can be sent within `downtime_ms` at the current rate. See docs/simulated-cloud.md for the whole model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from hostmap.flow import Links
from hostmap.model import COLD_MIGRATABLE_STATUSES, Server

#: Bytes per GiB (flavor RAM is given in MiB, i.e. 2**20 bytes).
GIB = 2**30
#: Bytes per MiB.
MIB = 2**20
#: Bytes per MB (dirty rates are in decimal megabytes per second).
MB = 10**6


@dataclass(frozen=True)
class MigrationParams:
    """Knobs of the migration model; every field has the documented default."""

    nic_gbps: float = 10.0
    stream_gbps: float = 8.0
    touched: float = 0.7
    dirty_mb_s: float = 20.0
    downtime_ms: float = 500.0
    setup_s: float = 3.0
    max_concurrent_live_migrations: int = 1
    #: nova's scheduler_instance_sync_interval: after a live migration the scheduler goes on counting the server
    #: on its source host until the next sync (every this many seconds); 0 models track_instance_changes = False.
    instance_sync_s: float = 120.0
    #: nova's libvirt live_migration_monitor_interval: the byte counters of a running migration are saved (and
    #: shown by the API) this often; 0 shows them live (a simulator-only idealisation).
    monitor_interval_s: float = 5.0
    #: nova's libvirt live_migration_permit_post_copy: a force_complete switches to post-copy instead of pausing.
    permit_post_copy: bool = False


def gbps_to_bytes_per_s(gbps: float) -> float:
    """Convert Gbit/s (10**9 bits) to bytes per second."""
    return gbps * 1e9 / 8.0


def touched_bytes(ram_mb: int, touched: float) -> float:
    """Bytes of guest memory a migration must copy at first: `touched` x RAM."""
    return touched * ram_mb * MIB


def dirty_bytes_per_s(dirty_mb_s: float) -> float:
    """The guest's dirtying rate in bytes per second."""
    return dirty_mb_s * MB


def completion_timeout_s(ram_mb: int) -> float:
    """Nova's live_migration_completion_timeout: 800 s per GiB of RAM, counting at least 2 GiB."""
    return 800.0 * max(ram_mb * MIB / GIB, 2.0)


def copy_time_s(left_bytes: float, rate_bps: float, dirty_bps: float, downtime_ms: float) -> float:
    """Seconds of copying at a constant rate until `left_bytes` fits into the downtime; inf if never."""
    threshold = rate_bps * downtime_ms / 1000.0
    if left_bytes <= threshold:
        return 0.0
    if rate_bps <= dirty_bps:
        return math.inf
    return (left_bytes - threshold) / (rate_bps - dirty_bps)


def nic_links(params: MigrationParams) -> Links:
    """How the planner should expect migrations to share NICs under `params` (uniform NICs)."""
    stream = gbps_to_bytes_per_s(min(params.stream_gbps, params.nic_gbps))
    return Links(
        setup_s=params.setup_s,
        streams_per_nic=max(1.0, params.nic_gbps / params.stream_gbps),
        dirty_share=min(dirty_bytes_per_s(params.dirty_mb_s) / stream, 0.999),
    )


def solo_duration_s(ram_mb: int, params: MigrationParams, rate_gbps: float | None = None) -> float:
    """Seconds from start to switch-over of one migration running alone (setup + copy); inf if it never converges.

    The copy rate is `rate_gbps` when given, else min(stream_gbps, nic_gbps).
    """
    gbps = min(params.stream_gbps, params.nic_gbps) if rate_gbps is None else rate_gbps
    copy = copy_time_s(
        touched_bytes(ram_mb, params.touched),
        gbps_to_bytes_per_s(gbps),
        dirty_bytes_per_s(params.dirty_mb_s),
        params.downtime_ms,
    )
    return params.setup_s + copy


def cold_copy_s(disk_gb: int, rate_bps: float) -> float:
    """Seconds a cold migration spends copying a `disk_gb` GiB local disk at `rate_bps` bytes/s."""
    return disk_gb * GIB / rate_bps if disk_gb > 0 else 0.0


def cold_duration_s(disk_gb: int, params: MigrationParams, rate_gbps: float | None = None) -> float:
    """Seconds from a cold migration's request to VERIFY_RESIZE: prepare on the destination (`setup_s`), copy the
    whole local disk at `rate_gbps` (default min(stream_gbps, nic_gbps)), finish on the destination (`setup_s`).

    A stopped guest dirties nothing, so unlike a live migration the copy always ends; the disk, not the RAM, sets it.
    """
    gbps = min(params.stream_gbps, params.nic_gbps) if rate_gbps is None else rate_gbps
    return 2 * params.setup_s + cold_copy_s(disk_gb, gbps_to_bytes_per_s(gbps))


def duration_model(params: MigrationParams) -> Callable[[Server], float]:
    """The planner's estimate of a server's move under `params`: for a live migration its solo duration, or, for
    one that never converges, the time nova gives it before giving up (setup plus its completion timeout); for a
    stopped server (moved cold) `cold_duration_s` of its disk."""

    def duration(server: Server) -> float:
        if server.status in COLD_MIGRATABLE_STATUSES:
            return cold_duration_s(server.demand.disk_gb, params)
        ram = server.demand.memory_mb
        return min(solo_duration_s(ram, params), params.setup_s + completion_timeout_s(ram))

    return duration
