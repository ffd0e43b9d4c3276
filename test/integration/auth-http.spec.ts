import { DataSource } from 'typeorm';
import { createHash } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, userFactory, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { BackOfficeEvents, TypeOrmBackOfficeSessionStore, type BackOfficeSession, type BackOfficeUser } from '../../src/backoffice-identity/index.js';

/**
 * The built-in session store, but a new session row is handed back only once `SignInBarrierStore.expected` sign-ins
 * have written theirs (or after 5 s): sign-ins that run at once then reach their next step together.
 */
class SignInBarrierStore extends TypeOrmBackOfficeSessionStore {
  static expected = 0;
  private static waiting: Array<() => void> = [];
  private static async barrier(): Promise<void> {
    if (SignInBarrierStore.expected <= 1) return;
    await new Promise<void>((resolve) => {
      SignInBarrierStore.waiting.push(resolve);
      if (SignInBarrierStore.waiting.length >= SignInBarrierStore.expected) {
        SignInBarrierStore.waiting.splice(0).forEach((release) => release());
      }
      setTimeout(resolve, 5_000).unref();
    });
  }
  override async create(session: BackOfficeSession): Promise<void> {
    await super.create(session);
    await SignInBarrierStore.barrier();
  }
  override async createWithSignIn(...args: Parameters<TypeOrmBackOfficeSessionStore['createWithSignIn']>): Promise<void> {
    await super.createWithSignIn(...args);
    await SignInBarrierStore.barrier();
  }
}

describe('REST auth: login, me, change-password, logout, sessions', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let events: NotificationRecorder;
  const password = 'correct horse battery staple';
  const newUser = userFactory(() => ctx, 'http');
  const client = () => new HttpClient(ctx.url);

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    events = NotificationRecorder.attach(ctx.app);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('login -> me -> change-password -> logout, with cookies and XSRF', async () => {
    const user = await newUser({ groups: ['editor'] });
    const http = client();
    const login = await http.login(user.email, password);
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({ status: 'success', user: { id: user.id, email: user.email, state: 'active', groups: ['editor'] } });
    expect(login.body.user).not.toHaveProperty('passwordHash');
    expect(login.body.user).not.toHaveProperty('securityStamp');
    const sessionCookie = login.setCookies.find((c) => c.startsWith('backoffice_session='))!;
    expect(sessionCookie).toMatch(/HttpOnly/);
    expect(sessionCookie).toMatch(/SameSite=Strict/);
    expect(sessionCookie).toMatch(/Secure/);
    expect(login.setCookies.find((c) => c.startsWith('XSRF-TOKEN='))).not.toMatch(/HttpOnly/);

    const me = await http.get('/auth/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: user.id, username: user.email, name: 'Test User' });

    const noXsrf = await http.post('/auth/change-password', { currentPassword: password, newPassword: 'a fresh new passphrase' }, { xsrf: false });
    expect(noXsrf.status).toBe(403);
    expect(noXsrf.body.code).toBe('xsrf_failed');
    const wrongXsrf = await http.post('/auth/change-password', { currentPassword: password, newPassword: 'a fresh new passphrase' }, { headers: { 'x-xsrf-token': 'forged' } });
    expect(wrongXsrf.body.code).toBe('xsrf_failed');

    const weak = await http.post('/auth/change-password', { currentPassword: password, newPassword: 'short' });
    expect(weak.status).toBe(400);
    expect(weak.body.code).toBe('invalid_password');
    expect(weak.body.errors.map((e: { code: string }) => e.code)).toContain('password_too_short');

    const wrongCurrent = await http.post('/auth/change-password', { currentPassword: 'not my password', newPassword: 'a fresh new passphrase' });
    expect(wrongCurrent.status).toBe(401);

    const other = client();
    expect((await other.login(user.email, password)).status).toBe(200);
    const changed = await http.post('/auth/change-password', { currentPassword: password, newPassword: 'a fresh new passphrase' });
    expect(changed.status).toBe(200);
    expect((await http.get('/auth/me')).status).toBe(200); // this session lives on
    expect((await other.get('/auth/me')).status).toBe(401); // the other one was revoked
    expect(events.named(BackOfficeEvents.PasswordChanged, user.id)).toHaveLength(1);

    const logout = await http.post('/auth/logout');
    expect(logout.status).toBe(200);
    expect(logout.body).toEqual({ signOutRedirectUrl: null });
    expect(logout.setCookies.some((c) => /^backoffice_session=;/.test(c) && /Max-Age=0/.test(c))).toBe(true);
    expect((await http.get('/auth/me')).status).toBe(401);
    expect((await http.post('/auth/logout')).status).toBe(401);
    expect((await client().login(user.email, 'a fresh new passphrase')).status).toBe(200);
  });

  it('every failure status of the login row', async () => {
    const user = await newUser();
    const http = client();
    const missing = await http.post('/auth/login', { username: user.email });
    expect(missing.status).toBe(400);
    expect(missing.body.code).toBe('validation_failed');
    expect(missing.body.errors.some((e: { field: string }) => e.field === 'password')).toBe(true);

    const unknown = await http.login('nobody-here@example.com', password);
    const wrong = await http.login(user.email, 'wrong password entirely');
    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(401);
    // ASVS 2.2.x / 3.x: no user enumeration through the body
    expect(unknown.text).toBe(wrong.text);
    expect(unknown.body).toEqual({ statusCode: 401, code: 'invalid_credentials', message: 'The username or password is incorrect.' });

    const disabled = await newUser({ groups: ['writer'] });
    await ctx.userManager.setApproved(disabled, false);
    const notAllowed = await http.login(disabled.email, password);
    expect(notAllowed.status).toBe(403);
    expect(notAllowed.body.code).toBe('not_allowed');
    expect((await http.login(disabled.email, 'wrong password entirely')).status).toBe(401);

    for (let i = 0; i < 4; i++) await http.login(user.email, 'wrong password entirely');
    const locked = await http.login(user.email, password);
    expect(locked.status).toBe(423);
    expect(locked.body.code).toBe('locked_out');
    expect(locked.body.retryAfterSeconds).toBeGreaterThan(250);
    expect(Number(locked.headers.get('retry-after'))).toBe(locked.body.retryAfterSeconds);
  });

  it('GET /auth/me answers exactly this body, key for key and in this order (what a client reads; the hot path may change, the answer not)', async () => {
    const user = await newUser({ groups: ['editor', 'admin'] });
    const http = client();
    await http.login(user.email, password);
    const me = await http.get('/auth/me');
    expect(me.status).toBe(200);
    const stored = (await ctx.userManager.findById(user.id))!;
    const { now, idleExpiresAt, absoluteExpiresAt } = me.body.session;
    for (const at of [now, idleExpiresAt, absoluteExpiresAt]) expect(at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(me.text).toBe(JSON.stringify({
      id: user.id,
      username: user.email,
      email: user.email,
      name: stored.name,
      state: 'active',
      groups: ['admin', 'editor'],
      twoFactorEnabled: false,
      lastLoginAt: stored.lastLoginAt!.toISOString(),
      createdAt: stored.createdAt.toISOString(),
      session: { now, idleExpiresAt, absoluteExpiresAt },
      logins: [],
      recoveryCodesLeft: null,
      twoFactorProviders: null,
    }));
    expect(me.headers.get('content-type')).toBe('application/json; charset=utf-8');
  });

  it('a lockout blocks new sign-ins only: five wrong passwords from someone else leave the user\'s live session working (as ASP.NET Identity)', async () => {
    const user = await newUser();
    const http = client();
    await http.login(user.email, password);
    expect((await http.get('/auth/me')).status).toBe(200);
    for (let i = 0; i < 5; i++) await client().login(user.email, 'wrong password entirely');
    expect((await client().login(user.email, password)).status).toBe(423); // new sign-ins refused
    const me = await http.get('/auth/me');
    expect(me.status).toBe(200); // the existing session is not suspended
    expect(me.body.state).toBe('lockedOut');
    await ctx.userManager.setLockoutEnd((await ctx.userManager.findById(user.id))!, null);
    expect((await client().login(user.email, password)).status).toBe(200);
  });

  it('ASVS 3.3.1/3.3.2: idle and absolute timeouts, and disabling the user, end the session', async () => {
    const user = await newUser();
    const http = client();
    await http.login(user.email, password);
    ctx.clock.advance(19 * 60_000);
    expect((await http.get('/auth/me')).status).toBe(200); // slides the idle window
    ctx.clock.advance(19 * 60_000);
    expect((await http.get('/auth/me')).status).toBe(200);
    ctx.clock.advance(21 * 60_000);
    expect((await http.get('/auth/me')).status).toBe(401); // idle
    ctx.clock.advance(-(59 * 60_000));

    const absolute = client();
    await absolute.login(user.email, password);
    for (let h = 0; h < 12 * 4; h++) {
      ctx.clock.advance(15 * 60_000);
      const me = await absolute.get('/auth/me');
      if (h < 12 * 4 - 1) expect(me.status).toBe(200);
      else expect(me.status).toBe(401); // 12 h absolute, never extended
    }
    ctx.clock.advance(-(12 * 60 * 60_000));

    const disabled = client();
    await disabled.login(user.email, password);
    await ctx.userManager.setApproved((await ctx.userManager.findById(user.id))!, false);
    expect((await disabled.get('/auth/me')).status).toBe(401);
  });

  it('ASVS 3.2.2/3.2.3: the session token is random, absent from bodies, stored only as SHA-256', async () => {
    const user = await newUser();
    const http = client();
    const login = await http.login(user.email, password);
    const token = http.cookies.get('backoffice_session')!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits
    expect(login.text).not.toContain(token);
    expect((await http.get('/auth/me')).text).not.toContain(token);
    expect((await http.get('/auth/sessions')).text).not.toContain(token);
    const rows: Array<{ token_hash: string }> = await ctx.app.get(DataSource).query('SELECT token_hash FROM backoffice_session WHERE user_id = $1', [user.id]);
    expect(rows.map((r) => r.token_hash)).toEqual([createHash('sha256').update(token).digest('hex')]);
    const forged = client();
    forged.cookies.set('backoffice_session', rows[0].token_hash);
    expect((await forged.get('/auth/me')).status).toBe(401);
  });

  it('lists own sessions and revokes one; another user\'s session id is a 404', async () => {
    const user = await newUser();
    const a = client();
    const b = client();
    await a.login(user.email, password);
    await b.login(user.email, password);
    const list = await a.get('/auth/sessions');
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(2);
    expect(list.body.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    const otherSession = list.body.find((s: { current: boolean }) => !s.current);
    expect(otherSession).toMatchObject({ ip: '127.0.0.1', userAgent: expect.any(String) });

    const stranger = client();
    await stranger.login((await newUser()).email, password);
    expect((await stranger.delete(`/auth/sessions/${otherSession.id}`)).status).toBe(404);
    expect((await stranger.delete('/auth/sessions/not-a-uuid')).status).toBe(404);
    expect((await a.delete(`/auth/sessions/${otherSession.id}`, { xsrf: false })).status).toBe(403);
    expect((await a.delete(`/auth/sessions/${otherSession.id}`)).status).toBe(204);
    expect((await b.get('/auth/me')).status).toBe(401);
    expect((await a.get('/auth/sessions')).body).toHaveLength(1);
  });

  it('OWASP ASVS 5.0 16.3.2 / 4.0 7.1.3: ending one own session (DELETE /auth/sessions/:id) is audited as backoffice.user.sessions.revoked with actor and IP; a 404 writes nothing', async () => {
    const user = await newUser();
    const a = client();
    const b = client();
    await a.login(user.email, password);
    await b.login(user.email, password);
    const other = (await a.get('/auth/sessions')).body.find((s: { current: boolean }) => !s.current);
    const revokedEntries = () =>
      ctx.app.get(DataSource).query(`SELECT performing_user_id, ip_address, details FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = $2`, [
        user.id,
        BackOfficeEvents.SessionsRevoked,
      ]);
    expect((await a.delete('/auth/sessions/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect(await revokedEntries()).toEqual([]);
    expect((await a.delete(`/auth/sessions/${other.id}`)).status).toBe(204);
    expect(await revokedEntries()).toEqual([{ performing_user_id: user.id, ip_address: '127.0.0.1', details: { count: 1 } }]);
  });

  it('allowConcurrentLogins: false revokes older sessions at login', async () => {
    const single = await createIdentityApp(db, { identity: { session: { allowConcurrentLogins: false }, rateLimits: { enabled: false } } });
    try {
      const created = await single.userManager.createUser({ email: `single-${Date.now()}@example.com`, name: 'S', password });
      const first = new HttpClient(single.url);
      const second = new HttpClient(single.url);
      await first.login(created.value!.email, password);
      await second.login(created.value!.email, password);
      expect((await first.get('/auth/me')).status).toBe(401);
      expect((await second.get('/auth/me')).status).toBe(200);
    } finally {
      await single.close();
    }
  });

  it('ASVS 5.0 7.1.2: allowConcurrentLogins false, two sign-ins at once leave exactly one of them signed in (never none)', async () => {
    const single = await createIdentityApp(db, { identity: { session: { allowConcurrentLogins: false }, rateLimits: { enabled: false }, sessionStore: SignInBarrierStore } });
    try {
      for (let round = 0; round < 3; round++) {
        const created = await single.userManager.createUser({ email: `single-race-${round}-${Date.now()}@example.com`, name: 'S', password });
        const clients = [new HttpClient(single.url), new HttpClient(single.url)];
        SignInBarrierStore.expected = 2;
        const logins = await Promise.all(clients.map((c) => c.login(created.value!.email, password)));
        SignInBarrierStore.expected = 0;
        expect(logins.map((l) => l.status)).toEqual([200, 200]);
        const alive = (await Promise.all(clients.map((c) => c.get('/auth/me')))).filter((me) => me.status === 200);
        expect(alive).toHaveLength(1);
        const rows: Array<{ live: number }> = await single.app.get(DataSource).query('SELECT count(*)::int AS live FROM backoffice_session WHERE user_id = $1 AND revoked_at IS NULL', [created.value!.id]);
        expect(rows[0].live).toBe(1);
      }
    } finally {
      SignInBarrierStore.expected = 0;
      await single.close();
    }
  });

  it('ASVS 2.2.1: 30 concurrent wrong logins over HTTP lock exactly once', async () => {
    const user = await newUser();
    const responses = await Promise.all(Array.from({ length: 30 }, () => client().login(user.email, 'wrong password entirely')));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 401)).toHaveLength(4);
    expect(statuses.filter((s) => s === 423)).toHaveLength(26);
    expect(events.named(BackOfficeEvents.Locked, user.id)).toHaveLength(1);
  });
});
