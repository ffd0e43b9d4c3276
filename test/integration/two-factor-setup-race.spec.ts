import { independentCode } from '../support/oathtool.js';
import type { TestDatabase } from '../support/database.js';
import { holdCalls, sentWhileHeld } from '../support/held-calls.js';
import { HttpClient } from '../support/http-client.js';
import type { IdentityApp } from '../support/identity-app.js';
import { startTotpApp } from '../support/totp-app.js';

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

  it('a setup past its check while the enable commits answers 409 and the enabled key keeps signing in', async () => {
    const email = 'setup-race@example.com';
    await ctx.userManager.createUser({ email, name: 'Setup Race', password });
    const first = new HttpClient(ctx.url);
    const second = new HttpClient(ctx.url);
    expect((await first.login(email, password)).body.status).toBe('success');
    expect((await second.login(email, password)).body.status).toBe('success');
    const setup = await first.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status).toBe(200);
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
});
