import {
  BACKOFFICE_TWO_FACTOR_PROVIDERS,
  BackOfficeEvents,
  TotpTwoFactorProvider,
  type BackOfficeIdentityModuleOptions,
  type BackOfficeUser,
} from '../../src/backoffice-identity/index.js';
import { Mailbox } from '../support/mailbox.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { linkParams } from '../support/smtp.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';

const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';
const PASSKEYS = { rpId: RP_ID, rpName: 'Acme back office', origins: [ORIGIN] };

/**
 * A group's `requireTwoFactor` applies to every way in, not only to the password (README "Two-factor authentication
 * enforced per group"): accepting an invite and signing in with a passkey answer like `POST /auth/login` does:
 * `requiresTwoFactorSetup` with a setup-only session, or `success` with `twoFactorSetupDeadline` during a grace
 * period. OWASP ASVS 4.0 2.2.1/2.2.2 (no path around the required authenticator), 3.2.1 / 3.3 (the session issued
 * matches what the sign-in proved).
 */
async function setUp(identity: Partial<BackOfficeIdentityModuleOptions>, prefix: string) {
  const db = await createTestDatabase();
  const ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, passkeys: PASSKEYS, ...identity }, providers: [Mailbox] });
  const make = userFactory(() => ctx, prefix);
  const boss = await make({ groups: ['admin'] });
  const admin = new HttpClient(ctx.url);
  expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
  const secure = await admin.post('/groups', { alias: 'secure', name: 'Secure', permissions: ['audit.read'], requireTwoFactor: true });
  expect(secure.status, secure.text).toBe(201);
  const relaxed = await admin.post('/groups', { alias: 'relaxed', name: 'Relaxed', permissions: ['audit.read'] });
  expect(relaxed.status, relaxed.text).toBe(201);
  const totp = ctx.app.get<TotpTwoFactorProvider[]>(BACKOFFICE_TWO_FACTOR_PROVIDERS).find((p) => p.name === 'totp') as TotpTwoFactorProvider;

  /** Invites `to` into `groups` and accepts the emailed link; answers the accept response and the invitee's client. */
  const acceptInvite = async (to: string, groups: string[]) => {
    const invited = await admin.post('/users/invite', { email: to, name: 'Invitee', groups });
    expect(invited.status, invited.text).toBe(201);
    const mail = Mailbox.messages.find((m) => m.to === to)!;
    const { userId, token } = linkParams(mail.text, 'accept-invite');
    const invitee = new HttpClient(ctx.url);
    const accepted = await invitee.post('/auth/invite/accept', { userId, token, password: TEST_PASSWORD });
    expect(accepted.status, accepted.text).toBe(200);
    return { userId, token, invitee, accepted };
  };

  /** A user outside the 2FA group with a passkey (registered from a full session), then moved into `secure`. */
  const passkeyMemberOfSecure = async () => {
    const user = await make({ groups: ['relaxed'] });
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).body.status).toBe('success');
    const authenticator = new SoftwareAuthenticator(ORIGIN, RP_ID);
    const options = await http.post('/auth/passkeys/options', {});
    expect(options.status, options.text).toBe(200);
    expect((await http.post('/auth/passkeys', { name: 'Laptop', credential: authenticator.register(options.body) })).status).toBe(201);
    expect((await ctx.userManager.setGroups((await ctx.userManager.findById(user.id)) as BackOfficeUser, ['secure'])).succeeded).toBe(true);
    return { user, authenticator };
  };

  const passkeySignIn = async (authenticator: SoftwareAuthenticator, overrides = {}) => {
    const http = new HttpClient(ctx.url);
    const options = await http.post('/auth/passkey/options', {});
    expect(options.status, options.text).toBe(200);
    const result = await http.post('/auth/passkey/verify', { credential: authenticator.assert(options.body, overrides) });
    expect(result.status, result.text).toBe(200);
    return { http, result };
  };

  return { db, ctx, make, admin, totp, acceptInvite, passkeyMemberOfSecure, passkeySignIn };
}

/** The setup-only session: me and the setup routes answer, everything else 403 two_factor_setup_required. */
async function expectSetupOnlySession(http: HttpClient, userId: string) {
  expect((await http.get('/auth/me')).body).toMatchObject({ id: userId, twoFactorEnabled: false });
  for (const path of ['/audit', '/auth/sessions']) {
    const refused = await http.get(path);
    expectClientError(refused, 403);
    expect(refused.body.code).toBe('two_factor_setup_required');
  }
}

describe('Group-enforced two-factor on invite accept and passkey sign-in (no grace period)', () => {
  let env: Awaited<ReturnType<typeof setUp>>;
  let events: NotificationRecorder;

  beforeAll(async () => {
    env = await setUp({}, 'inv2fa');
    events = NotificationRecorder.attach(env.ctx.app);
  });
  afterAll(async () => {
    await env?.ctx?.close();
    await env?.db?.drop();
  });

  it('baseline: a member without 2FA who signs in with the password gets requiresTwoFactorSetup and a setup-only session', async () => {
    const member = await env.make({ groups: ['secure'] });
    const http = new HttpClient(env.ctx.url);
    expect((await http.login(member.email, TEST_PASSWORD)).body).toEqual({ status: 'requiresTwoFactorSetup', providers: ['totp'] });
    await expectSetupOnlySession(http, member.id);
  });

  it('offers in requiresTwoFactorSetup only providers the setup-only session can enrol in (passkeys are added on the account, not through 2FA setup)', async () => {
    const member = await env.make({ groups: ['secure'] });
    const http = new HttpClient(env.ctx.url);
    const login = await http.login(member.email, TEST_PASSWORD);
    expect(login.body.status).toBe('requiresTwoFactorSetup');
    expect(login.body.providers.length).toBeGreaterThan(0);
    for (const provider of login.body.providers) {
      const setup = await http.post('/auth/2fa/setup', { provider });
      expect(setup.status, `${provider}: ${setup.text}`).toBe(200);
    }
  });

  it('accepting an invite into a requireTwoFactor group answers requiresTwoFactorSetup with a setup-only session; enrolling makes it a full one', async () => {
    const { userId, token, invitee, accepted } = await env.acceptInvite('invitee-secure@example.com', ['secure']);
    expect(accepted.body).toEqual({ status: 'requiresTwoFactorSetup', providers: ['totp'] });
    await expectSetupOnlySession(invitee, userId);
    // The invite is used up and the user active, as for any accepted invite.
    expect((await env.ctx.userManager.findById(userId))!.isApproved).toBe(true);
    expect((await new HttpClient(env.ctx.url).post('/auth/invite/accept', { userId, token, password: TEST_PASSWORD })).body.code).toBe('invalid_token');
    expect(events.named(BackOfficeEvents.InviteAccepted, userId)).toHaveLength(1);
    expect(events.named(BackOfficeEvents.LoginRequiresTwoFactorSetup, userId)).toHaveLength(1);
    expect(events.named(BackOfficeEvents.LoginSuccess, userId)).toHaveLength(0);

    const setup = await invitee.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status, setup.text).toBe(200);
    const enable = await invitee.post('/auth/2fa/enable', { provider: 'totp', code: env.totp.codeAt(setup.body.secret, env.ctx.clock.now()) });
    expect(enable.status, enable.text).toBe(200);
    expect((await invitee.get('/audit')).status).toBe(200);
    env.ctx.clock.advance(30_000);
  });

  it('an invite into a group without requireTwoFactor still signs in at once with a full session', async () => {
    const { userId, invitee, accepted } = await env.acceptInvite('invitee-relaxed@example.com', ['relaxed']);
    expect(accepted.body).toMatchObject({ status: 'success', user: { id: userId, state: 'active' } });
    expect(accepted.body).not.toHaveProperty('twoFactorSetupDeadline');
    expect((await invitee.get('/audit')).status).toBe(200);
    expect(events.named(BackOfficeEvents.LoginSuccess, userId)).toHaveLength(1);
  });

  it('a passkey sign-in of a member without 2FA answers requiresTwoFactorSetup with a setup-only session, user-verified or not', async () => {
    const { user, authenticator } = await env.passkeyMemberOfSecure();
    for (const userVerified of [true, false]) {
      const { http, result } = await env.passkeySignIn(authenticator, { userVerified });
      expect(result.body).toEqual({ status: 'requiresTwoFactorSetup', providers: ['totp'] });
      await expectSetupOnlySession(http, user.id);
    }
    expect(events.named(BackOfficeEvents.PasskeyUsed, user.id).at(-1)).toMatchObject({ usage: 'signIn' });
  });

  it('once the member has 2FA, a user-verified passkey signs in with a full session', async () => {
    const { user, authenticator } = await env.passkeyMemberOfSecure();
    const { http } = await env.passkeySignIn(authenticator);
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect((await http.post('/auth/2fa/enable', { provider: 'totp', code: env.totp.codeAt(setup.body.secret, env.ctx.clock.now()) })).status).toBe(200);
    env.ctx.clock.advance(30_000);
    const { http: next, result } = await env.passkeySignIn(authenticator);
    expect(result.body).toMatchObject({ status: 'success', user: { id: user.id, twoFactorEnabled: true } });
    expect((await next.get('/audit')).status).toBe(200);
  });
});

describe('Group-enforced two-factor on invite accept and passkey sign-in, with a grace period', () => {
  let env: Awaited<ReturnType<typeof setUp>>;

  beforeAll(async () => {
    env = await setUp({ twoFactor: { encryptionKey: 'test-encryption-key-0123456789abcdef', enforcementGraceHours: 48 } }, 'inv2fagrace');
  });
  afterAll(async () => {
    await env?.ctx?.close();
    await env?.db?.drop();
  });

  it('an accepted invite signs in with twoFactorSetupDeadline (the grace period starts there); after it, sign-in requires setup', async () => {
    const to = 'grace-invitee@example.com';
    const { userId, invitee, accepted } = await env.acceptInvite(to, ['secure']);
    expect(accepted.body).toMatchObject({ status: 'success', user: { id: userId } });
    const deadline = Date.parse(accepted.body.twoFactorSetupDeadline);
    expect(deadline - env.ctx.clock.now().getTime()).toBeGreaterThan(47 * 3_600_000);
    expect((await invitee.get('/audit')).status).toBe(200);
    // The deadline is the one the accept started, not a new one.
    const later = await new HttpClient(env.ctx.url).login(to, TEST_PASSWORD);
    expect(later.body).toMatchObject({ status: 'success', twoFactorSetupDeadline: accepted.body.twoFactorSetupDeadline });
    env.ctx.clock.advance(49 * 3_600_000);
    try {
      expect((await new HttpClient(env.ctx.url).login(to, TEST_PASSWORD)).body.status).toBe('requiresTwoFactorSetup');
    } finally {
      env.ctx.clock.advance(-49 * 3_600_000);
    }
  });

  it('a passkey sign-in in the grace period answers success with twoFactorSetupDeadline; after it, requiresTwoFactorSetup', async () => {
    const { user, authenticator } = await env.passkeyMemberOfSecure();
    const { http, result } = await env.passkeySignIn(authenticator);
    expect(result.body).toMatchObject({ status: 'success', user: { id: user.id } });
    expect(Date.parse(result.body.twoFactorSetupDeadline) - env.ctx.clock.now().getTime()).toBeGreaterThan(47 * 3_600_000);
    expect((await http.get('/audit')).status).toBe(200);
    env.ctx.clock.advance(49 * 3_600_000);
    try {
      const { http: late, result: lateResult } = await env.passkeySignIn(authenticator);
      expect(lateResult.body.status).toBe('requiresTwoFactorSetup');
      await expectSetupOnlySession(late, user.id);
    } finally {
      env.ctx.clock.advance(-49 * 3_600_000);
    }
  });
});
