import { TEST_PASSWORD } from '../support/identity-app.js';
import { LATEST_MIGRATION, MigrationTestDatabase } from '../support/migration-harness.js';

const MIGRATION = 1732610000000;

/**
 * Migration 1732610000000 adds `backoffice_user.password_reset_forced_at` (an admin's forced reset pending) and marks
 * the users the rule used before took for reset-pending (no password, a password change on record, not
 * directory-managed), so a reset pending when it runs stays pending; nobody else is marked.
 */
describe('Migration 1732610000000 (password_reset_forced_at) with rows', () => {
  let migrated: MigrationTestDatabase;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async (ctx) => {
      for (const name of ['pending', 'withPassword', 'neverHadOne', 'directory']) {
        ids[name] = (await ctx.userManager.createUser({ email: `${name.toLowerCase()}@example.com`, name, password: TEST_PASSWORD })).value!.id;
      }
    });
  });
  afterAll(async () => {
    await migrated?.close();
  });

  it('up marks the users the old rule found reset-pending, and only them; down drops the column', async () => {
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
    await migrated.undoFrom(MIGRATION);
    const changedAt = '2026-01-02T03:04:05.000Z';
    const set = (id: string, sql: string) => migrated.source.query(`UPDATE backoffice_user SET ${sql} WHERE id = $1`, [id]);
    await set(ids.pending, `password_hash = NULL, last_password_change_at = '${changedAt}'`);
    await set(ids.withPassword, `last_password_change_at = '${changedAt}'`);
    await set(ids.neverHadOne, `password_hash = NULL, last_password_change_at = NULL`);
    await set(ids.directory, `password_hash = NULL, last_password_change_at = '${changedAt}', directory_managed_at = now()`);

    await migrated.migrateUp();
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
    const rows: Array<{ id: string; forced: Date | null }> = await migrated.source.query(`SELECT id, password_reset_forced_at AS forced FROM backoffice_user WHERE id = ANY($1::uuid[])`, [
      Object.values(ids),
    ]);
    const forced = Object.fromEntries(rows.map((r) => [r.id, r.forced === null ? null : new Date(r.forced).toISOString()]));
    expect({ pending: forced[ids.pending], withPassword: forced[ids.withPassword], neverHadOne: forced[ids.neverHadOne], directory: forced[ids.directory] }).toEqual({
      pending: changedAt,
      withPassword: null,
      neverHadOne: null,
      directory: null,
    });

    await migrated.undoFrom(MIGRATION);
    const columns = await migrated.source.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'backoffice_user' AND column_name = 'password_reset_forced_at'`);
    expect(columns).toEqual([]);
    await migrated.migrateUp();
  });
});
