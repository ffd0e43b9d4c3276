import type { BackOfficeWriteAuthorizer } from '../users/backoffice-user.js';
import type { BackOfficeGroupService, GroupActor } from './backoffice-group.service.js';

/**
 * The target check again, on the user as stored when a write under the admin group's lock runs (groups, disable,
 * enable, delete, an edit, a forced password reset, a 2FA reset, an unlock, an API user's secret rotation): a user made an admin (or
 * given a permission the caller lacks) after the caller's first check read them is no longer the caller's to change
 * (OWASP ASVS 4.0 4.1.3, 5.0 15.4.2). `undefined` for members of `admin`, who may act on anyone: no check, and a
 * write that takes the admin lock only for the check (an email edit, a forced reset, a rotation) takes none.
 */
export function mayManageAsStored(
  groups: Pick<BackOfficeGroupService, 'mayActOnAnyone' | 'assertMayManage'>,
  actor: GroupActor,
): BackOfficeWriteAuthorizer | undefined {
  if (groups.mayActOnAnyone(actor)) return undefined;
  return (current) => groups.assertMayManage(actor, current);
}

/**
 * The group assignment check again (`assertMayAssign`), on a new user as stored by its insert, in the insert's
 * transaction (`CreateBackOfficeUserInput.authorize`): a group given a permission the caller lacks after the caller's
 * first check read it is not the caller's to hand out (OWASP ASVS 4.0 4.1.3, 5.0 8.2.1). `undefined` for members of
 * `admin`, who may assign any group: no check.
 */
export function mayAssignAsStored(
  groups: Pick<BackOfficeGroupService, 'mayActOnAnyone' | 'assertMayHaveCreated'>,
  actor: GroupActor,
): BackOfficeWriteAuthorizer | undefined {
  if (groups.mayActOnAnyone(actor)) return undefined;
  return (created) => groups.assertMayHaveCreated(actor, created);
}
