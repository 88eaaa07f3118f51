"""Host map parsing: every malformed map is refused with where and what."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostmap.errors import InputError, InputErrors
from hostmap.hostmap_file import load_host_map, parse_host_map


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_valid_json_map_keeps_order_and_positions(tmp_path: Path) -> None:
    """A valid JSON map yields its hosts and references in file order with positions."""
    path = _write(tmp_path, "m.json", '{"compute001": ["a", "b"], "compute002": []}')
    host_map = load_host_map(path)
    assert [key for key, _ in host_map.hosts] == ["compute001", "compute002"]
    assert [(e.ref, e.where) for e in host_map.entries] == [("a", '"compute001"[0]'), ("b", '"compute001"[1]')]


def test_yaml_map_by_extension(tmp_path: Path) -> None:
    """A .yaml file is read as YAML."""
    path = _write(tmp_path, "m.yaml", "compute001:\n  - a\n  - b\n")
    assert [e.ref for e in load_host_map(path).entries] == ["a", "b"]


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    """Broken JSON names the line and column of the problem."""
    path = _write(tmp_path, "m.json", '{\n  "compute001": ["a",]\n}')
    with pytest.raises(InputError) as caught:
        load_host_map(path)
    assert caught.value.line == 2
    assert caught.value.column is not None
    assert "invalid JSON" in caught.value.problem


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    """Broken YAML names the line of the problem."""
    path = _write(tmp_path, "m.yml", "compute001: [a, b\ncompute002: c\n")
    with pytest.raises(InputError) as caught:
        load_host_map(path)
    assert caught.value.line is not None
    assert "invalid YAML" in caught.value.problem


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("[]", "must be an object"),
        ("{}", "names no hosts"),
        ('{"compute001": "a"}', "must be a list"),
        ('{"compute001": [1]}', "non-empty string"),
        ('{"compute001": [""]}', "non-empty string"),
        ('{"": ["a"]}', "host names must be non-empty"),
        ('{"compute001": ["a"], "compute001": ["b"]}', "duplicate key"),
        ("", "is empty"),
        ("   \n", "is empty"),
    ],
)
def test_malformed_maps_are_refused(tmp_path: Path, content: str, fragment: str) -> None:
    """Each malformed map raises an input error that says what is wrong."""
    path = _write(tmp_path, "m.json", content)
    with pytest.raises(InputError) as caught:
        load_host_map(path)
    assert fragment in caught.value.problem


def test_server_listed_twice_names_both_places() -> None:
    """A server listed under two hosts is refused, naming the first place."""
    with pytest.raises(InputError) as caught:
        parse_host_map({"c1": ["a"], "c2": ["a"]}, "m.json")
    assert caught.value.entry == '"c2"[0]'
    assert '"c1"[0]' in caught.value.problem


def test_several_problems_are_reported_together() -> None:
    """All problems of one map are reported at once."""
    with pytest.raises(InputErrors) as caught:
        parse_host_map({"c1": "a", "c2": [3]}, "m.json")
    assert len(caught.value.errors) == 2


def test_not_utf8_and_binary_are_refused(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 text, or that hold NUL, are refused before parsing."""
    with pytest.raises(InputError, match="UTF-8"):
        load_host_map(_write(tmp_path, "a.json", b"\xff\xfe{}"))
    with pytest.raises(InputError, match="NUL"):
        load_host_map(_write(tmp_path, "b.json", b'{"a": ["\x00"]}'))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    """A missing path and a directory are refused with a hint."""
    with pytest.raises(InputError, match="no such file"):
        load_host_map(tmp_path / "nope.json")
    with pytest.raises(InputError, match="directory"):
        load_host_map(tmp_path)


def test_deeply_nested_document_is_refused(tmp_path: Path) -> None:
    """A pathologically nested document is refused, not a crash."""
    path = _write(tmp_path, "m.json", "[" * 100000 + "]" * 100000)
    with pytest.raises(InputError):
        load_host_map(path)
