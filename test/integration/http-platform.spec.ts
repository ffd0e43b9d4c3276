import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { expectClientError } from '../support/bad-input.js';
import { createIdentityApp, httpPlatform, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';

/** `name=value; A; B=c` → name, value and the attributes in a canonical order (for exact comparisons). */
function parseSetCookie(header: string): { name: string; value: string; attributes: string[] } {
  const [pair, ...attributes] = header.split(';').map((part) => part.trim());
  const eq = pair.indexOf('=');
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes: attributes.map((a) => a.replace(/=.*/, (v) => (/^=\d+$/.test(v) ? '=<n>' : v))).sort() };
}

const cookieNamed = (result: HttpResult, name: string) => {
  const header = result.setCookies.find((c) => c.startsWith(`${name}=`));
  expect(header, `Set-Cookie ${name}`).toBeDefined();
  return parseSetCookie(header!);
};

/**
 * The same expectations on both platforms (the Vitest projects `postgres` / `pglite` run Express, `fastify`
 * runs Fastify): the answers of the module do not depend on the platform the host picked.
 */
describe(`HTTP platform: ${httpPlatform()}`, () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const newUser = userFactory(() => ctx, 'platform-');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, lockout: { maxFailedAccessAttempts: 2, durationMinutes: 5 } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('the app really runs on the platform of the project', () => {
    expect(ctx.app.getHttpAdapter().getType()).toBe(httpPlatform());
  });

  it('login sets the session and XSRF cookies with the same attributes; logout expires both', async () => {
    const user = await newUser();
    const http = new HttpClient(ctx.url);
    const login = await http.login(user.email, TEST_PASSWORD);
    expect(login.status).toBe(200);
    expect(login.setCookies).toHaveLength(2);
    const session = cookieNamed(login, 'backoffice_session');
    const xsrf = cookieNamed(login, 'XSRF-TOKEN');
    expect(session.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(session.attributes).toEqual(['HttpOnly', 'Max-Age=<n>', 'Path=/', 'SameSite=Strict', 'Secure']);
    expect(xsrf.attributes).toEqual(['Max-Age=<n>', 'Path=/', 'SameSite=Strict', 'Secure']);
    expect(login.headers.get('content-type')).toMatch(/^application\/json/);

    const logout = await http.post('/auth/logout');
    expect(logout.status).toBe(200);
    for (const name of ['backoffice_session', 'XSRF-TOKEN']) {
      const cleared = cookieNamed(logout, name);
      expect(cleared.value).toBe('');
      expect(cleared.attributes).toContain('Max-Age=<n>');
      expect(logout.setCookies.find((c) => c.startsWith(`${name}=`))).toMatch(/Max-Age=0; .*Expires=Thu, 01 Jan 1970 00:00:00 GMT/);
    }
    expectClientError(await http.get('/auth/me'), 401);
  });

  it('the session cookie is read with the `cookie` parser: quoted values, other cookies; a session cookie sent twice is none (ASVS 5.0 3.3.3, cookie tossing)', async () => {
    const user = await newUser();
    const http = new HttpClient(ctx.url);
    await http.login(user.email, TEST_PASSWORD);
    const token = http.cookies.get('backoffice_session')!;
    const me = (cookie: string) => new HttpClient(ctx.url).get('/auth/me', { headers: { cookie } });
    expect((await me(`a=1; backoffice_session="${token}"; b=%20`)).status).toBe(200);
    expect((await me(`backoffice_session=${token}; backoffice_session=other`)).status).toBe(401);
    expect((await me(`backoffice_session=other; backoffice_session=${token}`)).status).toBe(401);
  });

  it('ASVS 4.2.2: the XSRF double submit is checked the same way (header and cookie both required)', async () => {
    const user = await newUser();
    const http = new HttpClient(ctx.url);
    await http.login(user.email, TEST_PASSWORD);
    const xsrf = http.cookies.get('XSRF-TOKEN')!;
    const withoutHeader = await http.post('/auth/logout', undefined, { xsrf: false });
    expectClientError(withoutHeader, 403);
    expect(withoutHeader.body.code).toBe('xsrf_failed');
    const headerOnly = await http.post('/auth/logout', undefined, {
      headers: { cookie: `backoffice_session=${http.cookies.get('backoffice_session')}`, 'x-xsrf-token': xsrf },
    });
    expect(headerOnly.body.code).toBe('xsrf_failed');
    expect((await http.post('/auth/logout')).status).toBe(200);
  });

  it('body rules give the same status, code and message on both platforms', async () => {
    const login = (raw: string | Buffer, contentType = 'application/json') =>
      new HttpClient(ctx.url).request('POST', '/auth/login', { raw, contentType });
    const cases: Array<[string, HttpResult, number, string]> = [
      ['malformed JSON', await login('{"username":'), 400, 'malformed_json'],
      ['JSON null', await login('null'), 400, 'malformed_json'],
      ['JSON array', await login('[1]'), 400, 'malformed_json'],
      ['JSON string', await login('"text"'), 400, 'malformed_json'],
      ['1 MB body', await login(JSON.stringify({ username: 'x'.repeat(1024 * 1024), password: 'p' })), 413, 'payload_too_large'],
      ['form post', await login('username=a&password=b', 'application/x-www-form-urlencoded'), 415, 'unsupported_media_type'],
      ['text/plain', await login('{"username":"a","password":"b"}', 'text/plain'), 415, 'unsupported_media_type'],
      ['invalid UTF-8', await login(Buffer.concat([Buffer.from('{"username":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","password":"p"}')])), 400, 'validation_failed'],
    ];
    for (const [name, result, status, code] of cases) {
      expectClientError(result, status);
      expect(result.body.code, name).toBe(code);
    }
    expect(cases.find(([name]) => name === 'malformed JSON')![1].body.message).toBe('The request body must be a JSON object.');
    expect(cases.find(([name]) => name === 'text/plain')![1].body.message).toBe('Send the body as application/json.');
    expect(cases.find(([name]) => name === 'invalid UTF-8')![1].body.errors[0]).toMatchObject({ field: 'username', code: 'invalid_characters' });
  });

  it('a locked account: 423 with the Retry-After header set through the platform', async () => {
    const user = await newUser();
    for (let i = 0; i < 2; i++) await new HttpClient(ctx.url).login(user.email, 'wrong password');
    const locked = await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD);
    expectClientError(locked, 423);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('the request context (IP, user agent) survives body parsing: the login session records both', async () => {
    const user = await newUser();
    const http = new HttpClient(ctx.url);
    const login = await http.request('POST', '/auth/login', { body: { username: user.email, password: TEST_PASSWORD }, headers: { 'user-agent': 'platform-agent/1.0' } });
    expect(login.status).toBe(200);
    const sessions = await http.get('/auth/sessions');
    expect(sessions.body).toEqual([expect.objectContaining({ ip: '127.0.0.1', userAgent: 'platform-agent/1.0', current: true })]);
  });

  it('unknown routes under the prefix: the module\'s 404 shape', async () => {
    const result = await new HttpClient(ctx.url).get('/backoffice/nothing-here');
    expectClientError(result, 404);
    expect(result.body.code).toBe('not_found');
  });

  it('a route parameter longer than Fastify\'s maxParamLength (100): the module\'s 404 on both platforms, no router 414', async () => {
    const admin = new HttpClient(ctx.url);
    await admin.login((await newUser({ groups: ['admin'] })).email, TEST_PASSWORD);
    const long = 'x'.repeat(3000);
    for (const result of [
      await admin.get(`/users/${long}/passkeys`),
      await admin.post(`/users/${long}/disable`),
      await admin.delete(`/auth/sessions/${long}`),
      await admin.request('PUT', `/groups/${long}`, { body: { name: 'x' } }),
      await new HttpClient(ctx.url).get(`/auth/external/${long}/challenge`),
    ]) {
      expectClientError(result, 404);
      expect(result.body.code).toBe('not_found');
    }
    // Routes of the same shape with a short parameter still reach their controllers.
    expect((await admin.post(`/users/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/disable`)).body.message).toBe('No such user.');
  });

  it('under a host\'s global prefix too: long parameters and unknown paths get the module\'s 404', async () => {
    const prefixed = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false } },
      beforeListen: async (app) => void app.setGlobalPrefix('api'),
    });
    try {
      const http = new HttpClient(prefixed.url, '/api/backoffice');
      await http.login((await newUser()).email, TEST_PASSWORD);
      expect((await http.get('/auth/me')).status).toBe(200);
      for (const path of [`/auth/sessions/${'9'.repeat(500)}`, '/nothing-here']) {
        const result = await http.delete(path);
        expectClientError(result, 404);
        expect(result.body.code).toBe('not_found');
      }
    } finally {
      await prefixed.close();
    }
  });

  it('ASVS 4.0 8.2.1: under a host\'s global prefix, the module\'s answers (a sign-in, the TOTP secret, errors) keep the security headers', async () => {
    const prefixed = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false } },
      beforeListen: async (app) => void app.setGlobalPrefix('api'),
    });
    try {
      const http = new HttpClient(prefixed.url, '/api/backoffice');
      const login = await http.login((await newUser()).email, TEST_PASSWORD);
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      expect(setup.body.secret).toMatch(/^[A-Z2-7]{32}$/);
      const malformed = await new HttpClient(prefixed.url, '/api/backoffice').request('POST', '/auth/login', { raw: '{"username":', contentType: 'application/json' });
      for (const answer of [login, setup, malformed, await new HttpClient(prefixed.url, '/api/backoffice').get('/auth/me')]) {
        expect(answer.headers.get('cache-control'), answer.text).toBe('no-store');
        expect(answer.headers.get('pragma')).toBe('no-cache');
        expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
        expect(answer.headers.get('x-powered-by')).toBeNull();
      }
    } finally {
      await prefixed.close();
    }
  });

  it('RFC 6749 4.4.2 / 5.2: POST /auth/token reads a form body and answers refused bodies alike on both platforms', async () => {
    const token = (raw: string | Buffer, contentType: string) => new HttpClient(ctx.url).request('POST', '/auth/token', { raw, contentType });
    const form = 'application/x-www-form-urlencoded';
    const unknownClient = await token('grant_type=client_credentials&client_id=nobody&client_secret=wrong', form);
    expect(unknownClient.status).toBe(401);
    expect(unknownClient.body).toMatchObject({ code: 'invalid_client', error: 'invalid_client' });
    const cases: Array<[string, Awaited<ReturnType<typeof token>>, number, string]> = [
      ['form with a Latin-1 charset', await token('grant_type=client_credentials&client_id=a&client_secret=b', `${form}; charset=latin1`), 415, 'unsupported_media_type'],
      ['text/plain', await token('grant_type=client_credentials', 'text/plain'), 415, 'unsupported_media_type'],
      ['octet-stream', await token('grant_type=client_credentials', 'application/octet-stream'), 415, 'unsupported_media_type'],
      ['form of 2 MB', await token(`grant_type=${'x'.repeat(2 * 1024 * 1024)}`, form), 413, 'payload_too_large'],
      ['malformed JSON', await token('{"grant_type":', 'application/json'), 400, 'malformed_json'],
      // JSON that is not an object: Express's parser refuses it, Fastify's reads it and the controller did.
      ['JSON null', await token('null', 'application/json'), 400, 'malformed_json'],
      ['JSON string', await token('"grant_type=client_credentials"', 'application/json'), 400, 'malformed_json'],
      ['JSON array', await token('[{"grant_type":"client_credentials"}]', 'application/json'), 400, 'malformed_json'],
      ['form without grant_type', await token('client_id=a&client_secret=b', form), 400, 'invalid_request'],
    ];
    for (const [name, result, status, code] of cases) {
      expectClientError(result, status);
      expect(result.body.code, name).toBe(code);
      expect(result.body.error, name).toBe('invalid_request');
      expect(result.body.error_description, name).toBe(result.body.message);
      expect(result.headers.get('cache-control'), name).toBe('no-store');
    }
    expect(cases[1][1].body.message).toBe('Send the body as application/x-www-form-urlencoded or application/json.');
    expect(cases[2][1].body.message).toBe(cases[1][1].body.message);
    // A prototype key in the form is a malformed request on both platforms (Fastify's parser refuses it).
    const proto = await token('grant_type=client_credentials&__proto__=x&client_secret=b', form);
    expectClientError(proto, 400);
    expect(proto.body.error).toBe('invalid_request');
  });

  it('a form body elsewhere: 415 on the JSON-only routes, read as fields on the others, the same on both platforms', async () => {
    const http = new HttpClient(ctx.url);
    await http.login((await newUser()).email, TEST_PASSWORD);
    const formLogin = await new HttpClient(ctx.url).request('POST', '/auth/login', { raw: 'username=a&password=b', contentType: 'application/x-www-form-urlencoded' });
    expectClientError(formLogin, 415);
    expect(formLogin.body.code).toBe('unsupported_media_type');
    const rename = await http.request('PUT', '/auth/me', { raw: 'name=Form%20Name', contentType: 'application/x-www-form-urlencoded' });
    expect(rename.status).toBe(200);
    expect(rename.body.name).toBe('Form Name');
    // A media type the module does not read: refused before any parser could disagree (unreadable-bodies.spec.ts).
    const textBody = await http.request('PUT', '/auth/me', { raw: '{"name":"x"}', contentType: 'text/plain' });
    expectClientError(textBody, 415);
    expect(textBody.body.code).toBe('unsupported_media_type');
  });
});
