import { Controller, Get } from '@nestjs/common';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { BackOfficeAuthorize } from '../../src/backoffice-identity/index.js';
import { expectBadBodiesRefused, expectClientError } from '../support/bad-input.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { lockWaitersReach } from '../support/lock-waits.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';

const BUILT_IN = ['users.read', 'users.manage', 'users.invite', 'groups.manage', 'audit.read', 'sessions.manage'];

@Controller('reports')
class ReportsController {
  @Get()
  @BackOfficeAuthorize({ permissions: ['reports.export'] })
  export() {
    return { rows: 3 };
  }
}

@Controller('typo')
class TypoController {
  @Get()
  @BackOfficeAuthorize({ permissions: ['reprots.export'] })
  export() {
    return {};
  }
}

describe('Permissions on groups, group CRUD', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'perm');
  const signIn = (email: string, password?: string) => signedInClient(ctx, email, password);
  const put = (client: HttpClient, path: string, body: unknown) => client.request('PUT', path, { body });
  const auditOf = async (event: string) => (await admin.get(`/audit?take=200`)).body.items.filter((e: { event: string }) => e.event === event);

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, permissions: [{ key: 'reports.export', description: 'Export reports' }] },
      controllers: [ReportsController],
    });
    const boss = await make({ groups: ['admin'] });
    admin = await signIn(boss.email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('the migration keeps today\'s behaviour: admin stores every built-in permission, the other seeded groups none', async () => {
    const rows = await ctx.app.get(DataSource).query(`SELECT alias, permissions FROM backoffice_group WHERE alias IN ('admin','editor','writer','translator','sensitiveData') ORDER BY alias`);
    const byAlias = Object.fromEntries(rows.map((r: { alias: string; permissions: string[] }) => [r.alias, r.permissions]));
    expect([...byAlias.admin].sort()).toEqual([...BUILT_IN].sort());
    for (const alias of ['editor', 'writer', 'translator', 'sensitiveData']) expect(byAlias[alias]).toEqual([]);
  });

  it('GET /groups lists every group with effective permissions and the permission catalogue (host keys included)', async () => {
    const res = await admin.get('/groups');
    expect(res.status).toBe(200);
    const adminGroup = res.body.items.find((g: { alias: string }) => g.alias === 'admin');
    expect(adminGroup.permissions).toEqual([...BUILT_IN, 'reports.export']);
    expect(adminGroup.builtIn).toBe(true);
    expect(adminGroup.memberCount).toBeGreaterThanOrEqual(1);
    expect(res.body.items.find((g: { alias: string }) => g.alias === 'editor').permissions).toEqual([]);
    expect(res.body.permissions.map((p: { key: string }) => p.key)).toEqual([...BUILT_IN, 'reports.export']);
    expect(res.body.permissions.at(-1)).toEqual({ key: 'reports.export', description: 'Export reports', builtIn: false });
  });

  it('done-when: an admin creates `auditors` with audit.read, moves a user in; the user reads /audit and gets 403 on /users', async () => {
    const created = await admin.post('/groups', { alias: 'auditors', name: 'Auditors', permissions: ['audit.read'] });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ alias: 'auditors', name: 'Auditors', permissions: ['audit.read'], memberCount: 0, builtIn: false });
    const user = await make({ groups: ['editor'] });
    const moved = await put(admin, `/users/${user.id}/groups`, { groups: ['auditors'] });
    expect(moved.status, moved.text).toBe(200);
    const auditor = await signIn(user.email);
    expect((await auditor.get('/audit')).status).toBe(200);
    expectClientError(await auditor.get('/users'), 403);
    // ... and nothing else of the admin API (OWASP ASVS 4.0 4.1.3 least privilege).
    const other = await make();
    const routes: Array<[string, string, unknown?]> = [
      ['POST', '/users/invite', { email: 'nobody-audit@example.com', name: 'N', groups: [] }],
      ['POST', `/users/${other.id}/resend-invite`],
      ['POST', `/users/${other.id}/disable`],
      ['POST', `/users/${other.id}/enable`],
      ['POST', `/users/${other.id}/unlock`],
      ['PUT', `/users/${other.id}/groups`, { groups: ['editor'] }],
      ['POST', `/users/${other.id}/2fa/reset`],
      ['DELETE', `/users/${other.id}/sessions`],
      ['POST', '/users/import', { users: [] }],
      ['GET', '/groups'],
      ['POST', '/groups', { alias: 'sneaky', name: 'S', permissions: [] }],
      ['PUT', '/groups/auditors', { permissions: BUILT_IN }],
      ['DELETE', '/groups/editor'],
      ['GET', `${ctx.url}/reports`],
    ];
    for (const [method, path, body] of routes) expectClientError(await auditor.request(method, path, { body }), 403);
    expect((await ctx.userManager.findById(other.id))!.isApproved).toBe(true);
    expect((await admin.get('/groups')).body.items.map((g: { alias: string }) => g.alias)).not.toContain('sneaky');
    // The audit trail holds the creation with its diff.
    const [entry] = await auditOf('backoffice.group.created');
    expect(entry.details).toEqual({
      group: 'auditors',
      changes: { name: { from: null, to: 'Auditors' }, permissions: { from: null, to: ['audit.read'] }, requireTwoFactor: { from: null, to: false } },
    });
  });

  it('each built-in permission opens its own routes and no other', async () => {
    const target = await make({ invited: true, password: undefined } as never);
    const routeOf: Record<string, [string, string, unknown?]> = {
      'users.read': ['GET', '/users'],
      'users.manage': ['POST', `/users/${target.id}/unlock`],
      'users.invite': ['POST', `/users/${target.id}/resend-invite`],
      'groups.manage': ['GET', '/groups'],
      'audit.read': ['GET', '/audit'],
      'sessions.manage': ['DELETE', `/users/${target.id}/sessions`],
    };
    for (const permission of BUILT_IN) {
      const alias = `only-${permission.replace('.', '-')}`;
      expect((await admin.post('/groups', { alias, name: alias, permissions: [permission] })).status).toBe(201);
      const member = await signIn((await make({ groups: [alias] })).email);
      for (const [key, [method, path, body]] of Object.entries(routeOf)) {
        const res = await member.request(method, path, { body });
        if (key === permission) expect(res.status, `${permission} on ${method} ${path}: ${res.text}`).toBeLessThan(300);
        else expect(res.status, `${permission} on ${method} ${path}`).toBe(403);
      }
    }
  });

  it('host-registered permissions guard host routes; admin holds them; others get 403', async () => {
    expect((await admin.get(`${ctx.url}/reports`)).body).toEqual({ rows: 3 });
    expect((await admin.post('/groups', { alias: 'reporters', name: 'Reporters', permissions: ['reports.export'] })).status).toBe(201);
    const reporter = await signIn((await make({ groups: ['reporters'] })).email);
    expect((await reporter.get(`${ctx.url}/reports`)).status).toBe(200);
    expectClientError(await reporter.get('/audit'), 403);
    const editor = await signIn((await make({ groups: ['editor'] })).email);
    expectClientError(await editor.get(`${ctx.url}/reports`), 403);
    expectClientError(await new HttpClient(ctx.url).get(`${ctx.url}/reports`), 401);
  });

  it('an unknown permission in @BackOfficeAuthorize fails start-up, naming the route and the key', async () => {
    const other = await createTestDatabase();
    try {
      await expect(createIdentityApp(other, { controllers: [TypoController] })).rejects.toThrow(/TypoController\.export requires the unknown permission "reprots\.export"/);
    } finally {
      await other.drop();
    }
  });

  it('PUT renames and replaces permissions; the audit entry holds only what changed', async () => {
    expect((await admin.post('/groups', { alias: 'ops', name: 'Ops', permissions: ['users.read'] })).status).toBe(201);
    const res = await put(admin, '/groups/ops', { name: 'Operations', permissions: ['users.read', 'sessions.manage', 'users.read'] });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ alias: 'ops', name: 'Operations', permissions: ['users.read', 'sessions.manage'] });
    const [entry] = await auditOf('backoffice.group.updated');
    expect(entry.details).toEqual({
      group: 'ops',
      changes: { name: { from: 'Ops', to: 'Operations' }, permissions: { from: ['users.read'], to: ['users.read', 'sessions.manage'] } },
    });
    expect(entry.performingUserId).toBeTruthy();
    // Name only: permissions untouched, only the name in the diff.
    const renamed = await put(admin, '/groups/ops', { name: 'Ops team' });
    expect(renamed.body.permissions).toEqual(['users.read', 'sessions.manage']);
    expect((await auditOf('backoffice.group.updated'))[0].details.changes).toEqual({ name: { from: 'Operations', to: 'Ops team' } });
    // No change: no audit entry.
    const before = (await auditOf('backoffice.group.updated')).length;
    expect((await put(admin, '/groups/ops', { name: 'Ops team' })).status).toBe(200);
    expect((await auditOf('backoffice.group.updated')).length).toBe(before);
  });

  it('the built-in admin group cannot lose groups.manage (or any permission) and cannot be deleted', async () => {
    const res = await put(admin, '/groups/admin', { permissions: BUILT_IN.filter((p) => p !== 'groups.manage') });
    expectClientError(res, 409);
    expect(res.body.code).toBe('admin_group_permissions');
    expectClientError(await put(admin, '/groups/admin', { permissions: ['audit.read'] }), 409);
    expect((await put(admin, '/groups/admin', { permissions: [...BUILT_IN, 'reports.export'] })).status).toBe(200);
    const renamed = await put(admin, '/groups/admin', { name: 'Admins' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.permissions).toContain('groups.manage');
    const del = await admin.delete('/groups/admin?moveMembersTo=editor');
    expectClientError(del, 409);
    expect(del.body.code).toBe('builtin_group');
    expect((await admin.get('/groups')).status).toBe(200);
  });

  it('a group with members is deleted only with moveMembersTo; members land in the target; audited', async () => {
    expect((await admin.post('/groups', { alias: 'temp', name: 'Temp', permissions: ['users.read'] })).status).toBe(201);
    const a = await make({ groups: ['temp'] });
    const b = await make({ groups: ['temp', 'writer'] });
    const refused = await admin.delete('/groups/temp');
    expectClientError(refused, 409);
    expect(refused.body).toMatchObject({ code: 'group_has_members', memberCount: 2 });
    expectClientError(await admin.delete('/groups/temp?moveMembersTo=nope'), 400);
    expectClientError(await admin.delete('/groups/temp?moveMembersTo=temp'), 400);
    expectClientError(await admin.delete('/groups/temp?moveMembersTo=%00'), 400);
    expect((await ctx.userManager.findById(a.id))!.groups).toEqual(['temp']);
    expect((await admin.delete('/groups/temp?moveMembersTo=writer')).status).toBe(204);
    expect((await ctx.userManager.findById(a.id))!.groups).toEqual(['writer']);
    expect((await ctx.userManager.findById(b.id))!.groups).toEqual(['writer']);
    const [entry] = await auditOf('backoffice.group.deleted');
    expect(entry.details).toMatchObject({ group: 'temp', movedMembersTo: 'writer', movedMembers: 2, changes: { name: { from: 'Temp', to: null } } });
    expectClientError(await admin.delete('/groups/temp'), 404);
    // An empty group goes without moveMembersTo.
    expect((await admin.post('/groups', { alias: 'empty', name: 'Empty', permissions: [] })).status).toBe(201);
    expect((await admin.delete('/groups/empty')).status).toBe(204);
  });

  it('refuses bad input with 4xx: unknown permissions, duplicate aliases (ignoring case), bad aliases, oversized names', async () => {
    const unknown = await admin.post('/groups', { alias: 'x1', name: 'X', permissions: ['users.read', 'users.destroy'] });
    expectClientError(unknown, 400);
    expect(unknown.body.errors).toEqual([expect.objectContaining({ field: 'permissions', code: 'unknown_permission' })]);
    expectClientError(await put(admin, '/groups/editor', { permissions: ['nope'] }), 400);
    for (const alias of ['editor', 'EDITOR', 'Admin']) {
      const dup = await admin.post('/groups', { alias, name: 'Dup', permissions: [] });
      expectClientError(dup, 409);
      expect(dup.body.code).toBe('duplicate_group');
    }
    for (const body of [
      { alias: '1abc', name: 'N', permissions: [] },
      { alias: 'a b', name: 'N', permissions: [] },
      { alias: 'ä-group', name: 'N', permissions: [] },
      { alias: 'a'.repeat(65), name: 'N', permissions: [] },
      { alias: 'okay', name: '   ', permissions: [] },
      { alias: 'okay', name: 'N'.repeat(257), permissions: [] },
      { alias: 'okay', name: 'N', permissions: 'audit.read' },
      { alias: 'okay', name: 'N', permissions: [1] },
      { alias: 'okay', name: 'N', permissions: Array.from({ length: 201 }, () => 'audit.read') },
      { alias: 'okay', name: 'N' },
    ]) {
      expectClientError(await admin.post('/groups', body), 400);
    }
    await expectBadBodiesRefused(admin, 'POST', '/groups', ['alias', 'name']);
    for (const body of [{ name: '' }, { name: 12 }, { permissions: null }, { alias: 'renamed' }, { name: 'x'.repeat(100_000) }]) {
      expectClientError(await put(admin, '/groups/editor', body), 400);
    }
    for (const raw of ['{"a":', 'null', '[1]']) expectClientError(await admin.request('PUT', '/groups/editor', { raw }), 400);
    expectClientError(await put(admin, '/groups/nope', { name: 'N' }), 404);
    expectClientError(await put(admin, `/groups/${'x'.repeat(300)}`, { name: 'N' }), 404);
    expectClientError(await put(admin, '/groups/%C3%A9%F0%9F%98%80', { name: 'N' }), 404);
    // Unicode names are fine and kept as sent.
    const unicode = await admin.post('/groups', { alias: 'intl', name: 'Rédacteurs 日本 😀', permissions: [] });
    expect(unicode.status).toBe(201);
    expect(unicode.body.name).toBe('Rédacteurs 日本 😀');
    expect((await admin.get('/groups')).body.items.map((g: { alias: string }) => g.alias)).not.toContain('okay');
  });

  it('XSRF applies to group changes made with the cookie', async () => {
    const res = await admin.request('POST', '/groups', { body: { alias: 'noxsrf', name: 'N', permissions: [] }, xsrf: false });
    expectClientError(res, 403);
    expect(res.body.code).toBe('xsrf_failed');
  });

  it('concurrency: two admins editing one group are serialised; each audit diff starts where the other ended', async () => {
    expect((await admin.post('/groups', { alias: 'shared', name: 'Shared', permissions: [] })).status).toBe(201);
    const second = await signIn((await make({ groups: ['admin'] })).email);
    const [r1, r2] = await Promise.all([
      put(admin, '/groups/shared', { name: 'By one', permissions: ['audit.read'] }),
      put(second, '/groups/shared', { name: 'By two', permissions: ['users.read'] }),
    ]);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    const final = (await admin.get('/groups')).body.items.find((g: { alias: string }) => g.alias === 'shared');
    const entries = (await auditOf('backoffice.group.updated')).filter((e: { details: { group: string } }) => e.details.group === 'shared').reverse();
    expect(entries).toHaveLength(2);
    // The chain's order, not the listing's: each entry is published after its own commit, so under load the two
    // appends (and their timestamps) may land in either order; serialisation shows in the diffs chaining up.
    const diffs = entries.map((e: { details: { changes: Record<string, { from: unknown; to: unknown }> } }) => e.details.changes);
    const first = diffs.find((d: { name: { from: unknown } }) => d.name.from === 'Shared');
    const last = diffs.find((d: { name: { from: unknown } }) => d !== first);
    expect(first).toBeDefined();
    expect(last.name.from).toBe(first.name.to);
    expect(last.permissions.from).toEqual(first.permissions.to);
    expect(final.name).toBe(last.name.to);
    expect(final.permissions).toEqual(last.permissions.to);
  });

  it('users.manage without admin cannot escalate: no adding anyone (self included) to admin or to a group with more permissions', async () => {
    expect((await admin.post('/groups', { alias: 'helpdesk', name: 'Helpdesk', permissions: ['users.manage', 'users.read'] })).status).toBe(201);
    const helper = await make({ groups: ['helpdesk'] });
    const desk = await signIn(helper.email);
    expectClientError(await put(desk, `/users/${helper.id}/groups`, { groups: ['helpdesk', 'admin'] }), 403);
    expectClientError(await put(desk, `/users/${helper.id}/groups`, { groups: ['helpdesk', 'auditors'] }), 403);
    const boss = await make({ groups: ['admin'] });
    expectClientError(await put(desk, `/users/${boss.id}/groups`, { groups: ['editor'] }), 403);
    expect((await ctx.userManager.findById(helper.id))!.groups).toEqual(['helpdesk']);
    expect((await ctx.userManager.findById(boss.id))!.groups).toEqual(['admin']);
    // Groups within what the helper holds are fine.
    const plain = await make({ groups: ['editor'] });
    expect((await put(desk, `/users/${plain.id}/groups`, { groups: ['editor', 'helpdesk'] })).status).toBe(200);
  });

  it('OWASP ASVS 4.0 4.1.3: groups.manage without admin cannot escalate: no granting permissions one lacks, no changing or deleting richer groups, no moving members into them', async () => {
    expect((await admin.post('/groups', { alias: 'groupkeepers', name: 'Group keepers', permissions: ['groups.manage', 'users.read'] })).status).toBe(201);
    expect((await admin.post('/groups', { alias: 'watchers', name: 'Watchers', permissions: ['audit.read'] })).status).toBe(201);
    expect((await admin.post('/groups', { alias: 'readers', name: 'Readers', permissions: ['users.read'] })).status).toBe(201);
    const keeper = await make({ groups: ['groupkeepers'] });
    const client = await signIn(keeper.email);
    const refusals = [
      await client.post('/groups', { alias: 'sneaky', name: 'Sneaky', permissions: ['users.read', 'users.manage'] }),
      await put(client, '/groups/groupkeepers', { permissions: ['groups.manage', 'users.read', 'audit.read'] }),
      await put(client, '/groups/readers', { permissions: ['users.read', 'users.invite'] }),
      await put(client, '/groups/watchers', { name: 'Renamed', permissions: [] }),
      await put(client, '/groups/watchers', { requireTwoFactor: true }),
      await put(client, '/groups/admin', { name: 'Not admin' }),
      await client.request('DELETE', '/groups/watchers'),
      await client.request('DELETE', '/groups/readers?moveMembersTo=watchers'),
    ];
    for (const refused of refusals) {
      expectClientError(refused, 403);
      expect(refused.body.code).toBe('forbidden');
    }
    expect(refusals[0]!.body.message).toMatch(/users\.manage/);
    const groups = (await admin.get('/groups')).body.items as Array<{ alias: string; name: string; permissions: string[]; requireTwoFactor: boolean }>;
    const byAlias = new Map(groups.map((g) => [g.alias, g]));
    expect(byAlias.has('sneaky')).toBe(false);
    expect(byAlias.get('groupkeepers')!.permissions.sort()).toEqual(['groups.manage', 'users.read']);
    expect(byAlias.get('readers')!.permissions).toEqual(['users.read']);
    expect(byAlias.get('watchers')).toMatchObject({ name: 'Watchers', permissions: ['audit.read'], requireTwoFactor: false });
    // Within what the keeper holds, group work goes on: create, change, delete.
    expect((await client.post('/groups', { alias: 'listers', name: 'Listers', permissions: ['users.read'] })).status).toBe(201);
    expect((await put(client, '/groups/listers', { name: 'User listers', permissions: [] })).status).toBe(200);
    expect((await client.request('DELETE', '/groups/listers')).status).toBe(204);
    // An admin may do all of the refused changes.
    expect((await put(admin, '/groups/readers', { permissions: ['users.read', 'users.invite'] })).status).toBe(200);
  });

  it('a permission change applies on the next request (nothing cached)', async () => {
    expect((await admin.post('/groups', { alias: 'flip', name: 'Flip', permissions: [] })).status).toBe(201);
    const member = await signIn((await make({ groups: ['flip'] })).email);
    expectClientError(await member.get('/audit'), 403);
    expect((await put(admin, '/groups/flip', { permissions: ['audit.read'] })).status).toBe(200);
    expect((await member.get('/audit')).status).toBe(200);
    expect((await put(admin, '/groups/flip', { permissions: [] })).status).toBe(200);
    expectClientError(await member.get('/audit'), 403);
  });
});

/**
 * Two deletes at once, each moving its members into the other group: each locks its own group's row, then the target's.
 * Taken in request order, the two waited on each other and PostgreSQL aborted one (deadlock_detected: a 503 to an
 * admin who did nothing wrong). The test's transaction holds the table in EXCLUSIVE mode (which the row locks wait
 * for) until both deletes wait, so both start their locking together.
 */
describe.skipIf(dbKind() !== 'postgres')('crossed group deletes (PostgreSQL row locks)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'crossdel');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('delete a -> b and delete b -> a at once: one deletes (its members moved), the other is told its target is gone; never a deadlock', async () => {
    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    try {
      for (let round = 0; round < 3; round++) {
        const [a, b] = [`cross-a${round}`, `cross-b${round}`];
        for (const alias of [a, b]) expect((await admin.post('/groups', { alias, name: alias, permissions: [] })).status).toBe(201);
        const memberA = await make({ groups: [a] });
        const memberB = await make({ groups: [b] });
        await blocker.query('BEGIN');
        await blocker.query('LOCK TABLE backoffice_group IN EXCLUSIVE MODE');
        const deletes = [admin.delete(`/groups/${a}?moveMembersTo=${b}`), admin.delete(`/groups/${b}?moveMembersTo=${a}`)];
        await lockWaitersReach(observer, 2);
        await blocker.query('COMMIT');
        const answers = await Promise.all(deletes);
        const statuses = answers.map((res) => res.status).sort();
        expect(statuses, answers.map((res) => res.text).join(' | ')).toEqual([204, 400]);
        const refused = answers.find((res) => res.status === 400)!;
        expect(refused.body.code).toBe('validation_failed');
        // The surviving group holds both members.
        const survivor = answers[0].status === 204 ? b : a;
        for (const member of [memberA, memberB]) expect((await ctx.userManager.findById(member.id))?.groups).toEqual([survivor]);
      }
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end().catch(() => undefined);
      await observer.end();
    }
  });
});
