"""The CLI end to end over real HTTP against the simulated cloud: exit codes, reports, and no stray migrations."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import SWAP_MAP, Running, run_cli, scenario, swap_scenario, write_json
from hostmap.cli import Prompter
from hostmap.cloud.base import Submission
from hostmap.display import LiveDisplay
from hostmap.model import Inventory, Move, Plan, Resources, Step
from hostmap.report import print_run
from hostmap.results import MoveResult, RunResult
from hostmap.sim.scenario import demo_scenario_path

REPO = Path(__file__).resolve().parent.parent




def _sim_args(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    path = write_json(tmp_path / "scenario.json", data)
    return ["--sim-scenario", str(path), "--virtual-time", "--log-file", str(tmp_path / "hostmap.log")]


def test_apply_moves_servers_and_reports_json(tmp_path: Path) -> None:
    """apply moves every listed server to its host and the JSON report says so."""
    host_map = write_json(tmp_path / "map.json", {"compute002": ["web-0"], "compute004.cloud.example.com": ["web-1"],
                                                   "compute003": ["cache-0"]})
    result = run_cli(["apply", str(host_map), "--yes", "-f", "json", *_sim_args(tmp_path, scenario())])
    assert result.code == 0, result.err
    report = result.json()
    assert report["reached"] is True
    outcomes = {m["server"]: (m["outcome"], m["target"]) for m in report["moves"]}
    assert outcomes == {"web-0": ("migrated", "compute002"), "web-1": ("migrated", "compute004"),
                        "cache-0": ("skipped", "compute003")}


def test_apply_reports_the_estimate_against_the_run(tmp_path: Path) -> None:
    """The report of a run says the plan's estimate beside the makespan, in JSON and in the table's last line."""
    host_map = write_json(tmp_path / "map.json", {"compute002": ["web-0"]})
    sim = _sim_args(tmp_path, scenario())
    report = run_cli(["apply", str(host_map), "--yes", "-f", "json", *sim]).json()
    assert report["estimated_s"] > 0
    assert report["estimate_error"] == pytest.approx(report["makespan_s"] / report["estimated_s"] - 1, abs=0.01)
    text = run_cli(["apply", str(host_map), "--yes", *sim])
    assert "(estimated " in text.out, text.out


def test_plan_changes_nothing_and_lists_moves(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """plan prints the ordered moves and issues no mutating request."""
    running = env_cloud()
    host_map = write_json(tmp_path / "map.json", {"compute002": ["web-0"], "compute003": ["cache-0"]})
    result = run_cli(["plan", str(host_map), "-f", "json", "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    doc = result.json()
    assert [(m["server"], m["source"], m["target"]) for m in doc["moves"]] == [("web-0", "compute001", "compute002")]
    assert [s["server"] for s in doc["in_place"]] == ["cache-0"]
    assert doc["lower_bound_by"] == "longest"
    text = run_cli(["plan", str(host_map), "--log-file", str(tmp_path / "log")])
    assert "set by the longest migration" in " ".join(text.out.split()), text.out
    assert running.sim.state.mutating_request_count() == 0


def test_export_round_trips_through_apply(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """export writes every compute host with its servers, and applying it back moves nothing."""
    running = env_cloud()
    out = tmp_path / "placement.json"
    assert run_cli(["export", "-o", str(out), "--log-file", str(tmp_path / "log")]).code == 0
    placement = json.loads(out.read_text())
    assert placement == {"compute001": ["web-0", "web-1"], "compute002": ["db-0"], "compute003": ["cache-0"],
                         "compute004": []}
    result = run_cli(["apply", str(out), "--yes", "-f", "json", "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert {m["outcome"] for m in result.json()["moves"]} == {"skipped"}
    assert running.sim.state.mutating_request_count() == 0


def test_export_keeps_an_existing_file_unless_forced(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """export -o refuses to overwrite a saved placement (exit 2, file untouched) and overwrites it with --force."""
    env_cloud()
    out = tmp_path / "saved.json"
    out.write_text('{"compute004": ["web-0"]}')
    refused = run_cli(["export", "-o", str(out), "--log-file", str(tmp_path / "log")])
    assert refused.code == 2, refused.err
    assert "already exists" in refused.err
    assert "--force" in refused.err
    assert out.read_text() == '{"compute004": ["web-0"]}'
    assert run_cli(["export", "-o", str(out), "--force", "--log-file", str(tmp_path / "log")]).code == 0
    assert json.loads(out.read_text())["compute001"] == ["web-0", "web-1"]


def test_export_writes_yaml_by_extension_or_format(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """export -o MAP.yaml writes YAML that load_host_map reads back, and -f yaml prints the map as YAML."""
    from hostmap.hostmap_file import load_host_map

    env_cloud()
    out = tmp_path / "placement.yaml"
    assert run_cli(["export", "-o", str(out), "--log-file", str(tmp_path / "log")]).code == 0
    assert not out.read_text().lstrip().startswith("{")
    loaded = load_host_map(str(out))
    printed = run_cli(["export", "-f", "yaml", "--log-file", str(tmp_path / "log")])
    assert printed.code == 0, printed.err
    assert printed.out.startswith("compute001:\n- web-0\n- web-1\n"), printed.out
    json_map = run_cli(["export", "--log-file", str(tmp_path / "log")]).json()
    assert {host: [entry.ref for entry in entries] for host, entries in loaded.hosts} == json_map


@pytest.mark.parametrize(
    ("host_map", "fragment"),
    [
        ({"compute009": ["web-0"]}, "is not a compute host"),
        ({"compute002": ["ghost"]}, "no server named"),
        ({"compute002": ["web-0"], "compute003": ["web-0"]}, "already listed"),
        ({"compute002": "web-0"}, "must be a list"),
    ],
)
def test_bad_maps_exit_2_and_migrate_nothing(
    tmp_path: Path, env_cloud: Callable[..., Running], host_map: dict[str, Any], fragment: str
) -> None:
    """Each invalid map exits 2 with a message naming the problem, and issues no migration."""
    running = env_cloud()
    path = write_json(tmp_path / "map.json", host_map)
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert fragment in result.err
    assert str(path) in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_invalid_json_exits_2_with_position(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """Broken JSON exits 2 naming line and column, and nothing moves."""
    running = env_cloud()
    path = tmp_path / "map.json"
    path.write_text('{"compute002": [\n "web-0",\n}', encoding="utf-8")
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert "line 3 column 1" in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_shared_name_exits_2_listing_uuids(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A name shared by two servers exits 2 and lists both UUIDs."""
    data = scenario()
    data["servers"].append({"name": "web-0", "flavor": "m1.small", "host": "compute003"})
    running = env_cloud(data)
    ids = [s.id for s in running.cloud.inventory().servers if s.name == "web-0"]
    path = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert all(i in result.err for i in ids)
    assert running.sim.state.mutating_request_count() == 0


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"enabled": False}, "is disabled"),
        ({"up": False}, "is down"),
    ],
)
def test_unusable_target_service_exits_2(
    tmp_path: Path, env_cloud: Callable[..., Running], change: dict[str, Any], fragment: str
) -> None:
    """A disabled or down target compute service is refused before anything moves."""
    data = scenario()
    data["hosts"][3].update(change)
    running = env_cloud(data)
    path = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert fragment in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_server_on_a_down_source_exits_2(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A server on a host whose nova-compute is down is refused before anything moves: nova could not move it."""
    data = scenario()
    data["hosts"][0]["up"] = False
    running = env_cloud(data)
    path = write_json(tmp_path / "map.json", {"compute004": ["web-0"], "compute001": ["web-1"]})
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert "is on compute001, whose compute service is down" in result.err
    assert "bring nova-compute up on compute001" in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_server_not_migratable_exits_2(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A SHUTOFF server in the map is refused: only ACTIVE and PAUSED servers can be live-migrated."""
    data = scenario()
    data["servers"][0]["status"] = "SHUTOFF"
    running = env_cloud(data)
    path = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 2
    assert "SHUTOFF" in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_swap_without_a_usable_pivot_exits_3(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """Two full hosts that must swap servers, with the only roomy host down, exit 3 naming the servers, the hosts and
    the host not used as a pivot, and move nothing."""
    data = swap_scenario()
    data["hosts"][2]["up"] = False
    running = env_cloud(data)
    path = write_json(tmp_path / "map.json", SWAP_MAP)
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 3
    assert "servers a, b must swap between full hosts compute001, compute002" in result.err
    assert "not used as pivots: compute003 (compute service down)" in result.err
    assert running.sim.state.mutating_request_count() == 0


def test_final_capacity_overflow_exits_3(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """A map that overfills a host exits 3 naming host, resource, needed and available, and moves nothing."""
    data = scenario()
    data["servers"] += [{"name": f"big-{i}", "flavor": "m1.large", "host": "compute004"} for i in range(2)]
    running = env_cloud(data)
    path = write_json(tmp_path / "map.json", {"compute002": ["big-0", "big-1"]})
    result = run_cli(["plan", str(path), "--log-file", str(tmp_path / "log")])
    assert result.code == 3
    assert "compute002: MEMORY_MB needed 24576, available 16384" in result.err
    result = run_cli(["apply", str(path), "--yes", "--log-file", str(tmp_path / "log")])
    assert result.code == 3
    assert running.sim.state.mutating_request_count() == 0


def test_no_cloud_configured_exits_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no clouds.yaml and no OS_* variables, hostmap says how to configure one and exits 4."""
    for name in list(__import__("os").environ):
        if name.startswith("OS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    path = write_json(tmp_path / "map.json", {"compute002": ["web-0"]})
    result = run_cli(["plan", str(path), "--log-file", str(tmp_path / "log")])
    assert result.code == 4
    assert "no cloud is configured" in result.err
    assert "--sim" in result.err
    assert "OS_AUTH_URL" in result.err


def test_wrong_password_exits_4_without_printing_it(
    tmp_path: Path, env_cloud: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused password exits 4, and neither password appears in output or log."""
    running = env_cloud()
    real = running.sim.env()["OS_PASSWORD"]
    monkeypatch.setenv("OS_PASSWORD", "not-the-password-4711")
    log = tmp_path / "log"
    result = run_cli(["export", "--log-file", str(log)])
    assert result.code == 4
    assert "authentication failed" in result.err
    for secret in (real, "not-the-password-4711"):
        assert secret not in result.out + result.err + log.read_text()


def test_unreachable_cloud_exits_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cloud that does not answer exits 4 with a connection error in plain words."""
    monkeypatch.delenv("OS_CLOUD", raising=False)
    for name, value in {"OS_AUTH_URL": "http://127.0.0.1:9/identity/v3", "OS_USERNAME": "admin",
                        "OS_PASSWORD": "x", "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
                        "OS_PROJECT_DOMAIN_NAME": "Default"}.items():
        monkeypatch.setenv(name, value)
    result = run_cli(["export", "--log-file", str(tmp_path / "log")])
    assert result.code == 4
    # In plain words: what could not be reached, its URL, what happened and what to check; no urllib3 text.
    assert "http://127.0.0.1:9/identity/v3 cannot be reached: the connection was refused" in result.err
    assert "check the URL (OS_AUTH_URL" in result.err
    for raw in ("HTTPConnectionPool", "Errno", "NewConnectionError", "Max retries"):
        assert raw not in result.err


def test_prompt_answers_from_stdin(tmp_path: Path) -> None:
    """Without --yes, the plan's summary is asked about once, then answers are read line by line: no declines one
    move, end of input quits the rest; each piped answer is written after its question, a line each."""
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1", "cache-0"]})
    result = run_cli(["apply", str(host_map), "--parallel", "1", "-f", "json", *_sim_args(tmp_path, scenario())],
                     stdin="y\ny\nn\n")
    assert result.code == 1
    outcomes = [m["outcome"] for m in result.json()["moves"]]
    assert sorted(outcomes) == ["declined", "declined", "migrated"]
    assert "hostmap: the plan: 3 migrations; estimated " in result.err
    assert result.err.count("Go on? [y]es, asking before each migration/[a]ll, without asking/[n]o: y\n") == 1
    assert result.err.count("[y]es/[n]o/[a]ll/[q]uit") == 3
    assert result.err.count("[y]es/[n]o/[a]ll/[q]uit: y\n") == 1
    assert result.err.count("[y]es/[n]o/[a]ll/[q]uit: n\n") == 1
    assert "end of input" in result.err


def test_no_to_the_plan_moves_nothing(tmp_path: Path) -> None:
    """Answering no to the plan's summary declines every move without asking about each."""
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1"]})
    result = run_cli(["apply", str(host_map), "-f", "json", *_sim_args(tmp_path, scenario())], stdin="n\n")
    assert result.code == 1
    assert {m["outcome"] for m in result.json()["moves"]} <= {"declined", "not_started"}
    assert "[y]es/[n]o/[a]ll/[q]uit" not in result.err


def test_all_to_the_plan_migrates_without_asking_again(tmp_path: Path) -> None:
    """Answering all to the plan's summary starts every move without a question per move."""
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1"]})
    result = run_cli(["apply", str(host_map), "-f", "json", *_sim_args(tmp_path, scenario())], stdin="a\n")
    assert result.code == 0, result.err
    assert {m["outcome"] for m in result.json()["moves"]} == {"migrated"}
    assert "[y]es/[n]o/[a]ll/[q]uit" not in result.err


def test_prompt_all_answers_the_rest(tmp_path: Path) -> None:
    """Answering all migrates this one and every later one without asking again."""
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1", "cache-0"]})
    result = run_cli(["apply", str(host_map), "--parallel", "1", "-f", "json", *_sim_args(tmp_path, scenario())],
                     stdin="y\na\n")
    assert result.code == 0, result.err
    assert result.err.count("[y]es/[n]o/[a]ll/[q]uit") == 1


def test_failed_precheck_reports_nova_reason(tmp_path: Path) -> None:
    """A migration nova's scheduler refuses ends failed with nova's reason, and the exit code is 1."""
    data = scenario(faults=[{"kind": "precheck_fail", "server": "web-0"}])
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1"]})
    result = run_cli(["apply", str(host_map), "--yes", "-f", "json", *_sim_args(tmp_path, data)])
    assert result.code == 1
    moves = {m["server"]: m for m in result.json()["moves"]}
    assert moves["web-0"]["outcome"] == "failed"
    assert "No valid host" in moves["web-0"]["reason"]
    assert moves["web-1"]["outcome"] == "migrated"


def test_failed_precheck_below_2_34_is_reported_too(tmp_path: Path) -> None:
    """Below microversion 2.34 nova refuses synchronously with 400, and the report carries its reason."""
    data = scenario(faults=[{"kind": "precheck_fail", "server": "web-0"}], api={"max_microversion": "2.33"})
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    result = run_cli(["apply", str(host_map), "--yes", "-f", "json", *_sim_args(tmp_path, data)])
    assert result.code == 1
    move = result.json()["moves"][0]
    assert move["outcome"] == "failed"
    assert "400" in move["reason"]
    assert "No valid host" in move["reason"]


def test_timeout_aborts_and_confirms_source(tmp_path: Path) -> None:
    """A migration that outlives --timeout is aborted and the server confirmed back on its source."""
    data = scenario(faults=[{"kind": "never_converge", "server": "db-0"}])
    host_map = write_json(tmp_path / "map.json", {"compute004": ["db-0"]})
    result = run_cli(["apply", str(host_map), "--yes", "--timeout", "30", "-f", "json", *_sim_args(tmp_path, data)])
    assert result.code == 1
    move = result.json()["moves"][0]
    assert move["outcome"] == "timed_out"
    assert "confirmed on its source" in move["reason"]
    assert 30 <= move["seconds"] < 60


def test_timeout_leave_reports_it_running(tmp_path: Path, env_cloud: Callable[..., Running]) -> None:
    """With --on-timeout leave, a timed-out migration is reported, not aborted, and still running in nova."""
    running = env_cloud(scenario(migration={"setup_s": 0.2}, faults=[{"kind": "never_converge", "server": "db-0"}]),
                        virtual=False)
    host_map = write_json(tmp_path / "map.json", {"compute004": ["db-0"]})
    result = run_cli(["apply", str(host_map), "--yes", "--timeout", "2", "--on-timeout", "leave", "-f", "json",
                      "--log-file", str(tmp_path / "log")])
    assert result.code == 1, result.err
    move = result.json()["moves"][0]
    assert move["outcome"] == "timed_out"
    assert "left running" in move["reason"]
    assert not [r for r in running.sim.state.requests if r[0] == "DELETE" and "/migrations/" in r[1]]
    (db,) = [s for s in running.cloud.inventory().servers if s.name == "db-0"]
    assert (db.status, db.host) == ("MIGRATING", "compute002")
    assert [m.status for m in running.sim.state.migrations] == ["running"]


def test_quick_migration_is_noticed_at_the_next_poll(tmp_path: Path) -> None:
    """A migration that finishes within one poll interval is recognised at the next poll, not at the timeout."""
    host_map = write_json(tmp_path / "map.json", {"compute002": ["web-0"]})
    result = run_cli(["apply", str(host_map), "--yes", "-f", "json", *_sim_args(tmp_path, scenario())])
    assert result.code == 0, result.err
    move = result.json()["moves"][0]
    assert move["outcome"] == "migrated"
    assert move["seconds"] <= 2.5


def test_seed_command_moves_one_at_a_time(tmp_path: Path) -> None:
    """openstack-live-migration --host_map --y moves the servers sequentially and exits 0."""
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1"], "compute003": ["db-0"]})
    result = run_cli(["--host_map", str(host_map), "--y", "--timeout", "500", *_sim_args(tmp_path, scenario())],
                     seed=True)
    assert result.code == 0, result.err
    assert "migrated" in result.out
    log = (tmp_path / "hostmap.log").read_text()
    starts = [line for line in log.splitlines() if "started:" in line]
    assert len(starts) == 3
    # One at a time: each migration ends before the next one starts.
    events = [("started" if "started:" in line else "migrated") for line in log.splitlines()
              if "started:" in line or "migrated:" in line]
    assert events == ["started", "migrated"] * 3


def test_seed_command_prompts_and_quits_on_end_of_input(tmp_path: Path) -> None:
    """The seed command prompts before each migration; end of input means quit, and the exit code is 1."""
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0"]})
    result = run_cli(["--host_map", str(host_map), *_sim_args(tmp_path, scenario())], seed=True)
    assert result.code == 1
    assert "Migrate web-0" in result.err


@pytest.mark.parametrize(
    "argv",
    [
        ["apply"],
        ["apply", "m.json", "--bogus"],
        ["apply", "m.json", "--timeout", "-5"],
        ["apply", "m.json", "--on-timeout", "maybe"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    """Command-line misuse is a usage error with exit code 2, never a traceback."""
    result = run_cli(argv)
    assert result.code == 2
    assert "Traceback" not in result.err


def test_directory_as_map_exits_2(tmp_path: Path) -> None:
    """A directory given as the map is refused with exit code 2."""
    result = run_cli(["plan", str(tmp_path), *_sim_args(tmp_path, scenario())])
    assert result.code == 2
    assert "directory" in result.err


def test_demo_map_plans_cleanly_on_the_demo_scenario(tmp_path: Path) -> None:
    """The README's example map is valid on the bundled demo scenario and moves several servers."""
    result = run_cli(["plan", str(REPO / "examples" / "host_map.json"), "-f", "json", "--sim",
                      "--log-file", str(tmp_path / "log")])
    assert result.code == 0, result.err
    assert len(result.json()["moves"]) >= 4
    assert demo_scenario_path().exists()


def test_queued_migration_is_aborted_once_nova_allows(tmp_path: Path) -> None:
    """Below 2.65 nova refuses to abort a queued migration; hostmap aborts it as soon as it runs."""
    data = scenario(faults=[{"kind": "never_converge", "server": "web-0"}], api={"max_microversion": "2.60"})
    for server in data["servers"][:2]:  # web-0 first (same size, name order); web-1 long enough to be caught running
        server["flavor"] = "m1.large"
    host_map = write_json(tmp_path / "map.json", {"compute004": ["web-0", "web-1"]})
    result = run_cli(["apply", str(host_map), "--yes", "--timeout", "20", "--max-per-host", "2", "-f", "json",
                      *_sim_args(tmp_path, data)])
    assert result.code == 1
    moves = {m["server"]: m for m in result.json()["moves"]}
    assert moves["web-0"]["outcome"] == "timed_out"
    assert moves["web-1"]["outcome"] == "timed_out"
    assert "refused the abort while" in moves["web-1"]["reason"]
    assert "confirmed on its source" in moves["web-1"]["reason"]


def test_prompter_watches_while_waiting_for_an_answer(tmp_path: Path) -> None:
    """The prompt reads standard input unbuffered and calls its watcher every few seconds until a line comes; lines
    typed ahead are answers to the next questions."""
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "r") as stdin, open(os.devnull, "w") as stderr:
        prompter = Prompter(Inventory((), ()), stdin, stderr, watch_every_s=0.01)
        step = Step(0, Move("id-0", "vm-0", "h1", "h2", Resources()))
        calls: list[int] = []

        def meanwhile() -> None:
            calls.append(1)
            if len(calls) == 3:
                os.write(write_end, b"y\nn\n")

        assert prompter(step, meanwhile) == "yes"
        assert len(calls) == 3
        assert prompter(step, meanwhile) == "no"  # typed ahead: no more waiting
        assert len(calls) == 3
        os.close(write_end)
        assert prompter(step, meanwhile) == "quit"  # end of input


def test_report_on_a_narrow_terminal_never_cuts_a_name() -> None:
    """On an 80-column terminal, server names that differ only at their end wrap in the report, never cut short."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    names = ["BMASenm01-postgres-0", "BMASenm01-haproxy-0"]
    reason = "migration failed; nova records no reason: nova-compute's log on compute001 has it"
    result = RunResult(tuple(MoveResult(str(i), n, "compute001", "compute002", "failed", reason, 3.0)
                             for i, n in enumerate(names)))
    out = Terminal()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "80")
        print_run(result, out, "table")
    cells = "".join(line.split("│")[1].strip() for line in out.getvalue().splitlines() if line.startswith("│"))
    for name in names:
        assert name in cells
    assert "…" not in out.getvalue()


def test_verdicts_wait_while_a_question_is_on_screen() -> None:
    """A migration that ends while the operator reads a question has its verdict shown after the answer, not
    printed into the question."""
    out = io.StringIO()
    display = LiveDisplay(out)
    step = Step(0, Move("id-0", "vm-0", "h1", "h2", Resources()))
    display.planned(Plan((step,)))
    display.started(step, Submission("id-0", "h2", "req-1", "2.96"))
    with display.paused():
        before = out.getvalue()
        display.failed(step, MoveResult("id-0", "vm-0", "h1", "h2", "failed", "migration failed", 1.0))
        assert out.getvalue() == before
    assert "failed vm-0 h1 -> h2: migration failed" in out.getvalue()
    display.done(RunResult(()))
