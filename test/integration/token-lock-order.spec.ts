import { createHash } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import { backOfficeIdentityEntities, TypeOrmBackOfficeUserStore } from '../../src/backoffice-identity/index.js';

const hash = (text: string) => createHash('sha256').update(text).digest('hex');
const HOUR = 3_600_000;

/**
 * The built-in store's new-link write (`replaceToken`: void the user's live links of a purpose, insert the new one)
 * against the transactions that write the user's row and then void the user's links: an email change (the
 * manager's `changeEmail`, an admin's edit) and a user import's update. Both must finish; neither may be the
 * victim of a deadlock (PostgreSQL aborts one of two transactions waiting on each other).
 */
describe.skipIf(dbKind() !== 'postgres')('replaceToken and a transaction that writes the user and then voids its links', () => {
  let db: TestDatabase;
  let source: DataSource;
  let store: TypeOrmBackOfficeUserStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities });
    await source.initialize();
    store = new TypeOrmBackOfficeUserStore(source);
  });
  afterAll(async () => {
    await source?.destroy();
    await db?.drop();
  });

  /** Resolves once another backend of this database waits for a lock (the new-link write, blocked). */
  async function someoneWaitsForALock(observer: pg.Client): Promise<void> {
    for (;;) {
      const { rows } = await observer.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
      );
      if (rows[0].n > 0) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('OWASP ASVS 4.0 1.11.3: a new password-reset link requested while an email change is being written is no deadlock: both finish, the new link stays live', async () => {
    const now = new Date();
    const user = await store.create(
      {
        username: 'lock-order@example.test',
        normalizedUsername: 'LOCK-ORDER@EXAMPLE.TEST',
        email: 'lock-order@example.test',
        normalizedEmail: 'LOCK-ORDER@EXAMPLE.TEST',
        name: 'Lock Order',
        passwordHash: 'hash-1',
        securityStamp: 'stamp-1',
        isApproved: true,
        invitedAt: null,
        groups: [],
        kind: 'person',
      },
      now,
    );
    await store.replaceToken(user.id, 'password_reset', hash('first'), new Date(now.getTime() + HOUR), now);

    const change = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await change.connect();
    await observer.connect();
    try {
      // The email change's first write: the user's row (a unique column, so the row is locked FOR UPDATE).
      await change.query('BEGIN');
      await change.query(`UPDATE backoffice_user SET email = $2, normalized_email = $3, security_stamp = 'stamp-2' WHERE id = $1`, [
        user.id,
        'moved@example.test',
        'MOVED@EXAMPLE.TEST',
      ]);
      // Meanwhile a "forgot password" writes a new link; it waits for the email change.
      const replacing = store.replaceToken(user.id, 'password_reset', hash('second'), new Date(now.getTime() + HOUR), now).then(
        () => null,
        (error: Error) => error,
      );
      await someoneWaitsForALock(observer);
      // The email change then voids the links mailed to the old address, and commits.
      const voiding = await change
        .query(`UPDATE backoffice_user_token SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL AND purpose IN ('password_reset', 'invite', 'change_email')`, [user.id, now])
        .then(() => null, (error: Error) => error);
      await change.query(voiding ? 'ROLLBACK' : 'COMMIT');
      expect(voiding?.message ?? null).toBeNull();
      expect((await replacing)?.message ?? null).toBeNull();
      expect(await store.isTokenLive(user.id, 'password_reset', hash('first'), new Date(now.getTime() + 1))).toBe(false);
      expect(await store.isTokenLive(user.id, 'password_reset', hash('second'), new Date(now.getTime() + 1))).toBe(true);
    } finally {
      await change.end();
      await observer.end();
    }
  });
});
