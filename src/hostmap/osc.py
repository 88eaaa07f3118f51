"""The `openstack hostmap ...` face: a python-openstackclient plugin over the same commands as `hostmap ...`.

The client finds this module through the `openstack.cli.extension` entry point and the commands through the
`openstack.hostmap.v1` group.  Each command takes its arguments from `cli.COMMANDS` (defined once, for both faces),
authenticates with the client's own connection (`--os-cloud`, OS_*, `--insecure`, `--os-cacert`), hands its
listings to cliff's formatters (`-f`, `-c`, `--sort-column`) and returns `hostmap`'s exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, ClassVar

from osc_lib.command.command import Lister

from hostmap.listing import Listing

#: The client's names for this plugin: the `openstack.hostmap.v1` command group, and its version option.
API_NAME = "hostmap"
API_VERSION_OPTION = "os_hostmap_api_version"
DEFAULT_API_VERSION = "1"
API_VERSIONS = ("1",)


def make_client(instance: Any) -> Any:
    """`client_manager.hostmap`: the client's openstacksdk connection (hostmap talks to nova and placement)."""
    return instance.sdk_connection


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The client's global options for this plugin: only the (single) version, so `openstack` accepts it."""
    parser.add_argument("--os-hostmap-api-version", metavar="<version>", default=DEFAULT_API_VERSION,
                        help=f"hostmap plugin version (default {DEFAULT_API_VERSION}; there is only one)")
    return parser


def _cell(value: Any) -> Any:
    """A list (servers, hosts, steps) as osc shows lists: joined in a table, a list in JSON and YAML."""
    if isinstance(value, list | tuple):
        from osc_lib.cli.format_columns import ListColumn

        return ListColumn(list(value))
    return value


class _Command(Lister):
    """One `hostmap` command under `openstack hostmap`."""

    #: The client authenticates before running the command (not for `history`, which reads only the journal).
    auth_required: ClassVar[bool] = True

    #: The `hostmap` command this runs (a key of `cli.COMMANDS`).
    name: ClassVar[str]

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        """cliff's formatter options, then the command's own arguments as `hostmap` defines them."""
        from hostmap.cli import COMMANDS, add_plugin_arguments

        parser: argparse.ArgumentParser = super().get_parser(prog_name)
        parser.description = COMMANDS[self.name].help
        add_plugin_arguments(self.name, parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        """Unused: `run` runs the command (a listing may come several times, or none, and the exit code matters)."""
        raise NotImplementedError

    def run(self, parsed_args: argparse.Namespace) -> int:
        """Run the hostmap command; each listing it shows goes through the chosen cliff formatter."""
        from hostmap.cli import run_plugin

        parsed_args = self._run_before_hooks(parsed_args)
        formatter = self._formatter_plugins[parsed_args.formatter].obj
        assert formatter is not None  # stevedore loaded it: cliff offered its name as a choice
        self.formatter = formatter

        def emit(listing: Listing) -> None:
            rows = [tuple(_cell(v) for v in row) for row in listing.rows]
            if getattr(parsed_args, "events", None) != "-":
                self.produce_output(parsed_args, listing.columns, rows)
                return
            # `--events -`: standard output carries the events only, so the listing goes to standard error.
            out, self.app.stdout = self.app.stdout, self.app.stderr
            try:
                self.produce_output(parsed_args, listing.columns, rows)
            finally:
                self.app.stdout = out

        connection = self.app.client_manager.sdk_connection if self.auth_required else None
        code: int = run_plugin(self.name, parsed_args, connection=connection, formatter=parsed_args.formatter,
                               emit=emit, log_file=getattr(self.app.options, "log_file", None),
                               stdin=self.app.stdin, stdout=self.app.stdout, stderr=self.app.stderr,
                               insecure=bool(getattr(self.app.options, "insecure", False)))
        return code


class Export(_Command):
    """Print the current placement as a host map (one row per host; -o FILE writes the map)."""

    name = "export"


class Plan(_Command):
    """Show what would move, in order; changes nothing."""

    name = "plan"


class Apply(_Command):
    """Live-migrate servers until the cloud matches the map."""

    name = "apply"


class History(_Command):
    """List past runs from the journal, or show one run's moves."""

    name = "history"
    auth_required = False


class Drain(_Command):
    """Write a host map that empties HOSTs onto the others (with --apply, carry it out)."""

    name = "drain"


class Restore(_Command):
    """Write the host map that puts the servers a run moved back (with --apply, carry it out)."""

    name = "restore"


class Maintain(_Command):
    """Roll maintenance across HOSTs, batch by batch."""

    name = "maintain"
