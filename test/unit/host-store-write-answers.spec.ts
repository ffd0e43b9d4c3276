import { randomUUID } from 'node:crypto';
import type { BackOfficeUserStore } from '../../src/backoffice-identity/index.js';
import { InMemoryBackOfficeStores } from '../../src/backoffice-identity/testing/index.js';
import { managerOn, MinimalUserStore } from '../support/minimal-user-store.js';

/**
 * A host's store (the minimal one) whose `updateProfile` answers what its driver does, as MySQL's affected rows: `false` when the row
 * was found but nothing changed (the same name again). The interface declares `Promise<void>`: TypeScript refuses an
 * override typed `Promise<boolean>`, but a store in JavaScript, or one passing on a driver's untyped (`any`) result,
 * answers it all the same, so the answer is cast here as such a store's is at run time. Only `delete`'s answer
 * (`Promise<boolean | void>`) means "no such user".
 */
class AffectedRowsStore extends MinimalUserStore {
  override async updateProfile(userId: string, changes: object): Promise<void> {
    return this.affectedRows(userId, changes) as unknown as void;
  }
  private affectedRows(userId: string, changes: object): boolean {
    const user = this.users.get(userId) as unknown as Record<string, unknown> | undefined;
    if (!user) return false;
    const changed = Object.entries(changes).some(([key, value]) => user[key] !== value);
    Object.assign(user, changes);
    return changed;
  }
  override async delete(userId: string): Promise<boolean> {
    return this.users.delete(userId);
  }
}

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
