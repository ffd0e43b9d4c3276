import { BackOfficeBackgroundTasks, BackOfficeEvents } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';

interface AuditItem {
  event: string;
  performingUserId: string | null;
  affectedUserId: string | null;
  details: Record<string, unknown>;
}

/**
 * README (Permissions): outside `admin`, a holder of `groups.manage` may change or delete only groups whose
 * permissions they all hold; "anything else answers 403 `forbidden` and writes nothing", and such refusals are
 * audited as `backoffice.user.access-denied`. Found in review: for the `admin` group itself the built-in rules
 * (409 `admin_group_permissions` for a permissions change, 409 `builtin_group` for a delete) ran before the
 * caller was checked, so a non-admin's attempt on `admin` answered 409 and left no trace in the audit trail.
 */
describe('groups.manage outside admin: an attempt on the admin group is refused as forbidden and audited (OWASP ASVS 4.0 4.1.3, 7.2.2)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'admgrp');
  const denials = async (userId: string): Promise<AuditItem[]> => {
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    const res = await admin.get(`/audit?userId=${userId}&take=200`);
    expect(res.status, res.text).toBe(200);
    return res.body.items.filter((e: AuditItem) => e.event === BackOfficeEvents.AccessDenied);
  };
  const adminGroup = async () => ((await admin.get('/groups')).body.items as Array<{ alias: string; permissions: string[] }>).find((g) => g.alias === 'admin')!;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    expect((await admin.post('/groups', { alias: 'keepers', name: 'Keepers', permissions: ['groups.manage', 'users.read'] })).status).toBe(201);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it.each([
    ['PUT /groups/admin with permissions', 'PUT', { permissions: ['users.read'] }],
    ['DELETE /groups/admin', 'DELETE', undefined],
  ] as const)('%s: 403 forbidden, nothing written, one access-denied entry naming the caller', async (_label, method, body) => {
    const keeper = await make({ groups: ['keepers'] });
    const client = await signedInClient(ctx, keeper.email);
    const before = await adminGroup();

    const res = await client.request(method, '/groups/admin', body === undefined ? {} : { body });
    expectClientError(res, 403);
    expect(res.body.code).toBe('forbidden');
    expect(await adminGroup()).toEqual(before);

    const entries = await denials(keeper.id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      performingUserId: keeper.id,
      details: { reason: 'forbidden', method, path: '/backoffice/groups/admin', message: res.body.message },
    });
  });

  it('an admin still gets the built-in rules: 409 admin_group_permissions and 409 builtin_group, no access-denied entry', async () => {
    const boss = await make({ groups: ['admin'] });
    const client = await signedInClient(ctx, boss.email);
    const changed = await client.request('PUT', '/groups/admin', { body: { permissions: ['users.read'] } });
    expectClientError(changed, 409);
    expect(changed.body.code).toBe('admin_group_permissions');
    const deleted = await client.request('DELETE', '/groups/admin');
    expectClientError(deleted, 409);
    expect(deleted.body.code).toBe('builtin_group');
    expect(await denials(boss.id)).toEqual([]);
  });
});
