import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { expectBadBodiesRefused, expectClientError } from '../support/bad-input.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { linkParams } from '../support/smtp.js';
import {
  BACKOFFICE_USER_STORE,
  BackOfficeAuthorize,
  BackOfficeBackgroundTasks,
  BackOfficeEvents,
  RequiresRecentSignIn,
  SendEmailNotification,
  type BackOfficeIdentityModuleOptions,
  type BackOfficeUser,
  type TypeOrmBackOfficeUserStore,
} from '../../src/backoffice-identity/index.js';

const password = TEST_PASSWORD;
const OATHTOOL = ['/usr/bin/oathtool', '/usr/local/bin/oathtool'].find((p) => existsSync(p));
const MINUTE = 60_000;

/** A host route that applies the step-up guard, in both decorator orders. */
@Controller('host')
class HostSensitiveController {
  @Post('danger')
  @HttpCode(200)
  @BackOfficeAuthorize()
  @RequiresRecentSignIn()
  danger() {
    return { ok: true };
  }

  @Post('danger-reversed')
  @HttpCode(200)
  @RequiresRecentSignIn({ withinMinutes: 1 })
  @BackOfficeAuthorize()
  dangerReversed() {
    return { ok: true };
  }

  @Get('public')
  open() {
    return { ok: true };
  }
}

/** A body nested `depth` levels deep, as raw JSON (about 2 bytes per level). */
function deeplyNested(fields: Record<string, string>, depth: number): string {
  return JSON.stringify(fields).replace(/}$/, `,"z":${'['.repeat(depth)}${']'.repeat(depth)}}`);
}

describe('Hardening: what an attacker found (issue #14)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let events: NotificationRecorder;
  let mailDir: string;
  let root: BackOfficeUser;
  let admin: HttpClient;
  const newUser = userFactory(() => ctx, 'hard');
  const client = () => new HttpClient(ctx.url);
  const dataSource = () => ctx.app.get(DataSource);

  async function signedIn(user: Pick<BackOfficeUser, 'email'>): Promise<HttpClient> {
    const http = client();
    const login = await http.login(user.email, password);
    expect(login.status, login.text).toBe(200);
    return http;
  }

  /** The token of the last reset email sent to `email`. */
  async function lastResetToken(email: string): Promise<{ token: string; text: string }> {
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    const sent = events.events.filter((e) => e instanceof SendEmailNotification && e.emailType === 'PasswordReset' && e.message.to === email) as SendEmailNotification[];
    expect(sent.length).toBeGreaterThan(0);
    const text = sent.at(-1)!.message.text;
    return { token: linkParams(text, 'reset-password').token, text };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    mailDir = await mkdtemp(join(tmpdir(), 'bo-hardening-mail-'));
    ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, email: { pickupDirectory: mailDir } },
      controllers: [HostSensitiveController],
    });
    events = NotificationRecorder.attach(ctx.app);
    root = (await ctx.userManager.createUser({ email: 'root@example.com', name: 'Root', password, groups: ['admin'] })).value!;
  });
  beforeEach(async () => {
    admin = await signedIn(root); // tests move the clock: a fresh admin session each time
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
    await rm(mailDir, { recursive: true, force: true });
  });

  describe('1. body depth', () => {
    it('a body nested 1,500 deep answers 400 before any recursion, on every JSON route (unauthenticated and authenticated)', async () => {
      const routes: Array<[HttpClient, string, Record<string, string>]> = [
        [client(), '/auth/login', { username: 'a@b.c', password: 'x' }],
        [client(), '/auth/2fa', { provider: 'totp', code: '123456' }],
        [client(), '/auth/forgot-password', { email: 'a@b.c' }],
        [client(), '/auth/reset-password', { userId: root.id, token: 'x', newPassword: 'y' }],
        [client(), '/auth/invite/accept', { userId: root.id, token: 'x', password: 'y' }],
        [client(), '/auth/reset-password/verify', { userId: root.id, token: 'x' }],
        [client(), '/auth/invite/verify', { userId: root.id, token: 'x' }],
        [admin, '/auth/change-password', { currentPassword: 'x', newPassword: 'y' }],
        [admin, '/auth/reauthenticate', { password: 'x' }],
        [admin, '/users/invite', { email: 'a@b.c', name: 'n' }],
      ];
      for (const [http, path, fields] of routes) {
        const raw = deeplyNested(fields, 1500);
        expect(raw.length).toBeLessThan(4000);
        const result = await http.request('POST', path, { raw });
        expectClientError(result, 400);
        expect(result.body.code, path).toBe('validation_failed');
        expect(result.body.errors[0]).toMatchObject({ code: 'too_deep' });
      }
      // an ordinary body still works: the limit is far above what the DTOs need
      expect((await client().login(root.email, password)).status).toBe(200);
    });
  });

  describe('2. last admin', () => {
    it('only admins who can sign in now count: a pending invitee or a locked admin does not keep the back office administrable', async () => {
      const invite = await admin.post('/users/invite', { email: 'pending-admin@example.com', name: 'Pending', groups: ['admin'] });
      expect(invite.status, invite.text).toBe(201);
      const pendingId = invite.body.user.id;

      const demoteSelf = await admin.request('PUT', `/users/${root.id}/groups`, { body: { groups: ['editor'] } });
      expectClientError(demoteSelf, 409);
      expect(demoteSelf.body.code).toBe('last_admin');
      const disableSelf = await admin.post(`/users/${root.id}/disable`);
      expectClientError(disableSelf, 409);
      // the import route (onConflict: update) applies the same rule
      const imported = await admin.post('/users/import', { users: [{ email: root.email, name: 'Root', groups: ['editor'] }], onConflict: 'update' });
      expect(imported.status, imported.text).toBe(200);
      expect(imported.body.results[0]).toMatchObject({ outcome: 'invalid', errors: [{ code: 'last_admin' }] });

      const locked = await newUser({ groups: ['admin'] });
      await ctx.userManager.setLockoutEnd(locked, new Date(ctx.clock.now().getTime() + 60 * MINUTE));
      expectClientError(await admin.request('PUT', `/users/${root.id}/groups`, { body: { groups: ['editor'] } }), 409);

      // removing the admins who cannot sign in is always allowed: root stays
      expect((await admin.request('PUT', `/users/${pendingId}/groups`, { body: { groups: ['editor'] } })).status).toBe(200);
      expect((await admin.request('PUT', `/users/${locked.id}/groups`, { body: { groups: ['editor'] } })).status).toBe(200);

      // with a second admin who can sign in, the first may step down (and is put back by the second)
      const second = await newUser({ groups: ['admin'] });
      const other = await signedIn(second);
      expect((await admin.request('PUT', `/users/${root.id}/groups`, { body: { groups: ['editor'] } })).status).toBe(200);
      expect((await other.request('PUT', `/users/${root.id}/groups`, { body: { groups: ['admin'] } })).status).toBe(200);
      expect((await other.request('PUT', `/users/${second.id}/groups`, { body: { groups: ['editor'] } })).status).toBe(200);
      admin = await signedIn(root); // the group changes renewed root's security stamp
      expect((await admin.get('/users')).status).toBe(200);
    });
  });

  describe('3. lockout and existing sessions', () => {
    it('five wrong passwords against an admin do not keep that admin out: the admin\'s session still works, and another admin unlocks the account (not the locked admin itself: 409 cannot_unlock_self)', async () => {
      const victim = await newUser({ groups: ['admin'] });
      const session = await signedIn(victim);
      for (let i = 0; i < 5; i++) await client().login(victim.email, 'a wrong guess at it');
      expect((await client().login(victim.email, password)).status).toBe(423);
      expect((await session.get('/auth/me')).status).toBe(200);
      const own = await session.post(`/users/${victim.id}/unlock`);
      expect({ status: own.status, code: own.body.code }).toEqual({ status: 409, code: 'cannot_unlock_self' });
      const unlock = await admin.post(`/users/${victim.id}/unlock`);
      expect(unlock.status, unlock.text).toBe(200);
      expect((await client().login(victim.email, password)).status).toBe(200);
      // disabling still ends sessions
      const disabled = await admin.post(`/users/${victim.id}/disable`);
      expect(disabled.status).toBe(200);
      expect((await session.get('/auth/me')).status).toBe(401);
    });
  });

  describe('4. step-up re-authentication', () => {
    it('ASVS 3.7.1: a session older than 5 minutes cannot touch 2FA or sign out everywhere until POST /auth/reauthenticate', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      expect((await http.post('/auth/2fa/setup', { provider: 'totp' })).status).toBe(200); // fresh sign-in: allowed
      ctx.clock.advance(6 * MINUTE);
      expect((await http.get('/auth/me')).status).toBe(200); // the session itself is fine
      for (const [method, path, body] of [
        ['POST', '/auth/2fa/setup', { provider: 'totp' }],
        ['POST', '/auth/2fa/enable', { provider: 'totp', code: '123456' }],
        ['POST', '/auth/2fa/disable', { password }],
        ['DELETE', '/auth/sessions', undefined],
      ] as const) {
        const refused = await http.request(method, path, { body });
        expectClientError(refused, 401);
        expect(refused.body.code, path).toBe('reauthentication_required');
      }
      const wrong = await http.post('/auth/reauthenticate', { password: 'not the password at all' });
      expectClientError(wrong, 401);
      expect(wrong.body.code).toBe('invalid_credentials');
      expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(1); // counts toward lockout
      const ok = await http.post('/auth/reauthenticate', { password });
      expect(ok.status, ok.text).toBe(200);
      expect(new Date(ok.body.reauthenticatedUntil).getTime() - ctx.clock.now().getTime()).toBeGreaterThan(4 * MINUTE);
      expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(0);
      expect((await http.post('/auth/2fa/setup', { provider: 'totp' })).status).toBe(200);
      ctx.clock.advance(5 * MINUTE + 1000);
      expect((await http.post('/auth/2fa/setup', { provider: 'totp' })).body.code).toBe('reauthentication_required');
    });

    it('a stolen cookie cannot enrol the attacker\'s authenticator: enable needs a recent sign-in of the owner', async () => {
      const owner = await newUser();
      const stolen = await signedIn(owner);
      ctx.clock.advance(10 * MINUTE);
      const setup = await stolen.post('/auth/2fa/setup', { provider: 'totp' });
      expect(setup.body.code).toBe('reauthentication_required');
      expect(setup.body).not.toHaveProperty('secret');
      expect((await ctx.userManager.findById(owner.id))!.twoFactorEnabled).toBe(false);
    });

    it('DELETE /auth/sessions signs out everywhere else, within the window', async () => {
      const user = await newUser();
      const a = await signedIn(user);
      const b = await signedIn(user);
      const c = await signedIn(user);
      const result = await c.delete('/auth/sessions');
      expect(result.status, result.text).toBe(200);
      expect(result.body.revoked).toBe(2);
      expect((await a.get('/auth/me')).status).toBe(401);
      expect((await b.get('/auth/me')).status).toBe(401);
      expect((await c.get('/auth/me')).status).toBe(200);
      expect(events.named(BackOfficeEvents.SessionsRevoked, user.id).at(-1)).toMatchObject({ count: 2 });
      expectClientError(await c.delete('/auth/sessions', { xsrf: false }), 403);
    });

    it('the admin 2FA reset of another user also needs a recent sign-in', async () => {
      const target = await newUser();
      const fresh = await signedIn(root);
      ctx.clock.advance(6 * MINUTE);
      const stale = await fresh.post(`/users/${target.id}/2fa/reset`);
      expect(stale.body.code).toBe('reauthentication_required');
      expect((await fresh.post('/auth/reauthenticate', { password })).status).toBe(200);
      expect((await fresh.post(`/users/${target.id}/2fa/reset`)).status).toBe(200);
    });

    it('@RequiresRecentSignIn() guards host routes in either decorator order, with its own window', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      const anonymous = await client().post(`${ctx.url}/host/danger`, {});
      expect(anonymous.status).toBe(401);
      expect((await http.request('POST', `${ctx.url}/host/danger`, { body: {} })).status).toBe(200);
      expect((await http.request('POST', `${ctx.url}/host/danger-reversed`, { body: {} })).status).toBe(200);
      expect((await http.request('POST', `${ctx.url}/host/danger-reversed`, { body: {}, xsrf: false })).status).toBe(403);
      ctx.clock.advance(2 * MINUTE);
      expect((await http.request('POST', `${ctx.url}/host/danger`, { body: {} })).status).toBe(200);
      const reversed = await http.request('POST', `${ctx.url}/host/danger-reversed`, { body: {} });
      expect(reversed.status).toBe(401);
      expect(reversed.body.code).toBe('reauthentication_required');
    });

    it('reauthenticate: 423 while locked (password unchecked), 403 without XSRF, 401 without a session, clean 4xx for bad bodies', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      expectClientError(await http.post('/auth/reauthenticate', { password }, { xsrf: false }), 403);
      expectClientError(await client().post('/auth/reauthenticate', { password }), 401);
      await expectBadBodiesRefused(http, 'POST', '/auth/reauthenticate', ['password']);
      await ctx.userManager.setLockoutEnd((await ctx.userManager.findById(user.id))!, new Date(ctx.clock.now().getTime() + MINUTE));
      const locked = await http.post('/auth/reauthenticate', { password });
      expectClientError(locked, 423);
      expect(locked.body.code).toBe('locked_out');
    });

    it('a password reset email tells a user with 2FA on that it stays on and to ask an administrator; others are not told', async () => {
      const plain = await newUser();
      const withTwoFactor = await newUser();
      await ctx.userManager.setTwoFactorEnabled(withTwoFactor, true);
      for (const user of [plain, withTwoFactor]) expect((await client().post('/auth/forgot-password', { email: user.email })).status).toBe(202);
      const told = (await lastResetToken(withTwoFactor.email)).text;
      expect(told).toMatch(/two-factor authentication is on/i);
      expect(told).toMatch(/administrator/i);
      expect((await lastResetToken(plain.email)).text).not.toMatch(/two-factor/i);
    });
  });

  describe('5. session list', () => {
    it('GET /auth/sessions lists only sessions that still work after a security-stamp change', async () => {
      const user = await newUser();
      const old = await signedIn(user);
      await signedIn(user);
      await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
      expect((await old.get('/auth/me')).status).toBe(401);
      const current = await signedIn(user);
      const list = await current.get('/auth/sessions');
      expect(list.status).toBe(200);
      expect(list.body).toHaveLength(1);
      expect(list.body[0].current).toBe(true);
    });
  });

  describe('6 and 10. response headers', () => {
    it('every answer under the prefix has Cache-Control: no-store and nosniff, and no X-Powered-By; host routes are untouched', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      const answers = [
        await http.get('/auth/me'),
        await http.post('/auth/2fa/setup', { provider: 'totp' }),
        await http.get('/auth/sessions'),
        await client().get('/auth/me'),
        await client().post('/auth/login', { username: user.email, password: 'wrong password here' }),
        await client().get('/no-such-route'),
      ];
      for (const answer of answers) {
        expect(answer.headers.get('cache-control'), answer.text).toBe('no-store');
        expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
        expect(answer.headers.get('x-powered-by')).toBeNull();
      }
      const host = await client().get(`${ctx.url}/host/public`);
      expect(host.status).toBe(200);
      expect(host.headers.get('cache-control')).toBeNull();
    });

    it('ASVS 4.0 8.2.1 / 14.3.3: answers of the platform\'s body parser under the prefix (malformed JSON, too large, wrong charset) carry the headers too, without X-Powered-By', async () => {
      const login = (raw: string, contentType = 'application/json') => client().request('POST', '/auth/login', { raw, contentType });
      const answers = [
        await login('{"username": "a@b.c", "password": '),
        await login(JSON.stringify({ username: 'x'.repeat(2 * 1024 * 1024), password: 'p' })),
        await login('{"username":"a@b.c","password":"p"}', 'application/json; charset=latin1'),
      ];
      for (const answer of answers) {
        expectClientError(answer);
        expect(answer.headers.get('cache-control'), answer.text).toBe('no-store');
        expect(answer.headers.get('pragma')).toBe('no-cache');
        expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
        expect(answer.headers.get('x-powered-by')).toBeNull();
      }
    });

    it('ASVS 4.0 8.2.1: a differently cased prefix that the router still matches (Express) keeps the headers on the TOTP secret', async () => {
      const http = await signedIn(await newUser());
      const cased = await http.request('POST', `${ctx.url}/BackOffice/auth/2fa/setup`, { body: { provider: 'totp' } });
      // Express routes case-insensitively and answers with the secret; Fastify routes by exact case (404). Either way:
      expect([200, 404]).toContain(cased.status);
      if (cased.status === 200) expect(cased.body.secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(cased.headers.get('cache-control'), cased.text).toBe('no-store');
      expect(cased.headers.get('x-content-type-options')).toBe('nosniff');
      expect(cased.headers.get('pragma')).toBe('no-cache');
    });

    it('ASVS 4.0 8.2.1: a percent-encoded prefix that the router still decodes (Fastify) keeps the headers on the TOTP secret and the login answer', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      const encoded = `${ctx.url}/%62ackoffice`; // "%62" is "b"
      const setup = await http.request('POST', `${encoded}/auth/2fa/setup`, { body: { provider: 'totp' } });
      const login = await client().request('POST', `${encoded}/auth/login`, { body: { username: user.email, password } });
      // Fastify decodes the escape and routes to the module (the secret, a new session); Express does not (404). Either way:
      for (const answer of [setup, login]) {
        expect([200, 404]).toContain(answer.status);
        expect(answer.headers.get('cache-control'), answer.text).toBe('no-store');
        expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
        expect(answer.headers.get('pragma')).toBe('no-cache');
      }
      if (setup.status === 200) expect(setup.body.secret).toMatch(/^[A-Z2-7]{32}$/);
      if (login.status === 200) expect(login.body.status).toBe('success');
    });

    it('ASVS 4.0 8.2.1: an absolute-form request target (RFC 9112 3.2.2), which both platforms route to the module, keeps the headers and the request context', async () => {
      const user = await newUser();
      const { port } = new URL(ctx.url);
      /** One request over a raw socket, with `http://127.0.0.1:<port>/backoffice/...` as its target: the head and body of the answer. */
      const absolute = (method: string, path: string, headers: Record<string, string>, body = '') =>
        new Promise<{ head: string; body: string }>((resolve, reject) => {
          const socket = connect(Number(port), '127.0.0.1', () => {
            const lines = Object.entries({ ...headers, host: `127.0.0.1:${port}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close' })
              .map(([name, value]) => `${name}: ${value}\r\n`);
            socket.write(`${method} http://127.0.0.1:${port}/backoffice${path} HTTP/1.1\r\n${lines.join('')}\r\n${body}`);
          });
          let text = '';
          socket.on('data', (chunk) => (text += chunk));
          socket.on('end', () => resolve({ head: text.slice(0, text.indexOf('\r\n\r\n')), body: text.slice(text.indexOf('\r\n\r\n') + 4) }));
          socket.on('error', reject);
        });
      const login = await absolute('POST', '/auth/login', { 'user-agent': 'absolute-form/1.0' }, JSON.stringify({ username: user.email, password }));
      expect(login.head).toMatch(/^HTTP\/1\.1 200/);
      const token = /set-cookie: backoffice_session=([^;]+)/i.exec(login.head)![1];
      const xsrf = /set-cookie: XSRF-TOKEN=([^;]+)/i.exec(login.head)![1];
      const cookie = `backoffice_session=${token}; XSRF-TOKEN=${xsrf}`;
      const setup = await absolute('POST', '/auth/2fa/setup', { cookie, 'x-xsrf-token': xsrf }, JSON.stringify({ provider: 'totp' }));
      expect(setup.body).toContain('"secret"');
      for (const answer of [login, setup]) {
        expect(answer.head.toLowerCase()).toContain('cache-control: no-store');
        expect(answer.head.toLowerCase()).toContain('x-content-type-options: nosniff');
        expect(answer.head.toLowerCase()).not.toContain('x-powered-by');
      }
      // The sign-in ran in the module's request context: the session has the client's IP and user agent.
      const sessions = await client().get('/auth/sessions', { headers: { cookie } });
      expect(sessions.body).toEqual([expect.objectContaining({ ip: '127.0.0.1', userAgent: 'absolute-form/1.0' })]);
      // A refusal's audit entry names the path, not the scheme and host of the target (OWASP ASVS 4.0 7.2.2).
      const forged = await absolute('POST', '/auth/2fa/setup', { cookie }, JSON.stringify({ provider: 'totp' }));
      expect(forged.head).toMatch(/^HTTP\/1\.1 403/);
      await ctx.app.get(BackOfficeBackgroundTasks).drain();
      const audit = await admin.get(`/audit?userId=${user.id}&event=${BackOfficeEvents.AccessDenied}`);
      expect(audit.body.items.map((e: { details: unknown }) => e.details)).toEqual([expect.objectContaining({ reason: 'xsrf_failed', path: '/backoffice/auth/2fa/setup' })]);
    });
  });

  describe('7. malformed JSON', () => {
    it('answers 400 malformed_json, as the OpenAPI document says', async () => {
      for (const [http, path] of [[client(), '/auth/login'], [client(), '/auth/forgot-password'], [admin, '/auth/change-password']] as const) {
        const result = await http.request('POST', path, { raw: '{"username": "a@b.c", "password": ' });
        expectClientError(result, 400);
        expect(result.body.code, path).toBe('malformed_json');
      }
    });
  });

  describe('8. suspected from the code', () => {
    it('the email validator refuses address lists and display names (, ; < > " ...), so nodemailer never fans out', async () => {
      for (const email of ['a@x.com,b@y.com', 'a@x.com;b@y.com', '"Boss" <a@x.com>', 'a<b@x.com', 'a@x.com>', '"a"@x.com', 'a(b)@x.com']) {
        const result = await admin.post('/users/invite', { email, name: 'Fan Out', groups: ['editor'] });
        expectClientError(result, 400);
        expect(result.body.errors.map((e: { code: string }) => e.code), email).toContain('invalid_email');
        expect((await ctx.userManager.createUser({ email, name: 'x', password })).succeeded, email).toBe(false);
      }
    });

    it('a reset token issued before a disable no longer works after the user is enabled again', async () => {
      const user = await newUser();
      expect((await client().post('/auth/forgot-password', { email: user.email })).status).toBe(202);
      const { token } = await lastResetToken(user.email);
      expect((await admin.post(`/users/${user.id}/disable`)).status).toBe(200);
      expect((await admin.post(`/users/${user.id}/enable`)).status).toBe(200);
      const reset = await client().post('/auth/reset-password', { userId: user.id, token, newPassword: 'a brand new passphrase' });
      expectClientError(reset, 400);
      expect(reset.body.code).toBe('invalid_token');
    });

    it('attempted usernames are stored as a keyed hash, never as text (a password typed as username stays secret); counting still works', async () => {
      const typed = 'My Secret Passphrase 42!';
      for (let i = 0; i < 5; i++) await client().login(typed, 'whatever');
      const rows = await dataSource().query(`SELECT * FROM backoffice_login_attempt`);
      expect(JSON.stringify(rows).toLowerCase()).not.toContain('secret passphrase');
      expect(rows.some((r: { username_hash: string }) => /^[0-9a-f]{64}$/.test(r.username_hash))).toBe(true);
      expect((await client().login(typed, 'whatever')).status).toBe(423); // locked like a real account
    });

    it.skipIf(!OATHTOOL)('recovery codes carry 80 bits and are stored as keyed per-user hashes; each works once', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      const code = execFileSync(OATHTOOL!, ['--totp', '-b', setup.body.secret, '-N', `@${Math.floor(ctx.clock.now().getTime() / 1000)}`], { encoding: 'utf8' }).trim();
      const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code });
      expect(enable.status, enable.text).toBe(200);
      const codes: string[] = enable.body.recoveryCodes;
      for (const c of codes) expect(c).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/); // 16 x 5 bits
      const stored = await dataSource().query(`SELECT code_hash FROM backoffice_user_recovery_code WHERE user_id = $1`, [user.id]);
      expect(stored).toHaveLength(10);
      const { createHash } = await import('node:crypto');
      for (const { code_hash } of stored) {
        expect(code_hash).toMatch(/^v2:[0-9a-f]{64}$/);
        for (const c of codes) expect(code_hash).not.toContain(createHash('sha256').update(c.replace(/-/g, '')).digest('hex'));
      }
      const login = async () => {
        const second = client();
        expect((await second.login(user.email, password)).body.status).toBe('requiresTwoFactor');
        return second.post('/auth/2fa', { provider: 'recovery', code: codes[3].toLowerCase() });
      };
      expect((await login()).status).toBe(200);
      expect((await login()).status).toBe(401);
    });
  });

  describe('9. behaviours that had no test', () => {
    it('the session\'s security-stamp check: a new stamp ends the session', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
      expect((await http.get('/auth/me')).status).toBe(401);
    });

    it('a group change renews the security stamp and so ends the user\'s sessions (README)', async () => {
      const user = await newUser({ groups: ['editor'] });
      const http = await signedIn(user);
      const before = (await ctx.userManager.findById(user.id))!.securityStamp;
      expect((await admin.request('PUT', `/users/${user.id}/groups`, { body: { groups: ['writer'] } })).status).toBe(200);
      expect((await ctx.userManager.findById(user.id))!.securityStamp).not.toBe(before);
      expect((await http.get('/auth/me')).status).toBe(401);
    });

    it.skipIf(!OATHTOOL)('enabling and disabling 2FA revoke the user\'s other sessions (rows ended, not just stale)', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      const other = await signedIn(user);
      const sessionIds = async () =>
        (await dataSource().query(`SELECT id, revoked_at FROM backoffice_session WHERE user_id = $1 ORDER BY created_at`, [user.id])) as Array<{ id: string; revoked_at: Date | null }>;
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      const code = execFileSync(OATHTOOL!, ['--totp', '-b', setup.body.secret, '-N', `@${Math.floor(ctx.clock.now().getTime() / 1000)}`], { encoding: 'utf8' }).trim();
      expect((await http.post('/auth/2fa/enable', { provider: 'totp', code })).status).toBe(200);
      let rows = await sessionIds();
      expect(rows.filter((r) => r.revoked_at === null)).toHaveLength(1);
      expect((await other.get('/auth/me')).status).toBe(401);
      expect((await http.get('/auth/me')).status).toBe(200);
      // disable, with another (second-factor) session open
      const third = client();
      await third.login(user.email, password);
      const code2 = execFileSync(OATHTOOL!, ['--totp', '-b', setup.body.secret, '-N', `@${Math.floor(ctx.clock.now().getTime() / 1000) + 30}`], { encoding: 'utf8' }).trim();
      ctx.clock.advance(30_000);
      expect((await third.post('/auth/2fa', { provider: 'totp', code: code2 })).status).toBe(200);
      expect((await http.post('/auth/2fa/disable', { password })).status).toBe(200);
      rows = await sessionIds();
      expect(rows.filter((r) => r.revoked_at === null)).toHaveLength(1);
      expect((await third.get('/auth/me')).status).toBe(401);
    });

    it('audit paging: skip, take and total, newest first', async () => {
      const user = await newUser();
      for (let i = 0; i < 3; i++) await client().login(user.email, password);
      const first = await admin.get(`/audit?userId=${user.id}&take=2`);
      expect(first.status).toBe(200);
      expect(first.body.items).toHaveLength(2);
      expect(first.body.total).toBeGreaterThanOrEqual(3);
      const second = await admin.get(`/audit?userId=${user.id}&take=2&skip=2`);
      expect(second.body.total).toBe(first.body.total);
      expect(second.body.items.length).toBe(Math.min(2, first.body.total - 2));
      const ids = new Set(first.body.items.map((i: { id: string }) => i.id));
      for (const item of second.body.items) expect(ids.has(item.id)).toBe(false);
      const all = await admin.get(`/audit?userId=${user.id}&take=200`);
      expect(all.body.items).toHaveLength(first.body.total);
      const times = all.body.items.map((i: { dateTimeUtc?: string; createdAt?: string }) => new Date(i.dateTimeUtc ?? i.createdAt!).getTime());
      expect([...times].sort((a, b) => b - a)).toEqual(times);
    });

    it('the admin 2FA reset route: 403 for a non-admin, 404 for an unknown user', async () => {
      const editor = await signedIn(await newUser({ groups: ['editor'] }));
      expectClientError(await editor.post(`/users/${root.id}/2fa/reset`), 403);
      expectClientError(await admin.post('/users/00000000-0000-4000-8000-000000000000/2fa/reset'), 404);
    });

    it('ASVS 4.2.2: PUT without the XSRF header, and with the header right but the cookie wrong, are refused', async () => {
      const user = await newUser({ groups: ['editor'] });
      const missing = await admin.request('PUT', `/users/${user.id}/groups`, { body: { groups: ['writer'] }, xsrf: false });
      expectClientError(missing, 403);
      expect(missing.body.code).toBe('xsrf_failed');
      const header = admin.cookies.get('XSRF-TOKEN')!;
      const cookie = `backoffice_session=${encodeURIComponent(admin.cookies.get('backoffice_session')!)}; XSRF-TOKEN=forged-cookie-value`;
      const wrongCookie = await admin.request('PUT', `/users/${user.id}/groups`, { body: { groups: ['writer'] }, headers: { cookie, 'x-xsrf-token': header } });
      expectClientError(wrongCookie, 403);
      expect(wrongCookie.body.code).toBe('xsrf_failed');
      expect((await ctx.userManager.findById(user.id))!.groups).toEqual(['editor']);
    });

    it('last-seen writes are throttled: at most one per minute per session', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      // The write runs after the response (#15): wait for the app's background work before reading the row.
      const lastSeen = async () => {
        await ctx.app.get(BackOfficeBackgroundTasks).drain();
        return new Date((await dataSource().query(`SELECT last_seen_at FROM backoffice_session WHERE user_id = $1`, [user.id]))[0].last_seen_at).getTime();
      };
      const start = await lastSeen();
      ctx.clock.advance(20_000);
      expect((await http.get('/auth/me')).status).toBe(200);
      expect(await lastSeen()).toBe(start);
      ctx.clock.advance(45_000);
      expect((await http.get('/auth/me')).status).toBe(200);
      expect(await lastSeen()).toBeGreaterThan(start);
    });

    it('ASVS 2.5.1: a reset token works once, also when reused later (sequentially), and the store agrees', async () => {
      const user = await newUser();
      await client().post('/auth/forgot-password', { email: user.email });
      const { token } = await lastResetToken(user.email);
      const first = await client().post('/auth/reset-password', { userId: user.id, token, newPassword: 'first new passphrase' });
      expect(first.status, first.text).toBe(200);
      const again = await client().post('/auth/reset-password', { userId: user.id, token, newPassword: 'second new passphrase' });
      expectClientError(again, 400);
      expect(again.body.code).toBe('invalid_token');
      expect((await client().login(user.email, 'first new passphrase')).status).toBe(200);

      const store = ctx.app.get<TypeOrmBackOfficeUserStore>(BACKOFFICE_USER_STORE);
      const now = ctx.clock.now();
      const hash = 'a'.repeat(64);
      await store.replaceToken(user.id, 'invite', hash, new Date(now.getTime() + MINUTE), now);
      expect(await store.isTokenLive(user.id, 'invite', hash, now)).toBe(true);
      expect(await store.consumeToken(user.id, 'invite', hash, now)).toBe(true);
      expect(await store.consumeToken(user.id, 'invite', hash, now)).toBe(false);
      expect(await store.isTokenLive(user.id, 'invite', hash, now)).toBe(false);
    });
  });
});

describe('Hardening: rate limits and lockout options end to end', () => {
  let db: TestDatabase;
  const apps: IdentityApp[] = [];
  const start = async (identity: BackOfficeIdentityModuleOptions) => {
    const app = await createIdentityApp(db, { identity: { ipResolver: { useValue: { resolveIp: () => `203.0.113.${apps.length + 1}` } }, ...identity } });
    apps.push(app);
    return app;
  };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await db?.drop();
  });

  it('forgot-password: at most 5 per hour per email (the sixth answers 429)', async () => {
    const ctx = await start({});
    const http = new HttpClient(ctx.url);
    for (let i = 0; i < 5; i++) expect((await http.post('/auth/forgot-password', { email: 'Someone@Example.com' })).status).toBe(202);
    const sixth = await http.post('/auth/forgot-password', { email: 'someone@example.com' });
    expectClientError(sixth, 429);
    expect(Number(sixth.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await http.post('/auth/forgot-password', { email: 'another@example.com' })).status).toBe(202);
  });

  it('POST /auth/2fa is rate limited per IP like login', async () => {
    const ctx = await start({ rateLimits: { loginPerIp: 3 } });
    const http = new HttpClient(ctx.url);
    for (let i = 0; i < 3; i++) expect((await http.post('/auth/2fa', { provider: 'totp', code: '123456' })).status).toBe(401);
    expectClientError(await http.post('/auth/2fa', { provider: 'totp', code: '123456' }), 429);
  });

  it('lockout.durationMinutes 0 locks until an admin unlocks, however long one waits', async () => {
    const ctx = await start({ lockout: { durationMinutes: 0 }, rateLimits: { enabled: false } });
    const user = (await ctx.userManager.createUser({ email: 'forever@example.com', name: 'F', password, groups: ['editor'] })).value!;
    const adminUser = (await ctx.userManager.createUser({ email: 'unlocker@example.com', name: 'U', password, groups: ['admin'] })).value!;
    const admin = new HttpClient(ctx.url);
    expect((await admin.login(adminUser.email, password)).status).toBe(200);
    for (let i = 0; i < 5; i++) await new HttpClient(ctx.url).login(user.email, 'wrong guess number');
    const locked = await new HttpClient(ctx.url).login(user.email, password);
    expectClientError(locked, 423);
    expect(locked.body.retryAfterSeconds).toBeNull();
    expect(locked.headers.get('retry-after')).toBeNull();
    ctx.clock.advance(365 * 24 * 60 * MINUTE);
    expect((await new HttpClient(ctx.url).login(user.email, password)).status).toBe(423);
    expect((await admin.login(adminUser.email, password)).status).toBe(200);
    expect((await admin.post(`/users/${user.id}/unlock`)).status).toBe(200);
    expect((await new HttpClient(ctx.url).login(user.email, password)).status).toBe(200);
  });

  it('session.reauthenticationMinutes sets the step-up window', async () => {
    const ctx = await start({ session: { reauthenticationMinutes: 1 }, rateLimits: { enabled: false } });
    await ctx.userManager.createUser({ email: 'window@example.com', name: 'W', password });
    const http = new HttpClient(ctx.url);
    await http.login('window@example.com', password);
    ctx.clock.advance(61_000);
    expect((await http.post('/auth/2fa/setup', { provider: 'totp' })).body.code).toBe('reauthentication_required');
  });
});
