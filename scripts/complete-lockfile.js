#!/usr/bin/env node
// Records every platform-specific optional dependency in package-lock.json.
//
// Native tools (swc, just) ship one optional package per platform. When the npm registry a
// machine uses serves only some platforms, `npm install` silently leaves the others out of the
// lock file, and `npm ci` then refuses the lock as out of sync. This adds the missing entries
// with the os/cpu their names declare, so `npm ci` skips them on other platforms without
// fetching them. Run it after `npm install` changes the lock file.
const fs = require('node:fs');
const path = require('node:path');

const lockPath = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
const packages = lock.packages;

const OS = [['darwin', 'darwin'], ['win32', 'win32'], ['windows', 'win32'], ['linux', 'linux'], ['freebsd', 'freebsd'], ['android', 'android']];
const CPU = [['arm64', 'arm64'], ['aarch64', 'arm64'], ['x64', 'x64'], ['ia32', 'ia32'], ['armv7', 'arm'], ['arm-gnueabihf', 'arm'], ['arm', 'arm'], ['ppc64', 'ppc64'], ['s390x', 's390x'], ['riscv64', 'riscv64'], ['loong64', 'loong64']];

function platformOf(name) {
  const os = OS.find(([k]) => name.includes(`-${k}`));
  const cpu = CPU.find(([k]) => name.includes(`-${k}`));
  return os && cpu ? { os: [os[1]], cpu: [cpu[1]] } : null;
}

let added = 0;
for (const [key, entry] of Object.entries(packages)) {
  if (!key.startsWith('node_modules/') || !entry.optionalDependencies) continue;
  for (const [dep, version] of Object.entries(entry.optionalDependencies)) {
    const hoisted = `node_modules/${dep}`;
    const nested = `${key}/node_modules/${dep}`;
    if (packages[hoisted] || packages[nested]) continue;
    const platform = platformOf(dep);
    if (!platform) continue;
    packages[hoisted] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      ...platform,
    };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)));
lock.packages = sorted;
fs.writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
console.log(`complete-lockfile: added ${added} platform entr${added === 1 ? 'y' : 'ies'}`);
