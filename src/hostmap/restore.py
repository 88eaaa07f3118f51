"""Put servers back: the placement a journal run found, for the servers it moved (pure; no cloud, no journal I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hostmap.journal import RunDetail
from hostmap.model import Inventory


@dataclass(frozen=True)
class Restore:
    """Where the servers a run moved were before it, and those of them that no longer exist."""

    run_id: int
    #: Server id -> the host it was on before the run (for servers that still exist).
    placement: Mapping[str, str]
    #: Names of servers the run moved that are gone since.
    deleted: tuple[str, ...] = ()
    #: Names of servers already back where they were.
    in_place: tuple[str, ...] = ()


def restore_placement(detail: RunDetail, inventory: Inventory) -> Restore:
    """The hosts the servers that run `detail` moved were on before it, as far as they still exist.

    A server counts as moved when any of its legs migrated (a detour that stopped on its pivot included); it goes
    back to the source of its first leg.  One moved again since by someone else still goes back.
    """
    first_source: dict[str, str] = {}
    names: dict[str, str] = {}
    moved: set[str] = set()
    for move in sorted(detail.moves, key=lambda m: (m.step, m.id)):
        first_source.setdefault(move.server_id, move.source)
        names[move.server_id] = move.server_name
        if move.outcome == "migrated":
            moved.add(move.server_id)
    placement: dict[str, str] = {}
    deleted: list[str] = []
    in_place: list[str] = []
    for server_id in sorted(moved, key=lambda i: (names[i], i)):
        server = inventory.server(server_id)
        if server is None:
            deleted.append(names[server_id])
            continue
        placement[server_id] = first_source[server_id]
        if server.host == first_source[server_id]:
            in_place.append(server.name)
    return Restore(detail.summary.id, placement, tuple(deleted), tuple(in_place))
