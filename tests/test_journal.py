"""The journal records runs durably, privately and readably, and refuses files that are not journals."""

from __future__ import annotations

import inspect
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hostmap.journal import (
    _SCHEMA,
    _UPGRADES,
    SCHEMA_VERSION,
    Journal,
    JournalError,
    UnknownMove,
    UnknownRun,
    default_journal_path,
    pid_alive,
)

SRC = str(Path(__file__).resolve().parent.parent / "src")
PLAN = {"steps": [{"server": "web-0", "from": "compute001", "to": "compute002"}]}


def _journal(tmp_path: Path) -> Journal:
    return Journal.open(tmp_path / "journal.sqlite")


def _start(journal: Journal, cloud: str = "prod", pid: int | None = None) -> int:
    return journal.start_run(cloud=cloud, map_source="map.json", map_text='{"web-0": "compute002"}', plan=PLAN,
                             pid=os.getpid() if pid is None else pid)


def _intend(journal: Journal, run_id: int, step: int = 1, server: str = "web-0") -> int:
    return journal.intend(run_id, step=step, server_id=f"id-{server}", server_name=server, source="compute001",
                          target="compute002", known_migration_ids=[12, 5])


def _run_child(code: str, timeout: float = 8.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_path_follows_xdg_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default journal is $XDG_STATE_HOME/hostmap/journal.sqlite."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_journal_path() == tmp_path / "state" / "hostmap" / "journal.sqlite"


def test_default_path_falls_back_to_local_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without XDG_STATE_HOME the journal lives under ~/.local/state/hostmap."""
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert default_journal_path() == Path.home() / ".local" / "state" / "hostmap" / "journal.sqlite"


def test_file_is_0600_and_directory_0700(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal, its WAL companions and its directory are private to the user, even with a lax umask."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    old = os.umask(0)
    try:
        with Journal.open() as journal:
            _intend(journal, _start(journal))
            path = default_journal_path()
            assert _mode(path) == 0o600
            assert _mode(path.parent) == 0o700
            companions = [p for p in path.parent.iterdir() if p.name != path.name]
            assert companions, "an open WAL journal has -wal and -shm files"
            for companion in companions:
                assert _mode(companion) == 0o600, companion
    finally:
        os.umask(old)


def test_existing_journal_with_lax_mode_is_tightened(tmp_path: Path) -> None:
    """Reopening a journal whose mode was loosened sets it back to 0600."""
    path = tmp_path / "journal.sqlite"
    Journal.open(path).close()
    path.chmod(0o644)
    Journal.open(path).close()
    assert _mode(path) == 0o600


def test_connection_uses_wal_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    """The journal runs in WAL mode with synchronous=FULL, foreign keys on, and a schema version recorded."""
    with _journal(tmp_path) as journal:
        conn = journal._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_records_a_run_and_its_moves(tmp_path: Path) -> None:
    """A run's map, plan, moves and their progress read back as recorded."""
    with _journal(tmp_path) as journal:
        run_id = _start(journal)
        move_id = _intend(journal, run_id)
        journal.accepted(move_id, "req-abc")
        journal.migration_found(move_id, 42)
        journal.outcome(move_id, "migrated", "", 12.5)
        journal.finish_run(run_id, reached=True, interrupted=False)
        detail = journal.run(run_id)
        assert journal.known_migration_ids(move_id) == frozenset({5, 12})
    assert detail.summary.status == "reached"
    assert detail.summary.finished_at is not None
    assert (detail.summary.moves, detail.summary.migrated) == (1, 1)
    assert detail.map_text == '{"web-0": "compute002"}'
    assert detail.plan == PLAN
    (move,) = detail.moves
    assert (move.run_id, move.step, move.server_name, move.source, move.target) == (
        run_id, 1, "web-0", "compute001", "compute002")
    assert (move.request_id, move.migration_id, move.outcome, move.seconds) == ("req-abc", 42, "migrated", 12.5)
    assert move.submitted_at is not None
    assert move.submitted_at.endswith("+00:00")


def test_history_lists_newest_first_with_limit_and_statuses(tmp_path: Path) -> None:
    """runs() lists the newest runs first, honours the limit and shows how each ended."""
    with _journal(tmp_path) as journal:
        first, second, third, fourth = (_start(journal, cloud=c) for c in ("a", "b", "a", "a"))
        journal.finish_run(first, reached=False, interrupted=False)
        journal.finish_run(second, reached=False, interrupted=True)
        journal.finish_run(third, reached=True, interrupted=False)
        listed = journal.runs()
        assert [r.id for r in listed] == [fourth, third, second, first]
        assert [r.status for r in listed] == ["running", "reached", "interrupted", "incomplete"]
        assert listed[0].finished_at is None
        assert [r.id for r in journal.runs(limit=2)] == [fourth, third]
        assert [r.id for r in journal.runs(cloud="b")] == [second]


def test_unknown_ids_raise_errors_carrying_them(tmp_path: Path) -> None:
    """Asking for a run or move that does not exist raises UnknownRun or UnknownMove with the id."""
    with _journal(tmp_path) as journal:
        with pytest.raises(UnknownRun) as run_error:
            journal.run(99)
        assert run_error.value.run_id == 99
        with pytest.raises(UnknownRun):
            _intend(journal, 99)
        with pytest.raises(UnknownRun):
            journal.finish_run(99, reached=True, interrupted=False)
        with pytest.raises(UnknownMove) as move_error:
            journal.accepted(7, None)
        assert move_error.value.move_id == 7
        with pytest.raises(UnknownMove):
            journal.known_migration_ids(7)


def test_unfinished_lists_moves_without_outcome_of_one_cloud_oldest_first(tmp_path: Path) -> None:
    """unfinished() returns only this cloud's moves that have no outcome, in intent order."""
    with _journal(tmp_path) as journal:
        run_id = _start(journal, cloud="prod")
        other = _start(journal, cloud="lab")
        done = _intend(journal, run_id, 1, "web-0")
        open_a = _intend(journal, run_id, 2, "web-1")
        _intend(journal, other, 1, "db-0")
        open_b = _intend(journal, run_id, 3, "db-0")
        journal.outcome(done, "failed", "nova said no", 3.0)
        assert [m.id for m in journal.unfinished("prod")] == [open_a, open_b]
        assert journal.unfinished("nowhere") == []


def test_intent_survives_sigkill_right_after_it_is_written(tmp_path: Path) -> None:
    """A child that writes intend() and is then SIGKILLed leaves the record, visible in unfinished()."""
    path = tmp_path / "journal.sqlite"
    child = _run_child(f"""
        import os, signal
        from pathlib import Path
        from hostmap.journal import Journal
        journal = Journal.open(Path({str(path)!r}))
        run_id = journal.start_run(cloud="prod", map_source="m", map_text="", plan={{}}, pid=os.getpid())
        move_id = journal.intend(run_id, step=1, server_id="id-web-0", server_name="web-0",
                                 source="compute001", target="compute002", known_migration_ids=[3])
        print(move_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -signal.SIGKILL, child.stderr
    move_id = int(child.stdout.strip())
    with Journal.open(path) as journal:
        (move,) = journal.unfinished("prod")
        assert (move.id, move.server_name, move.submitted_at, move.outcome) == (move_id, "web-0", None, None)
        assert journal.known_migration_ids(move_id) == frozenset({3})
        assert journal.runs()[0].status == "running"


def test_mark_abandoned_marks_dead_runs_of_that_cloud_crashed(tmp_path: Path) -> None:
    """Runs left "running" by a dead process become "crashed"; live ones and other clouds stay as they are."""
    with _journal(tmp_path) as journal:
        dead = _start(journal, cloud="prod", pid=1111)
        live = _start(journal, cloud="prod", pid=2222)
        elsewhere = _start(journal, cloud="lab", pid=1111)
        finished = _start(journal, cloud="prod", pid=1111)
        journal.finish_run(finished, reached=True, interrupted=False)
        assert journal.mark_abandoned("prod", lambda pid: pid == 2222) == [dead]
        statuses = {r.id: r.status for r in journal.runs()}
        assert statuses == {dead: "crashed", live: "running", elsewhere: "running", finished: "reached"}
        assert journal.mark_abandoned("prod", lambda pid: pid == 2222) == []


def test_mark_abandoned_default_checks_real_processes(tmp_path: Path) -> None:
    """By default a run whose process has exited is crashed and this process's run is not."""
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                            timeout=8, check=True)
    dead_pid = int(exited.stdout)
    assert not pid_alive(dead_pid)
    with _journal(tmp_path) as journal:
        dead = _start(journal, pid=dead_pid)
        mine = _start(journal)
        assert journal.mark_abandoned("prod") == [dead]
        assert journal.run(mine).summary.status == "running"


def test_text_file_is_refused_with_a_clear_problem(tmp_path: Path) -> None:
    """A file that is not SQLite raises JournalError naming the path, and is left untouched."""
    path = tmp_path / "journal.sqlite"
    path.write_text("hosts:\n  web-0: compute002\n" * 20, encoding="utf-8")
    path.chmod(0o644)
    before = path.read_bytes()
    with pytest.raises(JournalError) as error:
        Journal.open(path)
    assert error.value.path == str(path)
    assert "not a hostmap journal" in error.value.problem
    assert path.read_bytes() == before
    assert _mode(path) == 0o644


def test_other_programs_database_is_refused_and_not_changed(tmp_path: Path) -> None:
    """An SQLite database of another program is refused without switching it to WAL or adding tables."""
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError) as error:
        Journal.open(path)
    assert "another program" in error.value.problem
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]
    finally:
        conn.close()


def test_corrupt_journal_is_refused_with_a_clear_problem(tmp_path: Path) -> None:
    """A journal whose pages were overwritten raises JournalError, not a sqlite3 traceback."""
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as journal:
        _intend(journal, _start(journal))
    data = bytearray(path.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)  # keep the header, ruin the pages
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError) as error:
        Journal.open(path)
    assert error.value.path == str(path)
    assert "corrupt" in error.value.problem or "damaged" in error.value.problem


def test_journal_from_a_newer_hostmap_is_refused(tmp_path: Path) -> None:
    """A schema version above the one this code knows is refused, not guessed at."""
    path = tmp_path / "journal.sqlite"
    Journal.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, 'later')")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError) as error:
        Journal.open(path)
    assert "newer hostmap" in error.value.problem


def test_unwritable_location_raises_journal_error(tmp_path: Path) -> None:
    """A path whose parent is a file raises JournalError instead of an OSError traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(JournalError) as error:
        Journal.open(blocker / "journal.sqlite")
    assert "cannot create" in error.value.problem


def test_empty_file_becomes_a_journal(tmp_path: Path) -> None:
    """An existing empty file (e.g. created with the right mode beforehand) is initialised as a journal."""
    path = tmp_path / "journal.sqlite"
    path.touch(mode=0o600)
    with Journal.open(path) as journal:
        assert journal.runs() == []


def test_no_credentials_are_accepted() -> None:
    """No recording method has a parameter that could carry a password or token."""
    for name in ("start_run", "intend", "accepted", "migration_found", "outcome", "finish_run"):
        parameters = inspect.signature(getattr(Journal, name)).parameters
        assert not [p for p in parameters if any(w in p for w in ("password", "token", "secret", "auth"))], name


def test_second_reader_sees_committed_records_while_the_writer_is_open(tmp_path: Path) -> None:
    """A second open journal (e.g. `history` during an apply) reads what the first has committed."""
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as writer, Journal.open(path) as reader:
        run_id = _start(writer)
        move_id = _intend(writer, run_id)
        assert [m.id for m in reader.unfinished("prod")] == [move_id]
        reader.mark_abandoned("prod")
        writer.outcome(move_id, "migrated", "", 1.0)
        assert reader.unfinished("prod") == []


def test_simultaneous_first_opens_create_one_schema(tmp_path: Path) -> None:
    """Several processes opening a new journal at once all succeed and share one schema."""
    path = tmp_path / "journal.sqlite"
    code = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from hostmap.journal import Journal
        with Journal.open(Path({str(path)!r})) as journal:
            journal.start_run(cloud="prod", map_source="m", map_text="", plan={{}}, pid=os.getpid())
    """)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=8)
        assert proc.returncode == 0, err
    with Journal.open(path) as journal:
        assert len(journal.runs()) == 4
        assert journal._conn.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (1,)


def test_a_version_1_journal_is_brought_up_to_date_and_keeps_its_runs(tmp_path: Path) -> None:
    """A journal written before services were recorded opens, gains the services table, and keeps its runs."""
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as journal:
        run_id = journal.start_run(cloud="prod", map_source="m", map_text="", plan={}, pid=os.getpid())
        journal._conn.execute("DROP TABLE services")
        journal._conn.execute("DROP TABLE rollout_steps")
        journal._conn.execute("DROP TABLE rollouts")
        journal._conn.execute("ALTER TABLE moves DROP COLUMN cold")
        journal._conn.execute("DELETE FROM schema_version")
        journal._conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (1, 'then')")
    with Journal.open(path) as journal:
        assert [r.id for r in journal.runs()] == [run_id]
        journal.service_changed(run_id, "compute001", "disabled", "hostmap run 1 (drain)")
        assert [(c.host, c.action, c.reason) for c in journal.service_changes(run_id)] == [
            ("compute001", "disabled", "hostmap run 1 (drain)")]
        versions = journal._conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert versions == [(1,), (2,), (3,), (4,), (5,), (6,)]
        rollout = journal.start_rollout(cloud="prod", hosts=["c1"], batch=1, restore=False, command="true",
                                        original={"vm": "c1"})
        journal.rollout_step(rollout, "c1", "exec_started")
        found = journal.open_rollout("prod", ["c1"])
        assert found is not None
        assert found.done("c1", "exec_started") is not None


def test_a_version_4_journal_keeps_its_moves_and_takes_the_stall_outcomes(tmp_path: Path) -> None:
    """Upgrading to schema 5 copies the moves table: its rows stay, and `stalled` and a detail can be recorded."""
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as journal:
        run_id = journal.start_run(cloud="prod", map_source="m", map_text="", plan={}, pid=os.getpid())
        # The moves table as schema 4 had it (its CHECK knows no `stalled`), with one move.
        journal._conn.execute("DROP TABLE moves")
        for statement in (*(s for s in _SCHEMA if "CREATE TABLE moves" in s or "ON moves" in s), *_UPGRADES[4]):
            journal._conn.execute(statement)
        move = journal.intend(run_id, step=0, server_id="s", server_name="vm", source="a", target="b",
                              known_migration_ids=[])
        journal._conn.execute("DELETE FROM schema_version")
        journal._conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (4, 'then')")
        with pytest.raises(sqlite3.IntegrityError):
            journal._conn.execute("UPDATE moves SET outcome = 'stalled'")
    with Journal.open(path) as journal:
        journal.outcome(move, "stalled", "stalled", 61.0)
        journal.detail(move, '{"stall": {"action": "abort"}}')
        (found,) = journal.run(run_id).moves
        assert (found.server_name, found.outcome) == ("vm", "stalled")


def test_a_version_5_journal_gains_the_run_clock_start(tmp_path: Path) -> None:
    """Upgrading to schema 6 adds `started_s` (NULL in the old rows), and an outcome then records it."""
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as journal:
        run_id = journal.start_run(cloud="prod", map_source="m", map_text="", plan={}, pid=os.getpid())
        old = journal.intend(run_id, step=0, server_id="s", server_name="vm", source="a", target="b",
                             known_migration_ids=[])
        journal._conn.execute("ALTER TABLE moves DROP COLUMN started_s")
        journal._conn.execute("UPDATE schema_version SET version = 5")
    with Journal.open(path) as journal:
        assert journal._conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (6,)
        assert journal.run(run_id).moves[0].started_s is None
        journal.outcome(old, "migrated", "", 12.5, started_s=3600.0)
        (found,) = journal.run(run_id).moves
        assert (found.started_s, found.seconds) == (3600.0, 12.5)
