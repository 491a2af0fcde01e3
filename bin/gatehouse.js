#!/usr/bin/env node
// The operator and support CLI. Runs the built CLI; build first with `npm run build`.
const fs = require('node:fs');
const path = require('node:path');

const main = path.join(__dirname, '..', 'dist', 'apps', 'cli', 'src', 'main.js');
if (!fs.existsSync(main)) {
  process.stderr.write(
    'gatehouse: the CLI is not built (dist/apps/cli/src/main.js is missing): run npm run build first\n',
  );
  process.exit(1);
}
require(main);
