import pg from 'pg';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';

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

  const waitsQuery = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`;
  /** Some backend waits for another backend that itself waits for the test's transaction (`blocker`): a queue behind it. */
  const queuedBehindQuery = `SELECT count(*)::int AS n FROM pg_stat_activity a
     WHERE a.datname = current_database() AND EXISTS (SELECT 1 FROM unnest(pg_blocking_pids(a.pid)) b WHERE b <> $1 AND $1 = ANY(pg_blocking_pids(b)))`;

  async function until(condition: () => Promise<boolean>): Promise<void> {
    while (!(await condition())) await new Promise((resolve) => setImmediate(resolve));
  }

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
    const waits = async () => (await observer.query(waitsQuery)).rows[0].n as number;
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
