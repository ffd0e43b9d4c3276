import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import { Mailbox } from '../support/mailbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { linkParams } from '../support/smtp.js';

/**
 * An email-change link is bound to the security stamp it was issued under, as ASP.NET Identity binds its change-email
 * tokens: any stamp change after the request (two-factor turned on or off, an admin's two-factor reset, a login
 * provider removed, `updateSecurityStamp`, ...) voids it, not only a password change. Otherwise the link a stolen
 * session asked for (to the thief's mailbox) outlived the owner's securing of the account: confirmed afterwards (no
 * session needed), it moved the account's address to the thief (OWASP ASVS 4.0 3.3.3, 2.5.x; 5.0 6.3.x).
 */
describe('OWASP ASVS 4.0 3.3.3 / 2.5.x: a security-stamp change voids a pending email-change link', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'stampbound');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function requestedLink(email: string, newEmail: string): Promise<{ userId: string; token: string }> {
    const client = await signedInClient(ctx, email);
    expect((await client.post('/auth/me/email', { newEmail })).status).toBe(202);
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    const mail = Mailbox.messages.filter((m) => m.to === newEmail && m.type === 'EmailChangeConfirm').at(-1)!;
    return linkParams(mail.text, 'confirm-email');
  }

  async function confirmOutcome(link: { userId: string; token: string }) {
    const confirmed = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: link.userId, token: link.token });
    return { status: confirmed.status, code: confirmed.body?.code, email: (await ctx.userManager.findById(link.userId))!.email };
  }

  it('OWASP ASVS 4.0 3.3.3: two-factor turned on after the request: confirm answers 400 invalid_token, the email stays', async () => {
    const user = await make({ email: 'stampbound-a@example.com' });
    const link = await requestedLink(user.email, 'stampbound-thief-a@evil.example');
    const fresh = (await ctx.userManager.findById(user.id))!;
    expect((await ctx.userManager.setTwoFactorEnabled(fresh, true)).succeeded).toBe(true);
    expect(await confirmOutcome(link)).toEqual({ status: 400, code: 'invalid_token', email: 'stampbound-a@example.com' });
  });

  it('OWASP ASVS 4.0 3.3.3: updateSecurityStamp after the request (e.g. a login provider removed): confirm answers 400 invalid_token', async () => {
    const user = await make({ email: 'stampbound-b@example.com' });
    const link = await requestedLink(user.email, 'stampbound-thief-b@evil.example');
    await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
    expect(await confirmOutcome(link)).toEqual({ status: 400, code: 'invalid_token', email: 'stampbound-b@example.com' });
  });

  it('OWASP ASVS 4.0 3.3.3: with no stamp change the link still moves the email (the binding refuses nothing else)', async () => {
    const user = await make({ email: 'stampbound-c@example.com' });
    const link = await requestedLink(user.email, 'stampbound-new-c@example.com');
    expect(await confirmOutcome(link)).toEqual({ status: 200, code: undefined, email: 'stampbound-new-c@example.com' });
  });
});
