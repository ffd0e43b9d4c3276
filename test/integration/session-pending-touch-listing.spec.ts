import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import { backOfficeIdentityEntities, TypeOrmBackOfficeSessionStore, TypeOrmBackOfficeUserStore, type BackOfficeSession } from '../../src/backoffice-identity/index.js';
import type { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/common/background-tasks.js';
import { randomToken, sha256Hex } from '../../src/backoffice-identity/common/crypto.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import { BackOfficeSessionService } from '../../src/backoffice-identity/sessions/backoffice-session.service.js';
import type { BackOfficeUserManager } from '../../src/backoffice-identity/users/backoffice-user-manager.js';

const MINUTE_MS = 60_000;

/**
 * The session service on the built-in TypeORM store, whose last-seen writes (after the response) have not run yet: a
 * session last seen 19 minutes ago is slid by a request, then read 2 minutes later, when its stored row is 21 minutes
 * old (idle timeout 20 minutes) and the slid session 2 minutes old. Listing and ending the user's sessions see it live.
 */
describe('the session store lists and counts a session slid by a last-seen write not committed yet (OWASP ASVS 5.0 7.5.2)', () => {
  let db: TestDatabase;
  let source: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities, extra: { max: db.poolSize } });
    await source.initialize();
  });
  afterAll(async () => {
    await source?.destroy();
    await db?.drop();
  });

  async function setUp(email: string) {
    const start = new Date();
    let now = new Date(start);
    const users = new TypeOrmBackOfficeUserStore(source);
    const store = new TypeOrmBackOfficeSessionStore(source);
    const user = await users.create(
      { username: email, normalizedUsername: email.toUpperCase(), email, normalizedEmail: email.toUpperCase(), name: 'Touch', passwordHash: null, securityStamp: 's', isApproved: true, invitedAt: null, groups: [], kind: 'person' },
      start,
    );
    const service = new BackOfficeSessionService(
      store,
      { store: {}, findById: async () => ({ ...user }), notify: async () => undefined } as unknown as BackOfficeUserManager,
      resolveBackOfficeIdentityOptions({}),
      { now: () => new Date(now) },
      { run: () => undefined } as unknown as BackOfficeBackgroundTasks, // the write after the response has not run
    );
    const token = randomToken(32);
    const seen = new Date(start.getTime() - 19 * MINUTE_MS);
    const session: BackOfficeSession = {
      id: randomUUID(), userId: user.id, tokenHash: sha256Hex(token), securityStamp: 's', createdAt: seen, lastSeenAt: seen,
      expiresAt: new Date(start.getTime() + 600 * MINUTE_MS), reauthenticatedAt: null, revokedAt: null, ip: null, userAgent: null, twoFactorSetupOnly: false,
    };
    await store.create(session);
    expect(await service.authenticate(token)).not.toBeNull(); // slides it
    now = new Date(start.getTime() + 2 * MINUTE_MS);
    expect(await service.authenticate(token, { touch: false }), 'live for authenticate').not.toBeNull();
    return { service, user, id: session.id };
  }

  it('list and listPage (GET /auth/sessions) list it', async () => {
    const { service, user, id } = await setUp('list@example.com');
    expect((await service.list(user)).map((s) => s.id), 'list').toEqual([id]);
    expect((await service.listPage(user, { skip: 0, take: 10 })).items.map((s) => s.id), 'listPage').toEqual([id]);
  });

  it('listPage first (no list before it) lists it', async () => {
    const { service, user, id } = await setUp('listpage@example.com');
    expect((await service.listPage(user, { skip: 0, take: 10 })).items.map((s) => s.id), 'listPage first').toEqual([id]);
  });

  it('revokeAll (DELETE /auth/sessions, DELETE /users/:id/sessions) counts it', async () => {
    const { service, user } = await setUp('revoke@example.com');
    expect(await service.revokeAll(user), 'revokeAll counts the live session it ended').toBe(1);
  });
});
