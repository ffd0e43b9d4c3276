import pg from 'pg';
import { InMemoryBackOfficeStores, type InMemoryBackOfficeStoreSet, type InMemoryBackOfficeUserStore } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import type { HttpClient, HttpResult } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { connectLockObserver, inTurn, whileLockHeld } from '../support/lock-waits.js';

/**
 * POST /users/api, POST /users/invite and PUT /users/:id/groups by a caller outside `admin` who may assign a group
 * (they hold every permission of it) when their request checks it, while a concurrent group edit (PATCH
 * /groups/:alias) gives that group a permission the caller lacks. The test's transaction does what the group store's
 * edit does (the group's row FOR UPDATE, then the new permissions) and holds it: the caller's request waits for the
 * group's row after its first check, and the test commits the edit. The check must see the group as stored when the
 * membership is written (403, nothing written), or the edit must wait for the membership: before the fix the request
 * went ahead on its stale check and the new member held a permission its creator lacks.
 */
describe.skipIf(dbKind() !== 'postgres')('groups assigned checked as stored when the membership is written', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let desk: HttpClient;
  let admin: HttpClient;
  let observer: pg.Client;
  const make = userFactory(() => ctx, 'assignrace');
  let groupSeq = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    const permissions = ['users.manage', 'users.read', 'users.invite'];
    expect((await admin.post('/groups', { alias: 'helpdesk', name: 'Helpdesk', permissions })).status).toBe(201);
    desk = await signedInClient(ctx, (await make({ groups: ['helpdesk'] })).email);
    observer = await connectLockObserver(db.url);
  });
  afterAll(async () => {
    await observer?.end();
    await ctx?.close();
    await db?.drop();
  });

  /** A new group holding only users.read (which the caller holds). */
  async function readersGroup(): Promise<string> {
    const alias = `readers${++groupSeq}`;
    expect((await admin.post('/groups', { alias, name: `Readers ${groupSeq}`, permissions: ['users.read'] })).status).toBe(201);
    return alias;
  }

  const membersOf = async (alias: string) =>
    (
      await observer.query(
        `SELECT u.email FROM backoffice_user_group ug JOIN backoffice_user u ON u.id = ug.user_id JOIN backoffice_group g ON g.id = ug.group_id
         WHERE g.alias = $1 ORDER BY u.email`,
        [alias],
      )
    ).rows.map((r) => r.email as string);

  /**
   * Sends the caller's request while the test's transaction edits `alias` as the group store does (its row FOR UPDATE,
   * audit.read added), waits until the request waits for a lock, then commits the edit.
   */
  async function whileGroupGainsAuditRead(alias: string, send: () => Promise<HttpResult>, also?: { sql: string; param: string }): Promise<HttpResult> {
    const [answer] = await whileLockHeld(db.url, observer, {
      hold: async (tx) => {
        await tx.query(`SELECT id FROM backoffice_group WHERE alias = $1 FOR UPDATE`, [alias]);
        await tx.query(`UPDATE backoffice_group SET permissions = array_append(permissions, 'audit.read') WHERE alias = $1`, [alias]);
        // Another row the request writes after its re-check, held by the same transaction: the request's write then waits
        // and commits after the edit did, so a check it made on the group as it was before the edit goes stale.
        if (also) await tx.query(also.sql, [also.param]);
      },
      // Until the request waits for a lock, or answers without waiting for one (it then checked the group as it was).
      ...inTurn(observer, [send]),
    });
    return answer;
  }

  const expectForbidden = (res: HttpResult) => {
    expect(res.status, res.text).toBe(403);
    expect(res.body.code).toBe('forbidden');
  };

  it('OWASP ASVS 4.0 4.1.3 / 5.0 8.2.1: a users.manage caller outside admin cannot create an API user in a group given a permission the caller lacks while its request was under way', async () => {
    const alias = await readersGroup();
    const res = await whileGroupGainsAuditRead(alias, () => desk.post('/users/api', { name: `Race bot ${alias}`, groups: [alias] }));
    expectForbidden(res);
    expect(await membersOf(alias)).toEqual([]);
    expect((await observer.query(`SELECT count(*)::int AS n FROM backoffice_user WHERE name = $1`, [`Race bot ${alias}`])).rows[0].n).toBe(0);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 8.2.1: a users.invite caller outside admin cannot invite a person into a group given a permission the caller lacks while its request was under way', async () => {
    const alias = await readersGroup();
    const email = `assignrace-invitee-${alias}@example.com`;
    const res = await whileGroupGainsAuditRead(alias, () => desk.post('/users/invite', { email, name: 'Invitee', groups: [alias] }));
    expectForbidden(res);
    expect(await membersOf(alias)).toEqual([]);
    expect((await observer.query(`SELECT count(*)::int AS n FROM backoffice_user WHERE email = $1`, [email])).rows[0].n).toBe(0);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 8.2.1: a users.manage caller outside admin cannot add a user to a group given a permission the caller lacks while its request was under way', async () => {
    const alias = await readersGroup();
    const target = await make({ groups: ['editor'] });
    const res = await whileGroupGainsAuditRead(alias, () => desk.request('PUT', `/users/${target.id}/groups`, { body: { groups: ['editor', alias] } }));
    expectForbidden(res);
    expect(await membersOf(alias)).toEqual([]);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 8.2.1: a users.manage caller outside admin cannot import a user into a group given a permission the caller lacks while its import was under way (POST /users/import)', async () => {
    const alias = await readersGroup();
    const email = `assignrace-imported-${alias}@example.com`;
    const res = await whileGroupGainsAuditRead(alias, () => desk.post('/users/import', { users: [{ email, name: 'Imported', groups: [alias] }] }));
    expectForbidden(res);
    expect(res.body.errors?.[0]?.field).toBe('users[0]');
    expect(await membersOf(alias)).toEqual([]);
    expect((await observer.query(`SELECT count(*)::int AS n FROM backoffice_user WHERE email = $1`, [email])).rows[0].n).toBe(0);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 8.2.1: nor move an existing user into such a group with onConflict update; the user keeps its groups', async () => {
    const alias = await readersGroup();
    const target = await make({ groups: ['editor'] });
    const res = await whileGroupGainsAuditRead(alias, () =>
      desk.post('/users/import', { onConflict: 'update', users: [{ email: target.email, name: 'Updated', groups: ['editor', alias] }] }),
    );
    expectForbidden(res);
    expect(await membersOf(alias)).toEqual([]);
    expect((await ctx.userManager.findById(target.id))!.groups).toEqual(['editor']);
  });

  /** The test's edit also holds the row of group `alias` (one the request gives): the membership insert waits for it. */
  const groupRow = (alias: string) => ({ sql: `SELECT id FROM backoffice_group WHERE alias = $1 FOR UPDATE`, param: alias });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 8.2.1: a users.manage caller outside admin cannot change the groups of a user whose group gains a permission the caller lacks while the request is under way', async () => {
    const held = await readersGroup();
    const other = await readersGroup();
    const target = await make({ groups: [held] });
    const res = await whileGroupGainsAuditRead(held, () => desk.request('PUT', `/users/${target.id}/groups`, { body: { groups: [other] } }), groupRow(other));
    expectForbidden(res);
    expect(await membersOf(other)).toEqual([]);
    expect((await ctx.userManager.findById(target.id))!.groups).toEqual([held]);
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 8.2.1: nor overwrite (POST /users/import, onConflict update) a user whose group gains a permission the caller lacks while the import is under way', async () => {
    const held = await readersGroup();
    const other = await readersGroup();
    const target = await make({ groups: [held] });
    const res = await whileGroupGainsAuditRead(
      held,
      () => desk.post('/users/import', { onConflict: 'update', users: [{ email: target.email, name: 'Overwritten', groups: [other] }] }),
      groupRow(other),
    );
    expectForbidden(res);
    expect(res.body.errors?.[0]?.field).toBe('users[0]');
    const stored = (await ctx.userManager.findById(target.id))!;
    expect({ name: stored.name, groups: stored.groups }).toEqual({ name: target.name, groups: [held] });
  });

  it('OWASP ASVS 4.0 4.1.3 / 5.0 15.4.2: nor disable such a user (the other re-checks of the target as stored wait for the group edit too)', async () => {
    const held = await readersGroup();
    const target = await make({ groups: [held] });
    const res = await whileGroupGainsAuditRead(held, () => desk.post(`/users/${target.id}/disable`, {}), {
      sql: `SELECT id FROM backoffice_user WHERE id = $1 FOR UPDATE`,
      param: target.id,
    });
    expectForbidden(res);
    expect((await observer.query(`SELECT is_approved FROM backoffice_user WHERE id = $1`, [target.id])).rows[0].is_approved).toBe(true);
  });

  it('OWASP ASVS 5.0 15.4.2: the re-check locks groups in the order a group delete does under any database collation (no deadlock, no 503)', async () => {
    // A database whose default collation sorts capitals among small letters (ICU en-US: alpha < Beta) where the group
    // delete's order (code points: Beta < alpha) does not: the column's collation stands in for the database's here.
    const collate = (name: string) => observer.query(`ALTER TABLE backoffice_group ALTER COLUMN alias TYPE varchar(64) COLLATE "${name}"`);
    await collate('en-US-x-icu');
    try {
      const [lower, upper] = [`alpha${++groupSeq}`, `Beta${groupSeq}`];
      for (const alias of [lower, upper]) expect((await admin.post('/groups', { alias, name: alias, permissions: ['users.read'] })).status).toBe(201);
      const target = await make({ groups: [lower, upper] });
      const [del, dis] = await whileLockHeld(db.url, observer, {
        hold: (tx) => tx.query(`SELECT id FROM backoffice_group WHERE alias = $1 FOR SHARE`, [lower]),
        ...inTurn(observer, [
          // The delete locks the upper-case group (first in code point order), then waits for the lower-case one.
          () => admin.delete(`/groups/${upper}?moveMembersTo=${lower}`),
          // The re-check of disable locks the target's groups FOR SHARE: in the delete's order it waits behind the delete;
          // in the collation's order it took the lower-case group first and then waited for the upper-case one: a cycle.
          () => desk.post(`/users/${target.id}/disable`, {}),
        ]),
      });
      expect([del.status, dis.status], `${del.text} ${dis.text}`).toEqual([204, 200]);
      expect(await membersOf(lower)).toEqual([target.email]);
    } finally {
      await collate('default');
    }
  });

  it('the same requests without a concurrent change still write (the check is no blanket refusal)', async () => {
    const alias = await readersGroup();
    const created = await desk.post('/users/api', { name: 'Calm bot', groups: [alias] });
    expect(created.status, created.text).toBe(201);
    const email = `assignrace-calm-${alias}@example.com`;
    const invited = await desk.post('/users/invite', { email, name: 'Invitee', groups: [alias] });
    expect(invited.status, invited.text).toBe(201);
    const target = await make({ groups: ['editor'] });
    const set = await desk.request('PUT', `/users/${target.id}/groups`, { body: { groups: ['editor', alias] } });
    expect(set.status, set.text).toBe(200);
    expect(await membersOf(alias)).toEqual([created.body.user.email, email, target.email].sort());
    const importedEmail = `assignrace-calm-imported-${alias}@example.com`;
    const imported = await desk.post('/users/import', { users: [{ email: importedEmail, name: 'Imported', groups: [alias] }] });
    expect(imported.status, imported.text).toBe(200);
    expect(imported.body.summary.created).toBe(1);
    const moved = await make({ groups: ['editor'] });
    const updated = await desk.post('/users/import', { onConflict: 'update', users: [{ email: moved.email, name: 'Moved', groups: ['editor', alias] }] });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body.summary.updated).toBe(1);
    expect(await membersOf(alias)).toEqual([created.body.user.email, email, target.email, importedEmail, moved.email].sort());
  });
});

/**
 * The same with the in-memory stores, which have no rollback: the test edits the group (through the group store, as
 * PUT /groups/:alias does) right after the user store wrote the membership, before the request's re-check. The
 * refused write must not stay behind: no API user or invitee, and the groups of a PUT as they were.
 */
describe('groups assigned checked as stored when the membership is written (in-memory stores)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let stores: InMemoryBackOfficeStoreSet;
  let desk: HttpClient;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'assignmem');
  let groupSeq = 0;
  /** The alias the next membership write of the user store makes gain audit.read, once written. */
  let editAfterWrite: string | null = null;

  beforeAll(async () => {
    db = await createTestDatabase();
    stores = InMemoryBackOfficeStores.create();
    ctx = await createIdentityApp(db, { identity: { stores, rateLimits: { enabled: false } } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    const permissions = ['users.manage', 'users.read', 'users.invite'];
    expect((await admin.post('/groups', { alias: 'helpdesk', name: 'Helpdesk', permissions })).status).toBe(201);
    desk = await signedInClient(ctx, (await make({ groups: ['helpdesk'] })).email);
    const users = stores.userStore as InMemoryBackOfficeUserStore;
    const edit = async () => {
      const alias = editAfterWrite;
      editAfterWrite = null;
      if (alias) await stores.groupStore.update(alias, (g) => ({ ...g, permissions: [...g.permissions, 'audit.read'] }), new Date());
    };
    const realCreate = users.create.bind(users);
    const realSetGroups = users.setGroups.bind(users);
    Object.assign(users, {
      create: async (...args: Parameters<InMemoryBackOfficeUserStore['create']>) => {
        const created = await realCreate(...args);
        await edit();
        return created;
      },
      setGroups: async (...args: Parameters<InMemoryBackOfficeUserStore['setGroups']>) => {
        await realSetGroups(...args);
        await edit();
      },
    });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function readersGroup(): Promise<string> {
    const alias = `memreaders${++groupSeq}`;
    expect((await admin.post('/groups', { alias, name: `Mem readers ${groupSeq}`, permissions: ['users.read'] })).status).toBe(201);
    return alias;
  }

  const membersOf = (alias: string) =>
    [...stores.userStore.state.users.values()].filter((u) => u.groups.includes(alias)).map((u) => u.email).sort();

  it('OWASP ASVS 4.0 4.1.3 / 5.0 8.2.1: POST /users/api, POST /users/invite and PUT /users/:id/groups are refused and leave nothing behind', async () => {
    const bot = await readersGroup();
    editAfterWrite = bot;
    const created = await desk.post('/users/api', { name: `Mem bot ${bot}`, groups: [bot] });
    expect(created.status, created.text).toBe(403);
    expect(created.body.code).toBe('forbidden');
    expect(membersOf(bot)).toEqual([]);
    expect([...stores.userStore.state.users.values()].filter((u) => u.name === `Mem bot ${bot}`)).toEqual([]);

    const invitees = await readersGroup();
    editAfterWrite = invitees;
    const email = `assignmem-invitee-${invitees}@example.com`;
    const invited = await desk.post('/users/invite', { email, name: 'Invitee', groups: [invitees] });
    expect(invited.status, invited.text).toBe(403);
    expect(membersOf(invitees)).toEqual([]);
    expect(await ctx.userManager.findByEmail(email)).toBeNull();

    const added = await readersGroup();
    const target = await make({ groups: ['editor'] });
    editAfterWrite = added;
    const set = await desk.request('PUT', `/users/${target.id}/groups`, { body: { groups: ['editor', added] } });
    expect(set.status, set.text).toBe(403);
    expect((await ctx.userManager.findById(target.id))!.groups).toEqual(['editor']);
  });

  it('without the edit the same requests write', async () => {
    const alias = await readersGroup();
    expect((await desk.post('/users/api', { name: 'Calm mem bot', groups: [alias] })).status).toBe(201);
    expect((await desk.post('/users/invite', { email: `assignmem-calm-${alias}@example.com`, name: 'Invitee', groups: [alias] })).status).toBe(201);
    const target = await make({ groups: ['editor'] });
    expect((await desk.request('PUT', `/users/${target.id}/groups`, { body: { groups: ['editor', alias] } })).status).toBe(200);
    expect(membersOf(alias)).toHaveLength(3);
  });
});
