import { BackOfficeNotSupportedError, BackOfficeSignInManager, type BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { managerOn, MinimalUserStore } from '../support/minimal-user-store.js';

/** The smallest store a host can write (test/support/minimal-user-store.ts): the core `BackOfficeUserStore` and passwords, nothing else. */
describe('Missing capabilities: one rule (README "Missing capabilities")', () => {
  const store = new MinimalUserStore();
  const manager = managerOn(store);
  const signIn = new BackOfficeSignInManager(manager);
  const password = 'correct horse battery staple';
  let user: BackOfficeUser;

  beforeAll(async () => {
    user = (await manager.createUser({ email: 'minimal@example.com', name: 'Minimal', password })).value!;
  });

  it('supportsX getters tell what the store can do', () => {
    expect(manager.supportsUserPassword).toBe(true);
    for (const missing of ['supportsUserLockout', 'supportsUnknownUserLockout', 'supportsUserSecurityStamp', 'supportsUserTwoFactor', 'supportsUserTokens', 'supportsUserGroups', 'supportsUserLogin', 'supportsUserPasskeys', 'supportsUserPhoneNumber', 'supportsTwoFactorSetupDeadline'] as const) {
      expect(manager[missing], missing).toBe(false);
    }
  });

  it('typed accessors return the store for a capability it has and throw not_supported, naming the interface, for one it lacks', () => {
    expect(manager.getPasswordStore()).toBe(store);
    const accessors = ['getLockoutStore', 'getUnknownUserLockoutStore', 'getSecurityStampStore', 'getTwoFactorStore', 'getRecoveryCodeStore', 'getTokenStore', 'getGroupStore', 'getLoginStore', 'getPasskeyStore', 'getPhoneNumberStore'] as const;
    for (const accessor of accessors) {
      let thrown: unknown;
      try {
        manager[accessor]();
      } catch (error) {
        thrown = error;
      }
      expect(thrown, accessor).toBeInstanceOf(BackOfficeNotSupportedError);
      expect((thrown as BackOfficeNotSupportedError).code).toBe('not_supported');
      expect((thrown as Error).message).toMatch(/does not support \w*User\w*Store/);
    }
  });

  it('a command that returns an IdentityResult fails with not_supported', async () => {
    const codes = async (result: Promise<{ succeeded: boolean; errors: readonly { code: string }[] }>) => (await result).errors.map((e) => e.code);
    expect(await codes(manager.setTwoFactorEnabled(user, true))).toEqual(['not_supported']);
    expect(await codes(manager.setLockoutEnd(user, null))).toEqual(['not_supported']);
    expect(await codes(manager.setGroups(user, ['editor']))).toEqual(['not_supported']);
    expect(await codes(manager.addLogin(user, { provider: 'oidc', providerKey: 'k', displayName: null } as never))).toEqual(['not_supported']);
    expect(await codes(manager.removeLogin(user, 'oidc'))).toEqual(['not_supported']);
    expect(await codes(manager.createInvitedUser({ email: 'invited@example.com', name: 'Invited' }))).toEqual(['not_supported']);
    expect(await codes(manager.createUser({ email: 'grouped@example.com', name: 'Grouped', password, groups: ['editor'] }))).toEqual(['not_supported']);
  });

  it('a command without a result throws BackOfficeNotSupportedError: never a silent no-op', async () => {
    const stampBefore = user.securityStamp;
    await expect(manager.updateSecurityStamp(user)).rejects.toBeInstanceOf(BackOfficeNotSupportedError);
    expect(user.securityStamp).toBe(stampBefore);
    await expect(manager.accessFailed(user)).rejects.toThrow(/UserLockoutStore/);
    await expect(manager.resetAccessFailedCount(user)).rejects.toThrow(/UserLockoutStore/);
    await expect(manager.accessFailedForUnknownUser('nobody')).rejects.toThrow(/UnknownUserLockoutStore/);
    await expect(manager.generatePasswordResetToken(user)).rejects.toThrow(/UserTokenStore/);
    await expect(manager.generateNewRecoveryCodes(user)).rejects.toThrow(/UserRecoveryCodeStore/);
    await expect(manager.setTwoFactorSetupDeadline(user, new Date())).rejects.toThrow(/UserTwoFactorSetupDeadlineStore/);
    expect(user.twoFactorSetupDeadline ?? null).toBeNull();
  });

  it('a query answers "none": there is nothing of that kind to read', async () => {
    expect(await manager.getLogins(user)).toEqual([]);
    expect(await manager.findByLogin('oidc', 'k')).toBeNull();
    expect(await manager.verifyUserToken(user, 'password_reset', 'x'.repeat(43))).toBe(false);
    expect(await manager.getPasskeys(user)).toEqual([]);
    expect([...(await manager.knownGroupAliases())]).toEqual([]);
    expect(manager.isLockedOut(user)).toBe(false);
    expect(await manager.unknownUserLockoutEnd('nobody')).toBeNull();
  });

  it('the sign-in manager checks supportsX before optional steps: sign-in works on the minimal store', async () => {
    expect((await signIn.passwordSignIn('minimal@example.com', password)).status).toBe('success');
    expect((await signIn.passwordSignIn('minimal@example.com', 'wrong password')).status).toBe('failed');
    expect((await signIn.passwordSignIn('nobody@example.com', password)).status).toBe('failed');
  });
});
