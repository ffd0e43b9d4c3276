import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const MAX_FAILED = 5;

/**
 * README: API users "have no interactive sign-in"; they authenticate with the client credentials grant, where a
 * wrong secret locks nothing either (api-users.spec.ts). Wrong passwords sent to POST /auth/login under an API user's name must not
 * lock the API user itself (which ends its live bearer tokens): anyone who knows a client id could otherwise
 * cut an integration off with a handful of requests.
 */
describe('password sign-in attempts under an API user\'s name (OWASP ASVS 4.0 2.2.1)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'apilock');
  const anon = () => new HttpClient(ctx.url);
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, lockout: { maxFailedAccessAttempts: MAX_FAILED } } });
    const boss = await make({ groups: ['admin'] });
    admin = anon();
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    expect((await admin.post('/groups', { alias: 'apilockreaders', name: 'Readers', permissions: ['users.read'] })).status).toBe(201);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('V2.2.1: wrong passwords at /auth/login for an API user\'s name do not lock the API user out: its bearer tokens and the token grant keep working', async () => {
    const created = await admin.post('/users/api', { name: 'Robot', groups: ['apilockreaders'] });
    expect(created.status, created.text).toBe(201);
    const { user, clientId, clientSecret } = created.body as { user: { id: string; username: string }; clientId: string; clientSecret: string };
    const grant = () =>
      anon().request('POST', '/auth/token', { raw: 'grant_type=client_credentials', contentType: 'application/x-www-form-urlencoded', headers: { authorization: basic(clientId, clientSecret) } });
    const token = (await grant()).body.access_token as string;
    expect((await anon().get('/users?take=1', bearer(token))).status).toBe(200);

    const answers: number[] = [];
    for (let i = 0; i < MAX_FAILED + 1; i++) answers.push((await anon().login(user.username, `not a password ${i}`)).status);
    // The same answers as for any name: 401, then 423 once the name is locked (no oracle for API users either).
    expect(answers).toEqual([...Array(MAX_FAILED - 1).fill(401), 423, 423]);

    expect(ctx.userManager.isLockedOut((await ctx.userManager.findById(user.id))!)).toBe(false);
    expect((await anon().get('/users?take=1', bearer(token))).status).toBe(200);
    const fresh = await grant();
    expect(fresh.status, fresh.text).toBe(200);
    expect((await anon().get('/users?take=1', bearer(fresh.body.access_token))).status).toBe(200);
  });
});
