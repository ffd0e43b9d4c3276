import pg from 'pg';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { lockWaiters, until } from '../support/lock-waits.js';

/**
 * The last-admin rule (no change may leave no enabled admin who can sign in) against concurrent admin requests. Two
 * admins remove each other while a third person is made an admin and, by a request that read that person before
 * the promotion, deleted: each check must see what the others wrote, and the system must never end without an
 * active admin. The interleaving is fixed with locks held by the test (no sleeps): a transaction holds the third
 * person's row (FOR KEY SHARE) and the admin group's lock.
 */
describe.skipIf(dbKind() !== 'postgres')('the last-admin rule under concurrent admin requests', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'lastadminrace');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** Some backend waits for another backend that itself waits for the test's transaction (`blocker`): a queue behind it. */
  const queuedBehindQuery = `SELECT count(*)::int AS n FROM pg_stat_activity a
     WHERE a.datname = current_database() AND EXISTS (SELECT 1 FROM unnest(pg_blocking_pids(a.pid)) b WHERE b <> $1 AND $1 = ANY(pg_blocking_pids(b)))`;

  async function signedIn(email: string): Promise<HttpClient> {
    const http = new HttpClient(ctx.url);
    expect((await http.login(email, TEST_PASSWORD)).status).toBe(200);
    return http;
  }

  it('OWASP ASVS 4.0 4.1.3 (last admin): two admins removing each other while a third is promoted and deleted (by a request that read them before) never leaves zero active admins', async () => {
    const a = await make({ groups: ['admin'] });
    const b = await make({ groups: ['admin'] });
    const c = await make({ groups: ['editor'] });
    const asA = await signedIn(a.email);
    const asB = await signedIn(b.email);
    const asA2 = await signedIn(a.email);
    const asA3 = await signedIn(a.email);

    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    const blockerPid: number = (await blocker.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const waits = () => lockWaiters(observer);
    try {
      await blocker.query('BEGIN');
      // FOR KEY SHARE: holds a delete of C's row, lets C's row be updated and C's memberships be written.
      await blocker.query(`SELECT 1 FROM backoffice_user WHERE id = $1 FOR KEY SHARE`, [c.id]);
      await blocker.query(`SELECT pg_advisory_lock(hashtext('backoffice_group:admin'))`);

      // 1. A deletes C, read as an editor (not an admin): held at the write (or at the group lock).
      const deleteC = asA.delete(`/users/${c.id}`);
      await until(async () => (await waits()) >= 1);
      // 2. A makes C an admin: done (or waiting for the group lock).
      let promoted = false;
      const promoteC = asA2.request('PUT', `/users/${c.id}/groups`, { body: { groups: ['admin', 'editor'] } }).then((r) => ((promoted = true), r));
      await until(async () => promoted || (await waits()) >= 2);
      // 3. A takes B out of admin, and B takes A out of admin, at once (both past the guard, both waiting for the check).
      const removeB = asA3.request('PUT', `/users/${b.id}/groups`, { body: { groups: ['editor'] } });
      const removeA = asB.request('PUT', `/users/${a.id}/groups`, { body: { groups: ['editor'] } });
      await until(async () => (await waits()) >= (promoted ? 3 : 4));
      await blocker.query(`SELECT pg_advisory_unlock(hashtext('backoffice_group:admin'))`);
      // The removals go on; whatever waits behind C's row (directly, or behind a request holding the group lock) waits.
      let removalsDone = false;
      const removals = Promise.all([removeB, removeA]).then((r) => ((removalsDone = true), r));
      await until(async () => removalsDone || (await observer.query(queuedBehindQuery, [blockerPid])).rows[0].n > 0);
      await blocker.query('COMMIT');
      const results: HttpResult[] = [await deleteC, await promoteC, ...(await removals)];
      expect(results.map((r) => r.status).filter((s) => s >= 500)).toEqual([]);

      const active = await observer.query(
        `SELECT u.email FROM backoffice_user u JOIN backoffice_user_group ug ON ug.user_id = u.id JOIN backoffice_group g ON g.id = ug.group_id
         WHERE g.alias = 'admin' AND u.kind = 'person' AND u.is_approved AND (u.lockout_end IS NULL OR u.lockout_end <= now())`,
      );
      // The promotion of a user deleted first is a 404 (the user is gone), never a 5xx.
      expect([200, 404]).toContain(results[1].status);
      expect({ statuses: results.map((r) => `${r.status} ${r.body?.code ?? ''}`.trim()), activeAdmins: active.rows.length }).toMatchObject({ activeAdmins: 1 });
    } finally {
      await blocker.end().catch(() => undefined);
      await observer.end();
    }
  });

});

/**
 * The import's last-admin check (`POST /users/import` with `onConflict: 'update'`, the CLI) against an admin request:
 * the import read its targets before it took the admin-group lock, so a target disabled at that read was not counted
 * although it was enabled (and counted by the request taking the other admin out) before the import demoted it.
 * A database of its own: no admin of another test may count.
 */
describe.skipIf(dbKind() !== 'postgres')('the import\'s last-admin rule under a concurrent admin request', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'importadminrace');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });


  async function signedIn(email: string): Promise<HttpClient> {
    const http = new HttpClient(ctx.url);
    expect((await http.login(email, TEST_PASSWORD)).status).toBe(200);
    return http;
  }

  it('OWASP ASVS 4.0 4.1.3 (last admin): an import taking user A out of admin while A is enabled and the other admin B is taken out of admin never leaves zero active admins (the import reads A under the admin-group lock)', async () => {
    // A: an admin, disabled (so not counted when the import first reads it); B: the only active admin, the caller.
    const a = await make({ groups: ['admin'] });
    const b = await make({ groups: ['admin'] });
    expect((await ctx.userManager.setApproved((await ctx.userManager.findById(a.id))!, false)).succeeded).toBe(true);
    const importing = await signedIn(b.email);
    const enabling = await signedIn(b.email);
    const removing = await signedIn(b.email);

    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    const waits = () => lockWaiters(observer);
    try {
      await blocker.query('BEGIN');
      // FOR KEY SHARE: holds the import's FOR UPDATE of A's row, lets A's row be updated and its memberships be written.
      await blocker.query(`SELECT 1 FROM backoffice_user WHERE id = $1 FOR KEY SHARE`, [a.id]);

      // 1. An import (onConflict update) takes A out of admin: held at A's row, after it has read A.
      const imported = importing.post('/users/import', { onConflict: 'update', users: [{ email: a.email, name: 'Imported A', groups: ['editor'] }] });
      await until(async () => (await waits()) >= 1);
      // 2. B enables A: done (or waiting for the admin-group lock the import holds).
      let enabled = false;
      const enableA = enabling.post(`/users/${a.id}/enable`).then((r) => ((enabled = true), r));
      await until(async () => enabled || (await waits()) >= 2);
      // 3. B takes itself out of admin, counting A: done (or waiting for the admin-group lock).
      let removed = false;
      const removeB = removing.request('PUT', `/users/${b.id}/groups`, { body: { groups: ['editor'] } }).then((r) => ((removed = true), r));
      await until(async () => removed || (await waits()) >= (enabled ? 2 : 3));
      await blocker.query('COMMIT');
      const results: HttpResult[] = [await imported, await enableA, await removeB];
      expect(results.map((r) => r.status).filter((s) => s >= 500)).toEqual([]);

      const active = await observer.query(
        `SELECT u.email FROM backoffice_user u JOIN backoffice_user_group ug ON ug.user_id = u.id JOIN backoffice_group g ON g.id = ug.group_id
         WHERE g.alias = 'admin' AND u.kind = 'person' AND u.is_approved AND (u.lockout_end IS NULL OR u.lockout_end <= now())`,
      );
      expect({
        statuses: results.map((r) => `${r.status} ${r.body?.code ?? ''}`.trim()),
        importOutcome: results[0].body?.results?.[0]?.outcome,
        activeAdmins: active.rows.length,
      }).toEqual({
        // The import demoted A (disabled when it read A under the lock); the request taking B out then counted no other admin.
        statuses: ['200', '200', '409 last_admin'],
        importOutcome: 'updated',
        activeAdmins: 1,
      });
    } finally {
      await blocker.end().catch(() => undefined);
      await observer.end();
    }
  });
});
