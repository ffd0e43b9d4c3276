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
  /** Adds a live session of the user last seen (stored, no write pending) `minutesAgo` before the current time. */
  const addSession = async (n: number, minutesAgo: number) => {
    const seen = new Date(now.getTime() - minutesAgo * MINUTE_MS);
    const other: BackOfficeSession = { ...s, id: `00000000-0000-4000-8000-00000000001${n}`, tokenHash: sha256Hex(randomToken(32)), createdAt: seen, lastSeenAt: seen };
    await store.create(other);
    return other.id;
  };
  return { service, store, token, id: s.id, notified, addSession };
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

  test('list and listPage (GET /auth/sessions) list it', async () => {
    const { service, token, id } = await setUp();
    expect(await service.authenticate(token, { touch: false })).not.toBeNull();
    expect((await service.list(user)).map((s) => s.id), 'list: the session that authenticates is listed').toEqual([id]);
    expect((await service.listPage(user, { skip: 0, take: 10 })).items.map((s) => s.id), 'listPage: the session that authenticates is listed').toEqual([id]);
  });

  test('listPage first (no list before it) flushes the pending write and lists it', async () => {
    const { service, token, id } = await setUp();
    expect(await service.authenticate(token, { touch: false })).not.toBeNull();
    expect((await service.listPage(user, { skip: 0, take: 10 })).items.map((s) => s.id), 'listPage first: the session that authenticates is listed').toEqual([id]);
  });

  test('listPage first pages by the slid last-seen times: pages of one neither skip nor repeat a session', async () => {
    const { service, id, addSession } = await setUp();
    const older = await addSession(1, 5);
    const newer = await addSession(2, 1);
    const paged: string[] = [];
    for (let skip = 0; skip < 4; skip++) paged.push(...(await service.listPage(user, { skip, take: 1 })).items.map((s) => s.id));
    expect(paged, 'listPage first: pages in slid last-seen order').toEqual([newer, id, older]);
  });

  test('revokeAll (DELETE /auth/sessions, an admin\'s sign-out of the user) counts it: the count published and answered says it ended', async () => {
    const { service, token } = await setUp();
    expect(await service.authenticate(token, { touch: false })).not.toBeNull();
    expect(await service.revokeAll(user), 'revokeAll counts the live session it ended').toBe(1);
    expect(await service.authenticate(token, { touch: false })).toBeNull();
  });

  test('listPage pages by the slid last-seen times: pages of one neither skip nor repeat a session, in list\'s order', async () => {
    const { service, id, addSession } = await setUp();
    const older = await addSession(1, 5); // stored 5 minutes ago: after the slid session (2 minutes ago)
    const newer = await addSession(2, 1);
    const all = (await service.list(user)).map((s) => s.id);
    expect(all).toEqual([newer, id, older]);
    const paged: string[] = [];
    for (let skip = 0; skip < 4; skip++) {
      const page = await service.listPage(user, { skip, take: 1 });
      paged.push(...page.items.map((s) => s.id));
      expect(page.more, `more after page ${skip}`).toBe(skip < 2);
    }
    expect(paged).toEqual(all);
  });

  test('they write the pending last-seen write once; with none pending, list, listPage and revokeAll write nothing', async () => {
    const { service, store, id, addSession } = await setUp();
    const writes: [string, string][] = [];
    const touch = store.touch.bind(store);
    store.touch = async (sessionId, at) => {
      writes.push([sessionId, at.toISOString()]);
      await touch(sessionId, at);
    };
    await service.list(user);
    expect(writes, 'the pending write, flushed by the first listing').toEqual([[id, T0.toISOString()]]);
    writes.length = 0;
    await addSession(1, 3);
    await service.list(user);
    await service.listPage(user, { skip: 0, take: 1 });
    expect(await service.revokeAll(user)).toBe(2);
    expect(writes, 'writes with nothing pending').toEqual([]);
  });
});
