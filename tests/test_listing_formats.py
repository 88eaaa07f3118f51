"""`hostmap ... -f yaml|csv|value` and `-c COLUMN`: the listings the openstack client's formats would show."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import run_cli

REPO = Path(__file__).resolve().parent.parent


def test_plan_listing_in_yaml_csv_value_and_a_bad_column(tmp_path: Path) -> None:
    """plan's rows keep their JSON keys in YAML, csv and value; an unknown -c column is a usage error."""
    common = [str(REPO / "examples" / "host_map.json"), "--sim", "--log-file", str(tmp_path / "log")]
    document = yaml.safe_load(run_cli(["plan", *common, "-f", "yaml"]).out)
    assert set(document) >= {"moves", "in_place", "estimated_s"}
    shown = run_cli(["plan", *common, "-f", "csv", "-c", "server", "-c", "target"])
    assert shown.out.splitlines()[0] == '"server","target"'
    value = run_cli(["plan", *common, "-f", "value", "-c", "step"])
    assert value.out.split() == [str(m["step"]) for m in document["moves"]]
    bad = run_cli(["plan", *common, "-c", "nope"])
    assert bad.code == 2
    assert "no such column" in bad.err
