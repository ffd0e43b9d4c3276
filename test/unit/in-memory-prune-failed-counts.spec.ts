import { InMemoryBackOfficeUserStore } from '../../src/backoffice-identity/index.js';

const HOUR_MS = 3_600_000;

describe('InMemoryBackOfficeUserStore.prune: failed-attempt counts', () => {
  it('OWASP ASVS 5.0 6.3.8 (enumeration): a day after the last failure, a known user\'s count is forgotten as an unknown username\'s is; a locked one and a fresh one are kept', async () => {
    const store = new InMemoryBackOfficeUserStore();
    const start = new Date('2026-01-01T00:00:00Z');
    const newUser = (email: string) =>
      store.create(
        { username: email, normalizedUsername: email.toUpperCase(), email, normalizedEmail: email.toUpperCase(), name: email, passwordHash: 'hash', securityStamp: 'stamp', isApproved: true, invitedAt: null, groups: [], kind: 'person' },
        start,
      );
    const policy = (now: Date) => ({ maxFailedAccessAttempts: 5, lockoutEnd: new Date(now.getTime() + 48 * HOUR_MS) });
    const [stale, locked, fresh] = await Promise.all(['stale@example.test', 'locked@example.test', 'fresh@example.test'].map(newUser));
    for (let i = 0; i < 4; i++) {
      await store.recordFailedAccess(stale.id, policy(start), start);
      await store.recordFailedAccessForUnknownUser('GHOST', policy(start), start);
    }
    for (let i = 0; i < 5; i++) await store.recordFailedAccess(locked.id, policy(start), start);
    const later = new Date(start.getTime() + 25 * HOUR_MS);
    await store.recordFailedAccess(fresh.id, policy(later), later);
    await store.prune(later);
    const after = new Date(later.getTime() + 1000);
    // The next guess counts as the first again for the known user and the unknown username alike.
    expect((await store.recordFailedAccess(stale.id, policy(after), after)).accessFailedCount).toBe(1);
    expect((await store.recordFailedAccessForUnknownUser('GHOST', policy(after), after)).accessFailedCount).toBe(1);
    expect((await store.findById(locked.id))!.lockoutEnd!.getTime()).toBeGreaterThan(after.getTime());
    expect((await store.findById(fresh.id))!.accessFailedCount).toBe(1);
  });
});

describe('InMemoryBackOfficeUserStore.prune: locked unknown-username counters', () => {
  it('OWASP ASVS 4.0 2.2.1 / 11.1.4: a lock until an admin unlocks goes 30 days after it began; a timed 60-day lock is kept until it ends', async () => {
    const store = new InMemoryBackOfficeUserStore();
    const start = new Date('2026-01-01T00:00:00Z');
    const forever = { maxFailedAccessAttempts: 1, lockoutEnd: new Date('9999-12-31T00:00:00Z') };
    const timed = { maxFailedAccessAttempts: 1, lockoutEnd: new Date(start.getTime() + 60 * 24 * HOUR_MS) };
    await store.recordFailedAccessForUnknownUser('GHOST-FOREVER', forever, start);
    await store.recordFailedAccessForUnknownUser('GHOST-TIMED', timed, start);
    expect((await store.prune(new Date(start.getTime() + 31 * 24 * HOUR_MS))).loginAttempts, 'pruned 31 days after the locks').toBe(1);
    const after = new Date(start.getTime() + 31 * 24 * HOUR_MS + 1000);
    expect((await store.recordFailedAccessForUnknownUser('GHOST-TIMED', timed, after)).alreadyLocked, 'the timed lock 31 days in').toBe(true);
    expect((await store.recordFailedAccessForUnknownUser('GHOST-FOREVER', forever, after)).alreadyLocked).toBe(false);
  });
});
