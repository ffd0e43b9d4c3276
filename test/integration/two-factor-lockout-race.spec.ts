import { independentCode } from '../support/oathtool.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { pendingSignInCookies } from '../support/pending-sign-in-cookies.js';
import pg from 'pg';

const password = 'correct horse battery staple';
const TWO_FACTOR_COOKIE = pendingSignInCookies().twoFactor;
const KEY = 'test-encryption-key-0123456789abcdef';

/**
 * The second step counts wrong codes toward lockout like wrong passwords; a request already checking a right code
 * when wrong codes locked the account must not get in (a burst of parallel guesses stays capped by the lockout).
 */
describe('two-factor: a right code does not get past a lockout that wrong codes in flight set', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let counter = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, twoFactor: { encryptionKey: KEY } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function enrolled() {
    const email = `tfrace${++counter}@example.com`;
    const created = (await ctx.userManager.createUser({ email, name: 'Two Factor', password })).value!;
    const http = new HttpClient(ctx.url);
    expect((await http.login(email, password)).body.status).toBe('success');
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expect(enable.status).toBe(200);
    ctx.clock.advance(30_000);
    return { email, user: created, secret: setup.body.secret as string, recoveryCodes: enable.body.recoveryCodes as string[] };
  }

  it('OWASP ASVS 4.0 2.2.1: a right code checked by a request already in flight when wrong codes locked the account is refused (as the password step does)', async () => {
    const { email, secret } = await enrolled();
    // The request loads the user (unlocked) before the lock, as POST /auth/2fa does in pendingUser().
    const inFlight = (await ctx.userManager.findByEmail(email))!;
    expect(ctx.userManager.isLockedOut(inFlight)).toBe(false);
    // Meanwhile 5 wrong codes lock the account.
    for (let i = 0; i < 5; i++) {
      const fresh = (await ctx.userManager.findByEmail(email))!;
      await ctx.signInManager.twoFactorSignIn(fresh, 'totp', '000000');
    }
    expect(ctx.userManager.isLockedOut((await ctx.userManager.findByEmail(email))!)).toBe(true);
    // The in-flight request now checks its (right) code.
    const result = await ctx.signInManager.twoFactorSignIn(inFlight, 'totp', independentCode(secret, ctx.clock));
    expect(result.status).toBe('lockedOut');
    expect(ctx.userManager.isLockedOut((await ctx.userManager.findByEmail(email))!)).toBe(true);
  });

  it.skipIf(process.env.TEST_DB_KIND !== 'postgres')('OWASP ASVS 4.0 2.2.1: over HTTP, a right code held in flight while 5 wrong codes lock the account answers 423 and sets no session (PostgreSQL: a row lock holds the request)', async () => {
    const { email, user, secret } = await enrolled();
    const attacker = new HttpClient(ctx.url);
    expect((await attacker.login(email, password)).body.status).toBe('requiresTwoFactor');
    const pending = attacker.cookies.get(TWO_FACTOR_COOKIE)!;
    const withPending = () => {
      const c = new HttpClient(ctx.url);
      c.cookies.set(TWO_FACTOR_COOKIE, pending);
      return c;
    };
    // Hold the authenticator row so the right-code request pauses inside its verification (after its lockout check).
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM backoffice_user_authenticator WHERE user_id = $1 FOR UPDATE', [user.id]);
      const rightClient = withPending();
      const right = rightClient.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) });
      for (let i = 0; i < 50; i++) {
        const waiting = await blocker.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%backoffice_user_authenticator%'`);
        if (waiting.rows[0].n > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const wrong: number[] = [];
      for (let i = 0; i < 5; i++) wrong.push((await withPending().post('/auth/2fa', { provider: 'totp', code: '000000' })).status);
      expect(wrong).toEqual([401, 401, 401, 401, 423]);
      expect(ctx.userManager.isLockedOut((await ctx.userManager.findById(user.id))!)).toBe(true);
      await blocker.query('COMMIT');
      const result = await right;
      expect(result.status).toBe(423);
      expect(result.body.code).toBe('locked_out');
      expect(result.setCookies.some((c) => c.startsWith('backoffice_session='))).toBe(false);
    } finally {
      await blocker.end().catch(() => undefined);
    }
  });
});
