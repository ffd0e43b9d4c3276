import pg from 'pg';
import { BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS } from '../../src/backoffice-identity/index.js';
import { dbKind } from '../support/database.js';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { LATEST_MIGRATION, MigrationTestDatabase } from '../support/migration-harness.js';

const MIGRATION = 1732610000000;

/**
 * Migration 1732610000000 behind a long transaction that read `backoffice_user` (OWASP ASVS 5.0 15.x, availability):
 * its ALTER TABLE waits for an ACCESS EXCLUSIVE lock, and every sign-in and session check that reads the table queues
 * behind the waiting ALTER. It must give up within `BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS` with a clear error,
 * leave nothing half done, and succeed (and backfill) when run again after the blocker ended.
 * PostgreSQL only: PGlite is one backend session, so no second transaction can hold the table meanwhile.
 */
describe.skipIf(dbKind() !== 'postgres')('Migration 1732610000000 behind a transaction holding backoffice_user', () => {
  let migrated: MigrationTestDatabase;
  const ids: Record<string, string> = {};
  const changedAt = '2026-01-02T03:04:05.000Z';

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async (ctx) => {
      for (const name of ['pending', 'withPassword']) {
        ids[name] = (await ctx.userManager.createUser({ email: `${name.toLowerCase()}@example.com`, name, password: TEST_PASSWORD })).value!.id;
      }
    });
  });
  afterAll(async () => {
    await migrated?.close();
  });

  const connect = async () => {
    const client = new pg.Client({ connectionString: migrated.url });
    await client.connect();
    return client;
  };

  it.each(['each', 'all', 'none'] as const)('(migrationsTransactionMode %s) fails within the lock timeout instead of queueing sign-ins behind it; a retry after the blocker ends backfills', async (mode) => {
    await migrated.undoFrom(MIGRATION);
    await migrated.source.query(`UPDATE backoffice_user SET password_hash = NULL, last_password_change_at = $2 WHERE id = $1`, [ids.pending, changedAt]);

    const blocker = await connect();
    const reader = await connect();
    try {
      await blocker.query(`BEGIN`);
      await blocker.query(`SELECT count(*) FROM backoffice_user`);

      const started = Date.now();
      const run = migrated.migrateUp(mode).then(
        () => 'migrated',
        (error: Error) => error,
      );
      const limit = BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS + 5_000;
      const outcome = await Promise.race([run, new Promise<string>((resolve) => setTimeout(() => resolve('still waiting'), limit))]);
      if (outcome === 'still waiting') await blocker.query(`ROLLBACK`); // let the hung migration finish before cleanup
      expect(outcome instanceof Error ? outcome.message : outcome).toMatch(/backoffice_user.*lock_timeout/su);
      expect(Date.now() - started).toBeLessThan(limit);
      expect(await migrated.newest()).toBeLessThan(MIGRATION);
      // Nothing half done: the column is not there (the transaction rolled back), and readers are not queued.
      const columns = await reader.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'backoffice_user' AND column_name = 'password_reset_forced_at'`);
      expect(columns.rows).toEqual([]);
      await reader.query(`SET statement_timeout = 2000`);
      expect((await reader.query(`SELECT count(*)::int AS n FROM backoffice_user`)).rows[0].n).toBe(2);
    } finally {
      await blocker.query(`ROLLBACK`).catch(() => undefined);
      await blocker.end();
      await reader.end();
    }

    await migrated.migrateUp(mode);
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
    const rows: Array<{ id: string; forced: Date | null }> = await migrated.source.query(`SELECT id, password_reset_forced_at AS forced FROM backoffice_user`);
    const forced = Object.fromEntries(rows.map((r) => [r.id, r.forced === null ? null : new Date(r.forced).toISOString()]));
    expect(forced).toEqual({ [ids.pending]: changedAt, [ids.withPassword]: null });
  });

  it('leaves the lock_timeout of the transaction it runs in as it found it (migrationsTransactionMode all runs the host migrations after it)', async () => {
    await migrated.undoFrom(MIGRATION);
    const runner = migrated.source.createQueryRunner();
    try {
      await runner.startTransaction();
      await runner.query(`SET LOCAL lock_timeout = '42s'`);
      const migration = migrated.source.migrations.find((m) => m.name === `BackOfficeIdentityPasswordResetForced${MIGRATION}`)!;
      await migration.up(runner);
      expect((await runner.query(`SHOW lock_timeout`))[0].lock_timeout).toBe('42s');
      await runner.rollbackTransaction();
    } finally {
      await runner.release();
    }
  });
});
