import { independentCode } from '../support/oathtool.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';
import { copyOf, lockWhileStepUpHeld } from '../support/step-up-lock.js';
import { DataSource } from 'typeorm';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { BackOfficeAccountService, BackOfficeEvents } from '../../src/backoffice-identity/index.js';

const password = 'correct horse battery staple';


/**
 * A lockout set by wrong passwords (here: someone guessing at the sign-in form) leaves the user's live sessions
 * working. The signed-in routes that check the password (change password, turning 2FA off) must then not check it
 * either, as sign-in and re-authentication do: else a stolen session guesses the password without limit past the
 * lockout, and a right guess changes it (account takeover).
 */
describe('a locked account: the signed-in routes that check the password refuse while the lock lasts', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let counter = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function signedIn() {
    const email = `locked${++counter}@example.com`;
    const user = (await ctx.userManager.createUser({ email, name: 'Locked', password })).value!;
    const http = new HttpClient(ctx.url);
    expect((await http.login(email, password)).body.status).toBe('success');
    return { email, user, http };
  }

  async function lockOut(email: string) {
    for (let i = 0; i < 5; i++) await new HttpClient(ctx.url).login(email, 'a wrong password guess');
    expect(ctx.userManager.isLockedOut((await ctx.userManager.findByEmail(email))!)).toBe(true);
  }

  it('OWASP ASVS 4.0 2.2.1: POST /auth/change-password answers 423 locked_out while locked, without checking the password; the password stays', async () => {
    const { email, http } = await signedIn();
    await lockOut(email);
    const refused = await http.post('/auth/change-password', { currentPassword: password, newPassword: 'a takeover passphrase 42' });
    expectClientError(refused, 423);
    expect(refused.body.code).toBe('locked_out');
    expect(refused.body.retryAfterSeconds).toBeGreaterThan(0);
    const stored = (await ctx.userManager.findByEmail(email))!;
    expect(await ctx.userManager.checkPassword(stored, password)).toBe(true);
    expect(await ctx.userManager.checkPassword(stored, 'a takeover passphrase 42')).toBe(false);
    // Once the lock is lifted the same request works.
    await ctx.userManager.setLockoutEnd(stored, null);
    expect((await http.post('/auth/change-password', { currentPassword: password, newPassword: 'a takeover passphrase 42' })).status).toBe(200);
  });

  it('OWASP ASVS 4.0 2.2.1: POST /auth/2fa/disable answers 423 locked_out while locked, without checking the password; 2FA stays on', async () => {
    const { email, user, http } = await signedIn();
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect((await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) })).status).toBe(200);
    await lockOut(email);
    const refused = await http.post('/auth/2fa/disable', { password });
    expectClientError(refused, 423);
    expect(refused.body.code).toBe('locked_out');
    expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(true);
  });

  it('OWASP ASVS 4.0 2.2.1: the wrong password that locks the account answers 423 locked_out at change-password and 2fa/disable, as at login and reauthenticate', async () => {
    const wrongTimes = async (send: () => Promise<{ status: number; body: any }>) => {
      const answers = [];
      for (let i = 0; i < 5; i++) answers.push(await send());
      return answers;
    };
    const expectLockedOnFifth = (answers: Array<{ status: number; body: any }>, route: string) => {
      expect(answers.slice(0, 4).map((a) => a.status), route).toEqual([401, 401, 401, 401]);
      expect(answers[4].status, `${route}: the locking attempt`).toBe(423);
      expect(answers[4].body.code).toBe('locked_out');
      expect(answers[4].body.retryAfterSeconds).toBeGreaterThan(0);
    };
    const login = await signedIn();
    expectLockedOnFifth(await wrongTimes(() => new HttpClient(ctx.url).login(login.email, 'a wrong password guess')), 'POST /auth/login');
    const reauth = await signedIn();
    expectLockedOnFifth(await wrongTimes(() => reauth.http.post('/auth/reauthenticate', { password: 'a wrong password guess' })), 'POST /auth/reauthenticate');
    const change = await signedIn();
    expectLockedOnFifth(
      await wrongTimes(() => change.http.post('/auth/change-password', { currentPassword: 'a wrong password guess', newPassword: 'a takeover passphrase 42' })),
      'POST /auth/change-password',
    );
    const disable = await signedIn();
    const setup = await disable.http.post('/auth/2fa/setup', { provider: 'totp' });
    expect((await disable.http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) })).status).toBe(200);
    expectLockedOnFifth(await wrongTimes(() => disable.http.post('/auth/2fa/disable', { password: 'a wrong password guess' })), 'POST /auth/2fa/disable');
  });

  it('OWASP ASVS 4.0 2.2.1: a wrong password whose count finds the account locked meanwhile (by a request in flight) answers 423 locked_out at reauthenticate, change-password and 2fa/disable, as at login, not 401', async () => {
    const check = ctx.userManager.checkPassword.bind(ctx.userManager);
    const routes: Array<{ route: string; body: Record<string, string>; twoFactor?: boolean }> = [
      { route: '/auth/reauthenticate', body: { password: 'a wrong password guess' } },
      { route: '/auth/change-password', body: { currentPassword: 'a wrong password guess', newPassword: 'a takeover passphrase 42' } },
      { route: '/auth/2fa/disable', body: { password: 'a wrong password guess' }, twoFactor: true },
    ];
    for (const { route, body, twoFactor } of routes) {
      const { user, http } = await signedIn();
      if (twoFactor) {
        const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
        expect((await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) })).status).toBe(200);
      }
      // Other wrong guesses lock the account while this request checks its (wrong) password.
      const spy = vi.spyOn(ctx.userManager, 'checkPassword').mockImplementation(async (...args: Parameters<typeof check>) => {
        const right = await check(...args);
        if (!right) await ctx.userManager.setLockoutEnd((await ctx.userManager.findById(user.id))!, new Date(ctx.clock.now().getTime() + 5 * 60_000));
        return right;
      });
      let answer;
      try {
        answer = await http.post(route, body);
      } finally {
        spy.mockRestore();
      }
      expect({ status: answer.status, code: answer.body.code }, `POST ${route}`).toEqual({ status: 423, code: 'locked_out' });
      expect(answer.body.retryAfterSeconds, `POST ${route}`).toBeGreaterThan(0);
    }
  });

  it('OWASP ASVS 4.0 2.2.1: a right password at POST /auth/reauthenticate held in flight while 5 wrong step-ups of the same session lock the account answers 423 locked_out and steps nothing up (a burst of parallel guesses stays capped by the lockout)', async () => {
    const { user, http } = await signedIn();
    ctx.clock.advance(10 * 60_000); // past session.reauthenticationMinutes: the session needs a step-up
    const check = ctx.userManager.checkPassword.bind(ctx.userManager);
    let reached!: () => void;
    const reachedCheck = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The right guess is checked only once the wrong ones sent with it have locked the account.
    const spy = vi.spyOn(ctx.userManager, 'checkPassword').mockImplementation(async (...args: Parameters<typeof check>) => {
      if (args[1] === password) {
        reached();
        await released;
      }
      return check(...args);
    });
    try {
      expect((await http.request('DELETE', '/auth/sessions')).body.code).toBe('reauthentication_required');
      await lockWhileStepUpHeld(ctx, http, user.id, { reached: reachedCheck, release }, http.post('/auth/reauthenticate', { password }));
    } finally {
      release();
      spy.mockRestore();
      ctx.clock.advance(-10 * 60_000);
    }
  });

  it('OWASP ASVS 4.0 2.2.1: the account service refuses both with locked_out for host code too', async () => {
    const { email, user, http } = await signedIn();
    const sessionId = (await http.get('/auth/sessions')).body.find((s: { current: boolean }) => s.current).id as string;
    await lockOut(email);
    const locked = (await ctx.userManager.findById(user.id))!;
    const account = ctx.app.get(BackOfficeAccountService);
    expect((await account.changePassword(locked, { id: sessionId }, password, 'a takeover passphrase 42')).errors.map((e) => e.code)).toEqual(['locked_out']);
    await ctx.userManager.setTwoFactorEnabled(locked, true);
    expect((await account.disableTwoFactor(locked, { id: sessionId }, password)).errors.map((e) => e.code)).toEqual(['locked_out']);
  });

  it('OWASP ASVS 4.0 2.2.1: a right password in a request already in flight when wrong ones locked the account changes nothing (as sign-in looks again)', async () => {
    const { email, user, http } = await signedIn();
    const sessionId = (await http.get('/auth/sessions')).body.find((s: { current: boolean }) => s.current).id as string;
    const account = ctx.app.get(BackOfficeAccountService);
    // Requests load the user (unlocked) before the lock, as the auth guard does at their start.
    const inFlight = (await ctx.userManager.findById(user.id))!;
    await ctx.userManager.setTwoFactorEnabled(inFlight, true);
    await ctx.signInManager.refreshSignIn(inFlight, sessionId);
    const inFlightToo = (await ctx.userManager.findById(user.id))!;
    await lockOut(email);
    expect((await account.changePassword(inFlight, { id: sessionId }, password, 'a takeover passphrase 42')).errors.map((e) => e.code)).toEqual(['locked_out']);
    expect((await account.disableTwoFactor(inFlightToo, { id: sessionId }, password)).errors.map((e) => e.code)).toEqual(['locked_out']);
    const stored = (await ctx.userManager.findById(user.id))!;
    expect(await ctx.userManager.checkPassword(stored, password)).toBe(true);
    expect(stored.twoFactorEnabled).toBe(true);
  });

  it('OWASP ASVS 4.0 2.2.1: POST /auth/change-password by a user without a local password (external sign-in only) is 409 no_local_password, as at step-up and 2FA disable; nothing was guessed, so nothing counts toward lockout nor is audited as a failed sign-in', async () => {
    const { user, http } = await signedIn();
    const sql = ctx.app.get(DataSource);
    await sql.query('UPDATE backoffice_user SET password_hash = NULL WHERE id = $1', [user.id]);
    for (let i = 0; i < 6; i++) {
      const answer = await http.post('/auth/change-password', { currentPassword: `whatever it may be ${i}`, newPassword: 'a brand new passphrase 42' });
      expectClientError(answer, 409);
      expect(answer.body.code).toBe('no_local_password');
    }
    const stored = (await ctx.userManager.findById(user.id))!;
    expect([stored.accessFailedCount, stored.lockoutEnd, stored.passwordHash]).toEqual([0, null, null]);
    const failed = await sql.query('SELECT count(*)::int AS n FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = $2', [user.id, BackOfficeEvents.LoginFailed]);
    expect(failed[0].n).toBe(0);
    expect((await http.get('/auth/me')).status).toBe(200);
  });

  async function withTwoFactor(http: HttpClient): Promise<void> {
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect((await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) })).status).toBe(200);
  }

  it('OWASP ASVS 5.0 16.3.1 / 4.0 2.2.1: the refusals of a locked account at POST /auth/reauthenticate, change-password and 2fa/disable are audited as UserLoginFailedNotification with reason locked_out and the route\'s via, as a sign-in\'s is', async () => {
    const { email, user, http } = await signedIn();
    await withTwoFactor(http);
    await lockOut(email);
    const recorder = NotificationRecorder.attach(ctx.app);
    try {
      const sent: Array<[string, Record<string, string>, string]> = [
        ['/auth/reauthenticate', { password }, 'reauthentication'],
        ['/auth/change-password', { currentPassword: password, newPassword: 'a takeover passphrase 42' }, 'change_password'],
        ['/auth/2fa/disable', { password }, 'two_factor_disable'],
      ];
      for (const [route, body, via] of sent) {
        recorder.clear();
        const refused = await http.post(route, body);
        expect({ status: refused.status, code: refused.body.code }, `POST ${route}`).toEqual({ status: 423, code: 'locked_out' });
        const failed = recorder.named(BackOfficeEvents.LoginFailed, user.id).map((e) => ({ reason: (e as any).reason, via: (e as any).via }));
        expect(failed, `POST ${route}`).toEqual([{ reason: 'locked_out', via }]);
      }
    } finally {
      recorder.detach();
    }
  });

  it('OWASP ASVS 4.0 2.2.1: wrong passwords sent at once to POST /auth/reauthenticate, change-password and 2fa/disable from one session share one failed-access count: the fifth locks the account, and no route checks more', async () => {
    const { email, user, http } = await signedIn();
    await withTwoFactor(http);
    const sends = [
      () => copyOf(http).post('/auth/reauthenticate', { password: 'a wrong password guess' }),
      () => copyOf(http).post('/auth/change-password', { currentPassword: 'a wrong password guess', newPassword: 'a takeover passphrase 42' }),
      () => copyOf(http).post('/auth/2fa/disable', { password: 'a wrong password guess' }),
    ];
    const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => sends[i % 3]()));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(4);
    expect(statuses.filter((s) => s === 423)).toHaveLength(5);
    const stored = (await ctx.userManager.findByEmail(email))!;
    expect(ctx.userManager.isLockedOut(stored)).toBe(true);
    expect(stored.accessFailedCount).toBeLessThanOrEqual(5);
    for (const send of [
      () => http.post('/auth/reauthenticate', { password }),
      () => http.post('/auth/change-password', { currentPassword: password, newPassword: 'a takeover passphrase 42' }),
      () => http.post('/auth/2fa/disable', { password }),
    ]) {
      expect((await send()).status).toBe(423);
    }
    expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(true);
  });

  // A lockout of the admin whose session was stolen must hold: were the admin's own unlock enough, the stolen cookie
  // would lock the account with five wrong step-ups, unlock it, and guess on without end.
  it('OWASP ASVS 4.0 2.2.1: an admin locked by five wrong POST /auth/reauthenticate of their session gets 409 cannot_unlock_self at POST /users/:id/unlock of their own account, the lock stays; another admin unlocks them', async () => {
    const admin = (await ctx.userManager.createUser({ email: 'locked-admin@example.com', name: 'Admin', password, groups: ['admin'] })).value!;
    await ctx.userManager.createUser({ email: 'other-admin@example.com', name: 'Other', password, groups: ['admin'] });
    const http = new HttpClient(ctx.url);
    expect((await http.login('locked-admin@example.com', password)).body.status).toBe('success');
    const other = new HttpClient(ctx.url);
    expect((await other.login('other-admin@example.com', password)).body.status).toBe('success');
    const guesses = [];
    for (let i = 0; i < 5; i++) guesses.push((await http.post('/auth/reauthenticate', { password: 'a wrong password guess' })).status);
    expect(guesses).toEqual([401, 401, 401, 401, 423]);
    const refused = await http.post(`/users/${admin.id}/unlock`, {});
    expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: 'cannot_unlock_self' });
    expect(ctx.userManager.isLockedOut((await ctx.userManager.findById(admin.id))!)).toBe(true);
    expect((await http.post('/auth/reauthenticate', { password })).status).toBe(423);
    const unlocked = await other.post(`/users/${admin.id}/unlock`, {});
    expect(unlocked.status, unlocked.text).toBe(200);
    expect(ctx.userManager.isLockedOut((await ctx.userManager.findById(admin.id))!)).toBe(false);
  });
});
