import { randomBytes } from 'node:crypto';
import { independentCode } from '../support/oathtool.js';
import { ipFromTestHeader, uniqueIpv4 } from '../support/fixed-client-ip.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';

const password = 'correct horse battery staple';
const wrong = 'a wrong password guess';



/**
 * The signed-in routes that check a password (step-up, change password, turning 2FA off) are limited per IP, as
 * the ways in are: lockout bounds the guesses per account, the per-IP limit the guesses of one client across the
 * accounts it holds sessions of (OWASP ASVS 5.0 6.3.1 / 4.0 2.2.1).
 */
describe('rate limits of the signed-in password checks (rateLimits.passwordCheckPerIp)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let counter = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { ...ipFromTestHeader, rateLimits: { passwordCheckPerIp: 3 }, lockout: { maxFailedAccessAttempts: 1000 } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function signedIn(ip: string) {
    const email = `pcrl${++counter}-${randomBytes(3).toString('hex')}@example.com`;
    const user = (await ctx.userManager.createUser({ email, name: 'Limited', password })).value!;
    const http = new HttpClient(ctx.url);
    expect((await http.request('POST', '/auth/login', { body: { username: email, password }, headers: { 'x-test-ip': ip } })).body.status).toBe('success');
    return { email, user, http };
  }

  function expectLimited(result: HttpResult) {
    expectClientError(result, 429);
    expect(result.body).toMatchObject({ statusCode: 429, code: 'too_many_requests' });
    const retryAfter = result.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
  }

  const routes: Array<{ route: string; body: Record<string, string>; twoFactor?: boolean }> = [
    { route: '/auth/reauthenticate', body: { password: wrong } },
    { route: '/auth/change-password', body: { currentPassword: wrong, newPassword: 'a takeover passphrase 42' } },
    { route: '/auth/2fa/disable', body: { password: wrong }, twoFactor: true },
  ];

  for (const { route, body, twoFactor } of routes) {
    it(`OWASP ASVS 5.0 6.3.1 / 4.0 2.2.1: POST ${route}: past the per-IP limit 429 too_many_requests with Retry-After, the password not checked nor counted; another IP is not limited`, async () => {
      const ip = uniqueIpv4();
      const { user, http } = await signedIn(ip);
      if (twoFactor) {
        const setup = await http.request('POST', '/auth/2fa/setup', { body: { provider: 'totp' }, headers: { 'x-test-ip': ip } });
        expect((await http.request('POST', '/auth/2fa/enable', { body: { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) }, headers: { 'x-test-ip': ip } })).status).toBe(200);
      }
      const from = (address: string, payload = body) => http.request('POST', route, { body: payload, headers: { 'x-test-ip': address } });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await from(ip)).status);
      expect(statuses).toEqual([401, 401, 401]);
      const limited = await from(ip);
      expectLimited(limited);
      expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(3);
      // Another client IP has its own budget (the same session, a guess checked and counted again).
      expectClientError(await from(uniqueIpv4()), 401);
      expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(4);
    });
  }

  it('OWASP ASVS 5.0 6.3.1 / 4.0 2.2.1: the three routes share one per-IP budget: a guess at one spends it for the others (three routes are not three times the guesses)', async () => {
    const ip = uniqueIpv4();
    const { user, http } = await signedIn(ip);
    const setup = await http.request('POST', '/auth/2fa/setup', { body: { provider: 'totp' }, headers: { 'x-test-ip': ip } });
    expect((await http.request('POST', '/auth/2fa/enable', { body: { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) }, headers: { 'x-test-ip': ip } })).status).toBe(200);
    const from = (route: string, body: Record<string, string>) => http.request('POST', route, { body, headers: { 'x-test-ip': ip } });
    const statuses = [];
    for (const { route, body } of routes) statuses.push((await from(route, body)).status);
    expect(statuses).toEqual([401, 401, 401]);
    for (const { route, body } of routes) expectLimited(await from(route, body));
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(3);
  });
});

describe('rate limits of the signed-in password checks: the default', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { ...ipFromTestHeader, lockout: { maxFailedAccessAttempts: 1000 } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 5.0 6.3.1 / 4.0 2.2.1: POST /auth/reauthenticate allows 30 wrong passwords a minute per IP by default, then 429', async () => {
    const ip = uniqueIpv4();
    const email = `pcrl-default-${randomBytes(3).toString('hex')}@example.com`;
    await ctx.userManager.createUser({ email, name: 'Limited', password });
    const http = new HttpClient(ctx.url);
    expect((await http.request('POST', '/auth/login', { body: { username: email, password }, headers: { 'x-test-ip': ip } })).body.status).toBe('success');
    const statuses = [];
    for (let i = 0; i < 31; i++) statuses.push((await http.request('POST', '/auth/reauthenticate', { body: { password: wrong }, headers: { 'x-test-ip': ip } })).status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(30);
    expect(statuses[30]).toBe(429);
  });
});
