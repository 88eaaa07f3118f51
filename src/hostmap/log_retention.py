"""Old log files go: the state directory keeps the most recent ones, and none older than a month."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

#: How many of hostmap's own log files the state directory keeps, and how old one may get.
KEEP_LOGS = 50
MAX_AGE_S = 30 * 86400.0
#: The names hostmap gives its default log files (`hostmap-YYYYmmdd-HHMMSS-PID.log`); nothing else is touched.
PATTERN = "hostmap-*.log"


def prune_logs(directory: Path, *, keep: int = KEEP_LOGS, max_age_s: float = MAX_AGE_S,
               spare: Path | None = None, now: float | None = None) -> list[Path]:
    """Delete hostmap's log files in `directory` beyond the `keep` newest and those older than `max_age_s`;
    `spare` (the log just opened) is never deleted. Returns what was deleted; a file that cannot be is left."""
    now = time.time() if now is None else now
    found: list[tuple[float, Path]] = []
    for path in directory.glob(PATTERN):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                found.append((path.stat().st_mtime, path))
    found.sort(reverse=True)
    deleted: list[Path] = []
    for rank, (mtime, path) in enumerate(found):
        if path == spare or (rank < keep and now - mtime <= max_age_s):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            deleted.append(path)
    return deleted
