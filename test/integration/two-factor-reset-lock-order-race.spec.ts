import type pg from 'pg';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { holdCallsInTransaction } from '../support/held-calls.js';
import type { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { connectLockObserver, lockWaitersReach } from '../support/lock-waits.js';
import { TOTP_TEST_KEY } from '../support/totp-app.js';
import type { UserAuthenticatorKeyStore } from '../../src/backoffice-identity/users/stores/user-store.interface.js';

/**
 * The lock order of a 2FA reset (an admin's POST /users/:id/2fa/reset, the user's own POST /auth/2fa/disable) on real
 * PostgreSQL. The reset removed the TOTP key (the authenticator row) before it wrote the user's row (the flag off, a
 * new stamp), while a 2FA setup (POST /auth/2fa/setup) locks the user's row and then writes the key, and a user's
 * delete (DELETE /users/:id) deletes the user's row and then, by cascade, the key: one waited for the other's row
 * while holding the row the other needed, and PostgreSQL aborted one of the two (`deadlock detected`, 40P01): a 503
 * for a request that a serial run answers 200. The reset now writes the user's row first (the order of every other
 * writer: user, then the rows that hang off it), so the other request waits for the reset's commit and goes on.
 * The reset is held, in its transaction, right after it removed the key; the other request is sent and is waiting for
 * a lock (PostgreSQL reports it: no sleeps) before the reset goes on. OWASP ASVS 4.0 1.11.3 (the two changes act on
 * one state, one after the other), 5.0 16.5.x (no failure on a concurrent request).
 */
describe.skipIf(dbKind() !== 'postgres')('a 2FA reset takes the user\'s row before the key\'s, as a setup and a delete do', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let observer: pg.Client;
  const make = userFactory(() => ctx, 'resetlockorder');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, twoFactor: { encryptionKey: TOTP_TEST_KEY } } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    observer = await connectLockObserver(db.url);
  });
  afterAll(async () => {
    await observer?.end();
    await ctx?.close();
    await db?.drop();
  });

  const keyStore = () => ctx.userManager.store as unknown as UserAuthenticatorKeyStore;
  const stored = async (userId: string) => {
    const user = (await observer.query(`SELECT two_factor_enabled FROM backoffice_user WHERE id = $1`, [userId])).rows[0];
    const keys = (await observer.query(`SELECT confirmed_at FROM backoffice_user_authenticator WHERE user_id = $1`, [userId])).rows;
    const codes = (await observer.query(`SELECT count(*)::int AS n FROM backoffice_user_recovery_code WHERE user_id = $1`, [userId])).rows[0].n;
    return { user: user ? { twoFactorEnabled: user.two_factor_enabled } : null, keys: keys.map((k) => ({ confirmed: k.confirmed_at !== null })), codes };
  };

  /**
   * Runs `reset` until it removed the key, then `other` until PostgreSQL reports it waiting for a lock, then lets the
   * reset go on; answers both answers.
   */
  async function resetRacing<R, O>(reset: () => Promise<R>, other: () => Promise<O>): Promise<[R, O]> {
    const held = holdCallsInTransaction(keyStore(), 'removeAuthenticatorKey', { after: true });
    try {
      const resetting = reset();
      await held.reached;
      const racing = other();
      await lockWaitersReach(observer, 1);
      held.release();
      return await Promise.all([resetting, racing]);
    } finally {
      held.restore();
    }
  }

  it('an admin\'s POST /users/:id/2fa/reset while the user starts a 2FA setup: both 200 (no 503 deadlock), 2FA off and only the new unconfirmed key', async () => {
    const target = await make();
    const tab = await signedInClient(ctx, target.email);
    expect((await tab.post('/auth/2fa/setup', { provider: 'totp' })).status).toBe(200);
    expect(await stored(target.id)).toEqual({ user: { twoFactorEnabled: false }, keys: [{ confirmed: false }], codes: 0 });
    const [reset, setup] = await resetRacing(
      () => admin.post(`/users/${target.id}/2fa/reset`, {}),
      () => tab.post('/auth/2fa/setup', { provider: 'totp' }),
    );
    expect(reset.status, `the reset deadlocked with the setup: ${reset.text}`).toBe(200);
    expect(setup.status, `the setup deadlocked with the reset: ${setup.text}`).toBe(200);
    // The setup ran after the reset committed: its key (unconfirmed) is the one stored, 2FA off.
    expect(await stored(target.id)).toEqual({ user: { twoFactorEnabled: false }, keys: [{ confirmed: false }], codes: 0 });
  });

  it('the user\'s own reset (userManager.resetTwoFactor, as POST /auth/2fa/disable calls it) while an admin deletes the user: the reset succeeds and the delete answers 204 (no 503 deadlock)', async () => {
    const target = await make();
    await ctx.userManager.getTwoFactorProvider('totp')!.generateSetup(target);
    expect((await ctx.userManager.setTwoFactorEnabled(target, true)).succeeded).toBe(true);
    expect((await ctx.userManager.regenerateRecoveryCodes(target)).succeeded).toBe(true);
    expect(await stored(target.id)).toMatchObject({ user: { twoFactorEnabled: true }, keys: [{}] });
    const [reset, deleted] = await resetRacing(
      () => ctx.userManager.resetTwoFactor(target),
      () => admin.delete(`/users/${target.id}`),
    );
    expect(reset.succeeded, `the reset failed: ${JSON.stringify(reset.errors)}`).toBe(true);
    expect(deleted.status, `the delete deadlocked with the reset: ${deleted.text}`).toBe(204);
    expect(await stored(target.id)).toEqual({ user: null, keys: [], codes: 0 });
  });
});
