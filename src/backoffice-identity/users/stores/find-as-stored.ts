import type { BackOfficeUser } from '../backoffice-user.js';
import type { BackOfficeUserStore, UserGroupStore } from './user-store.interface.js';

/**
 * The user as stored for a re-check in the caller's transaction: the groups of the user (and those named `aliases`,
 * which the write is to give) locked first where the store can ({@link UserGroupStore.lockGroupsOf}), then the user
 * read with its groups' permissions.
 */
export async function findAsStored(
  store: BackOfficeUserStore & Pick<UserGroupStore, 'lockGroupsOf'>,
  userId: string,
  aliases: readonly string[] = [],
): Promise<BackOfficeUser | null> {
  await store.lockGroupsOf?.([userId], aliases);
  return store.findById(userId);
}
