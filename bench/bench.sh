#!/usr/bin/env bash
# The side-by-side performance benchmark (dev-docs/performance.md): installs its load generator,
# reference server and clients when missing (Debian's wrk, nginx-light, skopeo, docker.io and
# containerd), builds the gateway and the CLI, then runs bench/run.ts. Loopback only; bounded;
# stops everything it starts.
# BENCH_SECONDS, BENCH_FIGURES, BENCH_CPU_PROF: see bench/run.ts. BENCH_SKIP_BUILD=1 reuses dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
# Figure 9 (real clients) starts its own dockerd and containerd: Debian's, named by path.
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || need+=(docker.io)
[ -x /usr/bin/containerd ] && [ -x /usr/bin/ctr ] || need+=(containerd)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing Debian packages: ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "${BENCH_SKIP_BUILD:-0}" != "1" ]; then
  echo "bench: building (npm run build)"
  npm run build >/dev/null
fi

# The driver is TypeScript run in place: it uses the test harness's registry and image builder.
node -r @swc-node/register bench/run.ts
# Several replicas behind nginx (BENCH_REPLICAS=0 skips it).
if [ "${BENCH_REPLICAS:-1}" != "0" ]; then
  BENCH_SKIP_BUILD=1 node -r @swc-node/register bench/replicas.ts
fi
# The console's analytics at 1 M audit rows and the rollup trigger's cost (BENCH_CONSOLE=0 skips it).
if [ "${BENCH_CONSOLE:-1}" != "0" ]; then
  node -r @swc-node/register bench/console-analytics.ts
fi
