"""The code base stays ruff-clean and mypy --strict clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree, not an installed copy")
def test_ruff_is_clean() -> None:
    """ruff finds nothing in src, tests and bench."""
    # ruff's script sits beside this interpreter, whether or not its environment is activated (on PATH).
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff is not None, "ruff is a declared test dependency; install '.[test]'"
    result = _run(ruff, "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree, not an installed copy")
def test_mypy_strict_is_clean() -> None:
    """mypy --strict (configured in pyproject.toml) finds nothing in src/hostmap."""
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_apply_does_not_import_rich() -> None:
    """The apply path (lock, journal, planner, executor, reporters, plan JSON) is free of rich, which only renders."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys, hostmap.apply, hostmap.serialise; print('rich' in sys.modules)"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", "hostmap.apply imports rich (directly or through another module)"
