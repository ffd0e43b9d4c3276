import * as bcrypt from 'bcrypt';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { compareMedians } from '../support/timing.js';

/**
 * ASVS 2.2 / 3.2 enumeration: an unknown username must cost what a wrong password costs (a dummy bcrypt check).
 * bcrypt cost 8 makes the hash dominate; without the dummy check the unknown-user median would be ~10x lower.
 */
describe('no user enumeration through login timing', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { password: { hashCost: 8 }, rateLimits: { enabled: false }, lockout: { maxFailedAccessAttempts: 1000 } },
    });
    await ctx.userManager.createUser({ email: 'timing@example.com', name: 'T', password: 'correct horse battery staple' });
    const locked = (await ctx.userManager.createUser({ email: 'locked-timing@example.com', name: 'L', password: 'correct horse battery staple' })).value!;
    await ctx.userManager.setLockoutEnd(locked, new Date(Date.now() + 3_600_000));
    // A bcrypt hash from another system, of a lower cost than the module's (re-hashed only at the first sign-in).
    const weaker = await bcrypt.hash('correct horse battery staple', 5);
    await ctx.userManager.importUsers([{ email: 'weaker-timing@example.com', name: 'W', groups: [], passwordFormat: 'bcrypt', passwordHash: weaker }]);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('unknown user and wrong password: same status, same bytes, medians within 10% (40 each)', async () => {
    const http = new HttpClient(ctx.url);
    const bodies = new Set<string>();
    const login = async (username: string, i: number) => {
      const result = await http.login(username, `wrong password ${i}`);
      expect(result.status).toBe(401);
      bodies.add(result.text);
    };
    for (let i = 0; i < 5; i++) await login('warmup@example.com', i); // dummy hash, JIT
    const result = await compareMedians(40, (i) => login(`ghost${i}@example.com`, i), (i) => login('timing@example.com', i), { tolerance: 0.1 });
    console.log(`login 401 medians: unknown ${result.medianA.toFixed(1)} ms, wrong password ${result.medianB.toFixed(1)} ms, ratio ${result.ratio.toFixed(3)} (round ${result.round})`);
    expect(bodies.size).toBe(1);
    expect(result.ratio).toBeGreaterThan(0.9);
    expect(result.ratio).toBeLessThan(1.1);
  });

  it('V2.2.1 / V3.2: a wrong password against an imported bcrypt hash of a lower cost takes as long as an unknown username (40 each)', async () => {
    const http = new HttpClient(ctx.url);
    const statuses = new Set<number>();
    for (let i = 0; i < 5; i++) await http.login('weaker-timing@example.com', `warm up ${i}`);
    const result = await compareMedians(
      40,
      async (i) => statuses.add((await http.login(`ghost-weaker${i}@example.com`, `wrong password ${i}`)).status),
      async (i) => statuses.add((await http.login('weaker-timing@example.com', `wrong password ${i}`)).status),
      { tolerance: 0.1 },
    );
    console.log(`weaker bcrypt: unknown ${result.medianA.toFixed(1)} ms vs wrong password ${result.medianB.toFixed(1)} ms, ratio ${result.ratio.toFixed(3)} (round ${result.round})`);
    expect([...statuses]).toEqual([401]);
    expect(result.ratio).toBeGreaterThan(0.9);
    expect(result.ratio).toBeLessThan(1.1);
  });

  it('a locked account (423, password not checked) answers in the time of a wrong password (401), 40 each', async () => {
    const http = new HttpClient(ctx.url);
    const statuses = new Set<number>();
    const result = await compareMedians(
      40,
      async (i) => statuses.add((await http.login('locked-timing@example.com', `wrong password ${i}`)).status),
      async (i) => statuses.add((await http.login('timing@example.com', `wrong password ${i}`)).status),
      { tolerance: 0.1 },
    );
    console.log(`locked 423 ${result.medianA.toFixed(1)} ms vs wrong password 401 ${result.medianB.toFixed(1)} ms, ratio ${result.ratio.toFixed(3)} (round ${result.round})`);
    expect([...statuses].sort()).toEqual([401, 423]);
    expect(result.ratio).toBeGreaterThan(0.9);
    expect(result.ratio).toBeLessThan(1.1);
  });
});
