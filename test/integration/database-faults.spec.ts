import pg from 'pg';
import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { PrivatePostgres, privatePostgresAvailable } from '../support/private-postgres.js';
import type { BackOfficeIdentityModuleOptions } from '../../src/backoffice-identity/index.js';
import { BackOfficeDatabaseTimeouts } from '../../src/backoffice-identity/persistence/typeorm/database-timeouts.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';

/** One answered request of the load. */
interface Sample {
  kind: string;
  start: number;
  end: number;
  status: number;
  code?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Drives the app with `workers` concurrent loops until `stop()`, each picking the next request kind in turn.
 * Every answer is recorded; a request that throws (connection reset, hang past the fetch timeout) is recorded
 * as status 0.
 */
function load(kinds: Array<[string, () => Promise<HttpResult>]>, workers: number) {
  const samples: Sample[] = [];
  let running = true;
  let turn = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const [kind, send] = kinds[turn++ % kinds.length];
      const start = Date.now();
      try {
        const result = await send();
        samples.push({ kind, start, end: Date.now(), status: result.status, code: result.body?.code });
      } catch {
        samples.push({ kind, start, end: Date.now(), status: 0 });
      }
      await sleep(5);
    }
  });
  return {
    samples,
    async stop() {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}

/** Measures an outage between `outageStart` and `outageEnd` (epoch ms) from the samples, and checks the rules. */
function analyse(samples: Sample[], outageStart: number, outageEnd: number) {
  const bad = samples.filter((s) => s.status === 0 || (s.status >= 500 && !(s.status === 503 && s.code === 'database_unavailable')));
  expect(bad, JSON.stringify(bad.slice(0, 5))).toEqual([]);
  const slowest = Math.max(...samples.map((s) => s.end - s.start));
  const unavailable = samples.filter((s) => s.status === 503);
  const first503 = unavailable.length ? Math.min(...unavailable.map((s) => s.end)) - outageStart : null;
  const last503 = unavailable.length ? Math.max(...unavailable.map((s) => s.end)) : outageEnd;
  const afterOutage = samples.filter((s) => s.start > last503);
  // time to recovery: from the end of the fault to the first success of a request sent after it
  const successesAfterFault = samples.filter((s) => s.start >= outageEnd && s.status < 500).map((s) => s.end);
  const recovery = (successesAfterFault.length ? Math.min(...successesAfterFault) : Infinity) - outageEnd;
  return { total: samples.length, unavailable: unavailable.length, first503, recovery, slowest, afterOutage };
}

describe.skipIf(dbKind() !== 'postgres')('Database faults (PostgreSQL; PGlite runs in-process, so it has no server to lose)', () => {
  describe('backends terminated under load, a stuck query', () => {
    let db: TestDatabase;
    let ctx: IdentityApp;
    let control: pg.Client;
    const databaseName = () => new URL(db.url).pathname.slice(1);

    beforeAll(async () => {
      db = await createTestDatabase();
      ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, lockout: { maxFailedAccessAttempts: 1000 }, database: { statementTimeoutMs: 400 } } });
      control = new pg.Client({ connectionString: process.env.TEST_PG_URL });
      await control.connect();
    });
    afterAll(async () => {
      await control?.end();
      await ctx?.close();
      await db?.drop();
    });

    it('pg_terminate_backend under load: 503 database_unavailable within a second, never a 500 or a hang, recovery without a restart, nothing half-written', async () => {
      const admin = (await ctx.userManager.createUser({ email: 'fault-admin@example.com', name: 'Admin', password: TEST_PASSWORD, groups: ['admin'] })).value!;
      const counted = (await ctx.userManager.createUser({ email: 'fault-count@example.com', name: 'Counted', password: TEST_PASSWORD })).value!;
      const adminHttp = new HttpClient(ctx.url);
      expect((await adminHttp.login(admin.email, TEST_PASSWORD)).status).toBe(200);
      let invites = 0;
      const traffic = load(
        [
          ['me', () => adminHttp.get('/auth/me')],
          ['wrong-password', () => new HttpClient(ctx.url).login(counted.email, 'a wrong password entirely')],
          ['invite', () => adminHttp.post('/users/invite', { email: `fault-invite-${++invites}@example.com`, name: 'Invitee', groups: ['editor'] })],
          ['login', () => new HttpClient(ctx.url).login(admin.email, TEST_PASSWORD)],
        ],
        6,
      );
      await sleep(600);
      const outageStart = Date.now();
      while (Date.now() - outageStart < 1500) {
        await control.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [databaseName()]);
        await sleep(50);
      }
      const outageEnd = Date.now();
      await sleep(1500);
      const samples = await traffic.stop();
      const result = analyse(samples, outageStart, outageEnd);
      console.log(
        `[fault] pg_terminate_backend: ${result.total} requests, ${result.unavailable} answered 503; first 503 after ${result.first503} ms; ` +
          `recovered ${result.recovery} ms after the last termination; slowest answer ${result.slowest} ms`,
      );
      expect(result.unavailable).toBeGreaterThan(0);
      expect(result.first503!).toBeLessThan(1000);
      expect(result.slowest).toBeLessThan(2000);
      expect(result.recovery).toBeLessThan(2000);
      expect(result.afterOutage.length).toBeGreaterThan(0);
      expect(result.afterOutage.filter((s) => s.status >= 500)).toEqual([]);

      // nothing half-written: every invited user has an invite token; failures counted at most once each
      const data = ctx.app.get(DataSource);
      const orphans = await data.query(`
        SELECT u.email FROM backoffice_user u
        WHERE u.invited_at IS NOT NULL AND u.password_hash IS NULL
          AND NOT EXISTS (SELECT 1 FROM backoffice_user_token t WHERE t.user_id = u.id AND t.purpose = 'invite')`);
      expect(orphans).toEqual([]);
      const wrong = samples.filter((s) => s.kind === 'wrong-password');
      const refused = wrong.filter((s) => s.status === 401).length;
      const failedCount = (await ctx.userManager.findById(counted.id))!.accessFailedCount;
      expect(failedCount).toBeGreaterThanOrEqual(refused);
      expect(failedCount).toBeLessThanOrEqual(refused + wrong.filter((s) => s.status === 503).length);
      expect((await adminHttp.get('/auth/me')).status).toBe(200);
    });

    it('a stuck query hits the statement timeout and answers 503, not a hung request; the default timeout is 5 s', async () => {
      const user = (await ctx.userManager.createUser({ email: 'stuck@example.com', name: 'Stuck', password: TEST_PASSWORD })).value!;
      const http = new HttpClient(ctx.url);
      expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
      const locker = new pg.Client({ connectionString: db.url });
      await locker.connect();
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE backoffice_session IN ACCESS EXCLUSIVE MODE');
        const started = Date.now();
        const stuck = await http.get('/auth/me');
        const took = Date.now() - started;
        expect(stuck.status, stuck.text).toBe(503);
        expect(stuck.body.code).toBe('database_unavailable');
        expect(stuck.headers.get('retry-after')).toBe('1');
        expect(took).toBeGreaterThanOrEqual(350);
        expect(took).toBeLessThan(1500);
        console.log(`[fault] stuck query: 503 after ${took} ms (statementTimeoutMs 400)`);
      } finally {
        await locker.query('ROLLBACK');
        await locker.end();
      }
      expect((await http.get('/auth/me')).status).toBe(200);

      const defaults = await createIdentityApp(db);
      try {
        const [{ statement_timeout }] = await defaults.app.get(DataSource).query('SHOW statement_timeout');
        expect(statement_timeout).toBe('5s');
      } finally {
        await defaults.close();
      }
    });
  });

  describe('the statement timeout reaches every connection of the pool', () => {
    let db: TestDatabase;
    let dataSource: DataSource;

    beforeAll(async () => {
      db = await createTestDatabase();
      dataSource = await new DataSource({ type: 'postgres', url: db.url, extra: { max: 4 } }).initialize();
    });
    afterAll(async () => {
      await dataSource?.destroy();
      await db?.drop();
    });

    it('a connection checked out while the module starts (a start-up check running its query) gets the timeout before its next use; idle and new ones too', async () => {
      type Pool = { connect(): Promise<pg.PoolClient>; idleCount: number; totalCount: number };
      const pool = (dataSource.driver as unknown as { master: Pool }).master;
      const idle = await pool.connect();
      idle.release();
      const busy = await pool.connect(); // another provider's onModuleInit holds it while ours runs
      expect(pool.idleCount).toBe(0);
      const timeouts = new BackOfficeDatabaseTimeouts(resolveBackOfficeIdentityOptions({ database: { statementTimeoutMs: 1234 } }), dataSource);
      await timeouts.onModuleInit();
      busy.release();
      // every connection the pool hands out from now on: the one that was busy, then new ones
      const held = await Promise.all(Array.from({ length: 4 }, () => pool.connect()));
      try {
        expect(pool.totalCount).toBe(4);
        const shown = await Promise.all(held.map(async (client) => (await client.query('SHOW statement_timeout')).rows[0].statement_timeout));
        expect(shown).toEqual(['1234ms', '1234ms', '1234ms', '1234ms']);
      } finally {
        for (const client of held) client.release();
      }
    });
  });

  describe.skipIf(!privatePostgresAvailable())('a real server restart (a private PostgreSQL started for this test)', () => {
    let server: PrivatePostgres;
    let ctx: IdentityApp;

    beforeAll(async () => {
      server = await PrivatePostgres.start();
      const options: BackOfficeIdentityModuleOptions = { rateLimits: { enabled: false } };
      ctx = await createIdentityApp({ kind: 'postgres', url: server.url, poolSize: 10, drop: async () => undefined }, { identity: options });
    }, 120_000);
    afterAll(async () => {
      await ctx?.close();
      await server?.destroy();
    });

    it('pg_ctl restart under load: 503 within a second while it is down, then it recovers on its own', async () => {
      const user = (await ctx.userManager.createUser({ email: 'restart@example.com', name: 'Restart', password: TEST_PASSWORD })).value!;
      const http = new HttpClient(ctx.url);
      expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
      const traffic = load(
        [
          ['me', () => http.get('/auth/me')],
          ['login', () => new HttpClient(ctx.url).login(user.email, TEST_PASSWORD)],
          ['sessions', () => http.get('/auth/sessions')],
        ],
        4,
      );
      await sleep(500);
      const outageStart = Date.now();
      await server.ctl('stop');
      await sleep(1000);
      await server.ctl('start');
      const outageEnd = Date.now();
      await sleep(2000);
      const samples = await traffic.stop();
      const result = analyse(samples, outageStart, outageEnd);
      console.log(
        `[fault] server restart: down for ${outageEnd - outageStart} ms; ${result.total} requests, ${result.unavailable} answered 503; ` +
          `first 503 after ${result.first503} ms; first success ${result.recovery} ms after the server was back; slowest answer ${result.slowest} ms`,
      );
      expect(result.unavailable).toBeGreaterThan(0);
      expect(result.first503!).toBeLessThan(1000);
      expect(result.slowest).toBeLessThan(2000);
      expect(result.recovery).toBeLessThan(2000);
      expect(result.afterOutage.filter((s) => s.status >= 500)).toEqual([]);
      expect((await http.get('/auth/me')).status).toBe(200);
    });
  });
});
