"""hostmap's state directory, where the journal, the run locks and the default log files live."""

from __future__ import annotations

import os
from pathlib import Path


def default_state_dir() -> Path:
    """hostmap's state directory: ``$XDG_STATE_HOME/hostmap``, with XDG_STATE_HOME defaulting to ~/.local/state."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hostmap"
