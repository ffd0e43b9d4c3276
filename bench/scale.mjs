#!/usr/bin/env node
// `npm run bench:scale` — the stores at scale (issue #17): seeds a fresh PostgreSQL database with 100k users,
// 1M live sessions and 2M audit entries (set-based INSERT ... SELECT generate_series, about a minute), then
// measures through the demo app over HTTP, as a client would see it:
//   GET /audit?take=20, a deep page (by `before` cursor when the app has one, and by `skip=10000`, the deepest offset allowed),
//   the per-user audit (`userId`), GET /users?take=20, with a rare and a common `filter`, and /auth/me rps.
// Latency rows: one connection for --seconds (median and p90 ms); /auth/me: 50 connections.
// Prints a table and writes bench/scale-results.json (or --out=FILE). The database is dropped afterwards
// unless --keep (then its name is printed, for EXPLAIN ANALYZE by hand); --database=NAME measures such a kept,
// already seeded database again without seeding (it is not dropped).
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:scale
//   node bench/scale.mjs --users=100000 --sessions=1000000 --audit=2000000 --seconds=5 --keep
//
// Needs PostgreSQL (DATABASE_URL names any database on the server; a fresh bo_bench_<random> is created).
// Seeding 2M rows costs CPU: run it once per variant you compare, not in a loop.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { appEnvironment, buildIfStale, createBenchDatabase, ROOT, startApp } from './lib/app.mjs';
import { CookieClient, sessionCookieHeader } from './lib/http.mjs';
import { runLoad, summarize } from './lib/load.mjs';

const { values: flags } = parseArgs({
  options: {
    users: { type: 'string', default: '100000' },
    sessions: { type: 'string', default: '1000000' },
    audit: { type: 'string', default: '2000000' },
    seconds: { type: 'string', default: '5' },
    out: { type: 'string', default: join(ROOT, 'bench/scale-results.json') },
    label: { type: 'string', default: '' },
    keep: { type: 'boolean', default: false },
    database: { type: 'string' },
  },
});
const USERS = Number(flags.users);
const SESSIONS = Number(flags.sessions);
const AUDIT = Number(flags.audit);
const SECONDS = Number(flags.seconds);
const PREFIX = '/backoffice';
const log = (m) => process.stdout.write(`[scale] ${m}\n`);

const adminUrl = process.env.DATABASE_URL?.trim() || 'postgres://postgres@127.0.0.1:5432/postgres';
buildIfStale(log);
const database = flags.database ? await existingDatabase(adminUrl, flags.database) : await createBenchDatabase(adminUrl);
log(`database ${database.name} (PostgreSQL ${database.serverVersion})`);
const runDir = mkdtempSync(join(os.tmpdir(), 'bo-scale-'));
const adminEmail = 'bench-admin@example.com';
const adminPassword = `Bench-${randomBytes(12).toString('base64url')}`;
let app;
try {
  app = await startApp({
    name: 'app',
    cwd: ROOT,
    logFile: join(runDir, 'app.log'),
    env: appEnvironment({
      DATABASE_URL: database.url,
      PORT: '0',
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://backoffice.bench.invalid',
      BACKOFFICE_SECURE_COOKIES: 'on',
      BACKOFFICE_DATA_DIR: join(runDir, 'data'),
      MAIL_PICKUP_DIR: join(runDir, 'mail'),
      BACKOFFICE_ADMIN_EMAIL: adminEmail,
      BACKOFFICE_ADMIN_PASSWORD: adminPassword,
      BACKOFFICE_BCRYPT_COST: '10',
      BACKOFFICE_RATE_LIMITS: 'off',
      BACKOFFICE_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    }),
  });
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  if (flags.database) {
    // The admin of the earlier run: give it this run's password.
    const bcrypt = (await import('bcrypt')).default;
    await db.query('UPDATE backoffice_user SET password_hash = $1 WHERE email = $2', [await bcrypt.hash(adminPassword, 10), adminEmail]);
  }
  const seeded = flags.database ? await counts(db, 0) : await seed(db);
  const admin = new CookieClient(app.url);
  const login = await admin.expect(200, 'POST', `${PREFIX}/auth/login`, { username: adminEmail, password: adminPassword });
  const cookie = sessionCookieHeader(login.setCookies);
  const results = { label: flags.label, at: new Date().toISOString(), database: { server: database.serverVersion }, seeded, routes: {} };

  const probe = await admin.expect(200, 'GET', `${PREFIX}/audit?take=20`);
  const hasCursor = Object.hasOwn(probe.body, 'nextCursor');
  const deep = (
    await db.query(
      `SELECT (extract(epoch FROM created_at) * 1000000)::bigint::text AS us, id::text AS id
         FROM backoffice_audit_entry ORDER BY created_at DESC, id DESC OFFSET 1499999 LIMIT 1`,
    )
  ).rows[0];
  // The cursor format of audit-cursor.ts: base64url of "<microseconds since epoch>.<id>".
  const deepCursor = deep ? Buffer.from(`${deep.us}.${deep.id}`).toString('base64url') : null;
  const someUser = (await db.query(`SELECT id FROM backoffice_user WHERE username = 'user4242@scale.example'`)).rows[0].id;
  const routes = {
    'GET /audit?take=20': `${PREFIX}/audit?take=20`,
    ...(hasCursor && deepCursor ? { 'GET /audit deep page (before cursor, 1.5M)': `${PREFIX}/audit?take=20&before=${deepCursor}` } : {}),
    'GET /audit deep page (skip=10000, the cap)': `${PREFIX}/audit?take=20&skip=10000`,
    'GET /audit?userId (per user)': `${PREFIX}/audit?take=20&userId=${someUser}`,
    'GET /users?take=20': `${PREFIX}/users?take=20`,
    'GET /users?filter=user4242 (rare)': `${PREFIX}/users?take=20&filter=user4242`,
    'GET /users?filter=hopper (common)': `${PREFIX}/users?take=20&filter=hopper`,
  };
  for (const [name, path] of Object.entries(routes)) {
    const check = await admin.request('GET', path);
    if (check.status !== 200) throw new Error(`${name}: ${check.status} ${check.text.slice(0, 200)}`);
    await runLoad({ url: app.url, path, headers: { cookie }, connections: 1, durationS: 1 });
    const run = summarize(await runLoad({ url: app.url, path, headers: { cookie }, connections: 1, durationS: SECONDS }));
    results.routes[name] = { medianMs: run.latencyMs.p50, p90Ms: run.latencyMs.p90, rps: run.okPerSecond, requests: run.requests, total: check.body.total };
    log(`${name}: median ${run.latencyMs.p50} ms`);
  }
  const me = { path: `${PREFIX}/auth/me`, headers: { cookie } };
  await runLoad({ url: app.url, ...me, connections: 50, durationS: 2 });
  const meRun = summarize(await runLoad({ url: app.url, ...me, connections: 50, durationS: 2 * SECONDS }));
  results.routes['GET /auth/me (50 connections)'] = { medianMs: meRun.latencyMs.p50, p90Ms: meRun.latencyMs.p90, rps: meRun.okPerSecond, requests: meRun.requests };
  await db.end();

  const rows = Object.entries(results.routes).map(([name, r]) => [name, r.medianMs, r.p90Ms, r.rps, r.total ?? '']);
  const widths = [48, 10, 10, 10, 12];
  const line = (cells) => cells.map((c, i) => String(c ?? '').padEnd(widths[i])).join(' | ');
  process.stdout.write(`\n${line(['route', 'median ms', 'p90 ms', 'rps', 'total'])}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
  writeFileSync(flags.out, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${flags.out}`);
} finally {
  await app?.stop?.();
  if (flags.keep || flags.database) log(`kept database ${database.name}`);
  else await database.drop();
}

/** 100k people, 1M live sessions among them, 2M audit entries (4 per timestamp: ties for the keyset). */
async function seed(db) {
  const t0 = performance.now();
  await db.query(`
    INSERT INTO backoffice_user (username, normalized_username, email, normalized_email, name, security_stamp, created_at, last_login_at)
    SELECT 'user' || g || '@scale.example', 'USER' || g || '@SCALE.EXAMPLE', 'user' || g || '@scale.example', 'USER' || g || '@SCALE.EXAMPLE',
           (ARRAY['Ada','Grace','Alan','Linus','Barbara','Ken'])[g % 6 + 1] || ' ' ||
           (ARRAY['Lovelace','Hopper','Turing','Torvalds','Liskov','Thompson','Ritchie'])[g % 7 + 1],
           md5(g::text), now() - g * interval '1 minute', CASE WHEN g % 3 = 0 THEN now() - g * interval '1 second' END
      FROM generate_series(1, $1::int) g`, [USERS]);
  await db.query(`CREATE TEMP TABLE scale_user AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM backoffice_user WHERE username LIKE 'user%@scale.example'`);
  await db.query(`CREATE UNIQUE INDEX ON scale_user (n)`);
  log(`users: ${Math.round(performance.now() - t0)} ms`);
  const t1 = performance.now();
  await db.query(`
    INSERT INTO backoffice_session (user_id, token_hash, security_stamp, created_at, last_seen_at, expires_at, ip, user_agent)
    SELECT u.id, lpad(to_hex(g), 64, '0'), md5(u.n::text), now() - interval '1 hour', now(), now() + interval '11 hours', '203.0.113.7', 'scale-seed'
      FROM generate_series(1, $1::int) g JOIN scale_user u ON u.n = g % $2::int`, [SESSIONS, USERS]);
  log(`sessions: ${Math.round(performance.now() - t1)} ms`);
  const t2 = performance.now();
  await db.query(`
    INSERT INTO backoffice_audit_entry (event, performing_user_id, affected_user_id, ip_address, created_at, details)
    SELECT (ARRAY['backoffice.user.login.success','backoffice.user.login.failed','backoffice.user.logout.success',
                  'backoffice.user.password.changed','backoffice.user.groups.changed'])[g % 5 + 1],
           CASE WHEN g % 5 = 1 THEN NULL ELSE p.id END, a.id, '203.0.113.7',
           date_trunc('second', now()) - (g / 4) * interval '1 second', '{}'::jsonb
      FROM generate_series(1, $1::int) g
      JOIN scale_user a ON a.n = g % $2::int
      JOIN scale_user p ON p.n = (g * 7 + 3) % $2::int`, [AUDIT, USERS]);
  log(`audit: ${Math.round(performance.now() - t2)} ms`);
  const t3 = performance.now();
  await db.query('VACUUM ANALYZE backoffice_user');
  await db.query('VACUUM ANALYZE backoffice_session');
  await db.query('VACUUM ANALYZE backoffice_audit_entry');
  log(`vacuum analyze: ${Math.round(performance.now() - t3)} ms`);
  return counts(db, performance.now() - t0);
}

async function counts(db, ms) {
  const count = async (table) => Number((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);
  return {
    users: await count('backoffice_user'),
    sessions: await count('backoffice_session'),
    auditEntries: await count('backoffice_audit_entry'),
    seconds: Math.round(ms / 100) / 10,
  };
}

/** A database seeded by an earlier run with --keep. */
async function existingDatabase(adminUrl, name) {
  if (!/^bo_bench_[0-9a-f]+$/.test(name)) throw new Error(`--database must name a kept bo_bench_<hex> database, not ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  const serverVersion = (await client.query(`SELECT current_setting('server_version') AS v`)).rows[0].v;
  await client.end();
  return { name, url: url.toString(), serverVersion, drop: async () => {} };
}
