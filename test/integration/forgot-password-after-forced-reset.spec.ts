import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import { Mailbox } from '../support/mailbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { expectClientError } from '../support/bad-input.js';

describe('forgot-password after an admin forced a password reset (OWASP ASVS 4.0 V2.5)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'forcedfp');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('an active user whose forced-reset link expired (1 hour) gets a new link from forgot-password', async () => {
    const boss = await make({ groups: ['admin'] });
    const admin = new HttpClient(ctx.url);
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    const user = await make({ email: 'forcedfp-forced@example.com' });
    expect((await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD)).status).toBe(200); // active
    expect((await admin.post(`/users/${user.id}/force-password-reset`)).status).toBe(200);
    expect(Mailbox.messages.filter((m) => m.to === user.email && m.type === 'PasswordReset')).toHaveLength(1);
    ctx.clock.advance(2 * 3_600_000); // the link (passwordResetLifespanHours: 1) expired
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: user.email })).status).toBe(202);
    await drain();
    // README: "202 always; an email follows for active users"
    expect(Mailbox.messages.filter((m) => m.to === user.email && m.type === 'PasswordReset')).toHaveLength(2);
  });
});

describe('force password reset with allowPasswordReset: false (OWASP ASVS 4.0 V2.5)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'forcedoff');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, allowPasswordReset: false }, providers: [Mailbox] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('is refused (404 not_found, as forgot/reset answer) and changes nothing: its link would lead to the closed reset route and strand the user without a password', async () => {
    const boss = await make({ groups: ['admin'] });
    const admin = new HttpClient(ctx.url);
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    const user = await make({ email: 'forcedoff-user@example.com' });
    const session = new HttpClient(ctx.url);
    expect((await session.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const refused = await admin.post(`/users/${user.id}/force-password-reset`);
    expectClientError(refused, 404);
    expect(refused.body.code).toBe('not_found');
    expect(Mailbox.messages.filter((m) => m.to === user.email && m.type === 'PasswordReset')).toHaveLength(0);
    expect((await session.get('/auth/me')).status).toBe(200);
    expect((await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD)).status).toBe(200);
  });
});
