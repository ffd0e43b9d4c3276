import { randomUUID, createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import { backOfficeIdentityEntities, TypeOrmBackOfficeSessionStore, TypeOrmBackOfficeUserStore, type BackOfficeSession } from '../../src/backoffice-identity/index.js';

const suite = dbKind() === 'postgres' ? describe : describe.skip;

/**
 * Ending a user's sessions takes many rows: "sign out the others" (`revokeAll`, after a password change) and a
 * sign-in with `allowConcurrentLogins: false` (`revokeOthersIfLive`) lock them in one order (by id), so two of them
 * at once wait for each other instead of deadlocking (PostgreSQL would abort one: a 500).
 */
suite('session writes that end many sessions lock them in one order', () => {
  let db: TestDatabase;
  let source: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities, extra: { max: 20 } });
    await source.initialize();
  });
  afterAll(async () => {
    await source?.destroy();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 1.11.3: 40 rounds of revokeAll and revokeOthersIfLive at once on one user with 12 sessions (stored against id order): no deadlock', async () => {
    const users = new TypeOrmBackOfficeUserStore(source);
    const sessions = new TypeOrmBackOfficeSessionStore(source);
    const now = new Date();
    const failures: string[] = [];
    for (let round = 0; round < 40; round++) {
      const email = `lock${round}@example.com`;
      const user = await users.create(
        { username: email, normalizedUsername: email.toUpperCase(), email, normalizedEmail: email.toUpperCase(), name: 'Lock', passwordHash: null, securityStamp: 's', isApproved: true, invitedAt: null, groups: [], kind: 'person' },
        now,
      );
      const ids = Array.from({ length: 12 }, () => randomUUID()).sort().reverse(); // physical order against id order
      for (const id of ids) {
        const session: BackOfficeSession = {
          id, userId: user.id, tokenHash: createHash('sha256').update(id).digest('hex'), securityStamp: 's', createdAt: now, lastSeenAt: now,
          expiresAt: new Date(now.getTime() + 3_600_000), reauthenticatedAt: now, revokedAt: null, ip: null, userAgent: null, twoFactorSetupOnly: false,
        };
        await sessions.create(session);
      }
      const results = await Promise.allSettled([
        sessions.revokeAll(user.id, now, ids[0]),
        sessions.revokeOthersIfLive!(user.id, ids[11], now),
        sessions.revokeAll(user.id, now, ids[5]),
        sessions.revokeOthersIfLive!(user.id, ids[3], now),
      ]);
      for (const r of results) if (r.status === 'rejected') failures.push(String((r.reason as Error).message));
    }
    expect(failures).toEqual([]);
  });
});
