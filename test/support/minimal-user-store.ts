import { EventEmitter2 } from '@nestjs/event-emitter';
import { randomUUID } from 'node:crypto';
import {
  BackOfficeErrorDescriber,
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

/** The smallest store a host can write: the core `BackOfficeUserStore` and passwords, nothing else (users in a Map). */
export class MinimalUserStore implements BackOfficeUserStore {
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
  async delete(userId: string): Promise<boolean | void> {
    this.users.delete(userId);
  }
  async count() {
    return this.users.size;
  }
  async setPasswordHash(userId: string, passwordHash: string | null, securityStamp: string) {
    Object.assign(this.users.get(userId)!, { passwordHash, securityStamp });
  }
}

/** A user manager on `store` as the module builds one (bcrypt cost 4, the system clock, no validators or listeners). */
export function managerOn(store: BackOfficeUserStore, options = resolveBackOfficeIdentityOptions({ password: { hashCost: 4 } })): BackOfficeUserManager {
  return new BackOfficeUserManager(
    new BackOfficeUserManagerDependencies(
      store, new BcryptPasswordHasher(options), new FallbackPasswordChecker(), options, new BackOfficeErrorDescriber(), new SystemClock(),
      new NotificationPublisher(new EventEmitter2()), [],
    ),
  );
}
