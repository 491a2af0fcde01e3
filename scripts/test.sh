#!/usr/bin/env bash
# The test command: sets up what is missing, then runs every jest project (unit; integration:
# real PostgreSQL, a real registry, real skopeo and podman; browser: the console in Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Some suites start the built gateway and CLI exactly as operators run them.
npm run --silent build
mkdir -p .tmp
set +e
npx jest --ci --json --outputFile=.tmp/jest-results.json "$@"
status=$?
set -e
if [ -f .tmp/jest-results.json ]; then
  node -e '
    const r = require("./.tmp/jest-results.json");
    console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
  '
fi
# Lint is part of the test command: a red lint is a red build.
lint=0
npm run --silent lint || lint=$?
[ $status -ne 0 ] && exit $status
exit $lint
