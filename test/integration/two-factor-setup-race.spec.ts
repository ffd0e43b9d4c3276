import { independentCode } from '../support/oathtool.js';
import { dbKind, type TestDatabase } from '../support/database.js';
import { holdCalls, holdCallsInTransaction, sentWhileHeld } from '../support/held-calls.js';
import { HttpClient } from '../support/http-client.js';
import type { IdentityApp } from '../support/identity-app.js';
import { startTotpApp } from '../support/totp-app.js';
import type { UserTwoFactorStore } from '../../src/backoffice-identity/users/stores/user-store.interface.js';

const password = 'correct horse battery staple';

/**
 * `POST /auth/2fa/setup` refuses (409 `two_factor_already_enabled`) while 2FA is on with the TOTP key set up: a new
 * setup would replace the confirmed key the person's authenticator app holds. The refusal was decided on the copy of
 * the user read when the request was authenticated, and the store's write replaced whatever key it found: a setup
 * that passed that check before a concurrent `POST /auth/2fa/enable` committed replaced the key just confirmed, and
 * left the account with 2FA on and a TOTP key no code of the app is accepted for (sign-in only with a recovery
 * code). OWASP ASVS 4.0 2.8.x / 5.0 6.5.x (a confirmed authenticator stays the one bound to the account until it is
 * removed on purpose), 1.11.3 (the check and the write act on the same state).
 */
describe('A 2FA setup racing an enable does not replace the confirmed TOTP key', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;

  beforeAll(async () => {
    ({ db, ctx } = await startTotpApp());
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** A new user signed in twice (two tabs), the first having started a TOTP setup. */
  async function twoTabsOneSetup(email: string) {
    await ctx.userManager.createUser({ email, name: 'Setup Race', password });
    const first = new HttpClient(ctx.url);
    const second = new HttpClient(ctx.url);
    expect((await first.login(email, password)).body.status).toBe('success');
    expect((await second.login(email, password)).body.status).toBe('success');
    const setup = await first.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status).toBe(200);
    return { first, second, setup };
  }

  it('a setup past its check while the enable commits answers 409 and the enabled key keeps signing in', async () => {
    const email = 'setup-race@example.com';
    const { first, second, setup } = await twoTabsOneSetup(email);
    const provider = ctx.userManager.getTwoFactorProvider('totp')!;
    // The second tab's setup has passed its "already on?" check (2FA was off) and waits before writing its key;
    // meanwhile the first tab confirms its key and turns 2FA on.
    const late = await sentWhileHeld(
      holdCalls(provider, 'generateSetup'),
      () => second.post('/auth/2fa/setup', { provider: 'totp' }),
      async () => expect((await first.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) })).status).toBe(200),
    );
    expect(late.status, 'the setup answered as if 2FA were off').toBe(409);
    expect(late.body.code).toBe('two_factor_already_enabled');
    // The authenticator app that enabled 2FA still signs in.
    ctx.clock.advance(30_000);
    const again = new HttpClient(ctx.url);
    expect((await again.login(email, password)).body.status).toBe('requiresTwoFactor');
    const signedIn = await again.post('/auth/2fa', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expect(signedIn.status, 'the enabled key no longer signs in').toBe(200);
  });
  it.each([
    ['before the flag write starts', 'userManager'],
    // PGlite has one connection: the setup would wait for the held transaction.
    ...(dbKind() === 'postgres' ? [['in the flag write\'s transaction, after its first check', 'store']] : []),
  ] as const)('a setup between the enable\'s code check and its flag write (%s): the enable is refused, 2FA stays off, and the new key enables', async (_, seam) => {
    const email = `enable-race-${seam}@example.com`;
    const { first, second, setup } = await twoTabsOneSetup(email);
    // The first tab's enable has confirmed its key and waits before turning 2FA on; meanwhile the second tab starts
    // a setup, which sees 2FA off and replaces the (confirmed) key with a new unconfirmed one.
    let replaced: { status: number; body: { secret: string } } | undefined;
    const enable = await sentWhileHeld(
      // The manager's call (before its transaction), or the store's write of the flag in it (the transaction has
      // checked the key once and not yet locked the user's row: its check after the write must see the new key).
      seam === 'userManager' ? holdCalls(ctx.userManager, 'setTwoFactorEnabled') : holdCallsInTransaction(ctx.userManager.store as UserTwoFactorStore, 'setTwoFactorEnabled'),
      () => first.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) }),
      async () => {
        replaced = await second.post('/auth/2fa/setup', { provider: 'totp' });
      },
    );
    expect(replaced!.status).toBe(200);
    expect(enable.status, 'the enable turned 2FA on over a key the app does not have').toBe(400);
    expect(enable.body.code).toBe('invalid_code');
    expect(enable.body.recoveryCodes).toBeUndefined();
    const user = await ctx.userManager.findByEmail(email);
    expect(user!.twoFactorEnabled).toBe(false);
    const key = await ctx.userManager.getTwoFactorProvider('totp')!.isSetUp(user!);
    expect(key).toBe(false);
    // Sign-in still needs no second factor, and the new key (the second tab's QR code) enables 2FA.
    expect((await new HttpClient(ctx.url).login(email, password)).body.status).toBe('success');
    ctx.clock.advance(30_000);
    const enabled = await second.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(replaced!.body.secret, ctx.clock) });
    expect(enabled.status).toBe(200);
    expect(enabled.body.recoveryCodes).toHaveLength(10);
    ctx.clock.advance(30_000);
    const again = new HttpClient(ctx.url);
    expect((await again.login(email, password)).body.status).toBe('requiresTwoFactor');
    expect((await again.post('/auth/2fa', { provider: 'totp', code: independentCode(replaced!.body.secret, ctx.clock) })).status).toBe(200);
  });

  it('a setup whose user is deleted while it writes answers 401 (the session is gone), not 409 two_factor_already_enabled', async () => {
    const email = 'setup-deleted@example.com';
    await ctx.userManager.createUser({ email, name: 'Setup Deleted', password });
    const client = new HttpClient(ctx.url);
    expect((await client.login(email, password)).body.status).toBe('success');
    const provider = ctx.userManager.getTwoFactorProvider('totp')!;
    const late = await sentWhileHeld(
      holdCalls(provider, 'generateSetup'),
      () => client.post('/auth/2fa/setup', { provider: 'totp' }),
      async () => expect((await ctx.userManager.deleteUser((await ctx.userManager.findByEmail(email))!)).succeeded).toBe(true),
    );
    expect([late.status, late.body.code], 'a missing user answered as if 2FA were on').toEqual([401, 'unauthenticated']);
    expect((await client.get('/auth/me')).status, 'as the guard answers that session').toBe(401);
  });

  it('an enable whose user is deleted before its flag write answers 401 (the session is gone), not 400 "a new setup was started"', async () => {
    const email = 'enable-deleted@example.com';
    await ctx.userManager.createUser({ email, name: 'Enable Deleted', password });
    const client = new HttpClient(ctx.url);
    expect((await client.login(email, password)).body.status).toBe('success');
    const setup = await client.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status).toBe(200);
    // The enable has confirmed its key and waits before turning 2FA on; meanwhile the user is deleted (and the key with it).
    const enable = await sentWhileHeld(
      holdCalls(ctx.userManager, 'setTwoFactorEnabled'),
      () => client.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) }),
      async () => expect((await ctx.userManager.deleteUser((await ctx.userManager.findByEmail(email))!)).succeeded).toBe(true),
    );
    expect([enable.status, enable.body.code], 'a missing user answered as if a new setup were started').toEqual([401, 'unauthenticated']);
    expect((await client.get('/auth/me')).status, 'as the guard answers that session').toBe(401);
  });
});
