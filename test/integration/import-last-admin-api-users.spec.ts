import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';

/**
 * README (API users): API users "are never counted as people (... the last-admin rule)": the manager's rule
 * (`PUT /users/:id/groups`, `disable`, `DELETE /users/:id`) counts only people. Found in review: the import's own
 * last-admin check (`POST /users/import` with `onConflict: 'update'`) counted every approved member of `admin`,
 * API users included, so with an API user in `admin` an import could demote or disable the last person who can
 * administer the back office (the same effect the other routes refuse with 409 `last_admin`).
 */
describe('POST /users/import keeps the last enabled admin, counting people only as the other routes do (OWASP ASVS 4.0 1.4.4)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let bossEmail: string;
  let bossId: string;
  const make = userFactory(() => ctx, 'lastimp');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const boss = await make({ groups: ['admin'] });
    bossEmail = boss.email;
    bossId = boss.id;
    admin = await signedInClient(ctx, boss.email);
    // A machine in admin: it holds every permission, but it is no person who can sign in to the back office.
    const robot = await admin.post('/users/api', { name: 'Deploy robot', groups: ['admin'] });
    expect(robot.status, robot.text).toBe(201);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('the other routes refuse to take the only person out of admin (the API user does not count)', async () => {
    const res = await admin.request('PUT', `/users/${bossId}/groups`, { body: { groups: ['editor'] } });
    expect(res.status, res.text).toBe(409);
    expect(res.body.code).toBe('last_admin');
  });

  it.each([
    ['out of admin', { groups: ['editor'] }],
    ['disabled', { groups: ['admin'], isApproved: false }],
  ])('an import that takes the only person %s is refused with last_admin and writes nothing of that record', async (_label, change) => {
    const res = await admin.post('/users/import', { onConflict: 'update', users: [{ email: bossEmail, name: 'Boss', ...change }] });
    expect(res.status, res.text).toBe(200);
    expect(res.body.results).toEqual([{ email: bossEmail, outcome: 'invalid', errors: [expect.objectContaining({ code: 'last_admin' })] }]);
    expect(await ctx.userManager.findById(bossId)).toMatchObject({ groups: ['admin'], isApproved: true });
    expect((await admin.get('/auth/me')).status).toBe(200);
  });

  it('still lets an import demote an admin while another person stays in admin', async () => {
    const second = await make({ groups: ['admin'] });
    const res = await admin.post('/users/import', { onConflict: 'update', users: [{ email: second.email, name: 'Second', groups: ['editor'] }] });
    expect(res.status, res.text).toBe(200);
    expect(res.body.results[0].outcome).toBe('updated');
    expect((await ctx.userManager.findById(second.id))!.groups).toEqual(['editor']);
  });
});
