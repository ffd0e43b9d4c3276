import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { CapturingLogger } from '../support/capturing-logger.js';
import { HttpClient } from '../support/http-client.js';
import { linkParams, TestSmtpServer } from '../support/smtp.js';
import { within } from '../support/within.js';
import {
  BackOfficeBackgroundTasks,
  BackOfficeEmailDispatcher,
  BackOfficeEvents,
  SendEmailNotification,
  type BackOfficeIdentityModuleOptions,
} from '../../src/backoffice-identity/index.js';

const password = 'correct horse battery staple';

/**
 * A listener whose behaviour a test picks. `suppressErrors: false`: its failures reach the module's publisher (with
 * Nest's default, `@nestjs/event-emitter` logs `error.message` itself, outside the module's reach).
 */
@Injectable()
class EmailListener {
  static mode: 'off' | 'hang' | 'late-handle' | 'throw-with-link' | 'take-over-then-fail' | 'rewrite' = 'off';
  static release: (() => void) | null = null;
  @OnEvent(BackOfficeEvents.SendEmail, { suppressErrors: false })
  async handle(notification: SendEmailNotification) {
    if (EmailListener.mode === 'hang') await new Promise<void>((resolve) => (EmailListener.release = resolve));
    if (EmailListener.mode === 'throw-with-link') throw new Error(`identity provider refused the invite: ${notification.message.text}`);
    if (EmailListener.mode === 'rewrite') {
      // A listener that only meant to look (or was turned against the module): it writes to the message it was handed.
      Object.assign(notification.message, { to: 'attacker@evil.example', text: notification.message.text.replace(/token=[^&\s]+/, 'token=[masked]') });
    }
    if (EmailListener.mode === 'take-over-then-fail') {
      // handleEmail() first, then the listener's own send (the order handleEmail()'s JSDoc describes), which fails.
      notification.handleEmail();
      await new Promise((resolve) => setTimeout(resolve, 10));
      throw new Error('identity provider unreachable');
    }
    if (EmailListener.mode === 'late-handle') {
      await new Promise<void>((resolve) => (EmailListener.release = resolve));
      notification.handleEmail();
    }
  }
}

/**
 * Registers the hooks of a suite's app: a real SMTP relay in this process, the {@link EmailListener}, the root admin
 * signed in (handed to `started`); after each test the relay and the listener behave normally again.
 */
function emailApp(
  started: (app: { smtp: TestSmtpServer; ctx: IdentityApp; admin: HttpClient }) => void,
  { email, logger }: { email?: Omit<NonNullable<BackOfficeIdentityModuleOptions['email']>, 'smtpUrl'>; logger?: CapturingLogger } = {},
): void {
  let db: TestDatabase | undefined;
  let smtp: TestSmtpServer | undefined;
  let ctx: IdentityApp | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await new TestSmtpServer().start();
    ctx = await createIdentityApp(db, {
      identity: { email: { smtpUrl: smtp.url, ...email }, rateLimits: { enabled: false }, publicUrl: 'https://cms.example.com' },
      providers: [EmailListener],
      logger,
    });
    await ctx.userManager.createUser({ email: 'root@example.com', name: 'Root Admin', password, groups: ['admin'] });
    const admin = new HttpClient(ctx.url);
    expect((await admin.login('root@example.com', password)).status).toBe(200);
    started({ smtp, ctx, admin });
  });
  afterEach(() => {
    EmailListener.mode = 'off';
    EmailListener.release?.();
    EmailListener.release = null;
    Object.assign(smtp!, { rejectAll: false, rejectIf: null, hang: false, rejectQuoting: false });
  });
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await db?.drop();
  });
}

describe('Email delivery failures: invites, resets and email changes keep an honest state', () => {
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  let admin: HttpClient;
  emailApp((app) => ({ smtp, ctx, admin } = app));
  let counter = 0;
  const email = (tag = 'dlv') => `${tag}${++counter}@example.com`;
  const mailsTo = (to: string) => smtp.messages.filter((m) => JSON.stringify(m.to).toLowerCase().includes(to.toLowerCase()));

  async function invite(to: string) {
    const created = await admin.post('/users/invite', { email: to, name: 'New Editor', groups: ['editor'] });
    expect(created.status, created.text).toBe(201);
    return { id: created.body.user.id as string, link: linkParams((await smtp.waitFor(to)).text!, 'accept-invite') };
  }

  const accept = (link: { userId: string; token: string }) =>
    new HttpClient(ctx.url).post('/auth/invite/accept', { userId: link.userId, token: link.token, password: 'the invitee own passphrase' });

  it('OWASP ASVS 4.0 2.5.x: a resend-invite whose email the SMTP server refuses answers 502 and leaves the previous link working', async () => {
    const to = email('resendfail');
    const { id, link } = await invite(to);
    smtp.rejectAll = true;
    const resent = await admin.post(`/users/${id}/resend-invite`);
    smtp.rejectAll = false;
    expect(resent.status, resent.text).toBe(502);
    expect(resent.body).toMatchObject({ code: 'email_failed', user: { id, state: 'invited' } });
    const accepted = await accept(link);
    expect(accepted.status, accepted.text).toBe(200);
  });

  it('OWASP ASVS 4.0 2.5.x: a listener that took the invite over (handleEmail()) and then failed: the invite answers 502 email_failed, a resend too, and the previous link keeps working', async () => {
    EmailListener.mode = 'take-over-then-fail';
    const to = email('takeoverfail');
    const created = await admin.post('/users/invite', { email: to, name: 'New Editor', groups: ['editor'] });
    expect(created.status, created.text).toBe(502);
    expect(created.body).toMatchObject({ code: 'email_failed', user: { email: to, state: 'invited' } });
    EmailListener.mode = 'off';
    const resent = await admin.post(`/users/${created.body.user.id}/resend-invite`);
    expect(resent.status, resent.text).toBe(202);
    const link = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
    EmailListener.mode = 'take-over-then-fail';
    const failed = await admin.post(`/users/${created.body.user.id}/resend-invite`);
    expect(failed.status, failed.text).toBe(502);
    expect(failed.body).toMatchObject({ code: 'email_failed', user: { id: created.body.user.id, state: 'invited' } });
    expect((await accept(link)).status).toBe(200);
  });

  it('OWASP ASVS 4.0 2.5.x: a listener that writes to the message it was handed (recipient, text) changes nothing: the email goes to the user\'s address with its live link, nothing to the other address', async () => {
    EmailListener.mode = 'rewrite';
    const to = email('rewrite');
    const created = await admin.post('/users/invite', { email: to, name: 'New Editor', groups: ['editor'] });
    expect(created.status, created.text).toBe(201);
    const link = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
    expect(mailsTo('attacker@evil.example')).toHaveLength(0);
    EmailListener.mode = 'off';
    expect((await accept(link)).status).toBe(200);
  });

  it('a resend whose email went out voids the previous link (exactly one live link)', async () => {
    const to = email('resendok');
    const { id, link: first } = await invite(to);
    expect((await admin.post(`/users/${id}/resend-invite`)).status).toBe(202);
    await vi.waitUntil(() => mailsTo(to).length === 2, { timeout: 5000 });
    const second = linkParams(mailsTo(to)[1].text!, 'accept-invite');
    expect((await accept(first)).body.code).toBe('invalid_token');
    expect((await accept(second)).status).toBe(200);
  });

  it('OWASP ASVS 4.0 2.5.x: 8 concurrent resends, some refused by the SMTP server: exactly one of the delivered links works', async () => {
    const to = email('resendrace');
    const { id, link: first } = await invite(to);
    let seen = 0;
    smtp.rejectIf = () => ++seen % 2 === 0;
    const results = await Promise.all(Array.from({ length: 8 }, () => admin.post(`/users/${id}/resend-invite`)));
    smtp.rejectIf = null;
    expect(results.filter((r) => r.status === 202)).toHaveLength(4);
    expect(results.filter((r) => r.status === 502)).toHaveLength(4);
    await vi.waitUntil(() => mailsTo(to).length === 5, { timeout: 5000 });
    const links = [first, ...mailsTo(to).slice(1).map((m) => linkParams(m.text!, 'accept-invite'))];
    const live: string[] = [];
    for (const l of links) if (await ctx.userManager.verifyUserToken((await ctx.userManager.findById(id))!, 'invite', l.token)) live.push(l.token);
    expect(live).toHaveLength(1);
    expect(live[0]).not.toBe(first.token);
  });

  it('OWASP ASVS 4.0 2.5.x: a forgot-password email the relay refuses leaves the previous reset link working', async () => {
    const to = email('reset');
    await ctx.userManager.createUser({ email: to, name: 'Forgetful', password, groups: ['editor'] });
    const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: to })).status).toBe(202);
    await drain();
    const first = linkParams((await smtp.waitFor(to)).text!, 'reset-password');
    smtp.rejectAll = true;
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: to })).status).toBe(202);
    await drain();
    smtp.rejectAll = false;
    const reset = await new HttpClient(ctx.url).post('/auth/reset-password', { userId: first.userId, token: first.token, newPassword: 'a brand new passphrase' });
    expect(reset.status, reset.text).toBe(200);
  });

  it('OWASP ASVS 4.0 2.2.3: when the new address refuses the confirmation link, the old address still gets the email-change notice', async () => {
    const old = email('chg');
    await ctx.userManager.createUser({ email: old, name: 'Changing Address', password, groups: ['editor'] });
    const me = new HttpClient(ctx.url);
    expect((await me.login(old, password)).status).toBe(200);
    const target = email('refusing');
    smtp.rejectIf = (recipients) => recipients.includes(target);
    expect((await me.post('/auth/me/email', { newEmail: target })).status).toBe(202);
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    expect(mailsTo(target)).toHaveLength(0);
    expect(mailsTo(old).map((m) => m.subject)).toEqual(['Your back-office email address is being changed']);
  });

  /** A signed-in user with a pending email change to a new address, whose link was delivered. */
  async function pendingEmailChange(tag: string) {
    const old = email(tag);
    await ctx.userManager.createUser({ email: old, name: 'Moving House', password, groups: ['editor'] });
    const me = new HttpClient(ctx.url);
    expect((await me.login(old, password)).status).toBe(200);
    const pending = email(`${tag}-pending`);
    expect((await me.post('/auth/me/email', { newEmail: pending })).status).toBe(202);
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    const link = linkParams((await smtp.waitFor(pending)).text!, 'confirm-email');
    return { id: link.userId, old, me, pending, link };
  }
  const liveEmailChangeLinks = async (id: string, links: Array<{ token: string }>) => {
    const user = (await ctx.userManager.findById(id))!;
    const live: string[] = [];
    for (const l of links) if (await ctx.userManager.verifyUserToken(user, 'change_email', l.token)) live.push(l.token);
    return live;
  };

  it('OWASP ASVS 4.0 2.5.x: a new email change whose confirmation the relay refuses leaves the pending link working', async () => {
    const { id, old, me, pending, link } = await pendingEmailChange('chgkeep');
    const refused = email('chgkeep-refused');
    smtp.rejectIf = (recipients) => recipients.includes(refused);
    expect((await me.post('/auth/me/email', { newEmail: refused })).status).toBe(202);
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    smtp.rejectIf = null;
    expect(mailsTo(refused)).toHaveLength(0);
    expect(mailsTo(old)).toHaveLength(2); // the notice of each attempt
    const confirmed = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: link.userId, token: link.token });
    expect(confirmed.status, confirmed.text).toBe(200);
    expect((await ctx.userManager.findById(id))!.email).toBe(pending);
  });

  it('a new email change whose confirmation went out voids the pending link (exactly one live link: the new one)', async () => {
    const { id, me, link } = await pendingEmailChange('chgswap');
    const next = email('chgswap-next');
    expect((await me.post('/auth/me/email', { newEmail: next })).status).toBe(202);
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    const second = linkParams((await smtp.waitFor(next)).text!, 'confirm-email');
    expect(await liveEmailChangeLinks(id, [link, second])).toEqual([second.token]);
    expect((await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: link.userId, token: link.token })).body.code).toBe('invalid_token');
    const confirmed = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: second.userId, token: second.token });
    expect(confirmed.status, confirmed.text).toBe(200);
    expect((await ctx.userManager.findById(id))!.email).toBe(next);
  });

  it('OWASP ASVS 4.0 2.5.x: 8 concurrent email changes, half refused by the relay: exactly one of the delivered links works', async () => {
    const { id, me, link } = await pendingEmailChange('chgrace');
    const targets = Array.from({ length: 8 }, () => email('chgrace-to'));
    let seen = 0;
    smtp.rejectIf = (recipients) => targets.some((t) => recipients.includes(t)) && ++seen % 2 === 0;
    const answers = await Promise.all(targets.map((newEmail) => me.post('/auth/me/email', { newEmail })));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(202));
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    smtp.rejectIf = null;
    const delivered = targets.flatMap((t) => mailsTo(t)).map((m) => linkParams(m.text!, 'confirm-email'));
    expect(delivered).toHaveLength(4);
    const live = await liveEmailChangeLinks(id, [link, ...delivered]);
    expect(live).toHaveLength(1);
    expect(live[0]).not.toBe(link.token);
  });
});

describe('Email time limits: a hanging mail relay or SendEmailNotification listener never hangs a request', () => {
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const logger = new CapturingLogger();
  emailApp((app) => ({ smtp, ctx, admin } = app), { email: { sendTimeoutMs: 1000, listenerTimeoutMs: 1000 }, logger });
  let counter = 0;
  const email = (tag = 'lim') => `${tag}${++counter}@example.com`;
  const tokensIn = (text: string) => [...text.matchAll(/token=([^&\s]+)/g)].map((m) => decodeURIComponent(m[1]));

  it('a mail relay that never answers DATA: the invite answers 502 email_failed within the time limit, the log says so and holds no token', async () => {
    const to = email('hang');
    smtp.hang = true;
    const started = Date.now();
    const created = await within(admin.post('/users/invite', { email: to, name: 'Hung Relay', groups: ['editor'] }), 8000);
    expect(created, 'the invite request is still pending after 8 s').not.toBe('still pending');
    if (created === 'still pending') return;
    expect(created.status, created.text).toBe(502);
    expect(created.body).toMatchObject({ code: 'email_failed', user: { email: to, state: 'invited' } });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(logger.lines.join('\n')).toMatch(/timed out after 1000 ms/);
    const user = (await ctx.userManager.findByEmail(to))!;
    smtp.hang = false;
    expect((await admin.post(`/users/${user.id}/resend-invite`)).status).toBe(202);
    const { token } = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
    expect(logger.lines.join('\n')).not.toContain(token);
  });

  it('OWASP ASVS 4.0 2.5.x: a resend through a relay that never answers answers 502 and the previous link still works', async () => {
    const to = email('hangresend');
    const created = await admin.post('/users/invite', { email: to, name: 'Hung Resend', groups: ['editor'] });
    expect(created.status).toBe(201);
    const first = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
    smtp.hang = true;
    const resent = await within(admin.post(`/users/${created.body.user.id}/resend-invite`), 8000);
    expect(resent, 'the resend is still pending after 8 s').not.toBe('still pending');
    if (resent === 'still pending') return;
    expect(resent.status).toBe(502);
    smtp.hang = false;
    const accepted = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: first.userId, token: first.token, password: 'the invitee own passphrase' });
    expect(accepted.status, accepted.text).toBe(200);
  });

  it('forgot-password through a relay that never answers: the background task ends (shutdown is not blocked)', async () => {
    const to = email('hangreset');
    await ctx.userManager.createUser({ email: to, name: 'Reset Me', password, groups: ['editor'] });
    smtp.hang = true;
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: to })).status).toBe(202);
    expect(await within(ctx.app.get(BackOfficeBackgroundTasks).drain(), 8000)).not.toBe('still pending');
  });

  it('a SendEmailNotification listener that never settles: the invite is sent by the default sender within the time limit, and a late handleEmail() changes nothing', async () => {
    const to = email('hanglistener');
    EmailListener.mode = 'late-handle';
    const created = await within(admin.post('/users/invite', { email: to, name: 'Hung Listener', groups: ['editor'] }), 8000);
    expect(created, 'the invite request is still pending after 8 s').not.toBe('still pending');
    if (created === 'still pending') return;
    expect(created.status, created.text).toBe(201);
    const mail = await smtp.waitFor(to);
    EmailListener.release?.(); // the listener now calls handleEmail(), too late
    await new Promise((r) => setTimeout(r, 100));
    const log = logger.lines.join('\n');
    expect(log).toMatch(/did not finish within 1000 ms/);
    for (const token of tokensIn(mail.text!)) expect(log).not.toContain(token);
    expect(log).toMatch(/handleEmail\(\) on a UserInvite email came after/);
    const audit = await admin.get(`/audit?event=${BackOfficeEvents.SendEmail}&userId=${created.body.user.id}`);
    expect(audit.body.items.map((e: { details: unknown }) => e.details)).toEqual([{ emailType: 'UserInvite', handled: false }]);
  });

  it('OWASP ASVS 4.0 7.1.1: a listener that fails with the email (and its link) in its error message: the log keeps the failure, not the token', async () => {
    const to = email('throwlink');
    EmailListener.mode = 'throw-with-link';
    const created = await admin.post('/users/invite', { email: to, name: 'Leaky Listener', groups: ['editor'] });
    expect(created.status, created.text).toBe(201);
    const mail = await smtp.waitFor(to);
    const log = logger.lines.join('\n');
    expect(log).toMatch(/A listener of backoffice.email.send failed: identity provider refused the invite/);
    const tokens = tokensIn(mail.text!);
    expect(tokens).toHaveLength(1);
    expect(log).not.toContain(tokens[0]);
  });
  it('OWASP ASVS 4.0 7.1.1: a relay that refuses the message quoting it (550 with its text): no log line holds the token', async () => {
    const to = email('quote');
    smtp.rejectQuoting = true;
    const before = logger.lines.length;
    const created = await admin.post('/users/invite', { email: to, name: 'Quoting Relay', groups: ['editor'] });
    expect(created.status, created.text).toBe(502);
    const quoted = smtp.quoted.at(-1)!;
    const tokens = tokensIn(quoted);
    expect(tokens).toHaveLength(1);
    const log = logger.lines.slice(before).join('\n');
    expect(log).toMatch(/UserInvite/);
    expect(log).not.toContain(tokens[0]);
  });

  it('the error a refused message rejects with holds no token either (message, stack), nor does the log, wherever the token appears in the text', async () => {
    smtp.rejectQuoting = true;
    const dispatcher = ctx.app.get(BackOfficeEmailDispatcher);
    const user = (await ctx.userManager.findByEmail('root@example.com'))!;
    const secret = 'Zq3kLw9VbN2xR7tY5uPa8sDf4gHj6';
    const message = {
      to: 'root@example.com',
      subject: 'Your code',
      text: `Your one-time code is ${secret}. Or open https://cms.example.com/backoffice/confirm?code=${secret}`,
      html: `<p>Your one-time code is <b>${secret}</b>.</p>`,
    };
    const linkToken = 'Lk8mN3bV6cX9zQ2wE5rT7yU4iO1pA';
    const linked = { ...message, text: `Open https://cms.example.com/backoffice/reset-password#userId=${user.id}&token=${linkToken}`, html: '' };
    const linkError = (await dispatcher.dispatch('Custom', linked, user).then(() => undefined, (e: unknown) => e)) as Error;
    expect(smtp.quoted.at(-1)).toContain(linkToken);
    expect(linkError.message).not.toContain(linkToken);
    expect(String(linkError.stack)).not.toContain(linkToken);
    const before = logger.lines.length;
    const error = (await dispatcher.dispatch('Custom', message, user, [secret]).then(() => undefined, (e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(smtp.quoted.at(-1)).toContain(secret);
    expect(error.message).toMatch(/content rejected/);
    expect(error.message).not.toContain(secret);
    expect(String(error.stack)).not.toContain(secret);
    expect(JSON.stringify(error)).not.toContain(secret);
    expect(logger.lines.slice(before).join('\n')).not.toContain(secret);
  });
});
