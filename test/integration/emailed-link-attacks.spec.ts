import { request as httpRequest } from 'node:http';
import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import type { TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { signedInClient, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { startMailingApp } from '../support/mailing-app.js';
import { independentCode } from '../support/oathtool.js';
import { linkParams, type TestSmtpServer } from '../support/smtp.js';

/**
 * The emailed links under attack, over real SMTP: the reset link comes from `publicUrl` whatever Host header the
 * request carried (host header injection would mail the victim a link to the attacker's server), one token wins
 * once among parallel uses, a token works only for its purpose and its user, and a reset neither skips the second
 * factor nor leaves a session or a lockout behind. OWASP ASVS 4.0 2.5.x / 2.7.x, ASVS 5.0 6.4.x.
 */
describe('Emailed links under attack (OWASP ASVS 4.0 2.5, ASVS 5.0 6.4)', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'linkatk');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  const mailTo = (to: string) => smtp.messagesTo(to).at(-1)!;

  beforeAll(async () => {
    ({ db, smtp, ctx } = await startMailingApp());
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
  });
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await db?.drop();
  });

  /** POST /auth/forgot-password with headers of the attacker's choosing (Host included: node:http sends it as given). */
  function forgotWithHeaders(email: string, headers: Record<string, string>): Promise<number> {
    const url = new URL(`${ctx.url}/backoffice/auth/forgot-password`);
    const body = JSON.stringify({ email });
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  async function resetLink(email: string) {
    const before = smtp.countTo(email);
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email })).status).toBe(202);
    await drain();
    expect(smtp.countTo(email)).toBe(before + 1);
    return linkParams(mailTo(email).text!, 'reset-password');
  }

  const reset = (link: { userId: string; token: string }, newPassword: string) =>
    new HttpClient(ctx.url).post('/auth/reset-password', { userId: link.userId, token: link.token, newPassword });

  it('OWASP ASVS 5.0 6.4.x: a poisoned Host, X-Forwarded-Host or Forwarded header does not reach the reset link: it is built from publicUrl', async () => {
    const user = await make();
    const status = await forgotWithHeaders(user.email, {
      host: 'evil.example',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'http',
      'x-forwarded-prefix': '/evil',
      forwarded: 'host=evil.example;proto=http',
    });
    expect(status).toBe(202);
    await drain();
    const mail = mailTo(user.email);
    const { url, token } = linkParams(mail.text!, 'reset-password');
    expect(url.startsWith('https://cms.example.com/backoffice/reset-password#')).toBe(true);
    expect(`${mail.text}${mail.html}`).not.toContain('evil');
    // In the fragment (never sent to a server), and >= 128 bits (256 here, base64url).
    expect(new URL(url).search).toBe('');
    expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(16);
  });

  it('OWASP ASVS 4.0 2.5.x: eight parallel resets with one token: exactly one 200, the others invalid_token', async () => {
    const user = await make();
    const link = await resetLink(user.email);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => reset(link, `parallel reset passphrase ${i}`)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 400 && r.body.code === 'invalid_token')).toHaveLength(7);
    const winner = results.findIndex((r) => r.status === 200);
    expect((await new HttpClient(ctx.url).login(user.email, `parallel reset passphrase ${winner}`)).status).toBe(200);
  });

  it('OWASP ASVS 4.0 2.5.x: three parallel confirmations of one email-change link: exactly one 200', async () => {
    const user = await make();
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    expect((await http.post('/auth/me/email', { newEmail: 'linkatk-moved@example.com' })).status).toBe(202);
    await drain();
    const { userId, token } = linkParams(mailTo('linkatk-moved@example.com').text!, 'confirm-email');
    const results = await Promise.all([1, 2, 3].map(() => new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId, token })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400]);
  });

  it('OWASP ASVS 4.0 2.5.x: a token works only for its purpose and its user (reset, invite, email change)', async () => {
    const user = await make();
    const other = await make();
    const link = await resetLink(user.email);
    const asInvite = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: user.id, token: link.token, password: 'a reset token as invite' });
    const asEmailChange = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: user.id, token: link.token });
    const forOther = await reset({ userId: other.id, token: link.token }, 'a reset token for another user');
    for (const refused of [asInvite, asEmailChange, forOther]) expect([refused.status, refused.body.code]).toEqual([400, 'invalid_token']);

    expect((await admin.post('/users/invite', { email: 'linkatk-invitee@example.com', name: 'Invitee', groups: ['editor'] })).status).toBe(201);
    const invite = linkParams((await smtp.waitFor('linkatk-invitee@example.com')).text!, 'accept-invite');
    const inviteAsReset = await reset(invite, 'an invite token as reset');
    const inviteAsEmailChange = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: invite.userId, token: invite.token });
    for (const refused of [inviteAsReset, inviteAsEmailChange]) expect([refused.status, refused.body.code]).toEqual([400, 'invalid_token']);

    // Both links still work for what they were made for.
    expect((await reset(link, 'the reset link still works')).status).toBe(200);
    expect((await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: invite.userId, token: invite.token, password: 'the invite still works' })).status).toBe(200);
  });

  it('OWASP ASVS 4.0 2.5.x: a reset keeps two-factor on (the next sign-in asks for the code), renews the stamp, ends every session and the lockout', async () => {
    const user = await make();
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect((await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) })).status).toBe(200);
    for (let i = 0; i < 5; i++) await new HttpClient(ctx.url).login(user.email, 'not the password at all');
    expect((await ctx.userManager.findById(user.id))!.lockoutEnd).not.toBeNull();
    const stamp = (await ctx.userManager.findById(user.id))!.securityStamp;

    const link = await resetLink(user.email);
    const done = await reset(link, 'the passphrase after reset');
    expect(done.status).toBe(200);
    expect(done.setCookies.filter((c) => /^backoffice_session=./.test(c))).toEqual([]); // a reset signs nobody in
    const after = (await ctx.userManager.findById(user.id))!;
    expect(after.securityStamp).not.toBe(stamp);
    expect(after.lockoutEnd).toBeNull();
    expect(after.twoFactorEnabled).toBe(true);
    expect((await http.get('/auth/me')).status).toBe(401);
    const login = await new HttpClient(ctx.url).login(user.email, 'the passphrase after reset');
    expect(login.status).toBe(200);
    expect(login.body.status).toBe('requiresTwoFactor');
  });
});
