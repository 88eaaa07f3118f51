"""One `apply` per cloud per machine: an exclusive, non-blocking flock on a per-cloud lock file.

The kernel releases a flock when its holder dies, even by SIGKILL, so a lock left by a dead process
never blocks: its file is still there, with the dead holder's details in it, but it is not locked.
The file is never deleted (deleting it would let two processes lock two different files of the same
name); the holder writes its pid, start time and command line into it so that a refused run can say
who holds the cloud.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from hostmap.errors import HostmapError
from hostmap.state_dir import default_state_dir, private_dir

#: How long a refused contender waits for the holder to finish writing its details (it has just locked).
_READ_PATIENCE_S = 0.5
_READ_PAUSE_S = 0.02


@dataclass
class LockHeld(HostmapError):
    """Another process on this machine is running hostmap against this cloud.

    pid is 0 and started_at and command are empty when the holder had not yet written its details.
    """

    path: str
    pid: int
    started_at: str
    command: str

    def __str__(self) -> str:
        who = f"process {self.pid}" if self.pid else "another process"
        since = f" since {self.started_at}" if self.started_at else ""
        command = f" ({self.command})" if self.command else ""
        return f"{who} holds {self.path}{since}{command}"


def default_lock_dir() -> Path:
    """Where lock files live unless told otherwise: the ``locks`` directory of hostmap's state directory."""
    return default_state_dir() / "locks"


def lock_file_name(cloud: str) -> str:
    """A file name for the cloud: readable, filesystem-safe, and distinct for distinct cloud keys."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", cloud).strip("._")[:48] or "cloud"
    digest = hashlib.sha256(cloud.encode("utf-8")).hexdigest()[:12]
    return f"{readable}-{digest}.lock"


class RunLock:
    """The lock of one cloud; `acquire` never waits, it either holds the lock or raises LockHeld."""

    def __init__(self, cloud: str, directory: Path | None = None) -> None:
        """`directory` holds the lock files; by default `default_lock_dir()`."""
        self.cloud = cloud
        self._private_default = directory is None
        self.directory = directory if directory is not None else default_lock_dir()
        self.path = self.directory / lock_file_name(cloud)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and record this process in the file, or raise LockHeld naming the holder."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        if self._private_default:
            private_dir(self.directory)  # and the state directory above it
        else:
            existed = self.directory.is_dir()
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not existed:
                os.chmod(self.directory, 0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                raise self._holder(fd) from None
            finally:
                os.close(fd)
        except BaseException:
            os.close(fd)
            raise
        try:
            os.fchmod(fd, 0o600)
            details = {
                "pid": os.getpid(),
                "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv),
            }
            data = json.dumps(details).encode("utf-8")
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except BaseException:
            os.close(fd)  # closing releases the flock
            raise
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock; releasing a lock not held is harmless."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # while still holding it: the file then says nobody holds it
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _holder(self, fd: int) -> LockHeld:
        """The holder's details from the file; it may have locked but not yet written them, so retry briefly."""
        deadline = time.monotonic() + _READ_PATIENCE_S
        while True:
            details = _parse(os.pread(fd, 65536, 0))
            if details is not None or time.monotonic() >= deadline:
                break
            time.sleep(_READ_PAUSE_S)
        pid, started_at, command = details if details is not None else (0, "", "")
        return LockHeld(str(self.path), pid, started_at, command)


def _parse(data: bytes) -> tuple[int, str, str] | None:
    try:
        details = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(details, dict):
        return None
    pid = details.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return None
    return pid, str(details.get("started_at", "")), str(details.get("command", ""))
