import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import { Mailbox } from '../support/mailbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { linkParams } from '../support/smtp.js';

/**
 * An email change moves the account away from a mailbox that may no longer be the owner's: links already mailed
 * there (password reset, invite) must die with the change, as ASP.NET Identity's tokens die with the security
 * stamp, and the user's sessions end. Both ways to change an email: the user's confirmed request and an admin's
 * `PUT /users/:id`. OWASP ASVS 4.0 2.5.6 (recovery links reach only the account's owner), 2.5.1 (single-use,
 * short-lived recovery secrets), 3.3.x (sessions end when the account's identity changes).
 */
describe('An email change voids the reset and invite links mailed to the old address', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'rsem');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  const lastMail = (to: string, type: string) => Mailbox.messages.filter((m) => m.to === to && m.type === type).at(-1)!;

  /** Someone with the old mailbox asks for a reset link (the owner may not even notice). */
  async function resetLinkFor(email: string) {
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email })).status).toBe(202);
    await drain();
    return linkParams(lastMail(email, 'PasswordReset').text, 'reset-password');
  }

  const resetWith = (link: { userId: string; token: string }, newPassword: string) =>
    new HttpClient(ctx.url).post('/auth/reset-password', { userId: link.userId, token: link.token, newPassword });

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
    const boss = await make({ groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('after POST /auth/me/email/confirm, the reset link sent to the old address is invalid_token; a new one works', async () => {
    const user = await make({ email: 'old-mailbox@example.com' });
    const stale = await resetLinkFor('old-mailbox@example.com');

    // The owner moves the account to a new address.
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    expect((await http.post('/auth/me/email', { newEmail: 'new-mailbox@example.com' })).status).toBe(202);
    await drain();
    const confirm = linkParams(lastMail('new-mailbox@example.com', 'EmailChangeConfirm').text, 'confirm-email');
    expect((await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: confirm.userId, token: confirm.token })).status).toBe(200);
    expect((await http.get('/auth/me')).status).toBe(401);

    const reset = await resetWith(stale, 'the old mailbox owner wins');
    expect(reset.status).toBe(400);
    expect(reset.body.code).toBe('invalid_token');
    expect((await new HttpClient(ctx.url).login('new-mailbox@example.com', 'the old mailbox owner wins')).status).toBe(401);
    expect((await new HttpClient(ctx.url).login('new-mailbox@example.com', TEST_PASSWORD)).status).toBe(200);

    // A link asked for after the change (to the new address) works as usual.
    const fresh = await resetLinkFor('new-mailbox@example.com');
    expect((await resetWith(fresh, 'the real owner resets it')).status).toBe(200);
  });

  it('an admin email change (PUT /users/:id) voids the old reset link, renews the security stamp and ends the user\'s sessions', async () => {
    const user = await make({ email: 'admin-moves-me@example.com' });
    const stale = await resetLinkFor('admin-moves-me@example.com');
    const session = new HttpClient(ctx.url);
    expect((await session.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const stampBefore = (await ctx.userManager.findById(user.id))!.securityStamp;

    const moved = await admin.request('PUT', `/users/${user.id}`, { body: { email: 'admin-moved-me@example.com' } });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body.email).toBe('admin-moved-me@example.com');
    expect((await ctx.userManager.findById(user.id))!.securityStamp).not.toBe(stampBefore);
    expect((await session.get('/auth/me')).status).toBe(401);

    const reset = await resetWith(stale, 'the old mailbox owner wins');
    expect(reset.status).toBe(400);
    expect(reset.body.code).toBe('invalid_token');
    expect((await new HttpClient(ctx.url).login('admin-moved-me@example.com', TEST_PASSWORD)).status).toBe(200);
  });

  it('OWASP ASVS 4.0 3.3.x: an admin email change (PUT /users/:id) voids a pending self-service email-change link, which would undo it', async () => {
    const user = await make({ email: 'pending-change@example.com' });
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    expect((await http.post('/auth/me/email', { newEmail: 'someone-elses-mailbox@example.com' })).status).toBe(202);
    await drain();
    const pending = linkParams(lastMail('someone-elses-mailbox@example.com', 'EmailChangeConfirm').text, 'confirm-email');

    const moved = await admin.request('PUT', `/users/${user.id}`, { body: { email: 'admin-chosen@example.com' } });
    expect(moved.status, moved.text).toBe(200);

    const confirm = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: pending.userId, token: pending.token });
    expect(confirm.status, confirm.text).toBe(400);
    expect(confirm.body.code).toBe('invalid_token');
    expect((await ctx.userManager.findById(user.id))!.email).toBe('admin-chosen@example.com');
  });

  it('an admin name-only edit keeps the reset link, the stamp and the sessions', async () => {
    const user = await make({ email: 'rename-only@example.com' });
    const link = await resetLinkFor('rename-only@example.com');
    const session = new HttpClient(ctx.url);
    expect((await session.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const stampBefore = (await ctx.userManager.findById(user.id))!.securityStamp;
    expect((await admin.request('PUT', `/users/${user.id}`, { body: { name: 'Renamed' } })).status).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.securityStamp).toBe(stampBefore);
    expect((await session.get('/auth/me')).status).toBe(200);
    expect((await resetWith(link, 'a reset that still works')).status).toBe(200);
  });

  it('an admin email change of an invited user voids the invite mailed to the old address; a resent invite works', async () => {
    const invited = await admin.post('/users/invite', { email: 'invite-old@example.com', name: 'Invitee', groups: [] });
    expect(invited.status, invited.text).toBe(201);
    const stale = linkParams(lastMail('invite-old@example.com', 'UserInvite').text, 'accept-invite');
    const moved = await admin.request('PUT', `/users/${stale.userId}`, { body: { email: 'invite-new@example.com' } });
    expect(moved.status, moved.text).toBe(200);

    const accept = (link: { userId: string; token: string }) =>
      new HttpClient(ctx.url).post('/auth/invite/accept', { userId: link.userId, token: link.token, password: 'an invitee passphrase' });
    const refused = await accept(stale);
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('invalid_token');

    expect((await admin.post(`/users/${stale.userId}/resend-invite`, {})).status).toBeLessThan(300);
    const fresh = linkParams(lastMail('invite-new@example.com', 'UserInvite').text, 'accept-invite');
    expect((await accept(fresh)).status).toBe(200);
  });

  it('a duplicate address (409) changes nothing: the old reset link still works', async () => {
    const user = await make({ email: 'keeps-link@example.com' });
    const other = await make();
    const link = await resetLinkFor('keeps-link@example.com');
    const taken = await admin.request('PUT', `/users/${user.id}`, { body: { email: other.email } });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe('duplicate_email');
    expect((await resetWith(link, 'nothing was voided here')).status).toBe(200);
  });
});
