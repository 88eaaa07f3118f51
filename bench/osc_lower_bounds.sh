#!/usr/bin/env bash
# The openstack plugin on the lowest versions pyproject.toml declares for it: installs them in a scratch venv
# (from PyPI, with the rest of hostmap's test dependencies) and runs tests/test_osc_plugin.py there.
# Usage: bash bench/osc_lower_bounds.sh [VENV_DIR]   (default: a new temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-$(mktemp -d)/venv}"
lows="$(mktemp)"
# The `>=` bounds of the osc extra, pinned exactly.
python3 - "$lows" <<'PY'
import re, sys, tomllib
extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["osc"]
with open(sys.argv[1], "w") as out:
    for req in extra:
        name, low = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", req).groups()
        out.write(f"{name}=={low}\n")
PY
cat "$lows"
python3 -m venv "$venv"
"$venv/bin/pip" install -q -c "$lows" -e '.[test]'
"$venv/bin/pip" list 2>/dev/null | grep -i -E '^(cliff|osc-lib|python-openstackclient|openstacksdk|keystoneauth1) '
PATH="$venv/bin:$PATH" timeout 900 "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_osc_plugin.py
