import { createHmac } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { BackOfficeEvents, BackOfficeGroupService, BackOfficeSessionService, TypeOrmBackOfficeSessionStore } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { expectSignedIn } from '../support/external-login-results.js';
import { externalLoginIdentity, waitForExternalProviders } from '../support/external-login-app.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { independentCode } from '../support/oathtool.js';
import { ExternalLoginPerson, TestOidcProvider } from '../support/oidc-provider.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';

const SESSION_COOKIE = 'backoffice_session';
const XSRF_COOKIE = 'XSRF-TOKEN';
const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';
const SECRET = 'rotation-client-secret-0123456789';
const MINUTE = 60_000;

/** A custom session store without the optional `replaceTokenHash`: the renewal goes through `update`. */
@Injectable()
class StoreWithoutReplaceTokenHash extends TypeOrmBackOfficeSessionStore {}
Object.defineProperty(StoreWithoutReplaceTokenHash.prototype, 'replaceTokenHash', { value: undefined });

/** The value a response set for cookie `name` (undefined: not set, or cleared). */
function cookieSet(result: HttpResult, name: string): string | undefined {
  const cookie = result.setCookies.find((c) => c.startsWith(`${name}=`) && !/Max-Age=0/i.test(c));
  return cookie === undefined ? undefined : decodeURIComponent(cookie.slice(name.length + 1).split(';')[0]);
}

/** A second client with the same cookies as `client` now: the browser tab that still holds the old cookie. */
function copyOf(client: HttpClient): HttpClient {
  const copy = client.fresh();
  for (const [name, value] of client.cookies) copy.cookies.set(name, value);
  return copy;
}

/**
 * OWASP ASVS 5.0 7.2.4: "the application generates a new session token on user authentication, including
 * re-authentication, and terminates the current session token." Every step-up (password, passkey, a provider
 * round trip) gives the session a new token (and the XSRF token bound to it); the old one stops at once. The session
 * stays the same session (id, creation, deadlines) in `GET /auth/sessions`.
 */
describe('step-up re-authentication issues a new session token (OWASP ASVS 5.0 7.2.4)', () => {
  let db: TestDatabase;
  let idp: TestOidcProvider;
  let ctx: IdentityApp;
  let port: number;
  let counter = 0;
  const newUser = userFactory(() => ctx, 'rotate');

  beforeAll(async () => {
    db = await createTestDatabase();
    port = await TestOidcProvider.reservePort();
    idp = await TestOidcProvider.start([
      { client_id: 'rotation', client_secret: SECRET, redirect_uris: [`http://127.0.0.1:${port}/backoffice/auth/external/oidc/callback`] },
    ]);
    ctx = await createIdentityApp(db, {
      port,
      identity: externalLoginIdentity(
        port,
        [{ name: 'oidc', displayName: 'Single sign-on', issuer: idp.issuer, clientId: 'rotation', clientSecret: SECRET, autoLink: { enabled: true, defaultGroups: [] } }],
        { passkeys: { rpId: RP_ID, rpName: 'Acme', origins: [ORIGIN] } },
      ),
    });
    await waitForExternalProviders(ctx.url);
    await ctx.app.get(BackOfficeGroupService).create({ alias: 'vault', name: 'Vault', permissions: [], requireTwoFactor: true });
  });
  afterAll(async () => {
    await ctx?.close();
    await idp?.stop();
    await db?.drop();
  });

  async function signedIn(email: string): Promise<HttpClient> {
    const http = new HttpClient(ctx.url);
    const res = await http.login(email, TEST_PASSWORD);
    expect(res.status, res.text).toBe(200);
    return http;
  }

  /**
   * A step-up (`path`) sent by `http` with a wrong password (`body`) renews nothing: 401 and no session cookie.
   * Returns a copy of `http` with the cookies it holds now, the `before` of expectRotated.
   */
  async function expectWrongPasswordRenewsNothing(http: HttpClient, path: string, body: Record<string, string>): Promise<HttpClient> {
    const wrong = await http.post(path, body);
    expectClientError(wrong, 401);
    expect(cookieSet(wrong, SESSION_COOKIE)).toBeUndefined();
    return copyOf(http);
  }

  /**
   * Checks a successful step-up answer of `http` (which kept its cookies), given the cookies it held before: a new
   * session token and the XSRF token of it were set; the old token no longer authenticates (safe or not), nor does
   * the new token with the old XSRF token; the new one reaches a step-up route; the session list shows the same
   * session, current.
   */
  async function expectRotated(stepUp: HttpResult, http: HttpClient, before: HttpClient, sessionsBefore: Array<{ id: string; createdAt: string }>) {
    const oldToken = before.cookies.get(SESSION_COOKIE)!;
    const oldXsrf = before.cookies.get(XSRF_COOKIE)!;
    const token = cookieSet(stepUp, SESSION_COOKIE);
    expect(token, 'a new session cookie').toBeDefined();
    expect(token).not.toBe(oldToken);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const xsrf = cookieSet(stepUp, XSRF_COOKIE);
    expect(xsrf).toBe(createHmac('sha256', token!).update('backoffice-xsrf').digest('base64url'));
    expect(xsrf).not.toBe(oldXsrf);
    const sessionCookie = stepUp.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
    expect(sessionCookie).toMatch(/HttpOnly/i);
    expect(sessionCookie).toMatch(/SameSite=Strict/i);

    // The old token is terminated at once: a read, a write, a peek.
    expectClientError(await before.get('/auth/me'), 401);
    expectClientError(await before.get('/auth/me', { headers: { 'x-backoffice-session-peek': '1' } }), 401);
    expectClientError(await before.post('/auth/logout', {}), 401);
    // The new session token with the old XSRF token: refused.
    const mixed = await http.post('/auth/logout', {}, { headers: { 'x-xsrf-token': oldXsrf } });
    expectClientError(mixed, 403);
    expect(mixed.body.code).toBe('xsrf_failed');

    // The same session: id, creation, still the current one; the step-up holds (a @RequiresRecentSignIn() route).
    const me = await http.get('/auth/me');
    expect(me.status, me.text).toBe(200);
    const sessions = await http.get('/auth/sessions');
    expect(sessions.status, sessions.text).toBe(200);
    expect(sessions.body.map((s: { id: string }) => s.id).sort()).toEqual(sessionsBefore.map((s) => s.id).sort());
    const current = sessions.body.filter((s: { current: boolean }) => s.current);
    expect(current).toHaveLength(1);
    expect(current[0].createdAt).toBe(sessionsBefore.find((s) => s.id === current[0].id)!.createdAt);
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status, setup.text).toBe(200);
  }

  it('OWASP ASVS 5.0 7.2.4: a password step-up (POST /auth/reauthenticate) sets a new session token and XSRF token; the old token stops at once; GET /auth/sessions shows the same session', async () => {
    const user = await newUser();
    const http = await signedIn(user.email);
    const elsewhere = await signedIn(user.email);
    const sessionsBefore = (await http.get('/auth/sessions')).body;
    ctx.clock.advance(6 * MINUTE);
    try {
      expect((await http.post('/auth/2fa/setup', { provider: 'totp' })).body.code).toBe('reauthentication_required');
      const before = await expectWrongPasswordRenewsNothing(http, '/auth/reauthenticate', { password: 'not the password at all' });
      const stepUp = await http.post('/auth/reauthenticate', { password: TEST_PASSWORD });
      expect(stepUp.status, stepUp.text).toBe(200);
      expect(Date.parse(stepUp.body.reauthenticatedUntil)).toBeGreaterThan(ctx.clock.now().getTime());
      await expectRotated(stepUp, http, before, sessionsBefore);
      // The user's other session is another session: untouched.
      expect((await elsewhere.get('/auth/me')).status).toBe(200);
    } finally {
      ctx.clock.advance(-6 * MINUTE);
    }
  });

  it('OWASP ASVS 4.0 3.3.1 / 5.0 7.3.2: the cookies a step-up renews live as long as the session has left (its absolute deadline is unchanged), not a whole new absolute timeout', async () => {
    const user = await newUser();
    const http = await signedIn(user.email);
    const { session } = (await http.get('/auth/me')).body as { session: { absoluteExpiresAt: string } };
    const deadline = Date.parse(session.absoluteExpiresAt);
    ctx.clock.advance(10 * MINUTE);
    try {
      const stepUp = await http.post('/auth/reauthenticate', { password: TEST_PASSWORD });
      expect(stepUp.status, stepUp.text).toBe(200);
      const remaining = Math.floor((deadline - ctx.clock.now().getTime()) / 1000);
      expect(remaining).toBeLessThanOrEqual(12 * 3600 - 10 * 60);
      expect(remaining).toBeGreaterThan(12 * 3600 - 11 * 60);
      for (const name of [SESSION_COOKIE, XSRF_COOKIE]) {
        const cookie = stepUp.setCookies.find((c) => c.startsWith(`${name}=`))!;
        expect(cookie, name).toBeDefined();
        const maxAge = Number(/;\s*Max-Age=(\d+)/i.exec(cookie)?.[1]);
        expect(maxAge, `${name}: ${cookie}`).toBeGreaterThanOrEqual(remaining - 1);
        expect(maxAge, `${name}: ${cookie}`).toBeLessThanOrEqual(remaining + 1);
        const expires = /;\s*Expires=([^;]+)/i.exec(cookie)?.[1];
        if (expires !== undefined) expect(Date.parse(expires), `${name}: ${cookie}`).toBeLessThanOrEqual(deadline + 1000);
      }
      // The session's deadline is unchanged.
      expect((await http.get('/auth/me')).body.session.absoluteExpiresAt).toBe(session.absoluteExpiresAt);
    } finally {
      ctx.clock.advance(-10 * MINUTE);
    }
  });

  it('OWASP ASVS 5.0 7.2.4: of two step-ups sent at once with the same token, one renews it (its cookie works), the other is refused 401 without a cookie', async () => {
    const user = await newUser();
    const http = await signedIn(user.email);
    const tabs = [copyOf(http), copyOf(http)];
    const results = await Promise.all(tabs.map((tab) => tab.post('/auth/reauthenticate', { password: TEST_PASSWORD })));
    const won = results.filter((r) => r.status === 200);
    expect(won, results.map((r) => r.text).join(' | ')).toHaveLength(1);
    const lost = results.find((r) => r.status !== 200)!;
    expectClientError(lost, 401);
    expect(cookieSet(lost, SESSION_COOKIE)).toBeUndefined();
    const winner = tabs[results.indexOf(won[0])];
    expect((await winner.get('/auth/me')).status).toBe(200);
    expectClientError(await http.get('/auth/me'), 401);
  });

  it('OWASP ASVS 5.0 7.2.4: a passkey step-up (POST /auth/reauthenticate/passkey) sets a new session token; the old one stops at once', async () => {
    const user = await newUser();
    const http = await signedIn(user.email);
    const authenticator = new SoftwareAuthenticator(ORIGIN, RP_ID);
    const creation = await http.post('/auth/passkeys/options', {});
    expect((await http.post('/auth/passkeys', { name: 'Laptop', credential: authenticator.register(creation.body) })).status).toBe(201);
    const sessionsBefore = (await http.get('/auth/sessions')).body;
    ctx.clock.advance(6 * MINUTE);
    try {
      const options = await http.post('/auth/reauthenticate/passkey/options', {});
      expect(options.status, options.text).toBe(200);
      const before = copyOf(http);
      const stepUp = await http.post('/auth/reauthenticate/passkey', { credential: authenticator.assert(options.body) });
      expect(stepUp.status, stepUp.text).toBe(200);
      await expectRotated(stepUp, http, before, sessionsBefore);
    } finally {
      ctx.clock.advance(-6 * MINUTE);
    }
  });

  it('OWASP ASVS 5.0 7.2.4: a step-up through the linked provider (POST /auth/external/:name/reauthenticate, then the callback) sets a new session token; the old one stops at once', async () => {
    const login = `rotation-${++counter}-${Date.now()}`;
    idp.accounts.set(login, { email: `${login}@idp.example.com`, email_verified: true, name: 'Provider Person' });
    const person = new ExternalLoginPerson(ctx.url);
    const challenge = await person.challenge('oidc');
    expectSignedIn(await person.deliver(await person.idp.authorize(challenge.headers.get('location')!, login)));
    const sessionsBefore = (await person.app.get('/auth/sessions')).body;
    ctx.clock.advance(6 * MINUTE);
    try {
      const step = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account' });
      expect(step.status, step.text).toBe(200);
      const callbackUrl = await person.idp.authorize(step.body.redirectUrl, login);
      const before = copyOf(person.app);
      const back = await person.deliver(callbackUrl);
      expect(back.status, back.text).toBe(302);
      expect(back.headers.get('location')).toBe('/backoffice/account');
      await expectRotated(back, person.app, before, sessionsBefore);
    } finally {
      ctx.clock.advance(-6 * MINUTE);
    }
  });

  it('OWASP ASVS 5.0 7.2.4: linking a provider (a fresh sign-in there, which counts as a re-authentication) sets a new session token; the old one stops at once', async () => {
    const user = await newUser();
    const login = `rotation-link-${++counter}-${Date.now()}`;
    idp.accounts.set(login, { email: `${login}@idp.example.com`, email_verified: true });
    const person = new ExternalLoginPerson(ctx.url);
    expect((await person.app.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const sessionsBefore = (await person.app.get('/auth/sessions')).body;
    const link = await person.app.post('/auth/external/oidc/link', { returnUrl: '/backoffice/account' });
    expect(link.status, link.text).toBe(200);
    const callbackUrl = await person.idp.authorize(link.body.redirectUrl, login);
    const before = copyOf(person.app);
    ctx.clock.advance(6 * MINUTE);
    try {
      const back = await person.deliver(callbackUrl);
      expect(back.status, back.text).toBe(302);
      expect(back.headers.get('location')).toBe('/backoffice/account');
      await expectRotated(back, person.app, before, sessionsBefore);
      expect((await person.app.get('/auth/me')).body.logins.map((l: { provider: string }) => l.provider)).toEqual(['oidc']);
    } finally {
      ctx.clock.advance(-6 * MINUTE);
    }
  });

  it('OWASP ASVS 5.0 7.2.4: a failed provider step-up (another provider account) renews nothing: the session keeps its token', async () => {
    const login = `rotation-own-${++counter}-${Date.now()}`;
    const other = `rotation-other-${counter}-${Date.now()}`;
    idp.accounts.set(login, { email: `${login}@idp.example.com`, email_verified: true });
    idp.accounts.set(other, { email: `${other}@idp.example.com`, email_verified: true });
    const person = new ExternalLoginPerson(ctx.url);
    const challenge = await person.challenge('oidc');
    expectSignedIn(await person.deliver(await person.idp.authorize(challenge.headers.get('location')!, login)));
    const token = person.app.cookies.get(SESSION_COOKIE);
    const step = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account' });
    const back = await person.deliver(await person.idp.authorize(step.body.redirectUrl, other));
    expect(back.headers.get('location')).toBe('/backoffice/account?error=not_allowed');
    expect(cookieSet(back, SESSION_COOKIE)).toBeUndefined();
    expect(person.app.cookies.get(SESSION_COOKIE)).toBe(token);
    expect((await person.app.get('/auth/me')).status).toBe(200);
  });

  it('OWASP ASVS 5.0 7.2.4: changing the password (POST /auth/change-password, the current password checked) sets a new session token and XSRF token and records the re-authentication; the old token stops at once; a wrong current password renews nothing', async () => {
    const user = await newUser();
    const http = await signedIn(user.email);
    const sessionsBefore = (await http.get('/auth/sessions')).body;
    ctx.clock.advance(6 * MINUTE);
    try {
      const before = await expectWrongPasswordRenewsNothing(http, '/auth/change-password', { currentPassword: 'not the password at all', newPassword: 'A whole new passphrase 42!' });
      const changed = await http.post('/auth/change-password', { currentPassword: TEST_PASSWORD, newPassword: 'A whole new passphrase 42!' });
      expect(changed.status, changed.text).toBe(200);
      // The password check counts as a re-authentication: the step-up route at the end of expectRotated passes.
      await expectRotated(changed, http, before, sessionsBefore);
    } finally {
      ctx.clock.advance(-6 * MINUTE);
    }
  });

  it('OWASP ASVS 5.0 7.2.4: turning two-factor off (POST /auth/2fa/disable, the password checked) sets a new session token and XSRF token and records the re-authentication; the old token stops at once; a wrong password renews nothing', async () => {
    const user = await newUser();
    const http = await signedIn(user.email);
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status, setup.text).toBe(200);
    const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expect(enable.status, enable.text).toBe(200);
    const sessionsBefore = (await http.get('/auth/sessions')).body;
    ctx.clock.advance(4 * MINUTE);
    try {
      const before = await expectWrongPasswordRenewsNothing(http, '/auth/2fa/disable', { password: 'not the password at all' });
      const disabled = await http.post('/auth/2fa/disable', { password: TEST_PASSWORD });
      expect(disabled.status, disabled.text).toBe(200);
      await expectRotated(disabled, http, before, sessionsBefore);
      expect((await http.get('/auth/me')).body.twoFactorEnabled).toBe(false);
      // 6 minutes after the sign-in, 2 after the password: the re-authentication was recorded.
      ctx.clock.advance(2 * MINUTE);
      const later = await http.post('/auth/2fa/setup', { provider: 'totp' });
      expect(later.status, later.text).toBe(200);
    } finally {
      ctx.clock.advance(-6 * MINUTE);
    }
  });

  it('OWASP ASVS 5.0 7.2.4: with a custom session store without replaceTokenHash, a step-up renews the token through update', async () => {
    const other = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, sessionStore: StoreWithoutReplaceTokenHash } });
    try {
      const user = await newUser();
      const http = new HttpClient(other.url);
      expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
      const sessionsBefore = (await http.get('/auth/sessions')).body;
      const before = copyOf(http);
      const stepUp = await http.post('/auth/reauthenticate', { password: TEST_PASSWORD });
      expect(stepUp.status, stepUp.text).toBe(200);
      await expectRotated(stepUp, http, before, sessionsBefore);
    } finally {
      await other.close();
    }
  });

  /** A member of a group that requires 2FA, signed in with a password: a setup-only session, enrolment started. */
  async function setupOnlySession(): Promise<{ http: HttpClient; secret: string; sessionId: string }> {
    const user = await newUser({ groups: ['vault'] });
    const http = new HttpClient(ctx.url);
    const login = await http.login(user.email, TEST_PASSWORD);
    expect(login.status, login.text).toBe(200);
    expect(login.body.status).toBe('requiresTwoFactorSetup');
    expect((await http.get('/auth/sessions')).body.code).toBe('two_factor_setup_required');
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status, setup.text).toBe(200);
    const sessionId = (await ctx.app.get(BackOfficeSessionService).list(user))[0].id;
    return { http, secret: setup.body.secret, sessionId };
  }

  it('OWASP ASVS 5.0 7.2.4: completing enforced two-factor enrolment (POST /auth/2fa/enable in a setup-only session) sets a new session token and XSRF token; the old token stops at once and never reaches the full session', async () => {
    const { http, secret, sessionId } = await setupOnlySession();
    const before = copyOf(http);
    const oldToken = before.cookies.get(SESSION_COOKIE)!;
    const oldXsrf = before.cookies.get(XSRF_COOKIE)!;
    // A wrong code renews nothing.
    const wrong = await http.post('/auth/2fa/enable', { provider: 'totp', code: '000000' });
    expectClientError(wrong, 400);
    expect(cookieSet(wrong, SESSION_COOKIE)).toBeUndefined();
    expect((await before.get('/auth/me')).status).toBe(200);

    const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(secret, ctx.clock) });
    expect(enable.status, enable.text).toBe(200);
    expect(enable.body.recoveryCodes).toHaveLength(10);
    const token = cookieSet(enable, SESSION_COOKIE);
    expect(token, 'a new session cookie').toBeDefined();
    expect(token).not.toBe(oldToken);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const xsrf = cookieSet(enable, XSRF_COOKIE);
    expect(xsrf).toBe(createHmac('sha256', token!).update('backoffice-xsrf').digest('base64url'));
    expect(xsrf).not.toBe(oldXsrf);
    expect(enable.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`))).toMatch(/HttpOnly/i);

    // The old token is terminated at once: neither the full session's routes nor the setup-only ones.
    expectClientError(await before.get('/auth/sessions'), 401);
    expectClientError(await before.get('/auth/me'), 401);
    expectClientError(await before.get('/auth/me', { headers: { 'x-backoffice-session-peek': '1' } }), 401);
    expectClientError(await before.post('/auth/logout', {}), 401);
    // The new session token with the old XSRF token: refused.
    const mixed = await http.post('/auth/logout', {}, { headers: { 'x-xsrf-token': oldXsrf } });
    expectClientError(mixed, 403);
    expect(mixed.body.code).toBe('xsrf_failed');

    // The new token holds the same session, now a full one.
    const sessions = await http.get('/auth/sessions');
    expect(sessions.status, sessions.text).toBe(200);
    expect(sessions.body.map((s: { id: string; current: boolean }) => [s.id, s.current])).toEqual([[sessionId, true]]);
    expect((await http.get('/auth/me')).body.twoFactorEnabled).toBe(true);
  });

  it('OWASP ASVS 5.0 7.2.4: completing enforced two-factor enrolment renews the token without extending the step-up window of the sign-in', async () => {
    const { http, secret } = await setupOnlySession();
    ctx.clock.advance(4 * MINUTE);
    try {
      const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(secret, ctx.clock) });
      expect(enable.status, enable.text).toBe(200);
      expect(cookieSet(enable, SESSION_COOKIE)).toBeDefined();
      ctx.clock.advance(2 * MINUTE); // 6 minutes after the password, 2 after the code
      const sensitive = await http.request('DELETE', '/auth/sessions');
      expectClientError(sensitive, 401);
      expect(sensitive.body.code).toBe('reauthentication_required');
    } finally {
      ctx.clock.advance(-6 * MINUTE);
    }
  });

  it('OWASP ASVS 5.0 7.2.4: of two enrolment confirmations sent at once with one setup-only token, only one gets a new token; the old token ends', async () => {
    const { http, secret } = await setupOnlySession();
    const tabs = [copyOf(http), copyOf(http)];
    const code = independentCode(secret, ctx.clock);
    const results = await Promise.all(tabs.map((tab) => tab.post('/auth/2fa/enable', { provider: 'totp', code })));
    const won = results.filter((r) => r.status === 200);
    expect(won, results.map((r) => r.text).join(' | ')).toHaveLength(1);
    const lost = results.find((r) => r.status !== 200)!;
    expectClientError(lost, lost.status);
    expect(cookieSet(lost, SESSION_COOKIE)).toBeUndefined();
    expect(cookieSet(won[0], SESSION_COOKIE)).toBeDefined();
    expect((await tabs[results.indexOf(won[0])].get('/auth/sessions')).status).toBe(200);
    expectClientError(await http.get('/auth/me'), 401);
  });

  it('OWASP ASVS 5.0 16.3.1: every successful step-up (password, passkey, the linked provider) is audited once as backoffice.user.reauthenticated with actor, IP and details.method, never as a sign-in', async () => {
    const audit = (userId: string) =>
      ctx.app.get(DataSource).query(
        `SELECT event, performing_user_id, ip_address, details FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event IN ($2, $3) ORDER BY id`,
        [userId, BackOfficeEvents.Reauthenticated, BackOfficeEvents.LoginSuccess],
      );
    const idOf = async (client: HttpClient): Promise<string> => (await client.get('/auth/me')).body.id;

    // Password, then passkey, in one session.
    const user = await newUser();
    const http = await signedIn(user.email);
    const authenticator = new SoftwareAuthenticator(ORIGIN, RP_ID);
    const creation = await http.post('/auth/passkeys/options', {});
    expect((await http.post('/auth/passkeys', { name: 'Laptop', credential: authenticator.register(creation.body) })).status).toBe(201);
    const password = await http.post('/auth/reauthenticate', { password: TEST_PASSWORD });
    expect(password.status, password.text).toBe(200);
    const options = await http.post('/auth/reauthenticate/passkey/options', {});
    expect(options.status, options.text).toBe(200);
    const passkey = await http.post('/auth/reauthenticate/passkey', { credential: authenticator.assert(options.body) });
    expect(passkey.status, passkey.text).toBe(200);

    // The linked provider, for a user who signed in there.
    const login = `rotation-audit-${++counter}-${Date.now()}`;
    idp.accounts.set(login, { email: `${login}@idp.example.com`, email_verified: true });
    const person = new ExternalLoginPerson(ctx.url);
    const challenge = await person.challenge('oidc');
    expectSignedIn(await person.deliver(await person.idp.authorize(challenge.headers.get('location')!, login)));
    const step = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account' });
    expect(step.status, step.text).toBe(200);
    const back = await person.deliver(await person.idp.authorize(step.body.redirectUrl, login));
    expect(back.headers.get('location')).toBe('/backoffice/account');

    for (const [client, methods] of [[http, ['password', 'passkey']], [person.app, ['oidc']]] as const) {
      const userId = await idOf(client);
      const rows: Array<{ event: string; performing_user_id: string; ip_address: string; details: Record<string, unknown> }> = await audit(userId);
      // One sign-in (the step-ups are no sign-in: hosts' sign-in listeners must not run), then one entry per step-up.
      expect(rows.map((r) => r.event)).toEqual([BackOfficeEvents.LoginSuccess, ...methods.map(() => BackOfficeEvents.Reauthenticated)]);
      const signIn = rows[0];
      expect(signIn.ip_address).toBeTruthy();
      expect(rows.slice(1).map((r) => r.details)).toEqual(methods.map((method) => ({ method })));
      for (const row of rows.slice(1)) {
        expect(row.performing_user_id).toBe(userId);
        expect(row.ip_address).toBe(signIn.ip_address);
      }
      expect(JSON.stringify(rows)).not.toContain(TEST_PASSWORD);
    }
  });

  it('API users are unaffected: a bearer token is refused at POST /auth/reauthenticate (no session to renew) and keeps working', async () => {
    const admin = await signedIn((await newUser({ groups: ['admin'] })).email);
    expect((await admin.post('/groups', { alias: 'readers', name: 'Readers', permissions: ['users.read'] })).status).toBe(201);
    const created = await admin.post('/users/api', { name: 'Robot', groups: ['readers'] });
    expect(created.status, created.text).toBe(201);
    const basic = Buffer.from(`${encodeURIComponent(created.body.clientId)}:${encodeURIComponent(created.body.clientSecret)}`).toString('base64');
    const issued = await new HttpClient(ctx.url).request('POST', '/auth/token', {
      raw: 'grant_type=client_credentials',
      contentType: 'application/x-www-form-urlencoded',
      headers: { authorization: `Basic ${basic}` },
    });
    expect(issued.status, issued.text).toBe(200);
    const bearer = { headers: { authorization: `Bearer ${issued.body.access_token}` } };
    const refused = await new HttpClient(ctx.url).post('/auth/reauthenticate', { password: TEST_PASSWORD }, bearer);
    expectClientError(refused, 401);
    expect(refused.setCookies).toEqual([]);
    expect((await new HttpClient(ctx.url).get('/users?take=1', bearer)).status).toBe(200);
  });
});
