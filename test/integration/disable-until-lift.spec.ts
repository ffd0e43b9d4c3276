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

/**
 * OWASP ASVS 4.0 1.11.3 / 5.0 15.4.2: an import's isApproved is a disable (or enable) for good, as POST /users/:id/disable
 * without `until` and POST /users/:id/enable are. An `until` left from an earlier timed disable must not let the next
 * sign-in enable again (liftExpiredDisable, with no step-up) a user an import disabled.
 */
describe('an import disable is not lifted by a stale `until` of an earlier timed disable', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let bossEmail: string;
  const make = userFactory(() => ctx, 'untilimport');
  const anon = () => new HttpClient(ctx.url);
  /** A fresh admin session (a recent sign-in, so an import enabling a user passes its step-up). */
  const admin = async () => {
    const client = anon();
    expect((await client.login(bossEmail, TEST_PASSWORD)).status).toBe(200);
    return client;
  };
  const importApproval = async (user: { email: string }, isApproved: boolean | undefined) => {
    const res = await (await admin()).post('/users/import', { users: [{ email: user.email, name: 'Test User', groups: [], isApproved }], onConflict: 'update' });
    expect([res.status, res.body.results?.[0]?.outcome], res.text).toEqual([200, 'updated']);
  };
  const disableForAnHour = async (id: string) => {
    const until = new Date(ctx.clock.now().getTime() + 3_600_000).toISOString();
    const res = await (await admin()).post(`/users/${id}/disable`, { reason: 'holiday', until });
    expect(res.status, res.text).toBe(200);
  };
  /** The user refused at sign-in, as stored and as the API shows them: disabled for good. */
  const expectDisabledForGood = async (user: { id: string; email: string }) => {
    const login = await anon().login(user.email, TEST_PASSWORD);
    expect([login.status, login.body?.code], login.text).toEqual([403, 'not_allowed']);
    const stored = (await ctx.userManager.findById(user.id))!;
    expect([stored.isApproved, stored.disabledUntil, stored.disabledReason]).toEqual([false, null, null]);
    const listed = await (await admin()).get(`/users?filter=${encodeURIComponent(user.email)}`);
    const shown = listed.body.items?.find((u: { id: string }) => u.id === user.id);
    expect([shown?.state, shown?.disabledUntil, shown?.disabledReason], listed.text).toEqual(['disabled', null, null]);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    bossEmail = (await make({ groups: ['admin'] })).email;
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('timed disable, import enable (clears the disable), then after `until` an import disable: the sign-in is refused and the user stays disabled', async () => {
    const user = await make({ groups: [] });
    await disableForAnHour(user.id);
    await importApproval(user, true);
    const enabled = (await ctx.userManager.findById(user.id))!;
    ctx.clock.advance(2 * 3_600_000);
    await importApproval(user, false);
    await expectDisabledForGood(user);
    // The import's enable was for good too (as POST /users/:id/enable): no end or reason of the disable it ended is kept.
    expect([enabled.isApproved, enabled.disabledUntil, enabled.disabledReason]).toEqual([true, null, null]);
  });

  it('a timed disable still running, then an import disable: it is a disable for good, so after the old `until` the sign-in is refused and the user stays disabled', async () => {
    const user = await make({ groups: [] });
    await disableForAnHour(user.id);
    await importApproval(user, false);
    ctx.clock.advance(2 * 3_600_000);
    await expectDisabledForGood(user);
  });

  it('a timed disable that has ended, then an import disable: the sign-in is refused and the user stays disabled', async () => {
    const user = await make({ groups: [] });
    await disableForAnHour(user.id);
    ctx.clock.advance(2 * 3_600_000);
    // A reset link the user got once the disable had ended: the import's disable voids it, as POST /users/:id/disable does.
    const link = await ctx.userManager.generatePasswordResetToken((await ctx.userManager.findById(user.id))!);
    // A record without isApproved changes nothing of it: the link stays.
    await importApproval(user, undefined);
    expect(await ctx.userManager.verifyUserToken((await ctx.userManager.findById(user.id))!, 'password_reset', link)).toBe(true);
    await importApproval(user, false);
    await expectDisabledForGood(user);
    expect(await ctx.userManager.verifyUserToken((await ctx.userManager.findById(user.id))!, 'password_reset', link)).toBe(false);
  });
});
