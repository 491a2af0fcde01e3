#!/usr/bin/env node
// Builds the gateway and the CLI into dist/ without ever leaving a running gateway without its
// build: the compiler writes into .tmp/dist-next/, which then replaces dist/ by two renames on
// the same file system (a running process resolves its files by path, and finds the new ones).
// `--if-changed` builds only when a source, the lock file or a tsconfig changed since the build
// in dist/ (recorded in dist/.build-inputs): what `just verify-oci` runs against a live demo.
'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
// Per process: two builds at once (a test beside the demo) never write into one directory.
const next = path.join(root, '.tmp', `dist-next-${process.pid}`);
const stampName = '.build-inputs';

/** A fingerprint of every build input (tests excluded): path, size and modification time. */
function inputs() {
  const hash = crypto.createHash('sha256');
  const walk = (dir) => {
    for (const e of fs
      .readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        // Not built: dependencies and the test harness (tsconfig.build.json excludes them).
        if (e.name !== 'node_modules' && p !== path.join(root, 'libs', 'testing')) walk(p);
      } else if (
        (e.name.endsWith('.ts') && !/\.(int-)?spec\.ts$/.test(e.name)) ||
        e.name.endsWith('.json') ||
        path.basename(dir) === 'assets'
      ) {
        const st = fs.statSync(p);
        hash.update(`${path.relative(root, p)}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
  };
  walk(path.join(root, 'apps'));
  walk(path.join(root, 'libs'));
  for (const f of ['package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
    const st = fs.statSync(path.join(root, f));
    hash.update(`${f}\0${st.size}\0${st.mtimeMs}\n`);
  }
  return hash.digest('hex');
}

const fingerprint = inputs();
if (process.argv.includes('--if-changed')) {
  let built = null;
  try {
    built = fs.readFileSync(path.join(dist, stampName), 'utf8').trim();
  } catch {
    // No build yet.
  }
  if (built === fingerprint) {
    console.log('build: dist/ is up to date with the sources (not rebuilt)');
    process.exit(0);
  }
}

fs.rmSync(next, { recursive: true, force: true });
fs.mkdirSync(path.dirname(next), { recursive: true });
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const rel = path.relative(root, next);
execFileSync(bin('tsc'), ['-p', 'tsconfig.build.json', '--outDir', rel], { cwd: root, stdio: 'inherit' });
execFileSync(bin('tsc-alias'), ['-p', 'tsconfig.build.json', '--outDir', rel], {
  cwd: root,
  stdio: 'inherit',
});
// Files the compiler does not emit: the console's script and stylesheet, served from dist/.
const assets = path.join('apps', 'gateway', 'src', 'console', 'assets');
fs.cpSync(path.join(root, assets), path.join(next, assets), { recursive: true });
fs.writeFileSync(path.join(next, stampName), `${fingerprint}\n`);

// Another build may swap its dist/ in between the two renames: then move that one aside too.
const olds = [];
for (let attempt = 0; ; attempt++) {
  const old = path.join(root, '.tmp', `dist-old-${process.pid}-${attempt}`);
  try {
    fs.renameSync(dist, old);
    olds.push(old);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  try {
    fs.renameSync(next, dist);
    break;
  } catch (e) {
    if (!['ENOTEMPTY', 'EEXIST'].includes(e.code) || attempt >= 5) throw e;
  }
}
for (const old of olds) fs.rmSync(old, { recursive: true, force: true });
console.log('build: dist/ replaced by the new build');
