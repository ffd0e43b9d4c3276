import { Inject, Injectable } from '@nestjs/common';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';

export type { BackOfficePermissionDefinition } from './permission-definition.interface.js';
import type { BackOfficePermissionDefinition } from './permission-definition.interface.js';

/** The permissions of the module's own routes. */
export const BUILT_IN_PERMISSIONS: readonly BackOfficePermissionDefinition[] = Object.freeze([
  { key: 'users.read', description: 'List users (GET /users)' },
  { key: 'users.manage', description: 'Disable, enable, unlock, change groups, reset 2FA, import users' },
  { key: 'users.invite', description: 'Invite users and resend invites' },
  { key: 'groups.manage', description: 'Create, change and delete groups' },
  { key: 'audit.read', description: 'Read the audit trail (GET /audit)' },
  { key: 'sessions.manage', description: "End other users' sessions" },
]);

/** The built-in group that always holds every permission (built-in and host-registered). */
export const ADMIN_GROUP_ALIAS = 'admin';

/** Shape of a permission key: lower-case dotted words, e.g. `users.read`, `reports.export-csv`. */
export const PERMISSION_KEY_PATTERN = /^[a-z][a-z0-9-]{0,62}(\.[a-z][a-z0-9-]{0,62}){1,3}$/;

/**
 * The known permissions (built-in plus the host's `permissions` option) and the effective permissions of a
 * user: the union of the permissions of the user's groups, and every permission for members of `admin`.
 */
@Injectable()
export class BackOfficePermissionRegistry {
  private readonly definitions: readonly BackOfficePermissionDefinition[];
  private readonly keys: ReadonlySet<string>;
  private readonly checkedByName = new Set<string>();

  constructor(@Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions) {
    this.definitions = Object.freeze([...BUILT_IN_PERMISSIONS, ...options.permissions]);
    this.keys = new Set(this.definitions.map((d) => d.key));
  }

  /** Every known permission, built-in first. */
  all(): readonly BackOfficePermissionDefinition[] {
    return this.definitions;
  }

  /** Every known key, in definition order. */
  allKeys(): string[] {
    return this.definitions.map((d) => d.key);
  }

  isKnown(key: string): boolean {
    return this.keys.has(key);
  }

  /** The keys in `keys` that are not registered. */
  unknown(keys: readonly string[]): string[] {
    return keys.filter((k) => !this.keys.has(k));
  }

  /** The permissions a group holds: every one for `admin`, else its stored ones that are still registered. */
  groupPermissions(alias: string, stored: readonly string[]): string[] {
    if (alias === ADMIN_GROUP_ALIAS) return this.allKeys();
    return this.allKeys().filter((k) => stored.includes(k));
  }

  /** The user's effective permissions (see the class comment). */
  effective(user: Pick<BackOfficeUser, 'groups' | 'permissions'>): Set<string> {
    if (user.groups.includes(ADMIN_GROUP_ALIAS)) return new Set(this.keys);
    return new Set((user.permissions ?? []).filter((k) => this.keys.has(k)));
  }

  /**
   * Records aliases that a route checks by name (`@BackOfficeAuthorize({ groups })`), found by the start-up scan of
   * the app's controllers: membership of such a group is a privilege of its own, whatever permissions it holds.
   */
  addGroupsCheckedByName(aliases: Iterable<string>): void {
    for (const alias of aliases) if (alias !== ADMIN_GROUP_ALIAS) this.checkedByName.add(alias);
  }

  /** Whether a route checks membership of this group by name (see {@link addGroupsCheckedByName}); never `admin`. */
  isCheckedByName(alias: string): boolean {
    return this.checkedByName.has(alias);
  }

  /** True when the user holds every one of `required`. */
  holdsAll(user: Pick<BackOfficeUser, 'groups' | 'permissions'>, required: readonly string[]): boolean {
    const held = this.effective(user);
    return required.every((k) => held.has(k));
  }
}
