import { createHash, randomUUID } from 'node:crypto';
import { TypeOrmBackOfficePendingSignInStore, type BackOfficePendingSignIn } from '../../src/backoffice-identity/index.js';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { LATEST_MIGRATION, MigrationTestDatabase } from '../support/migration-harness.js';

const MIGRATION = 1732630000000;
const hash = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The per-user caps of live pending steps (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1) run a count-and-delete over the user's
 * steps of one purpose at every creation: with many anonymous steps in the table (a flood of username-less passkey
 * sign-ins or OIDC sign-ins, bounded per IP only), that statement must walk an index on (user, purpose), not the
 * table. Migration 1732630000000 adds the passkey challenges' (1732620000000 came with the external login states').
 */
describe('Migration 1732630000000 (passkey challenge (user_id, purpose) index) and the caps\' query plans', () => {
  let migrated: MigrationTestDatabase;
  let userId: string;

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async (ctx) => {
      userId = (await ctx.userManager.createUser({ email: 'cap-index@example.com', name: 'Cap index', password: TEST_PASSWORD })).value!.id;
    });
    // Anonymous steps, as a flood leaves them (live for the time of the test).
    await migrated.source.query(
      `INSERT INTO backoffice_passkey_challenge (challenge_hash, purpose, expires_at, created_at)
       SELECT md5(g::text) || md5((g + 1)::text), 'authentication', now() + interval '1 hour', now() FROM generate_series(1, 10000) g`,
    );
    await migrated.source.query(
      `INSERT INTO backoffice_external_login_state (state_hash, browser_hash, provider, payload, expires_at, created_at)
       SELECT md5(g::text) || md5((g + 1)::text), md5(g::text) || md5(g::text), 'oidc', 'sealed', now() + interval '1 hour', now() FROM generate_series(1, 10000) g`,
    );
    await migrated.source.query(`ANALYZE backoffice_passkey_challenge`);
    await migrated.source.query(`ANALYZE backoffice_external_login_state`);
  }, 180_000);
  afterAll(async () => {
    await migrated?.close();
  });

  const index = async () =>
    ((await migrated.source.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_backoffice_passkey_challenge_user'`)) as Array<{ indexdef: string }>).map((r) => r.indexdef);

  const step = (kind: 'passkey' | 'external_login'): BackOfficePendingSignIn => ({
    kind,
    keyHash: hash(randomUUID()),
    purpose: kind === 'passkey' ? 'reauthentication' : 'oidc',
    browserHash: kind === 'passkey' ? null : hash('browser'),
    userId,
    securityStamp: null,
    payload: kind === 'passkey' ? null : 'sealed',
    expiresAt: new Date(Date.now() + 10 * 60_000),
  });

  /** The plan of the cap's DELETE that creating a step of `kind` sends (EXPLAIN only: the plan, not a run). */
  async function capPlan(kind: 'passkey' | 'external_login'): Promise<string> {
    const store = new TypeOrmBackOfficePendingSignInStore(migrated.source);
    const sent: Array<[string, unknown[]]> = [];
    const query = migrated.source.query.bind(migrated.source);
    migrated.source.query = (async (sql: string, params?: unknown[], runner?: never) => {
      if (/^\s*DELETE/.test(sql)) sent.push([sql, params ?? []]);
      return query(sql, params, runner);
    }) as typeof migrated.source.query;
    try {
      await store.create(step(kind), new Date());
    } finally {
      migrated.source.query = query;
    }
    expect(sent).toHaveLength(1);
    return ((await query(`EXPLAIN ${sent[0][0]}`, sent[0][1])) as Array<{ 'QUERY PLAN': string }>).map((r) => r['QUERY PLAN']).join('\n');
  }

  it('up adds the partial index on (user_id, purpose); down drops it', async () => {
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
    expect(await index()).toEqual([expect.stringMatching(/\(user_id, purpose\) WHERE \(user_id IS NOT NULL\)$/)]);
    await migrated.undoFrom(MIGRATION);
    expect(await index()).toEqual([]);
    await migrated.migrateUp();
    expect(await migrated.newest()).toBe(LATEST_MIGRATION);
  });

  it('OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1 (resource use): among 10,000 anonymous steps, the cap of a user\'s passkey challenges and of their external login states walks the (user_id, purpose) indexes, not the table', async () => {
    const passkey = await capPlan('passkey');
    expect(passkey).toMatch(/ix_backoffice_passkey_challenge_user/);
    expect(passkey).not.toMatch(/Seq Scan on backoffice_passkey_challenge/);
    const external = await capPlan('external_login');
    expect(external).toMatch(/ix_backoffice_external_login_state_user/);
    expect(external).not.toMatch(/Seq Scan on backoffice_external_login_state/);
  });
});
