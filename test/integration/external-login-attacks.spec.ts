import { EventEmitter2 } from '@nestjs/event-emitter';
import { DataSource } from 'typeorm';
import {
  BackOfficeEvents,
  BackOfficeInviteService,
  type BackOfficeExternalLoginProviderOptions,
  type SendEmailNotification,
} from '../../src/backoffice-identity/index.js';
import { CapturingLogger } from '../support/capturing-logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { expectRefused, expectSignedIn, waitFor } from '../support/external-login-results.js';
import { pendingSignInCookies } from '../support/pending-sign-in-cookies.js';
import { rawHttp, rawRequest } from '../support/raw-http.js';
import { createIdentityApp, httpPlatform, type IdentityApp } from '../support/identity-app.js';
import { ExternalLoginPerson as Person, TestOidcProvider, type TestOidcClient } from '../support/oidc-provider.js';

// Attacks on the OpenID Connect sign-in (contract section 6) against a real provider (oidc-provider in-process):
// forged and mis-addressed ID tokens, mixed-up states, hostile callback parameters, provider accounts that do not
// fit the store, and what a refusal leaves behind.

const SECRET_A = 'client-a-secret-0123456789abcdef';
const SECRET_B = 'client-b-secret-0123456789abcdef';

const callback = (port: number, name: string) => `http://127.0.0.1:${port}/backoffice/auth/external/${name}/callback`;

function clientsFor(port: number): TestOidcClient[] {
  return [
    { client_id: 'backoffice-a', client_secret: SECRET_A, redirect_uris: [callback(port, 'oidc')], post_logout_redirect_uris: [`http://127.0.0.1:${port}/backoffice/`] },
    { client_id: 'backoffice-b', client_secret: SECRET_B, redirect_uris: [callback(port, 'corp')], post_logout_redirect_uris: [`http://127.0.0.1:${port}/backoffice/`] },
  ];
}

function providersFor(issuer: string): BackOfficeExternalLoginProviderOptions[] {
  return [
    { name: 'oidc', displayName: 'Single sign-on', issuer, clientId: 'backoffice-a', clientSecret: SECRET_A, autoLink: { enabled: true, defaultGroups: ['editor'] } },
    {
      name: 'corp',
      displayName: 'Corporate directory',
      issuer,
      clientId: 'backoffice-b',
      clientSecret: SECRET_B,
      scopes: ['openid', 'email', 'profile', 'groups'],
      autoLink: { enabled: true, groupsClaim: 'groups', groupMapping: { 'bo-admins': 'admin', 'bo-editors': 'editor' }, groupsManagedByProvider: true },
    },
  ];
}

describe('External logins under attack (OpenID Connect, contract section 6)', () => {
  let db: TestDatabase;
  let idp: TestOidcProvider;
  let ctx: IdentityApp;
  let counter = 0;
  const logger = new CapturingLogger();
  const sub = (label: string) => `${label}-${++counter}-${Date.now()}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await TestOidcProvider.reservePort();
    idp = await TestOidcProvider.start(clientsFor(port));
    ctx = await createIdentityApp(db, {
      port,
      logger,
      identity: {
        publicUrl: `http://127.0.0.1:${port}`,
        session: { secureCookies: false },
        rateLimits: { enabled: false },
        externalLogins: providersFor(idp.issuer),
      },
    });
    await waitFor(async () => (await new HttpClient(ctx.url).get('/auth/external/providers')).body.every((p: { available: boolean }) => p.available));
  });
  afterEach(() => {
    idp.idTokenChange = undefined;
    idp.tokenResponseChange = undefined;
  });
  afterAll(async () => {
    await ctx?.close();
    await idp?.stop();
    await db?.drop();
  });

  function account(label: string, claims: Record<string, unknown> = {}, login = sub(label)): { login: string; email: string } {
    const email = `${label}-${++counter}-${Date.now()}@idp.example.com`;
    idp.accounts.set(login, { email, email_verified: true, name: `Person ${label}`, ...claims });
    return { login, email };
  }

  async function usersWithEmail(email: string): Promise<number> {
    const rows = await ctx.app.get(DataSource).query(`SELECT count(*)::int AS n FROM backoffice_user WHERE lower(email) = lower($1)`, [email]);
    return rows[0].n;
  }

  describe('ID tokens the client must refuse (OpenID Connect Core 3.1.3.7; ASVS 5.0 10.5.1)', () => {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const forged: Array<[string, TestOidcProvider['idTokenChange']]> = [
      ['another issuer', { kind: 'claims', claims: { iss: 'https://evil.example.com' } }],
      ['another audience', { kind: 'claims', claims: { aud: 'someone-else' } }],
      ['several audiences without azp', { kind: 'claims', claims: { aud: ['backoffice-a', 'someone-else'], azp: undefined } }],
      ['several audiences with another azp', { kind: 'claims', claims: { aud: ['backoffice-a', 'someone-else'], azp: 'someone-else' } }],
      // OpenID Connect Core 3.1.3.7 (5): an azp names the party the token was issued to; it must be this client, also with one audience.
      ['one audience and the azp of another client', { kind: 'claims', claims: { azp: 'backoffice-b' } }],
      ['no nonce', { kind: 'claims', claims: { nonce: undefined } }],
      ['expired', { kind: 'expired' }],
      ['alg none (unsigned)', { kind: 'alg', alg: 'none' }],
      ['HS256 signed with the client secret', { kind: 'alg', alg: 'HS256', secret: SECRET_A }],
      ['a flipped signature', { kind: 'signature' }],
      // OpenID Connect Core 3.1.3.7 (10): iat bounds how far from now a token may have been issued (the library checks only exp).
      ['issued an hour in the future (iat beyond the allowed clock skew)', { kind: 'claims', claims: { iat: nowSeconds + 3600, exp: nowSeconds + 7200 } }],
      ['issued a day ago, before any pending sign-in could start (iat), though not expired', { kind: 'claims', claims: { iat: nowSeconds - 86_400 } }],
      ['an authentication an hour in the future (auth_time beyond the allowed clock skew)', { kind: 'claims', claims: { auth_time: nowSeconds + 3600 } }],
      // RFC 8725 2.1 / 3.1: the key and algorithm come from the provider's discovery (jwks_uri), never from the token.
      ["HS256 keyed with the provider's public key (algorithm confusion)", { kind: 'algorithmConfusion' }],
      ["signed with a forger's key embedded in the header (jwk)", { kind: 'foreignKey', embed: 'jwk' }],
      ["signed with a forger's key named by URL in the header (jku)", { kind: 'foreignKey', embed: 'jku' }],
    ];
    it.each(forged)('%s: refused (external_login_failed), nobody created', async (_label, change) => {
      const person = account('forged');
      idp.idTokenChange = change;
      const p = new Person(ctx.url);
      const url = await p.toCallback('oidc', person.login);
      expectRefused(await p.deliver(url), 'external_login_failed');
      expect(await usersWithEmail(person.email)).toBe(0);
      expect(idp.forgerJwksRequests).toBe(0);
    });
  });

  it('ASVS 5.0 10.5.1: an ID token issued a little ahead of this server\'s clock (iat and auth_time 2 minutes in the future: within the allowed skew) still signs in', async () => {
    const person = account('skew');
    const ahead = Math.floor(Date.now() / 1000) + 120;
    idp.idTokenChange = { kind: 'claims', claims: { iat: ahead, auth_time: ahead } };
    expectSignedIn(await new Person(ctx.url).signIn('oidc', person.login));
  });

  describe('a provider that stops answering', () => {
    /** Takes `login` to the callback, then delivers it while `stall` holds (until `resume`): ?error=external_login_failed within 20 s. */
    async function expectCallbackTimesOut(login: string, stall: () => void, resume: () => void): Promise<void> {
      const p = new Person(ctx.url);
      const url = await p.toCallback('oidc', login);
      stall();
      try {
        const started = Date.now();
        expectRefused(await p.deliver(url), 'external_login_failed');
        expect(Date.now() - started).toBeLessThan(20_000);
      } finally {
        resume();
      }
    }

    it('a callback whose userinfo request gets no answer ends at ?error=external_login_failed within the provider timeout (10 s), nobody created', async () => {
      const person = account('hang-userinfo');
      await expectCallbackTimesOut(person.login, () => void (idp.hangPath = '/me'), () => void (idp.hangPath = undefined));
      expect(await usersWithEmail(person.email)).toBe(0);
    });

    it('a callback whose token request gets no answer ends at ?error=external_login_failed within the provider timeout (10 s), no hang', async () => {
      const person = account('hang');
      await expectCallbackTimesOut(person.login, () => void (idp.hang = true), () => void (idp.hang = false));
      // The provider answers again: the next sign-in works.
      expectSignedIn(await new Person(ctx.url).signIn('oidc', person.login));
    });
  });

  describe('token responses the client must not swallow (RFC 6749 5.1)', () => {
    it.each([
      ['with its Content-Length', false],
      ['streamed (chunked, no Content-Length)', true],
    ])('OWASP ASVS 5.0 15.2.2: a token response padded to 30 MB (valid otherwise), %s, is refused (external_login_failed) after reading at most 1 MiB of it; nobody created', async (_how, chunked) => {
      const person = account('huge');
      idp.tokenResponseChange = (issued) => ({ body: JSON.stringify({ ...issued, padding: 'x'.repeat(30 * 1024 * 1024) }), chunked });
      const before = logger.lines.length;
      expectRefused(await new Person(ctx.url).signIn('oidc', person.login), 'external_login_failed');
      expect(await usersWithEmail(person.email)).toBe(0);
      expect(logger.lines.slice(before).join('\n')).toMatch(/larger than 1 MiB/);
      // The same response at its real size signs in.
      idp.tokenResponseChange = undefined;
      expectSignedIn(await new Person(ctx.url).signIn('oidc', person.login));
    });

    const malformed: Array<[string, (issued: Record<string, unknown>) => { body: string; contentType?: string }]> = [
      ['an HTML page', () => ({ body: '<html><body>Service unavailable</body></html>', contentType: 'text/html' })],
      ['truncated JSON', (issued) => ({ body: JSON.stringify(issued).slice(0, 40) })],
      ['a JSON array', (issued) => ({ body: JSON.stringify([issued]) })],
      ['an id_token that is a number', (issued) => ({ body: JSON.stringify({ ...issued, id_token: 42 }) })],
      ['an id_token that is no JWT', (issued) => ({ body: JSON.stringify({ ...issued, id_token: 'not.a-jwt' }) })],
      ['no id_token (scope openid was asked)', (issued) => ({ body: JSON.stringify({ ...issued, id_token: undefined }) })],
      ['an unknown token_type', (issued) => ({ body: JSON.stringify({ ...issued, token_type: 'mac' }) })],
      ['no access_token', (issued) => ({ body: JSON.stringify({ ...issued, access_token: undefined }) })],
    ];
    it.each(malformed)('RFC 6749 5.1: a token response with %s is refused (external_login_failed, never a 5xx), nothing of it logged, nobody created', async (_label, change) => {
      const person = account('malformed');
      idp.tokenResponseChange = change;
      const before = logger.lines.length;
      expectRefused(await new Person(ctx.url).signIn('oidc', person.login), 'external_login_failed');
      expect(await usersWithEmail(person.email)).toBe(0);
      const logged = logger.lines.slice(before).join('\n');
      expect(logged).toMatch(/refused: authorization or token response refused/);
      expect(logged).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
      expect(logged).not.toMatch(/Unexpected external login failure/);
    });
  });

  describe('states', () => {
    it('an authorization response with another issuer (RFC 9207 iss, mix-up) is refused', async () => {
      const person = account('iss');
      const p = new Person(ctx.url);
      const url = new URL(await p.toCallback('oidc', person.login));
      expect(url.searchParams.get('iss')).toBe(idp.issuer);
      url.searchParams.set('iss', 'https://evil.example.com');
      expectRefused(await p.deliver(url.toString()), 'external_login_failed');
    });

    it('RFC 9207: an authorization response without iss, from a provider that says it sends one (authorization_response_iss_parameter_supported), is refused', async () => {
      const person = account('no-iss');
      const p = new Person(ctx.url);
      const url = new URL(await p.toCallback('oidc', person.login));
      expect(url.searchParams.get('iss')).toBe(idp.issuer);
      url.searchParams.delete('iss');
      expectRefused(await p.deliver(url.toString()), 'external_login_failed');
      expect(await usersWithEmail(person.email)).toBe(0);
    });

    it('a state started for one provider is refused at the callback of another (mix-up)', async () => {
      const person = account('mixup');
      const p = new Person(ctx.url);
      const url = new URL(await p.toCallback('oidc', person.login));
      url.pathname = url.pathname.replace('/oidc/', '/corp/');
      expectRefused(await p.deliver(url.toString()), 'external_login_failed');
      // The state was not used up by the wrong callback: the right one still completes.
      url.pathname = url.pathname.replace('/corp/', '/oidc/');
      expectSignedIn(await p.deliver(url.toString()));
    });

    it('OWASP ASVS 5.0 10.4.x: five callbacks at once with one state (a double-clicked or replayed redirect) sign in exactly once; the others end at ?error=external_login_failed without a session, and one user is created', async () => {
      const person = account('concurrent');
      const p = new Person(ctx.url);
      const callbackUrl = await p.toCallback('oidc', person.login);
      const results = await Promise.all(Array.from({ length: 5 }, () => p.deliver(callbackUrl)));
      const signedIn = results.filter((r) => r.headers.get('location') === '/backoffice');
      expect(signedIn).toHaveLength(1);
      expectSignedIn(signedIn[0]);
      for (const refused of results.filter((r) => r !== signedIn[0])) expectRefused(refused, 'external_login_failed');
      expect(await usersWithEmail(person.email)).toBe(1);
    });

    it('OWASP ASVS 5.0 10.4.x: two first sign-ins of one provider account at once (two tabs, each with its own state, callbacks together) both sign in as the same single user: one user, one login link', async () => {
      const person = account('two-tabs');
      const p = new Person(ctx.url);
      const first = await p.toCallback('oidc', person.login);
      const second = await p.toCallback('oidc', person.login);
      expect(new URL(first).searchParams.get('state')).not.toBe(new URL(second).searchParams.get('state'));
      const results = await Promise.all([p.deliver(first), p.deliver(second)]);
      for (const result of results) expectSignedIn(result);
      expect(await usersWithEmail(person.email)).toBe(1);
      const links = await ctx.app.get(DataSource).query(`SELECT user_id FROM backoffice_user_login WHERE provider = 'oidc' AND provider_key = $1`, [person.login]);
      expect(links).toHaveLength(1);
      // Each tab's session is the linked user's.
      for (const result of results) {
        const session = result.setCookies.find((c) => c.startsWith('backoffice_session='))!.split(';')[0];
        const me = await p.app.fresh().get('/auth/me', { headers: { cookie: session } });
        expect(me.status, me.text).toBe(200);
        expect(me.body.id ?? me.body.user?.id).toBe(links[0].user_id);
      }
    });

    it("the state cookie of another browser is refused (login CSRF): no session in the victim's browser", async () => {
      const person = account('swap');
      const attacker = new Person(ctx.url);
      const victim = new Person(ctx.url);
      await victim.challenge('oidc'); // the victim's own state cookie
      const url = await attacker.toCallback('oidc', person.login);
      expectRefused(await victim.deliver(url), 'external_login_failed');
      expect((await victim.app.get('/auth/me')).status).toBe(401);
    });

    it("ASVS 5.0 3.3.3 / 10.4.x: a state cookie sent twice (the attacker's, tossed from a sibling subdomain with a longer Path, first) is refused in either order (login CSRF): no session in the victim's browser", async () => {
      const person = account('tossed');
      const attacker = new Person(ctx.url);
      const victim = new Person(ctx.url);
      const url = new URL(await attacker.toCallback('oidc', person.login));
      await victim.challenge('oidc'); // the victim's own state cookie
      const { externalLogin } = pendingSignInCookies({ secureCookies: false });
      const [tossed, own] = [attacker.app.cookies.get(externalLogin)!, victim.app.cookies.get(externalLogin)!];
      expect(tossed).toMatch(/^[A-Za-z0-9_-]{43}$/);
      for (const cookie of [`${externalLogin}=${tossed}; ${externalLogin}=${own}`, `${externalLogin}=${own}; ${externalLogin}=${tossed}`]) {
        expectRefused(await victim.app.get(`${url.pathname}${url.search}`, { redirect: 'manual', headers: { cookie } }), 'external_login_failed');
      }
      expect(await usersWithEmail(person.email)).toBe(0);
      expect((await victim.app.get('/auth/me')).status).toBe(401);
    });
  });

  describe('callback request targets', () => {
    it.each([
      ['an empty host and an out-of-range port', 'http://:99999/backoffice'],
      ['credentials and an empty host', 'http://a:b@/backoffice'],
    ])('OWASP ASVS 4.0 7.4.1: an absolute-form callback target (RFC 9112 3.2.2) with %s, which Express routes by its path, completes the sign-in as the origin-form target does (302 to returnUrl, session set), never a 500 (Fastify: its own 400 before any route)', async (_label, origin) => {
      const person = account('absolute');
      const p = new Person(ctx.url);
      const callbackUrl = new URL(await p.toCallback('oidc', person.login));
      const target = `${origin}${callbackUrl.pathname.slice('/backoffice'.length)}${callbackUrl.search}`;
      const answer = await rawHttp(ctx.url, rawRequest('GET', target, { headers: [`Cookie: ${p.app.cookieHeader()}`] }));
      if (httpPlatform() === 'fastify') {
        // Fastify refuses such a target itself (FST_ERR_BAD_URL), before routing: the callback never ran.
        expect(answer.status, answer.body).toBe(400);
        expectSignedIn(await p.deliver(callbackUrl.toString()));
        return;
      }
      expect(answer.status, answer.body).toBe(302);
      expect(answer.headers.location?.[0]).toBe('/backoffice');
      expect((answer.headers['set-cookie'] ?? []).some((c) => /^backoffice_session=[^;]/.test(c))).toBe(true);
      expect(await usersWithEmail(person.email)).toBe(1);
      // The pending sign-in was used up: the provider's redirect, delivered again as usual, is a replay.
      expectRefused(await p.deliver(callbackUrl.toString()), 'external_login_failed');
    });

    it('OWASP ASVS 4.0 7.4.1: such a target with a forged state ends at ?error=external_login_failed (302), never a 500', async () => {
      const p = new Person(ctx.url);
      await p.challenge('oidc');
      const answer = await rawHttp(ctx.url, rawRequest('GET', `http://:99999/backoffice/auth/external/oidc/callback?code=x&state=${'A'.repeat(43)}`, { headers: [`Cookie: ${p.app.cookieHeader()}`] }));
      if (httpPlatform() === 'fastify') return expect(answer.status, answer.body).toBe(400);
      expect(answer.status, answer.body).toBe(302);
      expect(answer.headers.location?.[0]).toBe('/backoffice?error=external_login_failed');
    });
  });

  describe('error responses from the provider (RFC 6749 4.1.2.1)', () => {
    it('error=access_denied with a huge, scripted error_description: a redirect with our own code, nothing of it echoed or logged', async () => {
      const p = new Person(ctx.url);
      const challenge = await p.challenge('oidc');
      const state = new URL(challenge.headers.get('location')!).searchParams.get('state')!;
      const description = `<script>alert(document.cookie)</script>${'x'.repeat(6000)}`;
      const query = new URLSearchParams({ error: 'access_denied', error_description: description, state, iss: idp.issuer });
      const before = logger.lines.length;
      const result = await p.app.get(`/auth/external/oidc/callback?${query}`, { redirect: 'manual' });
      expectRefused(result, 'external_login_failed');
      const page = await p.app.get(result.headers.get('location')!);
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('<script>alert');
      expect(page.text).not.toContain('xxxxxxxxxx');
      expect(logger.lines.slice(before).join('\n')).not.toContain('<script>');
    });
  });

  /** An invite the host took over (`handleEmail()`: nothing sent), to be accepted by a provider sign-in with that email. */
  async function takenOverInvite(email: string): Promise<string> {
    const emitter = ctx.app.get(EventEmitter2);
    const listener = (n: SendEmailNotification) => n.handleEmail();
    emitter.on(BackOfficeEvents.SendEmail, listener);
    try {
      const invited = await ctx.app.get(BackOfficeInviteService).invite({ email, name: 'Invitee', groups: ['editor'] }, null);
      expect(invited.succeeded).toBe(true);
      return invited.value!.user.id;
    } finally {
      emitter.off(BackOfficeEvents.SendEmail, listener);
    }
  }

  describe('email_verified belongs to the email it came with', () => {
    it('an ID token that verifies one address does not verify the other address userinfo answers (no email_verified there): external_email_unverified, nobody created', async () => {
      const login = sub('split');
      const unverified = `split-${counter}-${Date.now()}@corp.example.com`;
      idp.accounts.set(login, { email: unverified, name: 'Split claims' });
      idp.idTokenChange = { kind: 'claims', claims: { email: `verified-${counter}@idp.example.com`, email_verified: true } };
      expectRefused(await new Person(ctx.url).signIn('oidc', login), 'external_email_unverified');
      expect(await usersWithEmail(unverified)).toBe(0);
      // The same pair from one source (userinfo verifies its own address) signs in.
      idp.accounts.set(login, { email: unverified, email_verified: true, name: 'Split claims' });
      expectSignedIn(await new Person(ctx.url).signIn('oidc', login));
      expect(await usersWithEmail(unverified)).toBe(1);
    });
  });

  describe('invites taken over through the provider (auto-link by verified email)', () => {
    it('a verified email that only matches the invitee\'s after Unicode compatibility folding (NFKC) is another mailbox: never linked to the invitee (external_email_in_use)', async () => {
      const local = `finance-${++counter}-${Date.now()}`;
      const inviteeId = await takenOverInvite(`${local}@corp.example.com`);
      // U+FB01 LATIN SMALL LIGATURE FI, fullwidth letters, a trailing space: the lookup folds them into the invitee's address.
      for (const lookalike of [`\ufb01${local.slice(2)}@corp.example.com`, `\uff46\uff49${local.slice(2)}@corp.example.com`, `${local}@corp.example.com `]) {
        const login = sub('lookalike');
        idp.accounts.set(login, { email: lookalike, email_verified: true, name: 'Someone else' });
        const person = new Person(ctx.url);
        expectRefused(await person.signIn('oidc', login), 'external_email_in_use');
        const invitee = (await ctx.userManager.findById(inviteeId))!;
        expect(invitee.lastLoginAt).toBeNull();
        expect(await ctx.userManager.getLogins(invitee)).toEqual([]);
      }
      // The invitee's own address (any letter case) still accepts the invite.
      const own = sub('own');
      idp.accounts.set(own, { email: `${local.toUpperCase()}@CORP.example.com`, email_verified: true });
      const person = new Person(ctx.url);
      expectSignedIn(await person.signIn('oidc', own));
      expect((await person.app.get('/auth/me')).body).toMatchObject({ id: inviteeId, state: 'active' });
    });
  });

  describe('unlinking', () => {
    it('a login of a provider no longer configured is no way in: unlinking the last configured login of a user without a password is 409 last_login_method', async () => {
      const person = account('stale');
      const p = new Person(ctx.url);
      expectSignedIn(await p.signIn('oidc', person.login));
      const me = await p.app.get('/auth/me');
      const user = (await ctx.userManager.findById(me.body.id))!;
      expect(ctx.userManager.hasPassword(user)).toBe(false);
      // A provider the app once had (removed from externalLogins since): its login stays in the store.
      // Linked as a host does from its own route: a link renews the security stamp, so the session that asked is kept.
      const sessionId = (await p.app.get('/auth/sessions')).body.find((s: { current: boolean }) => s.current).id as string;
      const retired = { provider: 'retired', providerKey: sub('retired'), displayName: 'Retired directory' };
      expect((await ctx.signInManager.keepSignedInThrough(sessionId, () => ctx.userManager.addLogin(user, retired))).succeeded).toBe(true);
      await ctx.signInManager.refreshSignIn(user, sessionId);
      const last = await p.app.delete('/auth/external/logins/oidc');
      expect(last.status, last.text).toBe(409);
      expect(last.body.code).toBe('last_login_method');
      expect((await ctx.userManager.getLogins(user)).map((l) => l.provider).sort()).toEqual(['oidc', 'retired']);
      // The retired login itself may go: it was no way in.
      expect((await p.app.delete('/auth/external/logins/retired')).status).toBe(204);
      expect((await ctx.userManager.getLogins(user)).map((l) => l.provider)).toEqual(['oidc']);
    });
  });

  describe('provider accounts that do not fit', () => {
    it('a subject longer than the store keeps (OpenID Connect caps it at 255 ASCII characters) is refused before anybody is created', async () => {
      const login = `long-${'s'.repeat(600)}`;
      const person = account('long-sub', {}, login);
      const before = logger.lines.length;
      const result = await new Person(ctx.url).signIn('oidc', person.login);
      expectRefused(result, 'external_login_failed');
      // Nothing left behind: the email is still free, so the same person with a sane subject signs in.
      expect(await usersWithEmail(person.email)).toBe(0);
      expect(logger.lines.slice(before).some((l) => /Unexpected external login failure/.test(l))).toBe(false);
      const fixed = sub('short');
      idp.accounts.set(fixed, idp.accounts.get(login)!);
      expectSignedIn(await new Person(ctx.url).signIn('oidc', fixed));
    });

    it('a provider that changes the subject of a known email is never linked to the existing user (external_email_in_use)', async () => {
      const person = account('resub');
      expectSignedIn(await new Person(ctx.url).signIn('oidc', person.login));
      const other = sub('resub-new');
      idp.accounts.set(other, idp.accounts.get(person.login)!);
      expectRefused(await new Person(ctx.url).signIn('oidc', other), 'external_email_in_use');
    });
  });

  describe('a locked-out user', () => {
    it('OWASP ASVS 5.0 6.3.4: a locked-out user is refused a step-up or a link through the provider (?error=not_allowed, no new session token, nothing linked), as by a password or passkey (423) and as an external sign-in is', async () => {
      const person = account('locked', { groups: [] });
      const p = new Person(ctx.url);
      expectSignedIn(await p.signIn('oidc', person.login));
      const user = (await ctx.userManager.findByEmail(person.email))!;
      expect((await ctx.userManager.setLockoutEnd(user, new Date(ctx.clock.now().getTime() + 3_600_000))).succeeded).toBe(true);
      expectRefused(await new Person(ctx.url).signIn('oidc', person.login), 'not_allowed');

      const stepUp = await p.app.post('/auth/external/oidc/reauthenticate', {});
      expect(stepUp.status, stepUp.text).toBe(200);
      const refused = await p.deliver(await p.idp.authorize(stepUp.body.redirectUrl, person.login));
      expect(refused.status).toBe(302);
      expect(refused.headers.get('location')).toBe('/backoffice/account?error=not_allowed');
      expect(refused.setCookies.some((c) => c.startsWith('backoffice_session='))).toBe(false);

      const link = await p.app.post('/auth/external/corp/link', {});
      expect(link.status, link.text).toBe(200);
      const notLinked = await p.deliver(await p.idp.authorize(link.body.redirectUrl, person.login));
      expect(notLinked.headers.get('location')).toBe('/backoffice/account?error=not_allowed');
      expect(notLinked.setCookies.some((c) => c.startsWith('backoffice_session='))).toBe(false);
      expect((await ctx.userManager.getLogins(user)).map((l) => l.provider)).toEqual(['oidc']);
    });
  });
});
