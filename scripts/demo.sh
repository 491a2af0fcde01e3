#!/usr/bin/env bash
# The one-command demo. On a fresh Debian machine with Node.js 20+:
#   1. installs what is missing (scripts/setup.sh), 2. builds the gateway and the CLI, then
#   scripts/demo/demo.ts starts a local upstream registry with sample images and the gateway in
#   front of it, creates a member with an access key and an entitlement, pulls an image through
#   the gateway with skopeo and prints the audit trail and the `docker login` command.
# The registry and the gateway keep running in the background; stop them with
# `bash scripts/demo-stop.sh`. Everything lives under .tmp/demo/ (logs, data, pid files).
# DEMO_PORT (default 8080) is the gateway's port.
set -euo pipefail
cd "$(dirname "$0")/.."

demo_dir=.tmp/demo
# 2 steps here, the rest in scripts/demo/demo.ts.
total=8

step_start=0
step() {
  local n=$1 label=$2
  printf '[%s/%s] %s ... ' "$n" "$total" "$label"
  step_start=$(date +%s%N)
}
step_ok() {
  local now
  now=$(date +%s%N)
  printf 'ok (%s s)\n' "$(awk -v ns=$((now - step_start)) 'BEGIN { printf "%.1f", ns / 1e9 }')"
}
step_failed() {
  local log=$1
  printf 'FAILED\n\n' >&2
  printf 'Log: %s (last lines):\n' "$log" >&2
  tail -n 25 "$log" >&2 || true
  exit 1
}

# A previous demo still running holds the port and the data directory: stop it, start fresh.
if [ -f "$demo_dir/gateway.pid" ] || [ -f "$demo_dir/registry.pid" ]; then
  echo "Stopping the previous demo first."
  bash scripts/demo-stop.sh
fi
rm -rf "$demo_dir"
mkdir -p "$demo_dir"

step 1 "installing prerequisites (Debian packages, npm dependencies)"
bash scripts/setup.sh >"$demo_dir/setup.log" 2>&1 || step_failed "$demo_dir/setup.log"
step_ok

step 2 "building the gateway and the CLI"
npm run build >"$demo_dir/build.log" 2>&1 || step_failed "$demo_dir/build.log"
step_ok

# The driver is TypeScript run in place (@swc-node/register): it uses the test harness's seeded
# registry, which is not part of the production build.
exec node -r @swc-node/register scripts/demo/demo.ts --first-step 3 --total "$total"
