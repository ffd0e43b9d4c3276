import { randomUUID } from 'node:crypto';
import { BackOfficeBackgroundTasks, type BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { Mailbox } from '../support/mailbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { linkParams } from '../support/smtp.js';

/** What a refused request must leave exactly as it was. */
const snapshot = (user: BackOfficeUser | null) =>
  user && {
    email: user.email,
    name: user.name,
    passwordHash: user.passwordHash,
    securityStamp: user.securityStamp,
    isApproved: user.isApproved,
    lockoutEnd: user.lockoutEnd?.toISOString() ?? null,
    twoFactorEnabled: user.twoFactorEnabled,
    groups: user.groups,
  };

/** One route that acts on another user: the request, and its answer when the caller may act on the target. */
interface TargetRoute {
  name: string;
  method: 'POST' | 'PUT' | 'DELETE';
  path: (id: string) => string;
  /** A function when the body depends on the target, or each request needs its own. */
  body?: unknown | ((target: BackOfficeUser) => unknown);
  ok: number;
  /** The route needs a target waiting for an invite. */
  invited?: boolean;
}

const TARGET_ROUTES: TargetRoute[] = [
  { name: 'PUT /users/:id', method: 'PUT', path: (id) => `/users/${id}`, body: () => ({ email: `moved-${randomUUID()}@evil.example` }), ok: 200 },
  { name: 'POST /users/:id/disable', method: 'POST', path: (id) => `/users/${id}/disable`, body: {}, ok: 200 },
  { name: 'POST /users/:id/enable', method: 'POST', path: (id) => `/users/${id}/enable`, body: {}, ok: 200 },
  { name: 'POST /users/:id/unlock', method: 'POST', path: (id) => `/users/${id}/unlock`, body: {}, ok: 200 },
  { name: 'POST /users/:id/2fa/reset', method: 'POST', path: (id) => `/users/${id}/2fa/reset`, body: {}, ok: 200 },
  { name: 'POST /users/:id/force-password-reset', method: 'POST', path: (id) => `/users/${id}/force-password-reset`, body: {}, ok: 200 },
  { name: 'PUT /users/:id/groups', method: 'PUT', path: (id) => `/users/${id}/groups`, // Adds a group the caller may assign and keeps the others: only the target check refuses it.
    body: (target: BackOfficeUser) => ({ groups: [...new Set([...target.groups, 'readers'])] }), ok: 200 },
  { name: 'DELETE /users/:id/sessions', method: 'DELETE', path: (id) => `/users/${id}/sessions`, ok: 204 },
  { name: 'POST /users/:id/resend-invite', method: 'POST', path: (id) => `/users/${id}/resend-invite`, body: {}, ok: 202, invited: true },
  { name: 'DELETE /users/:id', method: 'DELETE', path: (id) => `/users/${id}`, ok: 204 },
];

/**
 * OWASP ASVS 4.0 4.1.3 (least privilege) and 4.2.1 (IDOR): a holder of `users.manage` outside `admin` acts only
 * on users who hold no more than they do. Found in review: such a holder could take over an admin through
 * PUT /users/:id (email change, then the admin's reset link went to the attacker), import admins and admin
 * password hashes through POST /users/import, and disable or delete admins.
 */
describe('users.manage outside admin: only users holding no more than the caller (OWASP ASVS 4.0 4.1.3 / 4.2.1)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  /** users.manage + users.read + users.invite + sessions.manage, not admin. */
  let desk: HttpClient;
  let deskUser: BackOfficeUser;
  let counter = 0;
  const make = userFactory(() => ctx, 'limit');
  const signIn = (email: string, password?: string) => signedInClient(ctx, email, password);
  const send = (client: HttpClient, route: TargetRoute, target: BackOfficeUser) =>
    client.request(route.method, route.path(target.id), route.body === undefined ? {} : { body: typeof route.body === 'function' ? route.body(target) : route.body });
  const expectForbidden = (res: HttpResult) => {
    expect(res.status, res.text).toBe(403);
    expect(res.body.code).toBe('forbidden');
    expect(res.body.message).toMatch(/may not/);
  };
  /** A target in `groups`: invited through the API when the route needs it, else signed in (a live session). */
  const target = async (groups: string[], invited = false): Promise<{ user: BackOfficeUser; session: HttpClient | null }> => {
    if (invited) {
      const res = await admin.post('/users/invite', { email: `invited${++counter}@example.com`, name: 'Invited', groups });
      expect(res.status, res.text).toBe(201);
      return { user: (await ctx.userManager.findById(res.body.user.id))!, session: null };
    }
    const user = await make({ groups });
    return { user, session: await signIn(user.email) };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
    const boss = await make({ groups: ['admin'] });
    admin = await signIn(boss.email);
    const groups = [
      { alias: 'helpdesk', name: 'Helpdesk', permissions: ['users.manage', 'users.read', 'users.invite', 'sessions.manage'] },
      { alias: 'auditors', name: 'Auditors', permissions: ['audit.read'] },
      { alias: 'readers', name: 'Readers', permissions: ['users.read'] },
    ];
    for (const group of groups) expect((await admin.post('/groups', group)).status).toBe(201);
    deskUser = await make({ groups: ['helpdesk'] });
    desk = await signIn(deskUser.email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it("refuses to change an admin's email (PUT /users/:id), so the admin's reset link cannot go to the caller (account takeover)", async () => {
    const boss = await make({ groups: ['admin'] });
    // The documented guard on groups already held.
    expect((await desk.request('PUT', `/users/${deskUser.id}/groups`, { body: { groups: ['helpdesk', 'admin'] } })).status).toBe(403);

    const changed = await desk.request('PUT', `/users/${boss.id}`, { body: { email: 'attacker@evil.example' } });
    expectForbidden(changed);
    expect(changed.body.message).toMatch(/"admin"/);
    expect((await ctx.userManager.findById(boss.id))?.email).toBe(boss.email);

    // The takeover the change would have allowed: no reset link reaches the attacker's address.
    await desk.fresh().post('/auth/forgot-password', { email: 'attacker@evil.example' });
    await ctx.app.get(BackOfficeBackgroundTasks).drain?.();
    expect(Mailbox.messages.find((m) => m.to === 'attacker@evil.example')).toBeUndefined();
  });

  it('refuses an import that puts anyone (the caller included) into admin or overwrites an admin\'s password hash, and writes nothing', async () => {
    const boss = await make({ groups: ['admin'] });
    // Its own helpdesk user: before the fix this import ended the caller's session (new security stamp).
    const helper = await make({ groups: ['helpdesk'] });
    const helperSession = await signIn(helper.email);
    const bcrypt = await import('bcrypt');
    const knownHash = await (bcrypt as any).default.hash('attacker chosen password', 4);
    const imported = await helperSession.post('/users/import', {
      onConflict: 'update',
      users: [
        { email: helper.email, name: 'Helper', groups: ['admin'] },
        { email: boss.email, name: 'Boss', groups: ['admin'], passwordFormat: 'bcrypt', passwordHash: knownHash },
        { email: 'fresh-admin@evil.example', name: 'Fresh', groups: ['admin'], passwordFormat: 'bcrypt', passwordHash: knownHash },
      ],
    });
    expectForbidden(imported);
    expect(imported.body.errors).toEqual([{ field: 'users[0]', code: 'forbidden', description: expect.stringMatching(/"admin"/) }]);
    expect((await ctx.userManager.findById(helper.id))?.groups).toEqual(['helpdesk']);
    expect((await new HttpClient(ctx.url).login(boss.email, 'attacker chosen password')).status).toBe(401);
    expect(await ctx.userManager.findByEmail('fresh-admin@evil.example')).toBeNull();
  });

  it('refuses to disable or delete an admin', async () => {
    const boss = await make({ groups: ['admin'] });
    const bossSession = await signIn(boss.email);
    expectForbidden(await desk.post(`/users/${boss.id}/disable`, {}));
    expect((await bossSession.get('/auth/me')).status).toBe(200);
    expectForbidden(await desk.delete(`/users/${boss.id}`));
    expect((await ctx.userManager.findById(boss.id))?.isApproved).toBe(true);
  });

  describe.each(TARGET_ROUTES)('$name', (route) => {
    it.each([
      ['in admin', ['admin']],
      ['holding a permission the caller lacks (audit.read)', ['auditors']],
      ['in admin through a second group as well', ['editor', 'admin']],
    ])('refuses a target %s with 403 forbidden and writes nothing (OWASP ASVS 4.0 4.2.1 IDOR)', async (_label, groups) => {
      const { user, session } = await target(groups, route.invited);
      const before = snapshot(await ctx.userManager.findById(user.id));
      await ctx.app.get(BackOfficeBackgroundTasks).drain?.();
      const mailsBefore = Mailbox.messages.length;
      expectForbidden(await send(desk, route, user));
      await ctx.app.get(BackOfficeBackgroundTasks).drain?.();
      expect(snapshot(await ctx.userManager.findById(user.id))).toEqual(before);
      expect(Mailbox.messages.length).toBe(mailsBefore);
      if (session) expect((await session.get('/auth/me')).status).toBe(200);
    });

    it('lets the same caller act on an ordinary editor, and on a user holding a subset of its permissions (least privilege, not less)', async () => {
      for (const groups of [['editor'], ['readers']]) {
        const { user } = await target(groups, route.invited);
        const res = await send(desk, route, user);
        expect(res.status, res.text).toBe(route.ok);
      }
    });

    it('lets an admin act on an admin (the last-admin rules still apply)', async () => {
      const { user } = await target(['admin'], route.invited);
      const res = await send(admin, route, user);
      expect(res.status, res.text).toBe(route.ok);
    });
  });

  it('lets the caller act on itself (it holds no more than itself)', async () => {
    const self = await make({ groups: ['helpdesk'] });
    const client = await signIn(self.email);
    expect((await client.request('PUT', `/users/${self.id}`, { body: { name: 'Renamed' } })).status).toBe(200);
    expect((await client.delete(`/users/${self.id}`)).body.code).toBe('cannot_delete_self');
  });

  describe('POST /users/import', () => {
    const newRecord = () => ({ email: `imported${++counter}@example.com`, name: 'Imported', groups: ['editor'] });

    it('refuses a dry run the same way (403 naming the first offending record), so a dry run is no oracle for the real run', async () => {
      const records = [newRecord(), { ...newRecord(), groups: ['auditors'] }, { ...newRecord(), groups: ['admin'] }];
      const dry = await desk.post('/users/import', { dryRun: true, users: records });
      const real = await desk.post('/users/import', { users: records });
      expectForbidden(dry);
      expectForbidden(real);
      expect(dry.body).toEqual(real.body);
      expect(real.body.errors[0]).toMatchObject({ field: 'users[1]', code: 'forbidden' });
      expect(real.body.message).toMatch(/^users\[1\]: .*"auditors".*Nothing was imported\.$/);
    });

    it('writes nothing when a later record is refused: no partial import', async () => {
      const first = newRecord();
      const res = await desk.post('/users/import', { users: [first, newRecord(), { ...newRecord(), groups: ['admin'] }] });
      expectForbidden(res);
      expect(res.body.errors[0].field).toBe('users[2]');
      expect(await ctx.userManager.findByEmail(first.email)).toBeNull();
    });

    it('applies groupMap first: a mapped alias that lands in admin is refused', async () => {
      const res = await desk.post('/users/import', { groupMap: { administrators: 'admin' }, users: [{ ...newRecord(), groups: ['administrators'] }] });
      expectForbidden(res);
    });

    it.each(['update', 'skip'] as const)('with onConflict %s, refuses a record matching an existing user the caller may not manage', async (onConflict) => {
      const auditor = await make({ groups: ['auditors'] });
      const before = snapshot(await ctx.userManager.findById(auditor.id));
      const res = await desk.post('/users/import', { onConflict, users: [newRecord(), { email: auditor.email, name: 'Renamed', groups: ['editor'] }] });
      expectForbidden(res);
      expect(res.body.errors[0].field).toBe('users[1]');
      expect(snapshot(await ctx.userManager.findById(auditor.id))).toEqual(before);
    });

    it('with onConflict fail, a match is only reported (nothing of the existing user is touched)', async () => {
      const boss = await make({ groups: ['admin'] });
      const res = await desk.post('/users/import', { onConflict: 'fail', users: [{ email: boss.email, name: 'Boss', groups: ['editor'] }] });
      expect(res.status, res.text).toBe(200);
      expect(res.body.results[0].outcome).toBe('invalid');
      expect((await ctx.userManager.findById(boss.id))?.groups).toEqual(['admin']);
    });

    it('still imports and updates users the caller may manage', async () => {
      const editor = await make({ groups: ['editor'] });
      const fresh = newRecord();
      const res = await desk.post('/users/import', {
        onConflict: 'update',
        users: [fresh, { email: editor.email, name: 'Updated Editor', groups: ['readers'] }],
      });
      expect(res.status, res.text).toBe(200);
      expect(res.body.results.map((r: { outcome: string }) => r.outcome)).toEqual(['created', 'updated']);
      expect((await ctx.userManager.findById(editor.id))?.groups).toEqual(['readers']);
    });

    it('lets an admin import admins and overwrite an admin', async () => {
      const boss = await make({ groups: ['admin'] });
      const res = await admin.post('/users/import', {
        onConflict: 'update',
        users: [{ ...newRecord(), groups: ['admin'] }, { email: boss.email, name: 'Boss Renamed', groups: ['admin', 'auditors'] }],
      });
      expect(res.status, res.text).toBe(200);
      expect(res.body.results.map((r: { outcome: string }) => r.outcome)).toEqual(['created', 'updated']);
    });
  });

  describe('POST /users/api/:id/rotate-secret', () => {
    const createApiUser = async (groups: string[]) => {
      const res = await admin.post('/users/api', { name: 'Robot', groups });
      expect(res.status, res.text).toBe(201);
      return res.body as { user: { id: string }; clientId: string; clientSecret: string };
    };
    const tokenStatus = async (clientId: string, clientSecret: string) =>
      (await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret })).status;

    it.each([
      ['in admin', ['admin']],
      ['holding a permission the caller lacks', ['auditors']],
    ])('refuses to rotate the secret of an API user %s: the old secret keeps working (OWASP ASVS 4.0 4.1.3)', async (_label, groups) => {
      const robot = await createApiUser(groups);
      expectForbidden(await desk.post(`/users/api/${robot.user.id}/rotate-secret`, {}));
      expect(await tokenStatus(robot.clientId, robot.clientSecret)).toBe(200);
      // ... nor disable it, or change its groups, through the /users/:id routes.
      expectForbidden(await desk.post(`/users/${robot.user.id}/disable`, {}));
      expectForbidden(await desk.request('PUT', `/users/${robot.user.id}/groups`, { body: { groups: [] } }));
    });

    it('rotates the secret of an API user holding no more than the caller; an admin rotates any', async () => {
      const reader = await createApiUser(['readers']);
      expect((await desk.post(`/users/api/${reader.user.id}/rotate-secret`, {})).status).toBe(200);
      const adminRobot = await createApiUser(['admin']);
      expect((await admin.post(`/users/api/${adminRobot.user.id}/rotate-secret`, {})).status).toBe(200);
    });

    it('answers 404 for an id that is not an API user', async () => {
      const person = await make({ groups: ['editor'] });
      expect((await desk.post(`/users/api/${person.id}/rotate-secret`, {})).status).toBe(404);
    });
  });

  it('still lets the caller change the email of a user it may manage; the reset link then goes to the new address', async () => {
    const editor = await make({ groups: ['editor'] });
    expect((await desk.request('PUT', `/users/${editor.id}`, { body: { email: `moved${++counter}@example.com` } })).status).toBe(200);
    const moved = (await ctx.userManager.findById(editor.id))!.email;
    await new HttpClient(ctx.url).post('/auth/forgot-password', { email: moved });
    await ctx.app.get(BackOfficeBackgroundTasks).drain?.();
    await expect.poll(() => Mailbox.messages.find((m) => m.to === moved), { timeout: 3000 }).toBeDefined();
    expect(linkParams(Mailbox.messages.find((m) => m.to === moved)!.text, 'reset-password').userId).toBe(editor.id);
  });
});
