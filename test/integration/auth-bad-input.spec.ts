import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { expectBadBodiesRefused, expectClientError, expectOverlongIdRefused } from '../support/bad-input.js';

describe('Bad input on the auth routes: a 4xx with a code, never a 500', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let http: HttpClient;
  const password = 'correct horse battery staple';

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    await ctx.userManager.createUser({ email: 'bad-input@example.com', name: 'B', password });
    http = new HttpClient(ctx.url);
    expect((await http.login('bad-input@example.com', password)).status).toBe(200);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('POST /auth/login', async () => {
    const statuses = await expectBadBodiesRefused(new HttpClient(ctx.url), 'POST', '/auth/login', ['username', 'password']);
    expect(statuses['invalid JSON']).toBe(400);
    expect(statuses['1 MB body']).toBe(413);
    expect(statuses['username missing']).toBe(400);
    expect(statuses['unknown extra field']).toBe(400);
    expect(statuses['invalid UTF-8 bytes']).toBe(400);
  });

  it('POST /auth/change-password', async () => {
    await expectBadBodiesRefused(http, 'POST', '/auth/change-password', ['currentPassword', 'newPassword']);
    expect((await http.get('/auth/me')).status).toBe(200); // nothing above ended the session
  });

  it('unicode usernames and passwords are just wrong credentials', async () => {
    for (const username of ['ｂａｄ-ｉｎｐｕｔ@example.com', 'bad-input@example.com\u0301', '😀@example.com', 'a\u202Eb@example.com']) {
      const result = await new HttpClient(ctx.url).login(username, '密码密码密码密码密码密码');
      expectClientError(result, 401);
    }
    // NFKC: full-width spelling of the same address is the same account
    expect((await new HttpClient(ctx.url).login('ｂａｄ-ｉｎｐｕｔ@example.com', password)).status).toBe(200);
  });

  it('control characters in a username give a 4xx, not 500: NUL is refused (400), others are wrong credentials (401)', async () => {
    const nul = await new HttpClient(ctx.url).login('bad\u0000input@example.com', password);
    expectClientError(nul, 400);
    expect(nul.body.errors[0]).toMatchObject({ field: 'username', code: 'invalid_characters' });
    expectClientError(await new HttpClient(ctx.url).login('bad\u0007input@example.com', password), 401);
  });

  it('login CSRF: a cross-site HTML form cannot post credentials (415 for anything but JSON)', async () => {
    const form = new URLSearchParams({ username: 'bad-input@example.com', password }).toString();
    for (const contentType of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x']) {
      const result = await new HttpClient(ctx.url).request('POST', '/auth/login', { raw: form, contentType });
      expectClientError(result, 415);
      expect(result.headers.get('set-cookie')).toBeNull();
    }
    expect((await new HttpClient(ctx.url).login('bad-input@example.com', password)).status).toBe(200);
  });

  it('malformed cookies and ids', async () => {
    const odd = new HttpClient(ctx.url);
    expectClientError(await odd.get('/auth/me', { headers: { cookie: 'backoffice_session=%E0%A4%A; XSRF-TOKEN=' } }), 401);
    expectClientError(await odd.get('/auth/me', { headers: { cookie: `backoffice_session=${'x'.repeat(8000)}` } }), 401);
    expectOverlongIdRefused(await http.delete(`/auth/sessions/${'9'.repeat(5000)}`));
    expectClientError(await http.delete('/auth/sessions/%00'), 400);
    expectClientError(await http.delete('/auth/sessions/%07'), 404);
    expectClientError(await odd.get('/does-not-exist'), 404);
    expectClientError(await odd.request('PUT', '/auth/login', { body: {} }), 404);
  });
});
