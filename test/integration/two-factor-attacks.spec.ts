import { DataSource } from 'typeorm';
import { independentCode } from '../support/oathtool.js';
import type { TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';
import { expectHostOnlyCookie, pendingSignInCookies } from '../support/pending-sign-in-cookies.js';
import type { NotificationRecorder } from '../support/notification-recorder.js';
import { startTotpApp, TOTP_TEST_KEY as KEY } from '../support/totp-app.js';
import {
  BACKOFFICE_USER_STORE,
  BackOfficeEvents,
  BackOfficeTwoFactorChallengeService,
  SecretCipher,
  TotpTwoFactorProvider,
  type BackOfficePasswordChecker,
  type TypeOrmBackOfficeUserStore,
} from '../../src/backoffice-identity/index.js';

const password = 'correct horse battery staple';
const TWO_FACTOR_COOKIE = pendingSignInCookies().twoFactor;

/**
 * The second step of sign-in as an attacker sees it: a code or recovery code sent twice at once, codes from the
 * drift window, a pending sign-in kept across an account change or used twice, what rests in the database.
 */
describe('Two-factor sign-in under attack', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let counter = 0;
  let events: NotificationRecorder;

  beforeAll(async () => {
    ({ db, ctx, events } = await startTotpApp());
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  const nextStep = () => ctx.clock.advance(30_000);

  async function enrolled(app: IdentityApp = ctx) {
    const email = `attack${++counter}@example.com`;
    const user = (await app.userManager.createUser({ email, name: 'Attacked', password })).value!;
    const http = new HttpClient(app.url);
    expect((await http.login(email, password)).body.status).toBe('success');
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    const enableBody = { provider: 'totp', code: independentCode(setup.body.secret, app.clock) };
    const enable = await http.post('/auth/2fa/enable', enableBody);
    expect(enable.status).toBe(200);
    app.clock.advance(30_000);
    return { email, user, http, secret: setup.body.secret as string, recoveryCodes: enable.body.recoveryCodes as string[], enableBody };
  }

  async function passwordStep(email: string) {
    const http = new HttpClient(ctx.url);
    const login = await http.login(email, password);
    expect(login.body.status).toBe('requiresTwoFactor');
    return http;
  }

  it('OWASP ASVS 4.0 2.8.4 / ASVS 5.0 6.5.1: one TOTP code sent at once from two pending sign-ins signs in exactly one', async () => {
    const { email, secret } = await enrolled();
    const [a, b] = [await passwordStep(email), await passwordStep(email)];
    const code = independentCode(secret, ctx.clock);
    const results = await Promise.all([a, b].map((c) => c.post('/auth/2fa', { provider: 'totp', code })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 401]);
  });

  it('OWASP ASVS 4.0 2.6.1 / ASVS 5.0 6.5.1: one recovery code sent at once from two pending sign-ins signs in exactly one, and one code is used up', async () => {
    const { email, user, recoveryCodes } = await enrolled();
    const clients = [await passwordStep(email), await passwordStep(email), await passwordStep(email)];
    const results = await Promise.all(clients.map((c) => c.post('/auth/2fa', { provider: 'recovery', code: recoveryCodes[0] })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 401, 401]);
    const rows = await ctx.app.get(DataSource).query('SELECT count(*)::int AS n FROM backoffice_user_recovery_code WHERE user_id = $1 AND used_at IS NULL', [user.id]);
    expect(rows[0].n).toBe(9);
  });

  it('OWASP ASVS 4.0 2.6.1 / ASVS 5.0 6.5.1: a TOTP code and a recovery code sent at once for one pending sign-in sign in exactly once, and the recovery code is used up only when its request is the one that signed in (12 rounds)', async () => {
    const { email, user, secret, recoveryCodes } = await enrolled();
    const unused = async () =>
      (await ctx.app.get(DataSource).query('SELECT count(*)::int AS n FROM backoffice_user_recovery_code WHERE user_id = $1 AND used_at IS NULL', [user.id]))[0].n as number;
    const outcomes: string[] = [];
    const left = [...recoveryCodes];
    for (let round = 0; round < 12 && left.length > 0; round++) {
      const http = await passwordStep(email);
      const before = await unused();
      const recoveryCode = left[0];
      const [totp, recovery] = await Promise.all([
        http.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) }),
        http.post('/auth/2fa', { provider: 'recovery', code: recoveryCode }),
      ]);
      expect([totp.status, recovery.status].filter((s) => s === 200), `round ${round}: exactly one signs in`).toHaveLength(1);
      expect(await unused(), `round ${round}: totp ${totp.status}, recovery ${recovery.status}: a recovery code used up only by the request that signed in`).toBe(
        before - (recovery.status === 200 ? 1 : 0),
      );
      outcomes.push(totp.status === 200 ? 'totp' : 'recovery');
      if (recovery.status === 200) left.shift();
      // The one that lost found the sign-in taken: two_factor_expired, nothing counted toward lockout.
      expect((totp.status === 200 ? recovery : totp).body.code, `round ${round}`).toBe('two_factor_expired');
      nextStep();
    }
    expect(outcomes.length).toBeGreaterThanOrEqual(10);
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(0);
  });

  it('OWASP ASVS 4.0 2.6.1: a wrong recovery code (it claimed the pending sign-in) leaves the sign-in pending under a new cookie token with the same end; the old token is spent', async () => {
    const { email, secret } = await enrolled();
    const http = await passwordStep(email);
    const oldToken = http.cookies.get(TWO_FACTOR_COOKIE)!;
    const wrong = await http.post('/auth/2fa', { provider: 'recovery', code: 'AAAAA-BBBBB' });
    expect(wrong.body.code).toBe('invalid_code');
    expectHostOnlyCookie(wrong.setCookies, TWO_FACTOR_COOKIE);
    const newToken = http.cookies.get(TWO_FACTOR_COOKIE)!;
    expect(newToken).toBeTruthy();
    expect(newToken).not.toBe(oldToken);
    const replay = http.fresh();
    replay.cookies.set(TWO_FACTOR_COOKIE, oldToken);
    expect((await replay.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) })).body.code).toBe('two_factor_expired');
    expect((await http.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) })).status).toBe(200);
  });

  it('OWASP ASVS 4.0 2.6.1: wrong recovery codes do not extend the pending sign-in: it ends when the first step set it to', async () => {
    const { email, secret } = await enrolled();
    const http = await passwordStep(email);
    ctx.clock.advance(4 * 60_000);
    expect((await http.post('/auth/2fa', { provider: 'recovery', code: 'AAAAA-BBBBB' })).body.code).toBe('invalid_code');
    ctx.clock.advance(61_000);
    expect((await http.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) })).body.code).toBe('two_factor_expired');
  });

  it('OWASP ASVS 4.0 2.2.1 / 2.6.1: an account locked after the pending sign-in was read (here: between the recovery request\'s claim and its check) answers 423 without using the recovery code up', async () => {
    const { email, user, recoveryCodes } = await enrolled();
    const unused = async () =>
      (await ctx.app.get(DataSource).query('SELECT count(*)::int AS n FROM backoffice_user_recovery_code WHERE user_id = $1 AND used_at IS NULL', [user.id]))[0].n as number;
    const http = await passwordStep(email);
    const before = await unused();
    // Another request (wrong passwords at login, say) locks the account right after this one claimed the pending sign-in.
    const challenges = ctx.app.get(BackOfficeTwoFactorChallengeService);
    const complete = challenges.complete.bind(challenges);
    const spy = vi.spyOn(challenges, 'complete').mockImplementation(async (id: string) => {
      const claimed = await complete(id);
      await ctx.userManager.setLockoutEnd((await ctx.userManager.findById(user.id))!, new Date(ctx.clock.now().getTime() + 5 * 60_000));
      return claimed;
    });
    try {
      const answer = await http.post('/auth/2fa', { provider: 'recovery', code: recoveryCodes[0] });
      expect(answer.status).toBe(423);
      expect(answer.body.code).toBe('locked_out');
    } finally {
      spy.mockRestore();
    }
    expect(await unused(), 'the recovery code of a sign-in refused as locked out is not used up').toBe(before);
    // Once unlocked, the same code still signs in (after the password again).
    await ctx.userManager.setLockoutEnd((await ctx.userManager.findById(user.id))!, null);
    const again = await passwordStep(email);
    expect((await again.post('/auth/2fa', { provider: 'recovery', code: recoveryCodes[0] })).status).toBe(200);
    expect(await unused()).toBe(before - 1);
  });

  it('ASVS 5.0 6.5.5: the drift window is one step each side; a code of the next step used first makes the current one a replay', async () => {
    const { email, secret } = await enrolled();
    const http = await passwordStep(email);
    expect((await http.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock, 2) })).body.code).toBe('invalid_code');
    expect((await http.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock, -2) })).body.code).toBe('invalid_code');
    expect((await http.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock, 1) })).status).toBe(200);
    const again = await passwordStep(email);
    expect((await again.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) })).body.code).toBe('invalid_code');
  });

  it('OWASP ASVS 4.0 3.3.1: a pending sign-in is single use: its cookie, kept, gets no second session', async () => {
    const { email, secret } = await enrolled();
    const http = await passwordStep(email);
    const token = http.cookies.get(TWO_FACTOR_COOKIE)!;
    expect((await http.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) })).status).toBe(200);
    nextStep();
    const copy = new HttpClient(ctx.url);
    copy.cookies.set(TWO_FACTOR_COOKIE, token);
    const again = await copy.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) });
    expectClientError(again, 401);
    expect(again.body.code).toBe('two_factor_expired');
  });

  it('ASVS 5.0 3.3.3 / 7.2.4: a pending-sign-in cookie sent twice (the attacker\'s tossed from a sibling subdomain, whose longer Path puts it first) completes neither, in either order, so the victim cannot finish the attacker\'s sign-in', async () => {
    const victim = await enrolled();
    const attacker = await enrolled();
    const [victimStep, attackerStep] = [await passwordStep(victim.email), await passwordStep(attacker.email)];
    const [own, tossed] = [victimStep.cookies.get(TWO_FACTOR_COOKIE)!, attackerStep.cookies.get(TWO_FACTOR_COOKIE)!];
    for (const [cookie, secret] of [
      [`${TWO_FACTOR_COOKIE}=${tossed}; ${TWO_FACTOR_COOKIE}=${own}`, attacker.secret],
      [`${TWO_FACTOR_COOKIE}=${own}; ${TWO_FACTOR_COOKIE}=${tossed}`, victim.secret],
    ]) {
      const answer = await victimStep.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) }, { headers: { cookie } });
      expectClientError(answer, 401);
      expect(answer.body.code).toBe('two_factor_expired');
      expect(answer.setCookies.some((c) => c.startsWith('backoffice_session=') && !/Max-Age=0/.test(c))).toBe(false);
    }
    // Sent once, each pending sign-in still completes (the refusals used neither up).
    expect((await victimStep.post('/auth/2fa', { provider: 'totp', code: independentCode(victim.secret, ctx.clock) })).status).toBe(200);
  });

  it('ASVS 5.0 3.3.3: with Secure cookies the pending-sign-in cookie is a "__Host-" cookie (Secure, Path=/, no Domain) beside the contract\'s backoffice_session, and the attacker\'s pending cookie tossed alone under the unprefixed name a sibling subdomain can set finishes no sign-in in the victim\'s browser (login CSRF)', async () => {
    const attacker = await enrolled();
    const attackerStep = new HttpClient(ctx.url);
    const login = await attackerStep.login(attacker.email, password);
    expect(login.body.status).toBe('requiresTwoFactor');
    const tossable = pendingSignInCookies({ secureCookies: false }).twoFactor;
    const tossed = attackerStep.cookies.get(TWO_FACTOR_COOKIE)!;
    expect(tossed).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The victim has no pending cookie of their own: only the tossed one arrives.
    const victim = new HttpClient(ctx.url);
    const answer = await victim.post('/auth/2fa', { provider: 'totp', code: independentCode(attacker.secret, ctx.clock) }, { headers: { cookie: `${tossable}=${tossed}` } });
    expectClientError(answer, 401);
    expect(answer.body.code).toBe('two_factor_expired');
    expect(answer.setCookies.some((c) => c.startsWith('backoffice_session=') && !/Max-Age=0/.test(c))).toBe(false);
    expect(expectHostOnlyCookie(login.setCookies, TWO_FACTOR_COOKIE)).toContain('HttpOnly');
    // The attacker's own browser still finishes its sign-in, with the contract's session cookie name.
    const done = await attackerStep.post('/auth/2fa', { provider: 'totp', code: independentCode(attacker.secret, ctx.clock) });
    expect(done.status).toBe(200);
    expect(done.setCookies.some((c) => c.startsWith('backoffice_session=') && !/Max-Age=0/.test(c))).toBe(true);
    expect(done.setCookies.some((c) => c.startsWith(`${TWO_FACTOR_COOKIE}=;`) && /Max-Age=0/.test(c) && /Path=\//.test(c))).toBe(true);
  });

  it('OWASP ASVS 4.0 3.3.3: a password change, a password reset, a disable or a 2FA reset between the two steps voids the pending sign-in', async () => {
    const changes: Array<(userId: string) => Promise<unknown>> = [
      async (id) => ctx.userManager.changePassword((await ctx.userManager.findById(id))!, password, password + ' 2'),
      async (id) => {
        const user = (await ctx.userManager.findById(id))!;
        return ctx.userManager.resetPassword(user, (await ctx.userManager.generatePasswordResetToken(user))!, password + ' 3');
      },
      async (id) => ctx.userManager.setApproved((await ctx.userManager.findById(id))!, false),
      async (id) => ctx.userManager.resetTwoFactor((await ctx.userManager.findById(id))!),
    ];
    for (const change of changes) {
      const { email, secret, user } = await enrolled();
      const http = await passwordStep(email);
      await change(user.id);
      const late = await http.post('/auth/2fa', { provider: 'totp', code: independentCode(secret, ctx.clock) });
      expectClientError(late, 401);
      expect(late.body.code).toBe('two_factor_expired');
    }
  });

  it('ASVS 5.0 6.4.2 / 6.5.2: the TOTP secret rests encrypted (AES-GCM) and recovery codes as keyed hashes only', async () => {
    const { user, secret, recoveryCodes } = await enrolled();
    const sql = ctx.app.get(DataSource);
    const [key] = await sql.query('SELECT encrypted_secret FROM backoffice_user_authenticator WHERE user_id = $1', [user.id]);
    expect(key.encrypted_secret).not.toContain(secret);
    expect(new SecretCipher(KEY).decrypt(key.encrypted_secret)).toBe(secret);
    const codes = JSON.stringify(await sql.query('SELECT code_hash FROM backoffice_user_recovery_code WHERE user_id = $1', [user.id]));
    for (const code of recoveryCodes) expect(codes).not.toContain(code.replace(/-/g, ''));
  });

  it('OWASP ASVS 4.0 2.8.4: the enrolment confirmation cannot be replayed: again while on is 409, after off and a new setup the old code is refused', async () => {
    const { http, enableBody } = await enrolled();
    const replay = await http.post('/auth/2fa/enable', enableBody);
    expectClientError(replay, 409);
    expect((await http.post('/auth/2fa/disable', { password })).status).toBe(200);
    expect((await http.post('/auth/2fa/setup', { provider: 'totp' })).status).toBe(200);
    const old = await http.post('/auth/2fa/enable', enableBody);
    expectClientError(old, 400);
    expect(old.body.code).toBe('invalid_code');
  });

  it('OWASP ASVS 4.0 2.8.4 / ASVS 5.0 6.5.1: an enrolment confirms only the secret its code was checked against: a setup that replaced the secret meanwhile (a second tab) is not confirmed by the old secret\'s code', async () => {
    const store = ctx.app.get<TypeOrmBackOfficeUserStore>(BACKOFFICE_USER_STORE);
    const user = (await ctx.userManager.createUser({ email: `swap${++counter}@example.com`, name: 'Swap', password })).value!;
    const first = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    await store.setAuthenticatorKey(user.id, 'totp', new SecretCipher(KEY).encrypt(first), ctx.clock.now());
    const other = new TotpTwoFactorProvider(store, KEY, ctx.clock, 'Acme CMS');
    // The enable reads the first secret; before it records its step, a setup (another tab) puts a new secret there.
    const racing = Object.create(store, {
      getAuthenticatorKey: {
        value: async (userId: string, provider: string) => {
          const key = await store.getAuthenticatorKey(userId, provider);
          await other.generateSetup(user);
          return key;
        },
      },
    });
    const enabling = new TotpTwoFactorProvider(racing, KEY, ctx.clock, 'Acme CMS');
    expect(await enabling.verify(user, independentCode(first, ctx.clock), { enrolling: true })).toBe(false);
    const key = (await store.getAuthenticatorKey(user.id, 'totp'))!;
    expect(key.confirmed).toBe(false);
    expect(new SecretCipher(KEY).decrypt(key.encryptedSecret)).not.toBe(first);
  });

  it('OWASP ASVS 4.0 2.8.5: a TOTP code used again is refused as any wrong code, and logged as a reuse (UserLoginFailedNotification reason two_factor_code_reused), unlike a wrong code', async () => {
    const { email, secret, user } = await enrolled();
    const code = independentCode(secret, ctx.clock);
    expect((await (await passwordStep(email)).post('/auth/2fa', { provider: 'totp', code })).status).toBe(200);
    const attacker = await passwordStep(email);
    const failed = () => events.named(BackOfficeEvents.LoginFailed, user.id).map((n) => (n as unknown as { reason: string }).reason);
    const before = failed().length;
    const reused = await attacker.post('/auth/2fa', { provider: 'totp', code });
    expectClientError(reused, 401);
    expect(reused.body.code).toBe('invalid_code');
    const wrong = await attacker.post('/auth/2fa', { provider: 'totp', code: code === '000000' ? '111111' : '000000' });
    expect(wrong.body.code).toBe('invalid_code');
    expect(failed().slice(before)).toEqual(['two_factor_code_reused', 'invalid_code']);
  });

  it('OWASP ASVS 5.0 16.3.1 / 4.0 7.2.1: a wrong password at POST /auth/2fa/disable is audited as backoffice.user.login.failed with via two_factor_disable (the one that locks, and each refusal while locked, as locked_out), never the password', async () => {
    const { http, user } = await enrolled();
    const guess = 'guessed-password-at-disable';
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await http.post('/auth/2fa/disable', { password: guess })).status);
    // The attempt that locks answers 423, as at login and step-up.
    expect(answers).toEqual([401, 401, 401, 401, 423]);
    // Locked now: even the right password is not checked.
    expect((await http.post('/auth/2fa/disable', { password })).body.code).toBe('locked_out');
    const failed = await ctx.app.get(DataSource).query(
      `SELECT performing_user_id, details FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = $2 ORDER BY id`,
      [user.id, BackOfficeEvents.LoginFailed],
    );
    // The one that locks, then the refusal of the locked account (the password not checked), each as locked_out.
    expect(failed.map((row: { details: unknown }) => row.details)).toEqual([
      ...Array.from({ length: 4 }, () => ({ reason: 'invalid_credentials', via: 'two_factor_disable' })),
      { reason: 'locked_out', via: 'two_factor_disable' },
      { reason: 'locked_out', via: 'two_factor_disable' },
    ]);
    for (const row of failed) expect(row.performing_user_id).toBe(user.id);
    expect(JSON.stringify(failed)).not.toContain(guess);
    expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(true);
  });

  it('OWASP ASVS 4.0 2.2.1: a user without a local password (external sign-in only) at POST /auth/2fa/disable gets 409 no_local_password, as at step-up; nothing was guessed, so nothing counts toward lockout nor is audited as a failed sign-in', async () => {
    const { http, user } = await enrolled();
    const sql = ctx.app.get(DataSource);
    await sql.query('UPDATE backoffice_user SET password_hash = NULL WHERE id = $1', [user.id]);
    for (let i = 0; i < 5; i++) {
      const answer = await http.post('/auth/2fa/disable', { password: `whatever it may be ${i}` });
      expectClientError(answer, 409);
      expect(answer.body.code).toBe('no_local_password');
    }
    const stored = (await ctx.userManager.findById(user.id))!;
    expect([stored.accessFailedCount, stored.lockoutEnd, stored.twoFactorEnabled]).toEqual([0, null, true]);
    const failed = await sql.query(`SELECT count(*)::int AS n FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = $2`, [user.id, BackOfficeEvents.LoginFailed]);
    expect(failed[0].n).toBe(0);
    expect((await http.get('/auth/me')).status).toBe(200);
  });

  it('OWASP ASVS 4.0 2.2.1: a directory-managed user the password checker no longer knows (no local hash left) at POST /auth/2fa/disable gets 401 invalid_credentials, as at step-up and change-password (not 409 no_local_password: the directory owns the password); nothing counts toward lockout', async () => {
    // A directory that no longer knows anyone: the checker leaves every password to the local hash, which it retired.
    const forgetting: BackOfficePasswordChecker = { checkPassword: async () => 'fallback' };
    const own = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, twoFactor: { encryptionKey: KEY, issuer: 'Acme CMS' }, passwordChecker: { useValue: forgetting } },
    });
    try {
      const { http, user } = await enrolled(own);
      const sql = own.app.get(DataSource);
      await sql.query('UPDATE backoffice_user SET password_hash = NULL, directory_managed_at = now() WHERE id = $1', [user.id]);
      // Each route's status and code, labelled with the route; soft, so a failure still asks the routes after it.
      for (const [route, body] of [
        ['/auth/2fa/disable', { password }],
        ['/auth/reauthenticate', { password }],
        ['/auth/change-password', { currentPassword: password, newPassword: 'another long passphrase 1' }],
      ] as const) {
        const answer = await http.post(route, body);
        expect.soft([answer.status, answer.body?.code], `POST ${route}: status and code (${answer.text})`).toEqual([401, 'invalid_credentials']);
      }
      const stored = (await own.userManager.findById(user.id))!;
      expect([stored.accessFailedCount, stored.lockoutEnd, stored.twoFactorEnabled]).toEqual([0, null, true]);
    } finally {
      await own.close();
    }
  });

  it('OWASP ASVS 4.0 2.6.x: new recovery codes (the manager\'s generateNewRecoveryCodes) void the whole old set; only the new ones sign in', async () => {
    const { email, user, recoveryCodes } = await enrolled();
    const fresh = await ctx.userManager.generateNewRecoveryCodes((await ctx.userManager.findById(user.id))!);
    expect(fresh).toHaveLength(10);
    expect(new Set(fresh).size).toBe(10);
    const old = await (await passwordStep(email)).post('/auth/2fa', { provider: 'recovery', code: recoveryCodes[1] });
    expect(old.body.code).toBe('invalid_code');
    expect((await (await passwordStep(email)).post('/auth/2fa', { provider: 'recovery', code: fresh[0] })).status).toBe(200);
  });
});
