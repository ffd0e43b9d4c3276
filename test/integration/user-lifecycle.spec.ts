import { DataSource } from 'typeorm';
import { expectBadBodiesRefused, expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { linkParams, TestSmtpServer } from '../support/smtp.js';

describe('User lifecycle: profile, email change, admin edit, forced reset, timed disable, delete', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let smtp: TestSmtpServer;
  let admin: HttpClient;
  let adminId: string;
  let adminEmail: string;
  const make = userFactory(() => ctx, 'life');
  const signIn = (email: string, password?: string) => signedInClient(ctx, email, password);
  const events = async (userId: string) => (await admin.get(`/audit?userId=${userId}&take=100`)).body.items as Array<{ event: string; details: any; performingUserId: string | null }>;

  beforeAll(async () => {
    smtp = await new TestSmtpServer().start();
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, email: { smtpUrl: smtp.url } } });
    const boss = await make({ groups: ['admin'] });
    adminId = boss.id;
    adminEmail = boss.email;
    admin = await signIn(boss.email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
    await smtp?.stop();
  });

  it('a user edits their own name (audited with a diff); bad names are refused', async () => {
    const user = await make({ groups: ['editor'], name: 'Old Name' });
    const http = await signIn(user.email);
    const res = await http.request('PUT', '/auth/me', { body: { name: '  Ada Lovelace 😀 ' } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.name).toBe('Ada Lovelace 😀');
    expect((await http.get('/auth/me')).body.name).toBe('Ada Lovelace 😀');
    const [entry] = (await events(user.id)).filter((e) => e.event === 'backoffice.user.profile.updated');
    expect(entry.details).toEqual({ changes: { name: { from: 'Old Name', to: 'Ada Lovelace 😀' } } });
    await expectBadBodiesRefused(http, 'PUT', '/auth/me', ['name']);
    expectClientError(await http.request('PUT', '/auth/me', { body: { name: 'x', email: 'sneaky@example.com' } }), 400);
    expectClientError(await http.request('PUT', '/auth/me', { body: { name: 'x' }, xsrf: false }), 403);
    expectClientError(await new HttpClient(ctx.url).request('PUT', '/auth/me', { body: { name: 'x' } }), 401);
    expect((await ctx.userManager.findById(user.id))!.email).toBe(user.email);
  });

  it('email change: link to the new address, notice to the old one, takes effect only when confirmed; sessions end', async () => {
    const user = await make({ groups: ['editor'] });
    const http = await signIn(user.email);
    const newEmail = `changed-${user.id.slice(0, 8)}@example.com`;
    ctx.clock.advance(6 * 60_000); // step-up: the sign-in is no longer recent (OWASP ASVS 4.0 3.7.1)
    const stale = await http.post('/auth/me/email', { newEmail });
    expectClientError(stale, 401);
    expect(stale.body.code).toBe('reauthentication_required');
    expect((await http.post('/auth/reauthenticate', { password: TEST_PASSWORD })).status).toBe(200);
    const res = await http.post('/auth/me/email', { newEmail });
    expect(res.status, res.text).toBe(202);
    const confirm = await smtp.waitFor(newEmail);
    const notice = await smtp.waitFor(user.email);
    expect(notice.text).toContain(newEmail);
    expect(notice.text).not.toMatch(/confirm-email#/);
    expect((await ctx.userManager.findById(user.id))!.email).toBe(user.email); // not yet
    const { userId, token } = linkParams(confirm.text!, 'confirm-email');
    expect(userId).toBe(user.id);
    expectClientError(await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId, token: `${token}x` }), 400);
    const done = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId, token });
    expect(done.status, done.text).toBe(200);
    expect(done.body.email).toBe(newEmail);
    expectClientError(await http.get('/auth/me'), 401); // sessions ended
    const again = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId, token });
    expectClientError(again, 400);
    expect(again.body.code).toBe('invalid_token');
    await signIn(newEmail);
    expectClientError(await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD), 401);
    const kinds = (await events(user.id)).map((e) => e.event);
    expect(kinds).toEqual(expect.arrayContaining(['backoffice.user.email-change.requested', 'backoffice.user.email.changed']));
  });

  it('email change to a taken address answers the same and sends it nothing (the old address its usual notice); bad input is refused; links expire', async () => {
    const user = await make({ groups: ['editor'] });
    const other = await make({ groups: ['editor'] });
    const http = await signIn(user.email);
    const before = smtp.messages.length;
    expect((await http.post('/auth/me/email', { newEmail: other.email.toUpperCase() })).status).toBe(202);
    expect((await smtp.waitFor(user.email)).subject).toBe('Your back-office email address is being changed');
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.messages.length).toBe(before + 1);
    expect(smtp.countTo(other.email)).toBe(0);
    for (const newEmail of ['not-an-email', '', 'a'.repeat(300) + '@example.com', user.email]) {
      expectClientError(await http.post('/auth/me/email', { newEmail }), 400);
    }
    await expectBadBodiesRefused(http, 'POST', '/auth/me/email', ['newEmail']);
    await expectBadBodiesRefused(new HttpClient(ctx.url), 'POST', '/auth/me/email/confirm', ['userId', 'token']);
    const target = `late-${user.id.slice(0, 8)}@example.com`;
    expect((await http.post('/auth/me/email', { newEmail: target })).status).toBe(202);
    const { userId, token } = linkParams((await smtp.waitFor(target)).text!, 'confirm-email');
    ctx.clock.advance(25 * 3_600_000);
    expectClientError(await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId, token }), 400);
    ctx.clock.advance(-25 * 3_600_000);
    expect((await ctx.userManager.findById(user.id))!.email).toBe(user.email);
  });

  it('an admin edits name and email (username follows); duplicates 409; audited with a diff', async () => {
    const user = await make({ groups: ['writer'], name: 'Before' });
    expect((await admin.post('/auth/reauthenticate', { password: TEST_PASSWORD })).status).toBe(200); // a new email needs a recent sign-in
    const newEmail = `edited-${user.id.slice(0, 8)}@example.com`;
    const res = await admin.request('PUT', `/users/${user.id}`, { body: { name: 'After', email: newEmail } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ name: 'After', email: newEmail, username: newEmail });
    const [entry] = (await events(user.id)).filter((e) => e.event === 'backoffice.user.profile.updated');
    expect(entry.details.changes).toEqual({ name: { from: 'Before', to: 'After' }, email: { from: user.email, to: newEmail } });
    expect(entry.performingUserId).toBe(adminId);
    const taken = await admin.request('PUT', `/users/${user.id}`, { body: { email: (await make()).email } });
    expectClientError(taken, 409);
    expect(taken.body.code).toBe('duplicate_email');
    for (const body of [{ email: 'nope' }, { name: '' }, { name: null }, { name: 'x'.repeat(257) }, { groups: ['admin'] }]) {
      expectClientError(await admin.request('PUT', `/users/${user.id}`, { body }), 400);
    }
    expectClientError(await admin.request('PUT', `/users/00000000-0000-4000-8000-000000000000`, { body: { name: 'x' } }), 404);
    await signIn(newEmail);
  });

  it('OWASP ASVS 5.0 7.5.1: an admin edit that moves another user\'s email needs a recent sign-in (no takeover through forgot-password with a stolen admin cookie); name-only and same-address edits do not', async () => {
    const user = await make({ groups: ['writer'], name: 'Victim' });
    const stolen = await signIn(adminEmail);
    const attackerEmail = `attacker-${user.id.slice(0, 8)}@example.com`;
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)
    const refused = await stolen.request('PUT', `/users/${user.id}`, { body: { name: 'Renamed', email: attackerEmail } });
    expectClientError(refused, 401);
    expect(refused.body).toEqual({ statusCode: 401, code: 'reauthentication_required', message: expect.any(String) });
    const untouched = (await ctx.userManager.findById(user.id))!;
    expect({ email: untouched.email, name: untouched.name, securityStamp: untouched.securityStamp }).toEqual({ email: user.email, name: 'Victim', securityStamp: user.securityStamp });
    expect((await events(user.id)).filter((e) => e.event === 'backoffice.user.profile.updated')).toEqual([]);
    // The same address (compared normalized, as sign-in and forgot-password look it up) and a name-only edit need no step-up.
    for (const body of [{ name: 'Renamed' }, { name: 'Renamed again', email: ` ${user.email.toUpperCase()} ` }]) {
      const res = await stolen.request('PUT', `/users/${user.id}`, { body });
      expect(res.status, res.text).toBe(200);
      expect(res.body.name).toBe(body.name);
    }
    expect(ctx.userManager.normalizeKey((await ctx.userManager.findById(user.id))!.email)).toBe(ctx.userManager.normalizeKey(user.email));
    // An API user's bearer token has no sign-in to renew: refused like the other step-up routes.
    expect((await stolen.post('/auth/reauthenticate', { password: TEST_PASSWORD })).status).toBe(200);
    const robot = await stolen.post('/users/api', { name: 'Editor robot', groups: ['admin'] });
    expect(robot.status, robot.text).toBe(201);
    const token = await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: robot.body.clientId, client_secret: robot.body.clientSecret });
    const bearer = { headers: { authorization: `Bearer ${token.body.access_token}` } };
    const byRobot = await new HttpClient(ctx.url).request('PUT', `/users/${user.id}`, { body: { email: attackerEmail }, ...bearer });
    expectClientError(byRobot, 401);
    expect(byRobot.body.code).toBe('reauthentication_required');
    expect((await new HttpClient(ctx.url).request('PUT', `/users/${user.id}`, { body: { name: 'By robot' }, ...bearer })).status).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.normalizedEmail).toBe(ctx.userManager.normalizeKey(user.email));
    // After POST /auth/reauthenticate the same request goes through.
    const moved = await stolen.request('PUT', `/users/${user.id}`, { body: { email: attackerEmail } });
    expect(moved.status, moved.text).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.email).toBe(attackerEmail);
  });

  it('OWASP ASVS 5.0 7.5.1: an admin edit to an address that only looks the same (full-width letters, folded alike for sign-in) needs a recent sign-in too: it changes where email goes', async () => {
    const user = await make({ groups: ['writer'], name: 'Lookalike' });
    const stolen = await signIn(adminEmail);
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)
    const [local, domain] = user.email.split('@');
    const fullWidth = (text: string) => text.replace(/[a-z]/, (c) => String.fromCharCode(c.charCodeAt(0) - 0x61 + 0xff41));
    const lookalikes = [`${fullWidth(local)}@${domain}`, `${local}@${fullWidth(domain)}`];
    for (const email of lookalikes) {
      expect(ctx.userManager.normalizeKey(email), 'sign-in folds it to the same key').toBe(user.normalizedEmail);
      const refused = await stolen.request('PUT', `/users/${user.id}`, { body: { email } });
      expectClientError(refused, 401);
      expect(refused.body.code, email).toBe('reauthentication_required');
    }
    const untouched = (await ctx.userManager.findById(user.id))!;
    expect({ email: untouched.email, securityStamp: untouched.securityStamp }).toEqual({ email: user.email, securityStamp: user.securityStamp });
    // A change of ASCII case is the same address: no step-up; after one, the look-alike is stored as sent.
    expect((await stolen.request('PUT', `/users/${user.id}`, { body: { email: user.email.toUpperCase() } })).status).toBe(200);
    expect((await stolen.post('/auth/reauthenticate', { password: TEST_PASSWORD })).status).toBe(200);
    const moved = await stolen.request('PUT', `/users/${user.id}`, { body: { email: lookalikes[0] } });
    expect(moved.status, moved.text).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.email).toBe(lookalikes[0]);
  });

  it('force password reset: the password stops working, sessions end, the emailed link sets a new one', async () => {
    const user = await make({ groups: ['editor'] });
    const http = await signIn(user.email);
    ctx.clock.advance(6 * 60_000);
    const stale = await admin.post(`/users/${user.id}/force-password-reset`);
    expectClientError(stale, 401);
    expect(stale.body.code).toBe('reauthentication_required');
    expect((await admin.post('/auth/reauthenticate', { password: TEST_PASSWORD })).status).toBe(200);
    expect((await http.get('/auth/me')).status).toBe(200);
    const res = await admin.post(`/users/${user.id}/force-password-reset`);
    expect(res.status, res.text).toBe(200);
    expectClientError(await http.get('/auth/me'), 401);
    expectClientError(await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD), 401);
    const { userId, token } = linkParams((await smtp.waitFor(user.email)).text!, 'reset-password');
    const reset = await new HttpClient(ctx.url).post('/auth/reset-password', { userId, token, newPassword: 'a brand new passphrase 42' });
    expect(reset.status, reset.text).toBe(200);
    await signIn(user.email, 'a brand new passphrase 42');
    expect((await events(user.id)).map((e) => e.event)).toContain('backoffice.user.password-reset.forced');
    const robot = await admin.post('/users/api', { name: 'R', groups: [] });
    expectClientError(await admin.post(`/users/${robot.body.user.id}/force-password-reset`), 409);
    expectClientError(await admin.post(`/users/not-a-uuid/force-password-reset`), 404);
  });

  it('disable with a reason and an end date: shown to admins, audited; the user signs in again after the end', async () => {
    const user = await make({ groups: ['editor'] });
    const until = new Date(ctx.clock.now().getTime() + 2 * 3_600_000).toISOString();
    const res = await admin.post(`/users/${user.id}/disable`, { reason: 'On leave', until });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ state: 'disabled', disabledReason: 'On leave', disabledUntil: until });
    const [entry] = (await events(user.id)).filter((e) => e.event === 'backoffice.user.disabled');
    expect(entry.details).toEqual({ reason: 'On leave', until });
    expectClientError(await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD), 403);
    ctx.clock.advance(2 * 3_600_000 + 1000);
    await signIn(user.email);
    expect((await ctx.userManager.findById(user.id))!).toMatchObject({ isApproved: true, disabledReason: null, disabledUntil: null });
    ctx.clock.advance(-(2 * 3_600_000 + 1000));
    // Without an end date it stays disabled; bad input is refused.
    expect((await admin.post(`/users/${user.id}/disable`, {})).body).toMatchObject({ state: 'disabled', disabledReason: null, disabledUntil: null });
    for (const body of [{ until: 'tomorrow' }, { until: '2000-01-01T00:00:00Z' }, { reason: 'x'.repeat(501) }, { reason: 5 }, { extra: true }]) {
      expectClientError(await admin.post(`/users/${user.id}/disable`, body), 400);
    }
  });

  it('delete: not oneself, not the last admin; sessions end; the audit trail keeps the id', async () => {
    const user = await make({ groups: ['editor'] });
    const http = await signIn(user.email);
    expect((await admin.post('/auth/reauthenticate', { password: TEST_PASSWORD })).status).toBe(200);
    const res = await admin.delete(`/users/${user.id}`);
    expect(res.status, res.text).toBe(204);
    expect(await ctx.userManager.findById(user.id)).toBeNull();
    expectClientError(await http.get('/auth/me'), 401);
    const [entry] = (await events(user.id)).filter((e) => e.event === 'backoffice.user.deleted');
    expect(entry).toMatchObject({ performingUserId: adminId, details: { username: user.username } });
    expect((await events(user.id)).length).toBeGreaterThan(1); // earlier entries of the id stay
    const self = await admin.delete(`/users/${adminId}`);
    expectClientError(self, 409);
    expect(self.body.code).toBe('cannot_delete_self');
    // A second admin cannot delete the only other (last) enabled admin... once the first is gone.
    const second = await make({ groups: ['admin'] });
    const secondHttp = await signIn(second.email);
    expect((await secondHttp.post(`/users/${adminId}/disable`)).status).toBe(200);
    const thirdAdmin = await make({ groups: ['editor'] });
    expect((await ctx.userManager.setGroups(thirdAdmin, ['admin'])).succeeded).toBe(true);
    expect((await ctx.app.get(DataSource).query(`UPDATE backoffice_user SET is_approved = false WHERE id = $1`, [thirdAdmin.id])));
    const last = await secondHttp.delete(`/users/${thirdAdmin.id}`);
    expect(last.status).toBe(204); // disabled admins do not count
    expectClientError(await secondHttp.delete(`/users/${second.id}`), 409);
    expectClientError(await secondHttp.delete(`/users/00000000-0000-4000-8000-000000000000`), 404);
    expectClientError(await secondHttp.delete(`/users/${'x'.repeat(1000)}`), 404);
    const editor = await signIn((await make({ groups: ['editor'] })).email);
    expectClientError(await editor.delete(`/users/${second.id}`), 403);
    expect((await secondHttp.post(`/users/${adminId}/enable`)).status).toBe(200);
  });
});
