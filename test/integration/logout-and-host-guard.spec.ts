import { Controller, Get, Injectable, Post } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { DataSource } from 'typeorm';
import { CapturingLogger } from '../support/capturing-logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { landsOn, SAME_ORIGIN_PATH_VECTORS } from '../support/same-origin-path-vectors.js';
import {
  BackOfficeAuthorize,
  BackOfficeEvents,
  BackOfficeGroupService,
  BackOfficeUserManager,
  GroupUpdatedNotification,
  UserDisabledNotification,
  UserGroupsChangedNotification,
  CurrentBackOfficeUser,
  UserLoginSuccessNotification,
  UserLogoutSuccessNotification,
  type BackOfficeUser,
  type BackOfficeUserDto,
} from '../../src/backoffice-identity/index.js';

/** Sync listener: "log out everywhere" through an external provider. */
@Injectable()
class SyncRedirectListener {
  static enabled = false;
  @OnEvent(BackOfficeEvents.LogoutSuccess)
  handle(notification: UserLogoutSuccessNotification) {
    if (SyncRedirectListener.enabled) notification.signOutRedirectUrl = `https://idp.example.com/logout?uid=${notification.affectedUserId}`;
  }
}

/** Async listener that sets the URL only after an await. */
@Injectable()
class AsyncRedirectListener {
  static enabled = false;
  @OnEvent(BackOfficeEvents.LogoutSuccess)
  async handle(notification: UserLogoutSuccessNotification) {
    if (!AsyncRedirectListener.enabled) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
    notification.signOutRedirectUrl = 'https://idp.example.com/end-session?async=1';
  }
}

/** A listener that throws, beside the others. */
@Injectable()
class ThrowingListener {
  static enabled = false;
  @OnEvent(BackOfficeEvents.LogoutSuccess)
  async handle() {
    if (ThrowingListener.enabled) throw new Error('listener exploded');
  }
}

/** A listener that sets whatever `url` holds (a value a host might build from untrusted data, or a buggy one's non-string). */
@Injectable()
class AnyRedirectListener {
  static url: unknown;
  @OnEvent(BackOfficeEvents.LogoutSuccess)
  handle(notification: UserLogoutSuccessNotification) {
    if (AnyRedirectListener.url !== undefined) notification.signOutRedirectUrl = AnyRedirectListener.url as string;
  }
}

/** A login listener that writes to the notification it was handed (a JS host "enriching" it, or a buggy one). */
@Injectable()
class WritingLoginListener {
  static enabled = false;
  @OnEvent(BackOfficeEvents.LoginSuccess, { suppressErrors: false })
  handle(notification: UserLoginSuccessNotification) {
    if (WritingLoginListener.enabled) Object.assign(notification, { affectedUserId: 'someone-else', performingUserId: 'x'.repeat(5000) });
  }
}

/** Listeners that mutate what a notification holds (its arrays, its diff object, its dates) instead of its fields. */
@Injectable()
class MutatingListener {
  static enabled = false;
  @OnEvent(BackOfficeEvents.GroupsChanged, { suppressErrors: false })
  groups(n: UserGroupsChangedNotification) {
    if (!MutatingListener.enabled) return;
    n.dateTimeUtc.setTime(0);
    n.groups.push('admin');
    (n.removed as string[]).push('auditors');
  }
  @OnEvent(BackOfficeEvents.GroupsChanged, { suppressErrors: false })
  added(n: UserGroupsChangedNotification) {
    if (MutatingListener.enabled) n.added.push('admin');
  }
  @OnEvent(BackOfficeEvents.GroupUpdated, { suppressErrors: false })
  group(n: GroupUpdatedNotification) {
    if (!MutatingListener.enabled) return;
    n.dateTimeUtc.setTime(0);
    (n.changes.name as { to: unknown }).to = 'Renamed by a listener';
  }
  @OnEvent(BackOfficeEvents.GroupUpdated, { suppressErrors: false })
  groupDiff(n: GroupUpdatedNotification) {
    if (MutatingListener.enabled) (n.changes as Record<string, unknown>).permissions = { from: [], to: ['users.manage'] };
  }
  @OnEvent(BackOfficeEvents.Disabled, { suppressErrors: false })
  disabled(n: UserDisabledNotification) {
    if (!MutatingListener.enabled) return;
    n.until?.setTime(0);
    n.dateTimeUtc.setTime(0);
    throw new Error('mutating listener done');
  }
}

/** A host app's own back-office controller. */
@Controller('reports')
class HostReportsController {
  @Get()
  @BackOfficeAuthorize()
  list(@CurrentBackOfficeUser() user: BackOfficeUserDto) {
    return { for: user.email, groups: user.groups };
  }

  @Post('purge')
  @BackOfficeAuthorize({ groups: ['admin'] })
  purge() {
    return { purged: true };
  }
}

describe('Logout redirect and the host-app guard', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const logger = new CapturingLogger();
  const password = 'correct horse battery staple';
  let counter = 0;
  const newUser = async (groups: string[] = []): Promise<BackOfficeUser> =>
    (await ctx.userManager.createUser({ email: `lo${++counter}@example.com`, name: 'Lo', password, groups })).value!;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      logger,
      identity: { rateLimits: { enabled: false } },
      providers: [SyncRedirectListener, AsyncRedirectListener, ThrowingListener, AnyRedirectListener, WritingLoginListener, MutatingListener],
      controllers: [HostReportsController],
    });
  });
  afterEach(() => {
    SyncRedirectListener.enabled = AsyncRedirectListener.enabled = ThrowingListener.enabled = WritingLoginListener.enabled = MutatingListener.enabled = false;
    AnyRedirectListener.url = undefined;
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function signedIn() {
    const user = await newUser();
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, password)).status).toBe(200);
    return { user, http };
  }

  it('returns null when no listener sets signOutRedirectUrl', async () => {
    const { http } = await signedIn();
    expect((await http.post('/auth/logout')).body).toEqual({ signOutRedirectUrl: null });
  });

  it('returns the URL a sync listener set', async () => {
    SyncRedirectListener.enabled = true;
    const { user, http } = await signedIn();
    expect((await http.post('/auth/logout')).body).toEqual({ signOutRedirectUrl: `https://idp.example.com/logout?uid=${user.id}` });
  });

  it('awaits an async listener that sets the URL after an await', async () => {
    AsyncRedirectListener.enabled = true;
    const { http } = await signedIn();
    expect((await http.post('/auth/logout')).body).toEqual({ signOutRedirectUrl: 'https://idp.example.com/end-session?async=1' });
  });

  it('a throwing listener does not break logout, nor the listener that sets the URL', async () => {
    ThrowingListener.enabled = true;
    AsyncRedirectListener.enabled = true;
    const { http } = await signedIn();
    const logout = await http.post('/auth/logout');
    expect(logout.status).toBe(200);
    expect(logout.body.signOutRedirectUrl).toBe('https://idp.example.com/end-session?async=1');
    expect((await http.get('/auth/me')).status).toBe(401);
  });

  it('ASVS 4.0 7.1.4: a login.success listener that writes to the notification (affectedUserId, performingUserId) breaks neither the login nor its audit entry: 200, the session works, the failed write is logged', async () => {
    WritingLoginListener.enabled = true;
    logger.lines.length = 0;
    const user = await newUser();
    const http = new HttpClient(ctx.url);
    const login = await http.login(user.email, password);
    expect(login.status, login.text).toBe(200);
    expect((await http.get('/auth/me')).status).toBe(200);
    expect(logger.lines.some((line) => line.includes('A listener of backoffice.user.login.success failed'))).toBe(true);
    const rows = await ctx.app.get(DataSource).query(`SELECT event, performing_user_id, affected_user_id FROM backoffice_audit_entry WHERE affected_user_id = $1`, [user.id]);
    expect(rows).toEqual([{ event: 'backoffice.user.login.success', performing_user_id: user.id, affected_user_id: user.id }]);
  });

  it('ASVS 4.0 7.1.4 / 7.3.3: a listener that mutates what a notification holds (its group lists, its diff, its dates) changes nothing the audit trail stores nor the module\'s own objects; its failed write is logged', async () => {
    const groups = ctx.app.get(BackOfficeGroupService);
    await groups.create({ alias: 'mutated', name: 'Mutated', permissions: [] });
    const user = await newUser();
    const until = new Date(Date.now() + 3_600_000);
    MutatingListener.enabled = true;
    logger.lines.length = 0;
    const started = Date.now();
    expect((await ctx.userManager.setGroups(user, ['mutated'])).succeeded).toBe(true);
    await groups.update('mutated', { name: 'Mutated twice' });
    expect((await ctx.userManager.setApproved(user, false, { reason: 'audit check', until })).succeeded).toBe(true);
    MutatingListener.enabled = false;

    const audit = async (event: string, where: string, param: string) =>
      ctx.app.get(DataSource).query(`SELECT details, created_at FROM backoffice_audit_entry WHERE event = $1 AND ${where} = $2`, [event, param]);
    const [groupsChanged] = await audit(BackOfficeEvents.GroupsChanged, 'affected_user_id', user.id);
    expect(groupsChanged.details).toEqual({ groups: ['mutated'], added: ['mutated'], removed: [], source: 'local' });
    const [groupUpdated] = await audit(BackOfficeEvents.GroupUpdated, "details->>'group'", 'mutated');
    expect(groupUpdated.details).toEqual({ group: 'mutated', changes: { name: { from: 'Mutated', to: 'Mutated twice' } } });
    const [disabled] = await audit(BackOfficeEvents.Disabled, 'affected_user_id', user.id);
    expect(disabled.details).toEqual({ reason: 'audit check', until: until.toISOString() });
    for (const row of [groupsChanged, groupUpdated, disabled]) expect(new Date(row.created_at).getTime()).toBeGreaterThanOrEqual(started - 1000);
    // The module's own objects were copied, not frozen nor changed.
    expect(user.groups).toEqual(['mutated']);
    expect(Object.isFrozen(user.groups)).toBe(false);
    expect(until.getTime()).toBeGreaterThan(started);
    for (const event of [BackOfficeEvents.GroupsChanged, BackOfficeEvents.GroupUpdated, BackOfficeEvents.Disabled]) {
      expect(logger.lines.filter((line) => line.includes(`A listener of ${event} failed`)).length, event).toBeGreaterThanOrEqual(1);
    }
  });

  it('ASVS 4.0 5.1.5: a signOutRedirectUrl that is no http(s) URL nor a same-origin path is not handed to the client (javascript:, data:, //host, control characters)', async () => {
    for (const url of ['javascript:alert(document.cookie)', ' JavaScript:alert(1)', 'data:text/html,<script>alert(1)</script>', '//evil.example/logout', '/\\evil.example', 'https://idp.example.com/logout\r\nSet-Cookie: a=b', 'vbscript:x']) {
      AnyRedirectListener.url = url;
      const { http } = await signedIn();
      const logout = await http.post('/auth/logout');
      expect(logout.status, url).toBe(200);
      expect(logout.body, url).toEqual({ signOutRedirectUrl: null });
      expect((await http.get('/auth/me')).status).toBe(401); // signed out all the same
    }
    for (const url of ['https://idp.example.com/logout?post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F', 'http://localhost:8080/end-session', '/backoffice/?notice=signed-out']) {
      AnyRedirectListener.url = url;
      const { http } = await signedIn();
      expect((await http.post('/auth/logout')).body, url).toEqual({ signOutRedirectUrl: url });
    }
  });

  it('ASVS 4.0 5.1.5: a buggy listener\'s non-string or oversized signOutRedirectUrl is logged as an error and ignored: logout answers 200 with null, the audit entry is written and holds no such value', async () => {
    const circular: Record<string, unknown> = { href: 'https://idp.example.com/logout' };
    circular.self = circular;
    const huge = `https://idp.example.com/logout?state=${'a'.repeat(1_000_000)}`;
    for (const [why, url] of [
      ['a number', 42],
      ['an object', { href: 'https://idp.example.com/logout' }],
      ['a circular object', circular],
      ['a URL object', new URL('https://idp.example.com/logout')],
      ['an array', ['https://idp.example.com/logout']],
      ['a 1 MB URL', huge],
    ] as const) {
      AnyRedirectListener.url = url;
      logger.lines.length = 0;
      const { user, http } = await signedIn();
      const logout = await http.post('/auth/logout');
      expect(logout.status, why).toBe(200);
      expect(logout.body, why).toEqual({ signOutRedirectUrl: null });
      expect((await http.get('/auth/me')).status, why).toBe(401);
      expect(logger.lines.filter((line) => line.includes('signOutRedirectUrl')), why).toHaveLength(1);
      const rows = await ctx.app.get(DataSource).query(`SELECT details FROM backoffice_audit_entry WHERE event = $1 AND affected_user_id = $2`, [
        'backoffice.user.logout.success',
        user.id,
      ]);
      expect(rows, why).toHaveLength(1);
      expect(rows[0].details, why).toEqual({ signOutRedirectUrl: null });
    }
  });

  // Paths only: an absolute http(s) URL is the other kind of sign-out page a listener may set (the test above).
  it.each(SAME_ORIGIN_PATH_VECTORS.filter((v) => v.input.startsWith('/')))('a listener\'s signOutRedirectUrl $input ($why) reaches the client only as a same-origin path', async ({ input, path }) => {
    AnyRedirectListener.url = input;
    const { http } = await signedIn();
    const logout = await http.post('/auth/logout');
    expect(logout.status).toBe(200);
    // Where the browser goes with it (session.js: window.location.assign(signOutRedirectUrl)).
    expect(landsOn(logout.body.signOutRedirectUrl)).toBe(landsOn(path));
  });

  it('@BackOfficeAuthorize protects host routes; groups give 403 forbidden; XSRF applies', async () => {
    const anonymous = await new HttpClient(ctx.url).get(`${ctx.url}/reports`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ statusCode: 401, code: 'unauthenticated' });
    const { user, http } = await signedIn();
    expect((await http.get(`${ctx.url}/reports`)).body).toEqual({ for: user.email, groups: [] });
    const forbidden = await http.post(`${ctx.url}/reports/purge`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.code).toBe('forbidden');
    const admin = await newUser(['admin']);
    const adminHttp = new HttpClient(ctx.url);
    await adminHttp.login(admin.email, password);
    expect((await adminHttp.post(`${ctx.url}/reports/purge`, undefined, { xsrf: false })).body.code).toBe('xsrf_failed');
    expect((await adminHttp.post(`${ctx.url}/reports/purge`)).body).toEqual({ purged: true });
  });
});

class SecondFactorForAllManager extends BackOfficeUserManager {
  override get supportsUserTwoFactor() {
    return true;
  }
}
class RejectEveryoneManager extends BackOfficeUserManager {
  override async checkPassword(): Promise<boolean> {
    return false;
  }
}

describe('The manager swap reaches the HTTP layer', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('a manager whose checkPassword refuses everyone turns a 200 into a 401', async () => {
    const ctx = await createIdentityApp(db, { identity: { userManager: RejectEveryoneManager } });
    try {
      const created = await ctx.userManager.createUser({ email: 'reject@example.com', name: 'R', password: 'correct horse battery staple' });
      const login = await new HttpClient(ctx.url).login(created.value!.email, 'correct horse battery staple');
      expect(login.status).toBe(401);
    } finally {
      await ctx.close();
    }
  });

  it('overrideProvider + supportsUserTwoFactor changes the login answer to requiresTwoFactor', async () => {
    const { BACKOFFICE_USER_MANAGER } = await import('../../src/backoffice-identity/index.js');
    const ctx = await createIdentityApp(db, { override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(SecondFactorForAllManager) });
    try {
      const created = await ctx.userManager.createUser({ email: 'twofa@example.com', name: 'T', password: 'correct horse battery staple' });
      await ctx.userManager.setTwoFactorEnabled(created.value!, true);
      const http = new HttpClient(ctx.url);
      const login = await http.login('twofa@example.com', 'correct horse battery staple');
      expect(login.status).toBe(200);
      expect(login.body.status).toBe('requiresTwoFactor');
      expect(http.cookies.has('backoffice_session')).toBe(false);
    } finally {
      await ctx.close();
    }
  });
});
