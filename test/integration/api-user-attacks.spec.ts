import { createHash } from 'node:crypto';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, reauthenticate, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** An attacker's look at the API-user surface: what a bearer token of a well-placed API user still cannot do. */
describe('API users under attack', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let adminId: string;
  const make = userFactory(() => ctx, 'apiatk');
  const anon = () => new HttpClient(ctx.url);
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  const form = (body: string, headers: Record<string, string> = {}) =>
    anon().request('POST', '/auth/token', { raw: body, contentType: 'application/x-www-form-urlencoded', headers });
  const createApiUser = async (groups: string[], name = 'Robot') => {
    await reauthenticate(admin);
    const res = await admin.post('/users/api', { name, groups });
    expect(res.status, res.text).toBe(201);
    return res.body as { user: { id: string; groups: string[] }; clientId: string; clientSecret: string };
  };
  const tokenFor = async (clientId: string, clientSecret: string) => {
    const res = await form('grant_type=client_credentials', { authorization: basic(clientId, clientSecret) });
    expect(res.status, res.text).toBe(200);
    return res.body.access_token as string;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const boss = await make({ groups: ['admin'] });
    adminId = boss.id;
    admin = anon();
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    const managers = await admin.post('/groups', { alias: 'atk-managers', name: 'Managers', permissions: ['users.read', 'users.manage', 'groups.manage', 'sessions.manage'] });
    expect(managers.status, managers.text).toBe(201);
    expect((await admin.post('/groups', { alias: 'atk-auditors', name: 'Auditors', permissions: ['audit.read'] })).status).toBe(201);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 4.1.3: an API user holding users.manage and groups.manage cannot raise its own permissions with its bearer token', async () => {
    const { user, clientId, clientSecret } = await createApiUser(['atk-managers']);
    const robot = anon();
    const auth = bearer(await tokenFor(clientId, clientSecret));
    const attempts = [
      await robot.request('PUT', `/users/${user.id}/groups`, { body: { groups: ['atk-managers', 'admin'] }, ...auth }),
      await robot.request('PUT', `/users/${user.id}/groups`, { body: { groups: ['atk-managers', 'atk-auditors'] }, ...auth }),
      await robot.request('PUT', '/groups/atk-managers', { body: { name: 'Managers', permissions: ['users.read', 'users.manage', 'groups.manage', 'sessions.manage', 'audit.read'] }, ...auth }),
      await robot.request('POST', '/groups', { body: { alias: 'atk-mine', name: 'Mine', permissions: ['audit.read'] }, ...auth }),
      await robot.request('POST', `/users/${adminId}/disable`, { body: {}, ...auth }),
    ];
    expect(attempts.map((r) => r.status)).toEqual([403, 403, 403, 403, 403]);
    expect((await robot.get('/audit?take=1', auth)).status).toBe(403);
    const stored = await ctx.userManager.findById(user.id);
    expect(stored?.groups).toEqual(['atk-managers']);
    expect((await admin.get('/groups?take=1000')).body.items.find((g: { alias: string }) => g.alias === 'atk-managers').permissions).not.toContain('audit.read');
  });

  it('OWASP ASVS 4.0 3.5.2: a bearer token is refused on every route for a signed-in person (own account, sessions, 2FA, step-up), and changes nothing', async () => {
    const { clientId, clientSecret } = await createApiUser(['atk-managers']);
    const auth = bearer(await tokenFor(clientId, clientSecret));
    const robot = anon();
    const attempts: Array<[string, string, unknown]> = [
      ['GET', '/auth/me', undefined],
      ['GET', '/auth/sessions', undefined],
      ['POST', '/auth/change-password', { currentPassword: 'x'.repeat(12), newPassword: 'a brand new passphrase' }],
      ['POST', '/auth/2fa/setup', { provider: 'totp' }],
      ['POST', '/auth/reauthenticate', { password: TEST_PASSWORD }],
      ['POST', '/auth/logout', {}],
    ];
    for (const [method, path, body] of attempts) {
      const res = await robot.request(method, path, { body, ...auth });
      expect([path, res.status]).toEqual([path, 401]);
    }
    // The token still works where bearer tokens belong: logout did not end anything.
    expect((await robot.get('/users?take=1', auth)).status).toBe(200);
  });

  it('OWASP ASVS 4.0 4.1.3: a group taken away from an API user takes its permission from a token issued before', async () => {
    const { user, clientId, clientSecret } = await createApiUser(['atk-managers']);
    const auth = bearer(await tokenFor(clientId, clientSecret));
    expect((await anon().get('/users?take=1', auth)).status).toBe(200);
    expect((await admin.request('PUT', `/users/${user.id}/groups`, { body: { groups: [] } })).status).toBe(200);
    expect((await anon().get('/users?take=1', auth)).status).toBe(403);
  });

  it('OWASP ASVS 4.0 7.1.1, 2.10.4: no secret, token nor their SHA-256 is in the audit trail', async () => {
    const { user, clientId, clientSecret } = await createApiUser(['atk-managers']);
    const token = await tokenFor(clientId, clientSecret);
    await reauthenticate(admin);
    const rotated = await admin.post(`/users/api/${user.id}/rotate-secret`, { overlapMinutes: 5 });
    expect(rotated.status, rotated.text).toBe(200);
    const second = await tokenFor(clientId, rotated.body.clientSecret);
    expect((await form('grant_type=client_credentials', { authorization: basic(clientId, `${clientSecret}x`) })).status).toBe(401);
    const audit = await admin.get(`/audit?take=200&userId=${user.id}`);
    expect(audit.status, audit.text).toBe(200);
    expect(audit.body.items.length).toBeGreaterThanOrEqual(4);
    const text = JSON.stringify(audit.body);
    for (const secret of [clientSecret, rotated.body.clientSecret, token, second, `${clientSecret}x`]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(sha256(secret));
    }
  });

  it('OWASP ASVS 4.0 5.1.3: hostile bodies for /users/api and rotate-secret are 4xx JSON, never 5xx, and create nothing', async () => {
    await reauthenticate(admin);
    const before = (await admin.get('/users/api?take=1000')).body.total as number;
    const bodies: unknown[] = [
      { name: 'nul\u0000byte', groups: [] },
      { name: 'x'.repeat(257), groups: [] },
      { name: 'Robot', groups: ['nul\u0000group'] },
      { name: 'Robot', groups: 'atk-managers' },
      { name: 'Robot', groups: [1] },
      { name: 'Robot', groups: [{ alias: 'admin' }] },
      { name: { $ne: '' }, groups: [] },
      { name: 'Robot', groups: Array.from({ length: 21 }, (_, i) => `g${i}`) },
      [{ name: 'Robot', groups: [] }],
      { name: '   ', groups: [] },
      { name: 'Robot', groups: ['atk-managers', 'no-such-group'] },
    ];
    for (const body of bodies) {
      const res = await admin.post('/users/api', body);
      expectClientError(res, 400);
    }
    const ids = ['not-a-uuid', "'; DROP TABLE backoffice_user; --", '00000000-0000-0000-0000-000000000000', 'ü'.repeat(300), adminId];
    for (const id of ids) {
      const res = await admin.post(`/users/api/${encodeURIComponent(id)}/rotate-secret`, {});
      expectClientError(res, 404);
    }
    const { user } = await createApiUser([]);
    // Strings Number() reads as a number ('' as 0, ' 5', '+5', '0x10', '1e3', a fullwidth digit) are not whole numbers
    // as a client writes them: refused, as the numeric query fields refuse them.
    for (const overlapMinutes of [-1, 'abc', 1.5, 1e9, { $gt: 0 }, [5], '', ' 5', '+5', '0x10', '1e3', '５', true]) {
      const res = await admin.post(`/users/api/${user.id}/rotate-secret`, { overlapMinutes });
      expect(res.status, JSON.stringify(overlapMinutes)).toBe(400);
      expectClientError(res, 400);
      expect(res.body.errors?.map((e: { field: string }) => e.field), JSON.stringify(overlapMinutes)).toEqual(['overlapMinutes']);
    }
    // ASCII digits in a string (a form body sends nothing else) still count.
    expect((await admin.post(`/users/api/${user.id}/rotate-secret`, { overlapMinutes: '5' })).status).toBe(200);
    expect((await admin.get('/users/api?take=1000')).body.total).toBe(before + 1);
  });

  it('RFC 6749 5.2, OWASP ASVS 4.0 5.1.3: hostile token requests are 4xx OAuth errors, never a token nor a 5xx', async () => {
    const { clientId, clientSecret } = await createApiUser([]);
    const enc = encodeURIComponent;
    const cases: Array<[string, Record<string, string>]> = [
      [`grant_type=client_credentials&client_id=${enc(clientId)}&client_id=${enc(clientId)}&client_secret=${enc(clientSecret)}`, {}],
      [`grant_type=client_credentials&client_id[a]=${enc(clientId)}&client_secret=${enc(clientSecret)}`, {}],
      [`grant_type=client_credentials&grant_type=client_credentials&client_id=${enc(clientId)}&client_secret=${enc(clientSecret)}`, {}],
      [`grant_type=client_credentials&client_id=${enc(clientId)}&client_secret=${'s'.repeat(100_000)}`, {}],
      [`grant_type=client_credentials&client_id=${enc('boc_' + 'ü'.repeat(24))}&client_secret=${enc(clientSecret)}`, {}],
      [`grant_type=client_credentials&client_id=${enc(clientId)}&client_secret=${enc(clientSecret + '\u0000')}`, {}],
      [`grant_type=client_credentials&client_id=${enc(clientId)}&client_secret=%ZZ`, {}],
      ['grant_type=client_credentials', { authorization: 'Basic !!!not-base64!!!' }],
      ['grant_type=client_credentials', { authorization: `Basic ${Buffer.from(clientId).toString('base64')}` }],
      ['grant_type=client_credentials', { authorization: `Basic ${Buffer.from(`${clientId}:%E0%A4%A`).toString('base64')}` }],
      ['grant_type=client_credentials', { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret.slice(0, -1)}\u{1F600}`).toString('base64')}` }],
      ['grant_type=client_credentials', { authorization: `Bearer ${clientSecret}` }],
      [`grant_type=password&username=${enc(clientId)}&password=${enc(clientSecret)}`, {}],
    ];
    for (const [body, headers] of cases) {
      const res = await form(body, headers);
      expect([body.slice(0, 80), headers.authorization?.slice(0, 20), res.status >= 400 && res.status < 500]).toEqual([body.slice(0, 80), headers.authorization?.slice(0, 20), true]);
      expect(typeof res.body.error, res.text).toBe('string');
      expect(res.body.access_token).toBeUndefined();
    }
    // JSON with the wrong types
    for (const body of [{ grant_type: 'client_credentials', client_id: [clientId], client_secret: clientSecret }, { grant_type: 'client_credentials', client_id: clientId, client_secret: { toString: clientSecret } }, { grant_type: ['client_credentials'], client_id: clientId, client_secret: clientSecret }]) {
      const res = await anon().post('/auth/token', body);
      expectClientError(res, 400);
      expect(res.body.error).toBe('invalid_request');
    }
    // The right credentials still work: nothing above locked the client out.
    await tokenFor(clientId, clientSecret);
  });
});
