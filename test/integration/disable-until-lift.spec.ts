import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** README: POST /users/:id/disable { until }: "after `until` the next sign-in enables the user again". */
describe('a disable with `until` that has passed is lifted by every sign-in path', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let bossEmail: string;
  const make = userFactory(() => ctx, 'untillift');
  const anon = () => new HttpClient(ctx.url);

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const boss = await make({ groups: ['admin'] });
    bossEmail = boss.email;
    admin = anon();
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    expect((await admin.post('/groups', { alias: 'untilreaders', name: 'Readers', permissions: ['users.read'] })).status).toBe(201);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  const disableForAnHour = async (id: string) => {
    admin = anon();
    expect((await admin.login(bossEmail, TEST_PASSWORD)).status).toBe(200);
    const until = new Date(ctx.clock.now().getTime() + 3_600_000).toISOString();
    const res = await admin.post(`/users/${id}/disable`, { reason: 'holiday', until });
    expect(res.status, res.text).toBe(200);
    ctx.clock.advance(2 * 3_600_000);
  };

  it('an API user gets a token again (its sign-in is the client credentials grant)', async () => {
    const created = await admin.post('/users/api', { name: 'Robot', groups: ['untilreaders'] });
    expect(created.status, created.text).toBe(201);
    await disableForAnHour(created.body.user.id);
    const token = await anon().request('POST', '/auth/token', {
      raw: 'grant_type=client_credentials',
      contentType: 'application/x-www-form-urlencoded',
      headers: { authorization: basic(created.body.clientId, created.body.clientSecret) },
    });
    expect(token.status, token.text).toBe(200);
  });

  it('a person can use the reset link that forgot-password mails them', async () => {
    const user = await make({ groups: [] });
    await disableForAnHour(user.id);
    // forgot-password sends the link: deriveUserState no longer says "disabled" once `until` has passed
    const fresh = (await ctx.userManager.findById(user.id))!;
    const token = await ctx.userManager.generatePasswordResetToken(fresh);
    const reset = await anon().post('/auth/reset-password', { userId: user.id, token, newPassword: 'a brand new passphrase 42' });
    expect(reset.status, reset.text).toBe(200);
  });
});
