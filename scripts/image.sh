#!/usr/bin/env bash
# `just image`: builds gatehouse:local from docker/Dockerfile.
#   BASE_IMAGE   the base of both stages (default node:20-bookworm-slim). When the engine has no
#                such image and cannot pull it (no Docker Hub access), a local stand-in is made
#                from Debian and this machine's Node.js 20 (scripts/docker/local-base.sh).
#   IMAGE_TAG    default gatehouse:local
#   DOCKER       the docker client (default: docker; DOCKER_HOST picks the engine as usual)
# The in-image npm ci uses the registry this machine's npm is configured with.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
tag=${IMAGE_TAG:-gatehouse:local}
default_base=node:20-bookworm-slim
base=${BASE_IMAGE:-$default_base}

if ! $DOCKER image inspect "$base" >/dev/null 2>&1; then
  echo "image: pulling $base" >&2
  mkdir -p .tmp
  err=$(mktemp .tmp/image-pull.XXXXXX)
  if ! timeout 120 $DOCKER pull -q "$base" >/dev/null 2>"$err"; then
    reason=$(tail -n1 "$err" 2>/dev/null || true)
    rm -f "$err"
    if [ -n "${BASE_IMAGE:-}" ]; then
      echo "image: cannot pull BASE_IMAGE=$base: $reason" >&2
      exit 1
    fi
    echo "image: cannot pull $base ($reason); making a local base instead" >&2
    base=$(DOCKER="$DOCKER" bash scripts/docker/local-base.sh)
  fi
  rm -f "$err"
fi

registry=$(npm config get registry)
# BuildKit: it creates no container for metadata steps (with the vfs storage driver every
# container is a full copy of the filesystem, so the legacy builder is several times slower).
# Clients before 23 have it built in; later ones through the buildx plugin. Without either,
# the legacy builder. No `# syntax=` line in the Dockerfile, so BuildKit pulls no frontend.
client_major=$($DOCKER --version | sed -n 's/^Docker version \([0-9]*\)\..*/\1/p')
if [ "${client_major:-0}" -lt 23 ] || $DOCKER buildx version >/dev/null 2>&1; then
  builder=(env DOCKER_BUILDKIT=1 $DOCKER build --progress plain)
else
  echo "image: this docker client has no BuildKit (buildx plugin missing): using the legacy builder" >&2
  builder=(env DOCKER_BUILDKIT=0 $DOCKER build)
fi
echo "image: building $tag on $base (npm registry $registry)" >&2
# Host networking, so RUN steps reach the npm registry the way this machine does.
"${builder[@]}" \
  --network host \
  -f docker/Dockerfile \
  --build-arg "BASE_IMAGE=$base" \
  --build-arg "NPM_REGISTRY=$registry" \
  -t "$tag" \
  .
