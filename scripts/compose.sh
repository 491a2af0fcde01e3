#!/usr/bin/env bash
# Runs compose on one of the repository's compose files: `bash scripts/compose.sh FILE ARGS...`.
# Compose v2 (`docker compose`) runs the file as it is. Without it, Debian's docker-compose 1.29
# runs it with one adaptation: v1 does not know the top-level `name:` key (a compose v2
# feature), so a copy without that line goes to .tmp/compose/ and the name is passed as
# --project-name instead, with the repository as the project directory (build contexts, .env).
#   COMPOSE              the compose command (default: docker compose, else docker-compose)
#   COMPOSE_PROJECT_DIR  where .env and relative paths are read (default: the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
file=$(realpath "$1")
shift
project_dir=$(realpath "${COMPOSE_PROJECT_DIR:-.}")
compose=${COMPOSE:-}
if [ -z "$compose" ]; then
  if docker compose version >/dev/null 2>&1; then
    compose="docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    compose=docker-compose
  else
    echo "compose: neither 'docker compose' (v2) nor docker-compose (v1) is installed" >&2
    exit 1
  fi
fi
if [ "$compose" != docker-compose ]; then
  exec $compose --project-directory "$project_dir" -f "$file" "$@"
fi
name=$(sed -n 's/^name:[[:space:]]*//p' "$file" | tr -d "\"'")
mkdir -p .tmp/compose
copy=.tmp/compose/$(basename "$file")
sed '/^name:/d' "$file" >"$copy"
exec docker-compose --project-directory "$project_dir" ${name:+--project-name "$name"} -f "$copy" "$@"
