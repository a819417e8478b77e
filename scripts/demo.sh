#!/usr/bin/env bash
# The main job: install and build what is needed, start a local cluster (one scheduler and two
# node agents on loopback) and show its nodes. The cluster keeps running afterwards so you can
# use the CLI against it; `scripts/demo.sh --stop` stops it.
#
# State (tokens, database, logs) goes to .breakeven-demo/ (or $BREAKEVEN_DEMO_DIR).
# Ports: 7070 for frames and 7080 for HTTP (or $BREAKEVEN_DEMO_PORT and that + 10).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=${BREAKEVEN_DEMO_DIR:-$root/.breakeven-demo}
port=${BREAKEVEN_DEMO_PORT:-7070}
http_port=$((port + 10))
bin=$root/build

stop_cluster() {
  if [ -f "$state/pids" ]; then
    # shellcheck disable=SC2046
    kill $(cat "$state/pids") 2>/dev/null || true
    rm -f "$state/pids"
  fi
}

if [ "${1:-}" = "--stop" ]; then
  stop_cluster
  echo "demo cluster stopped (state kept in $state)"
  exit 0
fi

scripts/setup.sh
mkdir -p "$state"
stop_cluster
if [ ! -s "$state/cluster.token" ]; then
  (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$state/cluster.token")
fi

export BREAKEVEN_SCHEDULER=127.0.0.1:$port
export BREAKEVEN_TOKEN_FILE=$state/cluster.token

setsid "$bin/scheduler/breakeven-scheduler" --listen "$BREAKEVEN_SCHEDULER" \
  --http "127.0.0.1:$http_port" --db "$state/breakeven.db" --token-file "$BREAKEVEN_TOKEN_FILE" \
  >>"$state/scheduler.log" 2>&1 < /dev/null &
echo $! >> "$state/pids"
for name in node-a node-b; do
  setsid "$bin/node/breakeven-node" --scheduler "$BREAKEVEN_SCHEDULER" \
    --token-file "$BREAKEVEN_TOKEN_FILE" --name "$name" \
    >>"$state/$name.log" 2>&1 < /dev/null &
  echo $! >> "$state/pids"
done

# Wait (at most 15 s) for both agents to register and show UP.
for _ in $(seq 150); do
  if "$bin/cli/breakeven" status -o json 2>/dev/null | grep -q '"UP": 2'; then break; fi
  sleep 0.1
done

echo
"$bin/cli/breakeven" nodes
echo
"$bin/cli/breakeven" status
cat <<MSG

The cluster is running (logs and database in $state). Try:
  export BREAKEVEN_SCHEDULER=$BREAKEVEN_SCHEDULER BREAKEVEN_TOKEN_FILE=$BREAKEVEN_TOKEN_FILE
  build/cli/breakeven nodes -o json
  build/cli/breakeven drain node-b --reason "maintenance"; build/cli/breakeven resume node-b
  build/cli/breakeven events
  sqlite3 $state/breakeven.db 'SELECT name, state, restarts FROM node_status'
  scripts/demo.sh --stop
MSG
