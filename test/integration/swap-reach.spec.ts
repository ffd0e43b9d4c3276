import { Controller, Get, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, signedInClient, TEST_PASSWORD, TestClock, userFactory } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';
import { expectSignedIn, waitFor } from '../support/external-login-results.js';
import { externalLoginIdentity, waitForExternalProviders } from '../support/external-login-app.js';
import { ExternalLoginPerson, TestOidcProvider } from '../support/oidc-provider.js';
import {
  BACKOFFICE_USER_MANAGER,
  BackOfficeAuthorize,
  BackOfficeUserManager,
  IdentityResult,
  BACKOFFICE_EMAIL_SENDER,
  type BackOfficeEmailSender,
  type BackOfficeIdentityModuleOptions,
  type BackOfficeUser,
  type BackOfficeUserCandidate,
  CurrentBackOfficeUser,
  TypeOrmBackOfficeApiClientStore,
  TypeOrmBackOfficeUserStore,
  type BackOfficeUserDto,
} from '../../src/backoffice-identity/index.js';

// A swapped part must be the one that runs on every path through HTTP, not only where a test injects it
// (README "Swap the user manager", "Stores"; contract section 1: every consumer resolves through the token).

/** A host's subclass of the TypeORM user store that records the password writes it is asked for. */
@Injectable()
class RecordingUserStore extends TypeOrmBackOfficeUserStore {
  static readonly passwordWrites: string[] = [];
  override async setPasswordHash(...args: Parameters<TypeOrmBackOfficeUserStore['setPasswordHash']>) {
    RecordingUserStore.passwordWrites.push(args[0]);
    return super.setPasswordHash(...args);
  }
}

/**
 * A host's subclass with a `#private` field (not reachable through a prototype): it builds its transaction copy itself
 * with the `withEntityManager` hook, sharing its record of password writes.
 */
@Injectable()
class PrivateStateUserStore extends TypeOrmBackOfficeUserStore {
  static readonly records: string[][] = [];
  #passwordWrites: string[] = [];
  constructor(@InjectDataSource() source: DataSource | EntityManager) {
    super(source);
    PrivateStateUserStore.records.push(this.#passwordWrites);
  }
  override async setPasswordHash(...args: Parameters<TypeOrmBackOfficeUserStore['setPasswordHash']>) {
    this.#passwordWrites.push(args[0]);
    return super.setPasswordHash(...args);
  }
  protected override withEntityManager(manager: EntityManager): this {
    const store = new PrivateStateUserStore(manager);
    store.#passwordWrites = this.#passwordWrites;
    return store as this;
  }
}

/** A host's subclass of the TypeORM API client store that records the revocations it is asked for. */
@Injectable()
class RecordingApiClientStore extends TypeOrmBackOfficeApiClientStore {
  static readonly revocations: string[] = [];
  override async revokeAccessTokens(userId: string, now: Date): Promise<number> {
    RecordingApiClientStore.revocations.push(userId);
    return super.revokeAccessTokens(userId, now);
  }
}

/** The seed's example: a custom manager without two-factor support. */
class NoTwoFactorUserManager extends BackOfficeUserManager {
  override get supportsUserTwoFactor(): boolean {
    return false;
  }
}

/**
 * ASP.NET Identity's pattern: a manager that overrides its own validation (ValidatePasswordAsync /
 * ValidateUserAsync): a password with "acme" in it and a name with "Robot" in it are refused.
 */
class HouseRulesUserManager extends BackOfficeUserManager {
  override async validatePassword(user: BackOfficeUser | null, password: string): Promise<IdentityResult> {
    if (typeof password === 'string' && password.toLowerCase().includes('acme')) {
      return IdentityResult.failed({ code: 'password_names_company', description: 'Passwords may not name the company.' });
    }
    return super.validatePassword(user, password);
  }
  override async validateUser(user: BackOfficeUserCandidate): Promise<IdentityResult> {
    if (typeof user.name === 'string' && user.name.includes('Robot')) return IdentityResult.failed({ code: 'name_is_robot', description: 'People only.' });
    return super.validateUser(user);
  }
}

/** A host route that reads the signed-in user through `@CurrentBackOfficeUser()`. */
@Controller('host-area')
class HostAreaController {
  @Get('me')
  @BackOfficeAuthorize()
  me(@CurrentBackOfficeUser() user: BackOfficeUserDto): BackOfficeUserDto {
    return user;
  }
}

const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';

describe('A swapped provider reaches every path through HTTP', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** On an app with `userStore`, a new user changes their password (POST /auth/change-password, 200); answers the user's id. */
  async function changePasswordWithStore(userStore: NonNullable<BackOfficeIdentityModuleOptions['userStore']>, prefix: string, newPassword: string): Promise<string> {
    const ctx = await createIdentityApp(db, { identity: { userStore, rateLimits: { enabled: false } } });
    try {
      const user = await userFactory(() => ctx, prefix)();
      const http = await signedInClient(ctx, user.email);
      const changed = await http.post('/auth/change-password', { currentPassword: TEST_PASSWORD, newPassword });
      expect(changed.status, changed.text).toBe(200);
      return user.id;
    } finally {
      await ctx.close();
    }
  }

  it('userStore: a subclass of the TypeORM user store keeps its overrides inside the manager\'s transactions (POST /auth/change-password)', async () => {
    const userId = await changePasswordWithStore(RecordingUserStore, 'store-subclass', 'a brand new passphrase 42');
    expect(RecordingUserStore.passwordWrites).toContain(userId);
  });

  it('userStore: a subclass with #private members builds its transaction copy through withEntityManager (POST /auth/change-password)', async () => {
    const userId = await changePasswordWithStore(PrivateStateUserStore, 'private-store', 'another brand new passphrase 42');
    expect(PrivateStateUserStore.records.flat()).toContain(userId);
  });

  it("apiClientStore: a subclass of the TypeORM API client store keeps its overrides when it joins the user store's transaction (POST /users/:id/disable)", async () => {
    const ctx = await createIdentityApp(db, { identity: { apiClientStore: RecordingApiClientStore, rateLimits: { enabled: false } } });
    try {
      const boss = await userFactory(() => ctx, 'api-subclass-admin')({ groups: ['admin'] });
      const admin = await signedInClient(ctx, boss.email);
      const created = await admin.post('/users/api', { name: 'Robot', groups: ['editor'] });
      expect(created.status, created.text).toBe(201);
      const disabled = await admin.post(`/users/${created.body.user.id}/disable`, {});
      expect(disabled.status, disabled.text).toBe(200);
      expect(RecordingApiClientStore.revocations).toContain(created.body.user.id);
    } finally {
      await ctx.close();
    }
  });

  it('clock: @CurrentBackOfficeUser() on a host route derives the state at the swapped clock\'s time, as GET /auth/me does', async () => {
    const clock = new TestClock();
    clock.advance(-60 * 60_000); // the module's time is an hour behind the wall clock
    const ctx = await createIdentityApp(db, { clock, controllers: [HostAreaController], identity: { rateLimits: { enabled: false } } });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const user = await userFactory(() => ctx, 'host-clock')();
      const http = await signedInClient(ctx, user.email);
      // Locked until half an hour ago by the wall clock: half an hour from now by the module's clock.
      await client.query('UPDATE backoffice_user SET lockout_end = $2 WHERE id = $1', [user.id, new Date(Date.now() - 30 * 60_000)]);
      const me = await http.get('/auth/me');
      expect(me.status, me.text).toBe(200);
      expect(me.body.state).toBe('lockedOut');
      const host = await http.get(`${ctx.url}/host-area/me`);
      expect(host.status, host.text).toBe(200);
      expect(host.body.state).toBe('lockedOut');
    } finally {
      await client.end();
      await ctx.close();
    }
  });

  it('overrideProvider(BACKOFFICE_USER_MANAGER): the passkey sign-in asks the custom manager whether two-factor applies', async () => {
    const ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, passkeys: { rpId: RP_ID, rpName: 'Acme', origins: [ORIGIN] } },
      override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(NoTwoFactorUserManager),
    });
    try {
      expect(ctx.signInManager.userManager).toBeInstanceOf(NoTwoFactorUserManager);
      const user = await userFactory(() => ctx, 'passkey-swap')();
      const http = await signedInClient(ctx, user.email);
      const authenticator = new SoftwareAuthenticator(ORIGIN, RP_ID);
      const options = await http.post('/auth/passkeys/options', {});
      expect(options.status, options.text).toBe(200);
      const created = await http.post('/auth/passkeys', { name: 'Laptop', credential: authenticator.register(options.body) });
      expect(created.status, created.text).toBe(201);
      // 2FA is on for the user, but the custom manager does not support it: a passkey without user verification
      // (which asks for the second factor with the default manager, see passkeys.spec.ts) signs in at once.
      expect((await ctx.userManager.setTwoFactorEnabled(user, true)).succeeded).toBe(true);
      const fresh = new HttpClient(ctx.url);
      const signIn = await fresh.post('/auth/passkey/options', {});
      expect(signIn.status, signIn.text).toBe(200);
      const verified = await fresh.post('/auth/passkey/verify', { credential: authenticator.assert(signIn.body, { userVerified: false }) });
      expect(verified.status, verified.text).toBe(200);
      expect(verified.body.status).toBe('success');
    } finally {
      await ctx.close();
    }
  });

  it('overrideProvider(BACKOFFICE_USER_MANAGER): an overridden validatePassword / validateUser decides every flow that sets a password or creates a user', async () => {
    const ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false } },
      override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(HouseRulesUserManager),
    });
    const refusedBy = (res: { status: number; body: { errors?: { code: string }[] } }, code: string) => {
      expect(res.status).toBe(400);
      expect(res.body.errors?.map((e) => e.code)).toContain(code);
    };
    try {
      const make = userFactory(() => ctx, 'house-rules');
      // createUser (the manager API)
      const created = await ctx.userManager.createUser({ email: 'house-rules-acme@example.com', name: 'A', password: 'acme rocket skates forever' });
      expect(created.errors.map((e) => e.code)).toContain('password_names_company');
      const boss = await make({ groups: ['admin'] });
      const admin = await signedInClient(ctx, boss.email);
      // POST /users/invite: the name
      refusedBy(await admin.post('/users/invite', { email: 'house-rules-robot@example.com', name: 'Robot Rita', groups: [] }), 'name_is_robot');
      // POST /users/import: the name
      const imported = await admin.post('/users/import', { users: [{ email: 'house-rules-import@example.com', name: 'Robot Ron', groups: [] }] });
      expect(imported.status, imported.text).toBe(200);
      expect(imported.body.results[0]).toMatchObject({ outcome: 'invalid' });
      expect(imported.body.results[0].errors.map((e: { code: string }) => e.code)).toContain('name_is_robot');
      // POST /auth/change-password
      const user = await make();
      const http = await signedInClient(ctx, user.email);
      refusedBy(await http.post('/auth/change-password', { currentPassword: TEST_PASSWORD, newPassword: 'acme anvils all the way down' }), 'password_names_company');
      // POST /auth/reset-password
      const resetToken = (await ctx.userManager.generatePasswordResetToken(user))!;
      refusedBy(await new HttpClient(ctx.url).post('/auth/reset-password', { userId: user.id, token: resetToken, newPassword: 'acme anvils all the way down' }), 'password_names_company');
      // POST /auth/invite/accept
      const invited = await ctx.userManager.createInvitedUser({ email: 'house-rules-invitee@example.com', name: 'Invitee' });
      const { user: invitee, token } = invited.value!;
      refusedBy(await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: invitee.id, token, password: 'acme anvils all the way down' }), 'password_names_company');
    } finally {
      await ctx.close();
    }
  });

  it('overrideProvider(BACKOFFICE_USER_MANAGER): the external (OpenID Connect) sign-in asks the custom manager whether two-factor applies', async () => {
    const secret = 'swap-client-secret-0123456789abcdef';
    const port = await TestOidcProvider.reservePort();
    const idp = await TestOidcProvider.start([
      { client_id: 'swap', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/backoffice/auth/external/oidc/callback`] },
    ]);
    let ctx: Awaited<ReturnType<typeof createIdentityApp>> | undefined;
    try {
      ctx = await createIdentityApp(db, {
        port,
        identity: externalLoginIdentity(port, [{ name: 'oidc', displayName: 'Single sign-on', issuer: idp.issuer, clientId: 'swap', clientSecret: secret, autoLink: { enabled: true, defaultGroups: ['editor'] } }]),
        override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(NoTwoFactorUserManager),
      });
      const app = ctx;
      await waitForExternalProviders(app.url);
      const login = `swap-ext-${Date.now()}`;
      const email = `${login}@idp.example.com`;
      idp.accounts.set(login, { email, email_verified: true, name: 'Swap External' });
      expectSignedIn(await new ExternalLoginPerson(app.url).signIn('oidc', login)); // auto-linked
      const user = (await app.userManager.findByEmail(email))!;
      expect((await app.userManager.setTwoFactorEnabled(user, true)).succeeded).toBe(true);
      // With the default manager this answers status=requiresTwoFactor (external-logins.spec.ts); the custom
      // manager supports no two-factor, so the provider's sign-in is enough.
      expectSignedIn(await new ExternalLoginPerson(app.url).signIn('oidc', login));
    } finally {
      await ctx?.close();
      await idp.stop();
    }
  });

  it('overrideProvider(BACKOFFICE_EMAIL_SENDER) and a moved clock reach the invite, resend and reset flows over HTTP', async () => {
    const sent: { to: string; type: string; text: string }[] = [];
    const sender: BackOfficeEmailSender = { send: async (message, type) => (sent.push({ to: message.to, type, text: message.text }), `id-${sent.length}`) };
    const ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, publicUrl: 'http://localhost:3000' },
      override: (b) => b.overrideProvider(BACKOFFICE_EMAIL_SENDER).useValue(sender),
    });
    const linkOf = (text: string, page: string) => new URLSearchParams(new URL(new RegExp(`https?://\\S+/${page}#\\S+`).exec(text)![0]).hash.slice(1));
    try {
      const make = userFactory(() => ctx, 'mail-swap');
      const boss = await make({ groups: ['admin'] });
      const admin = await signedInClient(ctx, boss.email);
      const invited = await admin.post('/users/invite', { email: 'mail-swap-invitee@example.com', name: 'Invitee', groups: [] });
      expect(invited.status, invited.text).toBe(201);
      expect((await admin.post(`/users/${invited.body.user.id}/resend-invite`, {})).status).toBe(202);
      const user = await make();
      expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: user.email })).status).toBe(202);
      await waitFor(async () => sent.length >= 3);
      expect(sent.map((m) => [m.to, m.type])).toEqual([
        ['mail-swap-invitee@example.com', 'UserInvite'],
        ['mail-swap-invitee@example.com', 'UserInvite'],
        [user.email, 'PasswordReset'],
      ]);
      // The swapped clock moves past the links' lifespans (reset 1 hour, invite 72 hours): both are refused.
      ctx.clock.advance(73 * 3_600_000);
      const reset = linkOf(sent[2].text, 'reset-password');
      const late = await new HttpClient(ctx.url).post('/auth/reset-password', { userId: reset.get('userId'), token: reset.get('token'), newPassword: 'a late new passphrase 1' });
      expect(late.status, late.text).toBe(400);
      expect(late.body.code).toBe('invalid_token');
      const invite = linkOf(sent[1].text, 'accept-invite');
      const lateInvite = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: invite.get('userId'), token: invite.get('token'), password: 'a late new passphrase 2' });
      expect(lateInvite.status, lateInvite.text).toBe(400);
      expect(lateInvite.body.code).toBe('invalid_token');
    } finally {
      await ctx.close();
    }
  });
});
