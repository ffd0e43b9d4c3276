import { createHash, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { expectClientError } from '../support/bad-input.js';
import { BackOfficeApiUserService, TypeOrmBackOfficeApiClientStore } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { createIdentityApp, reauthenticate, signedInClient, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describe('API users: client credentials and bearer tokens', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let adminId: string;
  let adminEmail: string;
  const make = userFactory(() => ctx, 'apiu');
  const anon = () => new HttpClient(ctx.url);
  /** A token request as a plain OAuth client sends it: form body, no cookies. */
  const tokenRequest = (form: Record<string, string>, headers: Record<string, string> = {}) =>
    anon().request('POST', '/auth/token', { raw: new URLSearchParams(form).toString(), contentType: 'application/x-www-form-urlencoded', headers });
  /** Creates an API user as the admin (a step-up first: tests move the clock past the admin's sign-in). */
  const createApiUser = async (groups: string[], name = 'Robot') => {
    await reauthenticate(admin);
    const res = await admin.post('/users/api', { name, groups });
    expect(res.status, res.text).toBe(201);
    return res.body as { user: { id: string; groups: string[] }; clientId: string; clientSecret: string };
  };
  const tokenFor = async (clientId: string, clientSecret: string) => {
    const res = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) });
    expect(res.status, res.text).toBe(200);
    return res.body.access_token as string;
  };
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  const expectOAuthError = (res: HttpResult, status: number, error: string) => {
    expectClientError(res, status);
    expect(res.body.error).toBe(error);
    expect(typeof res.body.error_description).toBe('string');
    expect(res.headers.get('cache-control')).toBe('no-store');
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const boss = await make({ groups: ['admin'] });
    adminId = boss.id;
    adminEmail = boss.email;
    admin = anon();
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    expect((await admin.post('/groups', { alias: 'readers', name: 'Readers', permissions: ['users.read'] })).status).toBe(201);
    expect((await admin.post('/groups', { alias: 'managers', name: 'Managers', permissions: ['users.read', 'users.manage'] })).status).toBe(201);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('POST /users/api shows the secret once and stores only its SHA-256 (OWASP ASVS 4.0 2.10.4)', async () => {
    const created = await createApiUser(['readers'], 'Nightly export');
    expect(created.clientId).toMatch(/^boc_[A-Za-z0-9_-]{24}$/);
    expect(created.clientSecret).toMatch(/^bocs_[A-Za-z0-9_-]{43}$/);
    expect(created.user).toMatchObject({ name: 'Nightly export', groups: ['readers'] });
    const dataSource = ctx.app.get(DataSource);
    const [row] = await dataSource.query(`SELECT * FROM backoffice_api_client WHERE client_id = $1`, [created.clientId]);
    expect(row.secret_hash).toBe(sha256(created.clientSecret));
    const dump = JSON.stringify(await dataSource.query(`SELECT * FROM backoffice_api_client`)) + JSON.stringify(await dataSource.query(`SELECT * FROM backoffice_audit_entry`));
    expect(dump).not.toContain(created.clientSecret);
    const list = await admin.get('/users/api');
    const listed = list.body.items.find((u: { clientId: string }) => u.clientId === created.clientId);
    expect(listed).toMatchObject({ id: created.user.id, name: 'Nightly export', groups: ['readers'], disabled: false });
    expect(JSON.stringify(list.body)).not.toContain(created.clientSecret);
  });

  it('OWASP ASVS 5.0 7.5.3: creating an API user and rotating its secret mint a lasting credential, so they need a recent sign-in; without one nothing is created or rotated', async () => {
    const existing = await createApiUser(['readers']);
    const managerRobot = await createApiUser(['managers'], 'Manager robot');
    const dataSource = ctx.app.get(DataSource);
    const clients = () => dataSource.query(`SELECT client_id, secret_hash, previous_secret_hash FROM backoffice_api_client ORDER BY client_id`);
    const before = await clients();
    const stolen = await signedInClient(ctx, adminEmail);
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)
    const robotToken = await tokenFor(managerRobot.clientId, managerRobot.clientSecret);
    for (const refused of [
      await stolen.post('/users/api', { name: 'Backdoor', groups: ['readers'] }),
      await stolen.post(`/users/api/${existing.user.id}/rotate-secret`, {}),
      await anon().post('/users/api', { name: 'Backdoor', groups: ['readers'] }, bearer(robotToken)),
      await anon().post(`/users/api/${existing.user.id}/rotate-secret`, {}, bearer(robotToken)),
    ]) {
      expectClientError(refused, 401);
      expect(refused.body).toEqual({ statusCode: 401, code: 'reauthentication_required', message: expect.any(String) });
    }
    expect(await clients()).toEqual(before);
    expect(await tokenFor(existing.clientId, existing.clientSecret)).toMatch(/^boat_/); // the secret still works
    await reauthenticate(stolen);
    const created = await stolen.post('/users/api', { name: 'Backdoor', groups: ['readers'] });
    expect(created.status, created.text).toBe(201);
    expect(created.body.clientSecret).toMatch(/^bocs_/);
    const rotated = await stolen.post(`/users/api/${existing.user.id}/rotate-secret`, {});
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.clientSecret).not.toBe(existing.clientSecret);
  });

  it('issues a bearer token (form + Basic, form body credentials, JSON) that reads /users with the group\'s permissions and nothing more', async () => {
    const { clientId, clientSecret } = await createApiUser(['readers']);
    const viaBasic = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) });
    expect(viaBasic.status, viaBasic.text).toBe(200);
    expect(viaBasic.body).toEqual({ access_token: expect.stringMatching(/^boat_/), token_type: 'Bearer', expires_in: 600 });
    expect(viaBasic.headers.get('cache-control')).toBe('no-store');
    expect(viaBasic.headers.get('pragma')).toBe('no-cache');
    expect(viaBasic.setCookies).toEqual([]);
    const viaForm = await tokenRequest({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope: 'anything' });
    expect(viaForm.status, viaForm.text).toBe(200);
    const viaJson = await anon().post('/auth/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
    expect(viaJson.status, viaJson.text).toBe(200);
    expect(new Set([viaBasic.body.access_token, viaForm.body.access_token, viaJson.body.access_token]).size).toBe(3);
    const token = viaJson.body.access_token;
    const [stored] = await ctx.app.get(DataSource).query(`SELECT token_hash FROM backoffice_access_token WHERE token_hash = $1`, [sha256(token)]);
    expect(stored).toBeTruthy();
    const users = await anon().get('/users', bearer(token));
    expect(users.status, users.text).toBe(200);
    expect(users.body.items.some((u: { id: string }) => u.id === adminId)).toBe(true);
    expectClientError(await anon().get('/audit', bearer(token)), 403);
    expectClientError(await anon().get('/groups', bearer(token)), 403);
    // Own-account routes are for people: a bearer token is not a session.
    expectClientError(await anon().get('/auth/me', bearer(token)), 401);
    expectClientError(await anon().get('/auth/sessions', bearer(token)), 401);
  });

  it('bearer requests need no cookie and no XSRF header; cookie requests still do', async () => {
    const { clientId, clientSecret, user } = await createApiUser(['managers']);
    const token = await tokenFor(clientId, clientSecret);
    const target = await make({ groups: ['editor'] });
    const res = await anon().post(`/users/${target.id}/disable`, undefined, bearer(token));
    expect(res.status, res.text).toBe(200);
    expect(res.body.state).toBe('disabled');
    const [entry] = (await admin.get(`/audit?userId=${target.id}`)).body.items.filter((e: { event: string }) => e.event === 'backoffice.user.disabled');
    expect(entry.performingUserId).toBe(user.id);
  });

  it('refuses a token in the query string, malformed and unknown tokens, with 4xx', async () => {
    const { clientId, clientSecret } = await createApiUser(['readers']);
    const token = await tokenFor(clientId, clientSecret);
    const inQuery = await anon().get(`/users?access_token=${token}`);
    expectClientError(inQuery, 400);
    expect(inQuery.body.code).toBe('token_in_query');
    expectClientError(await anon().get(`/users?skip=0&access_token=${token}`, bearer(token)), 400);
    for (const header of ['Bearer', 'Bearer ', 'Bearer x', `Bearer ${token}x`, `Bearer boat_${'A'.repeat(43)}`, `Bearer ${'é'.repeat(5000)}`, `bearer ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`]) {
      const res = await anon().get('/users', { headers: { authorization: header } });
      expectClientError(res, 401);
      expect(res.body.code).toBe('invalid_token');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
    }
    expect((await anon().get('/users', { headers: { authorization: `bearer ${token}` } })).status).toBe(200);
  });

  it('tokens expire after 10 minutes; a disabled API user\'s tokens stop at once and it gets no new one', async () => {
    const { clientId, clientSecret, user } = await createApiUser(['readers']);
    const token = await tokenFor(clientId, clientSecret);
    ctx.clock.advance(9 * 60_000);
    expect((await anon().get('/users', bearer(token))).status).toBe(200);
    ctx.clock.advance(61_000);
    expectClientError(await anon().get('/users', bearer(token)), 401);
    const fresh = await tokenFor(clientId, clientSecret);
    expect((await admin.post(`/users/${user.id}/disable`)).status).toBe(200);
    const refused = await anon().get('/users', bearer(fresh));
    expectClientError(refused, 401);
    expect(refused.body.code).toBe('invalid_token');
    expectOAuthError(await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) }), 401, 'invalid_client');
    await reauthenticate(admin); // an enable needs a recent sign-in (enable-step-up.spec.ts); the clock moved 10 minutes
    expect((await admin.post(`/users/${user.id}/enable`)).status).toBe(200);
    // Tokens revoked at disable stay dead after enable.
    expectClientError(await anon().get('/users', bearer(fresh)), 401);
    expect((await anon().get('/users', bearer(await tokenFor(clientId, clientSecret)))).status).toBe(200);
  });

  it('token endpoint errors follow RFC 6749 5.2 and keep a code; never 5xx', async () => {
    const { clientId, clientSecret } = await createApiUser(['readers']);
    expectOAuthError(await tokenRequest({ client_id: clientId, client_secret: clientSecret }), 400, 'invalid_request');
    expectOAuthError(await tokenRequest({ grant_type: 'password', client_id: clientId, client_secret: clientSecret }), 400, 'unsupported_grant_type');
    expectOAuthError(await tokenRequest({ grant_type: 'client_credentials' }), 400, 'invalid_request');
    expectOAuthError(await tokenRequest({ grant_type: 'client_credentials', client_id: clientId }), 400, 'invalid_request');
    expectOAuthError(
      await tokenRequest({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }, { authorization: basic(clientId, clientSecret) }),
      400,
      'invalid_request',
    );
    const wrong = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, `bocs_${'A'.repeat(43)}`) });
    expectOAuthError(wrong, 401, 'invalid_client');
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic /);
    const unknown = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(`boc_${'B'.repeat(24)}`, clientSecret) });
    expectOAuthError(unknown, 401, 'invalid_client');
    expect(unknown.text).toBe(wrong.text); // no client enumeration
    const inQuery = await anon().request('POST', `/auth/token?client_secret=${clientSecret}`, {
      raw: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId }).toString(),
      contentType: 'application/x-www-form-urlencoded',
    });
    expectOAuthError(inQuery, 400, 'invalid_request');
    expect(inQuery.body.code).toBe('credentials_in_query');
    const bad: Array<{ raw: string; contentType: string; status?: number }> = [
      { raw: 'grant_type=client_credentials', contentType: 'text/plain', status: 415 },
      { raw: '{"grant_type":', contentType: 'application/json', status: 400 },
      { raw: 'null', contentType: 'application/json', status: 400 },
      { raw: '[1,2]', contentType: 'application/json', status: 400 },
      { raw: JSON.stringify({ grant_type: ['client_credentials'], client_id: clientId, client_secret: clientSecret }), contentType: 'application/json' },
      { raw: JSON.stringify({ grant_type: 'client_credentials', client_id: { $gt: '' }, client_secret: clientSecret }), contentType: 'application/json' },
      { raw: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: 'x'.repeat(100_000) }), contentType: 'application/json' },
      { raw: JSON.stringify({ grant_type: 'client_credentials', client_id: 'ñ😀\u0000', client_secret: clientSecret }), contentType: 'application/json' },
      { raw: `grant_type=client_credentials&client_id=${clientId}&client_id=${clientId}&client_secret=${clientSecret}`, contentType: 'application/x-www-form-urlencoded' },
      { raw: `grant_type=client_credentials&client_id[a]=1&client_secret=${clientSecret}`, contentType: 'application/x-www-form-urlencoded' },
    ];
    for (const c of bad) {
      const res = await anon().request('POST', '/auth/token', { raw: c.raw, contentType: c.contentType });
      expectClientError(res, c.status);
    }
    for (const header of ['Basic', 'Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, `Basic ${Buffer.from('%E0%A4%A:x').toString('base64')}`]) {
      expectClientError(await tokenRequest({ grant_type: 'client_credentials' }, { authorization: header }));
    }
  });

  it('OWASP ASVS 5.0 16.3.1: a token request for an unknown client id is audited as refused (reason unknown_client), with the same 401 as a wrong secret', async () => {
    const { clientSecret } = await createApiUser(['readers']);
    const unknownId = `boc_${randomBytes(18).toString('base64url')}`;
    const refusedFor = async (clientId: string | null) =>
      (await admin.get('/audit?event=backoffice.api-user.token.refused&take=200')).body.items.filter(
        (e: { details: { clientId: string | null } }) => e.details.clientId === clientId,
      );
    const before = (await refusedFor(null)).length;
    expectOAuthError(await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(unknownId, clientSecret) }), 401, 'invalid_client');
    const [entry] = await refusedFor(unknownId);
    expect(entry, 'an unknown client id leaves an audit entry').toBeDefined();
    expect(entry).toMatchObject({ affectedUserId: null, performingUserId: null, details: { clientId: unknownId, reason: 'unknown_client' } });
    expect(JSON.stringify(entry)).not.toContain(clientSecret);
    // Something that is no client id (e.g. a secret pasted into the wrong field) is not written into the trail.
    expectOAuthError(await tokenRequest({ grant_type: 'client_credentials', client_id: clientSecret, client_secret: clientSecret }), 401, 'invalid_client');
    const withoutId = await refusedFor(null);
    expect(withoutId).toHaveLength(before + 1);
    expect(withoutId[0].details.reason).toBe('unknown_client');
    expect(JSON.stringify(withoutId)).not.toContain(clientSecret);
  });

  it('OWASP ASVS 5.0 16.3.1, 2.2.1 (4.0): a malformed secret for a known client id is a wrong secret: audited invalid_secret against the API user, counted toward no lockout, same 401 as an unknown client', async () => {
    const { clientId, clientSecret, user } = await createApiUser(['readers']);
    const dataSource = ctx.app.get(DataSource);
    const failedCount = async () => Number((await dataSource.query(`SELECT access_failed_count FROM backoffice_api_client WHERE client_id = $1`, [clientId]))[0].access_failed_count);
    const unknown = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(`boc_${randomBytes(18).toString('base64url')}`, clientSecret) });
    expectOAuthError(unknown, 401, 'invalid_client');
    const malformed = [clientSecret.slice(0, -1), clientId, 'x'];
    for (const secret of malformed) {
      const res = await tokenRequest({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret });
      expectOAuthError(res, 401, 'invalid_client');
      expect(res.body, 'no answer tells a known client from an unknown one').toEqual(unknown.body);
      expect(res.headers.get('www-authenticate')).toBe(unknown.headers.get('www-authenticate'));
    }
    expect(await failedCount(), 'a wrong secret is counted toward no lockout').toBe(0);
    const refused = (await admin.get(`/audit?userId=${user.id}&event=backoffice.api-user.token.refused&take=50`)).body.items;
    expect(refused).toHaveLength(malformed.length);
    for (const entry of refused) expect(entry).toMatchObject({ affectedUserId: user.id, details: { clientId, reason: 'invalid_secret' } });
    const namingClient = (await admin.get('/audit?event=backoffice.api-user.token.refused&take=200')).body.items.filter(
      (e: { details: { clientId: string | null; reason: string } }) => e.details.clientId === clientId && e.details.reason === 'unknown_client',
    );
    expect(namingClient, 'a known client is never audited as unknown').toHaveLength(0);
    expect(JSON.stringify(refused)).not.toContain(clientSecret.slice(0, -1));
    expect((await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) })).status).toBe(200);
    expect(await failedCount()).toBe(0);
  });

  it('OWASP ASVS 4.0 2.2.1 / 5.0 6.3.x: wrong secrets do not lock the client (a 256-bit secret is not guessed; a lockout would only let whoever knows the client id cut the integration off): after 6 wrong ones the right secret still gets a token; each wrong one audited invalid_secret', async () => {
    const { clientId, clientSecret, user } = await createApiUser(['readers']);
    const wrongSecret = `bocs_${'C'.repeat(43)}`;
    // Five at once (a count would race to the lock), then a malformed one: more than lockout.maxFailedAccessAttempts (5).
    const results = await Promise.all(Array.from({ length: 5 }, () => tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, wrongSecret) })));
    results.push(await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, 'not-a-secret') }));
    for (const r of results) expectOAuthError(r, 401, 'invalid_client');
    const right = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) });
    expect(right.status, right.text).toBe(200);
    expect((await anon().get('/users?take=1', bearer(right.body.access_token))).status).toBe(200);
    const [row] = await ctx.app.get(DataSource).query(`SELECT access_failed_count, lockout_end FROM backoffice_api_client WHERE client_id = $1`, [clientId]);
    expect(row).toEqual({ access_failed_count: 0, lockout_end: null });
    expect(ctx.userManager.isLockedOut((await ctx.userManager.findById(user.id))!)).toBe(false);
    const reasons = (await admin.get(`/audit?userId=${user.id}&take=50`)).body.items
      .filter((e: { event: string }) => e.event === 'backoffice.api-user.token.refused')
      .map((e: { details: { reason: string } }) => e.details.reason);
    expect(reasons).toEqual(Array(6).fill('invalid_secret'));
  });

  it('V2.2.1: a client lockout already stored (counted before wrong secrets stopped counting, or written by a host store) still refuses the right secret (not checked while locked) until an admin\'s unlock (POST /users/:id/unlock) ends it', async () => {
    const { clientId, clientSecret, user } = await createApiUser(['readers']);
    const dataSource = ctx.app.get(DataSource);
    await dataSource.query(`UPDATE backoffice_api_client SET access_failed_count = 0, lockout_end = $2 WHERE client_id = $1`, [clientId, new Date(ctx.clock.now().getTime() + 3_600_000)]);
    expectOAuthError(await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) }), 401, 'invalid_client');
    const reasons = (await admin.get(`/audit?userId=${user.id}&event=backoffice.api-user.token.refused&take=50`)).body.items.map((e: { details: { reason: string } }) => e.details.reason);
    expect(reasons).toEqual(['locked_out']);
    const unlocked = await admin.post(`/users/${user.id}/unlock`);
    expect(unlocked.status, unlocked.text).toBe(200);
    const res = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) });
    expect(res.status, res.text).toBe(200);
    expect((await anon().get('/users?take=1', bearer(res.body.access_token))).status).toBe(200);
  });

  it('V2.2.1: an API user an admin or its host locked (userManager.setLockoutEnd) or disabled stays refused: wrong secrets before or during the lock change nothing, the right secret gets the same 401', async () => {
    const locked = await createApiUser(['readers'], 'Locked robot');
    const disabled = await createApiUser(['readers'], 'Disabled robot');
    const wrong = (clientId: string) => tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, `bocs_${'B'.repeat(43)}`) });
    const right = ({ clientId, clientSecret }: { clientId: string; clientSecret: string }) =>
      tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) });
    for (let i = 0; i < 6; i++) expectOAuthError(await wrong(locked.clientId), 401, 'invalid_client');
    const stored = (await ctx.userManager.findById(locked.user.id))!;
    expect((await ctx.userManager.setLockoutEnd(stored, new Date(ctx.clock.now().getTime() + 3_600_000))).succeeded).toBe(true);
    expect((await admin.post(`/users/${disabled.user.id}/disable`)).status).toBe(200);
    for (const robot of [locked, disabled]) {
      for (let i = 0; i < 6; i++) expectOAuthError(await wrong(robot.clientId), 401, 'invalid_client');
      const refused = await right(robot);
      expectOAuthError(refused, 401, 'invalid_client');
      expect(refused.body.access_token).toBeUndefined();
    }
    // The host's lock is the user's own (not a count of wrong secrets): an unlock ends it; the disabled one stays refused.
    expect((await admin.post(`/users/${locked.user.id}/unlock`)).status).toBe(200);
    expect((await right(locked)).status).toBe(200);
    expectOAuthError(await right(disabled), 401, 'invalid_client');
  });

  it('OWASP ASVS 4.0 3.3.4: an admin\'s "sign out everywhere" (DELETE /users/:id/sessions) of an API user ends its bearer tokens; its secret still gets new ones', async () => {
    const { clientId, clientSecret, user } = await createApiUser(['readers']);
    const tokens = [await tokenFor(clientId, clientSecret), await tokenFor(clientId, clientSecret)];
    for (const token of tokens) expect((await anon().get('/users?take=1', bearer(token))).status).toBe(200);
    const other = await createApiUser(['readers'], 'Other robot');
    const otherToken = await tokenFor(other.clientId, other.clientSecret);
    const revoked = await admin.delete(`/users/${user.id}/sessions`);
    expect(revoked.status, revoked.text).toBe(204);
    for (const token of tokens) expectClientError(await anon().get('/users?take=1', bearer(token)), 401);
    // Only that API user's tokens; the client itself keeps working (rotate the secret to end that too).
    expect((await anon().get('/users?take=1', bearer(otherToken))).status).toBe(200);
    expect((await anon().get('/users?take=1', bearer(await tokenFor(clientId, clientSecret)))).status).toBe(200);
    const audit = await admin.get(`/audit?userId=${user.id}&event=backoffice.user.sessions.revoked`);
    expect(audit.status, audit.text).toBe(200);
    expect(audit.body.items[0]?.details?.count).toBe(2);
  });

  it('secret rotation: the previous secret works during the overlap only; overlap 0 ends it at once', async () => {
    const { clientId, clientSecret, user } = await createApiUser(['readers']);
    const rotated = await admin.post(`/users/api/${user.id}/rotate-secret`, { overlapMinutes: 5 });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.clientId).toBe(clientId);
    expect(rotated.body.clientSecret).not.toBe(clientSecret);
    expect(Date.parse(rotated.body.previousSecretExpiresAt) - ctx.clock.now().getTime()).toBeGreaterThan(4 * 60_000);
    expect((await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) })).status).toBe(200);
    expect((await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, rotated.body.clientSecret) })).status).toBe(200);
    ctx.clock.advance(5 * 60_000 + 1000);
    expectOAuthError(await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) }), 401, 'invalid_client');
    await reauthenticate(admin); // the clock moved past the step-up window: rotating mints a credential
    const again = await admin.post(`/users/api/${user.id}/rotate-secret`, {});
    expect(again.body.previousSecretExpiresAt).toBeNull();
    expectOAuthError(await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, rotated.body.clientSecret) }), 401, 'invalid_client');
    expect((await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, again.body.clientSecret) })).status).toBe(200);
    const audit = (await admin.get(`/audit?userId=${user.id}`)).body.items.filter((e: { event: string }) => e.event === 'backoffice.api-user.secret.rotated');
    expect(audit).toHaveLength(2);
    expect(JSON.stringify(audit)).not.toContain(again.body.clientSecret);
    // Bad input
    for (const body of [{ overlapMinutes: -1 }, { overlapMinutes: 'x' }, { overlapMinutes: 1.5 }, { overlapMinutes: 20_000 }, { extra: 1 }]) {
      expectClientError(await admin.post(`/users/api/${user.id}/rotate-secret`, body), 400);
    }
    expectClientError(await admin.post(`/users/api/${adminId}/rotate-secret`, {}), 404);
    expectClientError(await admin.post(`/users/api/not-a-uuid/rotate-secret`, {}), 404);
  });

  it('concurrency: 20 parallel token requests with one secret all succeed with distinct working tokens', async () => {
    const { clientId, clientSecret } = await createApiUser(['readers']);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0
          ? tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) })
          : anon().post('/auth/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    const tokens = new Set(results.map((r) => r.body.access_token));
    expect(tokens.size).toBe(20);
    for (const token of tokens) expect((await anon().get('/users?take=1', bearer(token))).status).toBe(200);
  });

  it('API users never sign in with a password and never count as people (lists, counts, last-admin rule)', async () => {
    const robot = await createApiUser(['admin'], 'Admin robot');
    const stored = (await ctx.userManager.findById(robot.user.id))!;
    expect(stored.kind).toBe('api');
    expect(stored.passwordHash).toBeNull();
    expectClientError(await anon().login(stored.username, TEST_PASSWORD), 401);
    expectClientError(await anon().login(stored.email, ''), 400);
    const people = await ctx.userManager.store.count();
    expect(people).toBe(Number((await ctx.app.get(DataSource).query(`SELECT count(*) AS n FROM backoffice_user WHERE kind = 'person'`))[0].n));
    const listed = await admin.get('/users?take=100');
    expect(listed.body.items.map((u: { id: string }) => u.id)).not.toContain(robot.user.id);
    // The only person in admin stays the last admin even with an API user in admin.
    const onlyPersonAdmins = Number((await ctx.app.get(DataSource).query(
      `SELECT count(*) AS n FROM backoffice_user u JOIN backoffice_user_group ug ON ug.user_id = u.id JOIN backoffice_group g ON g.id = ug.group_id WHERE g.alias = 'admin' AND u.kind = 'person' AND u.is_approved`,
    ))[0].n);
    expect(onlyPersonAdmins).toBe(1);
    const last = await admin.post(`/users/${adminId}/disable`);
    expectClientError(last, 409);
    expect(last.body.code).toBe('last_admin');
    // ... and an API user in admin can be removed while only one person admin is left.
    expect((await admin.post(`/users/${robot.user.id}/disable`)).status).toBe(200);
    expect((await admin.request('PUT', `/users/${robot.user.id}/groups`, { body: { groups: ['readers'] } })).status).toBe(200);
  });

  it('an API user locked by its host (userManager.setLockoutEnd) gets 401 invalid_client, not a token that every request refuses', async () => {
    const { clientId, clientSecret, user } = await createApiUser(['readers']);
    const stored = (await ctx.userManager.findById(user.id))!;
    expect((await ctx.userManager.setLockoutEnd(stored, new Date(ctx.clock.now().getTime() + 3_600_000))).succeeded).toBe(true);
    const res = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(clientId, clientSecret) });
    if (res.status === 200) expect((await anon().get('/users?take=1', bearer(res.body.access_token))).status).toBe(200);
    expectOAuthError(res, 401, 'invalid_client');
    expect((await ctx.userManager.setLockoutEnd((await ctx.userManager.findById(user.id))!, null)).succeeded).toBe(true);
    expect((await anon().get('/users?take=1', bearer(await tokenFor(clientId, clientSecret)))).status).toBe(200);
  });

  it('POST /users/api refuses bad input and non-holders of users.manage, and cannot grant more than the caller holds', async () => {
    for (const body of [{}, { name: 'x' }, { groups: [] }, { name: '', groups: [] }, { name: 'x'.repeat(257), groups: [] }, { name: 'x', groups: ['nope'] }, { name: 'x', groups: 'admin' }, { name: 5, groups: [] }, { name: 'x', groups: [], extra: 1 }]) {
      expectClientError(await admin.post('/users/api', body), 400);
    }
    for (const raw of ['{"a":', 'null', '[]']) expectClientError(await admin.request('POST', '/users/api', { raw }), 400);
    const unicode = await admin.post('/users/api', { name: 'Robot 日本 😀', groups: [] });
    expect(unicode.status).toBe(201);
    expect(unicode.body.user.name).toBe('Robot 日本 😀');
    const reader = anon();
    expect((await reader.login((await make({ groups: ['readers'] })).email, TEST_PASSWORD)).status).toBe(200);
    expectClientError(await reader.post('/users/api', { name: 'x', groups: [] }), 403);
    expectClientError(await reader.get('/users/api'), 403);
    const manager = anon();
    expect((await manager.login((await make({ groups: ['managers'] })).email, TEST_PASSWORD)).status).toBe(200);
    expectClientError(await manager.post('/users/api', { name: 'x', groups: ['admin'] }), 403);
    expect((await manager.post('/users/api', { name: 'x', groups: ['readers'] })).status).toBe(201);
  });
});

describe('API users: token rate limit', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { tokenPerIpAndClient: 3 } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('answers 429 with Retry-After past tokenPerIpAndClient per minute, for right and wrong secrets alike', async () => {
    const admin = (await ctx.userManager.createUser({ email: 'rl-admin@example.com', name: 'A', password: TEST_PASSWORD, groups: ['admin'] })).value!;
    const http = new HttpClient(ctx.url);
    expect((await http.login(admin.email, TEST_PASSWORD)).status).toBe(200);
    const { clientId, clientSecret } = (await http.post('/users/api', { name: 'R', groups: [] })).body;
    const send = (secret: string) => new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: secret });
    expect((await send(`bocs_${'D'.repeat(43)}`)).status).toBe(401);
    expect((await send(clientSecret)).status).toBe(200);
    expect((await send(clientSecret)).status).toBe(200);
    const limited = await send(clientSecret);
    expectClientError(limited, 429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

/** Holds the next token write until released: a token request caught between its secret check and its write. */
class GatedApiClientStore extends TypeOrmBackOfficeApiClientStore {
  static gate: { entered: () => void; release: Promise<void> } | null = null;
  /** Answers a written token as a host store written before the write answered its expiry would: `true` or nothing. */
  static legacyAnswer: { value: true | undefined } | null = null;

  override async createAccessToken(...args: Parameters<TypeOrmBackOfficeApiClientStore['createAccessToken']>): Promise<boolean | Date | void> {
    const gate = GatedApiClientStore.gate;
    GatedApiClientStore.gate = null;
    if (gate) {
      gate.entered();
      await gate.release;
    }
    const written = await super.createAccessToken(...args);
    const legacy = GatedApiClientStore.legacyAnswer;
    return legacy && written !== false ? legacy.value : written;
  }
}

describe('API users: revocation races with the client credentials grant', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, apiClientStore: GatedApiClientStore } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** Runs `revoke` while a token request with the right secret waits between its checks and its write; answers that request's token, if any. */
  const tokenIssuedDuring = async (clientId: string, clientSecret: string, revoke: () => Promise<unknown>): Promise<string | null> => {
    let entered!: () => void;
    let release!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    GatedApiClientStore.gate = { entered, release: new Promise<void>((resolve) => (release = resolve)) };
    const request = new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
    await inside;
    await revoke();
    release();
    const res = await request;
    expect([200, 401], res.text).toContain(res.status);
    return res.status === 200 ? res.body.access_token : null;
  };

  it('V3.3.1: a secret rotation (no overlap) leaves no working token, even one whose request checked the old secret just before', async () => {
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    const { user, clientId, clientSecret } = await apiUsers.create({ name: 'Raced', groups: [] });
    const token = await tokenIssuedDuring(clientId, clientSecret, () => apiUsers.rotateSecret(user.id, 0));
    if (token) expect(await apiUsers.authenticateBearer(token)).toBeNull();
  });

  it('V2.2.1: wrong secrets sent while a request with the right secret is under way do not refuse it (they lock nothing)', async () => {
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    const { clientId, clientSecret } = await apiUsers.create({ name: 'Raced', groups: [] });
    const token = await tokenIssuedDuring(clientId, clientSecret, async () => {
      for (let i = 0; i < 6; i++) {
        const wrong = await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: `bocs_${'E'.repeat(43)}` });
        expect(wrong.status).toBe(401);
      }
    });
    expect(token).not.toBeNull();
    expect(await apiUsers.authenticateBearer(token!)).not.toBeNull();
  });

  it('V2.2.1: a lock of the API user (userManager.setLockoutEnd) that begins while a request with the right secret is under way leaves no working token', async () => {
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    const { user, clientId, clientSecret } = await apiUsers.create({ name: 'Raced', groups: [] });
    const token = await tokenIssuedDuring(clientId, clientSecret, () =>
      ctx.userManager.setLockoutEnd(user, new Date(ctx.clock.now().getTime() + 3_600_000)),
    );
    if (token) expect(await apiUsers.authenticateBearer(token)).toBeNull();
  });

  it('a host store whose token write answers true or nothing (written before it answered the expiry) still gets the requested lifetime as expires_in', async () => {
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    const { clientId, clientSecret } = await apiUsers.create({ name: 'Legacy store', groups: [] });
    try {
      for (const value of [true, undefined] as const) {
        GatedApiClientStore.legacyAnswer = { value };
        const res = await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
        expect([value, res.status, res.body.expires_in], res.text).toEqual([value, 200, 600]);
      }
    } finally {
      GatedApiClientStore.legacyAnswer = null;
    }
  });

  it('V3.3.1: a disable leaves no token that enabling again revives, even one whose request checked the user just before', async () => {
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    const { user, clientId, clientSecret } = await apiUsers.create({ name: 'Raced', groups: [] });
    const token = await tokenIssuedDuring(clientId, clientSecret, () => ctx.userManager.setApproved(user, false));
    expect((await ctx.userManager.setApproved(user, true)).succeeded).toBe(true);
    if (token) expect(await apiUsers.authenticateBearer(token)).toBeNull();
  });
});
