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

export function findingsFor(r) {
  const missed = new Set(r.targets.filter((t) => t.pass === false).map((t) => t.id));
  return FINDINGS.filter((f) => f.ids.some((id) => missed.has(id))).map((f) => ({ title: f.title, text: f.text(r) }));
}
