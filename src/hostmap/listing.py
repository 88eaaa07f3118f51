"""Listings: the rows of every report, as columns named by their JSON keys, and the formats they take (no rich).

Each listing is built from the same JSON document `serialise.py` builds, so a column is always a key of that
document.  Both faces use these: `hostmap ... -f yaml|csv|value|-c` and the `openstack hostmap` plugin (whose cliff
formatters take the columns and rows).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from hostmap.errors import InputError

#: The formats of `hostmap ... -f`, as the openstack client names them.
FORMATS = ("table", "json", "yaml", "csv", "value")


@dataclass(frozen=True)
class Listing:
    """A report's rows: `columns` (JSON keys), one tuple per row, and the whole JSON document they come from."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    document: Any


def from_dicts(items: Sequence[Mapping[str, Any]], columns: Sequence[str], document: Any) -> Listing:
    """A listing of `columns` from a list of JSON objects (a key an object lacks is None)."""
    return Listing(tuple(columns), tuple(tuple(item.get(c) for c in columns) for item in items), document)


PLAN_COLUMNS = ("step", "server", "id", "flavor", "source", "target", "final_target", "detour", "after",
                "settle_after", "estimate_s", "cold")
RUN_COLUMNS = ("server", "id", "source", "target", "outcome", "reason", "seconds", "started_s", "finished_s",
               "unresolved", "cold")
HISTORY_COLUMNS = ("run", "cloud", "map", "started_at", "finished_at", "status", "moves", "migrated")
HISTORY_RUN_COLUMNS = ("step", "server", "id", "source", "target", "final_target", "submitted_at", "request_id",
                       "migration_id", "outcome", "reason", "seconds", "detail")
MAP_COLUMNS = ("host", "count", "servers")
DRAIN_COLUMNS = ("host", "arriving", "peak_before", "peak_after")
MAINTAIN_COLUMNS = ("host", "drained", "command_started", "command_exit", "up", "enabled", "restored")
ROLLOUT_COLUMNS = ("batch", "hosts", "moves", "estimated_s", "back", "estimated_back_s")


def plan_listing(document: Mapping[str, Any]) -> Listing:
    """`plan`: one row per step (`cold` is False on live moves, where the document leaves it out)."""
    rows = [{"cold": False, **move} for move in document["moves"]]
    return from_dicts(rows, PLAN_COLUMNS, document)


def run_listing(document: Mapping[str, Any]) -> Listing:
    """A run's report (apply, drain/restore --apply): one row per move."""
    return from_dicts(document["moves"], RUN_COLUMNS, document)


def history_listing(document: Sequence[Mapping[str, Any]]) -> Listing:
    """`history`: one row per run."""
    return from_dicts(document, HISTORY_COLUMNS, document)


def history_run_listing(document: Mapping[str, Any]) -> Listing:
    """`history RUN`: one row per move of the run."""
    return from_dicts(document["moves"], HISTORY_RUN_COLUMNS, document)


def map_listing(document: Mapping[str, Sequence[str]]) -> Listing:
    """A host map (export, restore): one row per host with its servers."""
    rows = [{"host": host, "count": len(names), "servers": list(names)} for host, names in document.items()]
    return from_dicts(rows, MAP_COLUMNS, document)


def drain_listing(document: Mapping[str, Any]) -> Listing:
    """`drain`'s summary: one row per target host that receives servers."""
    return from_dicts([t for t in document["targets"] if t["arriving"]], DRAIN_COLUMNS, document)


def maintain_listing(document: Mapping[str, Any]) -> Listing:
    """`maintain`'s end: one row per host with its steps."""
    return from_dicts(document["hosts"], MAINTAIN_COLUMNS, document)


def rollout_listing(document: Mapping[str, Any]) -> Listing:
    """`maintain --dry-run`: one row per batch (moves out and back counted)."""
    rows = [{"batch": n, "hosts": b["hosts"], "moves": len(b["moves"]), "estimated_s": b["estimated_s"],
             "back": len(b["back"]), "estimated_back_s": b["estimated_back_s"]}
            for n, b in enumerate(document["batches"], 1)]
    return from_dicts(rows, ROLLOUT_COLUMNS, document)


def _normal(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def select(listing: Listing, columns: Sequence[str]) -> Listing:
    """Only the asked columns, in the listing's order (as cliff's `-c` does); none of them known is an InputError."""
    if not columns:
        return listing
    asked = {_normal(c) for c in columns}
    keep = [i for i, c in enumerate(listing.columns) if _normal(c) in asked]
    if not keep:
        raise InputError("-c", ", ".join(columns), "no such column in this listing",
                         f"the columns are {', '.join(listing.columns)}")
    return Listing(tuple(listing.columns[i] for i in keep), tuple(tuple(r[i] for i in keep) for r in listing.rows),
                   listing.document)


def cell(value: Any) -> str:
    """A value as text for csv, value and table cells: lists joined by commas, None empty."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value)
    if isinstance(value, dict):  # a nested object (a move's detail): compact JSON
        return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else ""
    return str(value)


def write(listing: Listing, fmt: str, out: IO[str], *, selected: bool) -> None:
    """Write `listing` as json, yaml, csv or value; `selected`: -c was given, so JSON/YAML are the rows, not the
    whole document."""
    if fmt in ("json", "yaml"):
        data: Any = ([dict(zip(listing.columns, row, strict=True)) for row in listing.rows] if selected
                     else listing.document)
        if fmt == "json":
            out.write(json.dumps(data, indent=2) + "\n")
        else:
            import yaml

            out.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
        return
    if fmt == "csv":
        writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        writer.writerow(listing.columns)
        for row in listing.rows:
            writer.writerow([v if isinstance(v, int | float) and not isinstance(v, bool) else cell(v) for v in row])
        return
    if fmt == "value":
        for row in listing.rows:
            out.write(" ".join(cell(v) for v in row) + "\n")
        return
    raise ValueError(f"not a listing format: {fmt}")
