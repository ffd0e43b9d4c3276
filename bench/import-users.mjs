#!/usr/bin/env node
// Measures `backoffice-identity import-users` on N users (default 100,000): writes a JSON array file of users
// with the published ASP.NET Identity / Umbraco hashes, creates a fresh PostgreSQL database, runs the built CLI
// (`npm run build` first) and prints its summary (time, rate, peak RSS), then drops the database.
//
//   node bench/import-users.mjs [count] [json|jsonl|csv]     PG: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const count = Number(process.argv[2] ?? 100_000);
const format = process.argv[3] ?? 'json';
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const HASHES = [
  ['aspnet-identity', 'AQAAAAEAA9CQAAAAIESkQuj2Du8Y+kbc5lcN/W/3NiAZFEm11P27nrSN5/tId+bR1SwV8CO1Jd72r4C08OLvplNlCDc3oQZ8efcW+jQ='],
  ['aspnet-identity', 'ANXrDknc7fGPpigibZXXZFMX4aoqz44JveK6jQuwY3eH/UyPhvr5xTPeGYEckLxz9A=='],
  ['umbraco-hmacsha256', 'uB/pLEhhe1W7EtWMv/pSgg==1y8+aso9+h3AKRtJXlVYeg2TZKJUr64hccj82ZZ7Ksk='],
  ['umbraco-sha1', '6tZGfG9NTxJJYp19Fac9og==zzRggqANxhb+CbD/VabEt8cIde8='],
];
const GROUPS = [['editor'], ['writer'], ['editor', 'translator'], []];

const dir = mkdtempSync(join(tmpdir(), 'bo-import-bench-'));
const file = join(dir, `users.${format}`);
const out = createWriteStream(file);
const write = async (text) => {
  if (!out.write(text)) await once(out, 'drain');
};
const user = (i) => {
  const [passwordFormat, passwordHash] = HASHES[i % HASHES.length];
  return { email: `user${i}@bench.example`, name: `Bench User ${i}`, groups: GROUPS[i % GROUPS.length], createdAt: '2020-01-01T00:00:00Z', passwordFormat, passwordHash };
};
if (format === 'csv') await write('email,name,groups,createdAt,passwordFormat,passwordHash\n');
if (format === 'json') await write('[\n');
for (let i = 0; i < count; i++) {
  const u = user(i);
  if (format === 'csv') await write(`${u.email},"${u.name}",${u.groups.join(';')},${u.createdAt},${u.passwordFormat},${u.passwordHash}\n`);
  else await write(`${format === 'json' && i > 0 ? ',\n' : ''}${JSON.stringify(u)}${format === 'jsonl' ? '\n' : ''}`);
}
if (format === 'json') await write('\n]\n');
out.end();
await once(out, 'finish');
console.log(`${count} users, ${format}, ${(statSync(file).size / 1e6).toFixed(1)} MB`);

const name = `bo_import_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
try {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const run = spawnSync('/usr/bin/time', ['-v', process.execPath, join(ROOT, 'dist/backoffice-identity/cli/main.js'), 'import-users', file, '--database-url', url.toString()], { encoding: 'utf8' });
  console.log(run.stdout.trim());
  const peak = /Maximum resident set size \(kbytes\): (\d+)/.exec(run.stderr)?.[1];
  const wall = /Elapsed \(wall clock\) time.*: (\S+)/.exec(run.stderr)?.[1];
  console.log(`process: wall ${wall}, peak RSS ${peak ? Math.round(Number(peak) / 1024) : '?'} MB, exit ${run.status}`);
  const rows = await new pg.Client({ connectionString: url.toString() });
  await rows.connect();
  console.log(`users in the database: ${(await rows.query('SELECT count(*)::int AS n FROM backoffice_user')).rows[0].n}`);
  await rows.end();
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
