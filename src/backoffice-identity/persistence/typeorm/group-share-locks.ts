import type { EntityManager } from 'typeorm';
import { isUuid } from '../../common/ids.js';
import { returned } from './sql-results.js';

/**
 * Locks FOR SHARE, to the end of the caller's transaction, the rows of every group one of `userIds` is in and of the
 * groups named `aliases`, in alias order (the order the group store's delete locks its two rows in, so a delete moving
 * members waits for this or this for it, never both). The order is the aliases' code points (`COLLATE "C"`), as the
 * delete's JavaScript sort has it, whatever the database's collation: under ICU `en-US` `alpha` sorts before `Beta`
 * where JavaScript puts `Beta` first, and the two orders made a cycle (a deadlock, answered 503). A group edit (`PUT /groups/:alias`) holds its row FOR UPDATE
 * until it commits, so a re-check that reads these users after this statement (a new statement: a new snapshot under
 * READ COMMITTED) sees the permissions the edit gave, and an edit that comes later waits for the write: a permission
 * added meanwhile to a group the user is already in no longer slips past the check (OWASP ASVS 4.0 4.1.3, 5.0 8.2.1).
 */
export async function lockGroupsForShare(manager: EntityManager, userIds: readonly string[], aliases: readonly string[] = []): Promise<void> {
  const ids = userIds.filter((id) => isUuid(id));
  if (ids.length === 0 && aliases.length === 0) return;
  const locked = returned<{ id: string }>(
    await manager.query(
      `SELECT g.id FROM backoffice_group g
        WHERE g.alias = ANY($2::text[]) OR g.id IN (SELECT ug.group_id FROM backoffice_user_group ug WHERE ug.user_id = ANY($1::uuid[]))
        ORDER BY g.alias COLLATE "C" FOR SHARE OF g`,
      [ids, [...aliases]],
    ),
  );
  if (ids.length === 0) return;
  // The users' groups were read in the statement's snapshot: a DELETE /groups/:alias?moveMembersTo= that committed while
  // it waited (for the deleted group's row) moved them into a group it did not lock, whose edit the re-check would then
  // not wait for (OWASP ASVS 4.0 4.1.3, 5.0 15.4.2). Their groups are read again in a new statement and the new ones
  // locked too, once (a further move while this waits is not followed; out of alias order, so a delete of these
  // very groups meanwhile may deadlock: 503, nothing written).
  await manager.query(
    `SELECT g.id FROM backoffice_group g
      WHERE g.id IN (SELECT ug.group_id FROM backoffice_user_group ug WHERE ug.user_id = ANY($1::uuid[])) AND NOT (g.id = ANY($2::uuid[]))
      ORDER BY g.alias COLLATE "C" FOR SHARE OF g`,
    [ids, locked.map((g) => g.id)],
  );
}
