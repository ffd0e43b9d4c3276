import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { BackOfficeApiUserService, BackOfficeMaintenanceService } from '../../src/backoffice-identity/index.js';

describe('Maintenance: expired rows are pruned, live ones kept', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const newUser = userFactory(() => ctx, 'prune');
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, maintenanceIntervalMinutes: 0 } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('deletes ended sessions, stale unknown-username counters and expired tokens after their grace periods', async () => {
    const sql = ctx.app.get(DataSource);
    const count = async (table: string) => (await sql.query(`SELECT count(*)::int AS n FROM ${table}`))[0].n as number;
    const user = await newUser();
    const ended = new HttpClient(ctx.url);
    await ended.login(user.email, TEST_PASSWORD);
    await ended.post('/auth/logout');
    await new HttpClient(ctx.url).login('ghost-prune@example.com', 'wrong password entirely');
    await ctx.userManager.generatePasswordResetToken(user);
    const maintenance = ctx.app.get(BackOfficeMaintenanceService);
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    const robot = await apiUsers.create({ name: 'Prune robot', groups: [] });
    await apiUsers.issueToken(robot.clientId, robot.clientSecret);

    expect(await maintenance.prune()).toEqual({ loginAttempts: 0, twoFactorChallenges: 0, passkeyChallenges: 0, sessions: 0, tokens: 0, externalLoginStates: 0, accessTokens: 0, auditEntries: 0 });

    ctx.clock.advance(31 * 86_400_000);
    const live = new HttpClient(ctx.url);
    expect((await live.login(user.email, TEST_PASSWORD)).status).toBe(200); // a session made "now" survives
    const sessionsBefore = await count('backoffice_session');
    const result = await maintenance.prune();
    expect(result).toMatchObject({ loginAttempts: 1, sessions: 1, tokens: 1, accessTokens: 1 });
    expect(await count('backoffice_access_token')).toBe(0);
    expect(await count('backoffice_session')).toBe(sessionsBefore - 1);
    expect(await count('backoffice_login_attempt')).toBe(0);
    expect((await live.get('/auth/me')).status).toBe(200);
    ctx.clock.advance(-31 * 86_400_000);
  });

  it('keeps the counter of a username that is still locked', async () => {
    for (let i = 0; i < 5; i++) await new HttpClient(ctx.url).login('locked-ghost@example.com', 'wrong password entirely');
    const sql = ctx.app.get(DataSource);
    await sql.query(`UPDATE backoffice_login_attempt SET updated_at = now() - interval '2 days', lockout_end = now() + interval '1 hour'`);
    expect((await ctx.app.get(BackOfficeMaintenanceService).prune()).loginAttempts).toBe(0);
    expect((await new HttpClient(ctx.url).login('locked-ghost@example.com', 'wrong password entirely')).status).toBe(423);
  });

  it('OWASP ASVS 5.0 6.3.8 (enumeration): a day after the last failure, pruning forgets a known user\'s failed attempts as it forgets an unknown username\'s, so the next guess answers alike (no 423 for the account alone)', async () => {
    const user = await newUser();
    const names = { known: user.email, unknown: 'ghost-decay@example.com' };
    const answers: Record<keyof typeof names, number[]> = { known: [], unknown: [] };
    const guessBoth = async () => {
      for (const [who, name] of Object.entries(names) as Array<[keyof typeof names, string]>) {
        answers[who].push((await new HttpClient(ctx.url).login(name, 'wrong password entirely')).status);
      }
    };
    // One short of the lockout (5 by default).
    for (let i = 0; i < 4; i++) await guessBoth();
    ctx.clock.advance(25 * 3_600_000);
    try {
      await ctx.app.get(BackOfficeMaintenanceService).prune();
      await guessBoth();
    } finally {
      ctx.clock.advance(-25 * 3_600_000);
    }
    expect(answers.known).toEqual(answers.unknown);
  });
});

describe('Maintenance with lockout.durationMinutes: 0 (locked until an admin unlocks)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const newUser = userFactory(() => ctx, 'forever');
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, maintenanceIntervalMinutes: 0, lockout: { maxFailedAccessAttempts: 3, durationMinutes: 0 } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 11.1.4 (bounded storage): an unknown username\'s lock (no admin can end it) is pruned 30 days after it began, so the counter table does not grow for ever; a known user\'s lock is kept until an admin unlocks', async () => {
    const sql = ctx.app.get(DataSource);
    const counters = async () => (await sql.query('SELECT count(*)::int AS n FROM backoffice_login_attempt'))[0].n as number;
    const user = await newUser();
    for (let i = 0; i < 3; i++) {
      await new HttpClient(ctx.url).login(user.email, 'wrong password entirely');
      await new HttpClient(ctx.url).login('ghost-forever@example.com', 'wrong password entirely');
    }
    expect((await new HttpClient(ctx.url).login('ghost-forever@example.com', 'wrong password entirely')).status).toBe(423);
    expect(await counters()).toBe(1);
    const maintenance = ctx.app.get(BackOfficeMaintenanceService);
    try {
      // a week later: both still locked, alike
      ctx.clock.advance(7 * 86_400_000);
      await maintenance.prune();
      expect(await counters()).toBe(1);
      expect((await new HttpClient(ctx.url).login('ghost-forever@example.com', 'wrong password entirely')).status).toBe(423);
      // 31 days after the lock: the unknown username's counter is gone, the known user's lock is kept
      ctx.clock.advance(24 * 86_400_000);
      expect((await maintenance.prune()).loginAttempts).toBe(1);
      expect(await counters(), 'the unknown username\'s permanently locked counter after 31 days').toBe(0);
      expect((await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD)).status).toBe(423);
      const [row] = await sql.query('SELECT lockout_end, access_failed_count FROM backoffice_user WHERE id = $1', [user.id]);
      expect(new Date(row.lockout_end).getUTCFullYear()).toBe(9999);
    } finally {
      ctx.clock.advance(-31 * 86_400_000);
    }
  });
});

describe('Maintenance with a timed lock longer than 30 days (lockout.durationMinutes: 60 days)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const newUser = userFactory(() => ctx, 'longlock');
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, maintenanceIntervalMinutes: 0, lockout: { maxFailedAccessAttempts: 3, durationMinutes: 60 * 24 * 60 } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 2.2.1 (no lockout oracle): an unknown username\'s timed lock is kept until it ends, as a known user\'s is (the 30-day rule is for locks nobody can end), then pruned a day after', async () => {
    const sql = ctx.app.get(DataSource);
    const counters = async () => (await sql.query('SELECT count(*)::int AS n FROM backoffice_login_attempt'))[0].n as number;
    const user = await newUser();
    for (let i = 0; i < 3; i++) {
      await new HttpClient(ctx.url).login(user.email, 'wrong password entirely');
      await new HttpClient(ctx.url).login('ghost-longlock@example.com', 'wrong password entirely');
    }
    const maintenance = ctx.app.get(BackOfficeMaintenanceService);
    let advanced = 0;
    try {
      // 31 days after the lock: both still locked, alike
      ctx.clock.advance(31 * 86_400_000);
      advanced += 31;
      await maintenance.prune();
      expect(await counters(), 'the unknown username\'s timed lock 31 days in (it ends at 60)').toBe(1);
      const known = await new HttpClient(ctx.url).login(user.email, 'wrong password entirely');
      const unknown = await new HttpClient(ctx.url).login('ghost-longlock@example.com', 'wrong password entirely');
      expect({ known: known.status, unknown: unknown.status }).toEqual({ known: 423, unknown: 423 });
      // a day after the lock ended: pruned by the day-after rule
      ctx.clock.advance(31 * 86_400_000);
      advanced += 31;
      expect((await maintenance.prune()).loginAttempts).toBeGreaterThanOrEqual(1);
      expect(await counters()).toBe(0);
    } finally {
      ctx.clock.advance(-advanced * 86_400_000);
    }
  });
});
