import pg from 'pg';
import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import { backOfficeIdentityEntities, TypeOrmBackOfficeUserStore } from '../../src/backoffice-identity/index.js';
import type { ImportedUserRow } from '../../src/backoffice-identity/users/import/user-import.js';
import { lockWaitersReach } from '../support/lock-waits.js';

/**
 * Two imports (the HTTP route, the CLI) that update the same users, listed in different orders. Each import's
 * update locks the user's row (FOR UPDATE); taken in the order of the records, the two imports wait on each other
 * in a cycle and PostgreSQL aborts one (`deadlock detected`, 40P01: a failed import, a 500). They lock in id order.
 */
describe.skipIf(dbKind() !== 'postgres')('two imports updating the same users in opposite orders', () => {
  let db: TestDatabase;
  let source: DataSource;
  let store: TypeOrmBackOfficeUserStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities, extra: { max: 10 } });
    await source.initialize();
    store = new TypeOrmBackOfficeUserStore(source);
  });
  afterAll(async () => {
    await source?.destroy();
    await db?.drop();
  });

  async function newUser(name: string): Promise<{ id: string; email: string }> {
    const email = `${name}@example.test`;
    return store.create(
      { username: email, normalizedUsername: email.toUpperCase(), email, normalizedEmail: email.toUpperCase(), name, passwordHash: 'hash-1', securityStamp: 'stamp-1', isApproved: true, invitedAt: null, groups: [], kind: 'person' },
      new Date(),
    );
  }

  const record = (email: string, name: string, now: Date): ImportedUserRow => ({
    username: email,
    normalizedUsername: email.toUpperCase(),
    email,
    normalizedEmail: email.toUpperCase(),
    name,
    passwordHash: null,
    securityStamp: `stamp-${name}`,
    groups: ['editor'],
    createdAt: now,
    lastLoginAt: null,
    isApproved: null,
  });

  it('OWASP ASVS 4.0 1.11.3: both imports finish (no 40P01), whichever order their records list the users in', async () => {
    const now = new Date();
    const users = [await newUser('imp-a'), await newUser('imp-b'), await newUser('imp-c')].sort((a, b) => (a.id < b.id ? -1 : 1));
    const [first, middle] = users;
    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    const run = (order: typeof users, name: string) =>
      store
        .importUsers(order.map((u) => record(u.email, name, now)), { onConflict: 'update', dryRun: false, protectedGroup: 'admin' }, now)
        .then(
          (outcomes) => ({ outcomes, error: null as string | null }),
          (error: Error & { driverError?: { code?: string } }) => ({ outcomes: [], error: `${error.driverError?.code ?? ''} ${error.message}` }),
        );
    try {
      // Another writer holds the middle user's row: each import goes as far as its record order takes it.
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM backoffice_user WHERE id = $1 FOR UPDATE`, [middle.id]);
      const forwards = run(users, 'forwards');
      await lockWaitersReach(observer, 1);
      const backwards = run([...users].reverse(), 'backwards');
      await lockWaitersReach(observer, 2);
      await blocker.query('COMMIT');
      const results = [await forwards, await backwards];
      expect(results.map((r) => r.error)).toEqual([null, null]);
      expect(results.map((r) => r.outcomes)).toEqual([
        ['updated', 'updated', 'updated'],
        ['updated', 'updated', 'updated'],
      ]);
      expect((await store.findById(first.id))!.groups).toEqual(['editor']);
    } finally {
      await blocker.end();
      await observer.end();
    }
  });
});
