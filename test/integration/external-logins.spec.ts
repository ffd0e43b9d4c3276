import type { LoggerService } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { EventEmitter2 } from '@nestjs/event-emitter';
import * as OTPAuth from 'otpauth';
import { DataSource } from 'typeorm';
import {
  BackOfficeEvents,
  BackOfficeInviteService,
  TypeOrmBackOfficeUserStore,
  type BackOfficeExternalLoginProviderOptions,
  type BackOfficeIdentityModuleOptions,
  type SendEmailNotification,
  type UserGroupsChangedNotification,
  type UserLogoutSuccessNotification,
} from '../../src/backoffice-identity/index.js';
import { expectBadBodiesRefused, expectClientError } from '../support/bad-input.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { expectRefused, expectSignedIn, waitFor } from '../support/external-login-results.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { expectHostOnlyCookie, pendingSignInCookies } from '../support/pending-sign-in-cookies.js';
import { ExternalLoginPerson as Person, TestOidcProvider, type TestOidcClient } from '../support/oidc-provider.js';
import { SAME_ORIGIN_PATH_VECTORS } from '../support/same-origin-path-vectors.js';

// Contract section 6 against a real OpenID provider (oidc-provider, in-process on a loopback port), driven through
// its own sign-in and consent pages over HTTP. Runs on PostgreSQL and on PGlite (vitest projects).

const SECRET_A = 'client-a-secret-0123456789abcdef';
const SECRET_B = 'client-b-secret-0123456789abcdef';
const SESSION_COOKIE = 'backoffice_session';
/** The pending sign-in cookies' names of the suite's plain-HTTP app (`secureCookies: false`). */
const PLAIN_HTTP_COOKIES = pendingSignInCookies({ secureCookies: false });

const callback = (port: number, name: string) => `http://127.0.0.1:${port}/backoffice/auth/external/${name}/callback`;

/** Two clients at the provider: `oidc` (auto-linking into editor) and `corp` (groups managed by the provider). */
function clientsFor(ports: number[]): TestOidcClient[] {
  return [
    {
      client_id: 'backoffice-a',
      client_secret: SECRET_A,
      redirect_uris: ports.map((p) => callback(p, 'oidc')),
      post_logout_redirect_uris: ports.map((p) => `http://127.0.0.1:${p}/backoffice/`),
    },
    {
      client_id: 'backoffice-b',
      client_secret: SECRET_B,
      redirect_uris: ports.map((p) => callback(p, 'corp')),
      post_logout_redirect_uris: ports.map((p) => `http://127.0.0.1:${p}/backoffice/`),
    },
  ];
}

function providersFor(issuer: string, extra: Partial<BackOfficeExternalLoginProviderOptions> = {}): BackOfficeExternalLoginProviderOptions[] {
  return [
    {
      name: 'oidc',
      displayName: 'Single sign-on',
      issuer,
      clientId: 'backoffice-a',
      clientSecret: SECRET_A,
      autoLink: { enabled: true, defaultGroups: ['editor'] },
      // Umbraco's OnAutoLinking / OnExternalLogin, driven by claims the tests control.
      onAutoLinking: (candidate, claims) => {
        if (claims.department === 'contractors') return false;
        if (claims.department === 'translation') candidate.groups.push('translator');
      },
      onExternalLogin: (_user, claims) => (claims.suspended === true ? false : { name: typeof claims.name === 'string' ? claims.name : undefined }),
      ...extra,
    },
    {
      name: 'corp',
      displayName: 'Corporate directory',
      issuer,
      clientId: 'backoffice-b',
      clientSecret: SECRET_B,
      scopes: ['openid', 'email', 'profile', 'groups'],
      autoLink: {
        enabled: true,
        groupsClaim: 'groups',
        groupMapping: { 'bo-admins': 'admin', 'bo-editors': 'editor', 'bo-writers': 'writer' },
        groupsManagedByProvider: true,
      },
    },
  ];
}

describe('External login providers (OpenID Connect, contract section 6)', () => {
  let db: TestDatabase;
  let idp: TestOidcProvider;
  let ctx: IdentityApp;
  let ports: number[];
  let events: NotificationRecorder;
  let counter = 0;
  /** Every line the app logged. */
  const logLines: string[] = [];
  const logger = {
    log: (m: unknown) => void logLines.push(String(m)),
    warn: (m: unknown) => void logLines.push(String(m)),
    error: (m: unknown) => void logLines.push(String(m)),
    debug: () => undefined,
    verbose: () => undefined,
  };
  /** Codes, states and ID tokens the provider handed out in these tests. */
  const handedOut = new Set<string>();
  const newUser = userFactory(() => ctx, 'ext-local');
  const sub = (label: string) => `${label}-${++counter}-${Date.now()}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    ports = [await TestOidcProvider.reservePort(), await TestOidcProvider.reservePort()];
    idp = await TestOidcProvider.start(clientsFor(ports));
    ctx = await createIdentityApp(db, {
      port: ports[0],
      logger,
      identity: {
        publicUrl: `http://127.0.0.1:${ports[0]}`,
        session: { secureCookies: false },
        rateLimits: { enabled: false },
        externalLogins: providersFor(idp.issuer),
      },
    });
    events = NotificationRecorder.attach(ctx.app);
    await waitFor(async () => (await new HttpClient(ctx.url).get('/auth/external/providers')).body.every((p: { available: boolean }) => p.available));
  });
  afterAll(async () => {
    await ctx?.close();
    await idp?.stop();
    await db?.drop();
  });

  /** A person known to the provider with a verified email. */
  function account(label: string, claims: Record<string, unknown> = {}): { login: string; email: string } {
    const login = sub(label);
    const email = `${login}@idp.example.com`;
    idp.accounts.set(login, { email, email_verified: true, name: `Person ${login}`, ...claims });
    return { login, email };
  }

  /**
   * A second app on the same database (and port `ports[1]`, registered at the provider), with `identity` over the
   * test defaults; waits until its first provider is available unless `waitForProvider` is false.
   */
  async function secondApp(identity: BackOfficeIdentityModuleOptions, options: { waitForProvider?: boolean; logger?: LoggerService } = {}): Promise<IdentityApp> {
    const app = await createIdentityApp(db, {
      port: ports[1],
      logger: options.logger,
      identity: { publicUrl: `http://127.0.0.1:${ports[1]}`, session: { secureCookies: false }, ...identity },
    });
    if (options.waitForProvider !== false) {
      await waitFor(async () => (await new HttpClient(app.url).get('/auth/external/providers')).body[0]?.available === true);
    }
    return app;
  }

  /** Invites on `app` with a take-over listener (the seed's `handleEmail()` pattern); returns the link's user id and token. */
  async function inviteWithTakeOver(app: IdentityApp, groups: string[] = ['writer']): Promise<{ userId: string; token: string; email: string; message: SendEmailNotification['message'] }> {
    const emitter = app.app.get(EventEmitter2);
    const sent: SendEmailNotification[] = [];
    const listener = (n: SendEmailNotification) => {
      sent.push(n);
      n.handleEmail();
    };
    emitter.on(BackOfficeEvents.SendEmail, listener);
    try {
      const email = `invitee-${sub('i')}@corp.example.com`;
      const invited = await app.app.get(BackOfficeInviteService).invite({ email, name: 'Invitee', groups }, null);
      expect(invited.succeeded).toBe(true);
      expect(sent).toHaveLength(1);
      expect(sent[0].isHandled).toBe(true);
      const link = new URL(/https?:\/\/\S+\/accept-invite#\S+/.exec(sent[0].message.text)![0]);
      const fragment = new URLSearchParams(link.hash.slice(1));
      expect(fragment.get('userId')).toBe(invited.value!.user.id);
      return { userId: fragment.get('userId')!, token: fragment.get('token')!, email, message: sent[0].message };
    } finally {
      emitter.off(BackOfficeEvents.SendEmail, listener);
    }
  }

  async function adminClient(): Promise<HttpClient> {
    const admin = await newUser({ groups: ['admin'] });
    const http = new HttpClient(ctx.url);
    expect((await http.login(admin.email, TEST_PASSWORD)).status).toBe(200);
    return http;
  }

  describe('providers and challenge', () => {
    it('GET /auth/external/providers lists the providers (public)', async () => {
      const result = await new HttpClient(ctx.url).get('/auth/external/providers');
      expect(result.status).toBe(200);
      expect(result.body).toEqual([
        { name: 'oidc', displayName: 'Single sign-on', autoRedirect: false, available: true },
        { name: 'corp', displayName: 'Corporate directory', autoRedirect: false, available: true },
      ]);
    });

    it('the challenge redirects to the provider with the code flow, PKCE S256, state and nonce (ASVS 5.0 10.1.1)', async () => {
      const person = new Person(ctx.url);
      const result = await person.challenge('oidc', { returnUrl: '/backoffice/account?tab=logins' });
      expect(result.status).toBe(302);
      const url = new URL(result.headers.get('location')!);
      expect(url.origin).toBe(idp.issuer);
      expect(url.searchParams.get('response_type')).toBe('code');
      expect(url.searchParams.get('client_id')).toBe('backoffice-a');
      expect(url.searchParams.get('redirect_uri')).toBe(callback(ports[0], 'oidc'));
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(url.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(url.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(url.searchParams.get('scope')!.split(' ')).toContain('openid');
      const cookie = result.setCookies.find((c) => c.startsWith(`${PLAIN_HTTP_COOKIES.externalLogin}=`))!;
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Lax/);
      expect(cookie).toMatch(/Path=\/backoffice\/auth\/external/);
      // Two challenges never share a state or a nonce.
      const again = new URL((await person.challenge('oidc')).headers.get('location')!);
      expect(again.searchParams.get('state')).not.toBe(url.searchParams.get('state'));
      expect(again.searchParams.get('nonce')).not.toBe(url.searchParams.get('nonce'));
    });

    it('an unknown provider is 404', async () => {
      expectClientError(await new Person(ctx.url).challenge('nope'), 404);
      // A name longer than Fastify's maxParamLength (100) gets the module's 404 on both platforms.
      expectClientError(await new Person(ctx.url).challenge('x'.repeat(300)), 404);
    });

    it.each([
      'https://evil.example/',
      '//evil.example/',
      '/\\evil.example',
      '/\t/evil.example',
      '/\n/evil.example',
      'javascript:alert(1)',
      'backoffice/',
      ' /backoffice/',
      `/${'a'.repeat(3000)}`,
      // Dot segments the URL parser resolves into "//evil.example" (a protocol-relative Location).
      '/.//evil.example',
      '/a/..//evil.example',
      '/%2e//evil.example',
      '/backoffice/../..//evil.example/x?y#z',
    ])('open redirects are refused: returnUrl %j is 400 invalid_return_url (ASVS 5.0 3.7.2)', async (returnUrl) => {
      const result = await new Person(ctx.url).challenge('oidc', { returnUrl });
      expectClientError(result);
      expect(['invalid_return_url', 'validation_failed']).toContain(result.body.code);
      expect(result.headers.get('location')).toBeNull();
    });

    it('an invite token in the query string is 400 token_in_query and starts nothing (ASVS 5.0 14.2.1); wrong-shaped queries are 400', async () => {
      for (const invite of ['not-an-invite', `${crypto.randomUUID()}.${'a'.repeat(43)}`, '']) {
        const refused = await new Person(ctx.url).challenge('oidc', { invite });
        expectClientError(refused, 400);
        expect(refused.body.code).toBe('token_in_query');
        expect(refused.headers.get('location')).toBeNull();
        expect(refused.setCookies.some((c) => c.startsWith(`${PLAIN_HTTP_COOKIES.externalLogin}=`))).toBe(false);
      }
      const person = new Person(ctx.url);
      const duplicate = await person.app.get('/auth/external/oidc/challenge?returnUrl=/a&returnUrl=/b', { redirect: 'manual' });
      expectClientError(duplicate, 400);
    });
  });

  // Nest's Logger is process-wide and the next app created takes it over: this runs before any other app starts.
  it('no authorization code, state or token ever reaches a log line, though failures are logged (ASVS 4.0 7.1.1)', async () => {
    const person = new Person(ctx.url);
    const { login } = account('logs');
    const url = new URL(await person.toCallback('oidc', login));
    handedOut.add(url.searchParams.get('code')!);
    handedOut.add(url.searchParams.get('state')!);
    expectSignedIn(await person.deliver(url.toString()));
    expectRefused(await person.deliver(url.toString()), 'external_login_failed');
    const logout = await person.app.post('/auth/logout');
    handedOut.add(new URL(logout.body.signOutRedirectUrl).searchParams.get('id_token_hint')!);
    expect(logLines.some((l) => /refused: missing, unknown, expired or replayed state/.test(l))).toBe(true);
    for (const secret of handedOut) expect(logLines.filter((l) => l.includes(secret))).toEqual([]);
    expect(logLines.filter((l) => /eyJ[A-Za-z0-9_-]{10,}\./.test(l))).toEqual([]);
  });

  describe('sign-in and auto-linking', () => {
    it('a new person signs in through the provider, lands on returnUrl in `editor`, and /auth/me lists the login', async () => {
      const { login, email } = account('new');
      const person = new Person(ctx.url);
      events.clear();
      const result = await person.signIn('oidc', login, { returnUrl: '/backoffice/account' });
      expectSignedIn(result, '/backoffice/account');
      const me = await person.app.get('/auth/me');
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ email, name: `Person ${login}`, groups: ['editor'], state: 'active', logins: [{ provider: 'oidc', displayName: 'Single sign-on' }] });
      const userId = me.body.id;
      for (const name of [BackOfficeEvents.AutoLinked, BackOfficeEvents.LoginLinked, BackOfficeEvents.ExternalLoginSuccess, BackOfficeEvents.LoginSuccess]) {
        expect(events.named(name, userId), name).toHaveLength(1);
      }
      // The second sign-in finds the same user by provider + key; nobody new is created.
      const again = new Person(ctx.url);
      expectSignedIn(await again.signIn('oidc', login));
      expect((await again.app.get('/auth/me')).body.id).toBe(userId);
      expect(events.named(BackOfficeEvents.AutoLinked, userId)).toHaveLength(1);
      const audit = await ctx.app.get(DataSource).query(`SELECT event FROM backoffice_audit_entry WHERE affected_user_id = $1`, [userId]);
      expect(audit.map((r: { event: string }) => r.event)).toEqual(expect.arrayContaining(['backoffice.user.auto-linked', 'backoffice.user.external-login.success']));
    });

    it('OWASP ASVS 5.0 7.2.4 / 16.3.2: a sign-in through the provider ends the session whose cookie the browser had at the challenge, though the SameSite=Strict cookie does not come back on the provider\'s cross-site redirect to the callback; audited for its owner', async () => {
      const previous = await newUser();
      const person = new Person(ctx.url);
      expect((await person.app.login(previous.email, TEST_PASSWORD)).status).toBe(200);
      const copied = person.app.cookies.get(SESSION_COOKIE)!;
      const thief = person.app.fresh();
      thief.cookies.set(SESSION_COOKIE, copied);
      expect((await thief.get('/auth/me')).status).toBe(200);
      const { login } = account('replaces');
      const callbackUrl = await person.toCallback('oidc', login);
      // The provider's redirect back is a cross-site navigation: the browser leaves the SameSite=Strict cookie out.
      person.app.cookies.delete(SESSION_COOKIE);
      const endedBefore = events.named(BackOfficeEvents.SessionsRevoked, previous.id).length;
      expectSignedIn(await person.deliver(callbackUrl));
      expect((await person.app.get('/auth/me')).body.id).not.toBe(previous.id);
      expect((await thief.get('/auth/me')).status, 'the session the browser had before the provider sign-in still works').toBe(401);
      const ended = events.named(BackOfficeEvents.SessionsRevoked, previous.id);
      expect(ended).toHaveLength(endedBefore + 1);
      expect(ended.at(-1)!.auditDetails()).toEqual({ count: 1 });
      // A challenge without a session cookie ends nobody's session.
      const other = await newUser();
      const bystander = new Person(ctx.url);
      expect((await bystander.app.login(other.email, TEST_PASSWORD)).status).toBe(200);
      expectSignedIn(await new Person(ctx.url).signIn('oidc', account('no-cookie').login));
      expect((await bystander.app.get('/auth/me')).status).toBe(200);
    });

    it('OWASP ASVS 5.0 16.3.2: a provider sign-in whose challenge carried the cookie of a session that ended before the callback (a security stamp the user no longer has) audits no revocation for its owner', async () => {
      const previous = await newUser();
      const person = new Person(ctx.url);
      expect((await person.app.login(previous.email, TEST_PASSWORD)).status).toBe(200);
      const { login } = account('replaces-ended');
      const callbackUrl = await person.toCallback('oidc', login);
      person.app.cookies.delete(SESSION_COOKIE);
      // While the person is at the provider, the previous user's sessions end (a new stamp: e.g. a password change elsewhere).
      await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(previous.id))!);
      const endedBefore = events.named(BackOfficeEvents.SessionsRevoked, previous.id).length;
      expectSignedIn(await person.deliver(callbackUrl));
      expect(events.named(BackOfficeEvents.SessionsRevoked, previous.id), 'the callback audited the revocation of a session that had already ended').toHaveLength(endedBefore);
    });

    it('the callback lands on the sign-in page at its canonical path (no trailing slash before the query): the page itself, not one more 302', async () => {
      const refused = await new Person(ctx.url).signIn('oidc', account('canonical-error', { email_verified: false }).login);
      const error = refused.headers.get('location')!;
      expect(error).toBe('/backoffice?error=external_email_unverified');
      expect(error).not.toMatch(/\/\?/);
      const signedIn = (await new Person(ctx.url).signIn('oidc', account('canonical-default').login)).headers.get('location')!;
      expect(signedIn).toBe('/backoffice');
      for (const location of [error, signedIn]) {
        const page = await fetch(new URL(location, ctx.url), { redirect: 'manual' });
        expect(page.status, location).toBe(200);
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      }
    });

    it('an email the provider has not verified creates nobody: external_email_unverified', async () => {
      const { login, email } = account('unverified', { email_verified: false });
      expectRefused(await new Person(ctx.url).signIn('oidc', login), 'external_email_unverified');
      expect(await ctx.userManager.findByEmail(email)).toBeNull();
    });

    it('an email of an existing local user is never linked automatically (no take-over): external_email_in_use', async () => {
      const local = await newUser();
      const login = sub('takeover');
      idp.accounts.set(login, { email: local.email.toUpperCase(), email_verified: true });
      expectRefused(await new Person(ctx.url).signIn('oidc', login), 'external_email_in_use');
      expect(await ctx.userManager.getLogins(local)).toEqual([]);
    });

    it('ASVS 4.0 3.4.4: with a "__Host-" session cookie name, every cookie of an external sign-in keeps the prefix rules (Secure, Path=/, no Domain), so browsers accept the state cookie', async () => {
      const app = await secondApp({ session: { cookieName: '__Host-bo_session', secureCookies: true }, externalLogins: providersFor(idp.issuer).slice(0, 1) });
      try {
        const { login } = account('hostprefix');
        const person = new Person(app.url);
        const challenge = await person.challenge('oidc');
        expect(challenge.status, challenge.text).toBe(302);
        const callbackUrl = await person.idp.authorize(challenge.headers.get('location')!, login);
        const signedIn = await person.deliver(callbackUrl);
        expect(signedIn.status, signedIn.text).toBe(302);
        expect(signedIn.headers.get('location')).toBe('/backoffice');
        const cookies = [...challenge.setCookies, ...signedIn.setCookies].filter((c) => /^__Host-/i.test(c));
        expect(cookies.map((c) => c.slice(0, c.indexOf('=')))).toEqual(expect.arrayContaining([pendingSignInCookies({ cookieName: '__Host-bo_session' }).externalLogin, '__Host-bo_session']));
        // RFC 6265bis 4.1.3.2: a user agent drops a "__Host-" cookie unless it is Secure, has Path=/ and no Domain.
        for (const cookie of cookies) {
          const attributes = cookie.split(';').slice(1).map((a) => a.trim());
          expect(attributes, cookie).toContain('Secure');
          expect(attributes, cookie).toContain('Path=/');
          expect(attributes.some((a) => /^domain=/i.test(a)), cookie).toBe(false);
        }
      } finally {
        await app.close();
      }
    });

    it('ASVS 5.0 3.3.3: with Secure cookies and the contract\'s session cookie name, the state cookie is a "__Host-" cookie (Secure, Path=/, no Domain), and the attacker\'s state cookie tossed alone under the unprefixed name a sibling subdomain can set is not used: the victim\'s browser does not finish the attacker\'s sign-in (login CSRF)', async () => {
      const app = await secondApp({ session: { secureCookies: true }, externalLogins: providersFor(idp.issuer).slice(0, 1) });
      try {
        const { login, email } = account('tossed-alone');
        const { externalLogin } = pendingSignInCookies();
        const tossable = pendingSignInCookies({ secureCookies: false }).externalLogin;
        const attacker = new Person(app.url);
        const challenge = await attacker.challenge('oidc');
        expect(challenge.status, challenge.text).toBe(302);
        const url = new URL(await attacker.idp.authorize(challenge.headers.get('location')!, login));
        const tossed = attacker.app.cookies.get(externalLogin)!;
        expect(tossed).toMatch(/^[A-Za-z0-9_-]{43}$/);
        // The victim has no state cookie of their own: only the tossed one arrives with the attacker's code.
        const victim = new Person(app.url);
        expectRefused(await victim.app.get(`${url.pathname}${url.search}`, { redirect: 'manual', headers: { cookie: `${tossable}=${tossed}` } }), 'external_login_failed');
        expect((await victim.app.get('/auth/me')).status).toBe(401);
        expect(await app.userManager.findByEmail(email)).toBeNull();
        expect(expectHostOnlyCookie(challenge.setCookies, externalLogin)).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Lax']));
        // The attacker's own browser still finishes its sign-in, with the contract's session cookie name.
        const signedIn = await attacker.deliver(url.toString());
        expectSignedIn(signedIn);
      } finally {
        await app.close();
      }
    });

    it('a returnUrl with characters outside ASCII lands percent-encoded (302, session set) on both platforms, never a 500 (contract section 6)', async () => {
      for (const [returnUrl, location] of [
        ['/backoffice/\u2713?q=\u00e9t\u00e9', '/backoffice/%E2%9C%93?q=%C3%A9t%C3%A9'],
        ['/backoffice/?a="<b>', '/backoffice/?a=%22%3Cb%3E'],
        ['/backoffice/account?tab=logins', '/backoffice/account?tab=logins'],
      ]) {
        const { login } = account('unicode-return');
        expectSignedIn(await new Person(ctx.url).signIn('oidc', login, { returnUrl }), location);
      }
    });

    it.each(SAME_ORIGIN_PATH_VECTORS)('returnUrl $input ($why): challenged and signed in to exactly the final path, or 400 invalid_return_url', async ({ input, path }) => {
      if (path === null) {
        const refused = await new Person(ctx.url).challenge('oidc', { returnUrl: input });
        expectClientError(refused, 400);
        expect(refused.headers.get('location')).toBeNull();
        return;
      }
      const { login } = account('return-vector');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login, { returnUrl: input }), path);
    });

    it('a provider without auto-linking refuses unknown accounts: no_linked_account', async () => {
      const other = await secondApp({ externalLogins: providersFor(idp.issuer, { autoLink: { enabled: false } }).slice(0, 1) });
      try {
        const { login } = account('nolink');
        expectRefused(await new Person(other.url).signIn('oidc', login), 'no_linked_account');
      } finally {
        await other.close();
      }
    });

    it('onAutoLinking may change the new user, or refuse it (not_allowed)', async () => {
      const { login, email } = account('translator', { department: 'translation' });
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      expect((await ctx.userManager.findByEmail(email))!.groups.sort()).toEqual(['editor', 'translator']);
      const refused = account('contractor', { department: 'contractors' });
      expectRefused(await new Person(ctx.url).signIn('oidc', refused.login), 'not_allowed');
      expect(await ctx.userManager.findByEmail(refused.email)).toBeNull();
    });

    it('onExternalLogin runs on every sign-in: keeps the name in sync, or refuses (not_allowed)', async () => {
      const { login, email } = account('sync');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      idp.accounts.set(login, { ...idp.accounts.get(login), name: 'Renamed At The Provider' });
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      expect((await ctx.userManager.findByEmail(email))!.name).toBe('Renamed At The Provider');
      idp.accounts.set(login, { ...idp.accounts.get(login), suspended: true });
      expectRefused(await new Person(ctx.url).signIn('oidc', login), 'not_allowed');
    });

    it('a disabled user is refused: not_allowed', async () => {
      const { login, email } = account('disabled');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      const user = (await ctx.userManager.findByEmail(email))!;
      await ctx.userManager.setApproved(user, false);
      expectRefused(await new Person(ctx.url).signIn('oidc', login), 'not_allowed');
    });

    it('a disable whose `until` has passed is lifted by the next external sign-in, as by a password sign-in (README: POST /users/:id/disable)', async () => {
      const { login, email } = account('disabled-until');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      const admin = await adminClient();
      const user = (await ctx.userManager.findByEmail(email))!;
      const until = new Date(ctx.clock.now().getTime() + 3_600_000).toISOString();
      const disabled = await admin.post(`/users/${user.id}/disable`, { reason: 'holiday', until });
      expect(disabled.status, disabled.text).toBe(200);
      expectRefused(await new Person(ctx.url).signIn('oidc', login), 'not_allowed');
      ctx.clock.advance(2 * 3_600_000);
      try {
        const person = new Person(ctx.url);
        expectSignedIn(await person.signIn('oidc', login));
        expect((await person.app.get('/auth/me')).body).toMatchObject({ id: user.id, state: 'active' });
        expect((await ctx.userManager.findById(user.id))!.isApproved).toBe(true);
      } finally {
        ctx.clock.advance(-2 * 3_600_000);
      }
    });
  });

  describe('every callback failure is a redirect with an error code: never a 5xx, never a session', () => {
    it('missing state', async () => {
      const person = new Person(ctx.url);
      await person.challenge('oidc');
      expectRefused(await person.app.get('/auth/external/oidc/callback?code=abc', { redirect: 'manual' }), 'external_login_failed');
      expectRefused(await person.app.get('/auth/external/oidc/callback', { redirect: 'manual' }), 'external_login_failed');
    });

    it('a forged state, and a state from another browser (no cookie), are refused (ASVS 5.0 10.2.1)', async () => {
      const { login } = account('forged');
      const person = new Person(ctx.url);
      const url = new URL(await person.toCallback('oidc', login));
      const forged = new URL(url);
      forged.searchParams.set('state', 'A'.repeat(43));
      expectRefused(await person.deliver(forged.toString()), 'external_login_failed');
      // The provider's redirect delivered in another browser (login CSRF): that browser has no state cookie.
      expectRefused(await new Person(ctx.url).deliver(url.toString()), 'external_login_failed');
    });

    it('a replayed callback is refused; the first one signed in', async () => {
      const { login } = account('replay');
      const person = new Person(ctx.url);
      const url = await person.toCallback('oidc', login);
      expectSignedIn(await person.deliver(url));
      expectRefused(await person.deliver(url), 'external_login_failed');
    });

    it('a pending sign-in older than 10 minutes is refused', async () => {
      const { login } = account('slow');
      const person = new Person(ctx.url);
      const url = await person.toCallback('oidc', login);
      ctx.clock.advance(11 * 60_000);
      try {
        expectRefused(await person.deliver(url), 'external_login_failed');
      } finally {
        ctx.clock.advance(-11 * 60_000);
      }
    });

    it('an ID token with another nonce is refused', async () => {
      const { login } = account('nonce');
      const person = new Person(ctx.url);
      const url = await person.toCallback('oidc', login, {}, (authorization) => authorization.searchParams.set('nonce', 'attacker-chosen-nonce-0123456789'));
      expectRefused(await person.deliver(url), 'external_login_failed');
    });

    it('an error from the provider (error=login_required)', async () => {
      const person = new Person(ctx.url);
      const url = await person.toCallback('oidc', 'whoever', {}, (authorization) => authorization.searchParams.set('prompt', 'none'));
      expect(new URL(url).searchParams.get('error')).toBe('login_required');
      expectRefused(await person.deliver(url), 'external_login_failed');
    });

    it('a code the provider refuses to exchange (invalid_grant)', async () => {
      const { login } = account('badcode');
      const person = new Person(ctx.url);
      const url = new URL(await person.toCallback('oidc', login));
      url.searchParams.set('code', `${url.searchParams.get('code')}x`);
      expectRefused(await person.deliver(url.toString()), 'external_login_failed');
    });

    it.each(['signature', 'expired'] as const)('an ID token with a %s problem is refused', async (kind) => {
      const { login, email } = account(`token-${kind}`);
      const person = new Person(ctx.url);
      const url = await person.toCallback('oidc', login);
      idp.idTokenChange = { kind };
      try {
        expectRefused(await person.deliver(url), 'external_login_failed');
      } finally {
        idp.idTokenChange = undefined;
      }
      expect(await ctx.userManager.findByEmail(email)).toBeNull();
    });

    it('the provider going down mid-flow', async () => {
      const { login } = account('down');
      const person = new Person(ctx.url);
      const url = await person.toCallback('oidc', login);
      idp.down = true;
      try {
        expectRefused(await person.deliver(url), 'external_login_failed');
      } finally {
        idp.down = false;
      }
    });

    it('refusals are audited as failed logins with the code', async () => {
      events.clear();
      await new Person(ctx.url).app.get('/auth/external/oidc/callback?state=x', { redirect: 'manual' });
      expect(events.named(BackOfficeEvents.LoginFailed).map((e) => (e as unknown as { reason: string }).reason)).toEqual(['external_login_failed']);
    });
  });

  describe('manual linking and unlinking', () => {
    it('a local user links the provider from their own session, then signs in through it', async () => {
      const local = await newUser();
      const login = sub('link');
      idp.accounts.set(login, { email: local.email, email_verified: true });
      const person = new Person(ctx.url);
      expect((await person.app.login(local.email, TEST_PASSWORD)).status).toBe(200);
      const link = await person.app.post('/auth/external/oidc/link', { returnUrl: '/backoffice/account' });
      expect(link.status, link.text).toBe(200);
      const url = await person.idp.authorize(link.body.redirectUrl, login);
      const linked = await person.deliver(url);
      expect(linked.status).toBe(302);
      expect(linked.headers.get('location')).toBe('/backoffice/account');
      expect((await person.app.get('/auth/me')).body.logins).toEqual([{ provider: 'oidc', displayName: 'Single sign-on' }]);
      expect(events.named(BackOfficeEvents.LoginLinked, local.id)).toHaveLength(1);

      const other = new Person(ctx.url);
      expectSignedIn(await other.signIn('oidc', login));
      expect((await other.app.get('/auth/me')).body.id).toBe(local.id);
    });

    it('linking needs a session and the XSRF header; a second login of one provider is 409 login_already_linked', async () => {
      expectClientError(await new HttpClient(ctx.url).post('/auth/external/oidc/link', {}), 401);
      const { login } = account('twice');
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      expectClientError(await person.app.post('/auth/external/oidc/link', {}, { xsrf: false }), 403);
      const again = await person.app.post('/auth/external/oidc/link', {});
      expectClientError(again, 409);
      expect(again.body.code).toBe('login_already_linked');
      expectClientError(await person.app.post('/auth/external/nope/link', {}), 404);
    });

    it('a provider account linked to someone else cannot be linked again (callback ?error=login_already_linked)', async () => {
      const { login } = account('owned');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      const local = await newUser();
      const person = new Person(ctx.url);
      await person.app.login(local.email, TEST_PASSWORD);
      const link = await person.app.post('/auth/external/oidc/link', {});
      const result = await person.deliver(await person.idp.authorize(link.body.redirectUrl, login));
      expect(result.status).toBe(302);
      expect(result.headers.get('location')).toBe('/backoffice/account?error=login_already_linked');
      expect(await ctx.userManager.getLogins(local)).toEqual([]);
    });

    it.each([
      ['/backoffice/account#logins', '/backoffice/account?error=login_already_linked#logins'],
      ['/backoffice/account?tab=logins#linked', '/backoffice/account?tab=logins&error=login_already_linked#linked'],
      // A "?" in the fragment is no query of the path.
      ['/backoffice/account#logins?x=1', '/backoffice/account?error=login_already_linked#logins?x=1'],
    ])('a refused link back to returnUrl %j keeps ?error= in the query, before the fragment: %j', async (returnUrl, location) => {
      const { login } = account(`owned-fragment-${location.length}`);
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      const local = await newUser();
      const person = new Person(ctx.url);
      await person.app.login(local.email, TEST_PASSWORD);
      const link = await person.app.post('/auth/external/oidc/link', { returnUrl });
      expect(link.status, link.text).toBe(200);
      const result = await person.deliver(await person.idp.authorize(link.body.redirectUrl, login));
      expect(result.status).toBe(302);
      const landed = new URL(result.headers.get('location')!, 'http://host.invalid');
      expect(landed.searchParams.get('error')).toBe('login_already_linked');
      expect(result.headers.get('location')).toBe(location);
    });

    it('bad link bodies are clean 400s', async () => {
      const { login } = account('badbody', { groups: [] });
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('corp', login));
      for (const body of [{ returnUrl: 42 }, { returnUrl: { $gt: '' } }, { returnUrl: ['/a'] }, { returnUrl: 'x'.repeat(10_000) }, { other: 1 }, { returnUrl: '//evil.example' }]) {
        expectClientError(await person.app.post('/auth/external/oidc/link', body), 400);
      }
      expectClientError(await person.app.request('POST', '/auth/external/oidc/link', { raw: '{"returnUrl":' }), 400);
      const unicode = await person.app.post('/auth/external/oidc/link', { returnUrl: '/backoffice/über?q=✓' });
      expect(unicode.status).toBe(200);
    });

    it('unlink: 204 with a password; 409 last_login_method without one; 404 without such a login', async () => {
      const local = await newUser();
      const login = sub('unlink');
      idp.accounts.set(login, { email: `x-${login}@example.com`, email_verified: true });
      const person = new Person(ctx.url);
      await person.app.login(local.email, TEST_PASSWORD);
      const link = await person.app.post('/auth/external/oidc/link', {});
      await person.deliver(await person.idp.authorize(link.body.redirectUrl, login));
      expectClientError(await person.app.delete('/auth/external/logins/oidc', { xsrf: false }), 403);
      expect((await person.app.delete('/auth/external/logins/oidc')).status).toBe(204);
      expect(events.named(BackOfficeEvents.LoginUnlinked, local.id)).toHaveLength(1);
      expectClientError(await person.app.delete('/auth/external/logins/oidc'), 404);

      const { login: only } = account('only');
      const external = new Person(ctx.url);
      expectSignedIn(await external.signIn('oidc', only));
      const last = await external.app.delete('/auth/external/logins/oidc');
      expectClientError(last, 409);
      expect(last.body.code).toBe('last_login_method');
      // A user who never had a password cannot set one (forgot-password sends them no link): the answer says what works.
      expect(last.body.message).not.toMatch(/password/i);
    });

    it('V3.3.3 unlinking a provider ends the sessions signed in through it (the user\'s other sessions); the session that unlinked stays', async () => {
      const local = await newUser();
      const login = sub('unlink-sessions');
      idp.accounts.set(login, { email: `x-${login}@example.com`, email_verified: true });
      const person = new Person(ctx.url);
      expect((await person.app.login(local.email, TEST_PASSWORD)).status).toBe(200);
      const link = await person.app.post('/auth/external/oidc/link', {});
      expect((await person.deliver(await person.idp.authorize(link.body.redirectUrl, login))).headers.get('location')).toBe('/backoffice/account');
      // Whoever holds the provider account (the user elsewhere, or someone who took it over) signs in through it.
      const elsewhere = new Person(ctx.url);
      expectSignedIn(await elsewhere.signIn('oidc', login));
      expect((await elsewhere.app.get('/auth/me')).body.id).toBe(local.id);

      expect((await person.app.delete('/auth/external/logins/oidc')).status).toBe(204);
      expectClientError(await elsewhere.app.get('/auth/me'), 401);
      expect((await person.app.get('/auth/me')).status).toBe(200);
      expect((await person.app.get('/auth/sessions')).body).toHaveLength(1);
    });

    it('OWASP ASVS 5.0 7.4.3 / 4.0 3.3.3: linking a provider (a new way in) ends the user\'s other sessions with a new security stamp, as adding a passkey does; the linking session stays signed in; a refused link ends nothing', async () => {
      const local = await newUser();
      const person = new Person(ctx.url);
      expect((await person.app.login(local.email, TEST_PASSWORD)).status).toBe(200);
      const elsewhere = new Person(ctx.url);
      expect((await elsewhere.app.login(local.email, TEST_PASSWORD)).status).toBe(200);
      const stamp = (await ctx.userManager.findById(local.id))!.securityStamp;

      // refused (the provider account is someone else's): nothing changes
      const { login: owned } = account('stamp-owned');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', owned));
      const refused = await person.app.post('/auth/external/oidc/link', {});
      expect((await person.deliver(await person.idp.authorize(refused.body.redirectUrl, owned))).headers.get('location')).toBe('/backoffice/account?error=login_already_linked');
      expect((await elsewhere.app.get('/auth/me')).status).toBe(200);
      expect((await ctx.userManager.findById(local.id))!.securityStamp).toBe(stamp);

      const login = sub('link-stamp');
      idp.accounts.set(login, { email: `x-${login}@example.com`, email_verified: true });
      const link = await person.app.post('/auth/external/oidc/link', {});
      expect((await person.deliver(await person.idp.authorize(link.body.redirectUrl, login))).headers.get('location')).toBe('/backoffice/account');
      expect((await ctx.userManager.findById(local.id))!.securityStamp).not.toBe(stamp);
      const me = await person.app.get('/auth/me');
      expect(me.status, me.text).toBe(200);
      expect(me.body.logins).toEqual([{ provider: 'oidc', displayName: 'Single sign-on' }]);
      expectClientError(await elsewhere.app.get('/auth/me'), 401);
      expect((await person.app.get('/auth/sessions')).body).toHaveLength(1);
      // the linking session goes on with sensitive routes (the round trip was its step-up); the new login signs in
      expect((await person.app.delete('/auth/sessions')).status).toBe(200);
      const viaProvider = new Person(ctx.url);
      expectSignedIn(await viaProvider.signIn('oidc', login));
      expect((await viaProvider.app.get('/auth/me')).body.id).toBe(local.id);
    });

    it('link and unlink are sensitive: 401 reauthentication_required after 5 minutes; a provider round trip is a fresh sign-in', async () => {
      const { login } = account('stepup', { groups: [] });
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      ctx.clock.advance(6 * 60_000);
      try {
        for (const result of [await person.app.post('/auth/external/corp/link', {}), await person.app.delete('/auth/external/logins/oidc')]) {
          expectClientError(result, 401);
          expect(result.body.code).toBe('reauthentication_required');
        }
        // No password to confirm: step up through the linked provider instead.
        expectClientError(await person.app.post('/auth/external/corp/reauthenticate', {}), 404);
        const other = account('stepup-other');
        const wrong = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account' });
        const refused = await person.deliver(await person.idp.authorize(wrong.body.redirectUrl, other.login));
        expect(refused.headers.get('location')).toBe('/backoffice/account?error=not_allowed');
        expect((await person.app.post('/auth/external/corp/link', {})).body.code).toBe('reauthentication_required');

        const step = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account' });
        expect(step.status, step.text).toBe(200);
        expect(new URL(step.body.redirectUrl).searchParams.get('prompt')).toBe('login');
        const back = await person.deliver(await person.idp.authorize(step.body.redirectUrl, login));
        expect(back.headers.get('location')).toBe('/backoffice/account');
        const link = await person.app.post('/auth/external/corp/link', {});
        expect(link.status, link.text).toBe(200);
      } finally {
        ctx.clock.advance(-6 * 60_000);
      }
    });

    it('a step-up through the provider refused again from the page that shows the last refusal (/backoffice/account?error=not_allowed) lands on one ?error=, which the page announces', async () => {
      const { login } = account('stepup-again', { groups: [] });
      const other = account('stepup-again-other');
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      ctx.clock.advance(6 * 60_000);
      try {
        // session.js sends the page it is on (pathname + search) as the returnUrl of the step-up.
        let from = '/backoffice/account';
        for (let attempt = 0; attempt < 2; attempt++) {
          const step = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: from });
          expect(step.status, step.text).toBe(200);
          const refused = await person.deliver(await person.idp.authorize(step.body.redirectUrl, other.login));
          from = refused.headers.get('location')!;
        }
        expect(from).toBe('/backoffice/account?error=not_allowed');
        const page = await person.app.get(from);
        expect(page.text).toContain('This account cannot sign in. Ask an administrator for help.');
      } finally {
        ctx.clock.advance(-6 * 60_000);
      }
    });

    it('V3.7.1 a step-up through the provider needs a fresh authentication there: an ID token with an old auth_time (a provider session reused, prompt=login stripped from the URL) or none is refused', async () => {
      const { login } = account('stale-stepup', { groups: [] });
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      ctx.clock.advance(6 * 60_000);
      try {
        for (const change of [{ kind: 'authTime', secondsAgo: 3600 }, { kind: 'authTime', secondsAgo: null }] as const) {
          const step = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account' });
          expect(step.status, step.text).toBe(200);
          // The provider is asked to authenticate again, now...
          const url = new URL(step.body.redirectUrl);
          expect(url.searchParams.get('prompt')).toBe('login');
          expect(url.searchParams.get('max_age')).toBe('0');
          // ...but whoever holds the browser can drop that from the URL, and the provider's open session answers.
          url.searchParams.delete('prompt');
          url.searchParams.delete('max_age');
          const callbackUrl = await person.idp.authorize(url.toString(), login);
          idp.idTokenChange = change;
          try {
            const back = await person.deliver(callbackUrl);
            expect(back.headers.get('location'), String(change.secondsAgo)).toBe('/backoffice/account?error=external_login_failed');
          } finally {
            idp.idTokenChange = undefined;
          }
          const link = await person.app.post('/auth/external/corp/link', {});
          expectClientError(link, 401);
          expect(link.body.code).toBe('reauthentication_required');
        }
      } finally {
        ctx.clock.advance(-6 * 60_000);
      }
    });

    it.each([
      { reauthenticationMinutes: 30, secondsAgo: 20 * 60 },
      // A window shorter than the clock skew: the token may be no older than the window (as before max_age=0)
      { reauthenticationMinutes: 1, secondsAgo: 120 },
    ])('OWASP ASVS 4.0 3.7.1 / 5.0 6.8.x: a step-up through the provider asks it for an authentication now (max_age=0, prompt=login) and refuses an ID token whose auth_time is older than the allowed clock skew or the re-authentication window, the shorter (a provider session reused): window $reauthenticationMinutes min, auth_time $secondsAgo s ago', async ({ reauthenticationMinutes, secondsAgo }) => {
      const app = await secondApp({ session: { secureCookies: false, reauthenticationMinutes }, externalLogins: providersFor(idp.issuer).slice(0, 1) });
      try {
        const { login } = account(`reused-stepup-${reauthenticationMinutes}`, { groups: [] });
        const person = new Person(app.url);
        expectSignedIn(await person.signIn('oidc', login));
        const step = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account' });
        expect(step.status, step.text).toBe(200);
        const url = new URL(step.body.redirectUrl);
        expect({ prompt: url.searchParams.get('prompt'), maxAge: url.searchParams.get('max_age') }).toEqual({ prompt: 'login', maxAge: '0' });
        // Whoever holds the browser drops both, and the provider answers from a session it authenticated earlier
        // (within the re-authentication window, or the clock skew, but no authentication of this step-up).
        url.searchParams.delete('prompt');
        url.searchParams.delete('max_age');
        const callbackUrl = await person.idp.authorize(url.toString(), login);
        idp.idTokenChange = { kind: 'authTime', secondsAgo };
        try {
          expect((await person.deliver(callbackUrl)).headers.get('location')).toBe('/backoffice/account?error=external_login_failed');
        } finally {
          idp.idTokenChange = undefined;
        }
        // A real authentication at the provider (prompt=login kept) steps up.
        const again = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account' });
        expect((await person.deliver(await person.idp.authorize(again.body.redirectUrl, login))).headers.get('location')).toBe('/backoffice/account');
      } finally {
        await app.close();
      }
    });

    it('OWASP ASVS 4.0 3.7.1 / 5.0 7.5.3: a step-up through the provider makes the session fresh from when the provider authenticated the person (auth_time), not from the callback: auth_time 60 s old and a 5 minute window, the session is no longer fresh 4.5 minutes after the callback', async () => {
      const { login } = account('stepup-auth-time', { groups: [] });
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      ctx.clock.advance(6 * 60_000);
      try {
        const step = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account' });
        expect(step.status, step.text).toBe(200);
        const callbackUrl = await person.idp.authorize(step.body.redirectUrl, login);
        idp.idTokenChange = { kind: 'authTime', secondsAgo: 60 };
        try {
          expect((await person.deliver(callbackUrl)).headers.get('location')).toBe('/backoffice/account');
        } finally {
          idp.idTokenChange = undefined;
        }
        ctx.clock.advance(3 * 60_000);
        expect((await person.app.post('/auth/external/corp/link', {})).status, 'fresh 4 minutes after auth_time').toBe(200);
        ctx.clock.advance(90_000);
        const stale = await person.app.post('/auth/external/corp/link', {});
        expect({ status: stale.status, code: stale.body.code }, '5.5 minutes after auth_time').toEqual({ status: 401, code: 'reauthentication_required' });
      } finally {
        ctx.clock.advance(-(6 * 60_000 + 3 * 60_000 + 90_000));
      }
    });

    it('OWASP ASVS 4.0 3.7.1 / 5.0 7.5.3: a sign-in through the provider is fresh from the ID token\'s auth_time, not from the callback: a provider session left open longer than session.reauthenticationMinutes (sign-ins send no max_age, so it answers silently) signs in, but @RequiresRecentSignIn() routes answer 401 reauthentication_required, as a step-up with that auth_time is refused; no auth_time is no recent sign-in; a fresh one passes', async () => {
      for (const secondsAgo of [330, 3600, null, 60]) {
        const { login } = account('signin-auth-time', { groups: [] });
        const person = new Person(ctx.url);
        const callbackUrl = await person.toCallback('oidc', login);
        idp.idTokenChange = { kind: 'authTime', secondsAgo };
        try {
          expectSignedIn(await person.deliver(callbackUrl));
        } finally {
          idp.idTokenChange = undefined;
        }
        expect((await person.app.get('/auth/me')).status).toBe(200);
        const link = await person.app.post('/auth/external/corp/link', {});
        const answer = { status: link.status, code: link.status === 200 ? undefined : link.body.code };
        const expected = secondsAgo === 60 ? { status: 200, code: undefined } : { status: 401, code: 'reauthentication_required' };
        expect(answer, `auth_time ${String(secondsAgo)} s before the sign-in`).toEqual(expected);
      }
    });

    it('OWASP ASVS 4.0 3.7.1 / 5.0 7.5.3: a sign-in through the provider with an old auth_time that goes on through the module\'s own second factor (TOTP) is fresh from that step', async () => {
      const { login } = account('signin-auth-time-2fa', { groups: [] });
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      const setup = await person.app.post('/auth/2fa/setup', { provider: 'totp' });
      expect(setup.status, setup.text).toBe(200);
      const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(setup.body.secret) });
      expect((await person.app.post('/auth/2fa/enable', { provider: 'totp', code: totp.generate() })).status).toBe(200);

      const again = new Person(ctx.url);
      const callbackUrl = await again.toCallback('oidc', login);
      idp.idTokenChange = { kind: 'authTime', secondsAgo: 3600 };
      try {
        expect((await again.deliver(callbackUrl)).headers.get('location')).toMatch(/status=requiresTwoFactor/);
      } finally {
        idp.idTokenChange = undefined;
      }
      const verified = await again.app.post('/auth/2fa', { provider: 'totp', code: totp.generate({ timestamp: Date.now() + 30_000 }) });
      expect(verified.status, verified.text).toBe(200);
      const link = await again.app.post('/auth/external/corp/link', {});
      expect(link.status, link.text).toBe(200);
    });

    it('OWASP ASVS 5.0 6.3.4: with denyLocalLogin (a provider\'s) a leftover password is no way in: unlinking the last login of a user who still has one is 409 last_login_method; password sign-in, forgot-password and password step-up are 403 local_login_disabled for known and unknown users alike', async () => {
      const local = await newUser();
      const login = sub('deny-leftover');
      idp.accounts.set(login, { email: `x-${login}@example.com`, email_verified: true });
      const linker = new Person(ctx.url);
      expect((await linker.app.login(local.email, TEST_PASSWORD)).status).toBe(200);
      const link = await linker.app.post('/auth/external/oidc/link', {});
      await linker.deliver(await linker.idp.authorize(link.body.redirectUrl, login));
      const app = await secondApp({ rateLimits: { enabled: false }, externalLogins: providersFor(idp.issuer, { denyLocalLogin: true }).slice(0, 1) });
      try {
        const person = new Person(app.url);
        expectSignedIn(await person.signIn('oidc', login));
        const last = await person.app.delete('/auth/external/logins/oidc');
        expect(last.status, last.text).toBe(409);
        expect(last.body.code).toBe('last_login_method');
        // A clear answer: no password can be set here (403 local_login_disabled), nor by a user who never had one.
        expect(last.body.message).toMatch(/link another/i);
        expect(last.body.message).not.toMatch(/password/i);
        expect((await ctx.userManager.getLogins((await ctx.userManager.findById(local.id))!)).map((l) => l.provider)).toEqual(['oidc']);
        const http = new HttpClient(app.url);
        for (const email of [local.email, `nobody-${login}@example.com`]) {
          const signIn = await http.post('/auth/login', { username: email, password: TEST_PASSWORD });
          expect(signIn.status).toBe(403);
          expect(signIn.body.code).toBe('local_login_disabled');
          const forgot = await http.post('/auth/forgot-password', { email });
          expect(forgot.status).toBe(403);
          expect(forgot.body.code).toBe('local_login_disabled');
        }
        const stepUp = await person.app.post('/auth/reauthenticate', { password: TEST_PASSWORD });
        expect(stepUp.status).toBe(403);
        expect(stepUp.body.code).toBe('local_login_disabled');
      } finally {
        await app.close();
      }
    });

    it('two concurrent unlinks of a user with two logins and no password leave one login (race-safe)', async () => {
      const { login } = account('race', { groups: [] });
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      const link = await person.app.post('/auth/external/corp/link', {});
      await person.deliver(await person.idp.authorize(link.body.redirectUrl, login));
      expect((await person.app.get('/auth/me')).body.logins).toHaveLength(2);
      const results = await Promise.all([person.app.delete('/auth/external/logins/oidc'), person.app.delete('/auth/external/logins/corp')]);
      expect(results.map((r) => r.status).sort()).toEqual([204, 409]);
      expect((await person.app.get('/auth/me')).body.logins).toHaveLength(1);
    });
  });

  describe('groups managed by the provider (the provider wins)', () => {
    it('groups follow the mapped claim on every sign-in, each change audited as a diff; local edits are 409', async () => {
      const { login } = account('managed', { groups: ['bo-editors', 'bo-writers', 'unmapped'] });
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('corp', login));
      const me = await person.app.get('/auth/me');
      expect(me.body.groups).toEqual(['editor', 'writer']);

      const admin = await adminClient();
      const edit = await admin.request('PUT', `/users/${me.body.id}/groups`, { body: { groups: ['admin'] } });
      expectClientError(edit, 409);
      expect(edit.body.code).toBe('groups_managed_by_provider');

      events.clear();
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: ['bo-editors', 'bo-admins'] });
      expectSignedIn(await new Person(ctx.url).signIn('corp', login));
      expect((await ctx.userManager.findById(me.body.id))!.groups.sort()).toEqual(['admin', 'editor']);
      const [change] = events.named(BackOfficeEvents.GroupsChanged, me.body.id) as UserGroupsChangedNotification[];
      expect({ added: change.added, removed: change.removed, source: change.source }).toEqual({ added: ['admin'], removed: ['writer'], source: 'provider:corp' });
      const audit = await ctx.app.get(DataSource).query(
        `SELECT details FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = 'backoffice.user.groups.changed' ORDER BY created_at DESC LIMIT 1`,
        [me.body.id],
      );
      expect(audit[0].details).toMatchObject({ added: ['admin'], removed: ['writer'], source: 'provider:corp' });

      // A group removed at the provider is removed here at the next sign-in (it does not come back).
      idp.accounts.set(login, { ...idp.accounts.get(login), groups: [] });
      expectSignedIn(await new Person(ctx.url).signIn('corp', login));
      expect((await ctx.userManager.findById(me.body.id))!.groups).toEqual([]);
    });

    it('without groupsManagedByProvider the local side wins after the first sign-in', async () => {
      const { login } = account('local-wins', { groups: ['bo-admins'] });
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      const id = (await person.app.get('/auth/me')).body.id;
      const admin = await adminClient();
      expect((await admin.request('PUT', `/users/${id}/groups`, { body: { groups: ['writer'] } })).status).toBe(200);
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      expect((await ctx.userManager.findById(id))!.groups).toEqual(['writer']);
    });
  });

  describe('log out everywhere (RP-initiated logout)', () => {
    it('logout of a provider session answers the end-session URL with the ID token (encrypted at rest) and post_logout_redirect_uri', async () => {
      const { login } = account('logout');
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      const rows = await ctx.app.get(DataSource).query(`SELECT encrypted_id_token FROM backoffice_session_external_login`);
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) expect(row.encrypted_id_token).toMatch(/^v1\./);

      events.clear();
      const logout = await person.app.post('/auth/logout');
      expect(logout.status).toBe(200);
      const url = new URL(logout.body.signOutRedirectUrl);
      expect(`${url.origin}${url.pathname}`).toBe(`${idp.issuer}/session/end`);
      expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`http://127.0.0.1:${ports[0]}/backoffice/`);
      const idToken = url.searchParams.get('id_token_hint')!;
      expect(idToken).toMatch(/^eyJ/);
      // Not at rest in clear: no row holds the token or its payload.
      const stored = JSON.stringify(await ctx.app.get(DataSource).query(`SELECT * FROM backoffice_session_external_login`));
      expect(stored).not.toContain(idToken.split('.')[1]);
      // The provider accepts it (its logout confirmation page), and the ID token never reaches the audit trail.
      expect((await person.idp.request(url.toString())).status).toBe(200);
      const [notification] = events.named(BackOfficeEvents.LogoutSuccess) as UserLogoutSuccessNotification[];
      expect(notification.signOutRedirectUrl).toBeNull();
    });

    it('a listener that sets its own signOutRedirectUrl wins; a password session gets null', async () => {
      const emitter = ctx.app.get(EventEmitter2);
      const listener = (n: UserLogoutSuccessNotification) => {
        n.signOutRedirectUrl = 'https://example.com/bye';
      };
      const { login } = account('listener');
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      emitter.on(BackOfficeEvents.LogoutSuccess, listener);
      try {
        expect((await person.app.post('/auth/logout')).body.signOutRedirectUrl).toBe('https://example.com/bye');
      } finally {
        emitter.off(BackOfficeEvents.LogoutSuccess, listener);
      }
      const local = await newUser();
      const http = new HttpClient(ctx.url);
      await http.login(local.email, TEST_PASSWORD);
      expect((await http.post('/auth/logout')).body.signOutRedirectUrl).toBeNull();
    });
  });

  describe('two-factor still applies after an external sign-in', () => {
    it('a user with TOTP on is asked for the code; the session (and its RP logout) starts only after it', async () => {
      const { login } = account('tfa');
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', login));
      const setup = await person.app.post('/auth/2fa/setup', { provider: 'totp' });
      const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(setup.body.secret) });
      expect((await person.app.post('/auth/2fa/enable', { provider: 'totp', code: totp.generate() })).status).toBe(200);

      const again = new Person(ctx.url);
      const result = await again.signIn('oidc', login, { returnUrl: '/backoffice/account' });
      expect(result.status).toBe(302);
      const location = new URL(result.headers.get('location')!, ctx.url);
      expect(location.pathname).toBe('/backoffice');
      expect(location.searchParams.get('status')).toBe('requiresTwoFactor');
      expect(location.searchParams.get('providers')!.split(',')).toContain('totp');
      expect(location.searchParams.get('returnUrl')).toBe('/backoffice/account');
      expect(result.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`))).toBe(false);
      expect((await again.app.get('/auth/me')).status).toBe(401);

      events.clear();
      const verified = await again.app.post('/auth/2fa', { provider: 'totp', code: totp.generate({ timestamp: Date.now() + 30_000 }) });
      expect(verified.status, verified.text).toBe(200);
      expect(events.named(BackOfficeEvents.ExternalLoginSuccess, verified.body.user.id)).toHaveLength(1);
      expect((await again.app.get('/auth/me')).body.logins).toEqual([{ provider: 'oidc', displayName: 'Single sign-on' }]);
      expect((await again.app.post('/auth/logout')).body.signOutRedirectUrl).toMatch(new RegExp(`^${idp.issuer}/session/end\\?`));
    });

    it('with trustProviderTwoFactor, an ID token whose amr says mfa skips the local second factor', async () => {
      const trusting = await secondApp({ externalLogins: providersFor(idp.issuer, { trustProviderTwoFactor: true }).slice(0, 1) });
      try {
        const { login, email } = account('amr');
        expectSignedIn(await new Person(trusting.url).signIn('oidc', login));
        const user = (await trusting.userManager.findByEmail(email))!;
        await trusting.userManager.setTwoFactorEnabled(user, true);
        // Without mfa in amr: the local second factor is asked for.
        const plain = await new Person(trusting.url).signIn('oidc', login);
        expect(plain.headers.get('location')).toMatch(/status=requiresTwoFactor/);
        idp.idTokenChange = { kind: 'amr', amr: ['pwd', 'mfa'] };
        try {
          expectSignedIn(await new Person(trusting.url).signIn('oidc', login));
        } finally {
          idp.idTokenChange = undefined;
        }
      } finally {
        await trusting.close();
      }
    });
  });

  describe('two-factor enforced by a group (requireTwoFactor) applies after an external sign-in too', () => {
    /** A group that requires two-factor; returns its alias. */
    async function requiringGroup(admin: HttpClient): Promise<string> {
      const alias = `extEnforced${++counter}`;
      const created = await admin.post('/groups', { alias, name: `Enforced ${counter}`, permissions: ['audit.read'], requireTwoFactor: true });
      expect(created.status, created.text).toBe(201);
      return alias;
    }

    it('a member without 2FA gets a setup-only session on the account page, reaching nothing but setup until enrolled (ASVS 4.0 2.8)', async () => {
      const admin = await adminClient();
      const alias = await requiringGroup(admin);
      const { login, email } = account('enforced');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      const user = (await ctx.userManager.findByEmail(email))!;
      expect((await ctx.userManager.setGroups(user, [alias])).succeeded).toBe(true);

      events.clear();
      const person = new Person(ctx.url);
      const result = await person.signIn('oidc', login, { returnUrl: '/backoffice/elsewhere' });
      expect(result.status, result.text).toBe(302);
      expect(result.headers.get('location')).toBe('/backoffice/account?status=requiresTwoFactorSetup');
      expect(result.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`) && !/Max-Age=0/.test(c))).toBe(true);
      expect(events.named(BackOfficeEvents.LoginRequiresTwoFactorSetup, user.id)).toHaveLength(1);
      expect(events.named(BackOfficeEvents.ExternalLoginSuccess, user.id)).toHaveLength(0);
      expect((await person.app.get('/auth/me')).body).toMatchObject({ id: user.id, twoFactorEnabled: false });
      for (const path of ['/audit', '/auth/sessions']) {
        const refused = await person.app.get(path);
        expectClientError(refused, 403);
        expect(refused.body.code).toBe('two_factor_setup_required');
      }
      const page = await person.app.request('GET', '/account?status=requiresTwoFactorSetup');
      expect(page.text).toContain('Your group requires two-factor authentication.');

      const setup = await person.app.post('/auth/2fa/setup', { provider: 'totp' });
      expect(setup.status, setup.text).toBe(200);
      const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(setup.body.secret) });
      const enable = await person.app.post('/auth/2fa/enable', { provider: 'totp', code: totp.generate({ timestamp: ctx.clock.now().getTime() }) });
      expect(enable.status, enable.text).toBe(200);
      expect((await person.app.get('/audit')).status).toBe(200);
      // The session kept its provider: logout still ends the provider session (RP-initiated logout).
      expect((await person.app.post('/auth/logout')).body.signOutRedirectUrl).toMatch(new RegExp(`^${idp.issuer}/session/end\\?`));
      // From now on the provider sign-in asks for the code, like a password sign-in.
      const next = await new Person(ctx.url).signIn('oidc', login);
      expect(new URL(next.headers.get('location')!, ctx.url).searchParams.get('status')).toBe('requiresTwoFactor');
    });

    it('OWASP ASVS 4.0 3.7.1 / 5.0 7.5.3: a member without a password whose provider answered from an old provider session (auth_time an hour ago) gets a setup-only session that is not recent: the setup routes answer 401 reauthentication_required, and the session steps up through the provider (POST /auth/external/:name/reauthenticate, as a password step-up is open to it), then sets up 2FA; it stays setup-only until the code is confirmed', async () => {
      const admin = await adminClient();
      const alias = await requiringGroup(admin);
      const { login, email } = account('enforced-stale');
      const other = account('enforced-stale-other');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      const user = (await ctx.userManager.findByEmail(email))!;
      expect(user.passwordHash ?? null, 'no password: the provider is the only way in').toBeNull();
      expect((await ctx.userManager.setGroups(user, [alias])).succeeded).toBe(true);

      const person = new Person(ctx.url);
      const callbackUrl = await person.toCallback('oidc', login);
      idp.idTokenChange = { kind: 'authTime', secondsAgo: 3600 };
      try {
        expect((await person.deliver(callbackUrl)).headers.get('location')).toBe('/backoffice/account?status=requiresTwoFactorSetup');
      } finally {
        idp.idTokenChange = undefined;
      }
      const stale = await person.app.post('/auth/2fa/setup', { provider: 'totp' });
      expect({ status: stale.status, code: stale.body.code }, 'setup with a provider authentication an hour old').toEqual({ status: 401, code: 'reauthentication_required' });

      // The step-up through the linked provider is open to the setup-only session (as POST /auth/reauthenticate is);
      // it still needs the provider account linked to this user.
      const wrong = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account?status=requiresTwoFactorSetup' });
      expect({ status: wrong.status, code: wrong.body.code }, 'step-up through the provider from a setup-only session').toEqual({ status: 200, code: undefined });
      const refused = await person.deliver(await person.idp.authorize(wrong.body.redirectUrl, other.login));
      expect(refused.headers.get('location')).toBe('/backoffice/account?status=requiresTwoFactorSetup&error=not_allowed');
      expect((await person.app.post('/auth/2fa/setup', { provider: 'totp' })).body.code).toBe('reauthentication_required');

      const step = await person.app.post('/auth/external/oidc/reauthenticate', { returnUrl: '/backoffice/account?status=requiresTwoFactorSetup' });
      expect(step.status, step.text).toBe(200);
      expect(new URL(step.body.redirectUrl).searchParams.get('max_age')).toBe('0');
      const back = await person.deliver(await person.idp.authorize(step.body.redirectUrl, login));
      expect(back.headers.get('location')).toBe('/backoffice/account?status=requiresTwoFactorSetup');
      expect(back.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`) && !/Max-Age=0/.test(c)), 'a new session token').toBe(true);

      const setup = await person.app.post('/auth/2fa/setup', { provider: 'totp' });
      expect(setup.status, setup.text).toBe(200);
      // Still setup-only: nothing but the setup routes until the code is confirmed.
      for (const path of ['/audit', '/auth/sessions', '/users']) {
        const blocked = await person.app.get(path);
        expect({ path, status: blocked.status, code: blocked.body.code }).toEqual({ path, status: 403, code: 'two_factor_setup_required' });
      }
      const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(setup.body.secret) });
      const enable = await person.app.post('/auth/2fa/enable', { provider: 'totp', code: totp.generate({ timestamp: ctx.clock.now().getTime() }) });
      expect(enable.status, enable.text).toBe(200);
      expect((await person.app.get('/audit')).status).toBe(200);
    });

    it('a first sign-in that auto-links straight into such a group gets the setup-only session too; a wrong provider login gets none', async () => {
      const admin = await adminClient();
      const alias = await requiringGroup(admin);
      const app = await secondApp({ externalLogins: providersFor(idp.issuer, { autoLink: { enabled: true, defaultGroups: [alias] } }).slice(0, 1) });
      try {
        const { login } = account('enforced-new');
        const person = new Person(app.url);
        const result = await person.signIn('oidc', login);
        expect(result.headers.get('location')).toBe('/backoffice/account?status=requiresTwoFactorSetup');
        const refused = await person.app.get('/audit');
        expectClientError(refused, 403);
        expect(refused.body.code).toBe('two_factor_setup_required');
        expectRefused(await new Person(app.url).signIn('oidc', account('enforced-unverified', { email_verified: false }).login), 'external_email_unverified');
      } finally {
        await app.close();
      }
    });

    it('an invitee who accepts through the provider into such a group gets the setup-only session and is no longer invited', async () => {
      const admin = await adminClient();
      const alias = await requiringGroup(admin);
      const invite = await inviteWithTakeOver(ctx, [alias]);
      const person = new Person(ctx.url);
      const result = await person.acceptInvite('oidc', invite, account('enforced-invitee').login);
      expect(result.headers.get('location')).toBe('/backoffice/account?status=requiresTwoFactorSetup');
      expect((await person.app.get('/audit')).body.code).toBe('two_factor_setup_required');
      const after = (await ctx.userManager.findById(invite.userId))!;
      expect(ctx.app.get(BackOfficeInviteService).isInvited(after)).toBe(false);
      expect((await person.app.get('/auth/me')).body).toMatchObject({ id: invite.userId, state: 'active' });
    });

    it('with a grace period: full sessions until it ends (counted from the first sign-in), then the setup-only session', async () => {
      const admin = await adminClient();
      const alias = await requiringGroup(admin);
      const app = await secondApp({
        twoFactor: { encryptionKey: 'test-encryption-key-0123456789abcdef', enforcementGraceHours: 48 },
        externalLogins: providersFor(idp.issuer, { autoLink: { enabled: true, defaultGroups: [alias] } }).slice(0, 1),
      });
      try {
        const { login, email } = account('grace');
        const first = new Person(app.url);
        expectSignedIn(await first.signIn('oidc', login));
        expect((await first.app.get('/audit')).status).toBe(200);
        const user = (await app.userManager.findByEmail(email))!;
        expect(user.twoFactorSetupDeadline!.getTime() - app.clock.now().getTime()).toBeGreaterThan(47 * 3_600_000);
        app.clock.advance(24 * 3_600_000);
        expectSignedIn(await new Person(app.url).signIn('oidc', login));
        expect((await app.userManager.findById(user.id))!.twoFactorSetupDeadline).toEqual(user.twoFactorSetupDeadline);
        app.clock.advance(25 * 3_600_000);
        const late = new Person(app.url);
        expect((await late.signIn('oidc', login)).headers.get('location')).toBe('/backoffice/account?status=requiresTwoFactorSetup');
        expect((await late.app.get('/audit')).body.code).toBe('two_factor_setup_required');
      } finally {
        await app.close();
      }
    });
  });

  describe('two app instances on one database', () => {
    it('a flow started on one instance completes on the other, and cannot be replayed on the first', async () => {
      // Behind one load balancer both instances share the public URL (and so the redirect URI).
      const second = await secondApp({ publicUrl: `http://127.0.0.1:${ports[0]}`, externalLogins: providersFor(idp.issuer) });
      try {
        const { login } = account('instances');
        const person = new Person(ctx.url);
        const url = await person.toCallback('oidc', login);
        expectSignedIn(await person.deliver(url, second.url));
        expectRefused(await person.deliver(url, ctx.url), 'external_login_failed');
        expect((await person.app.get('/auth/me')).status).toBe(200);
      } finally {
        await second.close();
      }
    });
  });

  describe('start-up', () => {
    it('a provider that is down at start-up does not stop the app: 503 provider_unavailable until it comes back', async () => {
      const late = await TestOidcProvider.start(clientsFor([ports[1]]));
      late.down = true;
      const app = await secondApp({ externalLogins: providersFor(late.issuer).slice(0, 1) }, { waitForProvider: false });
      try {
        const person = new Person(app.url);
        expect((await person.app.get('/auth/external/providers')).body).toEqual([{ name: 'oidc', displayName: 'Single sign-on', autoRedirect: false, available: false }]);
        const refused = await person.challenge('oidc');
        expect(refused.status).toBe(503);
        expect(refused.headers.get('retry-after')).toBe('30');
        expect(refused.body).toEqual({ statusCode: 503, code: 'provider_unavailable', message: expect.any(String) });
        expect((await person.app.get('/auth/me')).status).toBe(401);

        late.down = false;
        await waitFor(async () => (await person.app.get('/auth/external/providers')).body[0].available === true);
        late.accounts.set('late-person', { email: `late-${Date.now()}@example.com`, email_verified: true });
        expectSignedIn(await person.signIn('oidc', 'late-person'));
      } finally {
        await app.close();
        await late.stop();
      }
    });

    it('a user store without UserLoginStore turns external logins off with a clear message', async () => {
      const { TypeOrmBackOfficeUserStore } = await import('../../src/backoffice-identity/index.js');
      class StoreWithoutLogins extends TypeOrmBackOfficeUserStore {
        addLogin = undefined as never;
      }
      const messages: string[] = [];
      const logger = { log: () => undefined, warn: (m: string) => messages.push(m), error: (m: string) => messages.push(m), debug: () => undefined, verbose: () => undefined };
      const app = await secondApp({ userStore: StoreWithoutLogins, externalLogins: providersFor(idp.issuer) }, { waitForProvider: false, logger });
      try {
        expect(app.userManager.supportsUserLogin).toBe(false);
        expect(messages.join('\n')).toMatch(/External logins are OFF: the user store does not implement UserLoginStore/);
        expect((await new HttpClient(app.url).get('/auth/external/providers')).body).toEqual([]);
        expectClientError(await new Person(app.url).challenge('oidc'), 404);
      } finally {
        await app.close();
      }
    });
  });

  describe('accepting an invite through a provider (the token only in a JSON body, never a URL)', () => {
    it('with denyLocalLogin: the email links the accept-invite page (token in the fragment); the provider login is linked to the invitee and the invite used up', async () => {
      const app = await secondApp({ externalLogins: providersFor(idp.issuer, { denyLocalLogin: true, autoLink: { enabled: false } }).slice(0, 1) });
      try {
        const invite = await inviteWithTakeOver(app);
        expect(invite.message.text).toContain('Accept the invitation and sign in with Single sign-on');
        // No query string anywhere in the email carries the token.
        expect(invite.message.text).not.toMatch(/[?&]invite=/);
        expect(invite.message.html).not.toContain(`?invite=`);
        const page = await new HttpClient(app.url).request('GET', '/accept-invite');
        expect(page.text).toContain('id="bo-providers"');
        expect(page.text).not.toContain('bo-invite-form');

        // The page checks the link as it loads: the verify lookup answers with denyLocalLogin too (only the password accept is off).
        const verify = (token: string) => new HttpClient(app.url).post('/auth/invite/verify', { userId: invite.userId, token });
        const live = await verify(invite.token);
        expect(live.status, live.text).toBe(200);
        expect(live.body).toEqual({ username: invite.email });
        expect((await verify('wrong-token')).body.code).toBe('invalid_token');
        const accept = await new HttpClient(app.url).post('/auth/invite/accept', { userId: invite.userId, token: invite.token, password: TEST_PASSWORD });
        expectClientError(accept, 403);
        expect(accept.body.code).toBe('local_login_disabled');

        // The person's account at the provider has another email: the invite token is what proves the invitee.
        const login = sub('invitee');
        idp.accounts.set(login, { email: `${login}@personal.example.com`, email_verified: true });
        const person = new Person(app.url);
        const challenge = await person.inviteChallenge('oidc', { userId: invite.userId, token: invite.token, returnUrl: '/backoffice/account' });
        expect(challenge.status, challenge.text).toBe(200);
        expect(new URL(challenge.body.redirectUrl).origin).toBe(idp.issuer);
        expect(challenge.body.redirectUrl).not.toContain(invite.token);
        const result = await person.deliver(await person.idp.authorize(challenge.body.redirectUrl, login));
        expectSignedIn(result, '/backoffice/account');
        const me = await person.app.get('/auth/me');
        expect(me.body).toMatchObject({ id: invite.userId, email: invite.email, state: 'active', groups: ['writer'], logins: [{ provider: 'oidc' }] });
        // The pending state holds the invite only as a hash.
        const rows = await app.app.get(DataSource).query(`SELECT payload FROM backoffice_external_login_state`);
        expect(JSON.stringify(rows)).not.toContain(invite.token);

        // Used up: the same link is refused at once; password sign-in stays off; the only login cannot go.
        const again = await new Person(app.url).inviteChallenge('oidc', { userId: invite.userId, token: invite.token });
        expectClientError(again, 400);
        expect(again.body.code).toBe('invalid_token');
        const password = await new Person(app.url).app.login(invite.email, TEST_PASSWORD);
        expectClientError(password, 403);
        expect(password.body.code).toBe('local_login_disabled');
        expect((await person.app.delete('/auth/external/logins/oidc')).body.code).toBe('last_login_method');
        expect((await verify(invite.token)).body.code).toBe('invalid_token');
      } finally {
        await app.close();
      }
    });

    it('without denyLocalLogin any invitee may continue with a provider instead of a password; the password form is still offered', async () => {
      const invite = await inviteWithTakeOver(ctx, ['editor']);
      expect(invite.message.text).toContain('Accept the invitation and choose a password');
      const page = await new HttpClient(ctx.url).request('GET', '/accept-invite');
      expect(page.text).toContain('bo-invite-form');
      expect(page.text).toContain('id="bo-providers"');
      const { login } = account('invitee-any');
      events.clear();
      const person = new Person(ctx.url);
      expectSignedIn(await person.acceptInvite('oidc', invite, login));
      expect(events.named(BackOfficeEvents.InviteAccepted, invite.userId)).toHaveLength(1);
      expect((await person.app.get('/auth/me')).body).toMatchObject({ id: invite.userId, state: 'active', groups: ['editor'], logins: [{ provider: 'oidc' }] });
      // The password route refuses the used invite too.
      const accept = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: invite.userId, token: invite.token, password: 'a long enough passphrase 123' });
      expect(accept.body.code).toBe('invalid_token');
    });

    it('OWASP ASVS 4.0 2.2.1: an invitee locked by failed sign-ins on their address (anyone can cause it) still accepts through the provider; accepting clears the lock', async () => {
      const invite = await inviteWithTakeOver(ctx, ['editor']);
      const invitee = (await ctx.userManager.findById(invite.userId))!;
      await ctx.userManager.setLockoutEnd(invitee, new Date(ctx.clock.now().getTime() + 3_600_000));
      const { login } = account('invitee-locked');
      const person = new Person(ctx.url);
      events.clear();
      expectSignedIn(await person.acceptInvite('oidc', invite, login));
      // Cleared quietly, as a password reset or a password accept does: no admin unlock to notify (or audit).
      expect(events.named(BackOfficeEvents.Unlocked, invite.userId)).toEqual([]);
      expect((await person.app.get('/auth/me')).body).toMatchObject({ id: invite.userId, state: 'active', logins: [{ provider: 'oidc' }] });
      const stored = (await ctx.userManager.findById(invite.userId))!;
      expect([stored.lockoutEnd, stored.accessFailedCount]).toEqual([null, 0]);
    });

    it('wrong, expired and foreign tokens and unknown user ids get one answer, 400 invalid_token, and start nothing (ASVS 5.0 7.2.1)', async () => {
      const invite = await inviteWithTakeOver(ctx, ['editor']);
      const other = await inviteWithTakeOver(ctx, ['editor']);
      const local = await newUser();
      const cases: Array<[string, { userId: string; token: string }]> = [
        ['wrong token', { userId: invite.userId, token: invite.token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) }],
        ["another invitee's token", { userId: invite.userId, token: other.token }],
        ['an active user id', { userId: local.id, token: invite.token }],
        ['an unknown user id', { userId: crypto.randomUUID(), token: invite.token }],
        ['not a uuid', { userId: 'x'.repeat(60), token: invite.token }],
        ['a unicode token', { userId: invite.userId, token: '🔑ünï'.repeat(50) }],
      ];
      for (const [name, body] of cases) {
        const result = await new Person(ctx.url).inviteChallenge('oidc', body);
        expectClientError(result, 400);
        expect(result.body.code, name).toBe('invalid_token');
        expect(result.setCookies.some((c) => c.startsWith(`${PLAIN_HTTP_COOKIES.externalLogin}=`)), name).toBe(false);
      }
      // Expired: past inviteLifespanHours (72 by default) the same token is refused; the invitee stays invited.
      ctx.clock.advance(73 * 3_600_000);
      try {
        const expired = await new Person(ctx.url).inviteChallenge('oidc', { userId: invite.userId, token: invite.token });
        expectClientError(expired, 400);
        expect(expired.body.code).toBe('invalid_token');
      } finally {
        ctx.clock.advance(-73 * 3_600_000);
      }
      // Still usable before that: nothing above used it up.
      const { login } = account('invitee-late');
      expectSignedIn(await new Person(ctx.url).acceptInvite('oidc', invite, login));
    });

    it('two challenges of one invite: the first callback uses it up, the second ends at ?error=invalid_token without a session', async () => {
      const invite = await inviteWithTakeOver(ctx, ['editor']);
      const first = new Person(ctx.url);
      const second = new Person(ctx.url);
      const a = await first.inviteChallenge('oidc', { userId: invite.userId, token: invite.token });
      const b = await second.inviteChallenge('oidc', { userId: invite.userId, token: invite.token });
      expect([a.status, b.status]).toEqual([200, 200]);
      expectSignedIn(await first.deliver(await first.idp.authorize(a.body.redirectUrl, account('race-a').login)));
      expectRefused(await second.deliver(await second.idp.authorize(b.body.redirectUrl, account('race-b').login)), 'invalid_token');
      expect((await ctx.userManager.getLogins((await ctx.userManager.findById(invite.userId))!)).map((l) => l.provider)).toEqual(['oidc']);
    });

    it('a provider account linked to someone else is refused (login_already_linked) and the invite stays usable', async () => {
      const { login } = account('taken');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      const invite = await inviteWithTakeOver(ctx, ['editor']);
      expectRefused(await new Person(ctx.url).acceptInvite('oidc', invite, login), 'login_already_linked');
      expect(ctx.app.get(BackOfficeInviteService).isInvited((await ctx.userManager.findById(invite.userId))!)).toBe(true);
      expectSignedIn(await new Person(ctx.url).acceptInvite('oidc', invite, account('fresh').login));
    });

    it('a provider account linked to someone else right after the callback checked it (a concurrent first sign-in) is refused (login_already_linked) and the invite stays usable', async () => {
      const invite = await inviteWithTakeOver(ctx, ['editor']);
      const { login, email } = account('raced-link');
      const manager = ctx.userManager;
      const findByLogin = manager.findByLogin.bind(manager);
      let raced = false;
      // The provider account's own first sign-in (another tab, auto-linking) lands between the callback's check that
      // nobody has the account and its link to the invitee.
      manager.findByLogin = async (provider, providerKey) => {
        const owner = await findByLogin(provider, providerKey);
        if (!raced && provider === 'oidc' && providerKey === login) {
          raced = true;
          const created = await manager.createUserWithLogin({ email, name: 'Raced', groups: ['editor'] }, { provider: 'oidc', providerKey: login, displayName: 'Single sign-on' });
          expect(created.succeeded).toBe(true);
        }
        return owner;
      };
      try {
        expectRefused(await new Person(ctx.url).acceptInvite('oidc', invite, login), 'login_already_linked');
      } finally {
        manager.findByLogin = findByLogin;
      }
      expect(raced).toBe(true);
      const invitee = (await manager.findById(invite.userId))!;
      expect(ctx.app.get(BackOfficeInviteService).isInvited(invitee)).toBe(true);
      expect(await manager.getLogins(invitee)).toEqual([]);
      const retry = await new Person(ctx.url).inviteChallenge('oidc', { userId: invite.userId, token: invite.token });
      expect(retry.status, `the invite was used up by the refused accept: ${retry.text}`).toBe(200);
      expectSignedIn(await new Person(ctx.url).acceptInvite('oidc', invite, account('raced-retry').login));
    });

    it('malformed, huge and wrongly typed bodies are clean 4xx; an unknown provider is 404', async () => {
      const statuses = await expectBadBodiesRefused(new HttpClient(ctx.url), 'POST', '/auth/external/oidc/challenge', ['userId', 'token']);
      expect(statuses['1 MB body']).toBe(413);
      expect(statuses['wrong content type']).toBe(415);
      const invite = { userId: crypto.randomUUID(), token: 'a'.repeat(43) };
      expectClientError(await new Person(ctx.url).inviteChallenge('nope', invite), 404);
      const badReturn = await new Person(ctx.url).inviteChallenge('oidc', { ...invite, returnUrl: '//evil.example/' });
      expectClientError(badReturn, 400);
    });
  });

  describe('invites taken over by the host, accepted by signing in at the provider (denyLocalLogin + autoLink, no invite link)', () => {
    const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
    /** Spy for `onAutoLinking`: it is for users being created, so an invitee's sign-in never calls it. */
    const onAutoLinking = vi.fn();

    /**
     * The app of the seeds' scenario: every user at the provider, password sign-in off, and the provider's
     * `defaultGroups` (`writer`) different from what admins choose, to show they are not added to an invitee.
     */
    async function takeOverApp(
      autoLink: BackOfficeExternalLoginProviderOptions['autoLink'] = { enabled: true, defaultGroups: ['writer'] },
      more: BackOfficeExternalLoginProviderOptions[] = [],
      identity: BackOfficeIdentityModuleOptions = {},
    ) {
      onAutoLinking.mockReset();
      const app = await secondApp({
        ...identity,
        denyLocalLogin: true,
        externalLogins: [...providersFor(idp.issuer, { denyLocalLogin: true, autoLink, onAutoLinking }).slice(0, 1), ...more],
      });
      return { app, events: NotificationRecorder.attach(app.app) };
    }

    /**
     * An admin's invite, taken over like Umbraco's `SendEmailNotification` + `HandleEmail()`: the listener
     * invites the person at the provider (here: creates their provider account with the invite's email, as the
     * provider's own invite would) and the module sends nothing. Returns the invitee and the module's unused token.
     */
    async function inviteAtProvider(app: IdentityApp, groups: string[], claims: Record<string, unknown> = {}) {
      const emitter = app.app.get(EventEmitter2);
      const login = sub('takeover-invitee');
      const sent: SendEmailNotification[] = [];
      const listener = (n: SendEmailNotification) => {
        if (n.emailType !== 'UserInvite') return;
        sent.push(n);
        idp.accounts.set(login, { email: n.message.to, email_verified: true, name: `Provider name ${login}`, ...claims });
        n.handleEmail();
      };
      emitter.on(BackOfficeEvents.SendEmail, listener);
      try {
        const email = `${login}@corp.example.com`;
        const invited = await app.app.get(BackOfficeInviteService).invite({ email, name: 'Invited By Admin', groups }, null);
        expect(invited.succeeded).toBe(true);
        expect(invited.value!.delivery).toEqual({ handledByListener: true });
        expect(sent).toHaveLength(1);
        const token = new URLSearchParams(new URL(/https?:\/\/\S+\/accept-invite#\S+/.exec(sent[0].message.text)![0]).hash.slice(1)).get('token')!;
        return { user: invited.value!.user, userId: invited.value!.user.id, email, login, token };
      } finally {
        emitter.off(BackOfficeEvents.SendEmail, listener);
      }
    }

    /** Nothing was written: still an invitee (maybe disabled or locked), never signed in, no login, the invite token as it was. */
    async function expectStillInvited(app: IdentityApp, invitee: { userId: string; token: string }, tokenLive = true): Promise<void> {
      const user = (await app.userManager.findById(invitee.userId))!;
      expect(user.invitedAt).not.toBeNull();
      expect(app.userManager.hasPassword(user)).toBe(false);
      expect(user.lastLoginAt).toBeNull();
      expect(await app.userManager.getLogins(user)).toEqual([]);
      expect(await app.userManager.getTokenStore().isTokenLive(user.id, 'invite', sha256(invitee.token), app.clock.now())).toBe(tokenLive);
    }

    it('the invitee signs in at the provider with the invited, verified email: linked, invite accepted, admin-chosen groups kept, old link dead', async () => {
      const { app, events } = await takeOverApp();
      try {
        const invitee = await inviteAtProvider(app, ['editor']);
        const person = new Person(app.url);
        const result = await person.signIn('oidc', invitee.login, { returnUrl: '/backoffice/account' });
        expectSignedIn(result, '/backoffice/account');
        const me = await person.app.get('/auth/me');
        expect(me.status).toBe(200);
        // The admin's groups, not the provider's defaultGroups; the admin's name (onExternalLogin may sync it).
        expect(me.body).toMatchObject({ id: invitee.userId, email: invitee.email, groups: ['editor'], state: 'active', logins: [{ provider: 'oidc', displayName: 'Single sign-on' }] });
        expect(onAutoLinking).not.toHaveBeenCalled();
        for (const name of [BackOfficeEvents.InviteAccepted, BackOfficeEvents.AutoLinked, BackOfficeEvents.LoginLinked, BackOfficeEvents.ExternalLoginSuccess, BackOfficeEvents.LoginSuccess]) {
          expect(events.named(name, invitee.userId), name).toHaveLength(1);
        }
        const audit = await app.app.get(DataSource).query(`SELECT event FROM backoffice_audit_entry WHERE affected_user_id = $1`, [invitee.userId]);
        expect(audit.map((r: { event: string }) => r.event)).toEqual(
          expect.arrayContaining(['backoffice.user.invite.accepted', 'backoffice.user.auto-linked', 'backoffice.user.login.linked', 'backoffice.user.external-login.success']),
        );

        // The module's invite token (never sent) is void: the accept-invite challenge refuses it, and it is used up.
        expect(await app.userManager.getTokenStore().isTokenLive(invitee.userId, 'invite', sha256(invitee.token), app.clock.now())).toBe(false);
        const old = await new Person(app.url).inviteChallenge('oidc', { userId: invitee.userId, token: invitee.token });
        expectClientError(old, 400);
        expect(old.body.code).toBe('invalid_token');

        // Later sign-ins find the user by the login; nobody new, no second acceptance; password sign-in stays off.
        const again = new Person(app.url);
        expectSignedIn(await again.signIn('oidc', invitee.login));
        expect((await again.app.get('/auth/me')).body.id).toBe(invitee.userId);
        expect(events.named(BackOfficeEvents.InviteAccepted, invitee.userId)).toHaveLength(1);
        expect(events.named(BackOfficeEvents.AutoLinked, invitee.userId)).toHaveLength(1);
        expect((await new HttpClient(app.url).login(invitee.email, TEST_PASSWORD)).body.code).toBe('local_login_disabled');
      } finally {
        await app.close();
      }
    });

    it('an email the provider has not verified is refused (external_email_unverified); the invitee stays invited', async () => {
      const { app } = await takeOverApp();
      try {
        const invitee = await inviteAtProvider(app, ['editor'], { email_verified: false });
        expectRefused(await new Person(app.url).signIn('oidc', invitee.login), 'external_email_unverified');
        await expectStillInvited(app, invitee);
        // No email_verified claim at all counts as unverified too.
        idp.accounts.set(invitee.login, { email: invitee.email });
        expectRefused(await new Person(app.url).signIn('oidc', invitee.login), 'external_email_unverified');
        await expectStillInvited(app, invitee);
      } finally {
        await app.close();
      }
    });

    it('OWASP ASVS 5.0 10.5.2 (nOAuth): with requireVerifiedEmail: false an unverified email still never claims an invitee (the admin chose its groups); it may only create a new user', async () => {
      const { app, events } = await takeOverApp({ enabled: true, defaultGroups: ['writer'], requireVerifiedEmail: false });
      try {
        const invitee = await inviteAtProvider(app, ['admin'], { email_verified: false });
        expectRefused(await new Person(app.url).signIn('oidc', invitee.login), 'external_email_unverified');
        await expectStillInvited(app, invitee);
        expect(events.named(BackOfficeEvents.InviteAccepted, invitee.userId)).toHaveLength(0);
        // The option still governs creating a user: an unknown, unverified address becomes a new user with the
        // provider's defaultGroups.
        const fresh = sub('unverified-new');
        idp.accounts.set(fresh, { email: `${fresh}@corp.example.com`, email_verified: false, name: 'Fresh Person' });
        const person = new Person(app.url);
        expectSignedIn(await person.signIn('oidc', fresh));
        expect((await person.app.get('/auth/me')).body.groups).toEqual(['writer']);
      } finally {
        await app.close();
      }
    });

    it('users who are not invitees are never taken over (external_email_in_use); a disabled invitee is not_allowed; nothing is written', async () => {
      const { app } = await takeOverApp();
      const login = (email: string) => {
        const key = sub('not-invitee');
        idp.accounts.set(key, { email, email_verified: true });
        return key;
      };
      try {
        const manager = app.userManager;
        // Active, with a password.
        const active = await newUser();
        expectRefused(await new Person(app.url).signIn('oidc', login(active.email.toUpperCase())), 'external_email_in_use');
        expect(await manager.getLogins(active)).toEqual([]);

        // Invited, but has a password now (inactive).
        const withPassword = await inviteAtProvider(app, ['editor']);
        expect((await manager.addPassword((await manager.findById(withPassword.userId))!, 'a long enough passphrase 123')).succeeded).toBe(true);
        expectRefused(await new Person(app.url).signIn('oidc', withPassword.login), 'external_email_in_use');
        expect(await manager.getLogins({ id: withPassword.userId })).toEqual([]);

        // Invited, but already has another login.
        const withLogin = await inviteAtProvider(app, ['editor']);
        expect((await manager.addLogin((await manager.findById(withLogin.userId))!, { provider: 'corp', providerKey: sub('other'), displayName: 'Corporate directory' })).succeeded).toBe(true);
        expectRefused(await new Person(app.url).signIn('oidc', withLogin.login), 'external_email_in_use');
        expect((await manager.getLogins({ id: withLogin.userId })).map((l) => l.provider)).toEqual(['corp']);

        // Invited and then signed in once (active): the invite is over.
        const signedInBefore = await inviteAtProvider(app, ['editor']);
        await manager.recordLogin((await manager.findById(signedInBefore.userId))!);
        expectRefused(await new Person(app.url).signIn('oidc', signedInBefore.login), 'external_email_in_use');
        expect(await manager.getLogins({ id: signedInBefore.userId })).toEqual([]);

        // A disabled invitee: refused before anything is linked (disabling voided the module's link itself). Enabled
        // again by an admin, the user is an invitee again and the provider sign-in accepts the invite.
        const disabled = await inviteAtProvider(app, ['editor']);
        expect((await manager.setApproved((await manager.findById(disabled.userId))!, false)).succeeded).toBe(true);
        expectRefused(await new Person(app.url).signIn('oidc', disabled.login), 'not_allowed');
        await expectStillInvited(app, disabled, false);
        expect((await manager.setApproved((await manager.findById(disabled.userId))!, true)).succeeded).toBe(true);
        expectSignedIn(await new Person(app.url).signIn('oidc', disabled.login));
      } finally {
        await app.close();
      }
    });

    it('OWASP ASVS 4.0 2.2.1: an invitee locked by failed sign-ins on the unaccepted invite (anyone can cause them) is accepted by the provider sign-in with the invited, verified email, as through the invite link; the lock ends with it', async () => {
      const { app } = await takeOverApp();
      try {
        const manager = app.userManager;
        const invitee = await inviteAtProvider(app, ['editor']);
        // Wrong passwords against an invite nobody accepted: every attempt fails (there is no password) until locked.
        for (let i = 0; i < manager.options.lockout.maxFailedAccessAttempts; i++) await manager.accessFailed((await manager.findById(invitee.userId))!);
        expect(manager.isLockedOut((await manager.findById(invitee.userId))!)).toBe(true);
        const person = new Person(app.url);
        expectSignedIn(await person.signIn('oidc', invitee.login));
        expect((await person.app.get('/auth/me')).body).toMatchObject({ id: invitee.userId, state: 'active', logins: [{ provider: 'oidc' }] });
        const stored = (await manager.findById(invitee.userId))!;
        expect([stored.lockoutEnd, stored.accessFailedCount]).toEqual([null, 0]);
        expect(await manager.getTokenStore().isTokenLive(invitee.userId, 'invite', sha256(invitee.token), app.clock.now())).toBe(false);

        // Still locked after the acceptance (a user with a login, no longer an invitee): refused as any locked user.
        await manager.setLockoutEnd(stored, new Date(app.clock.now().getTime() + 3_600_000));
        expectRefused(await new Person(app.url).signIn('oidc', invitee.login), 'not_allowed');
        // A locked and disabled invitee stays refused, and nothing is written.
        const disabled = await inviteAtProvider(app, ['editor']);
        for (let i = 0; i < manager.options.lockout.maxFailedAccessAttempts; i++) await manager.accessFailed((await manager.findById(disabled.userId))!);
        expect((await manager.setApproved((await manager.findById(disabled.userId))!, false)).succeeded).toBe(true);
        expectRefused(await new Person(app.url).signIn('oidc', disabled.login), 'not_allowed');
        await expectStillInvited(app, disabled, false);
      } finally {
        await app.close();
      }
    });

    it('an invitee whose timed disable has passed is accepted by the provider sign-in (the disable is lifted, as by any sign-in)', async () => {
      const { app } = await takeOverApp();
      try {
        const invitee = await inviteAtProvider(app, ['editor']);
        const until = new Date(app.clock.now().getTime() + 3_600_000);
        expect((await app.userManager.setApproved((await app.userManager.findById(invitee.userId))!, false, { reason: 'not yet', until })).succeeded).toBe(true);
        expectRefused(await new Person(app.url).signIn('oidc', invitee.login), 'not_allowed');
        await expectStillInvited(app, invitee, false);
        app.clock.advance(2 * 3_600_000);
        const person = new Person(app.url);
        expectSignedIn(await person.signIn('oidc', invitee.login));
        expect((await person.app.get('/auth/me')).body).toMatchObject({ id: invitee.userId, state: 'active', logins: [{ provider: 'oidc' }] });
      } finally {
        await app.close();
      }
    });

    it('with auto-linking off the invitee is refused as any unknown account (no_linked_account)', async () => {
      const { app } = await takeOverApp({ enabled: false, defaultGroups: ['writer'] });
      try {
        const invitee = await inviteAtProvider(app, ['editor']);
        expectRefused(await new Person(app.url).signIn('oidc', invitee.login), 'no_linked_account');
        await expectStillInvited(app, invitee);
      } finally {
        await app.close();
      }
    });

    it.skipIf(dbKind() !== 'postgres')(
      'OWASP ASVS 4.0 1.11.3: linking the invitee, using up its invite and recording the sign-in are one transaction: held before the invite is voided, nobody sees a linked login next to a live invite',
      async () => {
        const { app } = await takeOverApp();
        const gate = () => {
          let resolve!: () => void;
          const promise = new Promise<void>((r) => (resolve = r));
          return { resolve, promise };
        };
        const reached = gate();
        const proceed = gate();
        const original = TypeOrmBackOfficeUserStore.prototype.voidTokens;
        let armed = false;
        const hold = vi.spyOn(TypeOrmBackOfficeUserStore.prototype, 'voidTokens').mockImplementation(async function (this: TypeOrmBackOfficeUserStore, userId, purpose, now) {
          if (armed && purpose === 'invite') {
            armed = false;
            reached.resolve();
            await proceed.promise;
          }
          return original.call(this, userId, purpose, now);
        });
        try {
          const invitee = await inviteAtProvider(app, ['editor']);
          armed = true;
          const signingIn = new Person(app.url).signIn('oidc', invitee.login);
          await reached.promise;
          // What another connection sees in between: the link and the invite must change together.
          const source = app.app.get(DataSource);
          const logins = await source.query(`SELECT count(*)::int AS n FROM backoffice_user_login WHERE user_id = $1`, [invitee.userId]);
          const inviteLive = await app.userManager.getTokenStore().isTokenLive(invitee.userId, 'invite', sha256(invitee.token), app.clock.now());
          proceed.resolve();
          expectSignedIn(await signingIn);
          expect({ linked: logins[0].n, inviteLive }).toEqual({ linked: 0, inviteLive: true });
          const stored = (await app.userManager.findById(invitee.userId))!;
          expect(stored.lastLoginAt).not.toBeNull();
          expect(await app.userManager.getTokenStore().isTokenLive(invitee.userId, 'invite', sha256(invitee.token), app.clock.now())).toBe(false);
        } finally {
          proceed.resolve();
          hold.mockRestore();
          await app.close();
        }
      },
    );

    /** While armed, holds each user-store transaction until a second one starts (or 2 s pass): two callbacks meet there. */
    const meeting = { armed: false, waiting: [] as Array<() => void> };
    class MeetingStore extends TypeOrmBackOfficeUserStore {
      override async transaction<T>(work: (store: TypeOrmBackOfficeUserStore) => Promise<T>): Promise<T> {
        if (meeting.armed) {
          await new Promise<void>((resolve) => {
            meeting.waiting.push(resolve);
            if (meeting.waiting.length >= 2) {
              meeting.armed = false;
              for (const go of meeting.waiting.splice(0)) go();
            } else setTimeout(resolve, 2_000);
          });
        }
        return super.transaction(work);
      }
    }

    it('two first sign-ins at once, with two provider accounts of the invited email, link exactly one', async () => {
      // A second provider with auto-linking, so the two accounts differ by provider as well as by key.
      const corp: BackOfficeExternalLoginProviderOptions = {
        name: 'corp',
        displayName: 'Corporate directory',
        issuer: idp.issuer,
        clientId: 'backoffice-b',
        clientSecret: SECRET_B,
        denyLocalLogin: true,
        autoLink: { enabled: true },
      };
      const { app, events } = await takeOverApp(undefined, [corp], { userStore: MeetingStore });
      try {
        for (const second of ['oidc', 'corp']) {
          const invitee = await inviteAtProvider(app, ['editor']);
          const twin = sub('twin');
          idp.accounts.set(twin, { ...idp.accounts.get(invitee.login) });
          const a = new Person(app.url);
          const b = new Person(app.url);
          const urls = [await a.toCallback('oidc', invitee.login), await b.toCallback(second, twin)];
          meeting.armed = true;
          const results = await Promise.all([a.deliver(urls[0]), b.deliver(urls[1])]);
          meeting.armed = false;
          meeting.waiting.length = 0;
          const won = results.filter((r) => r.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`) && !/Max-Age=0/.test(c)));
          expect(won, second).toHaveLength(1);
          const lost = results.find((r) => !won.includes(r))!;
          expect(lost.status).toBe(302);
          expect(['/backoffice?error=login_already_linked', '/backoffice?error=external_email_in_use']).toContain(lost.headers.get('location'));
          expect(await app.userManager.getLogins({ id: invitee.userId }), second).toHaveLength(1);
          expect(events.named(BackOfficeEvents.InviteAccepted, invitee.userId)).toHaveLength(1);
          expect(events.named(BackOfficeEvents.LoginLinked, invitee.userId)).toHaveLength(1);
          // The loser's account is linked to nobody; the winner's signs in again.
          const [winner, loser] = won[0] === results[0] ? [invitee.login, twin] : [twin, invitee.login];
          const winnerProvider = winner === invitee.login ? 'oidc' : second;
          expect(await app.userManager.findByLogin(winner === invitee.login ? second : 'oidc', loser)).toBeNull();
          expectSignedIn(await new Person(app.url).signIn(winnerProvider, winner));
        }
      } finally {
        await app.close();
      }
    });
  });
});
