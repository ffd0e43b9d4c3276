import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import { backOfficeIdentityEntities, TypeOrmBackOfficeSessionStore, TypeOrmBackOfficeUserStore, type BackOfficeSession } from '../../src/backoffice-identity/index.js';
import { lockWaiters } from '../support/lock-waits.js';

const suite = dbKind() === 'postgres' ? describe : describe.skip;

/**
 * A session adopts the stamp its change wrote only while the user's row holds it (`adoptSecurityStamp`). The check
 * and the write are one statement, but a statement waiting for the session row (another write of it) rechecks the
 * row after the wait with its first snapshot of the user's row: another change of the same session may have
 * written a later stamp and adopted it meanwhile. The test holds the session row in a transaction (as that other
 * adoption does), lets change A's adoption wait on it, runs change B (write the user's stamp, adopt it), and
 * watches `pg_stat_activity` instead of sleeping.
 */
suite("adopting a security stamp reads the user's current stamp, not the one of the statement's start", () => {
  let db: TestDatabase;
  let source: DataSource;
  let observer: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities });
    await source.initialize();
    observer = new pg.Client({ connectionString: db.url });
    await observer.connect();
  });
  afterAll(async () => {
    await observer?.end();
    await source?.destroy();
    await db?.drop();
  });

  async function untilLockWaits(n: number, orSettled?: Promise<unknown>): Promise<'waiting' | 'settled'> {
    let settled = false;
    void orSettled?.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (;;) {
      if (settled) return 'settled';
      if ((await lockWaiters(observer)) >= n) return 'waiting';
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('OWASP ASVS 4.0 3.3.3: A\'s adoption waits on the session row while B writes and adopts a later stamp: the session ends on the user\'s final stamp', async () => {
    const users = new TypeOrmBackOfficeUserStore(source);
    const sessions = new TypeOrmBackOfficeSessionStore(source);
    const now = new Date();
    const email = `adopt-${randomUUID()}@example.com`;
    const user = await users.create(
      { username: email, normalizedUsername: email.toUpperCase(), email, normalizedEmail: email.toUpperCase(), name: 'Adopt', passwordHash: null, securityStamp: 's0', isApproved: true, invitedAt: null, groups: [], kind: 'person' },
      now,
    );
    const session: BackOfficeSession = {
      id: randomUUID(), userId: user.id, tokenHash: createHash('sha256').update(randomUUID()).digest('hex'), securityStamp: 's0', createdAt: now, lastSeenAt: now,
      expiresAt: new Date(now.getTime() + 3_600_000), reauthenticatedAt: now, revokedAt: null, ip: null, userAgent: null, twoFactorSetupOnly: false,
    };
    await sessions.create(session);
    // Change A wrote its stamp.
    await users.setSecurityStamp(user.id, 'stamp-a', now);

    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM backoffice_session WHERE id = $1 FOR UPDATE', [session.id]);
      const adoptA = sessions.adoptSecurityStamp(session.id, 'stamp-a');
      expect(await untilLockWaits(1, adoptA)).toBe('waiting'); // A's adoption waits for the session row
      // Change B writes a later stamp meanwhile (it may have to wait for A's adoption to finish first).
      const writeB = users.setSecurityStamp(user.id, 'stamp-b', now);
      if ((await untilLockWaits(2, writeB)) === 'settled') {
        await writeB;
        // B's adoption, in the transaction that held the session row.
        await holder.query('UPDATE backoffice_session SET security_stamp = $2, next_security_stamps = NULL WHERE id = $1', [session.id, 'stamp-b']);
        await holder.query('COMMIT');
        await adoptA;
      } else {
        await holder.query('COMMIT');
        await adoptA;
        await writeB;
        expect(await sessions.adoptSecurityStamp(session.id, 'stamp-b')).toBe(true);
      }
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    const final = await sessions.findById(user.id, session.id);
    const stored = await users.findById(user.id);
    expect(stored?.securityStamp).toBe('stamp-b');
    expect(final?.securityStamp, 'the session holds the stamp the user has').toBe('stamp-b');
  });
});
