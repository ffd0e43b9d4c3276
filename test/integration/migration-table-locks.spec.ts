import pg from 'pg';
import { BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS } from '../../src/backoffice-identity/index.js';
import { dbKind } from '../support/database.js';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { LATEST_MIGRATION, MigrationTestDatabase } from '../support/migration-harness.js';

const FROM = 1732560000001;

/**
 * An upgrade over several versions (OWASP ASVS 5.0 15.x, availability): TypeORM's default `migrationsTransactionMode`
 * (`all`) runs every pending migration in one transaction, so an earlier migration's `ALTER TABLE backoffice_session`
 * waiting without a limit behind a long transaction would stall the sign-ins and session checks as much as a new
 * one's. Every migration that locks an existing table waits at most `BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS`.
 * PostgreSQL only: PGlite is one backend session, so no second transaction can hold the table meanwhile.
 */
describe.skipIf(dbKind() !== 'postgres')('Shipped migrations behind a transaction holding backoffice_session', () => {
  let migrated: MigrationTestDatabase;

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async (ctx) => {
      await ctx.userManager.createUser({ email: 'someone@example.com', name: 'Someone', password: TEST_PASSWORD });
    });
  });
  afterAll(async () => {
    await migrated?.close();
  });

  it('an upgrade from before 1732560000002 fails within the lock timeout, changes nothing, and succeeds once the blocker ended', async () => {
    await migrated.undoFrom(FROM);
    const blocker = new pg.Client({ connectionString: migrated.url });
    await blocker.connect();
    try {
      await blocker.query(`BEGIN`);
      await blocker.query(`SELECT count(*) FROM backoffice_session`);
      const limit = BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS + 5_000;
      const run = migrated.migrateUp('all').then(
        () => 'migrated',
        (error: Error) => error,
      );
      const outcome = await Promise.race([run, new Promise<string>((resolve) => setTimeout(() => resolve('still waiting'), limit))]);
      if (outcome === 'still waiting') await blocker.query(`ROLLBACK`); // let the hung migrations finish before cleanup
      expect(outcome instanceof Error ? outcome.message : outcome).toMatch(/BackOfficeIdentityEnforcedTwoFactor1732560000002 .*backoffice_session.*lock_timeout/su);
      expect(await migrated.newest()).toBeLessThan(FROM);
    } finally {
      await blocker.query(`ROLLBACK`).catch(() => undefined);
      await blocker.end();
    }
    await migrated.migrateUp('all');
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
  });
});
