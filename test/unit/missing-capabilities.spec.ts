import { EventEmitter2 } from '@nestjs/event-emitter';
import { randomUUID } from 'node:crypto';
import {
  BackOfficeErrorDescriber,
  BackOfficeNotSupportedError,
  BackOfficeSignInManager,
  BackOfficeUserManager,
  BackOfficeUserManagerDependencies,
  BcryptPasswordHasher,
  FallbackPasswordChecker,
  NotificationPublisher,
  resolveBackOfficeIdentityOptions,
  SystemClock,
  type BackOfficeUser,
  type BackOfficeUserStore,
  type NewBackOfficeUser,
} from '../../src/backoffice-identity/index.js';

/** The smallest store a host can write: the core `BackOfficeUserStore` and passwords, nothing else. */
class MinimalStore implements BackOfficeUserStore {
  readonly users = new Map<string, BackOfficeUser>();
  async create(user: NewBackOfficeUser, now: Date): Promise<BackOfficeUser> {
    const created = {
      id: randomUUID(), username: user.username, normalizedUsername: user.normalizedUsername, email: user.email, normalizedEmail: user.normalizedEmail,
      name: user.name, passwordHash: user.passwordHash, securityStamp: user.securityStamp, isApproved: user.isApproved, invitedAt: user.invitedAt,
      groups: user.groups, kind: user.kind ?? 'person', lockoutEnabled: true, lockoutEnd: null, accessFailedCount: 0, twoFactorEnabled: false,
      createdAt: now, updatedAt: now, lastLoginAt: null, lastPasswordChangeAt: null, disabledReason: null, disabledUntil: null, twoFactorSetupDeadline: null,
    } as unknown as BackOfficeUser;
    this.users.set(created.id, created);
    return { ...created };
  }
  async findById(id: string) {
    const user = this.users.get(id);
    return user ? { ...user } : null;
  }
  async findByNormalizedUsername(key: string) {
    return [...this.users.values()].find((u) => u.normalizedUsername === key) ?? null;
  }
  async findByNormalizedEmail(key: string) {
    return [...this.users.values()].find((u) => u.normalizedEmail === key) ?? null;
  }
  async updateProfile(userId: string, changes: object) {
    Object.assign(this.users.get(userId)!, changes);
  }
  async delete(userId: string) {
    this.users.delete(userId);
  }
  async count() {
    return this.users.size;
  }
  async setPasswordHash(userId: string, passwordHash: string | null, securityStamp: string) {
    Object.assign(this.users.get(userId)!, { passwordHash, securityStamp });
  }
}

describe('Missing capabilities: one rule (README "Missing capabilities")', () => {
  const options = resolveBackOfficeIdentityOptions({ password: { hashCost: 4 } });
  const store = new MinimalStore();
  const manager = new BackOfficeUserManager(
    new BackOfficeUserManagerDependencies(
      store, new BcryptPasswordHasher(options), new FallbackPasswordChecker(), options, new BackOfficeErrorDescriber(), new SystemClock(),
      new NotificationPublisher(new EventEmitter2()), [],
    ),
  );
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
