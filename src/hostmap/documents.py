"""Read a JSON or YAML document from a file into plain Python data, with positions in errors."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, ClassVar

import yaml

from hostmap.errors import InputError

#: Host maps and scenarios are small; refuse anything larger before parsing it.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


#: Numbers beyond this are refused: every count, size and second in a map or scenario is far smaller, and a
#: bigger one would only overflow later (a 5,000-digit integer, 1e308 * a ratio) far from the line that wrote it.
MAX_NUMBER = 10**15
#: Longest YAML integer literal converted at all (signs, 0x, 0o, underscores and sexagesimal colons included).
_MAX_INT_LITERAL = 40


class _Refused(Exception):
    """A value the document may not hold; `problem` says why and `hint` what to write instead."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


class _PlainLoader(yaml.SafeLoader):
    """A safe YAML loader of plain data only: mappings with string or number keys (no duplicates), lists,
    strings, bounded numbers, booleans and null. Any other type or tag (dates, !!binary, !!set, !!python/...,
    merge keys, complex keys) is refused with its position rather than becoming a value our types never expect."""

    yaml_constructors: ClassVar[dict[str | None, Any]] = {}  # a fresh table: nothing SafeLoader knows is inherited


def _construct_mapping(loader: _PlainLoader, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            kind = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a string, not {kind}", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _construct_int(loader: _PlainLoader, node: yaml.ScalarNode) -> int:
    if len(str(node.value)) > _MAX_INT_LITERAL:
        raise yaml.constructor.ConstructorError(
            None, None, f"a number of {len(str(node.value))} characters is too large", node.start_mark
        )
    value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    if abs(value) > MAX_NUMBER:
        raise yaml.constructor.ConstructorError(None, None, "a number is too large", node.start_mark)
    return value


def _construct_float(loader: _PlainLoader, node: yaml.ScalarNode) -> float:
    value = yaml.constructor.SafeConstructor.construct_yaml_float(loader, node)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise yaml.constructor.ConstructorError(None, None, "a number is too large or not finite", node.start_mark)
    return value


def _refuse_tag(loader: _PlainLoader, node: yaml.Node) -> object:
    tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
    raise yaml.constructor.ConstructorError(
        None, None, f"the YAML type {tag} is not allowed (only mappings, lists, strings and numbers); "
        "quote the value to make it a string", node.start_mark,
    )


def _construct_plain(loader: _PlainLoader, node: yaml.Node) -> object:
    """Null, booleans, strings and lists as SafeLoader builds them."""
    plain = {"tag:yaml.org,2002:null": yaml.constructor.SafeConstructor.construct_yaml_null,
             "tag:yaml.org,2002:bool": yaml.constructor.SafeConstructor.construct_yaml_bool,
             "tag:yaml.org,2002:str": yaml.constructor.SafeConstructor.construct_yaml_str,
             "tag:yaml.org,2002:seq": yaml.constructor.SafeConstructor.construct_yaml_seq}
    build: Any = plain[str(node.tag)]
    return build(loader, node)


for _tag in ("null", "bool", "str", "seq"):
    _PlainLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _construct_plain)
_PlainLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_PlainLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_PlainLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_PlainLoader.add_constructor(None, _refuse_tag)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"duplicate key {key!r}", "list each host once")
        result[key] = value
    return result


def _json_int(text: str) -> int:
    if len(text) > _MAX_INT_LITERAL or abs(int(text)) > MAX_NUMBER:
        raise _Refused(f"a number of {len(text)} digits is too large", "counts and sizes are far smaller")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise _Refused(f"the number {text[:20]} is too large", "counts and sizes are far smaller")
    return value


def _json_constant(text: str) -> float:
    raise _Refused(f"{text} is not a number JSON allows", "write a finite number")


def unencodable_at(data: object) -> str | None:
    """Where in `data` (a JSON path) a string holds a lone surrogate, which no file, log or request can carry."""
    seen: set[int] = set()  # YAML aliases share containers: visit each once
    todo: list[tuple[object, str]] = [(data, "")]
    while todo:
        value, where = todo.pop()
        if isinstance(value, str):
            if not _encodable(value):
                return where or "(document)"
        elif isinstance(value, dict | list) and id(value) not in seen:
            seen.add(id(value))
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in pairs:
                if isinstance(key, str) and not _encodable(key):
                    return f"{where} (a key)" if where else "(a key)"
                todo.append((item, (f"{where}.{json.dumps(key)}" if where else json.dumps(key)) if isinstance(key, str)
                             else f"{where}[{key}]"))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_yaml(path: Path | str) -> bool:
    """True when the file's name says YAML (.yaml or .yml); everything else is read as JSON."""
    return Path(path).suffix.lower() in {".yaml", ".yml"}


def read_document(path: Path | str) -> object:
    """Read `path` as YAML when it ends in .yaml/.yml, otherwise as JSON."""
    return parse_document(read_bytes(path), str(path), yaml_syntax=is_yaml(path))


def read_bytes(path: Path | str) -> bytes:
    """The file's bytes, refusing anything but a regular file (a FIFO would hang, a device never end) and
    anything too large to be a host map."""
    path = Path(path)
    source = str(path)
    check_regular(path, source)
    try:
        # Non-blocking: should the path become a FIFO after the check, opening it still returns at once.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(source, "(file)", "no such file", "check the path") from None
    except OSError as exc:
        problem = f"cannot be read: {exc.strerror}"
        raise InputError(source, "(file)", problem, "check the path and permissions") from None
    with open(fd, "rb", closefd=True) as handle:
        _refuse_irregular(os.fstat(fd).st_mode, source)
        try:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            raise InputError(source, "(file)", f"cannot be read: {exc.strerror}", "check the file") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputError(
            source, "(file)", f"is larger than {MAX_DOCUMENT_BYTES} bytes", "a host map is a small JSON object"
        )
    return raw


def check_regular(path: Path | str, source: str | None = None) -> None:
    """Raise InputError unless `path` is a regular file (or names nothing yet: the caller reports that)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(source or str(path), "(file)", f"cannot be read: {exc.strerror}",
                         "check the path and permissions") from None
    _refuse_irregular(mode, source or str(path))


def _refuse_irregular(mode: int, source: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise InputError(source, "(file)", "is a directory, not a file", "give the path of a JSON or YAML file")
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    raise InputError(source, "(file)", f"is {kind}, not a regular file", "write it to a file first and give that")


def parse_document(raw: bytes, source: str, *, yaml_syntax: bool = False) -> object:
    """Parse bytes as JSON (or YAML) and return plain data; errors carry line and column where known."""
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
    data = _parse_yaml(text, source) if yaml_syntax else _parse_json(text, source)
    where = unencodable_at(data)
    if where is not None:
        raise InputError(source, where, "holds text that is not Unicode (a lone surrogate such as \\ud800)",
                         "write names as plain UTF-8 text")
    return data


def _parse_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_PlainLoader)  # a SafeLoader subclass that builds plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        # A refused type or key says what to write itself; a syntax error only where it is.
        refused = isinstance(exc, yaml.constructor.ConstructorError)
        raise InputError(
            source, f"line {line} column {column}", f"{'' if refused else 'invalid YAML: '}{exc.problem}",
            "" if refused else "fix the syntax",
            line=line, column=column,
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
        raise InputError(source, "(file)", f"invalid YAML: {exc}", "fix the syntax") from None


def _parse_json(text: str, source: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_int=_json_int,
                          parse_float=_json_float, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            source, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}", "fix the syntax",
            line=exc.lineno, column=exc.colno,
        ) from None
    except _Refused as exc:
        raise InputError(source, "(document)", exc.problem, exc.hint) from None
    except RecursionError:
        raise InputError(source, "(document)", "is nested too deeply", "a host map is one level deep") from None
