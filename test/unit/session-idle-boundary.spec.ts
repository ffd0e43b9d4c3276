import { describe, expect, test } from 'vitest';
import type { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/common/background-tasks.js';
import { randomToken, sha256Hex } from '../../src/backoffice-identity/common/crypto.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import { InMemoryBackOfficeSessionStore } from '../../src/backoffice-identity/persistence/in-memory/in-memory-session-store.js';
import { BackOfficeSessionService } from '../../src/backoffice-identity/sessions/backoffice-session.service.js';
import type { BackOfficeSession } from '../../src/backoffice-identity/sessions/session-store.interface.js';
import type { BackOfficeUserManager } from '../../src/backoffice-identity/users/backoffice-user-manager.js';

const NOW = new Date('2026-01-01T00:00:00Z');
const user = { id: 'user-1', securityStamp: 'stamp', isApproved: true };

/** The session service on the in-memory store (listLive / revokeAll by isLiveOnStamp), at a fixed clock. */
function setUp(idleTimeoutMinutes: number, reauthenticationMinutes = 5) {
  const store = new InMemoryBackOfficeSessionStore();
  const userManager = { store: {}, findById: async () => ({ ...user }), notify: async () => undefined };
  const service = new BackOfficeSessionService(
    store,
    userManager as unknown as BackOfficeUserManager,
    resolveBackOfficeIdentityOptions({ session: { idleTimeoutMinutes, reauthenticationMinutes } }),
    { now: () => new Date(NOW) },
    { run: () => undefined } as unknown as BackOfficeBackgroundTasks,
  );
  /** A session last seen `agoMs` before now, with the cookie token that reads it. */
  const session = async (agoMs: number) => {
    const token = randomToken(32);
    const s: BackOfficeSession = {
      id: `00000000-0000-4000-8000-${String(agoMs).padStart(12, '0')}`, userId: user.id, tokenHash: sha256Hex(token), securityStamp: user.securityStamp,
      createdAt: new Date(NOW.getTime() - agoMs), lastSeenAt: new Date(NOW.getTime() - agoMs), expiresAt: new Date(NOW.getTime() + 86_400_000),
      reauthenticatedAt: null, revokedAt: null, ip: null, userAgent: null, twoFactorSetupOnly: false,
    };
    await store.create(s);
    return { token, id: s.id };
  };
  return { service, session };
}

describe('the idle boundary is one rule (OWASP ASVS 5.0 7.3.1)', () => {
  // 1.000000001 minutes is 60000.00006 ms: at a 2026 clock, now - idleMs rounds to now - 60000 in floating point.
  test.each([1.000000001, 1.0000001, 1.5, 20.00001, 20])(
    'idleTimeoutMinutes %s: authenticate, findLiveSessionOf, list and revokeAll agree on a session seen right at the boundary',
    async (idleTimeoutMinutes) => {
      const idleMs = idleTimeoutMinutes * 60_000;
      for (const agoMs of [Math.floor(idleMs) - 1, Math.floor(idleMs), Math.ceil(idleMs), Math.ceil(idleMs) + 1]) {
        const { service, session } = setUp(idleTimeoutMinutes);
        const { token, id } = await session(agoMs);
        const authenticated = (await service.authenticate(token, { touch: false })) !== null;
        const found = (await service.findLiveSessionOf(id, user)) !== null;
        const listed = (await service.list(user)).some((s) => s.id === id);
        expect({ agoMs, authenticated, found }).toEqual({ agoMs, authenticated: listed, found: listed });
        expect({ agoMs, revokedCount: await service.revokeAll(user) }).toEqual({ agoMs, revokedCount: listed ? 1 : 0 });
      }
    },
  );

  test('a fractional idle timeout is whole milliseconds, rounded once: the deadline is the first instant the session is not live', async () => {
    const { service, session } = setUp(1.000000001);
    const { token, id } = await session(60_000);
    expect(await service.authenticate(token, { touch: false })).toBeNull();
    expect(await service.list(user)).toEqual([]);
    const live = await session(59_999);
    const auth = await service.authenticate(live.token, { touch: false });
    expect(service.deadlines(auth!.session).idleExpiresAt).toBe(new Date(NOW.getTime() + 1).toISOString());
    expect(id).not.toBe(live.id);
  });

  test('a fractional re-authentication window is whole milliseconds too: recent until the instant a step-up answers', () => {
    const { service } = setUp(20, 1.000000001);
    // completeStepUp answers reauthenticatedAt + the window, as a Date (whole milliseconds)
    expect(service.isRecentlyAuthenticated({ reauthenticatedAt: new Date(NOW.getTime() - 60_000) })).toBe(false);
    expect(service.isRecentlyAuthenticated({ reauthenticatedAt: new Date(NOW.getTime() - 59_999) })).toBe(true);
    expect(service.isRecentlyAuthenticated({ reauthenticatedAt: new Date(NOW.getTime() - 60_000) }, 1.000000001)).toBe(false);
  });
});

describe('a step-up on a session whose store answers no reauthenticatedAt at all (a JavaScript host store)', () => {
  test.each([undefined, 'not a date'])('reauthenticatedAt %s: renewToken records the re-authentication at now, no Invalid Date', async (stored) => {
    const { service, session } = setUp(20);
    const { token } = await session(1_000);
    const live = (await service.authenticate(token, { touch: false }))!.session;
    (live as { reauthenticatedAt: unknown }).reauthenticatedAt = stored;
    expect(await service.renewToken(live, { reauthenticated: true })).toEqual(expect.any(String));
    expect(live.reauthenticatedAt).toEqual(NOW);
  });
});
