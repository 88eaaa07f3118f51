"""One apply per cloud per machine: the run lock refuses a second holder and forgets dead ones."""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostmap.runlock import LockHeld, RunLock, default_lock_dir, lock_file_name

SRC = str(Path(__file__).resolve().parent.parent / "src")
WAIT_S = 8.0


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes started by a test; any still running at its end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=WAIT_S)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def _holder(children: list[subprocess.Popen[str]], directory: Path, cloud: str) -> subprocess.Popen[str]:
    """Start a child that takes the cloud's lock, says "locked", and holds it until its stdin closes."""
    code = f"""
        import sys
        from pathlib import Path
        from hostmap.runlock import RunLock
        lock = RunLock({cloud!r}, Path({str(directory)!r}))
        lock.acquire()
        print("locked", flush=True)
        sys.stdin.read()
        lock.release()
    """
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), "apply", "map.json"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    children.append(child)
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], WAIT_S)
    assert ready, "the child did not take the lock in time"
    assert child.stdout.readline().strip() == "locked"
    return child


def test_acquire_writes_holder_details_into_a_private_file(tmp_path: Path) -> None:
    """The holder's pid, UTC start time and command line are in the lock file, which is mode 0600."""
    lock = RunLock("prod", tmp_path / "locks")
    with lock as entered:
        assert entered.held
        details = json.loads(lock.path.read_text(encoding="utf-8"))
        assert details["pid"] == os.getpid()
        assert details["started_at"].endswith("+00:00")
        assert details["command"] == " ".join(sys.argv)
        assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(lock.path.parent.stat().st_mode) == 0o700
    assert not lock.held
    assert lock.path.read_text(encoding="utf-8") == ""


def test_default_directory_is_under_the_state_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a directory the lock file lives in $XDG_STATE_HOME/hostmap/locks."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    lock = RunLock("prod")
    assert default_lock_dir() == tmp_path / "hostmap" / "locks"
    assert lock.path.parent == tmp_path / "hostmap" / "locks"


def test_file_names_are_safe_and_distinct_per_cloud() -> None:
    """Cloud names become safe file names, and names that sanitise alike still get different files."""
    name = lock_file_name("../prod east/1")
    assert "/" not in name
    assert " " not in name
    assert name.endswith(".lock")
    assert name.startswith("prod_east_1-")
    assert lock_file_name("prod east") != lock_file_name("prod_east")
    assert lock_file_name("").startswith("cloud-")
    assert len(lock_file_name("x" * 500)) < 80


def test_second_holder_in_same_process_is_refused(tmp_path: Path) -> None:
    """A second lock on the same cloud is refused even within one process; another cloud is independent."""
    with RunLock("prod", tmp_path):
        with pytest.raises(LockHeld) as error:
            RunLock("prod", tmp_path).acquire()
        assert error.value.pid == os.getpid()
        with RunLock("lab", tmp_path):
            pass
    with RunLock("prod", tmp_path):
        pass


def test_second_holder_in_another_process_gets_lock_held_naming_the_first(
        tmp_path: Path, children: list[subprocess.Popen[str]]) -> None:
    """While a child holds the cloud's lock, acquiring it raises LockHeld with the child's pid and command."""
    child = _holder(children, tmp_path, "prod")
    lock = RunLock("prod", tmp_path)
    with pytest.raises(LockHeld) as error:
        lock.acquire()
    held = error.value
    assert held.pid == child.pid
    assert held.path == str(lock.path)
    assert held.command.endswith("apply map.json")
    assert held.started_at
    assert str(child.pid) in str(held)
    assert not lock.held
    assert child.stdin is not None
    child.stdin.close()
    assert child.wait(timeout=WAIT_S) == 0
    lock.acquire()
    lock.release()


def test_lock_of_a_sigkilled_holder_does_not_block(tmp_path: Path, children: list[subprocess.Popen[str]]) -> None:
    """After the holder is killed with SIGKILL its details remain in the file, yet acquire succeeds."""
    child = _holder(children, tmp_path, "prod")
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=WAIT_S) == -signal.SIGKILL
    lock = RunLock("prod", tmp_path)
    assert json.loads(lock.path.read_text(encoding="utf-8"))["pid"] == child.pid
    with lock:
        assert json.loads(lock.path.read_text(encoding="utf-8"))["pid"] == os.getpid()


def test_leftover_garbage_does_not_block_and_unknown_holder_is_reported(tmp_path: Path) -> None:
    """A lock file with unreadable content is simply overwritten; a holder that wrote nothing is reported as pid 0."""
    lock = RunLock("prod", tmp_path)
    lock.path.write_text("not json", encoding="utf-8")
    with lock:
        lock.path.write_text("", encoding="utf-8")  # as if the holder had not written its details yet
        with pytest.raises(LockHeld) as error:
            RunLock("prod", tmp_path).acquire()
        assert (error.value.pid, error.value.started_at, error.value.command) == (0, "", "")


def test_release_is_idempotent_and_double_acquire_is_a_bug(tmp_path: Path) -> None:
    """Releasing twice is harmless; acquiring a lock this object already holds raises RuntimeError."""
    lock = RunLock("prod", tmp_path)
    lock.release()
    lock.acquire()
    with pytest.raises(RuntimeError):
        lock.acquire()
    lock.release()
    lock.release()
