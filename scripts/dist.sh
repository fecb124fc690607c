#!/usr/bin/env bash
# Build Corral's wheel (`make dist`): one file, dist/corral-VERSION-py3-none-any.whl,
# that `scripts/install.sh` (or plain `pip install`) puts on a host that only runs
# Corral. Its metadata lists what Corral needs at run time; the dev tools (pytest,
# mypy, ruff, Playwright...) are the `dev` extra, never installed from the wheel.
#   DIST_DIR   where the wheel goes (default: dist)
#   PYTHON     the interpreter that builds it (default: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

out="${DIST_DIR:-dist}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
# setuptools reuses build/ between builds: a module deleted since the last one would
# still be packed. Start from nothing.
rm -rf build
mkdir -p "$out"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$out" .
rm -rf build
ls "$out"/corral-*.whl
