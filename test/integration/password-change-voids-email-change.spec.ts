import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import { Mailbox } from '../support/mailbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { linkParams } from '../support/smtp.js';

describe('OWASP ASVS 4.0 V2.5 / 3.3.3: a password change or reset voids a pending email-change link', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'pwvoid');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  const lastMail = (to: string, type: string) => Mailbox.messages.filter((m) => m.to === to && m.type === type).at(-1)!;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('an email-change link the attacker requested before the owner reset the password stops working', async () => {
    const user = await make({ email: 'pwvoid-owner@example.com' });
    // An attacker who knows the password signs in and moves the account to a mailbox they control.
    const attacker = new HttpClient(ctx.url);
    expect((await attacker.login(user.email, TEST_PASSWORD)).status).toBe(200);
    expect((await attacker.post('/auth/me/email', { newEmail: 'pwvoid-attacker@evil.example' })).status).toBe(202);
    await drain();
    const confirm = linkParams(lastMail('pwvoid-attacker@evil.example', 'EmailChangeConfirm').text, 'confirm-email');
    // The owner gets the "email change requested" notice and recovers the account: forgot-password + reset.
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: 'pwvoid-owner@example.com' })).status).toBe(202);
    await drain();
    const reset = linkParams(lastMail('pwvoid-owner@example.com', 'PasswordReset').text, 'reset-password');
    expect((await new HttpClient(ctx.url).post('/auth/reset-password', { userId: reset.userId, token: reset.token, newPassword: 'the owner takes it back 77' })).status).toBe(200);
    expect((await attacker.get('/auth/me')).status).toBe(401); // sessions ended, as documented
    // The attacker's pending link must have died with the recovery (new security stamp).
    const confirmed = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: confirm.userId, token: confirm.token });
    expect(confirmed.status).toBe(400);
    expect((await ctx.userManager.findById(user.id))!.email).toBe('pwvoid-owner@example.com');
  });

  it('the same after the owner changes the password (the other sessions end, the link does not)', async () => {
    const user = await make({ email: 'pwvoid-owner2@example.com' });
    const attacker = new HttpClient(ctx.url);
    expect((await attacker.login(user.email, TEST_PASSWORD)).status).toBe(200);
    expect((await attacker.post('/auth/me/email', { newEmail: 'pwvoid-attacker2@evil.example' })).status).toBe(202);
    await drain();
    const confirm = linkParams(lastMail('pwvoid-attacker2@evil.example', 'EmailChangeConfirm').text, 'confirm-email');
    const owner = new HttpClient(ctx.url);
    expect((await owner.login(user.email, TEST_PASSWORD)).status).toBe(200);
    expect((await owner.post('/auth/change-password', { currentPassword: TEST_PASSWORD, newPassword: 'owner locks the attacker out 88' })).status).toBe(200);
    expect((await attacker.get('/auth/me')).status).toBe(401);
    const confirmed = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: confirm.userId, token: confirm.token });
    expect(confirmed.status).toBe(400);
  });
});
