// What profiling found behind a missed target. A finding is printed in the report only while one of its
// targets is missed, with the figures of the run that missed it.
const fmt = (v, d = 2) => (v === null || v === undefined ? 'n/a' : Number(v).toFixed(d));

const FINDINGS = [
  {
    ids: ['me-p99'],
    title: "/auth/me p99 at 50 connections: bound by Little's law on this machine, not by the library",
    text: (r) => {
      const { me, health } = r.phases.routes;
      return [
        `Per request, /auth/me costs the app ${fmt(me.cpuMsPerRequest?.appMs)} ms of CPU and PostgreSQL ${fmt(me.cpuMsPerRequest?.postgresMs)} ms, ` +
          `against ${fmt(health.cpuMsPerRequest?.appMs)} ms and ${fmt(health.cpuMsPerRequest?.postgresMs)} ms for /health. ` +
          `With 50 connections in a closed loop the mean latency is 50 ÷ throughput: even /health, which does one \`SELECT 1\`, ` +
          `answers in ${fmt(health.latencyMs.p50, 1)} ms (p50) / ${fmt(health.latencyMs.p99, 1)} ms (p99) at 50 connections, because the app, ` +
          `PostgreSQL and the load generator share the ${r.machine.nproc} cores. A p99 under 20 ms at 50 connections needs well over 2,500 ` +
          'rps on this machine, or more cores, whatever the library does. At one connection /auth/me takes ' +
          `${fmt(r.phases.routes.oneConnection?.me?.latencyMs?.p50, 1)} ms (p50) / ${fmt(r.phases.routes.oneConnection?.me?.latencyMs?.p99, 1)} ms (p99).`,
        '',
        'What profiling found and what was fixed on the way (CPU profiles with `npm run bench -- --cpu-prof`, then ' +
          '`node bench/cpuprofile-summary.mjs`): /auth/me first made three round trips (TypeORM `findOne` with an eager many-to-many ' +
          'adds a `SELECT DISTINCT ... LIMIT 1` pre-query), then two ORM-built ones whose long SQL PostgreSQL re-parsed and re-planned on ' +
          'every request, with about a sixth of the app\'s CPU in TypeORM query building and entity hydration. The session lookup by ' +
          'token hash and the user lookup (with its group aliases) are now one hand-mapped query each, sent as named prepared ' +
          'statements on the pool under the DataSource (`src/backoffice-identity/persistence/typeorm/prepared-query.ts`): /auth/me went from 588 to ' +
          '959 rps, then to about 2,000 rps (from 0.23× to 0.70× /health) in runs like this one.',
      ].join('\n');
    },
  },
  {
    ids: ['me-throughput', 'me-cpu', 'me-throughput-fastify', 'me-cpu-fastify'],
    title: '/auth/me against /health: what the target leaves for a session check',
    text: (r) => {
      const lines = [];
      for (const [platform, phase] of Object.entries(r.phases.platforms ?? {})) {
        if (!phase?.routes) continue;
        const { me, health } = phase.routes;
        const f = dbFloor(phase.routes);
        if (!f) continue;
        lines.push(
          `- ${platform}: /health costs ${fmt(health.cpuMsPerRequest.appMs, 3)} ms of app CPU + ${fmt(health.cpuMsPerRequest.postgresMs, 3)} ms of ` +
            `PostgreSQL; /auth/me ${fmt(me.cpuMsPerRequest.appMs, 3)} + ${fmt(me.cpuMsPerRequest.postgresMs, 3)} ms. The session lookup's PostgreSQL ` +
            `time alone, on top of /health's app CPU, is ${fmt(f.ratio)}× /health. A ratio of 1.5× then leaves ${fmt(f.leftMs * 1000, 0)} µs of app CPU ` +
            `for everything /auth/me does beyond /health (cookie, SHA-256 of the token, guard, mapping the row, deadlines, a 400-byte answer ` +
            `instead of 30 bytes); it takes ${fmt(f.usedMs * 1000, 0)} µs.`,
        );
      }
      return [
        '/health is one `SELECT 1` on a route of the host, with no guard. /auth/me reads a session, its user and the user\'s groups by ' +
          'token hash (one prepared statement) and checks them, with nothing cached so that revocation applies at once. ' +
          'A PostgreSQL backend spends about two to three times the CPU on that statement as on `SELECT 1` (pgbench, prepared, on this ' +
          'machine: 29,000–40,000 tps for `SELECT 1`, 10,000–14,000 for the lookup), so the CPU target is mostly spent before a line of the module runs:',
        '',
        ...lines,
        '',
        'Measured on 2026-12-05 on the Fastify demo, twice, alternating with the real /health: a /health handler that runs the same ' +
          'lookup statement instead of `SELECT 1` (no guard, no cookie, no mapping, a 30-byte answer) reached 0.77× and 0.84× the rps of ' +
          'the real /health, at 1.42× and 1.21× its CPU. The statement alone takes the rps target and most of the CPU target there. ' +
          'Throughput on 2 cores is CPU-bound and shared with PostgreSQL and the load generator, so the rps ratio follows the CPU ratio.',
      ].join('\n');
    },
  },
  {
    ids: ['me-throughput', 'me-cpu', 'me-throughput-fastify', 'me-cpu-fastify'],
    title: "Where /auth/me's CPU goes",
    // Measured by hand (not by this run): figures of 2026-12-07, see the text.
    text: () =>
      [
        'Measured on 2026-12-07 on the Fastify demo on PostgreSQL (built with `npm run build`, the bench\'s environment): V8 CPU profiles (`--cpu-prof`) of 30,000 `GET /health` and of 30,000 ' +
          '`GET /auth/me` (the first admin\'s session cookie, 4 connections, autocannon), in two app processes, start-up frames left out, self time ' +
          'grouped and divided by the request count; PostgreSQL backend CPU from `/proc/<pid>/stat` of one `pg` client\'s backend over ' +
          '3,000 executions of each statement (800 more users in `editor` with a session each, analyzed, as the bench seeds), 9 rounds interleaved, medians. Other jobs shared the 2 cores (load average 11–20), so ' +
          'every figure is ±20 %; the profiles\' on-CPU totals (/health 140 µs, /auth/me 264 µs) are close to the quiet run\'s ' +
          'app CPU (134 and 240 µs). Per `GET /auth/me`, beyond `GET /health`:',
        '',
        '| item | µs of CPU per request | evidence |',
        '|---|---|---|',
        '| PostgreSQL: the lookup statement vs `SELECT 1` | +45–50 (backend) | named `SELECT 1` 23 µs, simple-protocol `SELECT 1` 30 µs, the lookup 70–77 µs: the session by token hash (unique index) +7–14, the user joined and both rows turned into JSON +13–20, the groups (lateral `json_agg`) about +25. The plan is index scans and nested loops (after ANALYZE; before it a hash join over a bitmap scan), prepared once per connection |',
        '| `pg` driver | +20 | extended protocol on every execution (Bind, Describe, Execute, Sync; the RowDescription parsed each time), `parseRow` 8.6 µs (`JSON.parse` of the ~1.2 kB row), pool checkout and release |',
        '| Node http/net/streams/events | +16 | the driver\'s corked `writev` of four messages instead of one `write`, a 400-byte answer instead of 30 bytes |',
        '| garbage collection | +14 | the row, session and user objects, the DTO, the promises of guard → service → store → pool |',
        '| microtasks / ticks | +11 | the awaits of that chain |',
        '| Fastify | +11 | reply, headers (the module\'s security and `no-store` headers), serialization |',
        '| Nest pipeline | +9 | the route guard (`tryActivate`, the guards consumer); no global guard, interceptor or pipe (one global exception filter; the module\'s middleware runs on /health too) |',
        '| SHA-256 of the token | +4 | `node:crypto` one-shot digest |',
        '| module code | +36 | `toBackOfficeUserDto` 5.3, `redactSecretsWhenLogged` 4.5, `deadlines` 3.8, `sessionFromRow` 2.8, `findByTokenHashWithUser` 2.8, `preparedQuery` 2.7, `groupsOf` 2.6, guard `authenticate` 2.5, request middleware 2.3, `userFromRow` 2.0, `me` 1.9, security headers 1.8, cookies 2.5, the rest under 1.5 each |',
        '| (program), other | +6 |  |',
        '| TypeORM | −10 | only /health: `dataSource.query(\'SELECT 1\')` takes a TypeORM query runner; the lookup goes to the pool directly |',
        '| the demo\'s /health handler | −3 | `withinTimeLimit` |',
        '| total app CPU | +113 | bench: +106. async_hooks (AsyncLocalStorage) showed +10 only because the /health-only process never entered a module route; in one process /health pays it too (12.7 against 8.6 µs) |',
        '',
        'Not found on the path: audit entries or events (no emitter frames in the profile), TypeORM query building or entity hydration, ' +
          'a second round trip. The last-seen write runs at most once a minute per session (an `UPDATE` costs the backend about 350 µs); ' +
          'the bench rotates 744 sessions, so those writes fall in its 1 s warm-up.',
        '',
        'On Fastify the target leaves 42 µs of app CPU beyond /health; the framework and driver items that any guarded route answering ' +
          'from a prepared statement pays (driver 20, streams 16, Fastify 11, microtasks 11, Nest 9, SHA-256 4: 71 µs) exceed it before ' +
          'a line of the module runs, and the module\'s own code is 36 µs spread over a dozen functions of 2–5 µs. Within the rules ' +
          '(no cache that delays revocation; the same headers and body) the Fastify CPU target is out of reach by design, and so is its ' +
          'rps target, which follows the CPU ratio on 2 shared cores. On Express 14 µs are missing (129 used, 115 left).',
      ].join('\n'),
  },
  {
    ids: ['rss-growth'],
    title: 'RSS after the memory run: a plateau of the heap the load made room for, not a leak',
    text: (r) => {
      const m = r.phases.memory;
      const troughs = [];
      for (let i = 1; i < m.rssSeries.length - 1; i++) {
        const [a, b, c] = [m.rssSeries[i - 1].rssMiB, m.rssSeries[i].rssMiB, m.rssSeries[i + 1].rssMiB];
        if (b < a && b <= c) troughs.push(b);
      }
      const range = troughs.length ? `${fmt(Math.min(...troughs), 0)}–${fmt(Math.max(...troughs), 0)} MiB` : 'n/a';
      return [
        `The JavaScript heap after a full GC is the same before and after ${m.requests.toLocaleString('en')} requests ` +
          `(${fmt(m.before.heapUsedMiB, 1)} → ${fmt(m.after.heapUsedMiB, 1)} MiB). RSS saws between the old generation filling up ` +
          `(peak ${fmt(m.peakRssMiB, 0)} MiB) and major GCs, and every trough during the run is at ${range}: the level it ends at. ` +
          'The growth is the memory V8 keeps committed for a heap that 50 connections in a closed loop fill. A leak would show as ' +
          'rising troughs and a rising heap after GC.' +
          (m.warmupRequests !== undefined
            ? ` Of the RSS growth after the ${m.warmupRequests.toLocaleString('en')}-request warm-up, the V8 heap committed (\`heapTotal\`) ` +
              `accounts for ${fmt(m.heapTotalGrowthMiB, 1)} MiB and memory outside the V8 heap for ${fmt(m.outsideHeapGrowthMiB, 1)} MiB.`
            : ''),
      ].join('\n');
    },
  },
  {
    ids: ['timing-locked', 'timing-unknown'],
    title: 'Refusals that differ in time (library)',
    text: (r) => {
      const t = r.phases.timing;
      return [
        `Medians: unknown user ${fmt(t.unknown.medianMs, 1)} ms, wrong password ${fmt(t.wrongPassword.medianMs, 1)} ms, locked ` +
          `${fmt(t.locked.medianMs, 1)} ms. Every refusal of a password attempt must spend the time of exactly one hash check: ` +
          '`BackOfficeSignInManager` (`src/backoffice-identity/sign-in/backoffice-sign-in-manager.ts`) checks the password of an ' +
          'unlocked user, `verifyAgainstDummyHash` for an unknown or unusable username, and `lockedOut(user, end, password)` spends ' +
          'one dummy check for an account that was locked before the attempt (since commit 6054a33; before it, a 423 came back in ' +
          'about 6 ms against about 240 ms for a 401). A difference of a whole hash check points at a branch that skips it or does ' +
          'it twice; a few percent points at database work that differs between the branches.',
      ].join('\n');
    },
  },
];

/**
 * The "database floor" of /auth/me: /health's app CPU plus the lookup's PostgreSQL CPU, over /health's total; and
 * the app CPU a 1.5× ratio leaves for the module and framework beyond /health, against what they used.
 */
export function dbFloor(routes) {
  const h = routes.health.cpuMsPerRequest;
  const m = routes.me.cpuMsPerRequest;
  if (h?.appMs == null || h.postgresMs == null || m?.appMs == null || m.postgresMs == null) return null;
  const health = h.appMs + h.postgresMs;
  return { ratio: (h.appMs + m.postgresMs) / health, leftMs: 1.5 * health - h.appMs - m.postgresMs, usedMs: m.appMs - h.appMs };
}

export function findingsFor(r) {
  const missed = new Set(r.targets.filter((t) => t.pass === false).map((t) => t.id));
  return FINDINGS.filter((f) => f.ids.some((id) => missed.has(id))).map((f) => ({ title: f.title, text: f.text(r) }));
}
