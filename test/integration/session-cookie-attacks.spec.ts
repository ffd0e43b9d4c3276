import { Controller, Delete, Get, Header, HttpCode, Patch, Post, Put } from '@nestjs/common';
import { request as httpRequest } from 'node:http';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { BackOfficeAuthorize } from '../../src/backoffice-identity/index.js';
import { CapturingLogger } from '../support/capturing-logger.js';
import { pendingSignInCookies } from '../support/pending-sign-in-cookies.js';

const password = TEST_PASSWORD;
const MINUTE = 60_000;

/** A host controller with every state-changing method behind the module's guard. */
@Controller('host-state')
class HostStateController {
  @Get()
  @BackOfficeAuthorize()
  read() {
    return { ok: true };
  }

  @Get('cacheable')
  @Header('Cache-Control', 'private, max-age=60')
  @BackOfficeAuthorize()
  cacheable() {
    return { ok: true };
  }

  @Post()
  @HttpCode(200)
  @BackOfficeAuthorize()
  create() {
    return { ok: true };
  }

  @Put()
  @BackOfficeAuthorize()
  replace() {
    return { ok: true };
  }

  @Patch()
  @BackOfficeAuthorize()
  change() {
    return { ok: true };
  }

  @Delete()
  @BackOfficeAuthorize()
  remove() {
    return { ok: true };
  }
}

/** The attributes of a `Set-Cookie` value, by lower-cased name (flags map to ''). */
function cookieAttributes(setCookie: string): { name: string; value: string; attrs: Map<string, string> } {
  const [pair, ...rest] = setCookie.split(';');
  const eq = pair.indexOf('=');
  const attrs = new Map(rest.map((a) => a.trim()).map((a) => [a.split('=')[0].toLowerCase(), a.includes('=') ? a.slice(a.indexOf('=') + 1) : '']));
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1), attrs };
}

/** The session's idle deadline as `GET /auth/me` tells it, read with the peek header (which slides nothing). */
async function idleDeadlineOf(http: HttpClient): Promise<string> {
  const me = await http.get('/auth/me', { headers: { 'x-backoffice-session-peek': '1' } });
  expect(me.status).toBe(200);
  return me.body.session.idleExpiresAt as string;
}

describe('Session cookie, XSRF double submit and session lifetime under attack', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let counter = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, controllers: [HostStateController] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function signedIn() {
    const user = (await ctx.userManager.createUser({ email: `cookie${++counter}@example.com`, name: 'Cookie', password })).value!;
    const http = new HttpClient(ctx.url);
    const login = await http.login(user.email, password);
    expect(login.status).toBe(200);
    return { user, http, login, token: http.cookies.get('backoffice_session')!, xsrf: http.cookies.get('XSRF-TOKEN')! };
  }

  it('ASVS 5.0 3.3.1 / 3.3.2 / 3.3.4: the session cookie is HttpOnly, Secure, SameSite=Strict, Path=/ and lives no longer than the absolute timeout; the XSRF cookie differs only by being readable', async () => {
    const { login } = await signedIn();
    const [session, xsrf] = ['backoffice_session', 'XSRF-TOKEN'].map((name) => login.setCookies.map(cookieAttributes).find((c) => c.name === name)!);
    for (const cookie of [session, xsrf]) {
      expect(cookie.attrs.get('secure'), cookie.name).toBe('');
      expect(cookie.attrs.get('samesite'), cookie.name).toBe('Strict');
      expect(cookie.attrs.get('path'), cookie.name).toBe('/');
      expect(cookie.attrs.has('domain'), cookie.name).toBe(false);
      expect(cookie.attrs.get('max-age'), cookie.name).toBe(String(12 * 3600));
    }
    expect(session.attrs.has('httponly')).toBe(true);
    expect(xsrf.attrs.has('httponly')).toBe(false);
    expect(session.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(xsrf.value).not.toBe(session.value);
  });

  it('ASVS 5.0 7.2.4: a sign-in never adopts a session token the browser already sent (planted by an attacker); the planted one authenticates nothing', async () => {
    const planted = 'A'.repeat(43);
    const user = (await ctx.userManager.createUser({ email: `cookie${++counter}@example.com`, name: 'Cookie', password })).value!;
    const http = new HttpClient(ctx.url);
    http.cookies.set('backoffice_session', planted);
    expect((await http.login(user.email, password)).status).toBe(200);
    expect(http.cookies.get('backoffice_session')).not.toBe(planted);
    expect((await http.fresh().get('/auth/me', { headers: { cookie: `backoffice_session=${planted}` } })).status).toBe(401);
  });

  it('ASVS 5.0 3.3.3 / 7.2.4: a session cookie sent twice (one tossed from a sibling subdomain, whose longer Path puts it first) authenticates nobody, in either order, so an attacker cannot fixate the victim in the attacker\'s session', async () => {
    const victim = await signedIn();
    const attacker = await signedIn();
    for (const [first, second] of [[attacker, victim], [victim, attacker]]) {
      const cookie = `backoffice_session=${first.token}; XSRF-TOKEN=${first.xsrf}; backoffice_session=${second.token}`;
      const me = await victim.http.fresh().get('/auth/me', { headers: { cookie } });
      expect(me.status, JSON.stringify(me.body)).toBe(401);
      expect(me.body.code).toBe('unauthenticated');
      const post = await victim.http.fresh().request('POST', `${ctx.url}/host-state`, { headers: { cookie, 'x-xsrf-token': first.xsrf } });
      expect(post.status).toBe(401);
    }
    // Spacing and quoting do not make two of one name look like two names.
    const spaced = `backoffice_session=${victim.token};backoffice_session ="${attacker.token}"`;
    expect((await victim.http.fresh().get('/auth/me', { headers: { cookie: spaced } })).status).toBe(401);
    // One session cookie among other cookies still works.
    const single = await victim.http.fresh().get('/auth/me', { headers: { cookie: `theme=dark; backoffice_session=${victim.token}; other=1` } });
    expect(single.status).toBe(200);
    expect(single.body.email).toBe(victim.user.email);
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])('ASVS 5.0 3.5.1: %s on a host route guarded by @BackOfficeAuthorize() needs the XSRF token of this very session; method-override headers do not make it safe', async (method) => {
    const victim = await signedIn();
    const attacker = await signedIn();
    const url = `${ctx.url}/host-state`;
    const refused = [
      await victim.http.request(method, url, { xsrf: false }),
      await victim.http.request(method, url, { xsrf: false, headers: { 'x-http-method-override': 'GET', 'x-http-method': 'GET', 'x-method-override': 'GET' } }),
      // The attacker's own XSRF token, as header and cookie (double submit with a value the attacker knows).
      await victim.http.request(method, url, { headers: { cookie: `backoffice_session=${victim.token}; XSRF-TOKEN=${attacker.xsrf}`, 'x-xsrf-token': attacker.xsrf } }),
      // The right header, but the cookie half missing.
      await victim.http.request(method, url, { headers: { cookie: `backoffice_session=${victim.token}`, 'x-xsrf-token': victim.xsrf } }),
    ];
    for (const answer of refused) {
      expect(answer.status, answer.text).toBe(403);
      expect(answer.body.code).toBe('xsrf_failed');
    }
    expect((await victim.http.request(method, url)).status).toBe(200);
  });

  it('ASVS 5.0 7.4.1: after logout the replayed cookies authenticate nothing, also on a safe request', async () => {
    const { http, token, xsrf } = await signedIn();
    expect((await http.post('/auth/logout')).status).toBe(200);
    const replay = http.fresh();
    const headers = { cookie: `backoffice_session=${token}; XSRF-TOKEN=${xsrf}`, 'x-xsrf-token': xsrf };
    expect((await replay.get('/auth/me', { headers })).status).toBe(401);
    expect((await replay.post('/auth/logout', undefined, { headers })).status).toBe(401);
  });

  it('ASVS 5.0 7.3.1: the peek header checks a session without sliding its idle deadline, and a state-changing request cannot peek', async () => {
    const { http } = await signedIn();
    ctx.clock.advance(15 * MINUTE);
    expect((await http.get('/auth/me', { headers: { 'x-backoffice-session-peek': '1' } })).status).toBe(200);
    ctx.clock.advance(6 * MINUTE); // 21 minutes since the last real use: past the 20-minute idle timeout
    expect((await http.get('/auth/me', { headers: { 'x-backoffice-session-peek': '1' } })).status).toBe(401);
    expect((await http.get('/auth/me')).status).toBe(401);

    const other = await signedIn();
    ctx.clock.advance(15 * MINUTE);
    expect((await other.http.request('POST', `${ctx.url}/host-state`, { headers: { 'x-backoffice-session-peek': '1' } })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the last-seen write runs after the answer
    ctx.clock.advance(15 * MINUTE); // 15 minutes after the POST: it slid the deadline
    expect((await other.http.get('/auth/me')).status).toBe(200);
  });

  it('ASVS 5.0 3.5.1 / 7.3.1: a state-changing request refused for its XSRF token (forged from a sibling subdomain) does not slide the idle deadline, on a host route or the module\'s own', async () => {
    const { http, token } = await signedIn();
    const attacker = await signedIn();
    const peek = () => idleDeadlineOf(http);
    ctx.clock.advance(15 * MINUTE);
    const before = await peek();
    const forged = [
      await http.request('POST', `${ctx.url}/host-state`, { xsrf: false }),
      await http.request('DELETE', `${ctx.url}/host-state`, { headers: { cookie: `backoffice_session=${token}; XSRF-TOKEN=${attacker.xsrf}`, 'x-xsrf-token': attacker.xsrf } }),
      await http.post('/auth/logout', undefined, { xsrf: false }),
    ];
    for (const answer of forged) expect(answer.body.code, answer.text).toBe('xsrf_failed');
    await new Promise((resolve) => setTimeout(resolve, 100)); // a last-seen write would run after the answer
    expect(await peek()).toBe(before);
    ctx.clock.advance(6 * MINUTE); // 21 minutes since the last real use: past the 20-minute idle timeout
    expect((await http.get('/auth/me')).status).toBe(401);
  });

  it('ASVS 5.0 7.3.1: a safe request a sibling subdomain or another site made (Sec-Fetch-Site same-site / cross-site, e.g. an <img> of /auth/me) is answered but does not slide the idle deadline', async () => {
    const { http } = await signedIn();
    const peek = () => idleDeadlineOf(http);
    ctx.clock.advance(15 * MINUTE);
    const before = await peek();
    for (const site of ['same-site', 'cross-site', 'Cross-Site']) {
      const me = await http.get('/auth/me', { headers: { 'sec-fetch-site': site } });
      expect(me.status, site).toBe(200);
      expect(me.body.session.idleExpiresAt, site).toBe(before);
      expect((await http.request('GET', `${ctx.url}/host-state`, { headers: { 'sec-fetch-site': site } })).status, site).toBe(200);
    }
    await new Promise((resolve) => setTimeout(resolve, 100)); // a last-seen write would run after the answer
    expect(await peek()).toBe(before);
    ctx.clock.advance(6 * MINUTE); // 21 minutes since the last own use: past the 20-minute idle timeout
    expect((await http.get('/auth/me')).status).toBe(401);
  });

  it.each([['absent (a non-browser client, an old browser)', undefined], ['same-origin', 'same-origin'], ['none (a typed URL, a bookmark)', 'none']])('ASVS 5.0 7.3.1: a safe request with Sec-Fetch-Site %s slides the idle deadline, on the module\'s route and a host route', async (_label, site) => {
    const headers: Record<string, string> = site ? { 'sec-fetch-site': site } : {};
    for (const path of ['/auth/me', '/host-state']) {
      const { http } = await signedIn();
      ctx.clock.advance(15 * MINUTE);
      const url = path === '/auth/me' ? `${ctx.url}/backoffice/auth/me` : `${ctx.url}${path}`;
      expect((await http.request('GET', url, { headers })).status, path).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 100)); // the last-seen write runs after the answer
      ctx.clock.advance(15 * MINUTE); // 30 minutes since sign-in, 15 since that request
      expect((await http.get('/auth/me', { headers: { 'x-backoffice-session-peek': '1' } })).status, path).toBe(200);
    }
  });

  it('ASVS 5.0 7.3.2: a session used every 15 minutes still ends at the 12-hour absolute timeout', async () => {
    const { http } = await signedIn();
    for (let elapsed = 15 * MINUTE; elapsed < 12 * 60 * MINUTE; elapsed += 15 * MINUTE) {
      ctx.clock.advance(15 * MINUTE);
      expect((await http.get('/auth/me')).status, `${elapsed / MINUTE} minutes in`).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    ctx.clock.advance(15 * MINUTE);
    expect((await http.get('/auth/me')).status).toBe(401);
  });

  it('ASVS 5.0 3.4.6 / 3.4.5: every answer under the prefix (JSON, 401, 403, 404, 400 from the route and from the body parser) refuses framing and sends no referrer, on Express and Fastify; pages keep their own CSP; host routes are untouched', async () => {
    const { http, user } = await signedIn();
    const anonymous = http.fresh();
    const answers = [
      await http.get('/auth/me'),
      await http.get('/auth/sessions'),
      await anonymous.get('/auth/me'),
      await http.post('/auth/logout', undefined, { xsrf: false }),
      await anonymous.get('/no-such-route'),
      await anonymous.post('/auth/login', { username: user.email }),
      await anonymous.request('POST', '/auth/login', { raw: '{"username":', contentType: 'application/json' }),
    ];
    for (const answer of answers) {
      const where = `${answer.status} ${answer.text.slice(0, 80)}`;
      expect(answer.headers.get('content-security-policy'), where).toContain("frame-ancestors 'none'");
      expect(answer.headers.get('x-frame-options'), where).toBe('DENY');
      expect(answer.headers.get('referrer-policy'), where).toBe('no-referrer');
    }
    const page = await anonymous.get('/');
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain(',');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const host = await anonymous.get(`${ctx.url}/host-state`);
    expect(host.status).toBe(401); // the guard's answer on a host route: the host's headers, not the module's
    expect(host.headers.get('x-frame-options')).toBeNull();
  });

  it('ASVS 5.0 14.3.2: what a host route guarded by @BackOfficeAuthorize() answers to a signed-in person is not cached (Cache-Control: no-store), also for HEAD; a host route may set its own', async () => {
    const { http } = await signedIn();
    for (const answer of [await http.get(`${ctx.url}/host-state`), await http.request('HEAD', `${ctx.url}/host-state`), await http.request('PATCH', `${ctx.url}/host-state`)]) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    // A host route that says otherwise keeps its own rule.
    expect((await http.get(`${ctx.url}/host-state/cacheable`)).headers.get('cache-control')).toBe('private, max-age=60');
  });
});

describe('Session cookie tossed from a sibling subdomain: refused, then cleared', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { logger, identity: { publicUrl: 'https://bo.example.test', rateLimits: { enabled: false } }, controllers: [HostStateController] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** A GET with headers fetch() will not send as given (Host). */
  function rawGet(path: string, headers: Record<string, string>): Promise<{ status: number; setCookies: string[] }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${ctx.url}${path}`, { headers }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, setCookies: res.headers['set-cookie'] ?? [] }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** The `Set-Cookie` lines of an answer that expire `name` for a Domain, as `domain path` strings (Secure unless `secure` is false). */
  function expiredForDomains(setCookies: string[], name: string, secure = true): string[] {
    return setCookies
      .map(cookieAttributes)
      .filter((c) => c.name === name && c.attrs.has('domain'))
      .map((c) => {
        expect(c.value).toBe('');
        expect(c.attrs.get('max-age')).toBe('0');
        expect(c.attrs.get('secure')).toBe(secure ? '' : undefined);
        expect(c.attrs.get('samesite')).toBe('Strict');
        return `${c.attrs.get('domain')} ${c.attrs.get('path')}`;
      })
      .sort();
  }

  it('ASVS 5.0 3.3.3 / 7.2.4: the 401 to a request with the session cookie twice expires it for every parent domain (Path /, /backoffice, /backoffice/auth), sign-in does too; once the browser dropped the tossed one the victim signs in and stays signed in; one warning per client, no cookie values', async () => {
    const user = (await ctx.userManager.createUser({ email: 'tossed@example.com', name: 'Tossed', password })).value!;
    const victim = new HttpClient(ctx.url);
    expect((await victim.login(user.email, password)).status).toBe(200);
    const token = victim.cookies.get('backoffice_session')!;
    const xsrf = victim.cookies.get('XSRF-TOKEN')!;
    const tossed = 'T'.repeat(43);
    const cookie = `backoffice_session=${tossed}; XSRF-TOKEN=${xsrf}; backoffice_session=${token}`;
    const expected = ['example.test /', 'example.test /backoffice', 'example.test /backoffice/auth'];
    logger.lines.length = 0;

    for (let i = 0; i < 5; i++) {
      const me = await victim.fresh().get('/auth/me', { headers: { cookie } });
      expect(me.status).toBe(401);
      expect(me.body.code).toBe('unauthenticated');
      expect(expiredForDomains(me.setCookies, 'backoffice_session')).toEqual(expected);
      expect(me.setCookies.map(cookieAttributes).filter((c) => c.name === 'backoffice_session').every((c) => c.attrs.has('httponly'))).toBe(true);
      expect(expiredForDomains(me.setCookies, 'XSRF-TOKEN')).toEqual([]); // sent once: left alone
    }
    // Logout, a host route's guard, and a sign-in answer clear it too; the sign-in still sets the host-only cookie.
    const logout = await victim.fresh().post('/auth/logout', undefined, { headers: { cookie, 'x-xsrf-token': xsrf } });
    expect(logout.status).toBe(401);
    expect(expiredForDomains(logout.setCookies, 'backoffice_session')).toEqual(expected);
    const host = await victim.fresh().get(`${ctx.url}/host-state`, { headers: { cookie } });
    expect(host.status).toBe(401);
    expect(expiredForDomains(host.setCookies, 'backoffice_session')).toEqual(expected);
    const again = victim.fresh();
    const login = await again.post('/auth/login', { username: user.email, password }, { headers: { cookie } });
    expect(login.status).toBe(200);
    expect(expiredForDomains(login.setCookies, 'backoffice_session')).toEqual(expected);
    const hostOnly = login.setCookies.map(cookieAttributes).find((c) => c.name === 'backoffice_session' && !c.attrs.has('domain'))!;
    expect(hostOnly.value).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // A repeated XSRF cookie is cleared the same way (without HttpOnly).
    const twoXsrf = await victim.fresh().get('/auth/me', { headers: { cookie: `XSRF-TOKEN=x; backoffice_session=${token}; XSRF-TOKEN=${xsrf}` } });
    expect(expiredForDomains(twoXsrf.setCookies, 'XSRF-TOKEN')).toEqual(expected);
    expect(twoXsrf.setCookies.map(cookieAttributes).filter((c) => c.name === 'XSRF-TOKEN').some((c) => c.attrs.has('httponly'))).toBe(false);

    // The Host header's parent domains too (a.b.example.com: b.example.com and example.com), never the public suffix.
    const viaHost = await rawGet('/backoffice/auth/me', { cookie, host: 'a.b.example.com:8443' });
    expect(viaHost.status).toBe(401);
    const domains = new Set(viaHost.setCookies.map(cookieAttributes).filter((c) => c.name === 'backoffice_session').map((c) => c.attrs.get('domain')));
    expect(domains).toEqual(new Set(['example.test', 'b.example.com', 'example.com']));

    // The browser dropped the tossed cookie: the victim's own session works again.
    const after = await victim.fresh().get('/auth/me', { headers: { cookie: `backoffice_session=${token}` } });
    expect(after.status).toBe(200);
    expect(after.body.email).toBe(user.email);
    expect(after.setCookies.filter((c) => c.includes('Domain='))).toEqual([]);
    expect((await again.get('/auth/me')).status).toBe(200);

    const warnings = logger.lines.filter((l) => /duplicate session cookie/i.test(l));
    expect(warnings, logger.lines.join('\n')).toHaveLength(1);
    expect(warnings[0]).toMatch(/cookie tossing/i);
    expect(warnings[0]).not.toContain(token);
    expect(warnings[0]).not.toContain(tossed);
  });

  it('ASVS 5.0 3.3.3: without Secure cookies, a pending two-factor or external-login cookie sent twice is expired for every parent domain too (HttpOnly; the external one also on its own Path); sent once, it is left alone', async () => {
    const plain = await createIdentityApp(db, { identity: { publicUrl: 'http://bo.example.test', rateLimits: { enabled: false }, session: { secureCookies: false } } });
    try {
      const expected = ['example.test /', 'example.test /backoffice', 'example.test /backoffice/auth'];
      const { twoFactor, externalLogin } = pendingSignInCookies({ secureCookies: false });
      expect([twoFactor, externalLogin]).toEqual(['backoffice_session_2fa', 'backoffice_session_ext']);
      const twice = `${twoFactor}=${'T'.repeat(43)}; ${externalLogin}=${'T'.repeat(43)}; ${twoFactor}=${'O'.repeat(43)}; ${externalLogin}=${'O'.repeat(43)}`;
      const answer = await new HttpClient(plain.url).get('/auth/me', { headers: { cookie: twice } });
      expect(answer.status).toBe(401);
      expect(expiredForDomains(answer.setCookies, twoFactor, false)).toEqual(expected);
      expect(expiredForDomains(answer.setCookies, externalLogin, false)).toEqual([...expected, 'example.test /backoffice/auth/external'].sort());
      const lines = answer.setCookies.map(cookieAttributes).filter((c) => c.name === twoFactor || c.name === externalLogin);
      expect(lines.every((c) => c.attrs.has('httponly'))).toBe(true);
      expect(expiredForDomains(answer.setCookies, 'backoffice_session', false)).toEqual([]);
      const once = await new HttpClient(plain.url).get('/auth/me', { headers: { cookie: `${twoFactor}=${'O'.repeat(43)}; ${externalLogin}=${'O'.repeat(43)}` } });
      expect(once.setCookies.filter((c) => c.includes('Domain='))).toEqual([]);
    } finally {
      await plain.close();
    }
  });

  it('ASVS 5.0 3.3.3: a __Host- cookie sent twice (the Secure pending sign-in cookies, a __Host- session.cookieName) gets no Domain= or sub-path expiry line, which browsers reject for that prefix and no sibling could have tossed; an unprefixed one beside it still does', async () => {
    const { twoFactor, externalLogin } = pendingSignInCookies();
    expect([twoFactor, externalLogin]).toEqual(['__Host-backoffice_session_2fa', '__Host-backoffice_session_ext']);
    const twice = `${twoFactor}=${'T'.repeat(43)}; ${externalLogin}=${'T'.repeat(43)}; ${twoFactor}=${'O'.repeat(43)}; ${externalLogin}=${'O'.repeat(43)}`;
    const answer = await new HttpClient(ctx.url).get('/auth/me', { headers: { cookie: twice } });
    expect(answer.status).toBe(401);
    expect(answer.setCookies.filter((c) => c.includes('Domain='))).toEqual([]);

    const hostNamed = await createIdentityApp(db, { identity: { publicUrl: 'https://bo.example.test', rateLimits: { enabled: false }, session: { cookieName: '__Host-bo_session' } } });
    try {
      const names = pendingSignInCookies({ cookieName: '__Host-bo_session' });
      const cookie = ['__Host-bo_session', names.twoFactor, names.externalLogin, 'XSRF-TOKEN'].flatMap((name) => [`${name}=${'T'.repeat(43)}`, `${name}=${'O'.repeat(43)}`]).join('; ');
      const refused = await new HttpClient(hostNamed.url).get('/auth/me', { headers: { cookie } });
      expect(refused.status).toBe(401);
      expect(refused.body.code).toBe('unauthenticated');
      const withDomain = refused.setCookies.filter((c) => c.includes('Domain='));
      expect(withDomain.filter((c) => /^__host-/i.test(c))).toEqual([]);
      expect(expiredForDomains(refused.setCookies, 'XSRF-TOKEN')).toEqual(['example.test /', 'example.test /backoffice', 'example.test /backoffice/auth']);
    } finally {
      await hostNamed.close();
    }
  });
});
