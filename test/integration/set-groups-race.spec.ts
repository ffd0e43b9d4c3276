import pg from 'pg';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import type { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { connectLockObserver, holdAdminGroupLock, whileLockHeld } from '../support/lock-waits.js';

/**
 * PUT /users/:id/groups by a caller outside `admin` (users.manage) whose request read the target before a concurrent
 * change made the target someone the caller may not manage. The interleaving is fixed with the admin group's lock,
 * held by the test's transaction (the lock every membership write takes): the caller's request waits for it after
 * its checks, and the test's transaction adds the target to a group beyond the caller, then commits.
 */
describe.skipIf(dbKind() !== 'postgres')('group changes checked against the user as stored when they are written', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let desk: HttpClient;
  let observer: pg.Client;
  const make = userFactory(() => ctx, 'setgroupsrace');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    for (const group of [
      { alias: 'helpdesk', name: 'Helpdesk', permissions: ['users.manage', 'users.read'] },
      { alias: 'readers', name: 'Readers', permissions: ['users.read'] },
      { alias: 'auditors', name: 'Auditors', permissions: ['audit.read'] },
    ]) {
      expect((await admin.post('/groups', group)).status).toBe(201);
    }
    desk = await signedInClient(ctx, (await make({ groups: ['helpdesk'] })).email);
    observer = await connectLockObserver(db.url);
  });
  afterAll(async () => {
    await observer?.end();
    await ctx?.close();
    await db?.drop();
  });

  const groupsOf = async (userId: string) =>
    (
      await observer.query(
        `SELECT g.alias FROM backoffice_user_group ug JOIN backoffice_group g ON g.id = ug.group_id WHERE ug.user_id = $1 ORDER BY g.alias`,
        [userId],
      )
    ).rows.map((r) => r.alias as string);

  /** Runs the caller's PUT while the test holds the admin group's lock, adds the target to `added` in that transaction, commits. */
  const setGroupsWhileAdded = (targetId: string, groups: string[], added: string) =>
    whileLockHeld(db.url, observer, {
      hold: holdAdminGroupLock,
      send: () => desk.request('PUT', `/users/${targetId}/groups`, { body: { groups } }),
      meanwhile: (tx) => tx.query(`INSERT INTO backoffice_user_group (user_id, group_id) SELECT $1, id FROM backoffice_group WHERE alias = $2`, [targetId, added]),
    });

  it.each([
    ['admin', 'made an admin'],
    ['auditors', 'given audit.read (which the caller lacks)'],
  ])(
    'OWASP ASVS 5.0 15.4.2 / 8.2.1: a users.manage caller outside admin cannot take away "%s" from a user %s while its request was under way: 403, the membership stays',
    async (added) => {
      const target = await make({ groups: ['editor'] });
      const res = await setGroupsWhileAdded(target.id, ['editor', 'readers'], added);
      expect(res.status, res.text).toBe(403);
      expect(res.body.code).toBe('forbidden');
      expect(await groupsOf(target.id)).toEqual([added, 'editor'].sort());
    },
  );

  it('the same request without a concurrent change still writes (the check is no blanket refusal)', async () => {
    const target = await make({ groups: ['editor'] });
    const res = await desk.request('PUT', `/users/${target.id}/groups`, { body: { groups: ['editor', 'readers'] } });
    expect(res.status, res.text).toBe(200);
    expect(await groupsOf(target.id)).toEqual(['editor', 'readers']);
  });

  it('OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1: a stale admin session cannot re-add a group a concurrent change took away while its request was under way: 401 reauthentication_required, nothing written', async () => {
    const admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes: a stolen cookie (the suite's last test: every session is stale now)
    const target = await make({ groups: ['writer'] });
    // The request reads the target in writer (nothing added, as far as it can tell); the test's transaction takes writer away.
    const res = await whileLockHeld(db.url, observer, {
      hold: holdAdminGroupLock,
      send: () => admin.request('PUT', `/users/${target.id}/groups`, { body: { groups: ['writer'] } }),
      meanwhile: (tx) =>
        tx.query(`DELETE FROM backoffice_user_group WHERE user_id = $1 AND group_id = (SELECT id FROM backoffice_group WHERE alias = 'writer')`, [target.id]),
    });
    expect({ status: res.status, code: res.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
    expect(await groupsOf(target.id)).toEqual([]);
  });
});
