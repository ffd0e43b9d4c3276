import { describe, expect, test } from 'vitest';
import { randomToken, sha256Hex } from '../../src/backoffice-identity/common/crypto.js';
import { InMemoryBackOfficeSessionStore } from '../../src/backoffice-identity/persistence/in-memory/in-memory-session-store.js';
import type { BackOfficeSession, BackOfficeSessionStore } from '../../src/backoffice-identity/sessions/session-store.interface.js';
import { serviceWithTouchesHeldBack } from '../support/touches-held-back.js';

const MINUTE_MS = 60_000;
const T0 = new Date('2026-01-01T00:00:00Z');
const user = { id: 'user-1', securityStamp: 'stamp', isApproved: true };

/**
 * The flush of a user's remembered last-seen writes (before list, listPage, revokeAll): one `touchMany` when the store
 * has it, one `touch` per session for a host store without it (the optional port method's fallback).
 */
async function setUp(withTouchMany: boolean) {
  let now = new Date(T0);
  const inner = new InMemoryBackOfficeSessionStore();
  const calls: string[] = [];
  const store: BackOfficeSessionStore = Object.assign(Object.create(inner) as BackOfficeSessionStore, {
    touch: async (id: string, at: Date) => void (calls.push(`touch ${id}`), await inner.touch(id, at)),
    touchMany: withTouchMany
      ? async (touches: ReadonlyArray<{ sessionId: string; at: Date }>) => void (calls.push(`touchMany ${touches.length}`), await inner.touchMany(touches))
      : undefined,
  });
  const service = serviceWithTouchesHeldBack(store, user, () => now);
  const seen = new Date(T0.getTime() - 19 * MINUTE_MS);
  for (let i = 1; i <= 3; i++) {
    const token = randomToken(32);
    const s: BackOfficeSession = {
      id: `00000000-0000-4000-8000-00000000000${i}`, userId: user.id, tokenHash: sha256Hex(token), securityStamp: user.securityStamp,
      createdAt: seen, lastSeenAt: seen, expiresAt: new Date(T0.getTime() + 600 * MINUTE_MS),
      reauthenticatedAt: null, revokedAt: null, ip: null, userAgent: null, twoFactorSetupOnly: false,
    };
    await inner.create(s);
    expect(await service.authenticate(token)).not.toBeNull(); // a touch at T0 is remembered
  }
  now = new Date(T0.getTime() + 2 * MINUTE_MS); // stored rows past the idle timeout, the slid sessions not
  return { service, calls };
}

describe('the flush of pending last-seen writes', () => {
  test('one touchMany for all the user\'s sessions when the store has it', async () => {
    const { service, calls } = await setUp(true);
    expect(await service.list(user)).toHaveLength(3);
    expect(calls).toEqual(['touchMany 3']);
    expect(await service.revokeAll(user), 'written once: nothing left to write').toBe(3);
    expect(calls).toEqual(['touchMany 3']);
  });

  test('one touch per session for a store without touchMany (host stores written before it)', async () => {
    const { service, calls } = await setUp(false);
    expect(await service.list(user)).toHaveLength(3);
    expect(calls.sort()).toEqual(['touch 00000000-0000-4000-8000-000000000001', 'touch 00000000-0000-4000-8000-000000000002', 'touch 00000000-0000-4000-8000-000000000003']);
  });
});
