#!/usr/bin/env bash
# Install everything Corral needs on a fresh Debian machine: a virtualenv with
# the project and its dev tools; with CORRAL_SETUP_TESTS=1 (`make test`) also what
# only the tests use: PostgreSQL's server binaries, HAProxy, Chromium, axios.
# Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
tests="${CORRAL_SETUP_TESTS:-0}"
if [ "$tests" = 1 ] && ! command -v initdb >/dev/null 2>&1 \
    && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
# HAProxy: the multi-host test runs deploy/haproxy.cfg in front of three replicas.
if [ "$tests" = 1 ] && [ ! -x /usr/sbin/haproxy ] && ! command -v haproxy >/dev/null 2>&1; then
  need_apt+=(haproxy)
fi
# curl: run.sh waits for the server with it, and the tests run CMD Executor's walkthroughs.
if ! command -v curl >/dev/null 2>&1; then
  need_apt+=(curl)
fi
# jq: the walkthrough in docs/index.md picks fields with it (the docs tests run it).
if ! command -v jq >/dev/null 2>&1; then
  need_apt+=(jq)
fi
# Debian's Chromium drives the dashboard's browser tests (Playwright, no browser
# download); only `make test` asks for it (CORRAL_SETUP_TESTS=1), not `make run`.
if [ "$tests" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  need_apt+=(chromium)
fi
# bubblewrap: `corral worker --isolation sandbox` (the default, auto, where it works)
# runs each job in its namespaces; setpriv (util-linux, always there) switches uids.
if ! command -v bwrap >/dev/null 2>&1; then
  need_apt+=(bubblewrap)
fi
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=""; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.corral-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

# The TaskDriver document's JavaScript client needs axios (tests only; Corral
# itself needs no Node). Skipped where there is no npm: that test then says why.
if [ "$tests" = 1 ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d tests/js/node_modules/axios ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
    npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
  fi
fi
