"""Read a JSON or YAML document from a file into plain Python data, with positions in errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hostmap.errors import InputError

#: Host maps and scenarios are small; refuse anything larger before parsing it.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate mapping keys instead of keeping the last."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def is_yaml(path: Path | str) -> bool:
    """True when the file's name says YAML (.yaml or .yml); everything else is read as JSON."""
    return Path(path).suffix.lower() in {".yaml", ".yml"}


def read_document(path: Path | str) -> object:
    """Read `path` as YAML when it ends in .yaml/.yml, otherwise as JSON."""
    return parse_document(read_bytes(path), str(path), yaml_syntax=is_yaml(path))


def read_bytes(path: Path | str) -> bytes:
    """The file's bytes, refusing directories, missing files and anything too large to be a host map."""
    path = Path(path)
    source = str(path)
    if path.is_dir():
        raise InputError(source, "(file)", "is a directory, not a file", "give the path of a JSON or YAML file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise InputError(source, "(file)", "no such file", "check the path") from None
    except OSError as exc:
        problem = f"cannot be read: {exc.strerror}"
        raise InputError(source, "(file)", problem, "check the path and permissions") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputError(
            source, "(file)", f"is larger than {MAX_DOCUMENT_BYTES} bytes", "a host map is a small JSON object"
        )
    return raw


def parse_document(raw: bytes, source: str, *, yaml_syntax: bool = False) -> object:
    """Parse bytes as JSON (or YAML) and return the data; errors carry line and column."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            source, "(file)", f"is not UTF-8 text (byte {exc.start})", "save the file as UTF-8 JSON or YAML"
        ) from None
    if "\x00" in text:
        raise InputError(source, "(file)", "contains NUL bytes: not a text file", "give a JSON or YAML file")
    if not text.strip():
        raise InputError(source, "(file)", "is empty", "a host map is a JSON object such as {\"host\": [\"vm\"]}")
    if yaml_syntax:
        try:
            return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 if mark is not None else None
            column = mark.column + 1 if mark is not None else None
            raise InputError(
                source, f"line {line} column {column}", f"invalid YAML: {exc.problem}", "fix the syntax",
                line=line, column=column,
            ) from None
        except (yaml.YAMLError, RecursionError) as exc:
            raise InputError(source, "(file)", f"invalid YAML: {exc}", "fix the syntax") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(
            source, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}", "fix the syntax",
            line=exc.lineno, column=exc.colno,
        ) from None
    except ValueError as exc:  # duplicate keys from the hook
        raise InputError(source, "(document)", str(exc), "list each host once") from None
    except RecursionError:
        raise InputError(source, "(document)", "is nested too deeply", "a host map is one level deep") from None
