#!/usr/bin/env bash
# Installs what Gatehouse needs on a Debian machine, idempotently:
#   - Debian packages the tests and the demo use: docker-registry (the CNCF distribution
#     registry, our test upstream), skopeo and podman (real clients); docker.io and containerd
#     (the real-engine tier starts its own dockerd and containerd), docker-compose (compose
#     files brought up for real) and debootstrap (`just image` without Docker Hub access);
#     curl and wget (the download tests); redis-server and nginx (several replicas: shared
#     counters, the balancer in front); chromium (the console's browser tier); nats-server (the
#     events' JetStream sink);
#   - the npm dependencies, exactly as package-lock.json pins them;
#   - for the signature tests, Debian trixie's sigstore-enabled skopeo and cosign unpacked into .tmp/
#     (scripts/sigstore-tools.sh: downloaded once, about 10 s, nothing installed system-wide).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v podman >/dev/null 2>&1 || need+=(podman)
# Debian's paths, named exactly: another docker client earlier on PATH does not count.
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || need+=(docker.io)
[ -x /usr/bin/containerd ] && [ -x /usr/bin/ctr ] || need+=(containerd)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
# curl and wget: the download tests drive them (resume with curl -C - and wget -c).
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v wget >/dev/null 2>&1 || need+=(wget)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/sbin/nginx ] || need+=(nginx)
# chromium: the console's browser tier drives Debian's Chromium with playwright-core.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]} (apt-get, about a minute)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  # Not quiet: apt's "Setting up <package>" lines are the progress scripts/demo.sh shows.
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y "${need[@]}"
else
  echo "setup: Debian packages: all present"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci only when the lock file is newer than the last install (npm writes its hidden lock
# file, node_modules/.package-lock.json, at the end of every install).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (npm ci, about a minute)"
  # http level: one line per package file fetched, the progress scripts/demo.sh counts.
  npm ci --no-audit --no-fund --loglevel=http
  echo "setup: npm dependencies installed"
else
  echo "setup: npm dependencies: node_modules matches package-lock.json"
fi

# Cached after the first run. When it cannot be had, the signature tests fail with the same line.
echo "setup: sigstore tools (trixie's skopeo and cosign under .tmp/; the first fetch takes about 10 s)"
if ! bash scripts/sigstore-tools.sh fetch >/dev/null; then
  echo "setup: trixie's skopeo and cosign are missing; the signature tests will fail until they can be fetched" >&2
fi
