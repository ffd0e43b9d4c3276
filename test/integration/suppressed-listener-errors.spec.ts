import { Injectable, Scope } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { CapturingLogger } from '../support/capturing-logger.js';
import { HttpClient } from '../support/http-client.js';
import { linkParams, TestSmtpServer } from '../support/smtp.js';
import { BackOfficeEvents, SendEmailNotification } from '../../src/backoffice-identity/index.js';

const password = 'correct horse battery staple';

type Mode = 'off' | 'take-over' | 'take-over-then-reject' | 'take-over-then-throw' | 'fail-without-take-over';

/** What a listener does with the email, as a test picks it. */
async function act(mode: Mode, notification: SendEmailNotification): Promise<void> {
  if (mode === 'take-over') notification.handleEmail();
  if (mode === 'take-over-then-reject') {
    // The order handleEmail()'s docs describe: take the email over, then send it; the host's mailer is down.
    notification.handleEmail();
    await new Promise((resolve) => setTimeout(resolve, 5));
    throw new Error('host mailer: SMTP connection refused');
  }
  if (mode === 'take-over-then-throw') {
    notification.handleEmail();
    throw new Error('host mailer: not configured');
  }
  if (mode === 'fail-without-take-over') throw new Error('a listener that only looks, and fails');
}

/** Nest's default: `@OnEvent()` without options, so `suppressErrors` is true and `@nestjs/event-emitter` swallows the error. */
@Injectable()
class DefaultOptionsMailer {
  static mode: Mode = 'off';
  @OnEvent(BackOfficeEvents.SendEmail)
  async onSendEmail(notification: SendEmailNotification) {
    // Through `this`: the module's guard calls the method on its own instance.
    await this.send(notification);
  }
  private send(notification: SendEmailNotification) {
    return act(DefaultOptionsMailer.mode, notification);
  }
}

/** `suppressErrors: true` written out, on a wildcard pattern (the test apps' emitter has `wildcard: true`). */
@Injectable()
class SuppressingMailer {
  static mode: Mode = 'off';
  @OnEvent('backoffice.email.*', { suppressErrors: true })
  onSendEmail(notification: SendEmailNotification) {
    return act(SuppressingMailer.mode, notification);
  }
}

/** A request-scoped listener: `@nestjs/event-emitter` makes a new instance per event, which the module cannot guard. */
@Injectable({ scope: Scope.REQUEST })
class RequestScopedMailer {
  @OnEvent(BackOfficeEvents.SendEmail)
  onSendEmail(_notification: SendEmailNotification) {}
}

describe('Email take-over listeners under @nestjs/event-emitter\'s default suppressErrors: a failure after handleEmail() reaches the module', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const logger = new CapturingLogger();
  let counter = 0;
  const email = (tag: string) => `${tag}${++counter}@example.com`;
  const mailsTo = (to: string) => smtp.messages.filter((m) => JSON.stringify(m.to).toLowerCase().includes(to.toLowerCase()));
  const invite = (to: string) => admin.post('/users/invite', { email: to, name: 'New Editor', groups: ['editor'] });

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await new TestSmtpServer().start();
    ctx = await createIdentityApp(db, {
      identity: { email: { smtpUrl: smtp.url }, rateLimits: { enabled: false }, publicUrl: 'https://cms.example.com' },
      providers: [DefaultOptionsMailer, SuppressingMailer],
      logger,
    });
    await ctx.userManager.createUser({ email: 'root@example.com', name: 'Root Admin', password, groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login('root@example.com', password)).status).toBe(200);
  });
  afterEach(() => {
    DefaultOptionsMailer.mode = 'off';
    SuppressingMailer.mode = 'off';
  });
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 2.5.x: an invite whose take-over listener (@OnEvent with no options) rejects after handleEmail() answers 502 email_failed, not 201; nothing was sent, and a resend sends the link', async () => {
    DefaultOptionsMailer.mode = 'take-over-then-reject';
    const to = email('defaultreject');
    const created = await invite(to);
    expect(created.status, created.text).toBe(502);
    expect(created.body).toMatchObject({ code: 'email_failed', user: { email: to, state: 'invited' } });
    expect(mailsTo(to)).toHaveLength(0);
    // Nest's own log line is still there: the module does not take the host's suppressErrors away.
    expect(logger.lines.some((line) => line.includes('host mailer: SMTP connection refused'))).toBe(true);
    DefaultOptionsMailer.mode = 'off';
    const resent = await admin.post(`/users/${created.body.user.id}/resend-invite`);
    expect(resent.status, resent.text).toBe(202);
    const link = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
    const accepted = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: link.userId, token: link.token, password: 'the invitee own passphrase' });
    expect(accepted.status, accepted.text).toBe(200);
  });

  it('OWASP ASVS 4.0 2.5.x: a synchronous throw after handleEmail() in a default-options listener: 502 email_failed', async () => {
    DefaultOptionsMailer.mode = 'take-over-then-throw';
    const to = email('defaultthrow');
    const created = await invite(to);
    expect(created.status, created.text).toBe(502);
    expect(created.body).toMatchObject({ code: 'email_failed' });
    expect(mailsTo(to)).toHaveLength(0);
  });

  it('OWASP ASVS 4.0 2.5.x: suppressErrors: true written out (on a wildcard pattern): a failed take-over still answers 502 email_failed', async () => {
    SuppressingMailer.mode = 'take-over-then-reject';
    const to = email('explicitsuppress');
    const created = await invite(to);
    expect(created.status, created.text).toBe(502);
    expect(created.body).toMatchObject({ code: 'email_failed' });
  });

  it('a resend-invite whose take-over fails under the default keeps the previous link working (502)', async () => {
    const to = email('resendkeep');
    const created = await invite(to);
    expect(created.status, created.text).toBe(201);
    const link = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
    DefaultOptionsMailer.mode = 'take-over-then-reject';
    const failed = await admin.post(`/users/${created.body.user.id}/resend-invite`);
    expect(failed.status, failed.text).toBe(502);
    expect(failed.body).toMatchObject({ code: 'email_failed' });
    DefaultOptionsMailer.mode = 'off';
    const accepted = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: link.userId, token: link.token, password: 'the invitee own passphrase' });
    expect(accepted.status, accepted.text).toBe(200);
  });

  it('a take-over that succeeds still counts as delivered (201, the module sends nothing), also when another take-over listener failed', async () => {
    DefaultOptionsMailer.mode = 'take-over';
    const to = email('takeoverok');
    const created = await invite(to);
    expect(created.status, created.text).toBe(201);
    SuppressingMailer.mode = 'take-over-then-reject';
    const to2 = email('onefailed');
    const second = await invite(to2);
    expect(second.status, second.text).toBe(201);
    expect(mailsTo(to)).toHaveLength(0);
    expect(mailsTo(to2)).toHaveLength(0);
  });

  it('a listener that fails without taking the email over changes nothing: 201 and the module sends the invite', async () => {
    DefaultOptionsMailer.mode = 'fail-without-take-over';
    const to = email('looker');
    const created = await invite(to);
    expect(created.status, created.text).toBe(201);
    expect(linkParams((await smtp.waitFor(to)).text!, 'accept-invite').userId).toBe(created.body.user.id);
  });
});

/** Listeners the module leaves as they are: another event, and a take-over listener whose errors reach the module. */
@Injectable()
class OtherListeners {
  @OnEvent('host.order.placed')
  onOrder() {}
  @OnEvent(BackOfficeEvents.SendEmail, { suppressErrors: false })
  onSendEmail() {}
}

describe('Email take-over listeners at start-up: which the module guards, which it names in a warning', () => {
  it('a singleton listener is guarded on its instance, other listeners are not touched; a request-scoped SendEmailNotification listener without suppressErrors: false is named in a warning', async () => {
    const db = await createTestDatabase();
    const logger = new CapturingLogger();
    const ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [RequestScopedMailer, DefaultOptionsMailer, OtherListeners], logger });
    try {
      // The guard sits on the instance; the host's class is left as it is, and so are listeners it has no reason to guard.
      expect(Object.hasOwn(ctx.app.get(DefaultOptionsMailer), 'onSendEmail')).toBe(true);
      expect(DefaultOptionsMailer.prototype.onSendEmail.name).toBe('onSendEmail');
      expect(Object.hasOwn(ctx.app.get(OtherListeners), 'onOrder')).toBe(false);
      expect(Object.hasOwn(ctx.app.get(OtherListeners), 'onSendEmail')).toBe(false);
      const warnings = logger.lines.filter((line) => line.includes('suppressErrors'));
      expect(warnings.some((line) => line.includes('RequestScopedMailer.onSendEmail'))).toBe(true);
      // The singleton one is guarded: no warning for it.
      expect(warnings.some((line) => line.includes('DefaultOptionsMailer') || line.includes('OtherListeners'))).toBe(false);
    } finally {
      await ctx.close();
      await db.drop();
    }
  });
});

/** Takes over every event of an emitter with `delimiter: ':'` (there `backoffice.email.send` is one segment, matched by `*`). */
@Injectable()
class ColonDelimiterMailer {
  static mode: Mode = 'off';
  @OnEvent('*')
  onAnything(notification: unknown) {
    return notification instanceof SendEmailNotification ? act(ColonDelimiterMailer.mode, notification) : undefined;
  }
}

describe('Email take-over guard: the host emitter\'s delimiter, and the class\'s method looked up at each call', () => {
  it('with EventEmitterModule.forRoot({ wildcard: true, delimiter: ":" }) an @OnEvent("*") listener that takes the invite over and fails is guarded (502 email_failed); a spy set on the class after start-up sees the call', async () => {
    const db = await createTestDatabase();
    const ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, publicUrl: 'https://cms.example.com' },
      providers: [ColonDelimiterMailer],
      eventEmitter: { wildcard: true, delimiter: ':' },
      logger: new CapturingLogger(),
    });
    const spy = vi.spyOn(ColonDelimiterMailer.prototype, 'onAnything');
    try {
      await ctx.userManager.createUser({ email: 'root@example.com', name: 'Root Admin', password, groups: ['admin'] });
      const admin = new HttpClient(ctx.url);
      expect((await admin.login('root@example.com', password)).status).toBe(200);
      ColonDelimiterMailer.mode = 'take-over-then-reject';
      const created = await admin.post('/users/invite', { email: 'colon@example.com', name: 'New Editor', groups: ['editor'] });
      expect(created.status, created.text).toBe(502);
      expect(created.body).toMatchObject({ code: 'email_failed' });
      expect(spy.mock.calls.some(([notification]) => notification instanceof SendEmailNotification)).toBe(true);
    } finally {
      spy.mockRestore();
      ColonDelimiterMailer.mode = 'off';
      await ctx.close();
      await db.drop();
    }
  });
});
