#!/usr/bin/env bash
# Start a working Corral on this machine: the dispatcher on SQLite and one local
# worker, both in the foreground of this terminal; Ctrl-C stops both.
set -euo pipefail
# Under a terminal, the rest runs as a job of its own (set -m makes it the terminal's
# foreground process group): Ctrl-C then reaches this script alone, not the `make`
# above it, so `make run` ends quietly with this script's status, 0 after a Ctrl-C.
if [ -t 0 ] && [ -z "${RUN_SH_FOREGROUND:-}" ]; then
  set -m
  RUN_SH_FOREGROUND=1 bash "$0" "$@" || exit $?
  exit 0
fi
cd "$(dirname "$0")/.."

export CORRAL_DATA_DIR="${CORRAL_DATA_DIR:-$PWD/corral-data}"
port="${CORRAL_PORT:-3000}"
url="http://127.0.0.1:${port}"
corral=.venv/bin/corral

# A dashboard login for this machine: admin@localhost with a random password kept
# beside the data (mode 0600); the server creates the user on a database without any.
mkdir -p "$CORRAL_DATA_DIR"
password_file="$CORRAL_DATA_DIR/admin-password"
if [ ! -s "$password_file" ]; then
  (umask 077 && .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(12))" > "$password_file")
fi
export CORRAL_ADMIN_EMAIL="${CORRAL_ADMIN_EMAIL:-admin@localhost}"
export CORRAL_ADMIN_PASSWORD="${CORRAL_ADMIN_PASSWORD:-$(cat "$password_file")}"

# Ctrl-C reaches every process of the terminal's foreground group at once; the server
# and the worker run in sessions of their own (setsid) so that only this script gets
# it and stops them in order: the worker first (it drains: running jobs finish and
# report while the server is still there), then the server. A second Ctrl-C during
# the drain is passed on to the worker, which then kills its jobs at once.
stop_in_order() {
  trap 'kill -TERM ${worker_pid:-} 2>/dev/null || true' INT TERM
  if [ -n "${worker_pid:-}" ]; then
    echo "Stopping the worker (draining; Ctrl-C again to kill its jobs), then the server..." >&2
    kill -TERM "$worker_pid" 2>/dev/null || true
    until_gone "$worker_pid"
  fi
  kill -TERM ${server_pid:-} 2>/dev/null || true
  until_gone "${server_pid:-}"
  trap - EXIT
  exit 0
}
# `wait` returns early when a trapped signal arrives: wait again until the process is gone.
until_gone() {
  while kill -0 "$1" 2>/dev/null; do
    wait "$1" 2>/dev/null || true
  done
}
trap stop_in_order INT TERM
trap 'kill -TERM ${worker_pid:-} ${server_pid:-} 2>/dev/null || true' EXIT

setsid "$corral" server --port "$port" --data-dir "$CORRAL_DATA_DIR" &
server_pid=$!

for _ in $(seq 1 100); do
  if curl -fsS "$url/api/v1/health" >/dev/null 2>&1 && [ -s "$CORRAL_DATA_DIR/admin-token" ]; then
    break
  fi
  sleep 0.1
done

# The local worker keeps its token and its name across restarts, so the dashboard shows
# one worker, not one more per `make run`: the token is kept beside the data (mode
# 0600) and reused while the server still accepts it (anything but 401: a worker token
# may not list jobs, so 403 is the answer of a good one); otherwise a new one is minted.
worker_token_file="$CORRAL_DATA_DIR/worker-token"
worker_name="${CORRAL_NAME:-local-$(uname -n)}"  # the worker's own variable for --name
worker_token_works() {
  [ -s "$worker_token_file" ] || return 1
  local code
  # The token goes to curl on stdin (a config line), never on a command line.
  code=$(printf 'header = "Authorization: Bearer %s"\n' "$(cat "$worker_token_file")" |
    curl -s -o /dev/null -w '%{http_code}' -K - "$url/api/v1/jobs?limit=1" || true)
  [ "$code" != 401 ] && [ "$code" != 000 ]
}
if ! worker_token_works; then
  (umask 077 && "$corral" token create --role worker --name local-worker \
    --data-dir "$CORRAL_DATA_DIR" > "$worker_token_file.new")
  mv "$worker_token_file.new" "$worker_token_file"
fi
setsid "$corral" worker --server "$url" --token-file "$worker_token_file" --name "$worker_name" \
  --work-dir "$CORRAL_DATA_DIR/work" &
worker_pid=$!

cat <<MSG

Corral is running at $url/ (API docs: $url/api/docs)
Dashboard: $url/  sign in as $CORRAL_ADMIN_EMAIL with password $CORRAL_ADMIN_PASSWORD
Admin token: $(cat "$CORRAL_DATA_DIR/admin-token")

  export CORRAL_URL=$url CORRAL_TOKEN=\$(cat $CORRAL_DATA_DIR/admin-token)
  .venv/bin/corral submit --follow -- echo hello

MSG
# Until Ctrl-C (stop_in_order exits 0), or until both processes have ended on their own.
until_gone "$server_pid"
until_gone "$worker_pid"
