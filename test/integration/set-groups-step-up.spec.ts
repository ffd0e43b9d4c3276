import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { staleImportRacing } from '../support/import-race.js';
import { createIdentityApp, reauthenticate, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';

/**
 * OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1: giving a user a group is a lasting grant of access, as an invite or an API user
 * with those groups is (both need a recent sign-in). A stolen admin cookie (or an admin API user's bearer token) must
 * not be enough to put the attacker's own low-privileged account into `admin`: PUT /users/:id/groups that adds a group
 * needs a recent sign-in; one that only takes groups away does not.
 */
describe('PUT /users/:id/groups: adding a group needs a recent sign-in (OWASP ASVS 5.0 7.5.3)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let adminEmail: string;
  const make = userFactory(() => ctx, 'groupstep');
  const groupsOf = async (id: string) => [...(await ctx.userManager.findById(id))!.groups].sort();
  const put = (client: HttpClient, id: string, groups: string[], headers?: Record<string, string>) =>
    client.request('PUT', `/users/${id}/groups`, { body: { groups }, ...(headers ? { headers } : {}) });

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    adminEmail = (await make({ groups: ['admin'] })).email;
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('a stale admin session cannot make the attacker an admin (nor give any group); after a step-up it can', async () => {
    const attacker = await make({ groups: ['writer'] });
    const stolen = await signedInClient(ctx, adminEmail);
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)

    const answers = [];
    for (const groups of [['writer', 'admin'], ['writer', 'editor'], ['admin']]) {
      const res = await put(stolen, attacker.id, groups);
      answers.push({ groups: groups.join(','), status: res.status, code: res.body?.code });
    }
    expect(answers).toEqual([
      { groups: 'writer,admin', status: 401, code: 'reauthentication_required' },
      { groups: 'writer,editor', status: 401, code: 'reauthentication_required' },
      { groups: 'admin', status: 401, code: 'reauthentication_required' },
    ]);
    expect(await groupsOf(attacker.id)).toEqual(['writer']);

    // Taking groups away gives no one access: no step-up.
    const removed = await put(stolen, attacker.id, []);
    expect(removed.status, removed.text).toBe(200);
    expect(await groupsOf(attacker.id)).toEqual([]);

    await reauthenticate(stolen);
    const granted = await put(stolen, attacker.id, ['editor']);
    expect(granted.status, granted.text).toBe(200);
    expect(await groupsOf(attacker.id)).toEqual(['editor']);
  });

  it('OWASP ASVS 5.0 7.5.3: the step-up is asked after the 400 unknown group check, as the group routes ask it after theirs', async () => {
    const attacker = await make({ groups: ['writer'] });
    const stolen = await signedInClient(ctx, adminEmail);
    ctx.clock.advance(6 * 60_000);
    const unknown = await put(stolen, attacker.id, ['writer', 'admin', 'no-such-group']);
    expect({ status: unknown.status, code: unknown.body?.code }).toEqual({ status: 400, code: 'validation_failed' });
    expect(await groupsOf(attacker.id)).toEqual(['writer']);
  });

  it("an admin API user's bearer token cannot add a group (no sign-in to renew), only take groups away", async () => {
    const admin = await signedInClient(ctx, adminEmail);
    const robot = await admin.post('/users/api', { name: 'Admin robot', groups: ['admin'] });
    expect(robot.status, robot.text).toBe(201);
    const token = await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: robot.body.clientId, client_secret: robot.body.clientSecret });
    expect(token.status, token.text).toBe(200);
    const bearer = { authorization: `Bearer ${token.body.access_token}` };
    const attacker = await make({ groups: ['writer'] });

    const refused = await put(new HttpClient(ctx.url), attacker.id, ['writer', 'admin'], bearer);
    expectClientError(refused, 401);
    expect(refused.body.code).toBe('reauthentication_required');
    expect(await groupsOf(attacker.id)).toEqual(['writer']);

    const removed = await put(new HttpClient(ctx.url), attacker.id, [], bearer);
    expect(removed.status, removed.text).toBe(200);
    expect(await groupsOf(attacker.id)).toEqual([]);
  });

  it('POST /users/import with onConflict update: a record that gives an existing user a group needs a recent sign-in; a profile-only one does not', async () => {
    const attacker = await make({ groups: ['writer'], name: 'Attacker' });
    const stolen = await signedInClient(ctx, adminEmail);
    ctx.clock.advance(6 * 60_000);
    const importing = (groups: string[], name = 'Attacker') =>
      stolen.post('/users/import', { users: [{ email: attacker.email, name, groups }], onConflict: 'update' });

    const refused = await importing(['writer', 'admin']);
    expect({ status: refused.status, code: refused.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
    expect(await groupsOf(attacker.id)).toEqual(['writer']);

    const profileOnly = await importing(['writer'], 'Renamed');
    expect(profileOnly.status, profileOnly.text).toBe(200);
    expect(profileOnly.body.results[0].outcome).toBe('updated');
    const takenAway = await importing([]);
    expect(takenAway.status, takenAway.text).toBe(200);
    expect(await groupsOf(attacker.id)).toEqual([]);

    await reauthenticate(stolen);
    const granted = await importing(['editor']);
    expect(granted.status, granted.text).toBe(200);
    expect(await groupsOf(attacker.id)).toEqual(['editor']);
  });

  it('POST /users/import with onConflict update by a stale session: a record read as keeping a user in its group, whose group a concurrent change took away meanwhile, would give it back as stored under the locks: 401 reauthentication_required, nothing written (OWASP ASVS 5.0 7.5.3)', async () => {
    const attacker = await make({ groups: ['writer'], name: 'Attacker' });
    // The checks before the write pass (attacker in writer: nothing added, no step-up asked).
    const imported = await staleImportRacing(
      ctx,
      adminEmail,
      { users: [{ email: attacker.email, name: 'Attacker (renamed)', groups: ['writer'] }] },
      // Another admin takes writer away meanwhile.
      async () => {
        const removed = await put(await signedInClient(ctx, adminEmail), attacker.id, []);
        expect(removed.status, removed.text).toBe(200);
      },
    );
    expect({ status: imported.status, code: imported.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
    expect({ groups: await groupsOf(attacker.id), name: (await ctx.userManager.findById(attacker.id))!.name }).toEqual({ groups: [], name: 'Attacker' });
  });

  it('DELETE /groups/:alias?moveMembersTo= gives its members the target group: a stale admin session cannot move the attacker into admin', async () => {
    const attacker = await make({ groups: ['writer'] });
    const admin = await signedInClient(ctx, adminEmail);
    expect((await admin.post('/groups', { alias: 'crew', name: 'Crew', permissions: [] })).status).toBe(201);
    expect((await admin.post('/groups', { alias: 'empties', name: 'Empties', permissions: [] })).status).toBe(201);
    expect((await put(admin, attacker.id, ['writer', 'crew'])).status).toBe(200);
    ctx.clock.advance(6 * 60_000); // the admin's session is now stale (a stolen cookie)

    const moved = await admin.delete('/groups/crew?moveMembersTo=admin');
    expect({ status: moved.status, code: moved.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
    expect(await groupsOf(attacker.id)).toEqual(['crew', 'writer']);
    // A group without members gives no one anything: no step-up.
    expect((await admin.delete('/groups/empties?moveMembersTo=admin')).status).toBe(204);

    await reauthenticate(admin);
    const granted = await admin.delete('/groups/crew?moveMembersTo=editor');
    expect(granted.status, granted.text).toBe(204);
    expect(await groupsOf(attacker.id)).toEqual(['editor', 'writer']);
  });

  it('PUT /groups/:alias that adds a permission to a group, or POST /groups with permissions, needs a recent sign-in; removing one, or an empty new group, does not', async () => {
    const admin = await signedInClient(ctx, adminEmail);
    expect((await admin.post('/groups', { alias: 'squad', name: 'Squad', permissions: ['users.manage'] })).status).toBe(201);
    const permissionsOf = async () => {
      const res = await admin.get('/groups?take=1000');
      return [...res.body.items.find((g: { alias: string }) => g.alias === 'squad').permissions].sort();
    };
    ctx.clock.advance(6 * 60_000); // the admin's session is now stale (a stolen cookie)

    const raised = await admin.request('PUT', '/groups/squad', { body: { permissions: ['users.manage', 'groups.manage'] } });
    expect({ status: raised.status, code: raised.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
    expect(await permissionsOf()).toEqual(['users.manage']);
    // OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1: a new group with permissions reaches every user a provider's groupMapping, LDAP
    // defaultGroups or the host's code gives it by alias at their next sign-in: a step-up. One with none grants nothing.
    const created = await admin.post('/groups', { alias: 'fresh', name: 'Fresh', permissions: ['groups.manage'] });
    expect({ status: created.status, code: created.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
    expect((await admin.get('/groups?take=1000')).body.items.some((g: { alias: string }) => g.alias === 'fresh')).toBe(false);
    expect((await admin.post('/groups', { alias: 'bare', name: 'Bare', permissions: [] })).status).toBe(201);
    // Taking a permission away, or renaming, gives no one anything: no step-up.
    const lowered = await admin.request('PUT', '/groups/squad', { body: { permissions: [] } });
    expect(lowered.status, lowered.text).toBe(200);
    const renamed = await admin.request('PUT', '/groups/squad', { body: { name: 'Squad 2', permissions: [] } });
    expect(renamed.status, renamed.text).toBe(200);
    expect(await permissionsOf()).toEqual([]);

    // POST /users/api needs a recent sign-in itself: mint an admin robot after the step-up; its token gets no step-up.
    await reauthenticate(admin);
    const minted = await admin.post('/users/api', { name: 'Group robot', groups: ['admin'] });
    expect(minted.status, minted.text).toBe(201);
    const token = await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: minted.body.clientId, client_secret: minted.body.clientSecret });
    expect(token.status, token.text).toBe(200);
    const byBearer = await new HttpClient(ctx.url).request('PUT', '/groups/squad', {
      body: { permissions: ['groups.manage'] },
      headers: { authorization: `Bearer ${token.body.access_token}` },
    });
    expectClientError(byBearer, 401);
    expect(byBearer.body.code).toBe('reauthentication_required');
    expect(await permissionsOf()).toEqual([]);

    const granted = await admin.request('PUT', '/groups/squad', { body: { permissions: ['groups.manage'] } });
    expect(granted.status, granted.text).toBe(200);
    expect(await permissionsOf()).toEqual(['groups.manage']);
  });

  it('checks the caller first: outside admin, a group beyond the caller is 403 forbidden whatever the sign-in', async () => {
    const deskUser = await make({ groups: ['writer'] });
    const admin = await signedInClient(ctx, adminEmail);
    expect((await admin.post('/groups', { alias: 'desk', name: 'Desk', permissions: ['users.manage'] })).status).toBe(201);
    expect((await put(admin, deskUser.id, ['desk'])).status).toBe(200);
    const desk = await signedInClient(ctx, deskUser.email);
    const target = await make({ groups: ['writer'] });
    ctx.clock.advance(6 * 60_000);
    const beyond = await put(desk, target.id, ['writer', 'admin']);
    expectClientError(beyond, 403);
    expect(beyond.body.code).toBe('forbidden');
    const stale = await put(desk, target.id, ['writer', 'editor']);
    expectClientError(stale, 401);
    expect(stale.body.code).toBe('reauthentication_required');
    expect(await groupsOf(target.id)).toEqual(['writer']);
  });

  describe('OWASP ASVS 4.0 2.2.x / 5.0 7.5.3: weakening the 2FA rule for someone needs a recent sign-in', () => {
    /** A group requiring two-factor, created (and filled) with a fresh sign-in; answers the admin's client, stale from then on. */
    const guardedGroup = async (alias: string, members: string[]) => {
      const admin = await signedInClient(ctx, adminEmail);
      expect((await admin.post('/groups', { alias, name: alias, permissions: [], requireTwoFactor: true })).status).toBe(201);
      for (const id of members) expect((await put(admin, id, [...(await groupsOf(id)), alias])).status).toBe(200);
      ctx.clock.advance(6 * 60_000); // the admin's session is now stale (a stolen cookie)
      return admin;
    };
    const requiresTwoFactor = async (admin: HttpClient, alias: string) =>
      (await admin.get('/groups?take=1000')).body.items.find((g: { alias: string }) => g.alias === alias).requireTwoFactor as boolean;

    it('PUT /groups/:alias turning requireTwoFactor off for a group with members: 401 reauthentication_required, the rule stays; an empty group needs none', async () => {
      const member = await make({ groups: ['writer'] });
      const admin = await guardedGroup('guarded', [member.id]);
      const off = await admin.request('PUT', '/groups/guarded', { body: { requireTwoFactor: false } });
      expect({ status: off.status, code: off.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
      expect(await requiresTwoFactor(admin, 'guarded')).toBe(true);

      await reauthenticate(admin);
      expect((await admin.post('/groups', { alias: 'guarded-empty', name: 'Empty', permissions: [], requireTwoFactor: true })).status).toBe(201);
      ctx.clock.advance(6 * 60_000);
      const emptyOff = await admin.request('PUT', '/groups/guarded-empty', { body: { requireTwoFactor: false } });
      expect(emptyOff.status, emptyOff.text).toBe(200);

      await reauthenticate(admin);
      const granted = await admin.request('PUT', '/groups/guarded', { body: { requireTwoFactor: false } });
      expect(granted.status, granted.text).toBe(200);
      expect(await requiresTwoFactor(admin, 'guarded')).toBe(false);
    });

    it('PUT /users/:id/groups and the import taking a user out of its only group requiring 2FA: 401 reauthentication_required; other removals need none', async () => {
      const member = await make({ groups: ['writer'] });
      const admin = await guardedGroup('guarded2', [member.id]);
      const removed = await put(admin, member.id, ['writer']);
      expect({ status: removed.status, code: removed.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
      const imported = await admin.post('/users/import', { users: [{ email: member.email, name: 'Member', groups: ['writer'] }], onConflict: 'update' });
      expect({ status: imported.status, code: imported.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
      expect(await groupsOf(member.id)).toEqual(['guarded2', 'writer']);
      // Still in a group requiring 2FA: the rule does not weaken for them.
      const other = await put(admin, member.id, ['guarded2']);
      expect(other.status, other.text).toBe(200);

      await reauthenticate(admin);
      const granted = await put(admin, member.id, []);
      expect(granted.status, granted.text).toBe(200);
      expect(await groupsOf(member.id)).toEqual([]);
    });

    it('DELETE /groups/:alias of a group requiring 2FA with members (moved elsewhere) needs a recent sign-in too', async () => {
      const member = await make({ groups: ['writer'] });
      const admin = await guardedGroup('guarded3', [member.id]);
      const deleted = await admin.delete('/groups/guarded3?moveMembersTo=writer');
      expect({ status: deleted.status, code: deleted.body?.code }).toEqual({ status: 401, code: 'reauthentication_required' });
      expect(await groupsOf(member.id)).toEqual(['guarded3', 'writer']);
    });
  });
});
