#!/usr/bin/env bash
# Stops what scripts/demo.sh left running: the gateway (and its embedded PostgreSQL) and the
# upstream registry. Only the processes named by the pid files under .tmp/demo/ are signalled,
# and only if they still are the demo's processes (a pid may have been reused since).
set -euo pipefail
cd "$(dirname "$0")/.."
demo_dir=${DEMO_DIR:-.tmp/demo}

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# stop_pid <name> <pid> <pattern the command line must contain> <signal>
stop_pid() {
  local name=$1 pid=$2 pattern=$3 signal=$4
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$name: not running"
    return
  fi
  if [[ "$(cmdline_of "$pid")" != *"$pattern"* ]]; then
    echo "$name: pid $pid is no longer the demo's process; left alone"
    return
  fi
  printf '%s: stopping pid %s ... ' "$name" "$pid"
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || {
      echo "stopped"
      return
    }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  echo "killed (did not stop within 30 s)"
}

stop_pidfile() {
  local name=$1 file=$2 pattern=$3
  if [ ! -f "$file" ]; then
    echo "$name: no pid file ($file)"
    return
  fi
  stop_pid "$name" "$(tr -dc '0-9' <"$file")" "$pattern" TERM
  rm -f "$file"
}

# The gateway first: it stops its embedded PostgreSQL and flushes the audit queue on SIGTERM.
stop_pidfile gateway "$demo_dir/gateway.pid" "dist/apps/gateway/src/main.js"
stop_pidfile registry "$demo_dir/registry.pid" "scripts/demo/upstream-registry.ts"

# A gateway that was killed leaves its embedded PostgreSQL running; stop it (fast shutdown).
postmaster="$demo_dir/data/postgres/postmaster.pid"
if [ -f "$postmaster" ]; then
  pg_pid=$(head -n 1 "$postmaster" | tr -dc '0-9')
  if [ -n "$pg_pid" ] && kill -0 "$pg_pid" 2>/dev/null; then
    stop_pid "embedded PostgreSQL" "$pg_pid" "postgres" INT
  fi
fi
echo "Demo stopped. Logs and data are kept in $demo_dir/ (removed by the next demo run)."
