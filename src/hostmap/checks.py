"""Health checks around each move (`--check CMD`): the operator's command, run before and after a migration.

The executor asks a `Checker` (injected through `ExecutorOptions.check`) and acts on its `CheckResult`; this module
also holds the one real checker, `ShellCheck`, which runs the command with /bin/sh in its own session, bounded by
a timeout, its output going to the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Phase = Literal["pre", "post"]
#: The exit code a check gets when it ran longer than its timeout and was killed (as timeout(1) gives).
TIMED_OUT = 124
#: How much of a check's output the report and the journal keep (the log has all of it).
OUTPUT_KEPT = 300


@dataclass(frozen=True)
class CheckCall:
    """One check to run: before (`pre`) or after (`post`) the move of one server."""

    phase: Phase
    server_id: str
    server_name: str
    source: str
    target: str


@dataclass(frozen=True)
class CheckResult:
    """How a check ended: its exit code (`TIMED_OUT` when killed at the timeout, None when it could not start)."""

    phase: Phase
    code: int | None
    seconds: float
    #: The end of its output (stdout then stderr), at most `OUTPUT_KEPT` characters.
    output: str = ""
    #: Why it could not start (the shell missing, say); empty otherwise.
    problem: str = ""
    #: True when it ran longer than its timeout and was killed (its code is then `TIMED_OUT`).
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.code == 0 and not self.timed_out


Checker = Callable[[CheckCall], CheckResult]


def check_env(call: CheckCall) -> dict[str, str]:
    """The variables a check gets besides hostmap's own environment."""
    return {"HOSTMAP_SERVER_ID": call.server_id, "HOSTMAP_SERVER_NAME": call.server_name,
            "HOSTMAP_SOURCE": call.source, "HOSTMAP_TARGET": call.target, "HOSTMAP_CHECK": call.phase}


def command_line(command: str, call: CheckCall) -> str:
    """`command` with {id}, {name}, {source} and {target} replaced, each quoted for the shell (a server's name is
    its owner's choice, so it is never run as shell syntax)."""
    for key, value in (("{id}", call.server_id), ("{name}", call.server_name), ("{source}", call.source),
                       ("{target}", call.target)):
        command = command.replace(key, shlex.quote(value))
    return command


@dataclass(frozen=True)
class ShellCheck:
    """Runs the operator's command with /bin/sh for one check, killed with all it started after `timeout_s`."""

    command: str
    timeout_s: float = 30.0
    extra_env: Mapping[str, str] | None = None

    def __call__(self, call: CheckCall) -> CheckResult:
        line = command_line(self.command, call)
        env = {**os.environ, **(self.extra_env or {}), **check_env(call)}
        who = f"{call.phase}-check of {call.server_name}"
        log.info("%s: running %s", who, line)
        began = time.monotonic()
        try:
            process = subprocess.Popen(["/bin/sh", "-c", line], env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       errors="backslashreplace", start_new_session=True)
        except OSError as error:
            log.error("%s: could not start: %s", who, error)
            return CheckResult(call.phase, None, 0.0, problem=str(error))
        timed_out = False
        with process:
            try:
                out, err = process.communicate(timeout=self.timeout_s)
                code = process.returncode
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                out, err = process.communicate()
                code, timed_out = TIMED_OUT, True
        seconds = time.monotonic() - began
        for stream, text in (("out", out), ("err", err)):
            for output in (text or "").splitlines():
                log.info("%s: std%s: %s", who, stream, output)
        if timed_out:
            log.error("%s: ran longer than %.0f s and was killed", who, self.timeout_s)
        else:
            log.info("%s: exited with %d", who, code)
        kept = "\n".join(t.strip() for t in (out, err) if t and t.strip())
        return CheckResult(call.phase, code, seconds, kept[-OUTPUT_KEPT:], timed_out=timed_out)


def check_words(check: CheckResult, timeout_s: float | None = None) -> str:
    """A failed check in words, for the move's reason."""
    what = "pre-check" if check.phase == "pre" else "post-check"
    if check.problem:
        return f"check_failed: the {what} could not start ({check.problem})"
    if check.timed_out:
        limit = f" ({timeout_s:.0f} s)" if timeout_s is not None else ""
        said = f"ran past --check-timeout{limit} and was killed"
    else:
        said = f"exited {check.code}"
    tail = check.output.splitlines()[-1] if check.output else ""
    return f"check_failed: the {what} {said}" + (f": {tail}" if tail else "")
