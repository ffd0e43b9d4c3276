import { describe, expect, test } from 'vitest';
import type { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/common/background-tasks.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import { InMemoryBackOfficeSessionStore } from '../../src/backoffice-identity/persistence/in-memory/in-memory-session-store.js';
import { BackOfficeSessionService } from '../../src/backoffice-identity/sessions/backoffice-session.service.js';
import type { BackOfficeUser } from '../../src/backoffice-identity/users/backoffice-user.js';
import type { BackOfficeUserManager } from '../../src/backoffice-identity/users/backoffice-user-manager.js';

const NOW = new Date('2026-01-01T00:00:00Z');
const user = { id: 'user-1', securityStamp: 'stamp', isApproved: true } as BackOfficeUser;

function service(): BackOfficeSessionService {
  const userManager = { store: {}, findById: async () => ({ ...user }), notify: async () => undefined };
  return new BackOfficeSessionService(
    new InMemoryBackOfficeSessionStore(),
    userManager as unknown as BackOfficeUserManager,
    resolveBackOfficeIdentityOptions({ session: { reauthenticationMinutes: 5 } }),
    { now: () => new Date(NOW) },
    { run: () => undefined } as unknown as BackOfficeBackgroundTasks,
  );
}

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

  test.each([
    ['an age beyond the Date range (auth_time -1e13)', 1e13 + NOW.getTime() / 1000],
    ['an age just past the earliest Date', 8.64e12 + NOW.getTime() / 1000 + 1],
    ['a future beyond the Date range (auth_time 1e13)', -1e13],
    ['a future beyond the clock skew', -3600],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['NaN', Number.NaN],
  ])('%s is no recent sign-in (null), not an Invalid Date nor now', async (label, secondsAgo) => {
    expect(await reauthenticatedAt(secondsAgo), `authenticatedSecondsAgo ${label}`).toBeNull();
  });
});
