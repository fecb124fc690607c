#!/usr/bin/env bash
# Install Corral from its wheel on a host that only runs it (a server replica or a
# worker): a virtualenv holding the wheel and its run-time dependencies, nothing
# else, and bubblewrap for the worker's sandbox. deploy/Containerfile runs this
# script, and so does the test of the wheel (tests/acceptance/test_wheel.py).
#   usage: scripts/install.sh WHEEL [PREFIX]    (PREFIX default: /opt/corral)
# Then PREFIX/bin/corral is the command (server, worker, backup, token, ...).
set -euo pipefail

wheel="${1:?usage: scripts/install.sh WHEEL [PREFIX]}"
prefix="${2:-/opt/corral}"
[ -f "$wheel" ] || { echo "error: no wheel at $wheel (build one with make dist)" >&2; exit 2; }

# bubblewrap: `corral worker --isolation auto` sandboxes each job with it where the
# machine allows; without it the worker falls back to the user level and says so.
need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=""; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

[ -x "$prefix/bin/python" ] || python3 -m venv "$prefix"
# --upgrade: a newer wheel over an older one is an upgrade in place (and its new
# dependencies come with it); the second step replaces Corral itself even when the
# version did not change (a rebuilt wheel), leaving the dependencies alone.
"$prefix/bin/python" -m pip install --quiet --upgrade "$wheel"
"$prefix/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheel"
"$prefix/bin/corral" --version
