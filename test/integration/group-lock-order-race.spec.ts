import pg from 'pg';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import type { HttpClient, HttpResult } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { connectLockObserver, holdAdminGroupLock, inTurn, lockWaitersReach, whileLockHeld } from '../support/lock-waits.js';

/**
 * The lock order of the writes that touch groups and their members, on real PostgreSQL: DELETE /groups/:alias with
 * ?moveMembersTo= (both group rows FOR UPDATE in alias order, then the members' rows through the memberships it
 * inserts), PUT /groups/:alias (its row FOR UPDATE), PUT /users/:id/groups and POST /users/import with onConflict
 * update (the admin lock, the groups FOR SHARE in alias order, then the user's row) and disable / enable (the same
 * re-check as stored). A deadlock reaches a client as 503 database_unavailable: every answer here must be one a
 * serial run could give.
 */
const ANSWERS = [200, 204, 400, 403, 404, 409];

const expectNo5xx = (results: HttpResult[]) => {
  for (const res of results) expect(ANSWERS, `${res.status} ${res.text}`).toContain(res.status);
};

describe('group delete, group edit, group assignment, import and disable in one lock order', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let desk: HttpClient;
  let admin: HttpClient;
  let observer: pg.Client;
  const make = userFactory(() => ctx, 'grouplockorder');
  /** The deterministic interleavings hold locks in a second connection: PostgreSQL only (PGlite is one session). */
  const onPostgres = dbKind() === 'postgres';
  const pgIt = it.skipIf(!onPostgres);
  let seq = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    const permissions = ['users.manage', 'users.read', 'users.invite'];
    expect((await admin.post('/groups', { alias: 'helpdesk', name: 'Helpdesk', permissions })).status).toBe(201);
    desk = await signedInClient(ctx, (await make({ groups: ['helpdesk'] })).email);
    if (!onPostgres) return;
    observer = await connectLockObserver(db.url);
  });
  afterAll(async () => {
    await observer?.end();
    await ctx?.close();
    await db?.drop();
  });

  /** Two new groups holding only users.read (which the desk holds), the first before the second in alias order. */
  async function groupPair(): Promise<[string, string]> {
    const n = ++seq;
    const pair: [string, string] = [`lo${n}a`, `lo${n}b`];
    for (const alias of pair) expect((await admin.post('/groups', { alias, name: `Lock order ${alias}`, permissions: ['users.read'] })).status).toBe(201);
    return pair;
  }

  const groupsOf = async (userId: string) => [...((await ctx.userManager.findById(userId))?.groups ?? [])].sort();
  const groupExists = async (alias: string) => (await ctx.userManager.knownGroupAliases()).has(alias);

  /**
   * The test's transaction holds the row of group `held` FOR UPDATE (as a PUT /groups/:alias under way does). Each of
   * `sends` starts in turn once every request before it waits for a lock (or answered); then the test commits and
   * answers every request's answer.
   */
  const whileGroupRowHeld = (held: string, sends: Array<() => Promise<HttpResult>>): Promise<HttpResult[]> =>
    whileLockHeld(db.url, observer, { hold: (tx) => tx.query(`SELECT id FROM backoffice_group WHERE alias = $1 FOR UPDATE`, [held]), ...inTurn(observer, sends) });

  /**
   * The delete of `from` (moving its members into `into`) holds `from` and waits for `into`, held by the test's
   * transaction; then `send` writes a member of `from` and would give it `into`: it must wait for the delete's groups
   * before it takes a row the delete needs (its membership rows, its user row), or the two deadlock.
   */
  async function behindMovingDelete(from: string, into: string, send: () => Promise<HttpResult>): Promise<HttpResult[]> {
    return whileGroupRowHeld(into, [() => admin.delete(`/groups/${from}?moveMembersTo=${into}`), send]);
  }

  pgIt('PUT /users/:id/groups by an admin, moving a member of a group being deleted into the group its members move to: no deadlock (503)', async () => {
    const [from, into] = await groupPair();
    const target = await make({ groups: [from] });
    const [deleted, set] = await behindMovingDelete(from, into, () => admin.request('PUT', `/users/${target.id}/groups`, { body: { groups: [into] } }));
    expect([deleted.status, set.status], `${deleted.text} ${set.text}`).toEqual([204, 200]);
    expect(await groupExists(from)).toBe(false);
    expect(await groupsOf(target.id)).toEqual([into]);
  });

  pgIt('POST /users/import (onConflict update) by an admin, moving a member of a group being deleted into the group its members move to: no deadlock (503)', async () => {
    const [from, into] = await groupPair();
    const target = await make({ groups: [from] });
    const [deleted, imported] = await behindMovingDelete(from, into, () =>
      admin.post('/users/import', { onConflict: 'update', users: [{ email: target.email, name: 'Imported', groups: [into] }] }),
    );
    expect([deleted.status, imported.status], `${deleted.text} ${imported.text}`).toEqual([204, 200]);
    expect(await groupExists(from)).toBe(false);
    expect(await groupsOf(target.id)).toEqual([into]);
  });

  pgIt('OWASP ASVS 4.0 4.1.3: PUT /users/:id/groups by a users.manage caller outside admin, behind the same delete: no deadlock (503)', async () => {
    const [from, into] = await groupPair();
    const target = await make({ groups: [from] });
    const [deleted, set] = await behindMovingDelete(from, into, () => desk.request('PUT', `/users/${target.id}/groups`, { body: { groups: [into] } }));
    expect([deleted.status, set.status], `${deleted.text} ${set.text}`).toEqual([204, 200]);
    expect(await groupsOf(target.id)).toEqual([into]);
  });

  pgIt('OWASP ASVS 4.0 4.1.3: POST /users/import (onConflict update) by a users.manage caller outside admin, behind the same delete: no deadlock (503)', async () => {
    const [from, into] = await groupPair();
    const target = await make({ groups: [from] });
    const [deleted, imported] = await behindMovingDelete(from, into, () =>
      desk.post('/users/import', { onConflict: 'update', users: [{ email: target.email, name: 'Imported', groups: [into] }] }),
    );
    expect([deleted.status, imported.status], `${deleted.text} ${imported.text}`).toEqual([204, 200]);
    expect(await groupsOf(target.id)).toEqual([into]);
  });

  pgIt('disable and enable of a member of the group being deleted (by the desk and by an admin), behind the same delete: no deadlock (503)', async () => {
    const [from, into] = await groupPair();
    const disabled = await make({ groups: [from] });
    const enabled = await make({ groups: [from], isApproved: false });
    const results = await whileGroupRowHeld(into, [
      () => admin.delete(`/groups/${from}?moveMembersTo=${into}`),
      () => desk.post(`/users/${disabled.id}/disable`, {}),
      () => admin.post(`/users/${enabled.id}/enable`, {}),
    ]);
    expect(results.map((r) => r.status)).toEqual([204, 200, 200]);
    expect([await groupsOf(disabled.id), await groupsOf(enabled.id)]).toEqual([[into], [into]]);
  });

  pgIt('PUT /groups/:alias on the group the members move to, and a PUT /users/:id/groups giving it, queued behind the delete: no deadlock (503)', async () => {
    const [from, into] = await groupPair();
    const target = await make({ groups: [from] });
    const results = await whileGroupRowHeld(into, [
      () => admin.delete(`/groups/${from}?moveMembersTo=${into}`),
      () => admin.request('PUT', `/groups/${into}`, { body: { permissions: ['users.read', 'audit.read'] } }),
      () => desk.request('PUT', `/users/${target.id}/groups`, { body: { groups: [into] } }),
    ]);
    expectNo5xx(results);
    expect(results.slice(0, 2).map((r) => r.status)).toEqual([204, 200]);
    // The edit gave `into` a permission the desk lacks: refused if seen, else the edit waited for the assignment.
    expect([200, 403]).toContain(results[2].status);
    expect(await groupsOf(target.id)).toEqual([into]);
  });

  /** Sends `send` while the test holds the admin group's lock (taken by the write after its checks), runs `meanwhile`, commits. */
  const whileAdminLockHeld = (send: () => Promise<HttpResult>, meanwhile: () => Promise<void>): Promise<HttpResult> =>
    whileLockHeld(db.url, observer, { hold: holdAdminGroupLock, send, meanwhile: () => meanwhile() });

  pgIt('OWASP ASVS 4.0 7.4.1: PUT /users/:id/groups naming a group deleted after the request checked it answers as a serial request naming an unknown group (4xx, not 500)', async () => {
    const [gone, kept] = await groupPair();
    const target = await make({ groups: [kept] });
    const serial = await admin.request('PUT', `/users/${target.id}/groups`, { body: { groups: [kept, 'lo-no-such-group'] } });
    expect(serial.status, serial.text).toBe(400);
    for (const caller of [admin, desk]) {
      const alias = caller === admin ? gone : (await groupPair())[0];
      const res = await whileAdminLockHeld(
        () => caller.request('PUT', `/users/${target.id}/groups`, { body: { groups: [kept, alias] } }),
        async () => expect((await admin.delete(`/groups/${alias}`)).status).toBe(204),
      );
      expect({ status: res.status, code: res.body.code }, res.text).toEqual({ status: 400, code: serial.body.code });
      expect(await groupsOf(target.id)).toEqual([kept]);
    }
  });

  /**
   * Sends `send` while the test's transaction deletes group `alias` (its row held FOR UPDATE, as DELETE /groups/:alias
   * holds it), once the request waits for that row, commits the delete.
   */
  const whileGroupDeleted = (alias: string, send: () => Promise<HttpResult>): Promise<HttpResult> =>
    whileLockHeld(db.url, observer, {
      hold: async (tx) => {
        await tx.query(`SELECT id FROM backoffice_group WHERE alias = $1 FOR UPDATE`, [alias]);
        await tx.query(`DELETE FROM backoffice_group WHERE alias = $1`, [alias]);
      },
      send,
    });

  const outcomeOf = (res: HttpResult, i: number) => ({ outcome: res.body.results?.[i]?.outcome, codes: res.body.results?.[i]?.errors?.map((e: { code: string }) => e.code) });

  pgIt('OWASP ASVS 4.0 7.4.1: POST /users/import (onConflict update) naming a group deleted after the import checked it answers as naming an unknown group, nothing of that user written', async () => {
    const [, kept] = await groupPair();
    const target = await make({ groups: [kept] });
    const serial = await admin.post('/users/import', { onConflict: 'update', users: [{ email: target.email, name: 'Serial', groups: [kept, 'lo-no-such-group'] }] });
    expect(serial.status, serial.text).toBe(200);
    for (const caller of [admin, desk]) {
      const [gone] = await groupPair();
      const res = await whileGroupDeleted(gone, () =>
        caller.post('/users/import', { onConflict: 'update', users: [{ email: target.email, name: 'Imported', groups: [kept, gone] }] }),
      );
      expect(res.status, res.text).toBe(200);
      expect(outcomeOf(res, 0), res.text).toEqual(outcomeOf(serial, 0));
      expect((await ctx.userManager.findById(target.id))?.name).not.toBe('Imported');
      expect(await groupsOf(target.id)).toEqual([kept]);
    }
  });

  pgIt('OWASP ASVS 4.0 7.4.1: POST /users/import creating users, one naming a group deleted after the import checked it: that record answers as naming an unknown group and is not created, the others are', async () => {
    const [gone, kept] = await groupPair();
    const [lost, fine] = [`${gone}-lost@example.test`, `${gone}-fine@example.test`];
    const serial = await admin.post('/users/import', { users: [{ email: `${gone}-serial@example.test`, name: 'Serial', groups: [kept, 'lo-no-such-group'] }] });
    expect(serial.status, serial.text).toBe(200);
    const res = await whileGroupDeleted(gone, () =>
      admin.post('/users/import', {
        users: [
          { email: lost, name: 'Lost', groups: [kept, gone] },
          { email: fine, name: 'Fine', groups: [kept] },
        ],
      }),
    );
    expect(res.status, res.text).toBe(200);
    expect([outcomeOf(res, 0), res.body.results[1].outcome], res.text).toEqual([outcomeOf(serial, 0), 'created']);
    expect(await ctx.userManager.findByEmail(lost)).toBeNull();
    expect(await groupsOf((await ctx.userManager.findByEmail(fine))!.id)).toEqual([kept]);
  });

  pgIt('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: a disable by a users.manage caller re-checks a target moved (DELETE /groups/:alias?moveMembersTo=) into a group while its group locks waited: an edit of that group committed before the disable sees the permission it gave (403), as a serial run would', async () => {
    const n = ++seq;
    const [from, into, other] = [`lo${n}a`, `lo${n}b`, `lo${n}c`]; // alias order: from < into < other
    for (const alias of [from, into, other]) expect((await admin.post('/groups', { alias, name: `Moved ${alias}`, permissions: ['users.read'] })).status).toBe(201);
    const target = await make({ groups: [from, other] });
    const bystander = await make({ groups: [from] });
    const client = async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query('BEGIN');
      return c;
    };
    const [holdsBystander, holdsOther, edit] = [await client(), await client(), await client()];
    try {
      // The delete will wait for the bystander's row (its membership insert's key share), holding both groups' rows.
      await holdsBystander.query('SELECT id FROM backoffice_user WHERE id = $1 FOR UPDATE', [bystander.id]);
      // The disable's lock statement will wait for `other` once `from` is gone.
      await holdsOther.query('SELECT id FROM backoffice_group WHERE alias = $1 FOR UPDATE', [other]);
      // A group edit in a transaction that also holds a row the disable writes (the target's, not its key: the delete's
      // membership insert still passes): the disable, if it goes on, is ordered after the edit.
      await edit.query('SELECT id FROM backoffice_user WHERE id = $1 FOR NO KEY UPDATE', [target.id]);
      const deleted = admin.delete(`/groups/${from}?moveMembersTo=${into}`);
      await lockWaitersReach(observer, 1);
      const disabled = desk.post(`/users/${target.id}/disable`, {});
      await lockWaitersReach(observer, 2); // waits for `from`, which the delete holds
      const edited = edit.query(`UPDATE backoffice_group SET permissions = array_append(permissions, 'groups.manage') WHERE alias = $1`, [into]);
      await lockWaitersReach(observer, 3); // waits for `into`, which the delete holds
      await holdsBystander.query('COMMIT'); // the delete moves the target into `into` and commits
      expect((await deleted).status).toBe(204);
      await edited; // the edit now holds `into`; the disable waits for `other`
      await lockWaitersReach(observer, 1);
      await holdsOther.query('COMMIT');
      // The disable goes on: it waits for the target's row (the edit holds it) or for `into`, either way for the edit.
      await lockWaitersReach(observer, 1);
      await edit.query('COMMIT');
      const res = await disabled;
      // Ordered after the edit (it waited for it), the disable acts on a user who holds groups.manage, which the desk lacks.
      expect({ status: res.status, code: res.body.code }, res.text).toEqual({ status: 403, code: 'forbidden' });
      expect((await ctx.userManager.findById(target.id))?.isApproved).toBe(true);
    } finally {
      for (const c of [holdsBystander, holdsOther, edit]) await c.end();
    }
  });

  it('20 rounds of group deletes, group edits, assignments (desk and admin), imports and disable / enable fired at once: no 5xx, no member of a deleted group', async () => {
    for (let round = 0; round < 20; round++) {
      const [from, into] = await groupPair();
      const users = await Promise.all([0, 1, 2, 3].map((i) => make({ groups: i % 2 === 0 ? [from] : [from, into] })));
      const [u0, u1, u2, u3] = users;
      const sends: Array<() => Promise<HttpResult>> = [
        () => admin.delete(`/groups/${from}?moveMembersTo=${into}`),
        () => admin.request('PUT', `/groups/${into}`, { body: { permissions: ['users.read'], name: `Edited ${round}` } }),
        () => admin.request('PUT', `/groups/${from}`, { body: { permissions: ['users.read'], name: `Edited ${round}` } }),
        () => desk.request('PUT', `/users/${u0.id}/groups`, { body: { groups: [into] } }),
        () => admin.request('PUT', `/users/${u1.id}/groups`, { body: { groups: [from, into] } }),
        () => desk.post('/users/import', { onConflict: 'update', users: [{ email: u2.email, name: `Desk ${round}`, groups: [into] }] }),
        () => admin.post('/users/import', { onConflict: 'update', users: [{ email: u3.email, name: `Admin ${round}`, groups: [into, from] }] }),
        () => desk.post(`/users/${u2.id}/disable`, {}),
        () => admin.post(`/users/${u3.id}/disable`, {}),
        () => desk.post(`/users/${u0.id}/enable`, {}),
      ];
      // A different start order each round.
      const order = sends.map((send, i) => ({ send, key: (i * 7 + round * 3) % sends.length })).sort((a, b) => a.key - b.key);
      const results = await Promise.all(order.map(({ send }) => send()));
      expectNo5xx(results);
      expect(await groupExists(from), `round ${round}`).toBe(false); // the only delete of it, always 204
      for (const user of users) {
        const groups = await groupsOf(user.id);
        expect(groups, `round ${round}: ${user.email}`).not.toContain(from);
        expect(groups.every((g) => g === into), `round ${round}: ${user.email} ${groups}`).toBe(true);
      }
    }
    if (!onPostgres) return;
    const dangling = await observer.query(
      `SELECT count(*)::int AS n FROM backoffice_user_group ug LEFT JOIN backoffice_group g ON g.id = ug.group_id LEFT JOIN backoffice_user u ON u.id = ug.user_id
        WHERE g.id IS NULL OR u.id IS NULL`,
    );
    expect(dangling.rows[0].n).toBe(0);
  });
});
