#!/usr/bin/env bash
# Start a working Corral on this machine: the dispatcher on SQLite and one local
# worker, both in the foreground of this terminal; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

export CORRAL_DATA_DIR="${CORRAL_DATA_DIR:-$PWD/corral-data}"
port="${CORRAL_PORT:-3000}"
url="http://127.0.0.1:${port}"
corral=.venv/bin/corral

"$corral" server --port "$port" --data-dir "$CORRAL_DATA_DIR" &
server_pid=$!
trap 'kill -TERM "$server_pid" ${worker_pid:-} 2>/dev/null; wait' EXIT INT TERM

for _ in $(seq 1 100); do
  if curl -fsS "$url/api/v1/health" >/dev/null 2>&1 && [ -s "$CORRAL_DATA_DIR/admin-token" ]; then
    break
  fi
  sleep 0.1
done

worker_token=$("$corral" token create --role worker --name local-worker --data-dir "$CORRAL_DATA_DIR")
"$corral" worker --server "$url" --token "$worker_token" --work-dir "$CORRAL_DATA_DIR/work" &
worker_pid=$!

cat <<MSG

Corral is running at $url/ (API docs: $url/api/docs)
Admin token: $(cat "$CORRAL_DATA_DIR/admin-token")

  export CORRAL_URL=$url CORRAL_TOKEN=\$(cat $CORRAL_DATA_DIR/admin-token)
  .venv/bin/corral submit --follow -- echo hello

MSG
wait
