import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { expectBadBodiesRefused, expectClientError, expectOverlongIdRefused } from '../support/bad-input.js';
import { BackOfficeBackgroundTasks, BackOfficeEvents, SendEmailNotification } from '../../src/backoffice-identity/index.js';

const password = 'correct horse battery staple';

describe('Admin user management and the audit trail', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let adminId: string;
  let editor: HttpClient;
  let counter = 0;
  const email = (tag = 'adm') => `${tag}${++counter}@example.com`;
  const make = async (groups: string[] = ['editor'], extra: Record<string, unknown> = {}) =>
    (await ctx.userManager.createUser({ email: email(), name: 'Made', password, groups, ...extra })).value!;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, email: { pickupDirectory: `/tmp/bo-mail-${process.pid}-${Date.now()}` } } });
    adminId = (await ctx.userManager.createUser({ email: 'boss@example.com', name: 'Boss', password, groups: ['admin'] })).value!.id;
    admin = new HttpClient(ctx.url);
    expect((await admin.login('boss@example.com', password)).status).toBe(200);
    const ed = await make(['editor']);
    editor = new HttpClient(ctx.url);
    expect((await editor.login(ed.email, password)).status).toBe(200);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  const adminRoutes = (id: string): Array<[string, string, unknown?]> => [
    ['GET', '/users'],
    ['POST', '/users/invite', { email: 'x@example.com', name: 'X', groups: [] }],
    ['POST', `/users/${id}/resend-invite`],
    ['POST', `/users/${id}/disable`],
    ['POST', `/users/${id}/enable`],
    ['POST', `/users/${id}/unlock`],
    ['PUT', `/users/${id}/groups`, { groups: ['admin'] }],
    ['DELETE', `/users/${id}/sessions`],
    ['GET', '/audit'],
  ];

  it('non-admins get 403 forbidden on every admin route; anonymous gets 401', async () => {
    const target = await make();
    for (const [method, path, body] of adminRoutes(target.id)) {
      expectClientError(await editor.request(method, path, { body }), 403);
      expectClientError(await new HttpClient(ctx.url).request(method, path, { body }), 401);
    }
    const fresh = (await ctx.userManager.findById(target.id))!;
    expect(fresh.isApproved).toBe(true);
    expect(fresh.groups).toEqual(['editor']);
  });

  it('lists users paged, filtered by state and text', async () => {
    const tag = `findme${Date.now()}`;
    for (let i = 0; i < 3; i++) await ctx.userManager.createUser({ email: `${tag}.${i}@example.com`, name: `Find ${i}`, password });
    const invited = (await ctx.userManager.createUser({ email: `${tag}.inv@example.com`, name: 'Invited one', invited: true })).value!;
    const page = await admin.get(`/users?filter=${tag}&take=2&skip=0`);
    expect(page.status).toBe(200);
    expect(page.body.total).toBe(4);
    expect(page.body.items).toHaveLength(2);
    const page2 = await admin.get(`/users?filter=${tag}&take=2&skip=2`);
    const ids = [...page.body.items, ...page2.body.items].map((u: { id: string }) => u.id);
    expect(new Set(ids).size).toBe(4);
    const onlyInvited = await admin.get(`/users?filter=${tag}&state=invited`);
    expect(onlyInvited.body.items.map((u: { id: string }) => u.id)).toEqual([invited.id]);
    expect(onlyInvited.body.items[0]).not.toHaveProperty('passwordHash');
    expect((await admin.get(`/users?filter=${encodeURIComponent('%_\\')}`)).body.total).toBe(0);
    for (const bad of ['take=0', 'take=101', 'skip=-1', 'skip=abc', 'state=royal', `filter=${'x'.repeat(300)}`, 'extra=1', 'filter=%00', 'filter=a%00b']) {
      expectClientError(await admin.get(`/users?${bad}`), 400);
    }
  });

  it('OWASP ASVS 5.0 2.4.1 (4.0 11.1.4): GET /users skip is at most 10,000 (an offset costs work in proportion to it): deeper is 400 validation_failed naming skip and pointing to filter and state; 10,000 still answers', async () => {
    for (const skip of ['10001', '1000000']) {
      for (const narrowed of ['', '&state=active&filter=made']) {
        const result = await admin.get(`/users?skip=${skip}${narrowed}`);
        expectClientError(result, 400);
        expect(result.body.code).toBe('validation_failed');
        const error = result.body.errors.find((e: { field: string }) => e.field === 'skip');
        expect(error, skip).toMatchObject({ code: 'max' });
        expect(error.description).toMatch(/10,000.*filter.*state/);
      }
    }
    const deepest = await admin.get('/users?skip=10000&take=100');
    expect(deepest.status, deepest.text).toBe(200);
    expect(deepest.body.items).toEqual([]);
  });

  it('OWASP ASVS 5.0 1.2.4 (4.0 5.3.4): LIKE wildcards in GET /users filter match themselves: %, _ and \\ find only the users whose text holds them; a filter with a control character (the newline that joins username, email and name) is 400 validation_failed, never a match across them', async () => {
    const tag = `wild${Date.now()}`;
    const percent = (await ctx.userManager.createUser({ email: `${tag}.p@example.com`, name: `${tag} 100% Pat`, password })).value!;
    const underscore = (await ctx.userManager.createUser({ email: `${tag}_u@example.com`, name: `${tag} Una`, password })).value!;
    const backslash = (await ctx.userManager.createUser({ email: `${tag}.b@example.com`, name: `${tag} Back\\slash`, password })).value!;
    await ctx.userManager.createUser({ email: `${tag}.plain@example.com`, name: `${tag} Plain`, password });
    const found = async (filter: string) => {
      const page = await admin.get(`/users?take=100&filter=${encodeURIComponent(filter)}`);
      expect(page.status, page.text).toBe(200);
      return page.body.items.map((u: { id: string }) => u.id).sort();
    };
    expect(await found(tag)).toHaveLength(4);
    expect(await found(`${tag} 100%`)).toEqual([percent.id]);
    expect(await found('100% pat')).toEqual([percent.id]);
    expect(await found(`${tag}_`)).toEqual([underscore.id]);
    expect(await found(`${tag} back\\slash`)).toEqual([backslash.id]);
    expect(await found(`${tag} back%`)).toEqual([]);
    expect(await found(`${tag}%`)).toEqual([]);
    // The stored search text joins username, email and name with newlines: a filter holding one matched across them.
    for (const control of ['\n', '\t', '\u007f']) {
      const across = await admin.get(`/users?filter=${encodeURIComponent(`${tag}.p@example.com${control}${tag}`)}`);
      expectClientError(across, 400);
      expect(across.body.code).toBe('validation_failed');
      expect(across.body.errors.map((e: { field: string }) => e.field)).toEqual(['filter']);
    }
  });

  it('disable ends sessions and sign-in; enable restores; unlock clears a lockout; all notified and audited', async () => {
    const user = await make();
    const http = new HttpClient(ctx.url);
    await http.login(user.email, password);
    const disabled = await admin.post(`/users/${user.id}/disable`);
    expect(disabled.status).toBe(200);
    expect(disabled.body.state).toBe('disabled');
    expect((await http.get('/auth/me')).status).toBe(401);
    expect((await new HttpClient(ctx.url).login(user.email, password)).status).toBe(403);
    expect((await admin.post(`/users/${user.id}/enable`)).body.state).toBe('active');
    for (let i = 0; i < 5; i++) await new HttpClient(ctx.url).login(user.email, 'wrong password entirely');
    expect((await admin.get(`/users?filter=${user.email}`)).body.items[0].state).toBe('lockedOut');
    expect((await admin.post(`/users/${user.id}/unlock`)).body.state).toBe('active');
    expect((await new HttpClient(ctx.url).login(user.email, password)).status).toBe(200);

    const audit = await admin.get(`/audit?userId=${user.id}&take=200`);
    expect(audit.status).toBe(200);
    const story = audit.body.items.map((e: { event: string }) => e.event).reverse();
    const expected = [
      BackOfficeEvents.LoginSuccess,
      BackOfficeEvents.Disabled,
      BackOfficeEvents.Enabled,
      BackOfficeEvents.Locked,
      BackOfficeEvents.Unlocked,
      BackOfficeEvents.LoginSuccess,
    ];
    let at = 0;
    for (const event of story) if (event === expected[at]) at++;
    expect(at).toBe(expected.length);
    const disabledEntry = audit.body.items.find((e: { event: string }) => e.event === BackOfficeEvents.Disabled);
    expect(disabledEntry).toMatchObject({ performingUserId: adminId, affectedUserId: user.id, ipAddress: '127.0.0.1' });
    const times = audit.body.items.map((e: { createdAt: string }) => Date.parse(e.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times); // newest first
  });

  it('DELETE /users/:id/sessions ends every session of that user (204)', async () => {
    const user = await make();
    const a = new HttpClient(ctx.url);
    const b = new HttpClient(ctx.url);
    await a.login(user.email, password);
    await b.login(user.email, password);
    const result = await admin.delete(`/users/${user.id}/sessions`);
    expect(result.status).toBe(204);
    expect((await a.get('/auth/me')).status).toBe(401);
    expect((await b.get('/auth/me')).status).toBe(401);
  });

  it('the last enabled admin cannot be disabled or removed from admin (409); with two admins it can', async () => {
    const selfDisable = await admin.post(`/users/${adminId}/disable`);
    expectClientError(selfDisable, 409);
    expect(selfDisable.body.code).toBe('last_admin');
    expectClientError(await admin.request('PUT', `/users/${adminId}/groups`, { body: { groups: ['editor'] } }), 409);
    const second = await make(['admin']);
    expect((await admin.request('PUT', `/users/${second.id}/groups`, { body: { groups: ['editor', 'writer'] } })).body.groups).toEqual(['editor', 'writer']);
    expect((await admin.request('PUT', `/users/${second.id}/groups`, { body: { groups: ['admin'] } })).status).toBe(200);
    expect((await admin.post(`/users/${second.id}/disable`)).status).toBe(200);
    expectClientError(await admin.request('PUT', `/users/${second.id}/groups`, { body: { groups: ['nope'] } }), 400);
  });

  it('two admins disabling each other at once leave one enabled admin', async () => {
    const a = await make(['admin']);
    const b = await make(['admin']);
    const [httpA, httpB] = [new HttpClient(ctx.url), new HttpClient(ctx.url)];
    await httpA.login(a.email, password);
    await httpB.login(b.email, password);
    // the boss is disabled first (by A), so A and B are the only enabled admins left
    const boss = new HttpClient(ctx.url);
    await boss.login('boss@example.com', password);
    expect((await httpA.post(`/users/${adminId}/disable`)).status).toBe(200);
    const results = await Promise.all([httpA.post(`/users/${b.id}/disable`), httpB.post(`/users/${a.id}/disable`)]);
    const { DataSource: DS } = await import('typeorm');
    const rows = await ctx.app.get(DS).query(
      `SELECT count(*)::int AS n FROM backoffice_user u JOIN backoffice_user_group ug ON ug.user_id = u.id
       JOIN backoffice_group g ON g.id = ug.group_id WHERE g.alias = 'admin' AND u.is_approved`,
    );
    expect(rows[0].n).toBe(1);
    expect(results.map((r) => r.status).sort()).toEqual(results.some((r) => r.status === 401) ? [200, 401] : [200, 409]);
    // restore the boss for the other tests
    await ctx.userManager.setApproved((await ctx.userManager.findById(adminId))!, true);
    await admin.login('boss@example.com', password);
  });

  it('404 for unknown or malformed user ids', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', '%00']) {
      expectClientError(await admin.post(`/users/${encodeURIComponent(id)}/disable`), 404);
      expectClientError(await admin.delete(`/users/${encodeURIComponent(id)}/sessions`), 404);
    }
    expectOverlongIdRefused(await admin.post(`/users/${'x'.repeat(3000)}/disable`));
    expectOverlongIdRefused(await admin.delete(`/users/${'x'.repeat(3000)}/sessions`));
  });

  it('bad input on the admin and recovery routes: 4xx with a code, never 500', async () => {
    await expectBadBodiesRefused(admin, 'POST', '/users/invite', ['email', 'name']);
    const target = await make();
    await expectBadBodiesRefused(admin, 'PUT', `/users/${target.id}/groups`, ['groups']);
    await expectBadBodiesRefused(new HttpClient(ctx.url), 'POST', '/auth/forgot-password', ['email']);
    await expectBadBodiesRefused(new HttpClient(ctx.url), 'POST', '/auth/reset-password', ['userId', 'token', 'newPassword']);
    await expectBadBodiesRefused(new HttpClient(ctx.url), 'POST', '/auth/invite/accept', ['userId', 'token', 'password']);
    for (const bad of ['take=0', 'take=1000', 'userId=nope', 'skip=-5']) expectClientError(await admin.get(`/audit?${bad}`), 400);
    expect((await admin.get(`/users?filter=${target.email}`)).body.items[0].groups).toEqual(['editor']);
  });

  it('OWASP ASVS 5.0 16.3.1 / 4.0 7.2.1: a wrong password at step-up (POST /auth/reauthenticate) or as the current one of POST /auth/change-password is audited as backoffice.user.login.failed with via, actor and IP, never the password', async () => {
    const user = await make();
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, password)).status).toBe(200);
    const guess = 'guessed-password-1';
    expectClientError(await http.post('/auth/reauthenticate', { password: guess }), 401);
    expectClientError(await http.post('/auth/change-password', { currentPassword: guess, newPassword: 'An0ther long passphrase!' }), 401);
    const failed = await ctx.app.get(DataSource).query(
      `SELECT performing_user_id, ip_address, details FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = $2 ORDER BY id`,
      [user.id, BackOfficeEvents.LoginFailed],
    );
    expect(failed.map((row: { details: unknown }) => row.details)).toEqual([
      { reason: 'invalid_credentials', via: 'reauthentication' },
      { reason: 'invalid_credentials', via: 'change_password' },
    ]);
    for (const row of failed) {
      expect(row.performing_user_id).toBe(user.id);
      expect(row.ip_address).toBeTruthy();
    }
    expect(JSON.stringify(failed)).not.toContain(guess);
  });

  it('OWASP ASVS 5.0 16.3.1: the wrong step-up password that locks the account is audited as locked_out (as a sign-in that locks is), the ones before it as invalid_credentials', async () => {
    const user = await make();
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, password)).status).toBe(200);
    const limit = ctx.userManager.options.lockout.maxFailedAccessAttempts;
    const statuses: number[] = [];
    for (let i = 0; i < limit; i++) statuses.push((await http.post('/auth/reauthenticate', { password: `guess-${i}` })).status);
    expect(statuses.at(-1)).toBe(423);
    const failed = await ctx.app.get(DataSource).query(
      `SELECT details FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = $2 ORDER BY id`,
      [user.id, BackOfficeEvents.LoginFailed],
    );
    expect(failed.map((row: { details: { reason: string } }) => row.details.reason)).toEqual([
      ...Array.from({ length: limit - 1 }, () => 'invalid_credentials'),
      'locked_out',
    ]);
  });

  it('the audit never stores secrets', async () => {
    const rows = await ctx.app.get(DataSource).query(`SELECT details::text AS d FROM backoffice_audit_entry`);
    const all = rows.map((r: { d: string }) => r.d).join('\n');
    expect(all).not.toMatch(/token|password_hash|\$2b\$|correct horse/i);
  });
});

/** The external-provider setup of the seed: DenyLocalLogin plus a listener that invites through the provider. */
@Injectable()
class ProviderInviteListener {
  static invited: string[] = [];
  @OnEvent(BackOfficeEvents.SendEmail)
  async handle(notification: SendEmailNotification) {
    if (notification.emailType !== 'UserInvite') return;
    ProviderInviteListener.invited.push(notification.message.to); // e.g. call the IdP's invite API here
    notification.handleEmail();
  }
}

describe('External-provider setup: denyLocalLogin + a listener that handles UserInvite', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { denyLocalLogin: true, rateLimits: { enabled: false }, email: { smtpUrl: 'smtp://127.0.0.1:9' } },
      providers: [ProviderInviteListener],
    });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('refuses password login, forgot, reset and invite accept with 403 local_login_disabled', async () => {
    await ctx.userManager.createUser({ email: 'ext@example.com', name: 'E', password });
    const http = new HttpClient(ctx.url);
    for (const [path, body] of [
      ['/auth/login', { username: 'ext@example.com', password }],
      ['/auth/forgot-password', { email: 'ext@example.com' }],
      ['/auth/reset-password', { userId: '00000000-0000-4000-8000-000000000000', token: 't', newPassword: 'whatever passphrase' }],
      ['/auth/invite/accept', { userId: '00000000-0000-4000-8000-000000000000', token: 't', password: 'whatever passphrase' }],
    ] as const) {
      const result = await http.post(path, body);
      expectClientError(result, 403);
      expect(result.body.code).toBe('local_login_disabled');
    }
  });

  it('OWASP ASVS 4.0 3.7.1: a password left from before single sign-on neither satisfies step-up (POST /auth/reauthenticate) nor can be changed: 403 local_login_disabled', async () => {
    const user = (await ctx.userManager.createUser({ email: 'pre-sso@example.com', name: 'P', password })).value!;
    const { BackOfficeSessionService, BackOfficeSessionCookies } = await import('../../src/backoffice-identity/index.js');
    const { token } = await ctx.app.get(BackOfficeSessionService).create(user, {});
    const http = new HttpClient(ctx.url);
    http.cookies.set('backoffice_session', token);
    http.cookies.set('XSRF-TOKEN', BackOfficeSessionCookies.xsrfTokenFor(token));
    ctx.clock.advance(10 * 60_000); // past session.reauthenticationMinutes
    try {
      expect((await http.request('DELETE', '/auth/sessions')).body.code).toBe('reauthentication_required');
      const stepUp = await http.post('/auth/reauthenticate', { password });
      expectClientError(stepUp, 403);
      expect(stepUp.body.code).toBe('local_login_disabled');
      expect((await http.request('DELETE', '/auth/sessions')).body.code).toBe('reauthentication_required');
      const change = await http.post('/auth/change-password', { currentPassword: password, newPassword: 'another long passphrase 42' });
      expectClientError(change, 403);
      expect(change.body.code).toBe('local_login_disabled');
      expect(await ctx.userManager.checkPassword((await ctx.userManager.findById(user.id))!, password)).toBe(true);
    } finally {
      ctx.clock.advance(-10 * 60_000);
    }
  });

  it('OWASP ASVS 4.0 3.7.1: a provider-only user turns two-factor off with a recent (provider) sign-in alone; no password is asked, and an old sign-in still needs the step-up', async () => {
    const user = (await ctx.userManager.createUser({ email: 'sso-2fa@example.com', name: 'S' })).value!;
    expect((await ctx.userManager.setTwoFactorEnabled(user, true)).succeeded).toBe(true);
    const { BackOfficeSessionService, BackOfficeSessionCookies } = await import('../../src/backoffice-identity/index.js');
    const { token } = await ctx.app.get(BackOfficeSessionService).create(user, {});
    const http = new HttpClient(ctx.url);
    http.cookies.set('backoffice_session', token);
    http.cookies.set('XSRF-TOKEN', BackOfficeSessionCookies.xsrfTokenFor(token));
    ctx.clock.advance(10 * 60_000);
    try {
      expect((await http.post('/auth/2fa/disable', {})).body.code).toBe('reauthentication_required');
    } finally {
      ctx.clock.advance(-10 * 60_000);
    }
    const off = await http.post('/auth/2fa/disable', {});
    expect(off.status, off.text).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(false);
  });

  it('OWASP ASVS 4.0 V2.5: an admin\'s force password reset is refused (403 local_login_disabled, as forgot/reset answer) and changes nothing: its link would lead to the closed reset route', async () => {
    const adminUser = (await ctx.userManager.createUser({ email: 'ext-forcer@example.com', name: 'F', groups: ['admin'] })).value!;
    const user = (await ctx.userManager.createUser({ email: 'pre-sso-forced@example.com', name: 'P', password })).value!;
    const { BackOfficeSessionService, BackOfficeSessionCookies } = await import('../../src/backoffice-identity/index.js');
    const sessions = ctx.app.get(BackOfficeSessionService);
    const { token } = await sessions.create(adminUser, {});
    const admin = new HttpClient(ctx.url);
    admin.cookies.set('backoffice_session', token);
    admin.cookies.set('XSRF-TOKEN', BackOfficeSessionCookies.xsrfTokenFor(token));
    const own = await sessions.create(user, {});
    const session = new HttpClient(ctx.url);
    session.cookies.set('backoffice_session', own.token);
    const refused = await admin.post(`/users/${user.id}/force-password-reset`);
    expectClientError(refused, 403);
    expect(refused.body.code).toBe('local_login_disabled');
    expect((await session.get('/auth/me')).status).toBe(200);
    expect(await ctx.userManager.checkPassword((await ctx.userManager.findById(user.id))!, password)).toBe(true);
  });

  it('an admin (signed in through the host\'s provider) invites through the listener: no default email is sent', async () => {
    const adminUser = (await ctx.userManager.createUser({ email: 'ext-admin@example.com', name: 'A', password, groups: ['admin'] })).value!;
    // the host's external login would create the session; here we issue one directly
    const { BackOfficeSessionService, BackOfficeSessionCookies } = await import('../../src/backoffice-identity/index.js');
    const { token } = await ctx.app.get(BackOfficeSessionService).create(adminUser, {});
    const http = new HttpClient(ctx.url);
    http.cookies.set('backoffice_session', token);
    http.cookies.set('XSRF-TOKEN', BackOfficeSessionCookies.xsrfTokenFor(token));
    const invited = await http.post('/users/invite', { email: 'via-idp@example.com', name: 'Via IdP', groups: ['editor'] });
    // the SMTP URL points at a closed port: a 201 proves the default sender never ran
    expect(invited.status).toBe(201);
    expect(ProviderInviteListener.invited).toEqual(['via-idp@example.com']);
  });
});

describe('Options: allowPasswordReset false, audit false', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('allowPasswordReset: false makes forgot/reset 404 not_found', async () => {
    const ctx = await createIdentityApp(db, { identity: { allowPasswordReset: false } });
    try {
      const http = new HttpClient(ctx.url);
      expectClientError(await http.post('/auth/forgot-password', { email: 'a@example.com' }), 404);
      expectClientError(await http.post('/auth/reset-password', { userId: 'a', token: 'b', newPassword: 'c' }), 404);
    } finally {
      await ctx.close();
    }
  });

  it('audit: false writes no audit entries', async () => {
    const ctx = await createIdentityApp(db, { identity: { audit: false } });
    try {
      const before = (await ctx.app.get(DataSource).query('SELECT count(*)::int AS n FROM backoffice_audit_entry'))[0].n;
      await ctx.userManager.createUser({ email: 'noaudit@example.com', name: 'N', password });
      await new HttpClient(ctx.url).login('noaudit@example.com', password);
      const after = (await ctx.app.get(DataSource).query('SELECT count(*)::int AS n FROM backoffice_audit_entry'))[0].n;
      expect(after).toBe(before);
    } finally {
      await ctx.close();
    }
  });
});
