import { Controller, Get } from '@nestjs/common';
import { BackOfficeAuthorize, BackOfficeBackgroundTasks, BackOfficeEvents } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { NotificationRecorder } from '../support/notification-recorder.js';

@Controller('reports')
class ReportsController {
  @Get()
  @BackOfficeAuthorize({ permissions: ['reports.export'] })
  export() {
    return { rows: 3 };
  }
}

interface AuditItem {
  event: string;
  performingUserId: string | null;
  affectedUserId: string | null;
  ipAddress: string | null;
  details: Record<string, unknown>;
}

/**
 * OWASP ASVS 4.0 7.2.2: every failed access control decision is logged, with what an investigation needs (who,
 * from where, what). Refusals of signed-in users (403 `forbidden`, `xsrf_failed`) go to the audit trail as
 * `backoffice.user.access-denied`; granted requests and anonymous 401s write no such entry.
 */
describe('Refused access decisions are audited (OWASP ASVS 4.0 7.2.2)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'denied');
  const signIn = (email: string, password?: string) => signedInClient(ctx, email, password);
  /** The access-denied entries the audit holds for `userId` (as performer or affected), after the background writes. */
  const denials = async (userId: string): Promise<AuditItem[]> => {
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    const res = await admin.get(`/audit?userId=${userId}&take=200`);
    expect(res.status, res.text).toBe(200);
    return res.body.items.filter((e: AuditItem) => e.event === BackOfficeEvents.AccessDenied);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, permissions: [{ key: 'reports.export', description: 'Export reports' }] },
      controllers: [ReportsController],
    });
    admin = await signIn((await make({ groups: ['admin'] })).email);
    for (const group of [
      { alias: 'helpdesk', name: 'Helpdesk', permissions: ['users.manage', 'users.read'] },
      { alias: 'auditors', name: 'Auditors', permissions: ['audit.read'] },
    ]) {
      expect((await admin.post('/groups', group)).status).toBe(201);
    }
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('records a missing permission on a module route: who, IP, method and path (no query string), the code and message', async () => {
    const reader = await make({ groups: ['auditors'] });
    const client = await signIn(reader.email);
    const refused = await client.get('/users?filter=secret-search');
    expect(refused.status, refused.text).toBe(403);
    expect(refused.body.code).toBe('forbidden');

    const [entry, ...more] = await denials(reader.id);
    expect(more).toEqual([]);
    expect(entry).toMatchObject({
      performingUserId: reader.id,
      affectedUserId: null,
      ipAddress: expect.stringMatching(/127\.0\.0\.1|::1/),
      details: { reason: 'forbidden', method: 'GET', path: '/backoffice/users', message: refused.body.message },
    });
  });

  it('records a refused host route guarded by @BackOfficeAuthorize', async () => {
    const reader = await make({ groups: ['auditors'] });
    const client = await signIn(reader.email);
    expect((await client.get(`${ctx.url}/reports`)).status).toBe(403);
    expect(await denials(reader.id)).toEqual([
      expect.objectContaining({ performingUserId: reader.id, details: expect.objectContaining({ reason: 'forbidden', method: 'GET', path: '/reports' }) }),
    ]);
  });

  it('records a state-changing cookie request without the XSRF header (xsrf_failed), and nothing is changed', async () => {
    const user = await make({ groups: ['auditors'] });
    const client = await signIn(user.email);
    const refused = await client.request('PUT', '/auth/me', { body: { name: 'Changed by a forged form' }, xsrf: false });
    expect(refused.status, refused.text).toBe(403);
    expect(refused.body.code).toBe('xsrf_failed');
    expect((await ctx.userManager.findById(user.id))?.name).toBe(user.name);
    expect(await denials(user.id)).toEqual([
      expect.objectContaining({ performingUserId: user.id, details: expect.objectContaining({ reason: 'xsrf_failed', method: 'PUT', path: '/backoffice/auth/me' }) }),
    ]);
  });

  it('records an action on a user beyond what the caller holds, with the target as the affected user', async () => {
    const desk = await make({ groups: ['helpdesk'] });
    const boss = await make({ groups: ['admin'] });
    const client = await signIn(desk.email);
    const refused = await client.post(`/users/${boss.id}/disable`, {});
    expect(refused.status, refused.text).toBe(403);
    expect(await denials(desk.id)).toEqual([
      expect.objectContaining({
        performingUserId: desk.id,
        affectedUserId: boss.id,
        details: expect.objectContaining({ reason: 'forbidden', method: 'POST', path: `/backoffice/users/${boss.id}/disable`, message: expect.stringMatching(/"admin"/) }),
      }),
    ]);
  });

  it('records a refused group change of a user (PUT /users/:id/groups adding admin) with that user as the affected user', async () => {
    const desk = await make({ groups: ['helpdesk'] });
    const target = await make();
    const client = await signIn(desk.email);
    const refused = await client.request('PUT', `/users/${target.id}/groups`, { body: { groups: ['admin'] } });
    expect(refused.status, refused.text).toBe(403);
    expect((await ctx.userManager.findById(target.id))?.groups).toEqual([]);
    expect(await denials(desk.id)).toEqual([
      expect.objectContaining({
        performingUserId: desk.id,
        affectedUserId: target.id,
        details: expect.objectContaining({ reason: 'forbidden', method: 'PUT', path: `/backoffice/users/${target.id}/groups` }),
      }),
    ]);
  });

  it('records a refused grant of a permission the caller lacks (groups.manage outside admin)', async () => {
    expect((await admin.post('/groups', { alias: 'group-editors', name: 'Group editors', permissions: ['groups.manage'] })).status).toBe(201);
    const editor = await make({ groups: ['group-editors'] });
    const client = await signIn(editor.email);
    const refused = await client.request('PUT', '/groups/group-editors', { body: { permissions: ['groups.manage', 'audit.read'] } });
    expect(refused.status, refused.text).toBe(403);
    const [entry] = await denials(editor.id);
    expect(entry?.details).toMatchObject({ reason: 'forbidden', method: 'PUT', path: '/backoffice/groups/group-editors', message: expect.stringMatching(/audit\.read/) });
  });

  it('writes no such entry for granted requests or for anonymous requests (401 is not an access decision about a user)', async () => {
    const desk = await make({ groups: ['helpdesk'] });
    const client = await signIn(desk.email);
    expect((await client.get('/users')).status).toBe(200);
    expect((await client.get('/auth/me')).status).toBe(200);
    const recorder = NotificationRecorder.attach(ctx.app);
    expect((await new HttpClient(ctx.url).get('/users')).status).toBe(401);
    expect((await new HttpClient(ctx.url).get(`${ctx.url}/reports`)).status).toBe(401);
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    recorder.detach();
    expect(recorder.named(BackOfficeEvents.AccessDenied)).toEqual([]);
    expect(await denials(desk.id)).toEqual([]);
  });
});
