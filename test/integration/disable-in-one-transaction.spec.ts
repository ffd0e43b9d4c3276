import { createHash } from 'node:crypto';
import { BACKOFFICE_API_CLIENT_STORE, BackOfficeApiUserService, TypeOrmBackOfficeApiClientStore, TypeOrmBackOfficeUserStore, type BackOfficeApiClientStore } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, userFactory, type IdentityApp } from '../support/identity-app.js';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * A disable writes the user's row (not approved, a new security stamp) and voids the links mailed before it
 * (password reset, invite, email change): one change, in one transaction. Written one after another, a failure
 * (or a crash) between them left a disabled user with live links that work once an admin enables it again.
 */
describe('disabling a user is one transaction', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'disable-tx');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 2.5.x, 3.3.x: a failure while voiding the links leaves the user as before (enabled, same stamp, link live), never disabled with a live link', async () => {
    const user = await make();
    const token = await ctx.userManager.generatePasswordResetToken((await ctx.userManager.findById(user.id))!);
    const before = (await ctx.userManager.findById(user.id))!;
    const crash = vi.spyOn(TypeOrmBackOfficeUserStore.prototype, 'voidTokens').mockRejectedValueOnce(new Error('connection lost'));
    try {
      await expect(ctx.userManager.setApproved((await ctx.userManager.findById(user.id))!, false)).rejects.toThrow('connection lost');
    } finally {
      crash.mockRestore();
    }
    const after = (await ctx.userManager.findById(user.id))!;
    const linkLive = await ctx.userManager.getTokenStore().isTokenLive(user.id, 'password_reset', sha256(token), ctx.clock.now());
    expect({ isApproved: after.isApproved, stampKept: after.securityStamp === before.securityStamp, linkLive }).toEqual({ isApproved: true, stampKept: true, linkLive: true });

    // Done again without the failure: disabled, new stamp, the link dead.
    expect((await ctx.userManager.setApproved(after, false)).succeeded).toBe(true);
    const disabled = (await ctx.userManager.findById(user.id))!;
    expect(disabled.isApproved).toBe(false);
    expect(disabled.securityStamp).not.toBe(before.securityStamp);
    expect(await ctx.userManager.getTokenStore().isTokenLive(user.id, 'password_reset', sha256(token), ctx.clock.now())).toBe(false);
  });

  it('OWASP ASVS 4.0 3.3.1, 3.5.2: a failure while revoking an API user\'s bearer tokens leaves the user as before (enabled, token live), never disabled with a live token', async () => {
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    const tokens = ctx.app.get<BackOfficeApiClientStore>(BACKOFFICE_API_CLIENT_STORE);
    const { user, clientId, clientSecret } = await apiUsers.create({ name: 'Disable robot', groups: [] });
    const token = (await apiUsers.issueToken(clientId, clientSecret)).access_token;
    const revoked = async () => (await tokens.findAccessToken(sha256(token)))!.revokedAt !== null;
    expect(await revoked()).toBe(false);

    const crash = vi.spyOn(TypeOrmBackOfficeApiClientStore.prototype, 'revokeAccessTokens').mockRejectedValueOnce(new Error('connection lost'));
    try {
      await expect(ctx.userManager.setApproved((await ctx.userManager.findById(user.id))!, false)).rejects.toThrow('connection lost');
    } finally {
      crash.mockRestore();
    }
    const after = (await ctx.userManager.findById(user.id))!;
    expect({ isApproved: after.isApproved, tokenRevoked: await revoked() }).toEqual({ isApproved: true, tokenRevoked: false });

    // Done again without the failure: disabled and the token revoked, so enabling the user again does not revive it.
    expect((await ctx.userManager.setApproved(after, false)).succeeded).toBe(true);
    expect({ isApproved: (await ctx.userManager.findById(user.id))!.isApproved, tokenRevoked: await revoked() }).toEqual({ isApproved: false, tokenRevoked: true });
    expect((await ctx.userManager.setApproved((await ctx.userManager.findById(user.id))!, true)).succeeded).toBe(true);
    expect(await apiUsers.authenticateBearer(token)).toBeNull();
  });
});
