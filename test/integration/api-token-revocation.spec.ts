import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, reauthenticate, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describe('API bearer tokens end with the secret and the state that issued them (OWASP ASVS 4.0 3.3.1, 3.5.2)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'apitok');
  const anon = () => new HttpClient(ctx.url);
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  const tokenFor = async (clientId: string, clientSecret: string) => {
    const res = await anon().request('POST', '/auth/token', {
      raw: 'grant_type=client_credentials', contentType: 'application/x-www-form-urlencoded', headers: { authorization: basic(clientId, clientSecret) },
    });
    expect(res.status, res.text).toBe(200);
    return res.body.access_token as string;
  };
  /** Creates an API user as the admin (a step-up first: tests move the clock past the admin's sign-in). */
  const createApiUser = async (groups: string[]) => {
    await reauthenticate(admin);
    const res = await admin.post('/users/api', { name: 'Robot', groups });
    expect(res.status, res.text).toBe(201);
    return res.body as { user: { id: string; email: string; groups: string[] }; clientId: string; clientSecret: string };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const boss = await make({ groups: ['admin'] });
    admin = anon();
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    expect((await admin.post('/groups', { alias: 'readers', name: 'Readers', permissions: ['users.read'] })).status).toBe(201);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('rotate-secret with overlapMinutes 0 ("the previous secret stops at once") revokes the tokens issued with the old secret', async () => {
    const { user, clientId, clientSecret } = await createApiUser(['readers']);
    const leaked = await tokenFor(clientId, clientSecret);
    expect((await anon().get('/users?take=1', bearer(leaked))).status).toBe(200);
    const rotated = await admin.post(`/users/api/${user.id}/rotate-secret`, { overlapMinutes: 0 });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.previousSecretExpiresAt).toBeNull();
    expect((await anon().get('/users?take=1', bearer(leaked))).status).toBe(401);
  });

  it('an API user disabled by an import (isApproved false) and enabled again does not get its old bearer tokens back', async () => {
    const { user, clientId, clientSecret } = await createApiUser(['readers']);
    const token = await tokenFor(clientId, clientSecret);
    const email = `${clientId.toLowerCase()}@api-users.invalid`;
    const imported = await admin.post('/users/import', { users: [{ email, name: 'Robot', groups: ['readers'], isApproved: false }], onConflict: 'update' });
    expect(imported.status, imported.text).toBe(200);
    expect(imported.body.results[0].outcome).toBe('updated');
    expect((await anon().get('/users?take=1', bearer(token))).status).toBe(401);
    expect((await admin.post(`/users/${user.id}/enable`, {})).status).toBe(200);
    // README: "disabling ends its tokens at once" — a token from before the disable must stay dead.
    expect((await anon().get('/users?take=1', bearer(token))).status).toBe(401);
  });

  it('a rotation with an overlap revokes the tokens issued so far; the previous secret gets tokens that end with the overlap', async () => {
    const { user, clientId, clientSecret } = await createApiUser(['readers']);
    const before = await tokenFor(clientId, clientSecret);
    const rotated = await admin.post(`/users/api/${user.id}/rotate-secret`, { overlapMinutes: 5 });
    expect(rotated.status, rotated.text).toBe(200);
    expect((await anon().get('/users?take=1', bearer(before))).status).toBe(401);
    const duringOverlap = await tokenFor(clientId, clientSecret); // the previous secret, still accepted
    expect((await anon().get('/users?take=1', bearer(duringOverlap))).status).toBe(200);
    const fresh = await tokenFor(clientId, rotated.body.clientSecret);
    ctx.clock.advance(6 * 60_000); // the overlap ended; the token lifetime has not
    expect((await anon().get('/users?take=1', bearer(duringOverlap))).status).toBe(401);
    expect((await anon().get('/users?take=1', bearer(fresh))).status).toBe(200);
  });

  it('a disable through the manager API (not the HTTP endpoint) revokes the bearer tokens too', async () => {
    const { user, clientId, clientSecret } = await createApiUser(['readers']);
    const token = await tokenFor(clientId, clientSecret);
    const loaded = (await ctx.userManager.findById(user.id))!;
    expect((await ctx.userManager.setApproved(loaded, false)).succeeded).toBe(true);
    expect((await ctx.userManager.setApproved(loaded, true)).succeeded).toBe(true);
    expect((await anon().get('/users?take=1', bearer(token))).status).toBe(401);
  });
});
