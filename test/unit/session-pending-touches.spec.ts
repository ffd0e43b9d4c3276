import type { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/common/background-tasks.js';
import { randomToken, sha256Hex } from '../../src/backoffice-identity/common/crypto.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import { BackOfficeSessionService } from '../../src/backoffice-identity/sessions/backoffice-session.service.js';
import type { BackOfficeSession, BackOfficeSessionStore } from '../../src/backoffice-identity/sessions/session-store.interface.js';
import type { BackOfficeUserManager } from '../../src/backoffice-identity/users/backoffice-user-manager.js';

const MINUTE_MS = 60_000;
const IDLE_MS = 20 * MINUTE_MS; // the default idle timeout
const THRESHOLD = 10_000; // the service starts pruning its remembered writes at this many

/**
 * The session service on a store whose last-seen writes never commit (every later read races its write), with a
 * clock the test moves. `pending` is the service's private map of remembered writes, read by the test only.
 */
function setUp() {
  let now = new Date('2026-01-01T00:00:00Z');
  const rows = new Map<string, BackOfficeSession>(); // by token hash
  const store = { findByTokenHash: async (tokenHash: string) => (rows.has(tokenHash) ? { ...rows.get(tokenHash)! } : null), touch: async () => undefined };
  const user = { id: 'user-1', securityStamp: 'stamp', isApproved: true };
  const userManager = { store: {}, findById: async () => ({ ...user }) };
  const background = { run: () => undefined }; // the write is never done
  const service = new BackOfficeSessionService(
    store as unknown as BackOfficeSessionStore,
    userManager as unknown as BackOfficeUserManager,
    resolveBackOfficeIdentityOptions({}),
    { now: () => new Date(now) },
    background as unknown as BackOfficeBackgroundTasks,
  );
  let n = 0;
  /** A live session last seen 2 minutes ago (a touch is due), with the cookie token that reads it. */
  const session = () => {
    const token = randomToken(32);
    const s: BackOfficeSession = {
      id: `session-${n++}`, userId: user.id, tokenHash: sha256Hex(token), securityStamp: user.securityStamp, createdAt: new Date(now.getTime() - 2 * MINUTE_MS),
      lastSeenAt: new Date(now.getTime() - 2 * MINUTE_MS), expiresAt: new Date(now.getTime() + 24 * 60 * MINUTE_MS), reauthenticatedAt: null, revokedAt: null,
      ip: null, userAgent: null, twoFactorSetupOnly: false,
    };
    rows.set(s.tokenHash, s);
    return { token, session: { ...s } };
  };
  const pending = (service as unknown as { pendingTouches: Map<string, Date> }).pendingTouches;
  return { service, session, pending, setNow: (at: Date) => void (now = at), now: () => now };
}

/** Counts the entries any iteration of `map` steps through (for...of, entries, keys, values, forEach). */
function countIterationSteps(map: Map<string, Date>): { steps: number } {
  const counter = { steps: 0 };
  const counted = <T>(iterate: () => IterableIterator<T>) =>
    function* () {
      for (const item of iterate()) {
        counter.steps++;
        yield item;
      }
    };
  const own = map as unknown as Record<string | symbol, unknown>;
  own.entries = own[Symbol.iterator] = counted(() => Map.prototype.entries.call(map));
  own.keys = counted(() => Map.prototype.keys.call(map));
  own.values = counted(() => Map.prototype.values.call(map));
  own.forEach = (fn: (value: Date, key: string, m: Map<string, Date>) => void) => {
    for (const [key, value] of Map.prototype.entries.call(map)) {
      counter.steps++;
      fn(value, key, map);
    }
  };
  return counter;
}

describe('BackOfficeSessionService: remembered last-seen writes (pendingTouches)', () => {
  it('OWASP ASVS 5.0 15.x / 4.0 1.x (resource use): with more than 10,000 sessions active within the idle timeout, each touch does O(1) pruning work, not a scan of every remembered write', () => {
    const { service, session, pending } = setUp();
    for (let i = 0; i < THRESHOLD + 50; i++) service.slideIdleDeadline(session().session);
    expect(pending.size).toBe(THRESHOLD + 50);
    const counter = countIterationSteps(pending);
    const touches = 1_000;
    for (let i = 0; i < touches; i++) service.slideIdleDeadline(session().session);
    expect(pending.size, 'every write is recent: none forgotten').toBe(THRESHOLD + 50 + touches);
    expect(counter.steps, 'map entries stepped through by 1,000 touches').toBeLessThanOrEqual(2 * touches);
  });

  it('over the threshold, writes older than the idle timeout are forgotten, recent ones kept (a read that raced one still slides), also a session touched again', async () => {
    const { service, session, pending, setNow, now } = setUp();
    const t0 = now();
    const touchedTwice = session();
    service.slideIdleDeadline(touchedTwice.session); // remembered first, at t0
    const stale = Array.from({ length: THRESHOLD / 2 }, () => session());
    for (const s of stale) service.slideIdleDeadline(s.session); // at t0, never read again
    const t1 = new Date(t0.getTime() + 15 * MINUTE_MS);
    setNow(t1);
    const recent = Array.from({ length: THRESHOLD / 2 - 2 }, () => session());
    for (const s of recent) service.slideIdleDeadline(s.session); // at t1
    service.slideIdleDeadline({ ...touchedTwice.session, lastSeenAt: t0 }); // due again at t1: now remembered at t1
    expect(pending.size).toBe(THRESHOLD - 1);

    const t2 = new Date(t0.getTime() + IDLE_MS + MINUTE_MS);
    setNow(t2); // the writes of t0 are older than the idle timeout
    service.slideIdleDeadline(session().session); // 9,999 remembered: not yet over the threshold
    expect(pending.size).toBe(THRESHOLD);
    service.slideIdleDeadline(session().session); // the touch that finds the map at the threshold prunes it
    expect(pending.size, 'recent writes kept, those of t0 forgotten').toBe(recent.length + 1 + 2);
    for (const s of stale.slice(0, 10)) expect(pending.has(s.session.id)).toBe(false);

    // The store never committed the writes of t1: a read still sees the last-seen time the write set.
    for (const s of [recent[0]!, recent.at(-1)!, touchedTwice]) {
      const read = await service.authenticate(s.token, { touch: false });
      expect(read?.session.lastSeenAt.toISOString(), s.session.id).toBe(t1.toISOString());
    }
  });
});
