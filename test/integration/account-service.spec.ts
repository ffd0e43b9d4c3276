import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { independentCode } from '../support/oathtool.js';
import { BackOfficeAccountService, BackOfficeEvents, BackOfficeSessionService } from '../../src/backoffice-identity/index.js';

const KEY = 'test-encryption-key-0123456789abcdef';

/** The account flows and the stamp-change step, called as a host app would: through the services, not HTTP. */
describe('Account service, refreshSignIn and the two-factor notifications', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let events: NotificationRecorder;
  let account: BackOfficeAccountService;
  let counter = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, twoFactor: { encryptionKey: KEY } } });
    events = NotificationRecorder.attach(ctx.app);
    account = ctx.app.get(BackOfficeAccountService);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function userWithTwoSessions() {
    const email = `account${++counter}@example.com`;
    const user = (await ctx.userManager.createUser({ email, name: 'Account', password: TEST_PASSWORD })).value!;
    const here = new HttpClient(ctx.url);
    const there = new HttpClient(ctx.url);
    expect((await here.login(email, TEST_PASSWORD)).status).toBe(200);
    expect((await there.login(email, TEST_PASSWORD)).status).toBe(200);
    const sessions = await here.get('/auth/sessions');
    const current = sessions.body.find((s: { current: boolean }) => s.current);
    return { user, here, there, sessionId: current.id as string };
  }

  it('the user manager alone raises both two-factor notifications (enabled and disabled), once each', async () => {
    const user = (await ctx.userManager.createUser({ email: `direct${++counter}@example.com`, name: 'Direct', password: TEST_PASSWORD })).value!;
    expect((await ctx.userManager.setTwoFactorEnabled(user, true)).succeeded).toBe(true);
    expect(events.named(BackOfficeEvents.TwoFactorEnabled, user.id)).toHaveLength(1);
    expect((await ctx.userManager.resetTwoFactor(user)).succeeded).toBe(true);
    expect(events.named(BackOfficeEvents.TwoFactorDisabled, user.id)).toHaveLength(1);
    expect(events.named(BackOfficeEvents.TwoFactorEnabled, user.id)).toHaveLength(1);
  });

  it('refreshSignIn keeps the named session across a stamp change and ends the others', async () => {
    const { user, here, there, sessionId } = await userWithTwoSessions();
    await ctx.userManager.updateSecurityStamp(user);
    expect(await ctx.signInManager.refreshSignIn(user, sessionId)).toBe(1);
    expect((await here.get('/auth/me')).status).toBe(200);
    expect((await there.get('/auth/me')).status).toBe(401);
  });

  it('refreshSignIn without a session ends every session of the user', async () => {
    const { user, here, there } = await userWithTwoSessions();
    await ctx.userManager.updateSecurityStamp(user);
    expect(await ctx.signInManager.refreshSignIn(user)).toBe(2);
    expect((await here.get('/auth/me')).status).toBe(401);
    expect((await there.get('/auth/me')).status).toBe(401);
  });

  it('changePassword: a wrong current password counts toward lockout and answers invalid_credentials; a right one keeps only this session', async () => {
    const { user, here, there, sessionId } = await userWithTwoSessions();
    const wrong = await account.changePassword(user, { id: sessionId }, 'not the password', 'a brand new passphrase 42');
    expect(wrong.errors.map((e) => e.code)).toEqual(['invalid_credentials']);
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(1);
    const weak = await account.changePassword(user, { id: sessionId }, TEST_PASSWORD, 'short');
    expect(weak.errors.map((e) => e.code)).toContain('password_too_short');
    expect((await account.changePassword(user, { id: sessionId }, TEST_PASSWORD, 'a brand new passphrase 42')).succeeded).toBe(true);
    expect(events.named(BackOfficeEvents.PasswordChanged, user.id)).toHaveLength(1);
    expect((await here.get('/auth/me')).status).toBe(200);
    expect((await there.get('/auth/me')).status).toBe(401);
  });

  it('enableTwoFactor / disableTwoFactor: coded refusals, then on (recovery codes, other sessions end) and off again', async () => {
    const { user, here, there, sessionId } = await userWithTwoSessions();
    const session = (await ctx.app.get(BackOfficeAccountService).listSessions(user, { id: sessionId })).find((s) => s.current)!;
    expect(session.id).toBe(sessionId);
    const full = { id: sessionId, twoFactorSetupOnly: false, createdAt: new Date(), expiresAt: new Date(Date.now() + 3_600_000) };
    expect((await account.startTwoFactorSetup(user, 'sms')).errors.map((e) => e.code)).toEqual(['unknown_provider']);
    const setup = await account.startTwoFactorSetup(user, 'totp');
    expect(setup.succeeded).toBe(true);
    expect((await account.enableTwoFactor(user, full, 'totp', '000000')).errors.map((e) => e.code)).toEqual(['invalid_code']);
    const enabled = await account.enableTwoFactor(user, full, 'totp', independentCode(setup.value!.secret, ctx.clock));
    expect(enabled.value!.recoveryCodes).toHaveLength(10);
    expect(events.named(BackOfficeEvents.TwoFactorEnabled, user.id)).toHaveLength(1);
    expect((await here.get('/auth/me')).status).toBe(200);
    expect((await there.get('/auth/me')).status).toBe(401);
    expect((await account.enableTwoFactor(user, full, 'totp', '123456')).errors.map((e) => e.code)).toEqual(['two_factor_already_enabled']);
    expect((await account.disableTwoFactor(user, { id: sessionId }, 'wrong password')).errors.map((e) => e.code)).toEqual(['invalid_credentials']);
    expect((await account.disableTwoFactor(user, { id: sessionId }, TEST_PASSWORD)).succeeded).toBe(true);
    expect(events.named(BackOfficeEvents.TwoFactorDisabled, user.id)).toHaveLength(1);
    expect((await here.get('/auth/me')).status).toBe(200);
    expect((await account.disableTwoFactor(user, { id: sessionId }, TEST_PASSWORD)).errors.map((e) => e.code)).toEqual(['two_factor_not_enabled']);
  });

  it('OWASP ASVS 5.0 7.2.4: enableTwoFactor from host code without a response to carry a new token ends a setup-only session instead of making its token a full one', async () => {
    const email = `setup${++counter}@example.com`;
    const user = (await ctx.userManager.createUser({ email, name: 'Setup', password: TEST_PASSWORD })).value!;
    const { token, session } = await ctx.app.get(BackOfficeSessionService).create(user, {}, { twoFactorSetupOnly: true });
    const http = new HttpClient(ctx.url);
    http.cookies.set('backoffice_session', token);
    expect((await http.get('/auth/sessions')).body.code).toBe('two_factor_setup_required');
    const setup = await account.startTwoFactorSetup(user, 'totp');
    const enabled = await account.enableTwoFactor(user, session, 'totp', independentCode(setup.value!.secret, ctx.clock));
    expect(enabled.succeeded).toBe(true);
    expect(enabled.value!.recoveryCodes).toHaveLength(10);
    expect((await http.get('/auth/sessions')).status).toBe(401);
    expect((await http.get('/auth/me')).status).toBe(401);
  });

  it('revokeOtherSessions signs out everywhere else and raises UserSessionsRevokedNotification with the count', async () => {
    const { user, here, there, sessionId } = await userWithTwoSessions();
    expect(await account.revokeOtherSessions(user, { id: sessionId })).toBe(1);
    expect(events.named(BackOfficeEvents.SessionsRevoked, user.id).at(-1)).toMatchObject({ count: 1 });
    expect((await here.get('/auth/me')).status).toBe(200);
    expect((await there.get('/auth/me')).status).toBe(401);
    expect(await account.revokeSession(user, '00000000-0000-4000-8000-000000000000')).toBe(false);
  });
});
