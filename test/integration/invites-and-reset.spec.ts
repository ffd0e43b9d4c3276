import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { linkParams, TestSmtpServer } from '../support/smtp.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { expectClientError } from '../support/bad-input.js';
import { BackOfficeBackgroundTasks, BackOfficeEvents, SendEmailNotification } from '../../src/backoffice-identity/index.js';

const password = 'correct horse battery staple';

/** Takes over UserInvite emails, as an app with an external identity provider would. */
@Injectable()
class ExternalInviteListener {
  static mode: 'off' | 'sync' | 'async' | 'throw' = 'off';
  static handled: string[] = [];
  @OnEvent(BackOfficeEvents.SendEmail)
  async handle(notification: SendEmailNotification) {
    if (notification.emailType !== 'UserInvite') return;
    if (ExternalInviteListener.mode === 'sync') {
      notification.handleEmail();
      ExternalInviteListener.handled.push(notification.message.to);
    } else if (ExternalInviteListener.mode === 'async') {
      await new Promise((r) => setTimeout(r, 30));
      notification.handleEmail();
      ExternalInviteListener.handled.push(notification.message.to);
    } else if (ExternalInviteListener.mode === 'throw') {
      throw new Error('identity provider unreachable');
    }
  }
}

describe('Invites, email and password reset', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let events: NotificationRecorder;
  let counter = 0;
  const email = (tag = 'inv') => `${tag}${++counter}@example.com`;

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await new TestSmtpServer().start();
    ctx = await createIdentityApp(db, {
      identity: { email: { smtpUrl: smtp.url }, rateLimits: { enabled: false }, publicUrl: 'https://cms.example.com' },
      providers: [ExternalInviteListener],
    });
    events = NotificationRecorder.attach(ctx.app);
    await ctx.userManager.createUser({ email: 'root@example.com', name: 'Root Admin', password, groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login('root@example.com', password)).status).toBe(200);
  });
  afterEach(() => {
    ExternalInviteListener.mode = 'off';
  });
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await db?.drop();
  });

  async function invite(to: string, groups = ['editor']) {
    const result = await admin.post('/users/invite', { email: to, name: 'New <b>Editor</b>', groups, message: 'Welcome aboard!' });
    return result;
  }

  it('the whole invite path over real SMTP: invite, email link, accept, signed in, log in again', async () => {
    const to = email();
    const created = await invite(to);
    expect(created.status).toBe(201);
    expect(created.body.user).toMatchObject({ email: to, state: 'invited', groups: ['editor'] });
    const mail = await smtp.waitFor(to);
    expect(mail.subject).toBe('Root Admin has invited you to the back office');
    expect(mail.text).toContain('Welcome aboard!');
    expect(mail.html).toContain('New &lt;b&gt;Editor&lt;/b&gt;');
    const { userId, token, url } = linkParams(mail.text!, 'accept-invite');
    expect(url.startsWith('https://cms.example.com/backoffice/accept-invite#')).toBe(true);
    expect(userId).toBe(created.body.user.id);
    expect(events.named(BackOfficeEvents.Invited, userId)).toHaveLength(1);

    const invitee = new HttpClient(ctx.url);
    const weak = await invitee.post('/auth/invite/accept', { userId, token, password: 'short' });
    expectClientError(weak, 400);
    expect(weak.body.code).toBe('invalid_password');
    const accepted = await invitee.post('/auth/invite/accept', { userId, token, password: 'my own fresh passphrase' });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ status: 'success', user: { id: userId, state: 'active' } });
    expect((await invitee.get('/auth/me')).body.email).toBe(to);
    const again = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId, token, password: 'my own fresh passphrase' });
    expect(again.body.code).toBe('invalid_token');
    expect((await new HttpClient(ctx.url).login(to, 'my own fresh passphrase')).status).toBe(200);
  });

  it('forgot -> email -> reset -> login, over real SMTP; sessions revoked, lockout cleared', async () => {
    const to = email('reset');
    const created = await ctx.userManager.createUser({ email: to, name: 'Resetter', password });
    const old = new HttpClient(ctx.url);
    await old.login(to, password);
    for (let i = 0; i < 5; i++) await new HttpClient(ctx.url).login(to, 'wrong password entirely'); // locked
    const forgot = await new HttpClient(ctx.url).post('/auth/forgot-password', { email: to.toUpperCase() });
    expect(forgot.status).toBe(202);
    const mail = await smtp.waitFor(to);
    expect(mail.subject).toBe('Reset your back-office password');
    const { userId, token } = linkParams(mail.text!, 'reset-password');
    expect(userId).toBe(created.value!.id);
    const reset = await new HttpClient(ctx.url).post('/auth/reset-password', { userId, token, newPassword: 'the new reset passphrase' });
    expect(reset.status).toBe(200);
    expect((await old.get('/auth/me')).status).toBe(401);
    expect((await new HttpClient(ctx.url).login(to, 'the new reset passphrase')).status).toBe(200);
    expect((await new HttpClient(ctx.url).post('/auth/reset-password', { userId, token, newPassword: 'yet another passphrase' })).body.code).toBe('invalid_token');
    expect(events.named(BackOfficeEvents.ForgotPasswordRequested, userId)).toHaveLength(1);
    expect(events.named(BackOfficeEvents.ForgotPasswordChanged, userId)).toHaveLength(1);
    expect(events.named(BackOfficeEvents.PasswordReset, userId)).toHaveLength(1);
  });

  it('forgot-password for unknown, disabled and invited addresses: 202 and no email', async () => {
    const disabled = (await ctx.userManager.createUser({ email: email('dis'), name: 'D', password })).value!;
    await ctx.userManager.setApproved(disabled, false);
    const invited = (await ctx.userManager.createUser({ email: email('invd'), name: 'I', invited: true })).value!;
    for (const to of ['nobody-at-all@example.com', disabled.email, invited.email]) {
      const result = await new HttpClient(ctx.url).post('/auth/forgot-password', { email: to });
      expect(result.status).toBe(202);
      expect(result.body).toEqual({ status: 'accepted' });
    }
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    expect(smtp.countTo(disabled.email) + smtp.countTo(invited.email) + smtp.countTo('nobody-at-all@example.com')).toBe(0);
  });

  it('invite tokens: wrong, expired, used, another user\'s all give 400 invalid_token', async () => {
    const a = await invite(email());
    const b = await invite(email());
    const tokenA = linkParams((await smtp.waitFor(a.body.user.email)).text!, 'accept-invite').token;
    const tokenB = linkParams((await smtp.waitFor(b.body.user.email)).text!, 'accept-invite').token;
    const accept = (userId: string, token: string) => new HttpClient(ctx.url).post('/auth/invite/accept', { userId, token, password: 'a perfectly good passphrase' });
    for (const [userId, token] of [
      [a.body.user.id, 'wrong-token'],
      [a.body.user.id, tokenB],
      ['00000000-0000-4000-8000-000000000000', tokenA],
      ['not-a-uuid', tokenA],
    ]) {
      const result = await accept(userId, token);
      expectClientError(result, 400);
      expect(result.body.code).toBe('invalid_token');
    }
    ctx.clock.advance(73 * 3_600_000);
    try {
      expect((await accept(a.body.user.id, tokenA)).body.code).toBe('invalid_token');
    } finally {
      ctx.clock.advance(-73 * 3_600_000);
    }
    expect((await accept(a.body.user.id, tokenA)).status).toBe(200);
    expect((await accept(a.body.user.id, tokenA)).body.code).toBe('invalid_token');
  });

  it('POST /auth/invite/verify and /auth/reset-password/verify: the username for a live link only (one 400 invalid_token otherwise, no enumeration); the link stays usable', async () => {
    const invited = await invite(email('verify'));
    const inviteLink = linkParams((await smtp.waitFor(invited.body.user.email)).text!, 'accept-invite');
    const other = await invite(email('verify-other'));
    const otherToken = linkParams((await smtp.waitFor(other.body.user.email)).text!, 'accept-invite').token;
    const resetTo = email('verify-reset');
    await ctx.userManager.createUser({ email: resetTo, name: 'Resetter', password });
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: resetTo })).status).toBe(202);
    const resetLink = linkParams((await smtp.waitFor(resetTo)).text!, 'reset-password');
    const verify = (route: string, userId: string, token: string) => new HttpClient(ctx.url).post(route, { userId, token });

    // A live link: its account's username (the email here: usernameIsEmail), nothing else.
    const inviteAnswer = await verify('/auth/invite/verify', inviteLink.userId, inviteLink.token);
    expect(inviteAnswer.status, inviteAnswer.text).toBe(200);
    expect(inviteAnswer.body).toEqual({ username: invited.body.user.email });
    const resetAnswer = await verify('/auth/reset-password/verify', resetLink.userId, resetLink.token);
    expect(resetAnswer.status, resetAnswer.text).toBe(200);
    expect(resetAnswer.body).toEqual({ username: resetTo });

    // Wrong, foreign, other-purpose tokens and unknown or malformed user ids: the same 400, no username anywhere.
    const refused = [
      verify('/auth/invite/verify', inviteLink.userId, 'wrong-token'),
      verify('/auth/invite/verify', inviteLink.userId, otherToken),
      verify('/auth/invite/verify', '00000000-0000-4000-8000-000000000000', inviteLink.token),
      verify('/auth/invite/verify', 'not-a-uuid', inviteLink.token),
      verify('/auth/invite/verify', resetLink.userId, resetLink.token),
      verify('/auth/reset-password/verify', resetLink.userId, 'wrong-token'),
      verify('/auth/reset-password/verify', inviteLink.userId, inviteLink.token),
      verify('/auth/reset-password/verify', '00000000-0000-4000-8000-000000000000', resetLink.token),
    ];
    for (const result of await Promise.all(refused)) {
      expectClientError(result, 400);
      expect(result.body).toEqual({ statusCode: 400, code: 'invalid_token', message: expect.any(String) });
      expect(result.text).not.toContain('@example.com');
    }
    for (const body of [{}, { userId: inviteLink.userId }, { userId: 42, token: 'x' }, { userId: inviteLink.userId, token: 'x'.repeat(10_000) }]) {
      const result = await new HttpClient(ctx.url).post('/auth/invite/verify', body);
      expectClientError(result, 400);
      expect(result.body.code).toBe('validation_failed');
    }

    // Expired: refused as a used link is.
    ctx.clock.advance(73 * 3_600_000);
    try {
      expect((await verify('/auth/invite/verify', inviteLink.userId, inviteLink.token)).body.code).toBe('invalid_token');
      expect((await verify('/auth/reset-password/verify', resetLink.userId, resetLink.token)).body.code).toBe('invalid_token');
    } finally {
      ctx.clock.advance(-73 * 3_600_000);
    }

    // Verifying used nothing up: both links still set a password, and once used they verify no more.
    expect((await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: inviteLink.userId, token: inviteLink.token, password: 'a perfectly good passphrase' })).status).toBe(200);
    expect((await new HttpClient(ctx.url).post('/auth/reset-password', { userId: resetLink.userId, token: resetLink.token, newPassword: 'the new reset passphrase' })).status).toBe(200);
    expect((await verify('/auth/invite/verify', inviteLink.userId, inviteLink.token)).body.code).toBe('invalid_token');
    expect((await verify('/auth/reset-password/verify', resetLink.userId, resetLink.token)).body.code).toBe('invalid_token');
  });

  it('10 concurrent accepts of one invite: exactly one 200', async () => {
    const created = await invite(email());
    const { userId, token } = linkParams((await smtp.waitFor(created.body.user.email)).text!, 'accept-invite');
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => new HttpClient(ctx.url).post('/auth/invite/accept', { userId, token, password: `concurrent passphrase ${i}` })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 400 && r.body.code === 'invalid_token')).toHaveLength(9);
  });

  it('resend-invite voids the old link; 409 once accepted', async () => {
    const to = email();
    const created = await invite(to);
    const first = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
    const resent = await admin.post(`/users/${created.body.user.id}/resend-invite`);
    expect(resent.status).toBe(202);
    await vi.waitUntil(() => smtp.countTo(to) === 2, { timeout: 5000 });
    const second = linkParams(smtp.messages.filter((m) => JSON.stringify(m.to).includes(to))[1].text!, 'accept-invite');
    expect(second.token).not.toBe(first.token);
    expect((await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: first.userId, token: first.token, password: 'a perfectly good passphrase' })).body.code).toBe('invalid_token');
    expect((await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: second.userId, token: second.token, password: 'a perfectly good passphrase' })).status).toBe(200);
    const conflict = await admin.post(`/users/${created.body.user.id}/resend-invite`);
    expectClientError(conflict, 409);
  });

  it('OWASP ASVS 4.0 2.2.1: failed sign-ins on an invitee\'s address (a lockout attack) neither void the invite link nor block its resend', async () => {
    const to = email('lockinv');
    const created = await invite(to);
    expect(created.status).toBe(201);
    const first = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
    for (let i = 0; i < 5; i++) await new HttpClient(ctx.url).login(to, 'an attacker guessing away');
    expect((await new HttpClient(ctx.url).login(to, 'an attacker guessing away')).status).toBe(423);
    const resent = await admin.post(`/users/${created.body.user.id}/resend-invite`);
    expect(resent.status, resent.text).toBe(202);
    await vi.waitUntil(() => smtp.countTo(to) === 2, { timeout: 5000 });
    const second = linkParams(smtp.messages.filter((m) => JSON.stringify(m.to).includes(to))[1].text!, 'accept-invite');
    expect(second.token).not.toBe(first.token);
    const invitee = new HttpClient(ctx.url);
    const accepted = await invitee.post('/auth/invite/accept', { userId: second.userId, token: second.token, password: 'the invitee own passphrase' });
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body).toMatchObject({ status: 'success', user: { id: created.body.user.id, state: 'active' } });
    expect((await new HttpClient(ctx.url).login(to, 'the invitee own passphrase')).status).toBe(200);
  });

  it('duplicate email gives 409 duplicate_email; unknown group gives 400', async () => {
    const to = email();
    expect((await invite(to)).status).toBe(201);
    const dup = await invite(to.toUpperCase());
    expectClientError(dup, 409);
    expect(dup.body.code).toBe('duplicate_email');
    // NFKC + lower case can make an address longer than 256 (U+FDFA is 18 characters): a 400, not a 500
    for (const long of [`a@${'\uFDFA'.repeat(30)}.com`, `a@${'İ'.repeat(200)}.com`, `a@${'㌖'.repeat(60)}.com`]) {
      const refused = await invite(long);
      expectClientError(refused, 400);
      expect(refused.body.errors.map((e: { code: string }) => e.code)).toContain('invalid_email');
    }
    const badGroup = await invite(email(), ['wizards']);
    expectClientError(badGroup, 400);
    expect(badGroup.body.errors.map((e: { code: string }) => e.code)).toEqual(['unknown_group']);
  });

  for (const mode of ['sync', 'async'] as const) {
    it(`handleEmail() in a ${mode} listener stops the default email`, async () => {
      ExternalInviteListener.mode = mode;
      const to = email(`ext${mode}`);
      expect((await invite(to)).status).toBe(201);
      expect(ExternalInviteListener.handled).toContain(to);
      await new Promise((r) => setTimeout(r, 200));
      expect(smtp.countTo(to)).toBe(0);
      const sendEvents = events.events.filter((e) => e instanceof SendEmailNotification && e.message.to === to) as SendEmailNotification[];
      expect(sendEvents).toHaveLength(1);
      expect(sendEvents[0].isHandled).toBe(true);
    });
  }

  for (const mode of ['sync', 'async'] as const) {
    it(`OWASP ASVS 4.0 7.1.4: the audit entry of an email a ${mode} listener took over records handled: true`, async () => {
      ExternalInviteListener.mode = mode;
      const created = await invite(email(`audit${mode}`));
      expect(created.status).toBe(201);
      const audit = await admin.get(`/audit?event=${BackOfficeEvents.SendEmail}&userId=${created.body.user.id}`);
      expect(audit.status).toBe(200);
      expect(audit.body.items.map((e: { details: unknown }) => e.details)).toEqual([{ emailType: 'UserInvite', handled: true }]);
    });
  }

  it('a throwing listener does not lose the email', async () => {
    ExternalInviteListener.mode = 'throw';
    const to = email('throw');
    expect((await invite(to)).status).toBe(201);
    expect((await smtp.waitFor(to)).subject).toMatch(/invited/);
  });

  it('an SMTP failure answers 502 email_failed, the user exists, and the invite can be resent', async () => {
    const to = email('fail');
    smtp.rejectAll = true;
    let created;
    try {
      created = await invite(to);
    } finally {
      smtp.rejectAll = false;
    }
    expect(created.status).toBe(502);
    expect(created.body).toMatchObject({ statusCode: 502, code: 'email_failed', user: { email: to, state: 'invited' } });
    expect(created.body.messageId).toMatch(/@backoffice-identity>$/);
    expect((await admin.post(`/users/${created.body.user.id}/resend-invite`)).status).toBe(202);
    expect((await smtp.waitFor(to)).subject).toMatch(/invited/);
  });

  it('no token or password ever reaches the database in clear', async () => {
    const to = email();
    await invite(to);
    const { token } = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
    const dump = JSON.stringify(await ctx.app.get(DataSource).query(`SELECT * FROM backoffice_user_token`)) +
      JSON.stringify(await ctx.app.get(DataSource).query(`SELECT * FROM backoffice_audit_entry`));
    expect(dump).not.toContain(token);
  });

  it('OWASP ASVS 5.0 7.5.3: an invite mints a lasting credential (whoever reads the address sets the password, with the groups given), so it needs a recent sign-in; without one nobody is invited', async () => {
    const attacker = email('attacker');
    const invitedBefore = events.named(BackOfficeEvents.Invited).length;
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5): a stolen admin cookie
    try {
      const refused = await admin.post('/users/invite', { email: attacker, name: 'Attacker', groups: ['admin'] });
      expectClientError(refused, 401);
      expect(refused.body).toEqual({ statusCode: 401, code: 'reauthentication_required', message: expect.any(String) });
      expect(await ctx.userManager.findByEmail(attacker)).toBeNull();
      expect(events.named(BackOfficeEvents.Invited)).toHaveLength(invitedBefore);
      await ctx.app.get(BackOfficeBackgroundTasks).drain();
      expect(smtp.messages.some((m) => JSON.stringify(m.to ?? '').includes(attacker)), 'no invite email').toBe(false);
      expect((await admin.post('/auth/reauthenticate', { password })).status).toBe(200);
      const invited = await admin.post('/users/invite', { email: attacker, name: 'Colleague', groups: ['editor'] });
      expect(invited.status, invited.text).toBe(201);
    } finally {
      ctx.clock.advance(-6 * 60_000);
    }
  });
});

describe('The pickup directory (no SMTP_URL): one .eml per message', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'bo-mail-'));
    ctx = await createIdentityApp(db, { identity: { email: { pickupDirectory: dir }, rateLimits: { enabled: false } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the invite and the reset email as .eml files that parse back', async () => {
    await ctx.userManager.createUser({ email: 'pickup-admin@example.com', name: 'Admin', password, groups: ['admin'] });
    const http = new HttpClient(ctx.url);
    await http.login('pickup-admin@example.com', password);
    expect((await http.post('/users/invite', { email: 'pickup-new@example.com', name: 'New', groups: [] })).status).toBe(201);
    await new HttpClient(ctx.url).post('/auth/forgot-password', { email: 'pickup-admin@example.com' });
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    const files = (await readdir(dir)).filter((f) => f.endsWith('.eml')).sort();
    expect(files).toHaveLength(2);
    const parsed = await Promise.all(files.map(async (f) => simpleParser(await readFile(join(dir, f)))));
    const invite = parsed.find((m) => m.subject?.includes('invited'))!;
    expect(invite.to && JSON.stringify(invite.to)).toContain('pickup-new@example.com');
    const { userId, token } = linkParams(invite.text!, 'accept-invite');
    expect((await new HttpClient(ctx.url).post('/auth/invite/accept', { userId, token, password: 'pickup passphrase here' })).status).toBe(200);
    expect(parsed.some((m) => m.subject === 'Reset your back-office password')).toBe(true);
  });
});
