import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, userFactory, type IdentityApp } from '../support/identity-app.js';
import { BackOfficeEvents, BCRYPT_SHA256_PREFIX, type BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { NotificationRecorder } from '../support/notification-recorder.js';

// A port of the relevant ASP.NET Core Identity UserManager specification tests, against a real database.
describe('BackOfficeUserManager (UserManager specification)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const password = 'correct horse battery staple';
  const newUser = userFactory(() => ctx, 'user');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('creates a user with a hashed password, found by id, email and name case-insensitively', async () => {
    const user = await newUser({ email: 'Mixed.Case@Example.com', groups: ['editor'] });
    expect(user.passwordHash!.startsWith(BCRYPT_SHA256_PREFIX)).toBe(true);
    expect(user.passwordHash).not.toContain(password);
    expect((await ctx.userManager.findById(user.id))?.email).toBe('Mixed.Case@Example.com');
    expect((await ctx.userManager.findByEmail('mixed.case@EXAMPLE.COM'))?.id).toBe(user.id);
    expect((await ctx.userManager.findByName('  MIXED.case@example.com '))?.id).toBe(user.id);
    expect((await ctx.userManager.findById(user.id))?.groups).toEqual(['editor']);
  });

  it('refuses a duplicate email, whatever its case (duplicate_email)', async () => {
    await newUser({ email: 'dup@example.com' });
    const again = await ctx.userManager.createUser({ email: 'DUP@example.COM', name: 'Other', password });
    expect(again.succeeded).toBe(false);
    expect(again.errors.map((e) => e.code)).toEqual(['duplicate_email']);
  });

  it('creates a user without a password, and addPassword sets it once', async () => {
    const user = await newUser({ password: undefined });
    expect(user.passwordHash).toBeNull();
    expect(await ctx.userManager.checkPassword(user, password)).toBe(false);
    expect((await ctx.userManager.addPassword(user, password)).succeeded).toBe(true);
    expect(await ctx.userManager.checkPassword(user, password)).toBe(true);
    const twice = await ctx.userManager.addPassword(user, password);
    expect(twice.errors.map((e) => e.code)).toEqual(['user_already_has_password']);
  });

  it('validates users: bad email, empty name, unknown group give coded errors', async () => {
    const result = await ctx.userManager.createUser({ email: 'not-an-email', name: '', password, groups: ['nope'] });
    expect(result.succeeded).toBe(false);
    expect(result.errors.map((e) => e.code).sort()).toEqual(['invalid_email', 'invalid_name', 'unknown_group']);
  });

  it('ASVS 2.1.1/2.1.2/6.2.4: password validators refuse short, over-long and common passwords', async () => {
    const user = await newUser();
    const codes = async (pw: string) => (await ctx.userManager.validatePassword(user, pw)).errors.map((e) => e.code);
    expect(await codes('short')).toContain('password_too_short');
    expect(await codes('x'.repeat(257))).toContain('password_too_long');
    expect(await codes('password1234')).toContain('password_too_common');
    expect(await codes('Qwertyuiop123!')).toContain('password_too_common');
    expect(await codes('tr0ub4dor&3-horse-staple')).toEqual([]);
    expect(await codes('x'.repeat(256))).toEqual([]);
  });

  it('changes the password with the right current password and renews the security stamp', async () => {
    const user = await newUser();
    const stamp = user.securityStamp;
    const wrong = await ctx.userManager.changePassword(user, 'not the password', 'a brand new passphrase');
    expect(wrong.errors.map((e) => e.code)).toEqual(['password_mismatch']);
    const ok = await ctx.userManager.changePassword(user, password, 'a brand new passphrase');
    expect(ok.succeeded).toBe(true);
    const fresh = (await ctx.userManager.findById(user.id))!;
    expect(fresh.securityStamp).not.toBe(stamp);
    expect(await ctx.userManager.checkPassword(fresh, 'a brand new passphrase')).toBe(true);
    expect(await ctx.userManager.checkPassword(fresh, password)).toBe(false);
  });

  it('changePassword with an invalid new password changes nothing', async () => {
    const user = await newUser();
    const result = await ctx.userManager.changePassword(user, password, 'short');
    expect(result.errors.map((e) => e.code)).toContain('password_too_short');
    const fresh = (await ctx.userManager.findById(user.id))!;
    expect(fresh.securityStamp).toBe(user.securityStamp);
    expect(await ctx.userManager.checkPassword(fresh, password)).toBe(true);
  });

  it('resets the password with a valid token exactly once; wrong, used, other-user and expired tokens give invalid_token', async () => {
    const user = await newUser();
    const other = await newUser();
    const token = await ctx.userManager.generatePasswordResetToken(user);
    const otherToken = await ctx.userManager.generatePasswordResetToken(other);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const code = async (t: string) => (await ctx.userManager.resetPassword(user, t, 'new passphrase for reset')).errors.map((e) => e.code);
    expect(await code('wrong-token')).toEqual(['invalid_token']);
    expect(await code(otherToken)).toEqual(['invalid_token']);
    expect(await code(token)).toEqual([]);
    expect(await code(token)).toEqual(['invalid_token']);
    const fresh = (await ctx.userManager.findById(user.id))!;
    expect(await ctx.userManager.checkPassword(fresh, 'new passphrase for reset')).toBe(true);

    const expiring = await ctx.userManager.generatePasswordResetToken(user);
    ctx.clock.advance(61 * 60_000);
    try {
      expect(await code(expiring)).toEqual(['invalid_token']);
    } finally {
      ctx.clock.advance(-61 * 60_000);
    }
  });

  it('a new reset token voids the previous one, and a password change voids live reset tokens', async () => {
    const user = await newUser();
    const first = await ctx.userManager.generatePasswordResetToken(user);
    const second = await ctx.userManager.generatePasswordResetToken(user);
    expect(await ctx.userManager.verifyUserToken(user, 'password_reset', first)).toBe(false);
    expect(await ctx.userManager.verifyUserToken(user, 'password_reset', second)).toBe(true);
    await ctx.userManager.changePassword(user, password, 'another new passphrase');
    expect(await ctx.userManager.verifyUserToken(user, 'password_reset', second)).toBe(false);
  });

  it('a reset token does not work as an invite token', async () => {
    const user = await newUser();
    const token = await ctx.userManager.generatePasswordResetToken(user);
    expect(await ctx.userManager.verifyUserToken(user, 'invite', token)).toBe(false);
  });

  it('a failed reset (weak password) does not use the token up', async () => {
    const user = await newUser();
    const token = await ctx.userManager.generatePasswordResetToken(user);
    expect((await ctx.userManager.resetPassword(user, token, 'weak')).errors.map((e) => e.code)).toEqual(['password_too_short']);
    expect((await ctx.userManager.resetPassword(user, token, 'a strong enough passphrase')).succeeded).toBe(true);
  });

  it('stores only the SHA-256 of tokens', async () => {
    const user = await newUser();
    const token = await ctx.userManager.generatePasswordResetToken(user);
    const rows: Array<{ token_hash: string }> = await ctx.app.get((await import('typeorm')).DataSource).query(
      'SELECT token_hash FROM backoffice_user_token WHERE user_id = $1', [user.id]);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.token_hash).not.toContain(token);
    const { createHash } = await import('node:crypto');
    expect(rows.map((r) => r.token_hash)).toContain(createHash('sha256').update(token).digest('hex'));
  });

  it('counts failed access, locks at the maximum, and resetAccessFailedCount clears the count', async () => {
    const user = await newUser();
    for (let i = 1; i <= 4; i++) {
      const r = await ctx.userManager.accessFailed(user);
      expect(r).toMatchObject({ lockedNow: false, accessFailedCount: i });
    }
    await ctx.userManager.resetAccessFailedCount(user);
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(0);
    for (let i = 1; i <= 4; i++) await ctx.userManager.accessFailed(user);
    const fifth = await ctx.userManager.accessFailed(user);
    expect(fifth.lockedNow).toBe(true);
    const locked = (await ctx.userManager.findById(user.id))!;
    expect(ctx.userManager.isLockedOut(locked)).toBe(true);
    expect(locked.accessFailedCount).toBe(0);
    expect(Math.round((locked.lockoutEnd!.getTime() - Date.now()) / 60_000)).toBe(5);
    expect((await ctx.userManager.setLockoutEnd(locked, null)).succeeded).toBe(true);
    expect(ctx.userManager.isLockedOut((await ctx.userManager.findById(user.id))!)).toBe(false);
  });

  it('updateSecurityStamp changes the stamp each time', async () => {
    const user = await newUser();
    const stamps = new Set([user.securityStamp]);
    for (let i = 0; i < 3; i++) {
      await ctx.userManager.updateSecurityStamp(user);
      stamps.add((await ctx.userManager.findById(user.id))!.securityStamp);
    }
    expect(stamps.size).toBe(4);
  });

  it('re-hashes a password stored with a lower cost on the next successful check', async () => {
    const bcrypt = await import('bcrypt');
    const user = await newUser({ password: undefined });
    const legacy = await bcrypt.hash(password, 4);
    const { DataSource } = await import('typeorm');
    await ctx.app.get(DataSource).query('UPDATE backoffice_user SET password_hash = $1 WHERE id = $2', [legacy, user.id]);
    const stored = (await ctx.userManager.findById(user.id))!;
    expect(await ctx.userManager.checkPassword(stored, password)).toBe(true);
    const after = (await ctx.userManager.findById(user.id))!;
    expect(after.passwordHash).not.toBe(legacy);
    expect(after.lastPasswordChangeAt).toEqual(stored.lastPasswordChangeAt); // an upgrade, not a change
    expect(after.securityStamp).toBe(stored.securityStamp); // sessions survive it
    expect(after.passwordHash!.startsWith(BCRYPT_SHA256_PREFIX)).toBe(true);
    expect(await ctx.userManager.checkPassword(after, password)).toBe(true);
  });

  it('bad input never throws: empty, 10 kB, non-string and NFC/NFD variants', async () => {
    const user = await newUser({ email: 'unicode@example.com', password: 'Ångström passphrase ñ' });
    const m = ctx.userManager;
    expect(await m.findByName('')).toBeNull();
    expect(await m.findByName('x'.repeat(10_000))).toBeNull();
    expect(await m.findByName(42 as unknown as string)).toBeNull();
    expect(await m.findById('not-a-uuid')).toBeNull();
    expect(await m.checkPassword(user, '')).toBe(false);
    expect(await m.checkPassword(user, 'x'.repeat(10_000))).toBe(false);
    expect(await m.checkPassword(user, { toString: () => 'x' } as unknown as string)).toBe(false);
    // NIST 800-63B 5.1.1.2: passwords are NFKC-normalised, so the NFD spelling of the same password verifies.
    expect(await m.checkPassword(user, 'Ångström passphrase ñ'.normalize('NFD'))).toBe(true);
    expect(await m.checkPassword(user, 'Ångström passphrase ñ'.normalize('NFC'))).toBe(true);
    const created = await m.createUser({ email: 'x'.repeat(10_000), name: 'n', password });
    expect(created.errors.map((e) => e.code)).toContain('invalid_email');
    const weird = await m.createUser({ email: 123 as unknown as string, name: null as unknown as string, password: 5 as unknown as string });
    expect(weird.succeeded).toBe(false);
    expect((await m.resetPassword(user, 'x'.repeat(10_000), password)).errors.map((e) => e.code)).toEqual(['invalid_token']);
  });
  it('accepting an invite and resetting a password end the lockout quietly (clearLockout): no UserUnlockedNotification, so no audit entry', async () => {
    const events = NotificationRecorder.attach(ctx.app);
    try {
      const manager = ctx.userManager;
      const later = () => new Date(manager.now().getTime() + 3_600_000);
      const invited = (await manager.createInvitedUser({ email: `quiet-unlock-${Date.now()}@example.com`, name: 'Quiet', groups: [] })).value!;
      const member = await newUser();
      for (const user of [invited.user, member]) {
        expect((await manager.setLockoutEnd(user, later())).succeeded).toBe(true);
      }
      const resetToken = await manager.generatePasswordResetToken(member);
      events.clear();
      expect((await manager.acceptInvite(invited.user, invited.token, 'an invitee passphrase 1')).succeeded).toBe(true);
      expect((await manager.resetPassword(member, resetToken, 'a reset passphrase 22')).succeeded).toBe(true);
      for (const user of [invited.user, member]) {
        const stored = (await manager.findById(user.id))!;
        expect([stored.lockoutEnd, stored.accessFailedCount]).toEqual([null, 0]);
        expect([user.lockoutEnd, user.accessFailedCount]).toEqual([null, 0]);
        expect(events.named(BackOfficeEvents.Unlocked, user.id)).toEqual([]);
      }
    } finally {
      events.detach();
    }
  });
});
