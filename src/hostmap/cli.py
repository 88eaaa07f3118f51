"""Command line: argument parsing, prompts, and the one place errors become words and exit codes."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import select
import shlex
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, NoReturn

from hostmap import __version__
from hostmap.clock import Clock, VirtualClock, WallClock
from hostmap.cloud.base import Cloud, ColdMigrationUnsupported, Submission
from hostmap.documents import check_regular
from hostmap.errors import (
    CapacityError,
    CloudConfigError,
    CloudError,
    DrainDoesNotFit,
    HostmapError,
    InfeasiblePlanError,
    InputError,
    InputErrors,
    MissingCredentials,
    MissingExtra,
    NotLiveMigratable,
    PolicyError,
    UnknownCloud,
    UnknownHostError,
    ZoneError,
)
from hostmap.events import EventReporter, EventStream
from hostmap.executor import Answer, Confirm, ExecutorOptions
from hostmap.journal import JournalError, RunDetail, ServiceChange, UnknownRun
from hostmap.log_retention import prune_logs
from hostmap.model import COLD_MIGRATABLE_STATUSES, Inventory, Limits, Plan, Server, Step
from hostmap.redact import RedactingFilter
from hostmap.reporter import LegRecorder, Reporter
from hostmap.results import MoveResult, RunResult
from hostmap.runlock import LockHeld
from hostmap.state_dir import default_state_dir, private_dir
from hostmap.timing import (
    MigrationParams,
    dirty_bytes_per_s,
    duration_model,
    gbps_to_bytes_per_s,
    nic_links,
)
from hostmap.wording import counted, printable

if TYPE_CHECKING:
    from hostmap.apply import ServiceChanges
    from hostmap.cloud.openstack import ConnectOptions
    from hostmap.hostmap_file import HostMap
    from hostmap.listing import Listing
    from hostmap.restore import Restore
    from hostmap.timeline import Timeline

EXIT_OK = 0
#: Seconds between an anti-affine member leaving a host and another arriving: nova's scheduler_instance_sync_interval
#: (120 s) and a margin.
DEFAULT_GROUP_SETTLE_S = 130.0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_INFEASIBLE = 3
EXIT_CLOUD = 4
EXIT_INTERRUPTED = 130
#: 128 + SIGTERM, as a shell reports a process SIGTERM ended.
EXIT_TERMINATED = 143

log = logging.getLogger("hostmap")
# Before a log file is opened (or in a command that opens none), hostmap's lines go nowhere, not to stderr.
log.addHandler(logging.NullHandler())


class _Parser(argparse.ArgumentParser):
    # Subparsers are built with this class too, so `parents` may hold plain ArgumentParsers.
    """argparse that reports usage errors with exit code 2 and never a traceback."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive(what: str) -> Callable[[str], float]:
    """An argparse type: a finite number above 0, refused in words that say what it measures (`what`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, got {text!r}")
        return value

    return parse


_positive_float = _positive("number of seconds")
_positive_rate = _positive("rate in Gbit/s")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"must be a percentage from 0 up to (not including) 100, got {text!r}")
    return value


def _cloud_options() -> _Parser:
    """hostmap's own options of a command that talks to a cloud; openstacksdk's (`--os-*`, `--insecure`) come from
    `_sdk_options`, as the openstack client has them."""
    common = _Parser(add_help=False)
    group = common.add_argument_group("hostmap's cloud options")
    group.add_argument("--sim", action="store_true", help="run against the embedded simulated cloud (demo scenario)")
    group.add_argument("--sim-scenario", metavar="FILE", default=None,
                       help="run against the embedded simulated cloud loaded with this scenario (implies --sim)")
    group.add_argument("--virtual-time", action="store_true",
                       help="with --sim: the simulated cloud and hostmap share a virtual clock (hours in seconds)")
    _log_option(group)
    group.add_argument("--debug", action="store_true",
                       help="log every HTTP request and answer to stderr and the log file (tokens and passwords "
                            "redacted), and show tracebacks")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="also show the log's lines (every API action) on stderr")
    return common


def _sdk_options(argv: Sequence[str]) -> _Parser:
    """openstacksdk's own options (`--os-cloud`, `--os-auth-url`, `--os-password`, `--insecure`, ...) as a parent
    parser, their destinations kept in `args.sdk_options` for `_connect_options`."""
    from hostmap.cloud.openstack import sdk_parser

    registered, options = sdk_parser(argv)
    parser = _Parser(add_help=False, parents=[registered])
    parser.set_defaults(sdk_options=options)
    return parser


def _log_option(group: argparse._ActionsContainer) -> None:
    group.add_argument("--log-file", metavar="FILE", default=None,
                       help="where to log every API action (default: a new file in the user's state directory)")


def _schedule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallel", type=_positive_int, default=None, metavar="N",
                        help="at most N migrations in flight in total (default: as many as the hosts allow)")
    parser.add_argument("--max-per-host", type=_positive_int, default=1, metavar="K",
                        help="at most K outgoing migrations per source host (default 1, nova's default)")
    parser.add_argument("--max-in-flight-per-group", type=_positive_int, default=None, metavar="N",
                        dest="per_group",
                        help="at most N members of one server group migrating at once, so that an application's "
                             "replicas are never all in flight together (default: no such limit)")
    parser.add_argument("--max-in-per-host", type=_positive_int, default=None, metavar="K",
                        help="at most K migrations arriving at one host at once (default: no limit; nova counts "
                             "outgoing migrations only)")
    parser.add_argument("--group-settle", type=_non_negative_float, default=DEFAULT_GROUP_SETTLE_S, metavar="S",
                        help="wait S seconds after a member of an anti-affinity group leaves a host before moving "
                             "another member there: nova's scheduler sees it gone only at the compute's next "
                             f"instance sync (default {DEFAULT_GROUP_SETTLE_S:g}: scheduler_instance_sync_interval "
                             "is 120 s; 0 if track_instance_changes is off)")
    parser.add_argument("--cold", action="store_true",
                        help="cold-migrate SHUTOFF servers (nova's migrate to the chosen host, then confirm the "
                             "resize; they stay SHUTOFF) instead of refusing them; needs compute API 2.56")
    model = parser.add_argument_group("estimates (they order the plan and predict its duration; nothing else)")
    model.add_argument("--nic-gbps", type=_positive_rate, default=None, metavar="G",
                       help="each compute host's migration network, Gbit/s per direction (default 10; the "
                            "scenario's in the simulated cloud)")
    model.add_argument("--stream-gbps", type=_positive_rate, default=None, metavar="G",
                       help="the most one live migration moves, Gbit/s (default 8; the scenario's in the simulated "
                            "cloud)")


def _limits(args: argparse.Namespace) -> Limits:
    """The run's limits from the schedule options."""
    return Limits(max_per_host=args.max_per_host, parallel=args.parallel, per_group=args.per_group,
                  max_in_per_host=args.max_in_per_host)


def _timeline_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeline", metavar="FILE.html", default=None,
                        help="also draw the schedule as a self-contained HTML page (needs hostmap[timeline])")


def _zone_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assume-unpinned", action="store_true",
        help="on a cloud whose compute API is older than 2.96 (no pinned_availability_zone), take every server as "
             "pinned to no zone instead of to the zone it is in. Right only if no server was booted into a zone by "
             "name and [DEFAULT] default_schedule_zone is unset; otherwise nova's scheduler refuses a move out of a "
             "server's zone mid-run (No valid host), and the moves waiting on it do not start")


def _write_timeline(path: str | None, timeline: Callable[[], Timeline], stderr: IO[str]) -> None:
    """Draw the timeline to `path` when one was asked for (the check for plotly comes first, in `need_plotly`)."""
    if not path:
        return
    from hostmap.timeline_html import write_html

    write_html(timeline(), path)
    stderr.write(f"hostmap: timeline written to {path}\n")


def _need_plotly(path: str | None) -> None:
    """Refuse --timeline before anything runs when plotly is missing."""
    if path:
        from hostmap.timeline_html import require_plotly

        require_plotly()


def _run_options(parser: argparse.ArgumentParser, journal_help: str | None = None) -> None:
    """The options of a run that migrates: `apply`, and `drain`/`restore` with --apply."""
    parser.add_argument("-y", "--yes", "--y", action="store_true", help="do not prompt before each migration")
    parser.add_argument("--timeout", type=_positive_float, default=600.0, metavar="S",
                        help="seconds each migration may take from its submission (default 600)")
    parser.add_argument("--on-timeout", choices=("abort", "leave", "force-complete"), default="abort",
                        help="abort a migration that times out (default), leave it running, or force it to complete "
                             "(within --max-pause-s, else abort)")
    parser.add_argument("--stall-s", type=_positive_float, default=60.0, metavar="S",
                        help="a running migration whose remaining memory made no new low (or whose copy rate stayed "
                             "at or below its dirty rate) for S seconds is stalled (default 60)")
    parser.add_argument("--on-stall", choices=("abort", "force-complete", "wait"), default="abort",
                        help="abort a stalled migration (default; outcome stalled), force it to complete (nova "
                             "pauses the guest to finish the copy, or switches to post-copy), or wait until --timeout")
    parser.add_argument("--max-pause-s", type=_positive_float, default=5.0, metavar="S",
                        help="force a migration to complete only if its guest's predicted pause (remaining memory "
                             "over the copy rate) is at most S seconds (default 5); otherwise abort it")
    parser.add_argument("--check", metavar="CMD", default=None,
                        help="a health check run with /bin/sh before each migration and after it completes: {id}, "
                             "{name}, {source} and {target} are replaced (quoted) and HOSTMAP_SERVER_ID, "
                             "HOSTMAP_SERVER_NAME, HOSTMAP_SOURCE, HOSTMAP_TARGET and HOSTMAP_CHECK (pre or post) "
                             "set; a failing pre-check skips the move (check_failed, nothing sent), a failing "
                             "post-check exits 1 and stops the moves of the server's groups; output to the log")
    parser.add_argument("--check-timeout", type=_positive_float, default=30.0, metavar="S",
                        help="kill a --check command (with what it started) after S seconds: a failure (default 30)")
    parser.add_argument("--stop-on-failure", action="store_true", help="start no new migration after one fails")
    parser.add_argument("--journal", metavar="FILE", default=None,
                        help=journal_help or "SQLite journal of runs (default: journal.sqlite in the user's state "
                                             "directory)")
    parser.add_argument("--events", metavar="FILE", default=None,
                        help="append every event of the run to FILE as JSON lines, as it happens (docs/events.md); "
                             "'-' writes them to standard output, and the report goes to standard error")


def _format_option(parser: argparse.ArgumentParser, default: str | None = "table", help: str | None = None) -> None:
    """`-f FORMAT` and `-c COLUMN`, as the openstack client offers them (the plugin gets cliff's own instead)."""
    from hostmap.listing import FORMATS

    parser.add_argument("-f", "--format", choices=FORMATS, default=default, help=help)
    parser.add_argument("-c", "--column", dest="columns", action="append", default=[], metavar="COLUMN",
                        help="show only this column of the listing (repeat for more; names are the JSON keys)")


def _args_export(parser: argparse.ArgumentParser, formats: bool) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write the host map to FILE: YAML when FILE ends in .yaml or .yml, else JSON "
                             "(or as -f json|yaml says); an existing FILE is kept unless --force is given")
    parser.add_argument("--force", action="store_true",
                        help="let -o FILE overwrite an existing file (it may be a saved placement to restore from)")
    if formats:
        _format_option(parser, default=None,
                       help="json (default) or yaml: the host map itself; table, csv or value: its summary "
                            "(host, count, servers)")


def _args_plan(parser: argparse.ArgumentParser, formats: bool) -> None:
    parser.add_argument("host_map", metavar="MAP", help="host map file (JSON, or YAML by extension)")
    if formats:
        _format_option(parser)
    _timeline_option(parser)
    _zone_option(parser)
    _schedule_options(parser)


def _args_drain(parser: argparse.ArgumentParser, formats: bool) -> None:
    parser.add_argument("hosts", nargs="+", metavar="HOST", help="compute host (service host or hypervisor hostname)")
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write the host map to FILE (the summary then goes to stdout; else to stderr)")
    if formats:
        _format_option(parser, help="the summary's format")
    parser.add_argument("--headroom", type=_percent, default=0.0, metavar="PCT",
                        help="keep PCT %% of each resource free on every host that receives servers (default 0)")
    parser.add_argument("--apply", action="store_true",
                        help="disable the HOSTs' compute services, then carry the map out as `apply` does")
    _zone_option(parser)
    _run_options(parser, journal_help=None)
    _schedule_options(parser)


def _args_restore(parser: argparse.ArgumentParser, formats: bool) -> None:
    parser.add_argument("run", metavar="RUN", type=_positive_int, help="the run's id, as `hostmap history` lists it")
    parser.add_argument("-o", "--output", metavar="FILE", default=None, help="write the host map to FILE")
    if formats:
        _format_option(parser, help="the report's format, with --apply")
    parser.add_argument("--apply", action="store_true",
                        help="re-enable the compute services RUN disabled, then carry the map out as `apply` does")
    _run_options(parser, journal_help="the journal to read RUN from (and, with --apply, to write to)")
    _schedule_options(parser)


def _args_maintain(parser: argparse.ArgumentParser, formats: bool) -> None:
    parser.add_argument("hosts", nargs="+", metavar="HOST", help="compute host, in the order to maintain them")
    parser.add_argument("--exec", required=True, metavar="CMD", dest="exec_command",
                        help="shell command run once per host ({host} and $HOSTMAP_HOST name it); non-zero stops")
    parser.add_argument("--batch", type=_positive_int, default=1, metavar="N", help="hosts at a time (default 1)")
    parser.add_argument("--up-timeout", type=_positive_float, default=1800.0, metavar="S",
                        help="seconds to wait for a host's compute service to be up after CMD (default 1800)")
    parser.add_argument("--exec-timeout", type=_positive_float, default=3600.0, metavar="S",
                        help="seconds CMD may run on one host before it is killed and counted failed "
                             "(default 3600)")
    parser.add_argument("--restore", action="store_true",
                        help="put every server back on its original host once that host is done")
    parser.add_argument("--dry-run", action="store_true", help="show the rollout batch by batch; change nothing")
    parser.add_argument("--rerun-exec", action="store_true",
                        help="run CMD again on a host where an interrupted rollout started it without seeing it end")
    parser.add_argument("--headroom", type=_percent, default=0.0, metavar="PCT",
                        help="keep PCT %% of each resource free on every host that receives servers (default 0)")
    if formats:
        _format_option(parser)
    _zone_option(parser)
    _run_options(parser)
    _schedule_options(parser)


def _args_apply(parser: argparse.ArgumentParser, formats: bool) -> None:
    parser.add_argument("host_map", metavar="MAP", help="host map file (JSON, or YAML by extension)")
    if formats:
        _format_option(parser)
    _timeline_option(parser)
    _zone_option(parser)
    _run_options(parser)
    _schedule_options(parser)


def _args_history(parser: argparse.ArgumentParser, formats: bool) -> None:
    parser.add_argument("run", metavar="RUN", type=_positive_int, nargs="?", default=None,
                        help="the run to show (default: list runs)")
    if formats:
        _format_option(parser)
    parser.add_argument("--journal", metavar="FILE", default=None, help="the journal to read")
    parser.add_argument("--limit", type=_positive_int, default=50, help="how many runs to list (default 50)")
    _timeline_option(parser)


@dataclass(frozen=True)
class CommandSpec:
    """A command both faces offer (`hostmap NAME` and `openstack hostmap NAME`): its help and its arguments."""

    help: str
    #: Adds the command's own arguments; `formats`: also -f/-c (the openstack plugin has cliff's instead).
    arguments: Callable[[argparse.ArgumentParser, bool], None]
    #: Whether it talks to a cloud (the cloud options, authentication in the plugin).
    cloud: bool = True


#: Every command of both faces, in `hostmap --help` order: the one place their arguments are defined.
COMMANDS: dict[str, CommandSpec] = {
    "export": CommandSpec("print the current placement as a host map", _args_export),
    "plan": CommandSpec("show what would move, in order; changes nothing", _args_plan),
    "drain": CommandSpec("write a host map that empties HOSTs onto the others, spreading the load", _args_drain),
    "restore": CommandSpec("write the host map that puts the servers run RUN moved back where they were",
                           _args_restore),
    "maintain": CommandSpec("roll maintenance across HOSTs, batch by batch: disable, drain, run CMD, wait for "
                            "the service, enable (and put the servers back)", _args_maintain),
    "apply": CommandSpec("live-migrate servers until the cloud matches the map", _args_apply),
    "history": CommandSpec("list past runs from the journal, or show one run's moves", _args_history, cloud=False),
}


def _command_of(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """The command (and sim command) `argv` names, before parsing: openstacksdk's options are registered for that
    command only (reading clouds.yaml and the auth plugins costs time `hostmap --help` or `history` need not pay)."""
    words = [a for a in argv if not a.startswith("-")]
    return (words[0] if words else None), (words[1] if len(words) > 1 else None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `hostmap` argument parser (for `argv`, whose command gets openstacksdk's options)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command, sim_command = _command_of(argv)
    common = _cloud_options()

    def cloud_parents(name: str) -> list[_Parser]:
        return [common, _sdk_options(argv)] if name == command else [common]

    parser = _Parser(prog="hostmap", description="Live-migrate OpenStack servers until the cloud matches a host map.")
    parser.add_argument("--version", action="version", version=f"hostmap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, spec in COMMANDS.items():
        spec.arguments(sub.add_parser(name, parents=cloud_parents(name) if spec.cloud else [], help=spec.help), True)

    sim = sub.add_parser("sim", help="the simulated cloud")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar="SIMCOMMAND", parser_class=_Parser)
    serve = sim_sub.add_parser("serve", help="serve the simulated cloud and print the OS_* variables that reach it")
    serve.add_argument("--scenario", metavar="FILE", default=None, help="scenario file (default: the demo)")
    serve.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)")
    capturing = (command, sim_command) == ("sim", "capture")
    capture = sim_sub.add_parser("capture", parents=[common, _sdk_options(argv)] if capturing else [common],
                                 help="write a scenario file of the cloud (read-only), to rehearse on its twin")
    capture.add_argument("-o", "--output", metavar="FILE", default=None, help="write the scenario to FILE")
    capture.add_argument("--journal", metavar="FILE", default=None,
                         help="the journal whose runs on this cloud give measured copy rates (default: hostmap's)")
    capture.add_argument("--nic-gbps", type=_positive_rate, default=None, metavar="G",
                         help="each host's migration network where the journal measured nothing (default 10)")
    capture.add_argument("--stream-gbps", type=_positive_rate, default=None, metavar="G",
                         help="the most one live migration moves where the journal measured nothing (default 8)")
    return parser


def build_seed_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of the seed-compatible `openstack-live-migration` command."""
    parser = _Parser(
        prog="openstack-live-migration",
        parents=[_cloud_options(), _sdk_options(list(sys.argv[1:] if argv is None else argv))],
        description="Live-migrate instances one at a time, as described by a host map (seed-compatible).",
    )
    parser.add_argument("--host_map", "--host-map", dest="host_map", required=True, metavar="FILE",
                        help="host map configuration file (JSON)")
    parser.add_argument("--timeout", type=_positive_float, default=600.0, metavar="S",
                        help="seconds each migration may take (default 600)")
    parser.add_argument("--y", "--yes", "-y", dest="yes", action="store_true",
                        help="do not prompt before server migration")
    parser.add_argument("--journal", metavar="FILE", default=None, help="SQLite journal of runs")
    return parser


# -- prompting ------------------------------------------------------------------------------------------------

_ANSWERS: dict[str, Answer] = {"y": "yes", "yes": "yes", "n": "no", "no": "no", "a": "all", "all": "all",
                               "q": "quit", "quit": "quit"}
#: Asked once, after the plan's summary, before the first move's question.
_PLAN_QUESTION = "Go on? [y]es, asking before each migration/[a]ll, without asking/[n]o: "
#: How many unusable answers in a row are tolerated before hostmap treats the input as "quit".
_MAX_BAD_ANSWERS = 5


class Prompter:
    """Asks before each migration; reads answers line by line, and end of input means quit."""

    def __init__(self, inventory: Inventory, stdin: IO[str], stderr: IO[str], *,
                 pause: Callable[[], AbstractContextManager[None]] | None = None,
                 interrupts: _Interrupts | None = None, watch_every_s: float = 2.0,
                 plan: Plan | None = None) -> None:
        self._servers: dict[str, Server] = {s.id: s for s in inventory.servers}
        #: The plan whose summary is shown, and asked about once, before the first move's question.
        self._plan = plan
        #: The operator said no to the whole plan: every move's answer is "quit", without asking.
        self._refused = False
        #: Answers typed on a terminal are echoed by it; piped ones are written after their question here, so that
        #: the transcript shows each question and its answer on a line of their own.
        self._echo = not _is_terminal(stdin)
        self._stdin = stdin
        self._stderr = stderr
        self._pause = pause
        self._interrupts = interrupts
        self._watch_every_s = watch_every_s
        #: Bytes read from standard input past the last answer (it is read unbuffered, to wait on it with select).
        self._pending = b""

    def __call__(self, step: Step, meanwhile: Callable[[], None] = lambda: None) -> Answer:
        move = step.move
        server = self._servers.get(move.server_id)
        size = ""
        if server is not None:
            d = server.demand
            size = f" ({server.flavor}: {d.vcpu} vCPU, {d.memory_mb} MiB RAM, {d.disk_gb} GB disk)"
        pivot = f" (pivot on the way to {move.final_target})" if move.is_detour else ""
        question = (f"Migrate {move.server_name} [{move.server_id}]{size} {move.source} -> {move.target}{pivot}? "
                    "[y]es/[n]o/[a]ll/[q]uit: ")
        if self._refused:
            return "quit"
        with self._pause() if self._pause is not None else contextlib.nullcontext():
            if self._interrupts is not None:
                self._interrupts.prompting = True
            try:
                if self._plan is not None:
                    from hostmap.report import plan_summary

                    plan, self._plan = self._plan, None
                    self._stderr.write(f"hostmap: the plan: {plan_summary(plan)}\n")
                    go_on = self._ask(_PLAN_QUESTION, self._uninterrupted(meanwhile),
                                      {"y": "yes", "yes": "yes", "a": "all", "all": "all", "n": "no", "no": "no"})
                    if go_on == "all":
                        return "all"  # this move and every later one, without asking
                    if go_on != "yes":
                        self._refused = True
                        return "quit"
                return self._ask(question, self._uninterrupted(meanwhile))
            except KeyboardInterrupt:
                self._stderr.write("\n(interrupted: quitting)\n")
                return "quit"
            finally:
                if self._interrupts is not None:
                    self._interrupts.prompting = False

    def _uninterrupted(self, meanwhile: Callable[[], None]) -> Callable[[], None]:
        """`meanwhile`, shielded from Ctrl-C (which would cut a watch round short); a Ctrl-C pressed during it
        still ends the prompt as soon as it returns."""
        interrupts = self._interrupts
        if interrupts is None:
            return meanwhile

        def shielded() -> None:
            before = interrupts.count
            interrupts.prompting = False
            try:
                meanwhile()
            finally:
                interrupts.prompting = True
            if interrupts.count > before:
                raise KeyboardInterrupt

        return shielded

    def _ask(self, question: str, meanwhile: Callable[[], None], answers: Mapping[str, Answer] = _ANSWERS) -> Answer:
        for _ in range(_MAX_BAD_ANSWERS):
            self._stderr.write(question)
            self._stderr.flush()
            line = self._readline(meanwhile)
            if not line:
                self._stderr.write("\n(end of input: quitting)\n")
                return "quit"
            if self._echo:
                self._stderr.write(line.strip() + "\n")
            answer = answers.get(line.strip().lower())
            if answer is not None:
                return answer
            letters = [k for k in answers if len(k) == 1]
            self._stderr.write(f"please answer {', '.join(letters[:-1])} or {letters[-1]}\n")
        return "quit"

    def _readline(self, meanwhile: Callable[[], None]) -> str:
        """The next line of input ("" at its end); while none has come, `meanwhile` every `watch_every_s`."""
        try:
            fd = self._stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return self._stdin.readline()  # not a file (a test's StringIO): the answer is there already
        while b"\n" not in self._pending:
            ready, _, _ = select.select([fd], [], [], self._watch_every_s)
            if not ready:
                meanwhile()
                continue
            chunk = os.read(fd, 4096)
            if not chunk:  # end of input: what is left is the last line
                line, self._pending = self._pending, b""
                return line.decode(errors="replace")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode(errors="replace") + "\n"


# -- running --------------------------------------------------------------------------------------------------


@dataclass
class _Session:
    cloud: Cloud
    clock: Clock
    #: The migration timing the planner estimates with: the scenario's in the simulator, the defaults elsewhere.
    params: MigrationParams
    #: Variables a maintenance command needs to reach this cloud too (the embedded simulated cloud's OS_*).
    env: Mapping[str, str] = field(default_factory=dict)


#: The loggers whose lines reach hostmap's log: its own, and with --debug keystoneauth's HTTP requests and
#: openstacksdk's. keystoneauth reports retries as warnings: they belong in the log, not on the operator's terminal.
_LOGGERS = ("hostmap", "keystoneauth", "openstack")


@dataclass
class _LogHandler:
    """A handler attached to `_LOGGERS`, and how to put them back as they were (levels, propagation)."""

    handler: logging.Handler
    previous: list[tuple[logging.Logger, int, bool]]

    def close(self) -> None:
        for logger, level, propagate in self.previous:
            logger.removeHandler(self.handler)
            logger.setLevel(level)
            logger.propagate = propagate
        self.handler.close()


def _attach(handler: logging.Handler, debug: bool) -> _LogHandler:
    """Send hostmap's lines (INFO) and keystoneauth's warnings to `handler`; with `debug`, every DEBUG line too."""
    previous = []
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        previous.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        floor = logging.DEBUG if debug else logging.INFO if name == "hostmap" else logging.WARNING
        logger.setLevel(floor if logger.level == logging.NOTSET else min(logger.level, floor))
        if name != "hostmap":
            logger.propagate = False
    return _LogHandler(handler, previous)


class _LazyLog:
    """The run's log file, opened on first need (once)."""

    def __init__(self, path_text: str | None, stderr: IO[str], debug: bool) -> None:
        self._path_text, self._stderr, self._debug = path_text, stderr, debug
        self._handler: _LogHandler | None = None

    def open(self) -> None:
        if self._handler is None:
            self._handler = _open_log(self._path_text, self._stderr, self._debug)

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
            self._handler = None


def _console_log(args: argparse.Namespace, stderr: IO[str]) -> _LogHandler | None:
    """`-v`: the log's lines on stderr too; `--debug`: with every HTTP request and answer (secrets redacted)."""
    debug, verbose = getattr(args, "debug", False), getattr(args, "verbose", 0)
    if not (debug or verbose):
        return None
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    return _attach(handler, debug)


def _open_log(path_text: str | None, stderr: IO[str], debug: bool = False) -> _LogHandler:
    default = default_state_dir() / f"hostmap-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    path = Path(path_text) if path_text else default
    if path_text is None:
        private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    # Create the file 0600 before logging opens it: the log names servers and hosts, which are not for everyone.
    # Non-blocking, so that a FIFO nobody reads is refused (ENXIO) instead of hanging the run before it starts.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise InputError(str(path), "--log-file", "is a named pipe (FIFO) that no process reads",
                             "give a regular file") from None
        raise
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    # Text no file can hold (a lone surrogate from a name) is escaped, never a logging traceback and a lost line.
    handler = logging.FileHandler(path, encoding="utf-8", errors="backslashreplace")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    attached = _attach(handler, debug)
    if not path_text:
        prune_logs(default.parent, spare=path)
    stderr.write(f"hostmap: log file {path}\n")
    return attached


def _estimate_params(args: argparse.Namespace, params: MigrationParams) -> MigrationParams:
    """`params` with the NIC and stream rates the operator gave for estimates."""
    nic, stream = getattr(args, "nic_gbps", None), getattr(args, "stream_gbps", None)
    given = replace(params, nic_gbps=nic or params.nic_gbps, stream_gbps=stream or params.stream_gbps)
    rate = gbps_to_bytes_per_s(min(given.nic_gbps, given.stream_gbps))
    if (nic or stream) and rate <= dirty_bytes_per_s(given.dirty_mb_s):
        option = "--nic-gbps" if nic and given.nic_gbps <= given.stream_gbps else "--stream-gbps"
        raise InputError(option, "(option)",
                         f"at {min(given.nic_gbps, given.stream_gbps):g} Gbit/s no migration would ever converge "
                         f"(guests dirty {given.dirty_mb_s:g} MB/s in the model)",
                         "give the migration network's rate in Gbit/s, e.g. 10 or 25")
    return given


def _connect_options(args: argparse.Namespace) -> ConnectOptions:
    """How to reach the cloud, from openstacksdk's options as given; a missing password is asked for on a terminal."""
    from hostmap.cloud.openstack import ConnectOptions

    sdk = args.sdk_options
    return ConnectOptions(args.os_cloud, args.insecure, args.os_cacert, given=sdk.given(args),
                          ask=_ask_secret if getattr(args, "terminal", False) else None)


def _ask_secret(prompt: str | None = None) -> str:
    """Ask on the terminal, never echoing the answer (keystoneauth's prompt: "Password: ")."""
    import getpass

    return getpass.getpass(f"hostmap: {prompt or 'Password: '}")


@contextlib.contextmanager
def _session(args: argparse.Namespace) -> Iterator[_Session]:
    from hostmap.cloud.openstack import adopt, connect, connect_with

    getattr(args, "open_log", lambda: None)()

    given = getattr(args, "sdk_connection", None)
    unpinned = bool(getattr(args, "assume_unpinned", False))
    if given is not None:  # the openstack client's own connection (its authentication, TLS, clouds.yaml): its to close
        yield _Session(adopt(given, assume_unpinned=unpinned), WallClock(), _estimate_params(args, MigrationParams()))
        return
    sim_scenario = getattr(args, "sim_scenario", None)
    use_sim = bool(getattr(args, "sim", False) or sim_scenario)
    if getattr(args, "virtual_time", False) and not use_sim:
        raise InputError("--virtual-time", "(option)", "needs --sim or --sim-scenario",
                         "virtual time only exists in the simulated cloud")
    if not use_sim:
        if args.os_cacert:
            check_regular(args.os_cacert, "--os-cacert")  # a FIFO there would hang the TLS set-up
        cloud = connect(_connect_options(args))
        cloud.assume_unpinned = unpinned
        try:
            yield _Session(cloud, WallClock(), _estimate_params(args, MigrationParams()))
        finally:
            cloud.close()
        return
    from hostmap.sim.scenario import demo_scenario_path, load_scenario
    from hostmap.sim.server import SimServer

    scenario = load_scenario(sim_scenario or demo_scenario_path())
    clock: Clock = VirtualClock() if args.virtual_time else WallClock()
    with SimServer(scenario, clock=clock) as sim:
        log.info("simulated cloud at %s", sim.auth_url)
        # The simulated cloud's own settings: instant keystoneauth retries on virtual time.
        cloud = connect_with(sim.connect_kwargs())
        cloud.assume_unpinned = unpinned
        try:
            yield _Session(cloud, clock, _estimate_params(args, scenario.migration), sim.env())
        finally:
            cloud.close()


def _open_writable(path_text: str, option: str, hint: str, *, append: bool = False) -> IO[str]:
    """Open FILE for an output option; a FIFO that no process reads is refused (ENXIO) instead of hanging."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_APPEND if append else 0)
    try:
        fd = os.open(path_text, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise InputError(path_text, option, "is a named pipe (FIFO) that no process reads", hint) from None
        raise
    os.set_blocking(fd, True)
    return open(fd, "w", encoding="utf-8", closefd=True)


def _write_output(path_text: str, text: str) -> None:
    """Write an -o FILE (replacing a regular file's content)."""
    with _open_writable(path_text, "-o", "give a regular file") as handle:
        if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            handle.truncate(0)
        handle.write(text)


def _make_plan(args: argparse.Namespace, session: _Session, inventory: Inventory, host_map: HostMap) -> Plan:
    from hostmap.apply import plan_map

    limits = _limits(args)
    return plan_map(host_map, inventory, limits, duration=duration_model(session.params),
                    links=nic_links(session.params), group_settle_s=args.group_settle, cold=args.cold)


def _map_format(args: argparse.Namespace) -> str:
    """The host map's own format for export: -f json|yaml when given, else -o FILE's extension, else JSON."""
    if args.format in ("json", "yaml") and not args.columns:
        return str(args.format)
    if args.output and Path(args.output).suffix.lower() in (".yaml", ".yml"):
        return "yaml"
    return "json"


def _map_text(document: dict[str, list[str]], form: str) -> str:
    if form == "yaml":
        import yaml

        return yaml.safe_dump(document, default_flow_style=False, sort_keys=False, allow_unicode=True)
    return json.dumps(document, indent=2) + "\n"


def _refuse_overwrite(args: argparse.Namespace) -> None:
    """export -o keeps an existing file unless --force: it may be the saved placement someone restores from."""
    if args.output and not getattr(args, "force", False) and Path(args.output).is_file():
        raise InputError(args.output, "-o", "already exists (it may be a saved placement someone needs to restore "
                         "from)", "give another file name, or --force to overwrite it")


def _cmd_export(args: argparse.Namespace, stdout: IO[str]) -> int:
    from hostmap.listing import map_listing
    from hostmap.serialise import export_map

    _refuse_overwrite(args)
    with _session(args) as session:
        document = export_map(session.cloud.inventory())
    form = _map_format(args)
    text = _map_text(document, form)
    if args.output:
        _write_output(args.output, text)
    # The host map itself is JSON or YAML; other formats (and the openstack plugin) show its summary, one row per host.
    if _emitter(args) is not None or (args.format is not None and (args.format not in ("json", "yaml")
                                                                   or args.columns)):
        _show(args, stdout, map_listing(document), lambda: stdout.write(text))
    elif not args.output:
        stdout.write(text)
    return EXIT_OK


def _cmd_plan(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from hostmap.hostmap_file import load_host_map
    from hostmap.listing import plan_listing
    from hostmap.report import print_plan
    from hostmap.serialise import plan_json
    from hostmap.timeline import build_timeline

    host_map = load_host_map(args.host_map)  # the file's own problems before the cloud is contacted
    _need_plotly(args.timeline)
    with _session(args) as session:
        inventory = session.cloud.inventory()
        the_plan = _make_plan(args, session, inventory, host_map)
        _show(args, stdout, plan_listing(plan_json(the_plan, inventory)),
              lambda: print_plan(the_plan, inventory, stdout, args.format))
    _write_timeline(args.timeline, lambda: build_timeline(plan_json(the_plan, inventory), title=f"hostmap plan: "
                    f"{args.host_map}", touched=session.params.touched), stderr)
    return EXIT_OK


def _cmd_drain(args: argparse.Namespace, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    from hostmap.apply import ServiceChanges, plan_map
    from hostmap.drain import drain_map
    from hostmap.drain_report import print_drain, print_drained
    from hostmap.hostmap_file import parse_host_map
    from hostmap.listing import drain_listing
    from hostmap.serialise import drain_json, drained_json, export_map
    from hostmap.services import drained_state

    with _session(args) as session:
        inventory = session.cloud.inventory()
        drain = drain_map(inventory, args.hosts, args.headroom)
        # With --cold, SHUTOFF servers are cold-migrated; the others (SUSPENDED, ...) nova moves neither way.
        refused = [i for i in drain.cold if not (args.cold and _status(inventory, i) in COLD_MIGRATABLE_STATUSES)]
        if refused:
            raise NotLiveMigratable(tuple(_name(inventory, i) for i in refused),
                                    tuple(_status(inventory, i) for i in refused), cold=args.cold)
        document = export_map(inventory, drain.moves)
        host_map = parse_host_map(document, "drain map")
        # Planned as `plan` would plan the map: the same checks (busy servers, down sources, policies), and the
        # duration for the summary.
        limits = _limits(args)
        the_plan = plan_map(host_map, inventory, limits, duration=duration_model(session.params),
                            links=nic_links(session.params), group_settle_s=args.group_settle, cold=args.cold)
        text = json.dumps(document, indent=2) + "\n"
        if args.output:
            _write_output(args.output, text)
        summary = drain_listing(drain_json(drain, inventory, the_plan))

        def show_summary(out: IO[str], plugin: bool = True) -> None:
            _show(args, out, summary, lambda: print_drain(drain, inventory, the_plan, out, _legacy(args)),
                  plugin=plugin)

        if not args.apply:
            if args.output:
                show_summary(stdout)
            else:
                _show_map(args, stdout, document, text)
                show_summary(stderr, plugin=False)
            return EXIT_OK
        if args.format == "table":
            show_summary(stdout)
        ran = _run_map(args, session, host_map, map_text=text, stdin=stdin, stdout=stdout, stderr=stderr,
                       limits=limits,
                       services=ServiceChanges(disable=drain.hosts, purpose="drain"))
        states = drained_state(session.cloud.inventory(), drain.hosts, ran.result.moves)
    _print_result(args, ran.result, stdout, stderr, {"drained": drained_json(states)})
    if args.format == "table":
        print_drained(states, stdout)
    if ran.exit_code == EXIT_OK and not all(state.empty for state in states):
        return EXIT_INCOMPLETE  # the map was reached, yet something (created meanwhile) is still on a drained host
    return ran.exit_code


def _cmd_restore(args: argparse.Namespace, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    from hostmap.apply import ServiceChanges
    from hostmap.hostmap_file import parse_host_map
    from hostmap.journal import Journal
    from hostmap.restore import restore_placement
    from hostmap.serialise import export_map
    from hostmap.services import disabled_by

    journal_path = _existing_journal(args.journal)
    with Journal.open(journal_path) as journal:
        detail = journal.run(args.run)
        disabled = [c.host for c in journal.service_changes(args.run) if c.action == "disabled"]
    with _session(args) as session:
        if detail.summary.cloud not in (session.cloud.identity, *session.cloud.former_identities):
            raise InputError("RUN", str(args.run), f"run {args.run} was against another cloud ({detail.summary.cloud})",
                             "connect to that cloud (--os-cloud, OS_*), or pick one of its runs in `hostmap history`")
        inventory = session.cloud.inventory()
        back = restore_placement(detail, inventory)
        document = {host: names for host, names in
                    export_map(inventory, back.placement, only=back.placement.keys()).items() if names}
        text = json.dumps(document, indent=2) + "\n"
        if args.output:
            _write_output(args.output, text)
        elif not args.apply:
            _show_map(args, stdout, document, text)
        _restore_summary(args.run, back, stderr)
        if not args.apply:
            return EXIT_OK
        hosts = {h.name: h for h in inventory.hosts}
        # Only services this run disabled and that still carry its reason: never one someone else disabled since.
        ours = tuple(dict.fromkeys(h for h in disabled if h in hosts and disabled_by(hosts[h], args.run)))
        for host in dict.fromkeys(disabled):
            if host not in ours:
                stderr.write(f"hostmap: leaving the compute service of {host} as it is: run {args.run} disabled it, "
                             "but it is now enabled or disabled for another reason\n")
        ran = _run_map(args, session, parse_host_map(document, f"restore of run {args.run}"), map_text=text,
                       stdin=stdin, stdout=stdout, stderr=stderr,
                       limits=_limits(args),
                       services=ServiceChanges(enable=ours, purpose="restore"))
    _print_result(args, ran.result, stdout, stderr, {"enabled": list(ours)})
    return ran.exit_code


def _restore_summary(run: int, back: Restore, stderr: IO[str]) -> None:
    moving = len(back.placement) - len(back.in_place)
    stderr.write(f"hostmap: run {run} moved {len(back.placement) + len(back.deleted)} server(s); "
                 f"the map puts {moving} back" + (f", {len(back.in_place)} already are" if back.in_place else "")
                 + "\n")
    if back.deleted:
        stderr.write(f"hostmap: left out, deleted since: {', '.join(back.deleted[:_LIST_AT_MOST])}"
                     + (f" and {len(back.deleted) - _LIST_AT_MOST} more" if len(back.deleted) > _LIST_AT_MOST else "")
                     + "\n")


def _cmd_maintain(args: argparse.Namespace, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    from hostmap.drain import drained_hosts
    from hostmap.hostmap_file import parse_host_map
    from hostmap.journal import Journal
    from hostmap.listing import maintain_listing, rollout_listing
    from hostmap.maintain import MaintainOptions, run_rollout
    from hostmap.maintain_report import maintain_json, print_maintain, print_rollout_plan, rollout_plan_json
    from hostmap.rollout import plan_rollout

    limits = _limits(args)
    with _session(args) as session:
        inventory = session.cloud.inventory()
        hosts = [h.name for h in drained_hosts(inventory, args.hosts)]
        # Planned as a whole first, also when it runs: a batch that cannot be drained is refused before anything.
        rollout = plan_rollout(inventory, hosts, batch=args.batch, headroom_pct=args.headroom, restore=args.restore)
        leaving = [i for b in rollout.batches for i in b.drain.cold]
        refused = [i for i in leaving if not (args.cold and _status(inventory, i) in COLD_MIGRATABLE_STATUSES)]
        if refused:
            raise NotLiveMigratable(tuple(_name(inventory, i) for i in refused),
                                    tuple(_status(inventory, i) for i in refused), cold=args.cold)
        if args.dry_run:
            dry = rollout_plan_json(rollout, lambda inv, doc: _plan_document(args, session, inv, doc, limits))
            _show(args, stdout, rollout_listing(dry),
                  lambda: print_rollout_plan(dry, stdout, args.format))
            return EXIT_OK
        options = MaintainOptions(batch=args.batch, headroom_pct=args.headroom, restore=args.restore,
                                  up_timeout_s=args.up_timeout, rerun_exec=args.rerun_exec,
                                  command=args.exec_command, group_settle_s=args.group_settle)

        interrupted: list[int] = []  # the exit code of a run a signal stopped (130 for Ctrl-C, 143 for SIGTERM)

        def run_map(document: Mapping[str, list[str]], services: ServiceChanges,
                    label: str) -> tuple[RunResult, int | None]:
            started: list[int] = []
            text = json.dumps(document, indent=2) + "\n"
            ran = _run_map(args, session, parse_host_map(dict(document), label), map_text=text, stdin=stdin,
                           stdout=stdout, stderr=stderr, limits=limits, services=services, on_start=started.append)
            if args.format == "table":
                _print_result(args, ran.result, stdout, stderr)
            if ran.result.interrupted:
                interrupted.append(ran.exit_code)
            return ran.result, (started[0] if started else None)

        shell = _Shell(args.exec_command, args.exec_timeout, session.env)
        with Journal.open(Path(args.journal) if args.journal else None) as journal:
            try:
                result = run_rollout(session.cloud, session.clock, journal, cloud_key=session.cloud.identity,
                                     hosts=hosts, options=options, run_map=run_map, execute=shell,
                                     say=lambda text: _say(stderr, text),
                                     on_service=lambda change: _service_event(args, change))
            finally:
                shell.kill_all()
    _show(args, stdout, maintain_listing(maintain_json(result)), lambda: print_maintain(result, stdout, args.format))
    if any(run.interrupted for run in result.runs):
        # Ctrl-C (or SIGTERM) during a drain or a restore: the rollout stopped there.
        return interrupted[0] if interrupted else EXIT_INTERRUPTED
    if result.stopped is None:
        return EXIT_OK
    return EXIT_INCOMPLETE


def _service_event(args: argparse.Namespace, change: ServiceChange) -> None:
    """A compute service switched outside a run (maintain enabling a host after its command), to --events."""
    stream = getattr(args, "event_stream", None)
    if stream is not None:
        EventReporter(stream, None, run_id=change.run_id).service_changed(change)


def _say(stderr: IO[str], text: str) -> None:
    stderr.write(f"hostmap: {text}\n")


def _plan_document(args: argparse.Namespace, session: _Session, inventory: Inventory,
                   document: Mapping[str, list[str]], limits: Limits) -> Plan:
    from hostmap.apply import plan_map
    from hostmap.hostmap_file import parse_host_map

    return plan_map(parse_host_map(dict(document), "rollout"), inventory, limits,
                    duration=duration_model(session.params), links=nic_links(session.params),
                    group_settle_s=args.group_settle, cold=args.cold)


class _Shell:
    """Runs `command` for one host with /bin/sh: {host} replaced (quoted), HOSTMAP_HOST set; output to the log.

    Each command runs in its own session, so that a timeout or `kill_all` ends it with everything it started; a
    batch's commands run at once (from several threads), and each one's output is logged as a block prefixed by
    its host, so that outputs stay apart.
    """

    def __init__(self, command: str, timeout_s: float, cloud_env: Mapping[str, str]) -> None:
        self.command, self.timeout_s, self.cloud_env = command, timeout_s, cloud_env
        self._running: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    def __call__(self, host: str) -> int:
        line = self.command.replace("{host}", shlex.quote(host))
        env = {**os.environ, **self.cloud_env, "HOSTMAP_HOST": host}
        log.info("%s: running %s", host, line)
        with subprocess.Popen(["/bin/sh", "-c", line], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True) as process:
            with self._lock:
                self._running.add(process)
            try:
                out, err = process.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_session(process)
                out, err = process.communicate()
                self._log_output(host, out, err)
                log.error("%s: the command ran longer than %.0f s and was killed", host, self.timeout_s)
                return 124
            finally:
                with self._lock:
                    self._running.discard(process)
        self._log_output(host, out, err)
        log.info("%s: the command exited with %d", host, process.returncode)
        return process.returncode

    def kill_all(self) -> None:
        """End every command still running (Ctrl-C, or an error, stopped the rollout while they ran)."""
        with self._lock:
            running = list(self._running)
        for process in running:
            log.error("%s: killed: the rollout was interrupted while it ran", process.args)
            _kill_session(process)

    @staticmethod
    def _log_output(host: str, out: str, err: str) -> None:
        for stream, text in (("out", out), ("err", err)):
            for output in (text or "").splitlines():
                log.info("%s: std%s: %s", host, stream, output)


def _kill_session(process: subprocess.Popen[str]) -> None:
    """SIGKILL the command's session (its shell and what the shell started); it may have ended already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _existing_journal(path: str | None) -> Path | None:
    """The journal a read-only command reads; one that does not exist is an error (it is never created)."""
    if path and not Path(path).exists():
        raise InputError("--journal", "(option)", f"no journal at {path}",
                         "give the --journal that `hostmap apply` used, or omit it for the default journal")
    return Path(path) if path else None


def _name(inventory: Inventory, server_id: str) -> str:
    server = inventory.server(server_id)
    return server.name if server else server_id


def _status(inventory: Inventory, server_id: str) -> str:
    server = inventory.server(server_id)
    return server.status if server else "?"


class _InFlight(Reporter):
    """The steps whose migration nova accepted and that have not ended: what a Ctrl-C leaves running."""

    def __init__(self) -> None:
        self.steps: set[int] = set()

    def started(self, step: Step, submission: Submission) -> None:
        self.steps.add(step.index)

    def finished(self, step: Step, result: MoveResult) -> None:
        self.steps.discard(step.index)

    def failed(self, step: Step, result: MoveResult) -> None:
        self.steps.discard(step.index)


class _Interrupts:
    """Counts Ctrl-C presses (and SIGTERMs, which count alike) during a run instead of dying on the first one;
    the third one exits at once. Each press says at once what happens now and what the next one will do."""

    def __init__(self, stderr: IO[str], *, in_flight: Callable[[], int] = lambda: 0,
                 say: Callable[[str], None] | None = None) -> None:
        self.count = 0
        self._stderr = stderr
        self._in_flight = in_flight
        self._say = say
        #: True while a prompt waits for the operator: Ctrl-C then ends the prompt (as "quit").
        self.prompting = False
        #: The signal that came first (SIGINT or SIGTERM): the run's exit code is 128 + it, as a shell expects.
        self.first: int | None = None

    @property
    def exit_code(self) -> int:
        return 128 + (self.first or signal.SIGINT)

    def _tell(self, text: str) -> None:
        if self._say is not None:
            self._say(text)
        else:
            self._stderr.write(f"\n{text}\n")
            self._stderr.flush()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.first = self.first or signum
        what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
        again = "SIGTERM or Ctrl-C again" if signum == signal.SIGTERM else "Ctrl-C again"
        if self.prompting or self.count >= 3:
            if self.count >= 3:
                self._tell(f"hostmap: {what} three times: exiting now; migrations still in flight go on in nova, "
                           "and the next `hostmap apply` watches them")
            raise KeyboardInterrupt
        flying = self._in_flight()
        if self.count == 1:
            if flying:
                self._tell(f"hostmap: {what}: starting no new migrations; the {counted(flying, 'migration')} in "
                           f"flight {'is' if flying == 1 else 'are'} watched to {'its' if flying == 1 else 'their'} "
                           f"end ({again} aborts {'it' if flying == 1 else 'them'})")
            else:
                self._tell(f"hostmap: {what}: starting no new migrations; none is in flight, so the run ends now")
        else:
            self._tell(f"hostmap: {what} again: aborting the {counted(flying, 'migration')} in flight (nova cannot "
                       f"abort a cold one: it is watched to its end and confirmed; {again} exits at once and leaves "
                       "them to nova)")


class _Terminated(KeyboardInterrupt):
    """SIGTERM outside a run (reading the map, connecting, planning, between maintain's runs): no migration is in
    flight, so hostmap stops where it is; cleanup runs as for Ctrl-C. A run's own handler (`_Interrupts`) takes
    SIGTERM over while migrations may be in flight."""


def _on_terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _on_hangup(signum: int, frame: FrameType | None) -> None:
    """The terminal went away during a run started with --yes: the run goes on; what it would print there goes to
    /dev/null (the log and the journal still have it)."""
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                os.dup2(null, fd)
    os.close(null)
    log.warning("SIGHUP: the terminal went away; the run goes on (started with --yes)")


def _cmd_apply(args: argparse.Namespace, stdin: IO[str], stdout: IO[str], stderr: IO[str], *,
               parallel: int | None, max_per_host: int) -> int:
    from hostmap.hostmap_file import read_host_map

    host_map, map_text = read_host_map(args.host_map)  # the file's own problems before the cloud is contacted
    timeline_path = getattr(args, "timeline", None)
    _need_plotly(timeline_path)
    runs: list[int] = []
    legs = LegRecorder()
    with _session(args) as session:
        result = _run_map(args, session, host_map, map_text=map_text, stdin=stdin, stdout=stdout, stderr=stderr,
                          limits=Limits(max_per_host=max_per_host, parallel=parallel,
                                        per_group=getattr(args, "per_group", None),
                                        max_in_per_host=getattr(args, "max_in_per_host", None)),
                          on_start=runs.append,
                          watch=[legs])
        _print_result(args, result.result, stdout, stderr)
    if timeline_path and runs:
        _write_timeline(timeline_path, lambda: _apply_timeline(args, runs[-1], result.result, legs,
                                                               session.params.touched), stderr)
    return result.exit_code


def _apply_timeline(args: argparse.Namespace, run_id: int, result: RunResult, legs: LegRecorder,
                    touched: float) -> Timeline:
    """The run's plan (as the journal stored it) beside each leg as it happened, on the run's own clock."""
    from hostmap.journal import Journal
    from hostmap.timeline import ActualMove, build_timeline

    with Journal.open(Path(args.journal) if args.journal else None) as journal:
        plan = journal.run(run_id).plan
    actual = [ActualMove(m.server_id, m.server_name, m.source, m.target, m.outcome, m.reason, m.started_s,
                         m.finished_s, step + 1) for step, m in sorted(legs.legs.items())]
    return build_timeline(plan, title=f"hostmap apply {args.host_map} (run {run_id})", actual=actual,
                          touched=touched, makespan_s=result.makespan_s)


@dataclass(frozen=True)
class _Ran:
    result: RunResult
    exit_code: int


def _run_map(args: argparse.Namespace, session: _Session, host_map: HostMap, *, map_text: str, stdin: IO[str],
             stdout: IO[str], stderr: IO[str], limits: Limits, services: ServiceChanges | None = None,
             on_start: Callable[[int], None] = lambda run_id: None, watch: Sequence[Reporter] = ()) -> _Ran:
    """Carry `host_map` out as `apply` does (prompts, journal, resume, Ctrl-C), switching `services` first."""
    from hostmap.apply import ApplySettings, ServiceChanges, apply_map
    from hostmap.display import LiveDisplay
    from hostmap.reporter import LogReporter

    live = LiveDisplay(stdout) if stdout.isatty() and args.format == "table" else None
    stream = getattr(args, "event_stream", None)
    events = EventReporter(stream, session.clock) if stream is not None else None
    in_flight = _InFlight()
    # With the live display on the terminal, what Ctrl-C does is printed above it (never drawn over).
    interrupts = _Interrupts(stderr, in_flight=lambda: len(in_flight.steps),
                             say=live.say if live is not None and stderr.isatty() else None)
    reporters = ([LogReporter(), in_flight, *watch] + ([live] if live is not None else [])
                 + ([events] if events else []))
    planned: list[Plan] = []
    options = ExecutorOptions(timeout_s=args.timeout, on_timeout=args.on_timeout,
                              stop_on_failure=args.stop_on_failure, stall_s=args.stall_s, on_stall=args.on_stall,
                              max_pause_s=args.max_pause_s, **_check_options(args))
    journal = Path(args.journal) if args.journal else None

    def confirm_for(inventory: Inventory) -> Confirm | None:
        prompter = None if args.yes else Prompter(inventory, stdin, stderr, pause=live.paused if live else None,
                                                  interrupts=interrupts,
                                                  plan=planned[-1] if planned and getattr(args, "plan_question", True)
                                                  else None)
        return events.confirming(prompter) if events is not None else prompter

    def on_service(change: ServiceChange) -> None:
        what = f"disabled ({change.reason})" if change.action == "disabled" else "enabled"
        stderr.write(f"hostmap: compute service of {change.host} {what}\n")
        if events is not None:
            events.service_changed(change)

    def started(run_id: int) -> None:
        if events is not None:
            events.run_started(run_id)
        on_start(run_id)

    settings = ApplySettings(options, journal, duration_model(session.params), nic_links(session.params),
                             getattr(args, "group_settle", DEFAULT_GROUP_SETTLE_S), limits,
                             cold=getattr(args, "cold", False))
    handled = [signal.SIGINT, signal.SIGTERM]
    previous = {signum: signal.signal(signum, interrupts) for signum in handled} if _main_thread() else {}
    if previous and args.yes and hasattr(signal, "SIGHUP"):
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, _on_hangup)
    try:
        result = apply_map(
            session.cloud, cloud_key=session.cloud.identity, clock=session.clock, host_map=host_map,
            map_text=map_text, settings=settings, reporters=reporters, confirm_for=confirm_for,
            interrupts=lambda: interrupts.count,
            on_resumed=lambda resumed: _print_resumed(resumed, stderr),
            services=services or ServiceChanges(), on_service=on_service, on_start=started, on_plan=planned.append,
        )
    except HostmapError as error:
        if events is not None:
            events.run_ended(None, -1, f"{type(error).__name__}: {error}")
        raise
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
    ran = _ran(result, interrupts)
    if events is not None:
        events.run_ended(result, ran.exit_code)
    return ran


def _ran(result: RunResult, interrupts: _Interrupts) -> _Ran:
    if interrupts.count:
        return _Ran(result, interrupts.exit_code)
    if result.identity_lost:  # keystone did not answer through its retries: a cloud failure, as at start-up
        return _Ran(result, EXIT_CLOUD)
    return _Ran(result, EXIT_OK if result.reached and not result.checks_failed else EXIT_INCOMPLETE)


def _check_options(args: argparse.Namespace) -> dict[str, Any]:
    """The executor's health check from --check and --check-timeout (none when not given)."""
    from hostmap.checks import ShellCheck

    command = getattr(args, "check", None)
    timeout_s = getattr(args, "check_timeout", 30.0)
    return {"check": ShellCheck(command, timeout_s) if command else None, "check_timeout_s": timeout_s}


def _print_result(args: argparse.Namespace, result: RunResult, stdout: IO[str], stderr: IO[str],
                  extra: Mapping[str, object] | None = None) -> None:
    """The run's report (with `extra` keys in JSON), and the error that stopped it early, if any."""
    from hostmap.listing import run_listing
    from hostmap.report import print_run
    from hostmap.serialise import run_json

    _show(args, stdout, run_listing({**run_json(result), **(extra or {})}),
          lambda: print_run(result, stdout, args.format, extra))
    if result.error:
        stderr.write(f"hostmap: error: the run stopped early: {result.error}\n")


def _print_resumed(resumed: RunResult, stderr: IO[str]) -> None:
    stderr.write("hostmap: an interrupted run had left migrations in flight; they were watched to their end:\n")
    for m in resumed.moves:
        stderr.write(f"  {m.server_name}: {m.source} -> {m.target}: {m.outcome}\n")


def _cmd_history(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from hostmap.journal import Journal
    from hostmap.listing import history_listing, history_run_listing
    from hostmap.report import print_history, print_history_run
    from hostmap.serialise import history_run_json, summary_json

    with Journal.open(_existing_journal(args.journal)) as journal:
        if args.run is None:
            runs = journal.runs(limit=args.limit)
            _show(args, stdout, history_listing([summary_json(r) for r in runs]),
                  lambda: print_history(runs, stdout, args.format))
        else:
            _need_plotly(args.timeline)
            detail = journal.run(args.run)
            _show(args, stdout, history_run_listing(history_run_json(detail)),
                  lambda: print_history_run(detail, stdout, args.format))
            _write_timeline(args.timeline, lambda: _history_timeline(detail), stderr)
    return EXIT_OK


def _history_timeline(detail: RunDetail) -> Timeline:
    from hostmap.timeline import build_timeline, journal_moves

    actual = journal_moves(detail.moves)
    ends = [m.end_s for m in actual if m.end_s is not None]
    return build_timeline(detail.plan, title=f"hostmap run {detail.summary.id}: {detail.summary.map_source}",
                          actual=actual, makespan_s=max(ends) if ends else None)



def _emitter(args: argparse.Namespace) -> Callable[[Listing], None] | None:
    """The openstack plugin's cliff output, when this command runs as `openstack hostmap ...`."""
    emit: Callable[[Listing], None] | None = getattr(args, "emit", None)
    return emit


def _legacy(args: argparse.Namespace) -> str:
    """The format the table-or-JSON renderers take for the other formats (a summary on stderr, say)."""
    return "json" if args.format == "json" else "table"


def _show(args: argparse.Namespace, out: IO[str], listing: Listing, render: Callable[[], object], *,
          plugin: bool = True) -> None:
    """Show a listing: through cliff in the plugin; `render` (rich table or JSON document) for -f table/json
    without -c, as hostmap always has; else in the asked format, only the asked columns."""
    from hostmap.listing import select, write
    from hostmap.report import print_listing

    emit = _emitter(args)
    if emit is not None:
        if plugin:
            emit(listing)
        else:
            render()
        return
    columns: list[str] = getattr(args, "columns", None) or []
    fmt = args.format or "json"
    if fmt in ("table", "json") and not columns:
        render()
        return
    chosen = select(listing, columns)
    if fmt == "table":
        print_listing(chosen, out)
    else:
        write(chosen, fmt, out, selected=bool(columns))


def _show_map(args: argparse.Namespace, out: IO[str], document: Mapping[str, list[str]], text: str) -> None:
    """A host map on standard output: its JSON text, or in the plugin its summary (one row per host)."""
    from hostmap.listing import map_listing

    if _emitter(args) is not None:
        _show(args, out, map_listing(document), lambda: out.write(text))
    else:
        out.write(text)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _cmd_sim_serve(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from hostmap.sim.scenario import demo_scenario_path, load_scenario
    from hostmap.sim.server import SimServer

    scenario = load_scenario(args.scenario or demo_scenario_path())
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # SIGINT and SIGTERM alike end the server, even when it was started with SIGINT ignored (nohup, `&`).
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with SimServer(scenario, port=args.port) as sim:
            for name, value in sorted(sim.env().items()):
                stdout.write(f"export {name}={value}\n")
            stdout.flush()
            # stdout carries only the variables (for `eval`); the how-to-stop line goes to stderr.
            stderr.write(f"hostmap: serving the simulated cloud at {sim.base_url}; Ctrl-C or SIGTERM stops it\n")
            stderr.flush()
            while not stop.wait(3600):  # Serving until stopped is this command's job; each wait is an hour at most.
                pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    stderr.write("hostmap: the simulated cloud stopped\n")
    return EXIT_OK


def _cmd_sim_capture(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from hostmap.capture import PairRate, copy_rates, past_moves, scenario_document
    from hostmap.journal import Journal, default_journal_path
    from hostmap.sim.scenario import SERVER_STATUSES
    from hostmap.wording import counted

    journal_path = _existing_journal(args.journal) or default_journal_path()
    with _session(args) as session:
        snapshot = session.cloud.snapshot()
        identity, former = session.cloud.identity, session.cloud.former_identities
        params = session.params  # the scenario's in the simulated cloud, with --nic-gbps / --stream-gbps given
    rates: tuple[PairRate, ...] = ()
    if journal_path.exists():  # never created by a capture
        with Journal.open(journal_path) as journal:
            runs = [journal.run(r.id) for r in journal.runs(limit=1000, cloud=identity, former=former)]
        rates = copy_rates(past_moves(runs), {f.name: f.ram for f in snapshot.flavors}, params)
    document = scenario_document(snapshot, params, SERVER_STATUSES, rates)
    text = json.dumps(document, indent=1) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        stdout.write(text)
    left_out = len(document["captured"]["servers_left_out"])
    source = f"{counted(len(rates), 'host pair')} of the journal" if rates else "--nic-gbps/--stream-gbps"
    stderr.write(f"hostmap: captured {counted(len(document['hosts']), 'host')}, "
                 f"{counted(len(document['servers']), 'server')}, "
                 f"{counted(len(document['server_groups']), 'server group')}; copy rates from {source}"
                 + (f"; {counted(left_out, 'server')} left out (no compute host, or a state not simulated)"
                    if left_out else "")
                 + "\n")
    return EXIT_OK


# -- errors become words here, and only here -----------------------------------------------------------------


def _input_line(error: InputError) -> str:
    hint = f"; {error.hint}" if error.hint else ""
    return f"{error.source}: {error.entry}: {error.problem}{hint}"


#: Lists in error messages stop after this many items (a drain of thousands of servers stays readable).
_LIST_AT_MOST = 10
#: A map's problems are listed up to this many on the terminal; the log has every one, a line each.
_PROBLEMS_AT_MOST = 20


def _some_hosts(known: Sequence[str]) -> str:
    shown = ", ".join(known[:_LIST_AT_MOST])
    return f"compute hosts: {shown}" + (f" and {len(known) - _LIST_AT_MOST} more" if len(known) > _LIST_AT_MOST else "")


def _report_drain_error(error: HostmapError, say: Callable[[str], None], stderr: IO[str]) -> int | None:
    """Word the errors a drain raises; None for any other error."""
    if isinstance(error, UnknownHostError):
        if error.matches:
            say(f"host {error.host!r} matches several compute hosts ({', '.join(error.matches)}); nothing was migrated")
            stderr.write("  name it by its service host, as `openstack compute service list` shows it\n")
        else:
            say(f"no compute host {error.host!r} in this cloud; nothing was migrated")
            stderr.write(f"  {_some_hosts(error.known)}\n")
        return EXIT_USAGE
    if isinstance(error, DrainDoesNotFit):
        headroom = f" keeping {error.headroom_pct:g} % free" if error.headroom_pct else ""
        say(f"the hosts cannot be emptied{headroom}: {len(error.unfit)} server(s) fit nowhere; nothing was migrated")
        for u in error.unfit[:_LIST_AT_MOST]:
            need = ", ".join(f"{name} {amount}" for name, amount in u.demand.items())
            why = f"; group {u.group} ({u.policy})" if u.group else ""
            why += f"; pinned to zone {u.zone}" if u.zone else ""
            stderr.write(f"  {u.name} on {u.host}: needs {need}{why}\n")
        if len(error.unfit) > _LIST_AT_MOST:
            stderr.write(f"  ... and {len(error.unfit) - _LIST_AT_MOST} more\n")
        most = ", ".join(f"{name} {amount}" for name, amount in error.most_room.items())
        stderr.write(f"  the most room left on any one host, per resource: {most}\n")
        stderr.write("  drain fewer hosts at once, lower --headroom, or free room elsewhere first\n")
        return EXIT_INFEASIBLE
    if isinstance(error, NotLiveMigratable):
        listed = ", ".join(f"{n} ({s})" for n, s in zip(error.servers[:_LIST_AT_MOST], error.statuses, strict=False))
        more = f" and {len(error.servers) - _LIST_AT_MOST} more" if len(error.servers) > _LIST_AT_MOST else ""
        if error.cold:
            say(f"neither live nor cold migration can move {listed}{more}; nothing was migrated")
            stderr.write("  nova cold-migrates only SHUTOFF servers: resume or start them (or stop them), "
                         "then drain again\n")
        else:
            say(f"live migration cannot move {listed}{more}; nothing was migrated")
            stderr.write("  run again with --cold to cold-migrate the SHUTOFF ones (they stay SHUTOFF); "
                         "start or resume the others first\n")
        return EXIT_INFEASIBLE
    return None


def _report_infeasible(error: InfeasiblePlanError, say: Callable[[str], None], stderr: IO[str]) -> int:
    say("hostmap found no safe order for these moves: nothing was migrated")
    for cycle in error.cycles:
        servers, hosts = ", ".join(cycle.servers), ", ".join(cycle.hosts)
        if cycle.groups:
            stderr.write(f"  servers {servers} must swap between hosts {hosts}, but anti-affinity group "
                         f"{', '.join(cycle.groups)} allows no more members on one host, and when they were "
                         "stuck no other host could take one of them for a detour\n")
        else:
            stderr.write(f"  servers {servers} must swap between full hosts {hosts}, and when they were stuck "
                         "no other host had room for a detour\n")
        if cycle.pinned:
            stderr.write(f"  {', '.join(cycle.pinned)}: in affinity groups, which nova lets move only next to "
                         "another member of their group, so they cannot take a detour\n")
        if cycle.cold:
            stderr.write(f"  {', '.join(cycle.cold)}: cold-migrated (SHUTOFF), which hostmap never sends "
                         "through a pivot host\n")
    if error.unusable:
        hosts = ", ".join(f"{name} ({'compute service down' if why == 'down' else 'disabled'})"
                          for name, why in error.unusable)
        stderr.write(f"  not used as pivots: {hosts}\n")
    stderr.write("  free room on one host (or add a pivot host with room and no member of those groups), "
                 "then run again\n")
    return EXIT_INFEASIBLE


def _report_placement_rule(error: PolicyError | ZoneError, stderr: IO[str], prog: str) -> int:
    """Word a map that breaks a rule nova's scheduler enforces: a hard server-group policy or a pinned zone."""
    def say(text: str) -> None:
        stderr.write(f"{prog}: error: {text}\n")

    if isinstance(error, ZoneError):
        say("the host map moves servers out of the availability zone they are pinned to, which nova refuses: "
            "nothing was migrated")
        _zone_lines(error, stderr)
        return EXIT_INFEASIBLE
    say("the host map breaks a server group policy that nova enforces: nothing was migrated")
    for v in error.violations:
        if v.policy == "anti-affinity":
            stays = f" and {v.members_on_host} member(s) it keeps there" if v.members_on_host else ""
            stderr.write(f"  group {v.group} (anti-affinity, at most {v.limit} per host): the map puts "
                         f"{', '.join(v.servers)}{stays} on {v.host}\n")
        else:
            stderr.write(f"  group {v.group} (affinity, now on {', '.join(v.group_hosts)}): the map moves "
                         f"{', '.join(v.servers)} to {v.host}, where no member of the group stays\n")
    if any(v.policy == "anti-affinity" for v in error.violations):
        stderr.write("  put at most that many members of each anti-affinity group on one host\n")
    if any(v.policy == "affinity" for v in error.violations):
        stderr.write("  a member of an affinity group can only join another member; moving a whole group needs "
                     "cold migration or a soft policy\n")
    return EXIT_INFEASIBLE


def _zone_lines(error: ZoneError, stderr: IO[str]) -> None:
    for z in error.violations:
        assumed = " (assumed: the cloud's compute API is older than 2.96 and shows no pins)" if z.assumed else ""
        where = (f"shows zone {z.zone} but is in none of the aggregates that name it (nova offers only their hosts)"
                 if z.host_zone == z.zone else f"is in zone {z.host_zone or 'unknown'}")
        stderr.write(f"  server {z.server} is pinned to zone {z.zone}{assumed}; host {z.host} {where}\n")
    stderr.write("  choose hosts inside each server's zone" + (
        "; or, if no server was booted into a zone, --assume-unpinned" if any(z.assumed for z in error.violations)
        else "") + "\n")


def _report_error(error: HostmapError, stderr: IO[str], prog: str) -> int:
    def say(text: str) -> None:
        stderr.write(f"{prog}: error: {printable(text)}\n")

    if isinstance(error, InputError):
        say(_input_line(error))
        return EXIT_USAGE
    if isinstance(error, InputErrors):
        say(f"{len(error.errors)} problems; nothing was migrated:")
        for item in error.errors[:_PROBLEMS_AT_MOST]:
            stderr.write(f"  {printable(_input_line(item))}\n")
        if len(error.errors) > _PROBLEMS_AT_MOST:
            stderr.write(f"  ... and {len(error.errors) - _PROBLEMS_AT_MOST} more (each one is in the log file)\n")
        return EXIT_USAGE
    if isinstance(error, CapacityError):
        say("the host map does not fit: nothing was migrated")
        for s in error.shortfalls:
            stderr.write(f"  {s.host}: {s.resource} needed {s.needed}, available {s.available}\n")
        stderr.write("  move fewer servers to these hosts, or free room on them first\n")
        return EXIT_INFEASIBLE
    if isinstance(error, PolicyError | ZoneError):
        return _report_placement_rule(error, stderr, prog)
    if isinstance(error, InfeasiblePlanError):
        return _report_infeasible(error, say, stderr)
    if (drain_code := _report_drain_error(error, say, stderr)) is not None:
        return drain_code
    if isinstance(error, UnknownCloud):
        where = f"in {error.config_file}" if error.config_file else "(no clouds.yaml was found)"
        known = f"the clouds there: {', '.join(error.known[:_LIST_AT_MOST])}" + (
            f" and {len(error.known) - _LIST_AT_MOST} more" if len(error.known) > _LIST_AT_MOST else "")
        say(f"no cloud {error.name!r} {where}; " + (known if error.known else "it defines none"))
        return EXIT_CLOUD
    if isinstance(error, MissingCredentials):
        who = " ".join(filter(None, [f"for user {error.username}" if error.username else "",
                                     f"at {error.auth_url}" if error.auth_url else ""]))
        where = f"the clouds.yaml entry {error.cloud!r}" if error.cloud else "the OS_* variables"
        say(f"{' and '.join(error.options)} not given{' ' + who if who else ''}, and no terminal to ask on: give "
            f"{'it' if len(error.options) == 1 else 'them'} in {where} (OS_PASSWORD, say) or on the command line")
        return EXIT_CLOUD
    if isinstance(error, CloudConfigError):
        say(f"{error.problem}")
        stderr.write("  configure a cloud: `source` a keystone rc file (OS_AUTH_URL, OS_USERNAME, ...), or pass "
                     "--os-cloud NAME with clouds.yaml,\n  or try the embedded simulated cloud with --sim\n")
        return EXIT_CLOUD
    if isinstance(error, CloudError):
        say(f"cannot {error.action}: {error.problem}")
        return EXIT_CLOUD
    if isinstance(error, ColdMigrationUnsupported):
        say(f"{error}; nothing more was migrated: upgrade nova, or start the SHUTOFF servers and run without --cold")
        return EXIT_CLOUD
    if isinstance(error, LockHeld):
        say(f"another hostmap apply is running against this cloud (pid {error.pid or 'unknown'}, started "
            f"{error.started_at or 'unknown'}: {error.command or '?'}); nothing was migrated")
        stderr.write(f"  wait for it to finish, or stop it; the lock is {error.path}\n")
        return EXIT_INFEASIBLE
    if isinstance(error, JournalError):
        say(f"journal {error.path}: {error.problem}")
        stderr.write("  choose another file with --journal, or move this one aside\n")
        return EXIT_USAGE
    if isinstance(error, MissingExtra):
        say(f"{error}; nothing was done")
        return EXIT_USAGE
    if isinstance(error, UnknownRun):
        say(f"no run {error.run_id} in the journal; `hostmap history` lists the runs")
        return EXIT_USAGE
    say(str(error))
    return EXIT_INCOMPLETE


def _warn_unverified(args: argparse.Namespace, stderr: IO[str], prog: str) -> None:
    """One warning, whichever way TLS verification was turned off (--insecure, OS_INSECURE, clouds.yaml)."""
    if getattr(args, "emit", None) is not None or not hasattr(args, "insecure"):
        return  # the openstack client's own connection, or a command that talks to no cloud
    if getattr(args, "sim", False) or getattr(args, "sim_scenario", None):
        return
    from hostmap.cloud.openstack import tls_unverified

    _say_unverified(tls_unverified(_connect_options(args)), stderr, prog)


def _say_unverified(where: str | None, stderr: IO[str], prog: str) -> None:
    if where is not None:
        stderr.write(f"{prog}: warning: {where}: the API's TLS certificate is NOT verified\n")


def _open_events(args: argparse.Namespace, stdout: IO[str], stderr: IO[str],
                 prog: str) -> tuple[EventStream | None, IO[str]]:
    """The --events stream, and where the command's report goes: standard error when the events take stdout."""
    path = getattr(args, "events", None)
    if not path:
        return None, stdout

    def lost(problem: str) -> None:
        stderr.write(f"{prog}: warning: the event stream was lost ({problem}); the run goes on\n")

    if path == "-":
        args.event_stream = EventStream(stdout, on_lost=lost, close_handle=False)
        return args.event_stream, stderr
    handle = _open_writable(path, "--events", "start its reader first, or give a regular file", append=True)
    args.event_stream = EventStream(handle, on_lost=lost)  # it closes the handle at the command's end
    return args.event_stream, stdout


def _dispatch(args: argparse.Namespace, stdin: IO[str], stdout: IO[str], stderr: IO[str], *, prog: str,
              seed: bool) -> int:
    stream: EventStream | None = None
    on_term = signal.signal(signal.SIGTERM, _on_terminate) if _main_thread() else None
    console = _console_log(args, stderr)
    args.terminal = _is_terminal(stdin)
    talks_to_cloud = args.command not in ("sim", "history") or getattr(args, "sim_command", None) == "capture"
    # The log file is opened when the cloud is about to be contacted (`_session`): a command refused on its own
    # arguments or files leaves none behind.
    lazy = _LazyLog(args.log_file, stderr, getattr(args, "debug", False)) if talks_to_cloud else None
    args.open_log = lazy.open if lazy is not None else (lambda: None)
    try:
        _warn_unverified(args, stderr, prog)
        stream, stdout = _open_events(args, stdout, stderr, prog)
        if seed:
            return _cmd_apply(args, stdin, stdout, stderr, parallel=1, max_per_host=1)
        if args.command == "export":
            return _cmd_export(args, stdout)
        if args.command == "plan":
            return _cmd_plan(args, stdout, stderr)
        if args.command == "drain":
            return _cmd_drain(args, stdin, stdout, stderr)
        if args.command == "restore":
            return _cmd_restore(args, stdin, stdout, stderr)
        if args.command == "maintain":
            return _cmd_maintain(args, stdin, stdout, stderr)
        if args.command == "history":
            return _cmd_history(args, stdout, stderr)
        if args.command == "apply":
            return _cmd_apply(args, stdin, stdout, stderr, parallel=args.parallel, max_per_host=args.max_per_host)
        if args.sim_command == "capture":
            return _cmd_sim_capture(args, stdout, stderr)
        return _cmd_sim_serve(args, stdout, stderr)
    except HostmapError as error:
        if isinstance(error, InputErrors) and len(error.errors) > _PROBLEMS_AT_MOST and lazy is not None:
            lazy.open()  # the terminal shows some of them and says that the log file has each one
        if isinstance(error, InputErrors):
            for item in error.errors:  # a line each: a map of thousands of problems must not make one huge line
                log.error("InputError: %s", _input_line(item))
        else:
            log.error("%s: %s", type(error).__name__, error)
        return _report_error(error, stderr, prog)
    except _Terminated:
        log.warning("SIGTERM outside a run: stopped with no migration in flight")
        stderr.write(f"{prog}: terminated (SIGTERM) while no migration was in flight\n")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        stderr.write(f"\n{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except OSError as error:
        stderr.write(f"{prog}: error: {error}\n")
        return EXIT_USAGE if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)) else 1
    finally:
        if stream is not None:
            stream.close()
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)
        for opened in (lazy, console):
            if opened is not None:
                opened.close()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _unencodable_argument(argv: Sequence[str] | None, stderr: IO[str], prog: str) -> int | None:
    """EXIT_USAGE, said in one line, when an argument or OS_* variable is not UTF-8 text (bytes the locale
    could not decode arrive as lone surrogates, which no log, journal or API request can carry)."""
    named = [(f"argument {i}", a) for i, a in enumerate(sys.argv[1:] if argv is None else argv, 1)]
    named += [(f"${k}", v) for k, v in os.environ.items() if k.startswith("OS_")]
    for what, text in named:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            shown = text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")[:60]
            stderr.write(f"{prog}: error: {what} ({shown}) is not UTF-8 text; give names as UTF-8\n")
            return EXIT_USAGE
    return None


def main(argv: Sequence[str] | None = None, *, stdin: IO[str] | None = None, stdout: IO[str] | None = None,
         stderr: IO[str] | None = None) -> int:
    """Run `hostmap` with `argv`; returns the exit code."""
    err = stderr or sys.stderr
    if (refused := _unencodable_argument(argv, err, "hostmap")) is not None:
        return refused
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except CloudConfigError as error:  # openstacksdk refused what its options were to be built from
        return _report_error(error, err, "hostmap")
    return _dispatch(args, stdin or sys.stdin, stdout or sys.stdout, err, prog="hostmap", seed=False)


def add_plugin_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """The arguments of `openstack hostmap COMMAND`: the command's own (the client has the cloud's and --log-file, and
    cliff the formats)."""
    COMMANDS[command].arguments(parser, False)


def run_plugin(command: str, args: argparse.Namespace, *, connection: object | None, formatter: str,
               emit: Callable[[Listing], None], log_file: str | None, stdin: IO[str], stdout: IO[str],
               stderr: IO[str], insecure: bool = False) -> int:
    """Run `openstack hostmap COMMAND` as `hostmap COMMAND` runs: on the client's connection, listings to `emit`,
    the log to the client's --log-file (else a new file in the state directory, as `hostmap` does); `insecure`: the
    client's --insecure, for the warning `hostmap` gives when TLS is not verified."""
    args.command = command
    args.log_file = log_file
    args.format = formatter
    args.emit = emit
    args.sdk_connection = connection
    if connection is not None:
        from hostmap.cloud.openstack import connection_unverified

        _say_unverified(connection_unverified(connection, insecure), stderr, "openstack hostmap")
    # The client logs warnings of every logger to the terminal: hostmap's go to its log file, its words to stderr.
    previous, log.propagate = log.propagate, False
    try:
        return _dispatch(args, stdin, stdout, stderr, prog="openstack hostmap", seed=False)
    finally:
        log.propagate = previous


def seed_main(argv: Sequence[str] | None = None, *, stdin: IO[str] | None = None, stdout: IO[str] | None = None,
              stderr: IO[str] | None = None) -> int:
    """Run the seed-compatible `openstack-live-migration`: one migration at a time, a prompt before each."""
    err = stderr or sys.stderr
    if (refused := _unencodable_argument(argv, err, "openstack-live-migration")) is not None:
        return refused
    try:
        args = build_seed_parser(argv).parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except CloudConfigError as error:
        return _report_error(error, err, "openstack-live-migration")
    args.command = "apply"
    args.on_timeout = "abort"
    args.stall_s, args.on_stall, args.max_pause_s = 60.0, "abort", 5.0
    args.stop_on_failure = False
    args.format = "table"
    args.plan_question = False  # the seed asked before each migration only
    return _dispatch(args, stdin or sys.stdin, stdout or sys.stdout, err, prog="openstack-live-migration", seed=True)


def entrypoint() -> NoReturn:
    """Console script `hostmap`."""
    sys.exit(main())


def seed_entrypoint() -> NoReturn:
    """Console script `openstack-live-migration`."""
    sys.exit(seed_main())
