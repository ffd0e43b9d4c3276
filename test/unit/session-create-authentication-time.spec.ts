import { describe, expect, test } from 'vitest';
import type { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/common/background-tasks.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import { InMemoryBackOfficeSessionStore } from '../../src/backoffice-identity/persistence/in-memory/in-memory-session-store.js';
import { BackOfficeSessionService } from '../../src/backoffice-identity/sessions/backoffice-session.service.js';
import type { BackOfficeUser } from '../../src/backoffice-identity/users/backoffice-user.js';
import type { BackOfficeUserManager } from '../../src/backoffice-identity/users/backoffice-user-manager.js';

const NOW = new Date('2026-01-01T00:00:00Z');
const user = { id: 'user-1', securityStamp: 'stamp', isApproved: true } as BackOfficeUser;

function service(store = new InMemoryBackOfficeSessionStore()): BackOfficeSessionService {
  const userManager = { store: {}, findById: async () => ({ ...user }), notify: async () => undefined };
  return new BackOfficeSessionService(
    store,
    userManager as unknown as BackOfficeUserManager,
    resolveBackOfficeIdentityOptions({ session: { reauthenticationMinutes: 5 } }),
    { now: () => new Date(NOW) },
    { run: () => undefined } as unknown as BackOfficeBackgroundTasks,
  );
}

/** Values of `authenticatedSecondsAgo` that are no time: not finite, too far in the future, or beyond the Date range. */
const NO_TIME_AGES: [string, number][] = [
  ['an age beyond the Date range (auth_time -1e13)', 1e13 + NOW.getTime() / 1000],
  ['an age just past the earliest Date', 8.64e12 + NOW.getTime() / 1000 + 1],
  ['a future beyond the Date range (auth_time 1e13)', -1e13],
  ['a future beyond the clock skew', -3600],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['NaN', Number.NaN],
];

/** The session's reauthenticatedAt as epoch ms (null: none; NaN: an Invalid Date). */
async function reauthenticatedAt(authenticatedSecondsAgo: number | null | undefined): Promise<number | null> {
  const { session } = await service().create(user, {}, authenticatedSecondsAgo === undefined ? {} : { authenticatedSecondsAgo });
  return session.reauthenticatedAt === null ? null : session.reauthenticatedAt.getTime();
}

describe('BackOfficeSessionService.create: the time of the sign-in\'s authentication (OWASP ASVS 4.0 3.7.1 / 5.0 7.5.3)', () => {
  test('left out: now; null: none; an age: that long before now; a small negative age (a clock ahead, within the skew): now', async () => {
    expect(await reauthenticatedAt(undefined)).toBe(NOW.getTime());
    expect(await reauthenticatedAt(null)).toBeNull();
    expect(await reauthenticatedAt(90)).toBe(NOW.getTime() - 90_000);
    expect(await reauthenticatedAt(-60)).toBe(NOW.getTime());
  });

  test.each(NO_TIME_AGES)('%s is no recent sign-in (null), not an Invalid Date nor now', async (label, secondsAgo) => {
    expect(await reauthenticatedAt(secondsAgo), `authenticatedSecondsAgo ${label}`).toBeNull();
  });
});

describe('BackOfficeSessionService.renewToken (a step-up): the time of the re-authentication (OWASP ASVS 4.0 3.7.1 / 5.0 7.5.3)', () => {
  /** A session signed in 10 minutes ago, its step-up window run out; the renewal's answer and the session in the store after it. */
  async function renew(authenticatedSecondsAgo: number): Promise<{ token: string | null; before: { tokenHash: string; at: number | null }; after: { tokenHash: string; at: number | null } }> {
    const store = new InMemoryBackOfficeSessionStore();
    const sessions = service(store);
    const { session } = await sessions.create(user, {}, { authenticatedSecondsAgo: 600 });
    const stored = async () => {
      const s = (await store.findById(user.id, session.id))!;
      return { tokenHash: s.tokenHash, at: s.reauthenticatedAt === null ? null : new Date(s.reauthenticatedAt).getTime() };
    };
    const before = await stored();
    const token = await sessions.renewToken(session, { authenticatedSecondsAgo });
    return { token, before, after: await stored() };
  }

  test('an age: a re-authentication that long before now; a small negative age (a clock ahead, within the skew): now', async () => {
    expect((await renew(90)).after.at).toBe(NOW.getTime() - 90_000);
    expect((await renew(-60)).after.at).toBe(NOW.getTime());
    expect((await renew(90)).token).toEqual(expect.any(String));
  });

  test.each(NO_TIME_AGES)('%s: the step-up is refused (null), the session keeps its token and its earlier re-authentication', async (label, secondsAgo) => {
    const { token, before, after } = await renew(secondsAgo);
    expect({ token, after }, `authenticatedSecondsAgo ${label}`).toEqual({ token: null, after: { tokenHash: before.tokenHash, at: NOW.getTime() - 600_000 } });
  });
});
