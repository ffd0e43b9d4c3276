import pg from 'pg';
import * as bcrypt from 'bcrypt';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import type { HttpClient, HttpResult } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { connectLockObserver, holdAdminGroupLock, whileLockHeld, type HeldLock } from '../support/lock-waits.js';

/**
 * POST /users/:id/disable, POST /users/:id/enable, DELETE /users/:id, PUT /users/:id (an email move or a new name),
 * POST /users/:id/force-password-reset, POST /users/:id/2fa/reset, POST /users/:id/unlock, DELETE /users/:id/sessions
 * and POST /users/:id/resend-invite by a caller outside `admin` (users.manage, sessions.manage, users.invite)
 * whose request checked the target (assertMayManage) on a copy read before a concurrent change made the target an
 * admin. Those writes take the admin group's lock (the last-admin rule), so the test holds that lock in its own
 * transaction: the caller's request waits for it after its checks, and the test's transaction makes the target an
 * admin, then commits. Before the fix the write went ahead on the stale check: a helpdesk user disabled, enabled or
 * deleted an admin (as PUT /users/:id/groups already re-checked, set-groups-race.spec.ts).
 */
describe.skipIf(dbKind() !== 'postgres')('disable, enable and delete checked against the user as stored when they are written', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let desk: HttpClient;
  let admin: HttpClient;
  let observer: pg.Client;
  const make = userFactory(() => ctx, 'managerace');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    const permissions = ['users.manage', 'users.read', 'users.invite', 'sessions.manage'];
    expect((await admin.post('/groups', { alias: 'helpdesk', name: 'Helpdesk', permissions })).status).toBe(201);
    desk = await signedInClient(ctx, (await make({ groups: ['helpdesk'] })).email);
    observer = await connectLockObserver(db.url);
  });
  afterAll(async () => {
    await observer?.end();
    await ctx?.close();
    await db?.drop();
  });

  const stored = async (userId: string) =>
    (await observer.query(`SELECT is_approved FROM backoffice_user WHERE id = $1`, [userId])).rows[0] as { is_approved: boolean } | undefined;

  /** Sends the caller's request while the test holds the admin group's lock, makes the target an admin in that transaction, commits. */
  const whileMadeAdmin = (targetId: string, send: () => Promise<HttpResult>, hold: HeldLock<HttpResult>['hold'] = holdAdminGroupLock): Promise<HttpResult> =>
    whileLockHeld(db.url, observer, {
      hold,
      send,
      meanwhile: (tx) => tx.query(`INSERT INTO backoffice_user_group (user_id, group_id) SELECT $1, id FROM backoffice_group WHERE alias = 'admin'`, [targetId]),
    });

  /**
   * As {@link whileMadeAdmin}, the test's transaction also holding the target's row: a write that takes no admin lock
   * (before the fix) waits for the row instead, and still runs after the target was made an admin. `also` (SQL, `$1` the
   * target's id) locks more of the target's rows in that transaction (its sessions, for a write that touches only them).
   */
  const whileMadeAdminRowLocked = (targetId: string, send: () => Promise<HttpResult>, also?: string): Promise<HttpResult> =>
    whileMadeAdmin(targetId, send, async (tx) => {
      await holdAdminGroupLock(tx);
      await tx.query(`SELECT id FROM backoffice_user WHERE id = $1 FOR UPDATE`, [targetId]);
      if (also) await tx.query(also, [targetId]);
    });

  const expectForbidden = (res: HttpResult) => {
    expect(res.status, res.text).toBe(403);
    expect(res.body.code).toBe('forbidden');
  };

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.manage caller outside admin cannot disable a user made an admin while its request was under way', async () => {
    const target = await make({ groups: ['editor'] });
    const res = await whileMadeAdmin(target.id, () => desk.post(`/users/${target.id}/disable`, {}));
    expectForbidden(res);
    expect(await stored(target.id)).toEqual({ is_approved: true });
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.manage caller outside admin cannot enable a disabled user made an admin while its request was under way', async () => {
    const target = await make({ groups: ['editor'], isApproved: false });
    const res = await whileMadeAdmin(target.id, () => desk.post(`/users/${target.id}/enable`, {}));
    expectForbidden(res);
    expect(await stored(target.id)).toEqual({ is_approved: false });
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.manage caller outside admin cannot delete a user made an admin while its request was under way', async () => {
    const target = await make({ groups: ['editor'] });
    const res = await whileMadeAdmin(target.id, () => desk.delete(`/users/${target.id}`));
    expectForbidden(res);
    expect(await stored(target.id)).toEqual({ is_approved: true });
  });

  it("OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.manage caller outside admin cannot move the email of a user made an admin while its request was under way (the admin's reset link would go to the caller)", async () => {
    const target = await make({ groups: ['editor'] });
    const res = await whileMadeAdminRowLocked(target.id, () => desk.request('PUT', `/users/${target.id}`, { body: { email: 'attacker@evil.example' } }));
    expectForbidden(res);
    expect((await observer.query(`SELECT email FROM backoffice_user WHERE id = $1`, [target.id])).rows[0].email).toBe(target.email);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.manage caller outside admin cannot force a password reset on a user made an admin while its request was under way', async () => {
    const target = await make({ groups: ['editor'] });
    const before = (await observer.query(`SELECT password_hash FROM backoffice_user WHERE id = $1`, [target.id])).rows[0].password_hash;
    const res = await whileMadeAdminRowLocked(target.id, () => desk.post(`/users/${target.id}/force-password-reset`, {}));
    expectForbidden(res);
    expect((await observer.query(`SELECT password_hash FROM backoffice_user WHERE id = $1`, [target.id])).rows[0].password_hash).toBe(before);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.manage caller outside admin cannot reset the 2FA of a user made an admin while its request was under way', async () => {
    const target = await make({ groups: ['editor'] });
    await ctx.userManager.getTwoFactorProvider('totp')!.generateSetup(target);
    await ctx.userManager.setTwoFactorEnabled(target, true);
    const twoFactor = async () => ({
      enabled: (await observer.query(`SELECT two_factor_enabled FROM backoffice_user WHERE id = $1`, [target.id])).rows[0].two_factor_enabled,
      keys: (await observer.query(`SELECT count(*)::int AS n FROM backoffice_user_authenticator WHERE user_id = $1`, [target.id])).rows[0].n,
    });
    expect(await twoFactor()).toEqual({ enabled: true, keys: 1 });
    const res = await whileMadeAdminRowLocked(target.id, () => desk.post(`/users/${target.id}/2fa/reset`, {}));
    expectForbidden(res);
    expect(await twoFactor()).toEqual({ enabled: true, keys: 1 });
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.manage caller outside admin cannot unlock a user made an admin while its request was under way', async () => {
    const target = await make({ groups: ['editor'] });
    const until = new Date(ctx.clock.now().getTime() + 3600_000);
    expect((await ctx.userManager.setLockoutEnd(target, until)).succeeded).toBe(true);
    const res = await whileMadeAdminRowLocked(target.id, () => desk.post(`/users/${target.id}/unlock`, {}));
    expectForbidden(res);
    expect((await observer.query(`SELECT lockout_end FROM backoffice_user WHERE id = $1`, [target.id])).rows[0].lockout_end).toEqual(until);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.manage caller outside admin cannot rename a user made an admin while its request was under way', async () => {
    const target = await make({ groups: ['editor'] });
    const res = await whileMadeAdminRowLocked(target.id, () => desk.request('PUT', `/users/${target.id}`, { body: { name: 'Renamed by helpdesk' } }));
    expectForbidden(res);
    expect((await observer.query(`SELECT name FROM backoffice_user WHERE id = $1`, [target.id])).rows[0].name).toBe(target.name);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a sessions.manage caller outside admin cannot sign out a user made an admin while its request was under way', async () => {
    const target = await make({ groups: ['editor'] });
    const session = await signedInClient(ctx, target.email);
    const res = await whileMadeAdminRowLocked(
      target.id,
      () => desk.delete(`/users/${target.id}/sessions`),
      `SELECT id FROM backoffice_session WHERE user_id = $1 FOR UPDATE`,
    );
    expectForbidden(res);
    expect((await session.get('/auth/me')).status).toBe(200);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.invite caller outside admin cannot resend (and so void) the invite of an invitee made an admin while its request was under way', async () => {
    const invited = await admin.post('/users/invite', { email: `managerace-invitee-${Date.now()}@example.com`, name: 'Invitee', groups: ['editor'] });
    expect(invited.status, invited.text).toBe(201);
    const targetId = invited.body.user.id as string;
    const links = async () =>
      (await observer.query(`SELECT token_hash FROM backoffice_user_token WHERE user_id = $1 AND purpose = 'invite' AND used_at IS NULL ORDER BY token_hash`, [targetId])).rows;
    const before = await links();
    expect(before).toHaveLength(1);
    const res = await whileMadeAdminRowLocked(targetId, () => desk.post(`/users/${targetId}/resend-invite`, {}));
    expectForbidden(res);
    expect(await links()).toEqual(before);
  });

  it("OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a users.manage caller outside admin cannot overwrite (POST /users/import, onConflict update) a user made an admin while its import was under way (the admin's name, groups and password hash)", async () => {
    const target = await make({ groups: ['editor'] });
    const row = async () =>
      (
        await observer.query(
          `SELECT u.name, u.password_hash, u.security_stamp, array(SELECT g.alias FROM backoffice_user_group ug JOIN backoffice_group g ON g.id = ug.group_id
             WHERE ug.user_id = u.id ORDER BY g.alias) AS groups FROM backoffice_user u WHERE u.id = $1`,
          [target.id],
        )
      ).rows[0];
    const before = await row();
    const passwordHash = await bcrypt.hash('the caller knows this one', 4);
    const res = await whileMadeAdmin(target.id, () =>
      desk.post('/users/import', {
        onConflict: 'update',
        users: [{ email: target.email, name: 'Taken over', groups: ['editor'], passwordFormat: 'bcrypt', passwordHash }],
      }),
    );
    expectForbidden(res);
    expect(res.body.errors?.[0]?.field).toBe('users[0]');
    expect(await row()).toEqual({ ...before, groups: ['admin', 'editor'] });
  });

  it('the same requests without a concurrent change still write (the check is no blanket refusal)', async () => {
    const target = await make({ groups: ['editor'] });
    const imported = await desk.post('/users/import', { onConflict: 'update', users: [{ email: target.email, name: target.name, groups: ['editor'] }] });
    expect(imported.status, imported.text).toBe(200);
    expect(imported.body.summary.updated).toBe(1);
    expect((await desk.post(`/users/${target.id}/disable`, {})).status).toBe(200);
    expect((await desk.post(`/users/${target.id}/enable`, {})).status).toBe(200);
    expect((await desk.request('PUT', `/users/${target.id}`, { body: { email: `moved-${target.id}@example.com` } })).status).toBe(200);
    expect((await desk.request('PUT', `/users/${target.id}`, { body: { name: 'Renamed' } })).status).toBe(200);
    expect((await ctx.userManager.setLockoutEnd(target, new Date(ctx.clock.now().getTime() + 3600_000))).succeeded).toBe(true);
    expect((await desk.post(`/users/${target.id}/unlock`, {})).status).toBe(200);
    await ctx.userManager.getTwoFactorProvider('totp')!.generateSetup(target);
    await ctx.userManager.setTwoFactorEnabled(target, true);
    const twoFactorReset = await desk.post(`/users/${target.id}/2fa/reset`, {});
    expect(twoFactorReset.status, twoFactorReset.text).toBe(200);
    expect((await observer.query(`SELECT count(*)::int AS n FROM backoffice_user_authenticator WHERE user_id = $1`, [target.id])).rows[0].n).toBe(0);
    expect((await desk.delete(`/users/${target.id}/sessions`)).status).toBe(204);
    const reset = await desk.post(`/users/${target.id}/force-password-reset`, {});
    expect(reset.status, reset.text).toBe(200);
    expect((await desk.delete(`/users/${target.id}`)).status).toBe(204);
    expect(await stored(target.id)).toBeUndefined();
    const invited = await admin.post('/users/invite', { email: `managerace-resend-${Date.now()}@example.com`, name: 'Invitee', groups: ['editor'] });
    const resent = await desk.post(`/users/${invited.body.user.id}/resend-invite`, {});
    expect(resent.status, resent.text).toBe(202);
  });
});
