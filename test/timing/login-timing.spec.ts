import { performance } from 'node:perf_hooks';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/**
 * ASVS 2.2.x enumeration: an unknown username must cost what a wrong password costs (a dummy bcrypt check).
 * bcrypt cost 8 makes the hash dominate; without the dummy check the unknown-user median would be ~10x lower.
 */
describe('ASVS 3.2 / 2.2: no user enumeration through login timing', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { password: { hashCost: 8 }, rateLimits: { enabled: false }, lockout: { maxFailedAccessAttempts: 1000 } },
    });
    await ctx.userManager.createUser({ email: 'timing@example.com', name: 'T', password: 'correct horse battery staple' });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('unknown user and wrong password: same status, same bytes, medians within 20%', async () => {
    const http = new HttpClient(ctx.url);
    const unknown: number[] = [];
    const wrong: number[] = [];
    const bodies = new Set<string>();
    for (let i = 0; i < 5; i++) await http.login('warmup@example.com', 'nope nope nope'); // dummy hash, JIT
    for (let i = 0; i < 40; i++) {
      for (const [list, username] of [[unknown, `ghost${i}@example.com`], [wrong, 'timing@example.com']] as const) {
        const start = performance.now();
        const result = await http.login(username, `wrong password ${i}`);
        list.push(performance.now() - start);
        expect(result.status).toBe(401);
        bodies.add(result.text);
      }
    }
    expect(bodies.size).toBe(1);
    const ratio = median(unknown) / median(wrong);
    console.log(`login 401 medians: unknown ${median(unknown).toFixed(1)} ms, wrong password ${median(wrong).toFixed(1)} ms, ratio ${ratio.toFixed(3)}`);
    expect(ratio).toBeGreaterThan(0.8);
    expect(ratio).toBeLessThan(1.2);
  });
});
