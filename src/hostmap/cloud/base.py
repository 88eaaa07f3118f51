"""The seam the core asks: what hostmap needs from a cloud, in our own types."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hostmap.errors import CloudError, HostmapError
from hostmap.model import Inventory

#: The status of a live migration nova's libvirt driver switched to post-copy (the guest runs on the destination,
#: which pulls its remaining pages): still in progress, and nova aborts or force-completes it no more.
POST_COPY = "running (post-copy)"
#: Live-migration statuses in which memory is being copied.
COPYING_STATUSES = frozenset({"running", POST_COPY})
if TYPE_CHECKING:
    from hostmap.capture import Snapshot

#: Live-migration statuses after which nova changes the record no more.
TERMINAL_STATUSES = frozenset({"completed", "error", "failed", "cancelled", "done"})
#: Terminal statuses that mean the server did not move.
UNSUCCESSFUL_STATUSES = frozenset({"error", "failed", "cancelled"})
#: Cold-migration statuses after which nova changes the record no more ("finished" waits for a confirm or revert).
COLD_TERMINAL_STATUSES = frozenset({"confirmed", "reverted", "error", "failed"})
#: The cold-migration status in which the server is VERIFY_RESIZE on its destination, waiting for confirmResize.
COLD_FINISHED = "finished"


@dataclass(frozen=True)
class MigrationRecord:
    """A live-migration record as nova reports it (os-migrations, or a server's migration with progress)."""

    id: int
    server_id: str
    status: str
    source: str
    dest: str | None
    created_at: str
    updated_at: str | None = None
    #: `updated_at` in seconds since the epoch (None when absent): when nova last saved the record, the byte
    #: counters included.
    updated_s: float | None = None
    memory_total_bytes: int | None = None
    memory_processed_bytes: int | None = None
    memory_remaining_bytes: int | None = None
    #: "live-migration", or "migration" for a cold migration (nova's `migrate` action).
    migration_type: str = "live-migration"

    @property
    def terminal(self) -> bool:
        """True once nova will not change this migration any more."""
        if self.migration_type == "migration":
            return self.status in COLD_TERMINAL_STATUSES
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class ActionRecord:
    """An instance action nova recorded for a server (os-instance-actions): a request nova's API received."""

    action: str
    request_id: str
    start_time: str
    #: "Error" once the action failed; None while it runs or after it succeeded.
    message: str | None = None


@dataclass(frozen=True)
class ServerStatus:
    """Where a server is and what state it is in, read fresh from the API."""

    id: str
    host: str | None
    status: str
    task_state: str | None


@dataclass(frozen=True)
class Submission:
    """What the cloud told us when it accepted a live-migration request."""

    server_id: str
    target: str
    request_id: str | None
    microversion: str


@dataclass
class IdentityUnavailable(CloudError):
    """Keystone did not answer (connection failures, 5xx) through every retry: no token, so the request was not sent."""


@dataclass
class MigrationRefused(HostmapError):
    """Nova refused the live-migration request itself (a 4xx answer, e.g. 400 No valid host was found)."""

    server_id: str
    target: str
    status: int
    reason: str


@dataclass
class ColdMigrationUnsupported(HostmapError):
    """The cloud's compute API is too old for a cold migration to a chosen host (the `migrate` action's `host`)."""

    server_id: str
    #: The negotiated microversion, and the one needed.
    found: str
    needed: str = "2.56"

    def __str__(self) -> str:
        return f"cold migration to a host needs compute microversion {self.needed}; the cloud offers {self.found}"


class Cloud(Protocol):
    """What the executor, `apply` and the CLI need from a cloud; implemented over openstacksdk."""

    @property
    def identity(self) -> str:
        """Which cloud this is, for the run lock and the journal (keystone's endpoint, project id, region): never a
        secret."""
        ...

    @property
    def former_identities(self) -> tuple[str, ...]:
        """Keys earlier versions of hostmap gave this same cloud: its runs journaled under them are still its own."""
        ...

    def close(self) -> None:
        """Release the connection; the cloud is not used afterwards."""
        ...

    def inventory(self) -> Inventory:
        """Read hosts (with placement capacity and usage), servers and server groups."""
        ...

    def snapshot(self) -> Snapshot:
        """Read, without changing anything, what a scenario of this cloud needs (`hostmap sim capture`)."""
        ...

    def live_migrations(self, server_id: str) -> Sequence[MigrationRecord]:
        """Every live-migration record nova keeps for one server, newest first."""
        ...

    def start_live_migration(self, server_id: str, target: str) -> Submission:
        """Ask nova to live-migrate a server to `target` through the scheduler; raises MigrationRefused."""
        ...

    def watch(self, servers: Collection[str], since: str) -> Sequence[MigrationRecord]:
        """The live-migration records of `servers` that nova changed at or after `since` (its updated_at, a nova
        timestamp; "" for all), read with as few requests as the API allows: every migration in flight in one."""
        ...

    def migration_progress(self, server_id: str, migration_id: int) -> MigrationRecord | None:
        """Byte-level progress of an in-progress migration, or None once it is no longer in progress."""
        ...

    def server_status(self, server_id: str) -> ServerStatus:
        """Fresh host, status and task state of one server."""
        ...

    def failure_reason(
        self, server_id: str, request_id: str | None, since: str | None = None, *, action: str = "live-migration"
    ) -> str | None:
        """The reason nova recorded for a failed migration (instance action events), if any.

        The action is found by `request_id`; without one, by the latest `action` (live-migration, or migrate for a
        cold migration) that started at or after `since` (the migration record's creation time), so an older
        migration's error is never reported.
        """
        ...

    def requests_after(self, server_id: str, after: str | None, *, action: str = "live-migration"
                       ) -> Sequence[ActionRecord]:
        """The server's `action` instance actions (requests nova's API received) that started after `after` (a nova
        timestamp; None: all of them), newest first."""
        ...

    def abort_migration(self, server_id: str, migration: MigrationRecord) -> None:
        """Abort an in-progress live migration (DELETE the server's migration)."""
        ...

    def force_complete_migration(self, server_id: str, migration: MigrationRecord) -> None:
        """Force a running live migration to complete (POST .../migrations/{id}/action force_complete, 2.22+):
        nova pauses the guest until the copy ends, or switches to post-copy where the cloud permits it."""
        ...

    def cold_migrations(self, server_id: str) -> Sequence[MigrationRecord]:
        """Every cold-migration record (migration_type `migration`) nova keeps for one server, newest first."""
        ...

    def start_cold_migration(self, server_id: str, target: str) -> Submission:
        """Ask nova to cold-migrate a server to `target` (the `migrate` action with a host, 2.56+) through the
        scheduler; raises MigrationRefused, or ColdMigrationUnsupported below 2.56."""
        ...

    def confirm_resize(self, server_id: str) -> None:
        """Confirm a server's finished cold migration (VERIFY_RESIZE): nova frees the source (`confirmResize`)."""
        ...

    def set_service(self, host: str, *, enabled: bool, reason: str | None = None) -> None:
        """Enable or disable (with `reason`) the nova-compute service of `host` (PUT os-services/{id}, 2.53+).

        A disabled service gets no new servers from the scheduler; those on it stay and may still be migrated away.
        """
        ...
