import { performance } from 'node:perf_hooks';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';

/** ASVS 2.5 / 3.x: forgot-password answers known and unknown addresses alike, in the same time. */
describe('forgot-password timing', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = async () =>
    (await ctx.userManager.createUser({ email: 'known-timing@example.com', name: 'K', password: 'correct horse battery staple' })).value!;
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, email: { pickupDirectory: `/tmp/bo-mail-timing-${process.pid}` } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('forgot-password: same status, same body, timing medians within 10% for known and unknown (50 each)', async () => {
    const known = await make();
    const knownTimes: number[] = [];
    const unknownTimes: number[] = [];
    const bodies = new Set<string>();
    const http = new HttpClient(ctx.url);
    for (let i = 0; i < 5; i++) await http.post('/auth/forgot-password', { email: `warm${i}@example.com` });
    for (let i = 0; i < 50; i++) {
      const pair = [[knownTimes, known.email], [unknownTimes, `ghost${i}@example.com`]] as const;
      for (const [list, to] of i % 2 ? [...pair].reverse() : pair) {
        const start = performance.now();
        const result = await http.post('/auth/forgot-password', { email: to });
        list.push(performance.now() - start);
        expect(result.status).toBe(202);
        bodies.add(result.text);
        // let the known address's email go out before the next timed request, so it slows neither side
        await ctx.app.get(BackOfficeBackgroundTasks).drain();
      }
    }
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    expect(bodies.size).toBe(1);
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const ratio = median(unknownTimes) / median(knownTimes);
    console.log(`forgot-password medians: known ${median(knownTimes).toFixed(2)} ms, unknown ${median(unknownTimes).toFixed(2)} ms, ratio ${ratio.toFixed(3)}`);
    expect(ratio).toBeGreaterThan(0.9);
    expect(ratio).toBeLessThan(1.1);
  });

});
