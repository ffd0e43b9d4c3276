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
import { InMemoryBackOfficeStores } from '../../src/backoffice-identity/testing/index.js';

/**
 * A host's store whose `updateProfile` answers what its driver does, as MySQL's affected rows: `false` when the row
 * was found but nothing changed (the same name again). The interface declares `Promise<void>`, which TypeScript lets
 * an implementation answer anything through; only `delete`'s answer means "no such user".
 */
class AffectedRowsStore implements BackOfficeUserStore {
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
  async updateProfile(userId: string, changes: Record<string, unknown>): Promise<boolean> {
    const user = this.users.get(userId) as unknown as Record<string, unknown> | undefined;
    if (!user) return false;
    const changed = Object.entries(changes).some(([key, value]) => user[key] !== value);
    Object.assign(user, changes);
    return changed;
  }
  async delete(userId: string) {
    return this.users.delete(userId);
  }
  async count() {
    return this.users.size;
  }
  async setPasswordHash(userId: string, passwordHash: string | null, securityStamp: string) {
    Object.assign(this.users.get(userId)!, { passwordHash, securityStamp });
  }
}

const options = resolveBackOfficeIdentityOptions({ password: { hashCost: 4 } });
const managerOn = (store: BackOfficeUserStore) =>
  new BackOfficeUserManager(
    new BackOfficeUserManagerDependencies(
      store, new BcryptPasswordHasher(options), new FallbackPasswordChecker(), options, new BackOfficeErrorDescriber(), new SystemClock(),
      new NotificationPublisher(new EventEmitter2()), [],
    ),
  );

/** The in-memory store (a UserGroupStore), its updateProfile answering as the host's store above does. */
function inMemoryAnsweringAffectedRows(): BackOfficeUserStore {
  const store = InMemoryBackOfficeStores.create().userStore;
  const update = store.updateProfile.bind(store);
  const answering = async (userId: string, changes: Record<string, unknown>, now: Date): Promise<boolean> => {
    const before = (await store.findById(userId)) as unknown as Record<string, unknown> | null;
    await update(userId, changes, now);
    return before !== null && Object.entries(changes).some(([key, value]) => before[key] !== value);
  };
  Object.assign(store, { updateProfile: answering });
  return store;
}

describe('A host store whose writes answer false for something else than a missing user', () => {
  for (const [name, make] of [
    ['a store without groups', () => new AffectedRowsStore()],
    ['a UserGroupStore', inMemoryAnsweringAffectedRows],
  ] as const) {
    it(`${name}: renaming a user to the name it has (updateProfile answers false: nothing changed) succeeds, not not_found`, async () => {
      const manager = managerOn(make());
      const user = (await manager.createUser({ email: `same-${randomUUID()}@example.com`, name: 'Same Name', password: 'correct horse battery staple' })).value!;
      const renamed = await manager.changeName(user, 'Same Name', { authorize: () => undefined });
      expect(renamed.errors).toEqual([]);
      expect(renamed.succeeded).toBe(true);
      const moved = await manager.changeName(user, 'Other Name', { authorize: () => undefined });
      expect(moved.succeeded).toBe(true);
      expect((await manager.findById(user.id))?.name).toBe('Other Name');
    });
  }
});
