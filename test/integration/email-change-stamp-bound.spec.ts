import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import { Mailbox } from '../support/mailbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, reauthenticate, signedInClient, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
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
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'stampbound');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, passkeys: { rpId: 'localhost', rpName: 'Acme back office', origins: ['http://localhost'] } },
      providers: [Mailbox],
    });
    const boss = await make({ email: 'stampbound-admin@example.com', groups: ['admin'] });
    admin = await signedInClient(ctx, boss.email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function requestedLink(email: string, newEmail: string, client?: HttpClient): Promise<{ userId: string; token: string }> {
    client ??= await signedInClient(ctx, email);
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

  it('OWASP ASVS 4.0 3.3.3: verifyUserToken answers from the stored stamp: a user read before a stamp change (a stale cache) gets false for the voided link', async () => {
    const user = await make({ email: 'stampbound-stale@example.com' });
    const link = await requestedLink(user.email, 'stampbound-thief-stale@evil.example');
    const stale = (await ctx.userManager.findById(user.id))!;
    expect(await ctx.userManager.verifyUserToken(stale, 'change_email', link.token)).toBe(true);
    await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
    expect(await ctx.userManager.verifyUserToken(stale, 'change_email', link.token), 'verifyUserToken of a user read before the stamp changed').toBe(false);
    expect(await confirmOutcome(link)).toEqual({ status: 400, code: 'invalid_token', email: 'stampbound-stale@example.com' });
  });

  it('OWASP ASVS 4.0 3.3.3: with no stamp change the link still moves the email (the binding refuses nothing else)', async () => {
    const user = await make({ email: 'stampbound-c@example.com' });
    const link = await requestedLink(user.email, 'stampbound-new-c@example.com');
    expect(await confirmOutcome(link)).toEqual({ status: 200, code: undefined, email: 'stampbound-new-c@example.com' });
  });

  /** A link asked for through the manager (for a user who cannot sign in with a password alone), fully stored. */
  async function askedThroughManager(user: { id: string } & Parameters<IdentityApp['userManager']['deliverNewEmailChangeToken']>[0], newEmail: string) {
    let token = '';
    const stored = await ctx.userManager.deliverNewEmailChangeToken(user, newEmail, 24, async (secret) => {
      token = secret;
      return true;
    });
    expect(stored, 'the link was stored').toBe(true);
    return { userId: user.id, token };
  }

  const stampOf = async (userId: string) => (await ctx.userManager.findById(userId))!.securityStamp;

  it("OWASP ASVS 4.0 3.3.3: an admin's two-factor reset (POST /users/:id/2fa/reset) after the request: confirm answers 400 invalid_token", async () => {
    const user = await make({ email: 'stampbound-d@example.com' });
    expect((await ctx.userManager.setTwoFactorEnabled(user, true)).succeeded).toBe(true);
    // the owner has 2FA now (no plain sign-in): the link is asked for through the manager
    const fresh = (await ctx.userManager.findById(user.id))!;
    const link = await askedThroughManager(fresh, 'stampbound-thief-d@evil.example');
    expect(await ctx.userManager.verifyUserToken(fresh, 'change_email', link.token)).toBe(true);
    const before = await stampOf(user.id);
    const reset = await admin.post(`/users/${user.id}/2fa/reset`, {});
    expect(reset.status, reset.text).toBe(200);
    expect(await stampOf(user.id)).not.toBe(before);
    expect(await confirmOutcome(link)).toEqual({ status: 400, code: 'invalid_token', email: 'stampbound-d@example.com' });
  });

  it("OWASP ASVS 4.0 3.3.3: a passkey removed (an admin's DELETE /users/:id/passkeys/:passkeyId) after the request: confirm answers 400 invalid_token", async () => {
    const user = await make({ email: 'stampbound-e@example.com' });
    const added = await ctx.userManager.addPasskey(user, {
      credentialId: `stampbound-${user.id}`, publicKey: new Uint8Array([1, 2, 3]), counter: 0, transports: [], name: 'Lost key', deviceType: 'singleDevice', backedUp: false,
    });
    expect(added.succeeded).toBe(true);
    const link = await requestedLink(user.email, 'stampbound-thief-e@evil.example');
    const removed = await admin.request('DELETE', `/users/${user.id}/passkeys/${added.value!.id}`);
    expect(removed.status, removed.text).toBe(204);
    expect(await confirmOutcome(link)).toEqual({ status: 400, code: 'invalid_token', email: 'stampbound-e@example.com' });
  });

  it('OWASP ASVS 4.0 3.3.3: two-factor turned off after the request: confirm answers 400 invalid_token', async () => {
    const user = await make({ email: 'stampbound-f@example.com' });
    const link = await requestedLink(user.email, 'stampbound-thief-f@evil.example');
    const fresh = (await ctx.userManager.findById(user.id))!;
    expect((await ctx.userManager.setTwoFactorEnabled(fresh, true)).succeeded).toBe(true);
    // a second link, asked for under the 2FA-on stamp, then 2FA off again
    const second = await askedThroughManager(fresh, 'stampbound-thief-f2@evil.example');
    expect((await ctx.userManager.setTwoFactorEnabled((await ctx.userManager.findById(user.id))!, false)).succeeded).toBe(true);
    expect(await confirmOutcome(second)).toEqual({ status: 400, code: 'invalid_token', email: 'stampbound-f@example.com' });
    expect(await confirmOutcome(link)).toEqual({ status: 400, code: 'invalid_token', email: 'stampbound-f@example.com' });
  });

  describe('actions that keep the stamp leave the link confirmable (the binding must not break the feature)', () => {
    it('a plain sign-in (another session), a step-up with session renewal, and the asking session signing out', async () => {
      const user = await make({ email: 'stampbound-g@example.com' });
      const asking = await signedInClient(ctx, user.email);
      const stamp = await stampOf(user.id);
      const link = await requestedLink(user.email, 'stampbound-new-g@example.com', asking);
      expect(await stampOf(user.id), 'the request itself keeps the stamp').toBe(stamp);
      const other = await signedInClient(ctx, user.email, TEST_PASSWORD);
      expect(await stampOf(user.id), 'a plain sign-in keeps the stamp').toBe(stamp);
      await reauthenticate(other);
      await reauthenticate(asking);
      expect(await stampOf(user.id), 'a step-up (its session renewed) keeps the stamp').toBe(stamp);
      expect((await other.get('/auth/me')).status).toBe(200);
      expect((await asking.post('/auth/logout', {})).status).toBeLessThan(300);
      expect(await stampOf(user.id), "the owner's logout keeps the stamp").toBe(stamp);
      expect(await ctx.userManager.verifyUserToken((await ctx.userManager.findById(user.id))!, 'change_email', link.token)).toBe(true);
      expect(await confirmOutcome(link)).toEqual({ status: 200, code: undefined, email: 'stampbound-new-g@example.com' });
    });
  });
});
