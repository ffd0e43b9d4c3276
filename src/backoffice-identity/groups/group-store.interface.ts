import type { BackOfficeListPage } from '../common/list-page.js';
/** A group as stored, with its member count. */
export interface BackOfficeGroupRecord {
  alias: string;
  name: string;
  /** Permission keys as stored (the built-in `admin` group holds every permission whatever is stored). */
  permissions: string[];
  requireTwoFactor: boolean;
  memberCount: number;
  createdAt: Date;
  updatedAt: Date;
}

/** The fields of a group that can be written. */
export type BackOfficeGroupFields = Pick<BackOfficeGroupRecord, 'name' | 'permissions' | 'requireTwoFactor'>;

/** Thrown by {@link BackOfficeGroupStore.create} when an alias equal ignoring case exists (`existingAlias`). */
export class BackOfficeDuplicateGroupError extends Error {
  constructor(readonly existingAlias: string) {
    super(`duplicate group ${existingAlias}`);
    this.name = 'BackOfficeDuplicateGroupError';
  }
}

/**
 * Groups port: group rows and their permissions (membership of a user is the user store's `UserGroupStore`).
 * Each write runs with the group locked, so two admins editing one group are serialised and the caller's
 * checks (`plan`, `check`) see what the other one wrote; a check that throws leaves nothing written.
 */
export interface BackOfficeGroupStore {
  /** Every group, by alias. */
  list(): Promise<BackOfficeGroupRecord[]>;
  /**
   * Optional: one page of {@link list} (by alias): `page.skip` groups passed over, then at most `page.take`, with how
   * many there are in all (`totalExact: false` when `total` is an estimate). Stores without it get {@link list}, cut
   * into the page in memory.
   */
  listPage?(page: BackOfficeListPage): Promise<{ items: BackOfficeGroupRecord[]; total: number; totalExact?: boolean }>;
  find(alias: string): Promise<BackOfficeGroupRecord | null>;
  /** The groups among `aliases` that exist. */
  findMany(aliases: readonly string[]): Promise<BackOfficeGroupRecord[]>;
  /**
   * Creates a group; creations are serialised so aliases stay unique ignoring case.
   * @throws BackOfficeDuplicateGroupError when an alias equal ignoring case exists.
   */
  create(alias: string, fields: BackOfficeGroupFields, now: Date): Promise<BackOfficeGroupRecord>;
  /**
   * Locks the group, asks `plan` for the new fields (null: no change; a throw aborts) and writes them.
   * Null when there is no such group.
   */
  update(
    alias: string,
    plan: (current: BackOfficeGroupRecord) => BackOfficeGroupFields | null,
    now: Date,
  ): Promise<{ before: BackOfficeGroupRecord; after: BackOfficeGroupRecord } | null>;
  /**
   * Locks the group (and `moveMembersTo`), runs `check(group, target)` (a throw aborts), adds the group's members
   * to the target and deletes the group, in one transaction. Null when there is no such group.
   */
  delete(
    alias: string,
    moveMembersTo: string | undefined,
    check: (group: BackOfficeGroupRecord, target: BackOfficeGroupRecord | null) => void,
  ): Promise<{ group: BackOfficeGroupRecord; target: BackOfficeGroupRecord | null } | null>;
}
