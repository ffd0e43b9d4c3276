import { randomUUID } from 'node:crypto';
import type { BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { createIdentityApp, reauthenticate, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';

/**
 * An attacker's sweep of the admin surface (groups, user management, audit) over real HTTP and PostgreSQL:
 * malformed or hostile input never gets a 5xx (every 4xx is the module's JSON error), a groups.manage + users.manage
 * holder outside admin reaches nothing beyond what they hold, a group change applies at the next request, and the
 * audit trail keeps no secret. All of it held when written: these pin the behaviour.
 */
describe('admin surface under attack (OWASP ASVS 4.0 4.1.3 / 4.2.1 / 5.1.x / 7.1.1)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let desk: HttpClient;
  let deskUser: BackOfficeUser;
  let boss: BackOfficeUser;
  const make = userFactory(() => ctx, 'probe');
  const signIn = (email: string) => signedInClient(ctx, email);
  /** A refusal is the module's JSON error, never a crash. */
  const expectJsonError = (label: string, res: HttpResult) => {
    expect(res.status, `${label}: ${res.text}`).toBeLessThan(500);
    if (res.status >= 400) {
      expect(res.body, label).toMatchObject({ statusCode: res.status, code: expect.any(String), message: expect.any(String) });
    }
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    boss = await make({ groups: ['admin'] });
    admin = await signIn(boss.email);
    for (const group of [
      { alias: 'helpdesk', name: 'Helpdesk', permissions: ['users.manage', 'users.read', 'users.invite', 'sessions.manage', 'groups.manage'] },
      { alias: 'auditors', name: 'Auditors', permissions: ['audit.read'] },
      { alias: 'readers', name: 'Readers', permissions: ['users.read'] },
    ]) expect((await admin.post('/groups', group)).status).toBe(201);
    deskUser = await make({ groups: ['helpdesk'] });
    desk = await signIn(deskUser.email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('a body field of the wrong type gets its type error alone (no bound errors of a value that is not of that type), and every other field keeps its own errors', async () => {
    const u = await make({ groups: ['readers'] });
    await reauthenticate(admin);
    const codes = (res: HttpResult) => res.body.errors.map((e: { field: string; code: string }) => `${e.field}:${e.code}`).sort();
    for (const [groups, code] of [['admin', 'isArray'], [5, 'isArray'], [{ 0: 'admin' }, 'isArray'], [['readers', 5], 'isString'], [['readers', null], 'isString']] as const) {
      const res = await admin.request('PUT', `/users/${u.id}/groups`, { body: { groups } });
      expect(res.status, JSON.stringify(groups)).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect(codes(res), JSON.stringify(groups)).toEqual([`groups:${code}`]);
    }
    // The right type out of bounds still names its bound.
    const many = await admin.request('PUT', `/users/${u.id}/groups`, { body: { groups: Array.from({ length: 21 }, (_, i) => `g${i}`) } });
    expect(codes(many)).toEqual(['groups:arrayMaxSize']);
    const long = await admin.request('PUT', `/users/${u.id}/groups`, { body: { groups: ['g'.repeat(65)] } });
    expect(codes(long)).toEqual(['groups:maxLength']);
    // Several wrong fields at once: each keeps its own errors (a type error for the wrongly typed, the rule broken for the others).
    const mixed = await admin.post('/groups', { alias: 'G 1', name: 5, permissions: 'users.read', requireTwoFactor: 'yes' });
    expect(mixed.status).toBe(400);
    expect(codes(mixed)).toEqual(['alias:matches', 'name:isString', 'permissions:isArray', 'requireTwoFactor:isBoolean']);
    const alsoUnknown = await admin.post('/groups', { alias: 'g2', name: '', permissions: ['x'.repeat(257)], extra: 1 });
    expect(codes(alsoUnknown)).toEqual(['extra:unknown_field', 'name:minLength', 'permissions:maxLength']);
  });

  it('OWASP ASVS 4.0 5.1.3 / 13.2.x: malformed ids, bodies, repeated or out-of-range query parameters, unicode and huge strings answer 4xx JSON, never 5xx', async () => {
    const u = await make({ groups: ['readers'] });
    const reqs: [string, string, unknown?, string?][] = [
      ['GET', '/users?skip=1&skip=2'],
      ['GET', '/users?take=1&take=2'],
      ['GET', '/users?skip=-1'],
      ['GET', '/users?skip=99999999999999999999'],
      ['GET', '/users?take=0'],
      ['GET', '/users?take=1e1'],
      ['GET', '/users?filter=a&filter=b'],
      ['GET', '/users?filter[a]=b'],
      ['GET', '/users?state=active&state=disabled'],
      ['GET', '/users?filter=%F0%9F%98%80'],
      ['GET', '/users?filter=%ED%A0%80'],
      ['GET', '/users?filter=' + 'x'.repeat(300)],
      ['GET', '/groups?skip=1&skip=2'],
      ['GET', '/groups?take=-5'],
      ['GET', '/groups?skip=abc'],
      ['GET', '/audit?userId=abc'],
      ['GET', `/audit?userId=${u.id}&userId=${u.id}`],
      ['GET', '/audit?event=a&event=b'],
      ['GET', '/audit?before=zzz'],
      ['GET', '/audit?count=a&count=b'],
      ['GET', '/audit?take=201'],
      ['GET', '/audit?skip=1&before=x'],
      ['POST', '/users/not-a-uuid/disable', {}],
      ['POST', `/users/${u.id.toUpperCase()}/disable`, {}],
      ['POST', `/users/${randomUUID()}/enable`, {}],
      ['POST', `/users/${'a'.repeat(5000)}/unlock`, {}],
      ['PUT', `/users/${u.id}/groups`, { groups: 'readers' }],
      ['PUT', `/users/${u.id}/groups`, { groups: [1, 2] }],
      ['PUT', `/users/${u.id}/groups`, { groups: ['readers', 'readers'] }],
      ['PUT', `/users/${u.id}/groups`, { groups: ['__proto__'] }],
      ['PUT', `/users/${u.id}/groups`, { groups: ['READERS'] }],
      ['PUT', `/users/${u.id}/groups`, { groups: ['é'] }],
      ['PUT', `/users/${u.id}/groups`, null],
      ['PUT', `/users/${u.id}/groups`, [1]],
      ['PUT', `/users/${u.id}/groups`, undefined, '"readers"'],
      ['PUT', `/users/${u.id}/groups`, undefined, '{"groups":["readers"],"groups":["admin"]}'],
      ['PUT', `/users/${u.id}`, { name: 'x'.repeat(100000) }],
      ['PUT', `/users/${u.id}`, { name: '\u0000' }],
      ['PUT', `/users/${u.id}`, { name: '\ud800' }],
      ['PUT', `/users/${u.id}`, { name: 5 }],
      ['PUT', `/users/${u.id}`, { email: ['a@b.c'] }],
      ['PUT', `/users/${u.id}`, { email: 'a@b.c', name: null }],
      ['PUT', `/users/${u.id}`, {}],
      ['POST', `/users/${u.id}/disable`, { until: 'not a date' }],
      ['POST', `/users/${u.id}/disable`, { until: '+275760-09-13T00:00:00.001Z' }],
      ['POST', `/users/${u.id}/disable`, { until: '9999-12-31T23:59:59Z', reason: 'x'.repeat(100000) }],
      ['POST', `/users/${u.id}/disable`, { reason: 5 }],
      ['POST', `/users/${u.id}/enable`, {}],
      ['POST', '/users/invite', { email: 'inv@example.com', name: 'Inv', groups: 'readers' }],
      ['POST', '/users/invite', { email: 'inv@example.com', name: 'Inv', groups: [{}] }],
      ['POST', '/users/invite', { email: 'inv@example.com', name: 'Inv', groups: ['readers'], message: 'x'.repeat(100000) }],
      ['POST', '/users/invite', { email: 'inv2@example.com', name: 'Inv', groups: ['nope'] }],
      ['POST', '/groups', { alias: 'g1', name: 'G', permissions: ['nope.nope'] }],
      ['POST', '/groups', { alias: 'g1', name: 'G', permissions: 'users.read' }],
      ['POST', '/groups', { alias: 'g1', name: 'G', permissions: [], requireTwoFactor: 'true' }],
      ['POST', '/groups', { alias: 'g1', name: '\ud800', permissions: [] }],
      ['POST', '/groups', { alias: 'G1', name: 'G', permissions: [] }],
      ['POST', '/groups', { alias: 'g1', name: 'G', permissions: ['__proto__'] }],
      ['POST', '/groups', { alias: 'g1', name: 'G', permissions: ['constructor'] }],
      ['POST', '/groups', { alias: 'g1', name: 'G', permissions: ['users.read', 'users.read'] }],
      ['PUT', '/groups/g1', { permissions: null }],
      ['PUT', '/groups/g1', { name: '' }],
      ['PUT', '/groups/g1', [] ],
      ['PUT', '/groups/%C3%A9', { name: 'x' }],
      ['PUT', '/groups/' + 'a'.repeat(70), { name: 'x' }],
      ['PUT', '/groups/admin', { name: 'Admins' }],
      ['PUT', '/groups/admin', { requireTwoFactor: false }],
      ['DELETE', '/groups/g1?moveMembersTo=readers&moveMembersTo=auditors'],
      ['DELETE', '/groups/g1?moveMembersTo=nope'],
      ['DELETE', '/groups/g1?moveMembersTo=G1'],
      ['DELETE', '/groups/G1'],
      ['DELETE', '/groups/admin?moveMembersTo=readers'],
      ['DELETE', `/users/not-a-uuid`],
      ['DELETE', `/users/not-a-uuid/sessions`],
      ['POST', `/users/not-a-uuid/2fa/reset`, {}],
      ['POST', `/users/not-a-uuid/resend-invite`, {}],
      ['POST', `/users/not-a-uuid/force-password-reset`, {}],
    ];
    await reauthenticate(admin);
    for (const [method, path, body, raw] of reqs) {
      const res = await admin.request(method, path, raw !== undefined ? { raw } : body === undefined ? {} : { body });
      expectJsonError(`${method} ${path.slice(0, 80)} ${raw ?? JSON.stringify(body)?.slice(0, 60)}`, res);
    }
  });

  it('OWASP ASVS 4.0 4.1.3: groups.manage + users.manage outside admin grant nothing they lack, through any route', async () => {
    const refusals: [string, Promise<HttpResult>][] = [
      ['own group gains audit.read', desk.request('PUT', '/groups/helpdesk', { body: { permissions: ['users.manage', 'users.read', 'users.invite', 'sessions.manage', 'groups.manage', 'audit.read'] } })],
      ['members moved into auditors', desk.delete('/groups/readers?moveMembersTo=auditors')],
      ['auditors deleted, members moved', desk.delete('/groups/auditors?moveMembersTo=readers')],
      ['admin renamed', desk.request('PUT', '/groups/admin', { body: { name: 'Mine' } })],
      ['admin loses its 2FA rule', desk.request('PUT', '/groups/admin', { body: { requireTwoFactor: false } })],
      ['group created with audit.read', desk.post('/groups', { alias: 'sneaky', name: 'Sneaky', permissions: ['audit.read'] })],
      ['API user in auditors', desk.post('/users/api', { name: 'bot', groups: ['auditors'] })],
      ['API user in admin', desk.post('/users/api', { name: 'bot', groups: ['admin'] })],
      ['invite into auditors', desk.post('/users/invite', { email: 'sneaky-invite@example.com', name: 'X', groups: ['auditors'] })],
      ['self into admin', desk.request('PUT', `/users/${deskUser.id}/groups`, { body: { groups: ['helpdesk', 'admin'] } })],
      ['the audit trail', desk.get('/audit')],
    ];
    for (const [label, pending] of refusals) {
      const res = await pending;
      expect(res.status, `${label}: ${res.text}`).toBe(403);
      expect(res.body.code, label).toBe('forbidden');
    }
    // Case-variant aliases are no way around the admin checks: one alias per name, ignoring case.
    const adminTwin = await desk.post('/groups', { alias: 'ADMIN', name: 'Twin', permissions: [] });
    expect(adminTwin.status, adminTwin.text).toBe(409);
    expect((await desk.request('PUT', `/users/${deskUser.id}/groups`, { body: { groups: ['helpdesk', 'Admin'] } })).status).toBe(400);
    expect((await ctx.userManager.findById(deskUser.id))?.groups).toEqual(['helpdesk']);
    const groups = await admin.get('/groups');
    expect(groups.body.items.find((g: { alias: string }) => g.alias === 'auditors')?.permissions).toEqual(['audit.read']);
    expect(groups.body.items.find((g: { alias: string }) => g.alias === 'helpdesk')?.permissions).not.toContain('audit.read');
  });

  it('OWASP ASVS 4.0 4.1.2: a permission taken from a group is gone at its members\' next request (no stale session permissions)', async () => {
    expect((await desk.get('/users')).status).toBe(200);
    const all = ['users.manage', 'users.read', 'users.invite', 'sessions.manage', 'groups.manage'];
    expect((await admin.request('PUT', '/groups/helpdesk', { body: { permissions: all.filter((p) => p !== 'users.read') } })).status).toBe(200);
    try {
      const after = await desk.get('/users');
      expect(after.status, after.text).toBe(403);
    } finally {
      expect((await admin.request('PUT', '/groups/helpdesk', { body: { permissions: all } })).status).toBe(200);
    }
    expect((await desk.get('/users')).status).toBe(200);
  });

  it('OWASP ASVS 4.0 7.1.1: the audit trail of API-user creation, an import with a password hash and an invite holds no secret', async () => {
    await reauthenticate(admin);
    const api = await admin.post('/users/api', { name: 'bot', groups: ['readers'] });
    expect(api.status, api.text).toBe(201);
    const bcrypt = await import('bcrypt');
    const hash: string = await (bcrypt as any).default.hash('some imported password', 4);
    const imported = await admin.post('/users/import', { users: [{ email: 'imported@example.com', name: 'Imp', groups: ['readers'], passwordFormat: 'bcrypt', passwordHash: hash }] });
    expect(imported.body.summary?.created, imported.text).toBe(1);
    expect((await admin.post('/users/invite', { email: 'audited-invite@example.com', name: 'Inv', groups: ['readers'] })).status).toBe(201);
    const audit = await admin.get('/audit?take=200');
    expect(audit.status).toBe(200);
    const events = audit.body.items.map((i: { event: string }) => i.event);
    expect(events).toEqual(expect.arrayContaining(['backoffice.api-user.created', 'backoffice.users.imported', 'backoffice.user.invited']));
    expect(audit.text).not.toContain(api.body.clientSecret);
    expect(audit.text).not.toContain(hash.slice(7)); // the salt and digest, past "$2b$04$"
  });
});
