import { createHash, randomUUID } from 'node:crypto';
import { TypeOrmBackOfficePendingSignInStore, type BackOfficePendingSignIn } from '../../src/backoffice-identity/index.js';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { LATEST_MIGRATION, MigrationTestDatabase } from '../support/migration-harness.js';

const MIGRATION = 1732620000000;
const hash = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Migration 1732620000000 adds `backoffice_external_login_state.user_id` (the signed-in user of a link's or step-up's
 * OpenID Connect state, which the store caps per user and provider: OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1) and a partial
 * index on (user_id, provider). Before it runs (the host migrates after the deploy), a sign-in's state, which has no
 * user, is still stored, found and used up.
 */
describe('Migration 1732620000000 (external login state user_id)', () => {
  let migrated: MigrationTestDatabase;
  let userId: string;

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async (ctx) => {
      userId = (await ctx.userManager.createUser({ email: 'state-user@example.com', name: 'State user', password: TEST_PASSWORD })).value!.id;
    });
  });
  afterAll(async () => {
    await migrated?.close();
  });

  const state = (user: string | null): BackOfficePendingSignIn => ({
    kind: 'external_login',
    keyHash: hash(randomUUID()),
    purpose: 'oidc',
    browserHash: hash('browser'),
    userId: user,
    securityStamp: null,
    payload: 'sealed',
    expiresAt: new Date(Date.now() + 10 * 60_000),
  });
  const column = () =>
    migrated.source.query(`SELECT data_type, is_nullable FROM information_schema.columns WHERE table_name = 'backoffice_external_login_state' AND column_name = 'user_id'`);
  const index = async () =>
    ((await migrated.source.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_backoffice_external_login_state_user'`)) as Array<{ indexdef: string }>).map((r) => r.indexdef);

  it('before it, a sign-in\'s state (no user) is stored, found and used up; a link\'s state (with a user) is not stored', async () => {
    await migrated.undoFrom(MIGRATION);
    expect(await column()).toEqual([]);
    const store = new TypeOrmBackOfficePendingSignInStore(migrated.source);
    const signIn = state(null);
    await store.create(signIn, new Date());
    expect((await store.find('external_login', signIn.keyHash, new Date()))?.userId).toBeNull();
    expect((await store.consume('external_login', signIn.keyHash, new Date(), { purpose: 'oidc', browserHash: hash('browser') }))?.payload).toBe('sealed');
    await expect(store.create(state(userId), new Date())).rejects.toMatchObject({
      code: 'migration_required',
      migration: 'BackOfficeIdentityExternalLoginStateUser1732620000000',
      message: expect.stringContaining('backoffice_external_login_state.user_id'),
    });
  });

  it('up adds the nullable column (deleting the user deletes their states) and the partial (user_id, provider) index; down drops both', async () => {
    await migrated.undoFrom(MIGRATION);
    const store = new TypeOrmBackOfficePendingSignInStore(migrated.source);
    const before = state(null);
    await store.create(before, new Date());
    await migrated.migrateUp();
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
    expect(await column()).toEqual([{ data_type: 'uuid', is_nullable: 'YES' }]);
    expect(await index()).toEqual([expect.stringMatching(/\(user_id, provider\) WHERE \(user_id IS NOT NULL\)$/)]);
    expect((await store.find('external_login', before.keyHash, new Date()))?.userId).toBeNull();

    const link = state(userId);
    await store.create(link, new Date());
    expect((await store.find('external_login', link.keyHash, new Date()))?.userId).toBe(userId);
    await migrated.source.query(`DELETE FROM backoffice_user WHERE id = $1`, [userId]);
    expect(await migrated.source.query(`SELECT 1 FROM backoffice_external_login_state WHERE state_hash = $1`, [link.keyHash])).toEqual([]);

    await migrated.undoFrom(MIGRATION);
    expect([await column(), await index()]).toEqual([[], []]);
    await migrated.migrateUp();
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
  });
});
