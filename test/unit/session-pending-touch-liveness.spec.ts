import { describe, expect, test } from 'vitest';
import type { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/common/background-tasks.js';
import { randomToken, sha256Hex } from '../../src/backoffice-identity/common/crypto.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import { InMemoryBackOfficeSessionStore } from '../../src/backoffice-identity/persistence/in-memory/in-memory-session-store.js';
import { BackOfficeSessionService } from '../../src/backoffice-identity/sessions/backoffice-session.service.js';
import type { BackOfficeSession } from '../../src/backoffice-identity/sessions/session-store.interface.js';
import type { BackOfficeUserManager } from '../../src/backoffice-identity/users/backoffice-user-manager.js';

const MINUTE_MS = 60_000;
const T0 = new Date('2026-01-01T00:00:00Z');
const user = { id: 'user-1', securityStamp: 'stamp', isApproved: true };

/**
 * The session service (default 20-minute idle timeout) on the in-memory store, whose last-seen writes are not done
 * yet (the background task has not run: the window between a request and its write's commit), at a clock the test
 * moves. A session last seen 19 minutes before T0 is read at T0 (a touch is due, remembered in pendingTouches).
 */
async function setUp() {
  let now = new Date(T0);
  const store = new InMemoryBackOfficeSessionStore();
  const notified: unknown[] = [];
  const userManager = { store: {}, findById: async () => ({ ...user }), notify: async (...args: unknown[]) => void notified.push(args) };
  const service = new BackOfficeSessionService(
    store,
    userManager as unknown as BackOfficeUserManager,
    resolveBackOfficeIdentityOptions({}),
    { now: () => new Date(now) },
    { run: () => undefined } as unknown as BackOfficeBackgroundTasks,
  );
  const token = randomToken(32);
  const s: BackOfficeSession = {
    id: '00000000-0000-4000-8000-000000000001', userId: user.id, tokenHash: sha256Hex(token), securityStamp: user.securityStamp,
    createdAt: new Date(T0.getTime() - 19 * MINUTE_MS), lastSeenAt: new Date(T0.getTime() - 19 * MINUTE_MS), expiresAt: new Date(T0.getTime() + 600 * MINUTE_MS),
    reauthenticatedAt: null, revokedAt: null, ip: null, userAgent: null, twoFactorSetupOnly: false,
  };
  await store.create(s);
  expect(await service.authenticate(token)).not.toBeNull(); // slides: the write (last seen T0) is on its way
  now = new Date(T0.getTime() + 2 * MINUTE_MS); // the stored row is past the idle timeout, the slid session is not
  return { service, store, token, id: s.id, notified };
}

describe('a session slid by a last-seen write not committed yet is live for every decision of this process (OWASP ASVS 5.0 7.5.2)', () => {
  test('authenticate, findLiveSessionOf and revoke agree: a session that authenticates can be ended by its owner', async () => {
    const { service, token, id } = await setUp();
    expect(await service.authenticate(token, { touch: false })).not.toBeNull();
    expect(await service.isLiveSessionOf(id, user), 'findLiveSessionOf of a session authenticate calls live').toBe(true);
    expect(await service.revoke(user, id), 'revoke (DELETE /auth/sessions/:id) of a session that authenticates').toBe(true);
    expect(await service.authenticate(token, { touch: false })).toBeNull();
  });

  test('a sign-in that ends the session of the cookie it came with tells its owner when that session was live (authenticated)', async () => {
    const { service, token, store, id, notified } = await setUp();
    await service.endReplacedSession(token, '00000000-0000-4000-8000-000000000002');
    expect((await store.findById(user.id, id))?.revokedAt).not.toBeNull();
    expect(notified, 'UserSessionsRevokedNotification for the live session it ended').toHaveLength(1);
  });
});
