import pg from 'pg';
import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { statementsSentDuring } from '../support/sent-statements.js';
import { PRUNE_BATCH_SIZE } from '../../src/backoffice-identity/persistence/typeorm/sql-results.js';
import { BACKOFFICE_AUDIT_STORE, BackOfficeMaintenanceService, type BackOfficeAuditStore } from '../../src/backoffice-identity/index.js';

const DAY_MS = 86_400_000;
/** More expired rows per table than one batch holds. */
const ROWS = PRUNE_BATCH_SIZE * 2 + 500;
const hex64 = `md5(random()::text) || md5(random()::text)`;

/** Every table the maintenance prunes, with how one row of it is held by another transaction. */
const TABLES = {
  twoFactorChallenges: { table: 'backoffice_two_factor_challenge', key: 'id' },
  passkeyChallenges: { table: 'backoffice_passkey_challenge', key: 'id' },
  externalLoginStates: { table: 'backoffice_external_login_state', key: 'id' },
  loginAttempts: { table: 'backoffice_login_attempt', key: 'username_hash' },
  accessTokens: { table: 'backoffice_access_token', key: 'id' },
  sessions: { table: 'backoffice_session', key: 'id' },
  tokens: { table: 'backoffice_user_token', key: 'id' },
  auditEntries: { table: 'backoffice_audit_entry', key: 'id' },
} as const;

/**
 * The maintenance prune on a table that unauthenticated callers grew (pending sign-ins, unknown-username counters):
 * it deletes in bounded batches, each its own short statement, and never waits for a row another transaction holds
 * (a sign-in using it up, or a second app instance pruning at the same time), so it neither locks a table for long
 * nor stalls behind, or deadlocks with, the requests or another instance.
 */
describe.skipIf(dbKind() !== 'postgres')('Maintenance: batched, non-blocking prune', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, maintenanceIntervalMinutes: 0, audit: { retentionDays: 30 } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function seedExpiredRows(): Promise<void> {
    const sql = ctx.app.get(DataSource);
    const user = (await ctx.userManager.createUser({ email: 'batches@example.com', name: 'Batches', password: TEST_PASSWORD })).value!;
    const old = new Date(ctx.clock.now().getTime() - 40 * DAY_MS);
    const series = `FROM generate_series(1, ${ROWS})`;
    await sql.query(`INSERT INTO backoffice_two_factor_challenge (user_id, token_hash, security_stamp, expires_at, created_at) SELECT $1, ${hex64}, 's', $2, $2 ${series}`, [user.id, old]);
    await sql.query(`INSERT INTO backoffice_passkey_challenge (challenge_hash, purpose, user_id, expires_at, created_at) SELECT ${hex64}, 'authentication', NULL, $1, $1 ${series}`, [old]);
    await sql.query(`INSERT INTO backoffice_external_login_state (state_hash, browser_hash, provider, payload, expires_at, created_at) SELECT ${hex64}, ${hex64}, 'oidc', 'x', $1, $1 ${series}`, [old]);
    await sql.query(`INSERT INTO backoffice_login_attempt (username_hash, access_failed_count, lockout_end, updated_at) SELECT ${hex64}, 1, NULL, $1 ${series}`, [old]);
    await sql.query(`INSERT INTO backoffice_access_token (user_id, token_hash, created_at, expires_at) SELECT $1, ${hex64}, $2, $2 ${series}`, [user.id, old]);
    await sql.query(
      `INSERT INTO backoffice_session (user_id, token_hash, security_stamp, created_at, last_seen_at, expires_at) SELECT $1, ${hex64}, 's', $2, $2, $2 ${series}`,
      [user.id, old],
    );
    await sql.query(`INSERT INTO backoffice_user_token (user_id, purpose, token_hash, expires_at, created_at) SELECT $1, 'password_reset', ${hex64}, $2, $2 ${series}`, [
      user.id,
      old,
    ]);
    await sql.query(`INSERT INTO backoffice_audit_entry (event, created_at) SELECT 'test.old', $1 ${series}`, [old]);
  }

  it('OWASP ASVS 4.0 1.11.3 / 11.1.4: prune deletes in batches of at most PRUNE_BATCH_SIZE rows and skips rows another transaction holds (a second instance, a request) instead of waiting for them', async () => {
    await seedExpiredRows();
    const maintenance = ctx.app.get(BackOfficeMaintenanceService);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      // Another transaction holds one expired row of every table (a second instance's prune, a sign-in using it up).
      await holder.query('BEGIN');
      for (const { table, key } of Object.values(TABLES)) {
        await holder.query(`SELECT ${key} FROM ${table} ORDER BY ${key} LIMIT 1 FOR UPDATE`);
      }
      let result: Awaited<ReturnType<BackOfficeMaintenanceService['prune']>> | undefined;
      const sent = await statementsSentDuring(async () => {
        result = await Promise.race([
          maintenance.prune(),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('prune waited for a row another transaction holds')), 10_000)),
        ]);
      });
      for (const [field] of Object.entries(TABLES)) expect(result![field as keyof typeof TABLES], field).toBe(ROWS - 1);
      for (const { table } of Object.values(TABLES)) {
        // Each table in several short statements, never one that takes every expired row at once.
        const deletes = sent.filter((s) => s.text.includes(`DELETE FROM ${table} `));
        expect(deletes.length, table).toBeGreaterThanOrEqual(Math.ceil(ROWS / PRUNE_BATCH_SIZE));
      }
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    // The held rows go at the next run.
    const next = await maintenance.prune();
    for (const [field] of Object.entries(TABLES)) expect(next[field as keyof typeof TABLES], field).toBe(1);
    expect(await ctx.app.get<BackOfficeAuditStore>(BACKOFFICE_AUDIT_STORE).prune(new Date(ctx.clock.now().getTime() - 30 * DAY_MS))).toBe(0);
  });

  it("OWASP ASVS 4.0 1.11.3 / 11.1.4: the prune's reset of known users' stale failed counts skips a user row another transaction holds instead of waiting for it (a wait that deadlocked with a request locking two users' rows)", async () => {
    const sql = ctx.app.get(DataSource);
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await ctx.userManager.createUser({ email: `stale-failures${n}@example.com`, name: 'Stale', password: TEST_PASSWORD })).value!.id);
    const twoDaysAgo = new Date(ctx.clock.now().getTime() - 2 * DAY_MS);
    await sql.query(`UPDATE backoffice_user SET access_failed_count = 2, updated_at = $2 WHERE id = ANY($1::uuid[])`, [ids, twoDaysAgo]);
    const maintenance = ctx.app.get(BackOfficeMaintenanceService);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    const counts = async () =>
      (await sql.query(`SELECT access_failed_count FROM backoffice_user WHERE id = ANY($1::uuid[]) ORDER BY id`, [[...ids].sort()])).map((r: { access_failed_count: number }) => r.access_failed_count);
    const held = [...ids].sort()[1];
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM backoffice_user WHERE id = $1 FOR UPDATE`, [held]);
      const result = await Promise.race([
        maintenance.prune(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('prune waited for a user row another transaction holds')), 5_000)),
      ]);
      expect(result.loginAttempts).toBe(2);
      expect(await counts()).toEqual([0, 2, 0]);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    expect((await maintenance.prune()).loginAttempts).toBe(1);
    expect(await counts()).toEqual([0, 0, 0]);
  });

  it("the audit prune walks the trail's (created_at, id) index: no batch reads the entries it keeps (walking the id alone, the last batch of every prune read all of them)", async () => {
    const sql = ctx.app.get(DataSource);
    const now = ctx.clock.now();
    const kept = 20_000;
    // As a trail grows: the old entries first (lower ids), then the ones it keeps.
    const old = PRUNE_BATCH_SIZE * 5 + 300;
    await sql.query(`INSERT INTO backoffice_audit_entry (event, created_at) SELECT 'test.old', $1 FROM generate_series(1, ${old})`, [new Date(now.getTime() - 40 * DAY_MS)]);
    await sql.query(`INSERT INTO backoffice_audit_entry (event, created_at) SELECT 'test.kept', $1 FROM generate_series(1, ${kept})`, [now]);
    await sql.query('ANALYZE backoffice_audit_entry');
    // Each statement of the prune, explained (and rolled back) before it runs for real: the rows each plan node read.
    const rowsRead: number[] = [];
    const original = sql.query.bind(sql);
    const spy = vi.spyOn(sql, 'query').mockImplementation(async (text: string, params?: unknown[]) => {
      if (text.includes('DELETE FROM backoffice_audit_entry')) {
        const runner = sql.createQueryRunner();
        await runner.connect();
        try {
          await runner.startTransaction();
          const [row] = await runner.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, params);
          // The table rows each scan of the trail read: returned, or read and dropped by its filter.
          const walk = (node: Record<string, unknown>): number =>
            (['Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Heap Scan'].includes(String(node['Node Type'])) && node['Relation Name'] === 'backoffice_audit_entry'
              ? Number(node['Actual Rows'] ?? 0) * Number(node['Actual Loops'] ?? 1) + Number(node['Rows Removed by Filter'] ?? 0)
              : 0) + ((node.Plans as Record<string, unknown>[] | undefined) ?? []).reduce((sum, child) => sum + walk(child), 0);
          rowsRead.push(walk((row['QUERY PLAN'] as Array<{ Plan: Record<string, unknown> }>)[0].Plan));
        } finally {
          await runner.rollbackTransaction().catch(() => undefined);
          await runner.release();
        }
      }
      return original(text, params);
    });
    try {
      expect(await ctx.app.get<BackOfficeAuditStore>(BACKOFFICE_AUDIT_STORE).prune(new Date(now.getTime() - 30 * DAY_MS))).toBe(old);
    } finally {
      spy.mockRestore();
    }
    expect(rowsRead.length).toBeGreaterThanOrEqual(2);
    for (const read of rowsRead) expect(read).toBeLessThan(kept / 2);
  });
});
