"""Read and validate a host map (JSON or YAML: compute host -> list of servers) into our types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hostmap.documents import is_yaml, parse_document, read_bytes
from hostmap.errors import InputError, InputErrors

#: Longest host or server reference accepted; nova names are at most 255 characters.
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class Entry:
    """One server reference in the map, with where it was written."""

    host_key: str
    ref: str
    position: int

    @property
    def where(self) -> str:
        """The entry as a JSON path, for messages."""
        return f'"{self.host_key}"[{self.position}]'


@dataclass(frozen=True)
class HostMap:
    """A parsed host map: host keys as written, each with its server references in order."""

    source: str
    hosts: tuple[tuple[str, tuple[Entry, ...]], ...]

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every server reference in file order."""
        return tuple(entry for _, entries in self.hosts for entry in entries)


def load_host_map(path: Path | str) -> HostMap:
    """Read and validate the host map at `path`."""
    return read_host_map(path)[0]


def read_host_map(path: Path | str) -> tuple[HostMap, str]:
    """Read and validate the host map at `path`; also return its text, read once, for the journal."""
    raw = read_bytes(path)
    data = parse_document(raw, str(path), yaml_syntax=is_yaml(path))
    return parse_host_map(data, str(path)), raw.decode("utf-8")  # parse_document has checked it is UTF-8


def parse_host_map(data: object, source: str) -> HostMap:
    """Validate parsed JSON/YAML data as a host map, reporting every problem at once."""
    if not isinstance(data, dict):
        raise InputError(
            source, "(document)", f"must be an object of host -> list of servers, found {_kind(data)}",
            'write it as {"compute001": ["vm-1", "vm-2"]}',
        )
    if not data:
        raise InputError(source, "(document)", "names no hosts", 'write it as {"compute001": ["vm-1"]}')
    errors: list[InputError] = []
    hosts: list[tuple[str, tuple[Entry, ...]]] = []
    first_seen: dict[str, Entry] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key.strip():
            errors.append(InputError(source, repr(key), "host names must be non-empty strings", "fix the key"))
            continue
        if len(key) > MAX_NAME_LENGTH:
            errors.append(InputError(source, f'"{key[:40]}..."', "host name is too long", "fix the key"))
            continue
        if not isinstance(value, list):
            errors.append(InputError(
                source, f'"{key}"', f"must be a list of server names or UUIDs, found {_kind(value)}",
                f'write it as "{key}": ["vm-1"]',
            ))
            continue
        entries: list[Entry] = []
        for position, ref in enumerate(value):
            entry = Entry(key, ref if isinstance(ref, str) else "", position)
            if not isinstance(ref, str) or not ref.strip():
                errors.append(InputError(
                    source, entry.where, f"must be a server name or UUID (a non-empty string), found {_kind(ref)}",
                    "fix the entry",
                ))
                continue
            if len(ref) > MAX_NAME_LENGTH:
                errors.append(InputError(source, entry.where, "server reference is too long", "fix the entry"))
                continue
            earlier = first_seen.get(ref)
            if earlier is not None:
                errors.append(InputError(
                    source, entry.where, f'server "{ref}" is already listed at {earlier.where}',
                    "list each server under one host only",
                ))
                continue
            first_seen[ref] = entry
            entries.append(entry)
        hosts.append((key, tuple(entries)))
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return HostMap(source, tuple(hosts))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
