#!/usr/bin/env node
// The operator and support CLI. Runs the built CLI; build first with `npm run build`.
require('../dist/apps/cli/src/main.js');
