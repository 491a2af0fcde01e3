# Gatehouse task recipes. `npx just --list` shows them (just comes with `npm ci`).

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install what is missing (Debian packages, npm dependencies).
setup:
    bash scripts/setup.sh

# Build the gateway and the CLI into dist/.
build:
    npm run build

# Run every test suite (unit, integration with real PostgreSQL/registry/clients) and lint.
test *ARGS:
    bash scripts/test.sh {{ARGS}}

# Unit tests only (no I/O, seconds).
test-unit *ARGS:
    npx jest --selectProjects unit {{ARGS}}

# ESLint and Prettier.
lint:
    npm run lint

# Apply pending database migrations (DATABASE_URL, or the embedded PostgreSQL under DATA_DIR).
migrate: build
    bin/gatehouse migrate

# Run the built CLI with the settings in .env, e.g. `just gatehouse audit --member alice`.
gatehouse *ARGS:
    set -a; [ -f .env ] && . ./.env; set +a; bin/gatehouse {{ARGS}}

# Run the gateway from a fresh build with the settings in .env (if present), no containers.
run: build
    set -a; [ -f .env ] && . ./.env; set +a; npm start

# BASE_IMAGE, IMAGE_TAG, DOCKER change it. Without Docker Hub access it makes a local
# Debian + Node 20 base image, cached under .tmp/docker-base/ (dev-docs/operations.md).
# Build the production image gatehouse:local from docker/Dockerfile.
image:
    bash scripts/image.sh

# Gateway on 127.0.0.1:18081, PostgreSQL on 15432, in the background until `just dev-stop`.
# Uses docker compose v2, else docker-compose 1.29 (scripts/compose.sh).
# Start the development stack from compose.dev.yml.
dev:
    bash scripts/compose.sh compose.dev.yml up -d --build

# Its gatehouse-dev-* volumes stay; `just dev-stop -v` removes them too.
# Stop and remove the development stack's containers.
dev-stop *ARGS:
    bash scripts/compose.sh compose.dev.yml down {{ARGS}}

# Runs in the background (DEMO_PORT, default 8080) until `just demo-stop`.
# The demo stack: local upstream registry with sample images, gateway on embedded PostgreSQL.
demo:
    bash scripts/demo.sh

# Installs wrk and nginx-light when missing; about 5 minutes; loopback only.
# Side-by-side benchmarks against the distribution registry and nginx (dev-docs/performance.md).
bench:
    bash bench/bench.sh

# The console's analytics at 1 M audit rows (BENCH_AUDIT_ROWS changes it); part of `just bench`.
bench-console:
    node -r @swc-node/register bench/console-analytics.ts

# Stop the demo's gateway and registry (logs and data stay under .tmp/demo/).
demo-stop:
    bash scripts/demo-stop.sh

# Reads VERIFY_OCI_URL, VERIFY_OCI_USERNAME, VERIFY_OCI_PASSWORD, VERIFY_OCI_IMAGE, VERIFY_OCI_UNENTITLED_TAG, ...
# from the environment or .env; flags override (`just verify-oci --check-rate-limit`).
# See dev-docs/oci-registry-verification.md.
# Builds only when the sources changed, and never removes the build a running gateway uses.
# Verify a RUNNING stack end to end: a PASS/FAIL/SKIP table, exit 1 on any FAIL.
verify-oci *ARGS:
    node scripts/build.js --if-changed
    set -a; [ -f .env ] && . ./.env; set +a; bin/gatehouse verify-oci {{ARGS}}

# Prints errors, latency, descriptors and RSS, and writes .tmp/load-report.json;
# LOAD_CLIENTS / LOAD_SECONDS change the shape. Not part of `just test`.
# Load run: 200 clients pull the multi-arch image through the built gateway for 60 s.
load: build
    npx jest -c bench/load/jest.config.js --ci

# RSS, descriptors and event-loop delay are sampled every 10 s with their slope; SOAK_SECONDS
# (default 1800) and SOAK_CLIENTS change the shape. Not part of `just test`; bench/results/soak.json.
# Soak run: two built gateways behind nginx serve mixed pulls, logins and refusals for 30 minutes.
soak: build
    node -r @swc-node/register bench/soak.ts
