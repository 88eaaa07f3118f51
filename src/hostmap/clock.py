"""Clocks the executor and the simulated cloud share: wall time for real runs, virtual time for rehearsals."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """A monotonic source of seconds and a way to wait on it."""

    def now(self) -> float:
        """Seconds on this clock; only differences are meaningful."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass on this clock."""
        ...


class WallClock:
    """Real time: `time.monotonic` and `time.sleep`."""

    def now(self) -> float:
        """Seconds from the monotonic clock."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block for `seconds` of real time."""
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """Simulated time that moves only when someone sleeps on it, so hours pass in milliseconds."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current virtual second."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance virtual time by `seconds` at once."""
        if seconds > 0:
            with self._lock:
                self._now += seconds

    def advance(self, seconds: float) -> None:
        """Advance virtual time (an alias of sleep that reads better in tests)."""
        self.sleep(seconds)
