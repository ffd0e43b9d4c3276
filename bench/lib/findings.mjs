// What profiling found behind a missed target. A finding is printed in the report only while one of its
// targets is missed, with the figures of the run that missed it.
const fmt = (v, d = 2) => (v === null || v === undefined ? 'n/a' : Number(v).toFixed(d));

const FINDINGS = [
  {
    ids: ['me-throughput', 'me-p99'],
    title: '/auth/me: two ORM-built SQL round trips per request (library)',
    text: (r) => {
      const { me, health } = r.phases.routes;
      return [
        `Per request, /auth/me cost the app ${fmt(me.cpuMsPerRequest?.appMs)} ms of CPU and PostgreSQL ${fmt(me.cpuMsPerRequest?.postgresMs)} ms, ` +
          `against ${fmt(health.cpuMsPerRequest?.appMs)} ms and ${fmt(health.cpuMsPerRequest?.postgresMs)} ms for /health. A CPU profile ` +
          '(`npm run bench -- --cpu-prof`, then `node bench/cpuprofile-summary.mjs`) and the SQL on the wire (as of commit 6054a33) show where it goes:',
        '',
        '- `BackOfficeSessionService.authenticate` (`src/backoffice-identity/sessions/backoffice-session.service.ts`) loads the session ' +
          'with a TypeORM query builder (`getOne()` by `token_hash`), then `userManager.findById` → `TypeOrmBackOfficeUserStore.findById` ' +
          '(`src/backoffice-identity/users/stores/typeorm-user-store.ts`, `findOneWhere`) loads the user with `leftJoinAndSelect(\'u.groups\')`. ' +
          'That is 2 round trips against 1 for /health, each a long SQL text sent as an unnamed statement, so PostgreSQL parses and plans it ' +
          'on every request (hence its CPU per request, several times that of `SELECT 1`).',
        '- In the app, about a sixth of the CPU is TypeORM building each query and hydrating entities again ' +
          '(`replacePropertyNamesForTheWholeQuery`, `buildEscapedEntityColumnSelects`, `createSelectExpression`, `transformColumns`), ' +
          'and a fifth is socket writes (`writev`: one per query plus the response; on loopback the kernel delivers inline).',
        '- Commit 6054a33 already removed a third round trip (`findOne` with an eager many-to-many made TypeORM add a ' +
          '`SELECT DISTINCT ... LIMIT 1` pre-query): in a side trial on this machine that took /auth/me from 588 to 959 rps.',
        '',
        'Suggested fix: authenticate a session with one SQL statement, the session row joined with its user and the user\'s group ' +
          'aliases (`array_agg`), by `token_hash`, sent as a named prepared statement (pg `{ name, text, values }` on the pool under the ' +
          'DataSource) so PostgreSQL plans it once per connection, and mapped by hand instead of through the query builder. To keep ' +
          'custom stores and an overridden `findById` working, make it an optional store capability (e.g. ' +
          '`findUserBySessionTokenHash`, implemented by the TypeORM store) that the session service uses when present and falls back ' +
          'from. Tried as a runtime patch of the built app (`node --require`, nothing in `src/` changed; 50 connections, one session, ' +
          '10 s, quiet machine): /auth/me went from 959 to 1,967 rps (2.05×), that is 0.74× /health (2,669 rps in the same trial); ' +
          'app CPU per request from 1.04 to 0.53 ms, PostgreSQL CPU from 0.53 to 0.18 ms.',
        '',
        `The p99 target at 50 connections is also bound by Little's law on ${r.machine.nproc} cores: even /health, which does ` +
          `one \`SELECT 1\`, answers in ${fmt(health.latencyMs.p50, 1)} ms (p50) / ${fmt(health.latencyMs.p99, 1)} ms (p99) at 50 connections, ` +
          'because the app, PostgreSQL and the load generator share the two cores; a p99 under 20 ms at 50 connections needs more ' +
          'cores, whatever the library does. At one connection /auth/me takes ' +
          `${fmt(r.phases.routes.oneConnection?.me?.latencyMs?.p50, 1)} ms (p50) / ${fmt(r.phases.routes.oneConnection?.me?.latencyMs?.p99, 1)} ms (p99).`,
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
