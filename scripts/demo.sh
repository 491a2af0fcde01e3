#!/usr/bin/env bash
# The one-command demo. On a fresh Debian machine with Node.js 20+:
#   1. installs what is missing (scripts/setup.sh), 2. builds the gateway and the CLI, then
#   scripts/demo/demo.ts starts the upstream the tests use (the Forgejo front over Debian's
#   docker-registry: a signed multi-arch image with an SBOM, releases, a generic package) and the
#   gateway in front of it, grants a member one target of each kind, pulls, downloads (whole and
#   resumed), verifies the signature, shows one refusal of each kind with `gatehouse explain`.
# The upstream and the gateway keep running in the background; stop them with
# `bash scripts/demo-stop.sh`. Everything lives under .tmp/demo/ (logs, data, pid files).
# DEMO_PORT (default 8080) is the gateway's port; DEMO_REGISTRY_PORT and DEMO_DATABASE_PORT pin
# the upstream's and the embedded PostgreSQL's (default: free ports, printed).
set -euo pipefail
cd "$(dirname "$0")/.."

# DEMO_DIR (default .tmp/demo) holds everything a run writes; scripts/demo-stop.sh reads it too.
demo_dir=${DEMO_DIR:-.tmp/demo}
export DEMO_DIR=$demo_dir
# 2 steps here, the rest in scripts/demo/demo.ts.
total=11

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

# What setup.sh prints for the person watching: its own phase lines, each Debian package apt sets
# up, and npm's progress (a line per 200 package files fetched); everything else goes to the log.
setup_progress() {
  local fetched=0 line
  while IFS= read -r line; do
    case "$line" in
      "setup: "*) printf '      %s\n' "${line#setup: }" ;;
      "Setting up "*) printf '      apt: %s\n' "${line%% (*}" ;;
      "npm http fetch"*)
        fetched=$((fetched + 1))
        [ $((fetched % 200)) -eq 0 ] && printf '      npm ci: %s package files fetched\n' "$fetched"
        ;;
    esac
  done
  [ "$fetched" -gt 0 ] && printf '      npm ci: %s package files fetched in all\n' "$fetched"
  return 0
}

setup_log="$demo_dir/setup.log"
printf '[1/%s] installing prerequisites (log: %s)\n' "$total" "$setup_log"
printf '      what: missing Debian packages (docker-registry, skopeo, podman, docker.io, containerd,\n'
printf '      docker-compose, debootstrap, curl, wget, redis-server, nginx), the npm dependencies\n'
printf '      (npm ci) and trixie'"'"'s skopeo and cosign into .tmp/ for signatures.\n'
printf '      usually: about 2 minutes on a fresh machine, a few seconds when all is there.\n'
step_start=$(date +%s%N)
set +e
bash scripts/setup.sh 2>&1 | tee "$setup_log" | setup_progress
setup_status=${PIPESTATUS[0]}
set -e
[ "$setup_status" -eq 0 ] || step_failed "$setup_log"
printf '      '
step_ok

step 2 "building the gateway and the CLI (log: $demo_dir/build.log)"
# Only when the sources changed since the build in dist/ (a warm run skips it).
node scripts/build.js --if-changed >"$demo_dir/build.log" 2>&1 || step_failed "$demo_dir/build.log"
step_ok

# The driver is TypeScript run in place (@swc-node/register): it uses the test harness's seeded
# registry, which is not part of the production build.
exec node -r @swc-node/register scripts/demo/demo.ts --first-step 3 --total "$total"
