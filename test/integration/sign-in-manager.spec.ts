import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, userFactory, type IdentityApp } from '../support/identity-app.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { BackOfficeEvents, type BackOfficeUser } from '../../src/backoffice-identity/index.js';

describe('BackOfficeSignInManager.passwordSignIn', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let events: NotificationRecorder;
  const password = 'correct horse battery staple';
  const newUser = userFactory(() => ctx, 'signin');
  const signIn = (username: string, pw: string, ip = '203.0.113.7') => ctx.signInManager.passwordSignIn(username, pw, { ipAddress: ip });

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db);
    events = NotificationRecorder.attach(ctx.app);
  });
  beforeEach(() => events.clear());
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('succeeds with the right password, records the login and notifies once with user id and IP', async () => {
    const user = await newUser();
    const result = await signIn(user.email.toUpperCase(), password);
    expect(result.status).toBe('success');
    expect(result.user?.id).toBe(user.id);
    expect((await ctx.userManager.findById(user.id))!.lastLoginAt).toBeInstanceOf(Date);
    const success = events.named(BackOfficeEvents.LoginSuccess);
    expect(success).toHaveLength(1);
    expect(success[0]).toMatchObject({ affectedUserId: user.id, performingUserId: user.id, ipAddress: '203.0.113.7' });
    expect(success[0].dateTimeUtc).toBeInstanceOf(Date);
  });

  it('fails with a wrong password and notifies UserLoginFailedNotification with reason', async () => {
    const user = await newUser();
    const result = await signIn(user.email, 'wrong password entirely');
    expect(result).toMatchObject({ status: 'failed', reason: 'invalid_credentials' });
    expect(result.user).toBeUndefined();
    const failed = events.named(BackOfficeEvents.LoginFailed);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ affectedUserId: user.id, ipAddress: '203.0.113.7', reason: 'invalid_credentials' });
  });

  it('ASVS 2.2.1: locks after 5 failures; while locked the right password is not even checked', async () => {
    const user = await newUser();
    for (let i = 0; i < 4; i++) expect((await signIn(user.email, 'wrong password entirely')).status).toBe('failed');
    const fifth = await signIn(user.email, 'wrong password entirely');
    expect(fifth.status).toBe('lockedOut');
    expect(fifth.lockoutEnd!.getTime()).toBeGreaterThan(Date.now());
    expect(events.named(BackOfficeEvents.Locked, user.id)).toHaveLength(1);
    const checks = vi.spyOn(ctx.userManager, 'checkPassword');
    try {
      expect((await signIn(user.email, password)).status).toBe('lockedOut');
      expect(checks).not.toHaveBeenCalled();
    } finally {
      checks.mockRestore();
    }
    ctx.clock.advance(5 * 60_000 + 1000);
    try {
      expect((await signIn(user.email, password)).status).toBe('success');
    } finally {
      ctx.clock.advance(-(5 * 60_000 + 1000));
    }
  });

  it('a success resets the failed count (and notifies the reset)', async () => {
    const user = await newUser();
    await signIn(user.email, 'wrong password entirely');
    await signIn(user.email, 'wrong password entirely');
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(2);
    expect((await signIn(user.email, password)).status).toBe('success');
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(0);
    expect(events.named(BackOfficeEvents.AccessFailedCountReset, user.id)).toHaveLength(1);
  });

  it('ASVS 2.2.1: unknown usernames are counted and lock the same way, so lockout reveals no account', async () => {
    const ghost = `ghost-${Date.now()}@example.com`;
    const statuses: string[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await signIn(ghost, 'wrong password entirely')).status);
    expect(statuses).toEqual(['failed', 'failed', 'failed', 'failed', 'lockedOut', 'lockedOut']);
    const user = await newUser();
    const real: string[] = [];
    for (let i = 0; i < 6; i++) real.push((await signIn(user.email, 'wrong password entirely')).status);
    expect(real).toEqual(statuses);
  });

  it('ASVS 2.2.1: 20 concurrent wrong passwords on one account: exactly one lock, one notification, nothing lost', async () => {
    const user = await newUser();
    const results = await Promise.all(Array.from({ length: 20 }, () => signIn(user.email, 'wrong password entirely')));
    const counts = results.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
    // Attempts 1-4 fail, the 5th locks, every later one is refused as locked: none is lost or counted twice.
    expect(counts).toEqual({ failed: 4, lockedOut: 16 });
    expect(events.named(BackOfficeEvents.Locked, user.id)).toHaveLength(1);
    const fresh = (await ctx.userManager.findById(user.id))!;
    expect(fresh.accessFailedCount).toBe(0);
    expect(ctx.userManager.isLockedOut(fresh)).toBe(true);
  });

  it('ASVS 2.2.1: a right password in flight when the account locks does not sign in (no success after the lock)', async () => {
    const user = await newUser();
    const attempts = [...Array.from({ length: 29 }, () => 'wrong password entirely'), 'correct horse battery staple'];
    const results = await Promise.all(attempts.map((pw) => signIn(user.email, pw)));
    const lockedAt = events.events.findIndex((e) => e.eventName === BackOfficeEvents.Locked && e.affectedUserId === user.id);
    expect(lockedAt).toBeGreaterThanOrEqual(0);
    const successAfterLock = events.events.slice(lockedAt).some((e) => e.eventName === BackOfficeEvents.LoginSuccess && e.affectedUserId === user.id);
    expect(successAfterLock).toBe(false);
    expect(results.filter((r) => r.status === 'success').length).toBeLessThanOrEqual(1);
  });

  it('disabled users get notAllowed only after a correct password; wrong password stays failed', async () => {
    const user = await newUser({ groups: ['editor'] });
    expect((await ctx.userManager.setApproved(user, false)).succeeded).toBe(true);
    expect((await signIn(user.email, 'wrong password entirely')).status).toBe('failed');
    expect((await signIn(user.email, password)).status).toBe('notAllowed');
  });

  it('invited users without a password cannot sign in', async () => {
    const user = await newUser({ password: undefined, invited: true });
    expect((await signIn(user.email, password)).status).toBe('failed');
  });

  it('an invitee a password checker vouches for is refused whatever its lockout says (one "pending invitee" rule, as the invite service\'s)', async () => {
    // A manager with lockout off (supportsUserLockout overridden) and an invitee whose row still has a lockoutEnd:
    // the lock does not stop the sign-in, and it must not hide that the invite was never accepted.
    const user = await newUser({ password: undefined, invited: true });
    await ctx.userManager.getLockoutStore().setLockoutEnd(user.id, new Date(Date.now() + 3_600_000), new Date());
    const lockout = vi.spyOn(ctx.userManager, 'supportsUserLockout', 'get').mockReturnValue(false);
    const checker = vi.spyOn(ctx.userManager, 'checkPassword').mockResolvedValue(true); // e.g. LDAP says "valid"
    try {
      expect(await signIn(user.email, password)).toMatchObject({ status: 'notAllowed', reason: 'not_allowed' });
      expect((await ctx.userManager.findById(user.id))!.lastLoginAt).toBeNull();
    } finally {
      checker.mockRestore();
      lockout.mockRestore();
    }
  });

  it('denyLocalLogin refuses password sign-in outright', async () => {
    const strict = await createIdentityApp(db, { identity: { denyLocalLogin: true } });
    try {
      const user = await newUser();
      expect(await strict.signInManager.passwordSignIn(user.email, password)).toMatchObject({ status: 'notAllowed', reason: 'local_login_disabled' });
    } finally {
      await strict.close();
    }
  });

  it('requiresTwoFactor when the user has 2FA on and the manager supports it', async () => {
    const user = await newUser();
    await ctx.userManager.setTwoFactorEnabled(user, true);
    const result = await signIn(user.email, password);
    expect(result.status).toBe('requiresTwoFactor');
    expect(events.named(BackOfficeEvents.LoginRequiresVerification, user.id)).toHaveLength(1);
    expect(events.named(BackOfficeEvents.LoginSuccess, user.id)).toHaveLength(0);
  });

  it('bad input gives failed, never an exception: empty, 10 kB, non-string, NFC/NFD username', async () => {
    const user = await newUser({ email: 'zoë@example.com' });
    expect((await signIn('', password)).status).toBe('failed');
    expect((await signIn('x'.repeat(10_000), password)).status).toBe('failed');
    expect((await signIn(user.email, 'x'.repeat(10_000))).status).toBe('failed');
    expect((await signIn(null as unknown as string, password)).status).toBe('failed');
    expect((await signIn(user.email, 12 as unknown as string)).status).toBe('failed');
    expect((await signIn(['a'] as unknown as string, password)).status).toBe('failed');
    expect((await signIn('zoë@example.com'.normalize('NFD'), password)).status).toBe('success');
    expect((await signIn('zoë@example.com'.normalize('NFC'), password)).status).toBe('success');
  });

  it('a listener that throws (sync or async) does not break sign-in', async () => {
    const user = await newUser();
    const { EventEmitter2 } = await import('@nestjs/event-emitter');
    const emitter = ctx.app.get(EventEmitter2);
    const sync = () => {
      throw new Error('sync listener failure');
    };
    const asyncFail = async () => {
      throw new Error('async listener failure');
    };
    emitter.on(BackOfficeEvents.LoginSuccess, sync);
    emitter.on(BackOfficeEvents.LoginSuccess, asyncFail);
    try {
      expect((await signIn(user.email, password)).status).toBe('success');
      expect(events.named(BackOfficeEvents.LoginSuccess, user.id)).toHaveLength(1);
    } finally {
      emitter.off(BackOfficeEvents.LoginSuccess, sync);
      emitter.off(BackOfficeEvents.LoginSuccess, asyncFail);
    }
  });

  it('10 concurrent resets with one token: exactly one succeeds', async () => {
    const user = await newUser();
    const token = await ctx.userManager.generatePasswordResetToken(user);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => ctx.userManager.resetPassword({ ...user }, token, `concurrent new passphrase ${i}`)),
    );
    expect(results.filter((r) => r.succeeded)).toHaveLength(1);
    expect(results.filter((r) => !r.succeeded).every((r) => r.errors[0].code === 'invalid_token')).toBe(true);
    const winner = results.findIndex((r) => r.succeeded);
    const fresh = (await ctx.userManager.findById(user.id))!;
    expect(await ctx.userManager.checkPassword(fresh, `concurrent new passphrase ${winner}`)).toBe(true);
    const used = await ctx.app.get(DataSource).query(
      `SELECT count(*)::int AS n FROM backoffice_user_token WHERE user_id = $1 AND used_at IS NULL`, [user.id]);
    expect(used[0].n).toBe(0);
  });
});
