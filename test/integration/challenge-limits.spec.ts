import { createHash, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER, type BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { ipFromTestHeader, uniqueIpv4 } from '../support/fixed-client-ip.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { waitForExternalProviders } from '../support/external-login-app.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { ExternalLoginPerson, TestOidcProvider } from '../support/oidc-provider.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';

const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';
const SECRET = 'client-limits-secret-0123456789ab';

const from = (ip: string) => ({ headers: { 'x-test-ip': ip } });

/**
 * The signed-in routes that store a challenge (a WebAuthn challenge, an OpenID Connect state) until it expires: a
 * stolen or idle session cookie must not be able to fill the table (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1 anti-automation).
 * Each is limited per IP (`rateLimits.challengePerIp`), and a user keeps at most 5 live passkey challenges per ceremony
 * and 5 live OpenID Connect states (link, step-up) per provider (a new one deletes the older ones past that).
 */
describe('stored challenges: per-IP limits, a cap per user', () => {
  let db: TestDatabase;
  let idp: TestOidcProvider;
  let ctx: IdentityApp;
  let newUser: ReturnType<typeof userFactory>;

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await TestOidcProvider.reservePort();
    idp = await TestOidcProvider.start([
      { client_id: 'backoffice-limits', client_secret: SECRET, redirect_uris: [`http://127.0.0.1:${port}/backoffice/auth/external/oidc/callback`] },
    ]);
    ctx = await createIdentityApp(db, {
      port,
      identity: {
        ...ipFromTestHeader,
        publicUrl: `http://127.0.0.1:${port}`,
        session: { secureCookies: false },
        passkeys: { rpId: RP_ID, rpName: 'Acme back office', origins: [ORIGIN] },
        externalLogins: [{ name: 'oidc', displayName: 'Single sign-on', issuer: idp.issuer, clientId: 'backoffice-limits', clientSecret: SECRET }],
        lockout: { maxFailedAccessAttempts: 1000 },
      },
    });
    await waitForExternalProviders(ctx.url);
    newUser = userFactory(() => ctx, 'chlim');
  });
  afterAll(async () => {
    await ctx?.close();
    await idp?.stop();
    await db?.drop();
  });

  async function signedIn(user: BackOfficeUser, ip: string): Promise<HttpClient> {
    const http = new HttpClient(ctx.url);
    expect((await http.request('POST', '/auth/login', { body: { username: user.email, password: TEST_PASSWORD }, ...from(ip) })).body.status).toBe('success');
    return http;
  }

  async function withPasskey(ip: string) {
    const user = await newUser();
    const http = await signedIn(user, ip);
    const authenticator = new SoftwareAuthenticator(ORIGIN, RP_ID);
    const options = await http.request('POST', '/auth/passkeys/options', { body: {}, ...from(uniqueIpv4()) });
    expect(options.status, options.text).toBe(200);
    const created = await http.request('POST', '/auth/passkeys', { body: { name: 'Laptop', credential: authenticator.register(options.body) }, ...from(ip) });
    expect(created.status, created.text).toBe(201);
    return { user, http, authenticator };
  }

  function expectLimited(result: HttpResult) {
    expectClientError(result, 429);
    expect(result.body).toMatchObject({ statusCode: 429, code: 'too_many_requests' });
    expect(Number(result.headers.get('retry-after'))).toBeGreaterThan(0);
  }

  const routes: Array<{ route: string; setUp: (ip: string) => Promise<HttpClient> }> = [
    { route: '/auth/reauthenticate/passkey/options', setUp: async (ip) => (await withPasskey(ip)).http },
    { route: '/auth/passkeys/options', setUp: async (ip) => signedIn(await newUser(), ip) },
    {
      route: '/auth/external/oidc/reauthenticate',
      setUp: async (ip) => {
        const user = await newUser();
        expect((await ctx.userManager.addLogin(user, { provider: 'oidc', providerKey: `sub-${randomBytes(6).toString('hex')}`, displayName: 'Single sign-on' })).succeeded).toBe(true);
        return signedIn(user, ip);
      },
    },
    { route: '/auth/external/oidc/link', setUp: async (ip) => signedIn(await newUser(), ip) },
  ];

  for (const { route, setUp } of routes) {
    it(`OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1: POST ${route} stores a challenge: 30 a minute per IP by default (rateLimits.challengePerIp), then 429 too_many_requests with Retry-After; another IP is not limited`, async () => {
      const ip = uniqueIpv4();
      const http = await setUp(ip);
      const statuses: number[] = [];
      for (let i = 0; i < 31; i++) statuses.push((await http.request('POST', route, { body: {}, ...from(ip) })).status);
      expect(statuses.slice(0, 30)).toEqual(Array(30).fill(200));
      expectLimited(await http.request('POST', route, { body: {}, ...from(ip) }));
      expect((await http.request('POST', route, { body: {}, ...from(uniqueIpv4()) })).status).toBe(200);
    });
  }

  const liveChallenges = async (userId: string, purpose: string): Promise<number> =>
    Number(
      (
        await ctx.app
          .get(DataSource)
          .query(`SELECT count(*) AS n FROM backoffice_passkey_challenge WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`, [userId, purpose, ctx.clock.now()])
      )[0].n,
    );

  it('OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1: a user keeps at most 5 live passkey step-up challenges, also under 12 concurrent requests; the newest works, an older one past the cap is gone', async () => {
    const ip = uniqueIpv4();
    const { user, http, authenticator } = await withPasskey(ip);
    const issued = await Promise.all(Array.from({ length: 12 }, () => http.request('POST', '/auth/reauthenticate/passkey/options', { body: {}, ...from(uniqueIpv4()) })));
    expect(issued.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(await liveChallenges(user.id, 'reauthentication')).toBeLessThanOrEqual(5);

    const sequential: HttpResult[] = [];
    for (let i = 0; i < 6; i++) sequential.push(await http.request('POST', '/auth/reauthenticate/passkey/options', { body: {}, ...from(uniqueIpv4()) }));
    expect(await liveChallenges(user.id, 'reauthentication')).toBe(5);
    const stale = await http.request('POST', '/auth/reauthenticate/passkey', { body: { credential: authenticator.assert(sequential[0].body) }, ...from(uniqueIpv4()) });
    expect([stale.status, stale.body.code]).toEqual([401, 'invalid_passkey']);
    const newest = await http.request('POST', '/auth/reauthenticate/passkey', { body: { credential: authenticator.assert(sequential[5].body) }, ...from(uniqueIpv4()) });
    expect(newest.status, newest.text).toBe(200);
  });

  it('OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1: registration challenges are capped per user as well (their own count: step-up challenges are not touched)', async () => {
    const ip = uniqueIpv4();
    const { user, http } = await withPasskey(ip);
    await http.request('POST', '/auth/reauthenticate/passkey/options', { body: {}, ...from(uniqueIpv4()) });
    await Promise.all(Array.from({ length: 9 }, () => http.request('POST', '/auth/passkeys/options', { body: {}, ...from(uniqueIpv4()) })));
    expect(await liveChallenges(user.id, 'registration')).toBeLessThanOrEqual(5);
    expect(await liveChallenges(user.id, 'reauthentication')).toBe(1);
  });

  it('OWASP ASVS 5.0 2.4.1 / 4.0 11.1.4: second-factor passkey challenges are not capped per user, so whoever holds the password only cannot void the user\'s ceremony with more options calls; the route stays limited per IP (rateLimits.loginPerIp)', async () => {
    const { user, authenticator } = await withPasskey(uniqueIpv4());
    await ctx.userManager.setTwoFactorEnabled(user, true);
    const pendingLogin = async (ip: string): Promise<HttpClient> => {
      const http = new HttpClient(ctx.url);
      const login = await http.request('POST', '/auth/login', { body: { username: user.email, password: TEST_PASSWORD }, ...from(ip) });
      expect(login.body.status, login.text).toBe('requiresTwoFactor');
      return http;
    };
    const own = await pendingLogin(uniqueIpv4());
    const options = await own.request('POST', '/auth/2fa/passkey/options', { body: {}, ...from(uniqueIpv4()) });
    expect(options.status, options.text).toBe(200);

    // The password alone (a pending sign-in of its own): six options calls while the user's ceremony is under way.
    const attackerIp = uniqueIpv4();
    const attacker = await pendingLogin(attackerIp);
    for (let i = 0; i < 6; i++) expect((await attacker.request('POST', '/auth/2fa/passkey/options', { body: {}, ...from(attackerIp) })).status).toBe(200);

    const done = await own.request('POST', '/auth/2fa/passkey', { body: { credential: authenticator.assert(options.body) }, ...from(uniqueIpv4()) });
    expect(done.status, done.text).toBe(200);
    expect(done.body).toMatchObject({ status: 'success', user: { id: user.id } });

    // Bounded per IP instead: rateLimits.loginPerIp (100 a minute by default) options calls, then 429.
    for (let i = 6; i < 100; i++) expect((await attacker.request('POST', '/auth/2fa/passkey/options', { body: {}, ...from(attackerIp) })).status).toBe(200);
    expectLimited(await attacker.request('POST', '/auth/2fa/passkey/options', { body: {}, ...from(attackerIp) }));
  });

  it('OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1: a pending sign-in keeps one live second-factor passkey challenge: its next options call replaces it (20 calls leave 1), and its newest one completes the sign-in', async () => {
    const { user, authenticator } = await withPasskey(uniqueIpv4());
    await ctx.userManager.setTwoFactorEnabled(user, true);
    const ip = uniqueIpv4();
    const http = new HttpClient(ctx.url);
    expect((await http.request('POST', '/auth/login', { body: { username: user.email, password: TEST_PASSWORD }, ...from(ip) })).body.status).toBe('requiresTwoFactor');
    const issued: HttpResult[] = [];
    for (let i = 0; i < 20; i++) issued.push(await http.request('POST', '/auth/2fa/passkey/options', { body: {}, ...from(ip) }));
    expect(issued.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(await liveChallenges(user.id, 'second_factor'), 'live second-factor challenges of one pending sign-in after 20 options calls').toBe(1);
    const done = await http.request('POST', '/auth/2fa/passkey', { body: { credential: authenticator.assert(issued[19].body) }, ...from(ip) });
    expect(done.status, done.text).toBe(200);
  });

  it('OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1: a user keeps at most BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER (5) live OpenID Connect states of a provider, also under 12 concurrent POST /auth/external/oidc/link; the oldest one\'s callback is then refused as an unknown state, the newest links', async () => {
    const since = ctx.clock.now();
    const liveStates = async (): Promise<number> =>
      Number(
        (
          await ctx.app
            .get(DataSource)
            .query(`SELECT count(*) AS n FROM backoffice_external_login_state WHERE provider = 'oidc' AND created_at >= $1 AND used_at IS NULL AND expires_at > $2`, [
              since,
              ctx.clock.now(),
            ])
        )[0].n,
      );
    const stored = async (redirectUrl: string): Promise<number> => {
      const state = new URL(redirectUrl).searchParams.get('state')!;
      const stateHash = createHash('sha256').update(state).digest('hex');
      return Number((await ctx.app.get(DataSource).query(`SELECT count(*) AS n FROM backoffice_external_login_state WHERE state_hash = $1`, [stateHash]))[0].n);
    };
    const ip = uniqueIpv4();
    const user = await newUser();
    const login = `chlim-link-${randomBytes(6).toString('hex')}`;
    idp.accounts.set(login, { email: `${login}@example.com`, email_verified: true });
    const person = new ExternalLoginPerson(ctx.url);
    expect((await person.app.request('POST', '/auth/login', { body: { username: user.email, password: TEST_PASSWORD }, ...from(ip) })).body.status).toBe('success');
    const start = () => person.app.request('POST', '/auth/external/oidc/link', { body: {}, ...from(ip) });

    // The first sets the browser cookie the others send again: every state below is of this one browser.
    const oldest = await start();
    expect(oldest.status, oldest.text).toBe(200);
    const raced = await Promise.all(Array.from({ length: 12 }, start));
    expect(raced.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(await liveStates()).toBeLessThanOrEqual(BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER);
    expect(await stored(oldest.body.redirectUrl)).toBe(0);

    const refused = await person.deliver(await person.idp.authorize(oldest.body.redirectUrl, login));
    // An unknown state: nothing tells it was a link, so the refusal lands on the sign-in page, as a forged state's does.
    expect([refused.status, refused.headers.get('location')]).toEqual([302, '/backoffice?error=external_login_failed']);
    expect(await ctx.userManager.getLogins(user)).toEqual([]);

    const newest = await start();
    expect(newest.status, newest.text).toBe(200);
    expect(await liveStates()).toBe(BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER);
    const linked = await person.deliver(await person.idp.authorize(newest.body.redirectUrl, login));
    expect([linked.status, linked.headers.get('location')]).toEqual([302, '/backoffice/account']);
    expect((await ctx.userManager.getLogins(user)).map((l) => l.provider)).toEqual(['oidc']);
  });
});
