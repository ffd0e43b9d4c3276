// Summarizes a V8 .cpuprofile (from `npm run bench -- --cpu-prof`): self time by function and by file/package.
//   node bench/cpuprofile-summary.mjs <file.cpuprofile> [top=25]
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/cpuprofile-summary.mjs <file.cpuprofile> [top]\n');
  process.exit(2);
}
const top = Number(topArg) || 25;
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const dt = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...dt.values()].reduce((a, b) => a + b, 0);

const where = (cf) => {
  const url = cf.url || '';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.includes('/dist/backoffice-identity/')) return `lib:${url.split('/dist/backoffice-identity/')[1]}`;
  if (url.includes('/dist/demo/')) return `demo:${url.split('/dist/demo/')[1]}`;
  if (url.startsWith('node:')) return url;
  return url ? url.split('/').slice(-2).join('/') : `(${cf.functionName || 'native'})`;
};

const selfByFn = new Map();
const selfByWhere = new Map();
for (const [id, us] of dt) {
  const cf = byId.get(id).callFrame;
  const fn = `${cf.functionName || '(anonymous)'} ${where(cf)}:${cf.lineNumber + 1}`;
  selfByFn.set(fn, (selfByFn.get(fn) ?? 0) + us);
  selfByWhere.set(where(cf), (selfByWhere.get(where(cf)) ?? 0) + us);
}

// Inclusive time of library frames: a sample counts once for each distinct lib function on its stack.
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map();
for (const [id, us] of dt) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const cf = byId.get(cur).callFrame;
    if (!cf.url.includes('/dist/backoffice-identity/')) continue;
    const fn = `${cf.functionName || '(anonymous)'} ${where(cf)}:${cf.lineNumber + 1}`;
    if (seen.has(fn)) continue;
    seen.add(fn);
    inclusive.set(fn, (inclusive.get(fn) ?? 0) + us);
  }
}

const show = (title, map) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  }
};
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
show('self time by file / package', selfByWhere);
show('self time by function', selfByFn);
show('inclusive time of backoffice-identity functions', inclusive);
