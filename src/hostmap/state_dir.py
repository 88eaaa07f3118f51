"""hostmap's state directory, where the journal, the run locks and the default log files live."""

from __future__ import annotations

import os
from pathlib import Path


def default_state_dir() -> Path:
    """hostmap's state directory: ``$XDG_STATE_HOME/hostmap``, with XDG_STATE_HOME defaulting to ~/.local/state."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hostmap"


def private_dir(directory: Path) -> Path:
    """Create `directory` if needed and make it 0700: the names of logs and locks in it name the cloud.

    Only for hostmap's own directories (the state directory and those under it): never for a directory the
    operator named, whose mode is theirs. Parents it creates on the way (``~/.local/state``) get 0700 too.
    """
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, 0o700)
    os.chmod(directory, 0o700)
    return directory
