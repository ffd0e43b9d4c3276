import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { TestSmtpServer } from '../support/smtp.js';
import { freePort as closedPort } from '../support/private-postgres.js';
import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';

/** SMTP and Redis going away (the database faults are in database-faults.spec.ts). */
describe('Faults of the other services: SMTP down, Redis down', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('SMTP down (connection refused): invite answers 502 email_failed with the user kept, forgot-password still 202; once SMTP is back, resend works', async () => {
    const port = await closedPort();
    const ctx: IdentityApp = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, email: { smtpUrl: `smtp://127.0.0.1:${port}` } } });
    try {
      await ctx.userManager.createUser({ email: 'smtp-admin@example.com', name: 'Admin', password: TEST_PASSWORD, groups: ['admin'] });
      const admin = new HttpClient(ctx.url);
      expect((await admin.login('smtp-admin@example.com', TEST_PASSWORD)).status).toBe(200);
      const started = Date.now();
      const invite = await admin.post('/users/invite', { email: 'smtp-down@example.com', name: 'Down', groups: ['editor'] });
      expect(invite.status, invite.text).toBe(502);
      expect(invite.body).toMatchObject({ code: 'email_failed', user: { email: 'smtp-down@example.com', state: 'invited' } });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: 'smtp-admin@example.com' })).status).toBe(202);
      await ctx.app.get(BackOfficeBackgroundTasks).drain(); // the failed send is logged, nothing throws
      expect((await admin.get('/auth/me')).status).toBe(200);
    } finally {
      await ctx.close();
    }
    // the same database, SMTP back: the invited user can be sent a new link
    const smtp = await new TestSmtpServer().start();
    const again = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, email: { smtpUrl: smtp.url } } });
    try {
      const admin = new HttpClient(again.url);
      expect((await admin.login('smtp-admin@example.com', TEST_PASSWORD)).status).toBe(200);
      const user = await again.userManager.findByEmail('smtp-down@example.com');
      expect((await admin.post(`/users/${user!.id}/resend-invite`)).status).toBe(202);
      expect((await smtp.waitFor('smtp-down@example.com')).subject).toMatch(/invited/);
    } finally {
      await again.close();
      await smtp.stop();
    }
  });

  it('Redis down: rate limits fail open and the limited routes keep answering (lockout still protects accounts)', async () => {
    const port = await closedPort();
    const ctx = await createIdentityApp(db, { identity: { rateLimits: { redisUrl: `redis://127.0.0.1:${port}` } } });
    try {
      await ctx.userManager.createUser({ email: 'redis-down@example.com', name: 'R', password: TEST_PASSWORD });
      const timed = async (send: () => Promise<{ status: number }>, status: number) => {
        const started = Date.now();
        expect((await send()).status).toBe(status);
        expect(Date.now() - started).toBeLessThan(8_000); // no hang on the dead Redis
      };
      await timed(() => new HttpClient(ctx.url).login('redis-down@example.com', TEST_PASSWORD), 200);
      await timed(() => new HttpClient(ctx.url).post('/auth/forgot-password', { email: 'redis-down@example.com' }), 202);
      await timed(() => new HttpClient(ctx.url).post('/auth/2fa', { provider: 'totp', code: '123456' }), 401);
      for (let i = 0; i < 5; i++) await new HttpClient(ctx.url).login('redis-down@example.com', 'wrong password here');
      expect((await new HttpClient(ctx.url).login('redis-down@example.com', TEST_PASSWORD)).status).toBe(423);
    } finally {
      await ctx.close();
    }
  });
});
