import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, reauthenticate, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { independentCode } from '../support/oathtool.js';
import { Injectable, type LoggerService } from '@nestjs/common';
import { BackOfficeNotSupportedError, TypeOrmBackOfficeUserStore } from '../../src/backoffice-identity/index.js';

/** A store that keeps users, groups and 2FA, but not the enrolment deadline. */
@Injectable()
class StoreWithoutSetupDeadline extends TypeOrmBackOfficeUserStore {}
Object.defineProperty(StoreWithoutSetupDeadline.prototype, 'setTwoFactorSetupDeadline', { value: undefined });

describe('Two-factor enforced per group (requireTwoFactor)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'enf');
  const put = (client: HttpClient, path: string, body: unknown) => client.request('PUT', path, { body });

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const boss = await make({ groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    const created = await admin.post('/groups', { alias: 'finance', name: 'Finance', permissions: ['audit.read'], requireTwoFactor: true });
    expect(created.status, created.text).toBe(201);
    expect(created.body.requireTwoFactor).toBe(true);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('end to end with oathtool: requiresTwoFactorSetup, a setup-only session that reaches only setup routes, then a full session', async () => {
    const user = await make({ groups: ['finance'] });
    const http = new HttpClient(ctx.url);
    const login = await http.login(user.email, TEST_PASSWORD);
    expect(login.status, login.text).toBe(200);
    expect(login.body).toEqual({ status: 'requiresTwoFactorSetup', providers: ['totp'] });
    // The setup-only session: me and the setup routes, nothing else (OWASP ASVS 4.0 2.8 / 5.0 6.4).
    expect((await http.get('/auth/me')).body).toMatchObject({ id: user.id, twoFactorEnabled: false });
    for (const [method, path, body] of [
      ['GET', '/audit'],
      ['GET', '/auth/sessions'],
      ['POST', '/auth/change-password', { currentPassword: TEST_PASSWORD, newPassword: 'another long passphrase here' }],
      ['POST', '/auth/2fa/disable', { password: TEST_PASSWORD }],
    ] as Array<[string, string, unknown?]>) {
      const res = await http.request(method, path, { body });
      expectClientError(res, 403);
      expect(res.body.code).toBe('two_factor_setup_required');
    }
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status, setup.text).toBe(200);
    expectClientError(await http.post('/auth/2fa/enable', { provider: 'totp', code: '000000' }), 400);
    expectClientError(await http.get('/audit'), 403);
    const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expect(enable.status, enable.text).toBe(200);
    expect(enable.body.recoveryCodes).toHaveLength(10);
    // The same session is now a full one.
    expect((await http.get('/audit')).status).toBe(200);
    expect((await http.get('/auth/sessions')).status).toBe(200);
    // 2FA cannot be turned off while a group requires it.
    const off = await http.post('/auth/2fa/disable', { password: TEST_PASSWORD });
    expectClientError(off, 403);
    expect(off.body.code).toBe('two_factor_required');
    // Next sign-in: the ordinary second step.
    const next = new HttpClient(ctx.url);
    expect((await next.login(user.email, TEST_PASSWORD)).body).toMatchObject({ status: 'requiresTwoFactor' });
    ctx.clock.advance(30_000);
    const second = await next.post('/auth/2fa', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expect(second.status, second.text).toBe(200);
    expect((await next.get('/audit')).status).toBe(200);
    const events = (await admin.get(`/audit?userId=${user.id}&take=50`)).body.items.map((e: { event: string }) => e.event);
    expect(events).toContain('backoffice.user.login.requires-two-factor-setup');
    expect(events).toContain('backoffice.user.two-factor.enabled');
  });

  it('OWASP ASVS 4.0 3.7.1: a setup-only session older than the step-up window can re-authenticate and finish enrolling (its 15 minutes are usable), and still reaches nothing else', async () => {
    const user = await make({ groups: ['finance'] });
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).body.status).toBe('requiresTwoFactorSetup');
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status, setup.text).toBe(200);
    ctx.clock.advance(6 * 60_000); // scanning the QR code took longer than session.reauthenticationMinutes (5)
    const stale = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expectClientError(stale, 401);
    expect(stale.body.code).toBe('reauthentication_required');
    const wrong = await http.post('/auth/reauthenticate', { password: 'not the password at all' });
    expectClientError(wrong, 401);
    expect(wrong.body.code).toBe('invalid_credentials');
    const reauth = await http.post('/auth/reauthenticate', { password: TEST_PASSWORD });
    expect(reauth.status, reauth.text).toBe(200);
    expect((await http.get('/auth/sessions')).body.code).toBe('two_factor_setup_required');
    ctx.clock.advance(30_000);
    const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expect(enable.status, enable.text).toBe(200);
    expect((await http.get('/auth/sessions')).status).toBe(200);
  });

  it('a setup-only session expires after 15 minutes and a wrong password never gets one', async () => {
    const user = await make({ groups: ['finance'] });
    const wrong = new HttpClient(ctx.url);
    expectClientError(await wrong.login(user.email, 'wrong password entirely'), 401);
    expect(wrong.cookies.has('backoffice_session')).toBe(false);
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).body.status).toBe('requiresTwoFactorSetup');
    ctx.clock.advance(16 * 60_000);
    expectClientError(await http.get('/auth/me'), 401);
    ctx.clock.advance(-16 * 60_000);
  });

  it('turning requireTwoFactor on applies at the next sign-in; users outside the group and API users are not affected', async () => {
    const user = await make({ groups: ['writer'] });
    const before = new HttpClient(ctx.url);
    expect((await before.login(user.email, TEST_PASSWORD)).body.status).toBe('success');
    const res = await put(admin, '/groups/writer', { requireTwoFactor: true });
    expect(res.status, res.text).toBe(200);
    const [entry] = (await admin.get('/audit?take=20')).body.items.filter((e: { event: string }) => e.event === 'backoffice.group.updated');
    expect(entry.details).toEqual({ group: 'writer', changes: { requireTwoFactor: { from: false, to: true } } });
    expect((await before.get('/auth/me')).status).toBe(200); // live sessions go on
    expect((await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD)).body.status).toBe('requiresTwoFactorSetup');
    const outsider = await make({ groups: ['editor'] });
    expect((await new HttpClient(ctx.url).login(outsider.email, TEST_PASSWORD)).body.status).toBe('success');
    await reauthenticate(admin); // an earlier test moved the clock past the admin's sign-in
    const robot = await admin.post('/users/api', { name: 'Robot', groups: ['writer'] });
    expect(robot.status, robot.text).toBe(201);
    const token = await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: robot.body.clientId, client_secret: robot.body.clientSecret });
    expect(token.status).toBe(200);
    expect((await put(admin, '/groups/writer', { requireTwoFactor: false })).status).toBe(200);
    expect((await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD)).body.status).toBe('success');
  });

  it('refuses a non-boolean requireTwoFactor with 400', async () => {
    for (const value of ['yes', 1, null, {}, []]) {
      expectClientError(await put(admin, '/groups/finance', { requireTwoFactor: value }), 400);
      expectClientError(await admin.post('/groups', { alias: 'bad2fa', name: 'B', permissions: [], requireTwoFactor: value }), 400);
    }
    expect((await admin.get('/groups')).body.items.find((g: { alias: string }) => g.alias === 'finance').requireTwoFactor).toBe(true);
  });
});

describe('Two-factor enforced per group with a grace period', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'grace');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, twoFactor: { encryptionKey: 'test-encryption-key-0123456789abcdef', enforcementGraceHours: 48 } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('signs in normally with twoFactorSetupDeadline until the grace period (from the first sign-in) ends, then requires setup', async () => {
    const user = await make({ groups: ['sensitiveData'] });
    await ctx.app.get((await import('typeorm')).DataSource).query(`UPDATE backoffice_group SET require_two_factor = true WHERE alias = 'sensitiveData'`);
    const first = await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD);
    expect(first.body.status).toBe('success');
    const deadline = Date.parse(first.body.twoFactorSetupDeadline);
    expect(deadline - ctx.clock.now().getTime()).toBeGreaterThan(47 * 3_600_000);
    ctx.clock.advance(24 * 3_600_000);
    const later = await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD);
    expect(later.body).toMatchObject({ status: 'success', twoFactorSetupDeadline: first.body.twoFactorSetupDeadline });
    ctx.clock.advance(25 * 3_600_000);
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).body.status).toBe('requiresTwoFactorSetup');
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect((await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) })).status).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.twoFactorSetupDeadline).toBeNull();
    ctx.clock.advance(-49 * 3_600_000);
  });
});

describe('Two-factor enforced per group, grace period set, on a store that cannot keep the deadline', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const warnings: string[] = [];
  const logger: LoggerService = { log() {}, error() {}, warn: (message: unknown) => void warnings.push(String(message)) };
  const make = userFactory(() => ctx, 'nodeadline');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      logger,
      identity: { userStore: StoreWithoutSetupDeadline, rateLimits: { enabled: false }, twoFactor: { encryptionKey: 'test-encryption-key-0123456789abcdef', enforcementGraceHours: 48 } },
    });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('fails closed: no grace period that would restart at every sign-in; setup is required at once, a warning is logged once, setTwoFactorSetupDeadline throws not_supported', async () => {
    expect(ctx.userManager.supportsUserTwoFactor).toBe(true);
    expect(ctx.userManager.supportsTwoFactorSetupDeadline).toBe(false);
    const user = await make({ groups: ['sensitiveData'] });
    await ctx.app.get((await import('typeorm')).DataSource).query(`UPDATE backoffice_group SET require_two_factor = true WHERE alias = 'sensitiveData'`);
    for (let attempt = 0; attempt < 2; attempt++) {
      const answer = await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD);
      expect(answer.status).toBe(200);
      expect(answer.body.status).toBe('requiresTwoFactorSetup');
      expect(answer.body.twoFactorSetupDeadline).toBeUndefined();
    }
    expect(warnings.filter((w) => w.includes('enforcementGraceHours'))).toHaveLength(1);
    await expect(ctx.userManager.setTwoFactorSetupDeadline(user, new Date())).rejects.toBeInstanceOf(BackOfficeNotSupportedError);
    await expect(ctx.userManager.setTwoFactorSetupDeadline(user, new Date())).rejects.toThrow(/UserTwoFactorSetupDeadlineStore/);
  });
});
