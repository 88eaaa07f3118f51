"""The flight recorder: a local SQLite journal of every run and of every migration it asks for.

Before hostmap sends a live-migration request it records the intent (`Journal.intend`) and commits it
with ``synchronous=FULL``, so the record survives the process being killed right after the request
left. A later run reads the moves that have no outcome (`Journal.unfinished`) and checks each against
nova before it asks for anything again: a run must never submit the same migration twice.

What is stored: the cloud's name, the host map's source and text, the plan, server ids and names,
host names, nova request ids and migration ids, outcomes and timings. The journal never stores
passwords, tokens or other credentials: no method takes them, so it never receives them.

The file is created with mode 0600 (its directory 0700) before SQLite opens it; SQLite gives its
``-wal`` and ``-shm`` companions the same mode. The default location is
``$XDG_STATE_HOME/hostmap/journal.sqlite`` (``~/.local/state`` when XDG_STATE_HOME is unset).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast, get_args

from hostmap.errors import HostmapError
from hostmap.results import Outcome
from hostmap.state_dir import default_state_dir, private_dir

RunStatus = Literal["running", "reached", "incomplete", "interrupted", "crashed"]

#: Version of the tables below; a journal written by a newer hostmap is refused, not guessed at.
SCHEMA_VERSION = 6
#: Written to the SQLite header (``PRAGMA application_id``) so another program's database is recognised.
APPLICATION_ID = 0x686D6170  # "hmap"
#: How long a write waits for another hostmap process (e.g. `history` reading) to let go of the file.
BUSY_TIMEOUT_S = 5.0

# Separate statements: executescript() would commit the transaction that makes creation atomic.
_SCHEMA = (
    """
CREATE TABLE schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)""",
    """
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cloud       TEXT NOT NULL,
    map_source  TEXT NOT NULL,
    map_text    TEXT NOT NULL,
    plan_json   TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'reached', 'incomplete', 'interrupted', 'crashed'))
)""",
    "CREATE INDEX runs_cloud_status ON runs (cloud, status)",
    """
CREATE TABLE moves (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id              INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step                INTEGER NOT NULL,
    server_id           TEXT NOT NULL,
    server_name         TEXT NOT NULL,
    source              TEXT NOT NULL,
    target              TEXT NOT NULL,
    intended_at         TEXT NOT NULL,
    known_migration_ids TEXT NOT NULL,
    submitted_at        TEXT,
    request_id          TEXT,
    migration_id        INTEGER,
    outcome             TEXT CHECK (outcome IS NULL OR outcome IN
                        ('migrated', 'failed', 'timed_out', 'declined', 'skipped', 'not_started')),
    reason              TEXT NOT NULL DEFAULT '',
    seconds             REAL
)""",
    "CREATE INDEX moves_run ON moves (run_id)",
    "CREATE INDEX moves_open ON moves (outcome, run_id)",
)

_MOVES_V4 = ("id, run_id, step, server_id, server_name, source, target, intended_at, known_migration_ids, "
             "submitted_at, request_id, migration_id, outcome, reason, seconds, cold")

#: What each schema version adds to the one before; a journal of an older version is brought up to date on open.
_UPGRADES: dict[int, tuple[str, ...]] = {
    2: (
        """
CREATE TABLE services (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host    TEXT NOT NULL,
    action  TEXT NOT NULL CHECK (action IN ('disabled', 'enabled')),
    reason  TEXT NOT NULL DEFAULT '',
    at      TEXT NOT NULL
)""",
        "CREATE INDEX services_run ON services (run_id)",
    ),
    3: (
        """
CREATE TABLE rollouts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cloud       TEXT NOT NULL,
    hosts       TEXT NOT NULL,
    batch       INTEGER NOT NULL,
    restore     INTEGER NOT NULL,
    command     TEXT NOT NULL,
    original    TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL DEFAULT 'running'
)""",
        """
CREATE TABLE rollout_steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id  INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    host        TEXT NOT NULL,
    step        TEXT NOT NULL CHECK (step IN ('drained', 'exec_started', 'exec_ended', 'up', 'enabled', 'restored')),
    run_id      INTEGER,
    code        INTEGER,
    at          TEXT NOT NULL
)""",
        "CREATE INDEX rollout_steps_rollout ON rollout_steps (rollout_id)",
    ),
    # A cold migration (`--cold`): resuming it reads the server's cold-migration records and confirms it.
    4: ("ALTER TABLE moves ADD COLUMN cold INTEGER NOT NULL DEFAULT 0",),
    # Outcomes `stalled` and `check_failed`, and `detail` (JSON: the stall hostmap saw and what it did, the health
    # checks' results). SQLite cannot change a CHECK constraint in place: the table is copied.
    5: (
        """
CREATE TABLE moves_v5 (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id              INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step                INTEGER NOT NULL,
    server_id           TEXT NOT NULL,
    server_name         TEXT NOT NULL,
    source              TEXT NOT NULL,
    target              TEXT NOT NULL,
    intended_at         TEXT NOT NULL,
    known_migration_ids TEXT NOT NULL,
    submitted_at        TEXT,
    request_id          TEXT,
    migration_id        INTEGER,
    outcome             TEXT CHECK (outcome IS NULL OR outcome IN
                        ('migrated', 'failed', 'timed_out', 'declined', 'skipped', 'not_started', 'stalled',
                         'check_failed')),
    reason              TEXT NOT NULL DEFAULT '',
    seconds             REAL,
    cold                INTEGER NOT NULL DEFAULT 0,
    detail              TEXT NOT NULL DEFAULT '{}'
)""",
        f"INSERT INTO moves_v5 ({_MOVES_V4}) SELECT {_MOVES_V4} FROM moves",
        "DROP TABLE moves",
        "ALTER TABLE moves_v5 RENAME TO moves",
        "CREATE INDEX moves_run ON moves (run_id)",
        "CREATE INDEX moves_open ON moves (outcome, run_id)",
    ),
    # `started_s`: when the move started on the run's own clock (seconds from the run's start), so that a run on
    # virtual time (a rehearsal) is drawn on its own schedule, not on the wall clock's stamps. NULL in older rows.
    6: ("ALTER TABLE moves ADD COLUMN started_s REAL",),
}

# The columns a `RunSummary` and a `MoveRecord` are read from, each named (rows are read by name, not position).
_RUN_COLUMNS = """
    r.id AS id, r.cloud AS cloud, r.map_source AS map_source, r.started_at AS started_at,
    r.finished_at AS finished_at, r.status AS status,
    (SELECT COUNT(*) FROM moves m WHERE m.run_id = r.id) AS moves,
    (SELECT COUNT(*) FROM moves m WHERE m.run_id = r.id AND m.outcome = 'migrated') AS migrated
"""
_MOVE_COLUMNS = """
    m.id AS id, m.run_id AS run_id, m.step AS step, m.server_id AS server_id, m.server_name AS server_name,
    m.source AS source, m.target AS target, m.submitted_at AS submitted_at, m.request_id AS request_id,
    m.migration_id AS migration_id, m.outcome AS outcome, m.reason AS reason, m.seconds AS seconds,
    m.intended_at AS intended_at, m.cold AS cold, m.started_s AS started_s, m.detail AS detail
"""


@dataclass
class JournalError(HostmapError):
    """The journal file cannot be used: not a journal, corrupt, from a newer hostmap, or unreachable."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"journal {self.path}: {self.problem}"


@dataclass
class UnknownRun(HostmapError):
    """No run with this id is in the journal."""

    run_id: int

    def __str__(self) -> str:
        return f"no run {self.run_id} in the journal"


@dataclass
class UnknownMove(HostmapError):
    """No move with this id is in the journal."""

    move_id: int

    def __str__(self) -> str:
        return f"no move {self.move_id} in the journal"


@dataclass(frozen=True)
class RunSummary:
    """One run as listed in the history: where, what, when, how it ended and how much it moved."""

    id: int
    cloud: str
    map_source: str
    started_at: str
    finished_at: str | None
    status: RunStatus
    moves: int
    migrated: int


@dataclass(frozen=True)
class MoveRecord:
    """One migration hostmap intended, and what became of it (None: not known yet)."""

    id: int
    run_id: int
    step: int
    server_id: str
    server_name: str
    source: str
    target: str
    submitted_at: str | None
    request_id: str | None
    migration_id: int | None
    outcome: Outcome | None
    reason: str
    seconds: float | None
    #: When the intent was written, just before the request was sent (UTC, ISO 8601).
    intended_at: str = ""
    #: A cold migration (nova's `migrate`, then confirmResize) rather than a live one.
    cold: bool = False
    #: When it started on the run's own clock (wall or virtual), seconds from the run's start; None before schema 6.
    started_s: float | None = None
    #: JSON text: the stall hostmap saw and what it did about it (a force sent), the health checks' results.
    detail: str = "{}"


ServiceAction = Literal["disabled", "enabled"]
#: What a rollout (`hostmap maintain`) records per host, in the order it happens.
RolloutStepName = Literal["drained", "exec_started", "exec_ended", "up", "enabled", "restored"]


@dataclass(frozen=True)
class ServiceChange:
    """A compute service a run disabled or enabled, and the reason it gave."""

    run_id: int
    host: str
    action: ServiceAction
    reason: str
    at: str


@dataclass(frozen=True)
class RolloutStep:
    """One step a rollout took on one host: the run that drained or restored it, or the command's exit code."""

    host: str
    step: RolloutStepName
    run_id: int | None
    code: int | None
    at: str


@dataclass(frozen=True)
class Rollout:
    """A rolling maintenance (`hostmap maintain`): its hosts in order, the placement before it, its steps."""

    id: int
    cloud: str
    hosts: tuple[str, ...]
    batch: int
    restore: bool
    command: str
    #: Server id -> host before the rollout moved anything (what --restore puts back).
    original: Mapping[str, str]
    status: str
    steps: tuple[RolloutStep, ...]

    def done(self, host: str, step: RolloutStepName) -> RolloutStep | None:
        """The last record of `step` on `host`, if the rollout took it."""
        at = self.last(host, step)
        return self.steps[at] if at >= 0 else None

    def last(self, host: str, step: RolloutStepName) -> int:
        """The position in `steps` of the last record of `step` on `host`; -1 when there is none."""
        return max((i for i, s in enumerate(self.steps) if s.host == host and s.step == step), default=-1)


@dataclass(frozen=True)
class RunDetail:
    """One run in full: its summary, the host map text, the plan and every move in intent order."""

    summary: RunSummary
    map_text: str
    plan: dict[str, Any]
    moves: tuple[MoveRecord, ...]


def stamp_age_s(stamp: str | None) -> float | None:
    """Seconds since a journal stamp (UTC, ISO 8601) by this machine's wall clock; None when absent or unreadable."""
    if not stamp:
        return None
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())


def default_journal_path() -> Path:
    """Where the journal lives unless told otherwise."""
    return default_state_dir() / "journal.sqlite"


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this machine (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def now_stamp() -> str:
    """Now as the journal stamps it (UTC, ISO 8601, to the second)."""
    return _now()


def _private_dir(directory: Path, *, tighten: bool) -> None:
    """Create `directory` with mode 0700; tighten an existing one only when it is hostmap's own."""
    if tighten:
        private_dir(directory)
        return
    existed = directory.is_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not existed:
        os.chmod(directory, 0o700)


def _outcome(value: object, path: str) -> Outcome | None:
    if value is None:
        return None
    if value not in get_args(Outcome):
        raise JournalError(path, f"unknown move outcome {value!r} in the journal")
    return cast(Outcome, value)


def _status(value: object, path: str) -> RunStatus:
    if value not in get_args(RunStatus):
        raise JournalError(path, f"unknown run status {value!r} in the journal")
    return cast(RunStatus, value)


class Journal:
    """An open journal. Every write is committed (and synced) before the method returns."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        """Use `Journal.open`; this only wraps an already checked connection."""
        self._conn = connection
        self.path = path

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None = None) -> Journal:
        """Open (creating if needed) the journal at `path`, by default `default_journal_path()`.

        Raises JournalError when the file is not a hostmap journal, is corrupt, was written by a
        newer hostmap, or cannot be created or opened.
        """
        target = path if path is not None else default_journal_path()
        where = str(target)
        try:
            _private_dir(target.parent, tighten=path is None)
            # SQLite would block for ever reading a FIFO it opened itself, and cannot keep a journal on a device.
            if target.exists() and not target.is_file():
                raise JournalError(where, "is not a regular file (a directory, FIFO or device)")
            fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as exc:
            raise JournalError(where, f"cannot create or open the file: {exc.strerror or exc}") from exc
        try:
            conn = sqlite3.connect(where, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(where, f"cannot open the file with SQLite: {exc}") from exc
        try:
            _prepare(conn, where)
            os.chmod(target, 0o600)
        except JournalError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(where, _describe(exc)) from exc
        except OSError as exc:
            conn.close()
            raise JournalError(where, f"cannot set the file's mode to 0600: {exc.strerror or exc}") from exc
        return cls(conn, target)

    def close(self) -> None:
        """Close the journal; closing twice is harmless."""
        self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """Turn SQLite failures (corruption, a disk error, a lock held too long) into JournalError."""
        try:
            yield self._conn
        except sqlite3.ProgrammingError:
            raise  # misuse (a closed journal, another thread) is a bug, not a journal problem
        except sqlite3.DatabaseError as exc:
            raise JournalError(str(self.path), _describe(exc)) from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed write transaction."""
        with self._guard() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    # -- recording -----------------------------------------------------------------------------

    def start_run(self, *, cloud: str, map_source: str, map_text: str, plan: Mapping[str, Any], pid: int) -> int:
        """Record a new run (status "running") and return its id."""
        plan_json = json.dumps(dict(plan), sort_keys=True)
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (cloud, map_source, map_text, plan_json, pid, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (cloud, map_source, map_text, plan_json, pid, _now()),
            )
            return _rowid(cursor)

    def intend(
        self,
        run_id: int,
        *,
        step: int,
        server_id: str,
        server_name: str,
        source: str,
        target: str,
        known_migration_ids: Sequence[int],
        cold: bool = False,
    ) -> int:
        """Record, durably, that this migration is about to be requested; call it BEFORE sending. Returns the move id.

        `known_migration_ids` are the server's migrations nova already listed before the request:
        after a crash, a migration of this server not among them is the one this move asked for.
        """
        known = json.dumps(sorted({int(i) for i in known_migration_ids}))
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise UnknownRun(run_id)
            cursor = conn.execute(
                "INSERT INTO moves (run_id, step, server_id, server_name, source, target, intended_at,"
                " known_migration_ids, cold) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, step, server_id, server_name, source, target, _now(), known, int(cold)),
            )
            return _rowid(cursor)

    def accepted(self, move_id: int, request_id: str | None) -> None:
        """Record that nova accepted the request (submitted_at is now), with its request id if it gave one."""
        self._update_move(move_id, "submitted_at = ?, request_id = ?", (_now(), request_id))

    def migration_found(self, move_id: int, migration_id: int) -> None:
        """Record nova's migration id for this move."""
        self._update_move(move_id, "migration_id = ?", (migration_id,))

    def outcome(self, move_id: int, outcome: Outcome, reason: str, seconds: float | None,
                started_s: float | None = None) -> None:
        """Record how the move ended (and when it started on the run's clock); it is no longer unfinished."""
        if outcome not in get_args(Outcome):
            raise ValueError(f"unknown outcome {outcome!r}")
        self._update_move(move_id, "outcome = ?, reason = ?, seconds = ?, started_s = ?",
                          (outcome, reason, seconds, started_s))

    def detail(self, move_id: int, detail: str) -> None:
        """Record a move's detail (JSON text): the stall seen and the action taken, the health checks' results."""
        self._update_move(move_id, "detail = ?", (detail,))

    def service_changed(self, run_id: int, host: str, action: ServiceAction, reason: str) -> ServiceChange:
        """Record that run `run_id` disabled (with `reason`) or enabled the compute service of `host`."""
        change = ServiceChange(run_id, host, action, reason, _now())
        with self._write() as conn:
            conn.execute("INSERT INTO services (run_id, host, action, reason, at) VALUES (?, ?, ?, ?, ?)",
                         (run_id, host, action, reason, change.at))
        return change

    def service_changes(self, run_id: int) -> list[ServiceChange]:
        """The compute services run `run_id` disabled or enabled, in the order it did."""
        with self._guard() as conn:
            rows = _named(conn, "SELECT run_id, host, action, reason, at FROM services WHERE run_id = ? ORDER BY id",
                          (run_id,)).fetchall()
        return [ServiceChange(int(r["run_id"]), str(r["host"]), r["action"], str(r["reason"]), str(r["at"]))
                for r in rows]

    def start_rollout(self, *, cloud: str, hosts: Sequence[str], batch: int, restore: bool, command: str,
                      original: Mapping[str, str]) -> int:
        """Record a new rollout and return its id."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO rollouts (cloud, hosts, batch, restore, command, original, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (cloud, json.dumps(list(hosts)), batch, int(restore), command, json.dumps(dict(original)), _now()))
            return _rowid(cursor)

    def rollout_step(self, rollout_id: int, host: str, step: RolloutStepName, *, run_id: int | None = None,
                     code: int | None = None) -> None:
        """Record that the rollout took `step` on `host` (before the next step starts)."""
        with self._write() as conn:
            conn.execute("INSERT INTO rollout_steps (rollout_id, host, step, run_id, code, at) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (rollout_id, host, step, run_id, code, _now()))

    def finish_rollout(self, rollout_id: int, status: str) -> None:
        """Record that the rollout ended ("done", "stopped")."""
        with self._write() as conn:
            conn.execute("UPDATE rollouts SET status = ?, finished_at = ? WHERE id = ?", (status, _now(), rollout_id))

    def open_rollout(self, cloud: str, hosts: Sequence[str], *, former: Sequence[str] = ()) -> Rollout | None:
        """The latest rollout of `cloud` (or of its `former` keys) over exactly `hosts` that has not ended."""
        keys = _keys(cloud, former)
        with self._guard() as conn:
            rows = _named(conn, f"SELECT id, hosts FROM rollouts WHERE cloud IN ({_marks(keys)}) AND status != 'done'"
                                " ORDER BY id DESC", keys).fetchall()
        for row in rows:
            if json.loads(row["hosts"]) == list(hosts):
                return self.rollout(int(row["id"]))
        return None

    def rollout(self, rollout_id: int) -> Rollout:
        """Rollout `rollout_id` with every step it took; raises `UnknownRun` when there is none."""
        with self._guard() as conn:
            row = _named(conn, "SELECT * FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()
            steps = _named(conn, "SELECT host, step, run_id, code, at FROM rollout_steps WHERE rollout_id = ? "
                                 "ORDER BY id", (rollout_id,)).fetchall()
        if row is None:
            raise UnknownRun(rollout_id)
        return Rollout(
            int(row["id"]), str(row["cloud"]), tuple(json.loads(row["hosts"])), int(row["batch"]),
            bool(row["restore"]), str(row["command"]),
            {str(k): str(v) for k, v in json.loads(row["original"]).items()}, str(row["status"]),
            tuple(RolloutStep(str(s["host"]), s["step"], s["run_id"], s["code"], str(s["at"])) for s in steps))

    def finish_run(self, run_id: int, *, reached: bool, interrupted: bool) -> None:
        """Record that the run ended: "interrupted", else "reached" or "incomplete"."""
        status: RunStatus = "interrupted" if interrupted else "reached" if reached else "incomplete"
        with self._write() as conn:
            cursor = conn.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, _now(), run_id))
            if cursor.rowcount == 0:
                raise UnknownRun(run_id)

    def mark_abandoned(self, cloud: str, alive: Callable[[int], bool] = pid_alive, *,
                       former: Sequence[str] = ()) -> list[int]:
        """Mark this cloud's "running" runs (under its key or a `former` one) whose process is gone as "crashed";
        return their ids, oldest first.

        A reused pid makes a dead run look alive, which only delays marking it; the run lock, not this
        status, is what keeps two runs apart.
        """
        keys = _keys(cloud, former)
        with self._write() as conn:
            rows = _named(conn, f"SELECT id, pid FROM runs WHERE cloud IN ({_marks(keys)}) AND status = 'running'"
                                " ORDER BY id", keys).fetchall()
            dead = [int(row["id"]) for row in rows if not alive(int(row["pid"]))]
            conn.executemany("UPDATE runs SET status = 'crashed' WHERE id = ?", [(run_id,) for run_id in dead])
        return dead

    def _update_move(self, move_id: int, assignments: str, values: tuple[object, ...]) -> None:
        with self._write() as conn:
            cursor = conn.execute(f"UPDATE moves SET {assignments} WHERE id = ?", (*values, move_id))
            if cursor.rowcount == 0:
                raise UnknownMove(move_id)

    # -- reading -------------------------------------------------------------------------------

    def runs(self, limit: int = 50, *, cloud: str | None = None, former: Sequence[str] = ()) -> list[RunSummary]:
        """The most recent runs, newest first, optionally of one cloud only (under its key or a `former` one)."""
        keys = _keys(cloud, former) if cloud is not None else ()
        where = f"WHERE r.cloud IN ({_marks(keys)})" if keys else ""
        params: tuple[object, ...] = (*keys, limit)
        with self._guard() as conn:
            rows = _named(conn, f"SELECT {_RUN_COLUMNS} FROM runs r {where} ORDER BY r.id DESC LIMIT ?", params)
            return [self._summary(row) for row in rows.fetchall()]

    def run(self, run_id: int) -> RunDetail:
        """One run in full; raises UnknownRun."""
        with self._guard() as conn:
            row = _named(conn, f"SELECT {_RUN_COLUMNS}, r.map_text AS map_text, r.plan_json AS plan_json"
                               " FROM runs r WHERE r.id = ?", (run_id,)).fetchone()
            if row is None:
                raise UnknownRun(run_id)
            moves = _named(conn, f"SELECT {_MOVE_COLUMNS} FROM moves m WHERE m.run_id = ? ORDER BY m.id",
                           (run_id,)).fetchall()
        try:
            plan = json.loads(row["plan_json"])
        except ValueError as exc:
            raise JournalError(str(self.path), f"run {run_id} has an unreadable plan: {exc}") from exc
        if not isinstance(plan, dict):
            raise JournalError(str(self.path), f"run {run_id} has a plan that is not a JSON object")
        return RunDetail(self._summary(row), str(row["map_text"]), plan, tuple(self._move(m) for m in moves))

    def unfinished(self, cloud: str, *, former: Sequence[str] = ()) -> list[MoveRecord]:
        """Moves of this cloud that were intended but have no outcome, oldest first (to resume after a crash).

        A run journaled under one of the cloud's `former` keys (an earlier hostmap's) is the cloud's too.
        This includes the in-flight moves of a run still going; call it before starting a run.
        """
        keys = _keys(cloud, former)
        with self._guard() as conn:
            rows = _named(
                conn,
                f"SELECT {_MOVE_COLUMNS} FROM moves m JOIN runs r ON r.id = m.run_id"
                f" WHERE r.cloud IN ({_marks(keys)}) AND m.outcome IS NULL ORDER BY m.id",
                keys,
            ).fetchall()
        return [self._move(row) for row in rows]

    @staticmethod
    def age_s(move: MoveRecord) -> float:
        """Seconds since the move was requested (accepted, else intended) by this machine's wall clock; 0 if unknown."""
        for stamp in (move.submitted_at, move.intended_at):
            age = stamp_age_s(stamp)
            if age is not None:
                return age
        return 0.0

    def known_migration_ids(self, move_id: int) -> frozenset[int]:
        """The server's migration ids that nova listed before this move's request (as given to `intend`)."""
        with self._guard() as conn:
            row = _named(conn, "SELECT known_migration_ids FROM moves WHERE id = ?", (move_id,)).fetchone()
        if row is None:
            raise UnknownMove(move_id)
        try:
            ids = json.loads(row["known_migration_ids"])
            return frozenset(int(i) for i in ids)
        except (ValueError, TypeError) as exc:
            raise JournalError(str(self.path), f"move {move_id} has unreadable migration ids: {exc}") from exc

    def _summary(self, row: sqlite3.Row) -> RunSummary:
        """A run summary from a row holding the `_RUN_COLUMNS`."""
        return RunSummary(
            id=int(row["id"]), cloud=str(row["cloud"]), map_source=str(row["map_source"]),
            started_at=str(row["started_at"]),
            finished_at=None if row["finished_at"] is None else str(row["finished_at"]),
            status=_status(row["status"], str(self.path)), moves=int(row["moves"]), migrated=int(row["migrated"]),
        )

    def _move(self, row: sqlite3.Row) -> MoveRecord:
        """A move record from a row holding the `_MOVE_COLUMNS`."""
        return MoveRecord(
            id=int(row["id"]), run_id=int(row["run_id"]), step=int(row["step"]), server_id=str(row["server_id"]),
            server_name=str(row["server_name"]), source=str(row["source"]), target=str(row["target"]),
            submitted_at=row["submitted_at"], request_id=row["request_id"],
            migration_id=None if row["migration_id"] is None else int(row["migration_id"]),
            outcome=_outcome(row["outcome"], str(self.path)), reason=str(row["reason"]),
            seconds=None if row["seconds"] is None else float(row["seconds"]), intended_at=str(row["intended_at"]),
            cold=bool(row["cold"]), started_s=None if row["started_s"] is None else float(row["started_s"]),
            detail=str(row["detail"]),
        )


def _named(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
    """Run a query whose rows are read by column name (`sqlite3.Row`); the connection's other queries are untouched."""
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params)


def _rowid(cursor: sqlite3.Cursor) -> int:
    rowid = cursor.lastrowid
    if rowid is None:  # pragma: no cover - an INSERT always sets it
        raise RuntimeError("SQLite returned no row id for an INSERT")
    return rowid


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo an open transaction without hiding the error that caused it (SQLite may have rolled back already)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _describe(exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "file is not a database" in text:
        return "not a hostmap journal (not an SQLite database); move it away or choose another journal path"
    if "malformed" in text or "corrupt" in text:
        return f"the journal is corrupt ({text}); move it away to start a new one"
    if "locked" in text or "busy" in text:
        return f"another process kept the journal busy for more than {BUSY_TIMEOUT_S:g} s ({text})"
    return f"SQLite failed: {text}"


def _prepare(conn: sqlite3.Connection, where: str) -> None:
    """Check that the file is empty or a hostmap journal, then set it up: WAL, FULL sync, foreign keys, schema."""
    # Look first, change nothing: another program's database must not be switched to WAL or written to.
    _check_identity(conn, where, allow_empty=True)
    row = _named(conn, "PRAGMA journal_mode = WAL").fetchone()
    mode = "unknown" if row is None else str(row["journal_mode"]).lower()
    if mode != "wal":
        raise JournalError(where, f"SQLite cannot use write-ahead logging on this file system (journal mode {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _tables(conn):  # another process may have created the schema while we looked
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for statement in (*_SCHEMA, *(s for v in sorted(_UPGRADES) for s in _UPGRADES[v])):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (SCHEMA_VERSION, _now()))
        row = _named(conn, "SELECT MAX(version) AS version FROM schema_version").fetchone()
        version = int(row["version"]) if row is not None and row["version"] is not None else SCHEMA_VERSION
        for upgrade in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _UPGRADES[upgrade]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (upgrade, _now()))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    _check_identity(conn, where, allow_empty=False)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r["name"]) for r in _named(conn, "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}


def _check_identity(conn: sqlite3.Connection, where: str, *, allow_empty: bool) -> None:
    # One read transaction, so that the header and the table list come from the same moment even
    # while another process is creating the schema.
    conn.execute("BEGIN")
    try:
        app_row = _named(conn, "PRAGMA application_id").fetchone()
        tables = _tables(conn)
    finally:
        _rollback(conn)
    app_id = int(app_row["application_id"]) if app_row is not None else 0
    if not tables and app_id == 0 and allow_empty:
        return
    if app_id != APPLICATION_ID:
        raise JournalError(where, "not a hostmap journal (an SQLite database of another program);"
                                  " choose another journal path")
    if "schema_version" not in tables:
        raise JournalError(where, "the journal has no schema version table; it is damaged")
    row = _named(conn, "SELECT MAX(version) AS version FROM schema_version").fetchone()
    version = None if row is None or row["version"] is None else int(row["version"])
    if version is None:
        raise JournalError(where, "the journal records no schema version; it is damaged")
    if version > SCHEMA_VERSION:
        raise JournalError(where, f"the journal was written by a newer hostmap (schema version {version};"
                                  f" this hostmap knows up to {SCHEMA_VERSION})")
    missing = {"runs", "moves"} - tables
    if missing:
        raise JournalError(where, f"the journal lacks its {', '.join(sorted(missing))} table; it is damaged")


def _keys(cloud: str, former: Sequence[str]) -> tuple[str, ...]:
    """The cloud's key and its former ones, each once, the current first."""
    return tuple(dict.fromkeys((cloud, *former)))


def _marks(keys: Sequence[str]) -> str:
    """One SQL placeholder per key, for `cloud IN (...)`."""
    return ", ".join("?" * len(keys))
