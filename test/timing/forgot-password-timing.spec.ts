import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { compareMedians } from '../support/timing.js';
import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';

/** ASVS 2.5 / 3.x: forgot-password answers known and unknown addresses alike, in the same time. */
describe('forgot-password timing', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, email: { pickupDirectory: `/tmp/bo-mail-timing-${process.pid}` } } });
    await ctx.userManager.createUser({ email: 'known-timing@example.com', name: 'K', password: 'correct horse battery staple' });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('forgot-password: same status, same body, timing medians within 10% for known and unknown (50 each)', async () => {
    const http = new HttpClient(ctx.url);
    const bodies = new Set<string>();
    const forgot = async (email: string) => {
      const result = await http.post('/auth/forgot-password', { email });
      expect(result.status).toBe(202);
      bodies.add(result.text);
    };
    for (let i = 0; i < 5; i++) await forgot(`warm${i}@example.com`);
    const tasks = ctx.app.get(BackOfficeBackgroundTasks);
    // the known address's email goes out between timed requests, so it slows neither side
    const result = await compareMedians(50, () => forgot('known-timing@example.com'), (i) => forgot(`ghost${i}@example.com`), {
      tolerance: 0.1,
      settle: () => tasks.drain(),
    });
    console.log(`forgot-password medians: known ${result.medianA.toFixed(2)} ms, unknown ${result.medianB.toFixed(2)} ms, ratio ${result.ratio.toFixed(3)} (round ${result.round})`);
    expect(bodies.size).toBe(1);
    expect(result.ratio).toBeGreaterThan(0.9);
    expect(result.ratio).toBeLessThan(1.1);
  });
});
