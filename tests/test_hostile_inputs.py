"""Hostile input: non-regular files, text no file can hold, and generated maps and scenarios thrown at the CLI.

Each ends with a one-line error and exit 2 in bounded time (or exit 0 for a valid map), no traceback, and no
request that changes the cloud.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SMALL, Running, run_cli, scenario, write_json

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
UNKNOWN_HOST_MAP = CORPUS / "maps" / "unknown_host.json"

#: The placement of SMALL: a map of it (or of part of it) is valid and moves nothing.
PLACED: dict[str, list[str]] = {}
for _server in SMALL["servers"]:
    PLACED.setdefault(_server["host"], []).append(_server["name"])


_SERVER_NAMES = [s["name"] for s in SMALL["servers"]]


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if not line.startswith("hostmap: log file")]


def _assert_one_line_refusal(code: int, err: str, captured: str = "") -> None:
    lines = _error_lines(err)
    assert code == 2, err
    assert len(lines) == 1 or (lines and "problems; nothing was migrated" in lines[0]), lines
    assert lines[0].startswith("hostmap: error: "), lines
    for text in (err, captured):
        assert "Traceback" not in text
        assert "Logging error" not in text


@pytest.fixture
def cloud_env(env_cloud: Callable[..., Running]) -> Running:
    """A simulated cloud reached through the OS_* variables, as a real one would be."""
    return env_cloud()


def _fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_map_that_is_not_a_regular_file_is_refused(kind: str, cloud_env: Running, tmp_path: Path) -> None:
    """A FIFO (which would hang), a device (which never ends) or a directory given as the map exits 2 at once."""
    path = {"fifo": lambda: _fifo(tmp_path, "map.json"), "device": lambda: Path("/dev/zero"),
            "directory": lambda: tmp_path}[kind]()
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    _assert_one_line_refusal(result.code, result.err)
    assert "regular file" in result.err or "directory" in result.err
    assert cloud_env.sim.state.mutating_request_count() == 0


def test_scenario_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    """A FIFO given as --sim-scenario exits 2 instead of waiting for a writer."""
    fifo = _fifo(tmp_path, "scenario.yaml")
    result = run_cli(["plan", str(UNKNOWN_HOST_MAP), "--sim-scenario", str(fifo),
                      "--log-file", str(tmp_path / "log")])
    _assert_one_line_refusal(result.code, result.err)
    assert "named pipe" in result.err


@pytest.mark.parametrize("option", ["--journal", "--log-file", "--os-cacert"])
def test_fifo_as_another_file_argument_is_refused(option: str, cloud_env: Running, tmp_path: Path) -> None:
    """A FIFO nobody reads or writes, given as the journal, the log file or the CA bundle, ends with exit 2."""
    host_map = write_json(tmp_path / "map.json", PLACED)
    fifo = _fifo(tmp_path, "fifo")
    argv = ["apply", str(host_map), "--yes", option, str(fifo)]
    if option != "--log-file":
        argv += ["--log-file", str(tmp_path / "log")]
    result = run_cli(argv)
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert cloud_env.sim.state.mutating_request_count() == 0


def test_output_to_a_fifo_nobody_reads_is_refused(cloud_env: Running, tmp_path: Path) -> None:
    """`export -o FIFO` with no reader exits 2 instead of blocking for ever."""
    result = run_cli(["export", "-o", str(_fifo(tmp_path, "out.json")), "--log-file", str(tmp_path / "log")])
    _assert_one_line_refusal(result.code, result.err)


def test_argument_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """An argument the locale could not decode (a lone surrogate) exits 2 in one line, before anything else."""
    result = run_cli(["drain", "\udcffcompute", "--sim", "--log-file", str(tmp_path / "log")])
    _assert_one_line_refusal(result.code, result.err)
    assert "not UTF-8" in result.err


# -- generated hostile documents --------------------------------------------------------------------------------

_ANY_CHAR = st.characters(blacklist_categories=())  # surrogates (Cs) included
_NAMES = st.sampled_from(["web-0", "web-1", "db-0", "cache-0", "compute001", "compute004", ""])
_ODD_TEXT = st.one_of(_NAMES, st.text(_ANY_CHAR, max_size=8), st.just("\ud800vm"), st.just("x" * 300))
_ODD_NUMBERS = st.one_of(st.integers(), st.just(10**4000), st.floats(allow_nan=True, allow_infinity=True))
_LEAVES = st.one_of(st.none(), st.booleans(), _ODD_TEXT, _ODD_NUMBERS)
_VALUES = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_ODD_TEXT, inner, max_size=3)), max_leaves=8)

#: YAML a JSON encoder cannot write: tags, complex keys, aliases, huge literals, dates.
_YAML_SNIPPETS = [
    "? [a, b]\n: [web-0]\n",
    "? {a: 1}\n: [web-0]\n",
    "compute001: !!binary d2ViLTA=\n",
    "compute001: !!set {web-0, web-1}\n",
    "compute001: !!python/object/apply:os.system [\"true\"]\n",
    "compute001: !custom [web-0]\n",
    "2026-12-06: [web-0]\n",
    "compute001: [2026-12-06T10:00:00]\n",
    "compute001: [" + "9" * 5000 + "]\n",
    "compute001: [0x" + "f" * 400 + "]\n",
    "compute001: [1e99999]\n",
    "base: &b [web-0]\ncompute001: *b\n",
    "base: &b {x: 1}\ncompute001:\n  <<: *b\n",
    "compute001: [\"\\ud800vm\"]\n",
    "compute001: [\"\\U0001F600\\udfff\"]\n",
    "compute001: !!str [web-0]\n",
    "--- {compute001: [web-0]}\n--- {compute002: [db-0]}\n",
]


@st.composite
def _hostile_maps(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(file suffix, text, valid): a valid map of the current placement, or a hostile document."""
    choice = draw(st.sampled_from(["valid", "json", "yaml_dump", "yaml_snippet", "mutated"]))
    if choice == "valid":
        hosts = draw(st.lists(st.sampled_from(sorted(PLACED)), min_size=1, unique=True))
        data = {h: PLACED[h] for h in hosts}
        return draw(st.sampled_from([".json", ".yaml"])), json.dumps(data), True
    if choice == "yaml_snippet":
        return ".yaml", draw(st.sampled_from(_YAML_SNIPPETS)), False
    if choice == "mutated":  # a valid map with one entry replaced by something hostile
        host = draw(st.sampled_from(sorted(PLACED)))
        data: dict[str, Any] = {host: list(PLACED[host])}
        data[host][0] = draw(_VALUES.filter(lambda v: v not in _SERVER_NAMES))
        return draw(st.sampled_from([".json", ".yaml"])), json.dumps(data), False
    document = draw(_VALUES)
    if choice == "yaml_dump":
        import yaml
        return ".yaml", yaml.safe_dump(document, allow_unicode=False), False
    return ".json", json.dumps(document), False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_hostile_maps())
def test_generated_maps_exit_2_or_0_and_change_nothing(case: tuple[str, str, bool], cloud_env: Running,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Any generated map ends with exit 0 (a valid map of where the servers are) or one line and exit 2, no
    traceback anywhere, and no request that changes the cloud."""
    suffix, text, valid = case
    path = tmp_path / f"hostile{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    captured = capsys.readouterr()
    if valid or result.code == 0:  # a generated document can happen to be a valid map too (say a list of none)
        assert result.code == 0, result.err
    else:
        _assert_one_line_refusal(result.code, result.err, captured.err + captured.out)
    assert cloud_env.sim.state.mutating_request_count() == 0


_REGEXES = st.one_of(
    st.sampled_from(["a{99999999999}", "(a+)+$", "(.*)*x", "((ab)*)+", "(?:a|b|ab)+$", "a{5000}", ".*.*.*.*x",
                     "(", "[", "x" * 300, "(?P<a>x)(?P=b)", "\\", "/action$"]),
    st.text(st.sampled_from("()[]{}*+?|.^$\\a1,:-=!<>P"), max_size=12),
)


@st.composite
def _hostile_scenarios(draw: st.DrawFn) -> tuple[str, str]:
    """(file suffix, text): the test cloud with a hostile path_regex fault, leaf value or YAML snippet."""
    data = scenario()
    choice = draw(st.sampled_from(["regex", "leaf", "yaml"]))
    if choice == "yaml":
        return ".yaml", "hosts: []\nflavors: []\n" + draw(st.sampled_from(_YAML_SNIPPETS))
    if choice == "regex":
        kind = draw(st.sampled_from(["slow", "api_error"]))
        fault: dict[str, Any] = {"kind": kind, "path_regex": draw(_REGEXES)}
        fault.update({"seconds": 1} if kind == "slow" else {"status": 503})
        data["faults"] = [fault]
    else:
        section = draw(st.sampled_from(["hosts", "flavors", "servers"]))
        entry = draw(st.integers(0, len(data[section]) - 1))
        key = draw(st.sampled_from(sorted(data[section][entry])))
        data[section][entry][key] = draw(_VALUES)
    return draw(st.sampled_from([".json", ".yaml"])), json.dumps(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_hostile_scenarios())
def test_generated_scenarios_exit_2_or_0_without_traceback(case: tuple[str, str], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A generated scenario either loads (plan exits 0 on a map of where the servers are) or ends with one line and
    exit 2, with no traceback, in bounded time (a pathological path_regex is refused, not matched)."""
    suffix, text = case
    path = tmp_path / f"scenario{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    host_map = write_json(tmp_path / "map.json", {"compute001": ["web-0"]})
    result = run_cli(["plan", str(host_map), "--sim-scenario", str(path), "--virtual-time",
                      "--log-file", str(tmp_path / "log")])
    captured = capsys.readouterr()
    # 3 or 4: a scenario that loads, but where the map does not fit or whose nova hostmap cannot use
    assert result.code in (0, 2, 3, 4), result.err
    if result.code == 2:
        _assert_one_line_refusal(result.code, result.err, captured.err + captured.out)
    assert "Traceback" not in result.err + captured.err


def test_a_control_character_in_a_map_key_stays_on_the_error_line(tmp_path: Path, cloud_env: Running) -> None:
    """A map key with a carriage return or an escape sequence is refused in one line that shows them escaped."""
    host_map = tmp_path / "map.json"
    host_map.write_text(json.dumps({"0\r": ["web-0"], "\x1b[2Jcompute9": ["web-1"]}))
    result = run_cli(["plan", str(host_map), "--log-file", str(tmp_path / "log")])
    assert result.code == 2, result.err
    assert "\r" not in result.err
    assert "\x1b" not in result.err
    assert "0\\r" in result.err
    assert "\\x1b[2Jcompute9" in result.err


def test_a_regex_python_warns_about_is_judged_not_warned() -> None:
    """A path_regex that makes Python warn ("possible nested set") gets the usual verdict, never the warning."""
    from hostmap.sim.scenario import regex_problem

    problem = regex_problem("[[")
    assert problem is not None
    assert problem.startswith("is not a valid regular expression")
    assert regex_problem("[[a]") is None
