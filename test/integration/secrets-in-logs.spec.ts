import { CapturingLogger } from '../support/capturing-logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { linkParams, TestSmtpServer } from '../support/smtp.js';
import { inspect } from 'node:util';
import { BackOfficeBackgroundTasks, BackOfficeSessionService, type BackOfficeUser } from '../../src/backoffice-identity/index.js';

describe('ASVS 7.1.1: secrets never reach the logs', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  const logger = new CapturingLogger();
  const password = 'correct horse battery staple';
  const secrets: string[] = [password];

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await new TestSmtpServer().start();
    ctx = await createIdentityApp(db, { logger, identity: { email: { smtpUrl: smtp.url }, rateLimits: { enabled: false } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await db?.drop();
  });

  it('session tokens, passwords, invite and reset tokens appear in no log line, not even on failures', async () => {
    await ctx.userManager.createUser({ email: 'logs-admin@example.com', name: 'Admin', password, groups: ['admin'] });
    const admin = new HttpClient(ctx.url);
    await admin.login('logs-admin@example.com', password);
    secrets.push(admin.cookies.get('backoffice_session')!, admin.cookies.get('XSRF-TOKEN')!);
    await new HttpClient(ctx.url).login('logs-admin@example.com', 'a wrong password that must not be logged');
    secrets.push('a wrong password that must not be logged');

    await admin.post('/users/invite', { email: 'logs-new@example.com', name: 'New', groups: [] });
    const invite = linkParams((await smtp.waitFor('logs-new@example.com')).text!, 'accept-invite');
    secrets.push(invite.token);
    await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: invite.userId, token: invite.token, password: 'the invitee passphrase' });
    secrets.push('the invitee passphrase');

    smtp.rejectAll = true;
    await admin.post('/users/invite', { email: 'logs-fail@example.com', name: 'Fail', groups: [] }); // logged failure
    await new HttpClient(ctx.url).post('/auth/forgot-password', { email: 'logs-admin@example.com' });
    await ctx.app.get(BackOfficeBackgroundTasks).drain(); // its delivery fails and is logged
    smtp.rejectAll = false;
    await new HttpClient(ctx.url).post('/auth/forgot-password', { email: 'logs-admin@example.com' });
    const reset = linkParams((await smtp.waitFor('logs-admin@example.com')).text!, 'reset-password');
    secrets.push(reset.token);
    await new HttpClient(ctx.url).post('/auth/reset-password', { userId: reset.userId, token: reset.token, newPassword: 'the reset passphrase' });
    secrets.push('the reset passphrase');

    const all = logger.lines.join('\n');
    expect(logger.lines.some((l) => /could not send/i.test(l))).toBe(true); // failures were logged...
    for (const secret of secrets) expect(all).not.toContain(secret); // ...without any secret
  });

  it('ASVS 5.0 16.2.5 / 4.0 7.1.1: a user the host gets from the manager or the session, logged or serialized, shows no password hash or security stamp', async () => {
    const created = (await ctx.userManager.createUser({ email: 'logs-user@example.com', name: 'Logged', password })).value!;
    const client = new HttpClient(ctx.url);
    await client.login('logs-user@example.com', password);
    const signedIn = await ctx.app.get(BackOfficeSessionService).authenticate(client.cookies.get('backoffice_session'), { touch: false });
    const users: BackOfficeUser[] = [
      created,
      (await ctx.userManager.findById(created.id))!,
      (await ctx.userManager.findByEmail('logs-user@example.com'))!,
      signedIn!.user, // what request.backOffice.user holds
    ];
    for (const user of users) {
      expect(user.passwordHash).toMatch(/\$2[aby]\$/); // property access still reads the bcrypt hash
      for (const line of [JSON.stringify(user), inspect(user), JSON.stringify({ user }), inspect({ backOffice: { user } }, { depth: 4 })]) {
        expect(line).toContain('logs-user@example.com');
        expect(line).not.toContain(user.passwordHash!);
        expect(line).not.toContain(user.securityStamp);
      }
    }
  });
});
