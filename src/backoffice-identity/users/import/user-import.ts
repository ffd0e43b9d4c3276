import type { IdentityError } from '../../common/identity-result.js';
import { differsBeyondAsciiCase } from '../../common/lookup-normalizer.js';
import type { BackOfficeUser } from '../backoffice-user.js';
import type { ImportedPasswordFormat } from '../passwords/foreign-password-hashes.js';

/** Most records one import request (and one transaction) takes. */
export const MAX_IMPORT_BATCH = 1000;

/** One user from another system (section 9 of the contract). */
export interface ImportUserRecord {
  email: string;
  name: string;
  /**
   * Ignored when `usernameIsEmail` (the default); otherwise defaults to the email. With `onConflict: 'update'`, another
   * username for the existing user (beyond ASCII letter case; an omitted one is the email) is a new sign-in identity
   * for a password checker keyed by username (LDAP `uid={username}`): it needs a recent sign-in over HTTP, and is
   * refused (outcome `invalid`, error `directory_managed`) for a user whose password the directory manages.
   */
  username?: string;
  /** Group aliases; mapped through `groupMap` first. */
  groups: string[];
  /** Default true for a new user; an updated user (`onConflict: 'update'`) keeps its current value when absent. */
  isApproved?: boolean;
  /** ISO 8601; default: the time of the import. */
  createdAt?: string | Date;
  lastLoginAt?: string | Date | null;
  /**
   * The hash as the other system stores it; omit for a user without a password. Refused (outcome `invalid`, error
   * `directory_managed`) for an existing user whose password the directory (LDAP) manages.
   */
  passwordHash?: string;
  passwordFormat?: ImportedPasswordFormat | 'PBKDF2.ASPNETCORE.V3' | 'PBKDF2.ASPNETCORE.V2' | 'HMACSHA256' | 'SHA1';
}

/** What happens to a record whose email (or username) is taken: leave it, overwrite it, or report it invalid. */
export type ImportConflictMode = 'skip' | 'update' | 'fail';

/** Options of {@link BackOfficeUserManager.importUsers}. */
export interface ImportUsersOptions {
  /** Check and report everything, write nothing. Default false. */
  dryRun?: boolean;
  /** Default `skip`, so an interrupted import can simply be run again. */
  onConflict?: ImportConflictMode;
  /**
   * Other systems' group aliases to this module's: `{ administrators: 'admin', designers: 'editor' }`; `null`
   * drops a group. Aliases not in the map are used as they are (Umbraco's defaults are the seeded groups).
   */
  groupMap?: Record<string, string | null>;
}

export type ImportUserOutcome = 'created' | 'updated' | 'skipped' | 'invalid';

/** The report line of one record, in the order of the input. */
export interface ImportUserResult {
  /** The record's email, or null when it had none. */
  email: string | null;
  outcome: ImportUserOutcome;
  errors?: IdentityError[];
}

/** Counts of one import. */
export interface ImportUsersSummary {
  total: number;
  created: number;
  updated: number;
  skipped: number;
  invalid: number;
}

/** A checked record as the store writes it. `passwordHash` is already in the stored form. */
export type ImportedUserRow = Pick<
  BackOfficeUser,
  'username' | 'normalizedUsername' | 'email' | 'normalizedEmail' | 'name' | 'passwordHash' | 'securityStamp' | 'groups' | 'createdAt' | 'lastLoginAt'
> & {
  /**
   * The record's `isApproved`, or null when it has none: a new user is then approved, an updated one keeps its
   * current value (as a missing `passwordHash` or `lastLoginAt` does), so a re-import never enables a disabled user.
   */
  isApproved: boolean | null;
};

/** Asked about a user an import batch wrote (or is to overwrite), as stored in the batch's transaction, with its row's index; throw to refuse the batch. */
export type ImportWrittenAuthorizer = (written: BackOfficeUser, index: number) => void;

/** The store's answer per row: written, left alone, or why not. */
export type ImportRowOutcome = 'created' | 'updated' | 'skipped' | 'duplicate_email' | 'duplicate_username' | 'last_admin' | 'directory_managed' | 'unknown_group';

/** Optional store capability: writes one batch of imported users in one transaction. */
export interface UserImportStore {
  /**
   * Writes `rows` in one transaction (rolled back when `dryRun`), new users inserted in bulk, and answers one
   * outcome per row in order. `protectedGroup` (the admin group) keeps at least one approved member. An updated
   * user keeps its `isApproved` when the row's is null; a row's `isApproved` enables or disables for good (as
   * `setApproved` without `until`): whatever the user's disable (a timed one still running too), it leaves no
   * `disabledUntil`, so no later sign-in enables a user the import disabled (OWASP ASVS 4.0 1.11.3, 5.0 15.4.2),
   * and no `disabledReason` unless the user was already disabled for good (that reason is kept). When its password hash or its email changes, or the row disables it, its outstanding
   * password-reset, invite and email-change tokens are voided in the same transaction; when it is disabled, its
   * API bearer tokens are revoked. A row with a `passwordHash`, or another username ({@link importRenamesUser}), for
   * a user marked directory-managed (`directoryManagedAt` and the username, read under the lock the update writes
   * under) is not written: `directory_managed`. A row
   * naming a group that no longer exists (deleted after the caller checked the rows) is not written: `unknown_group`;
   * the groups a row names must be read under a lock that keeps them until the commit, so none is silently left out.
   * `authorize`, when given, must be asked about every user the batch created or updated, as stored after the
   * batch's writes (its groups and their permissions read then), in the batch's transaction, dry runs too, with the
   * row's index in `rows`; a throw rolls the whole batch back and goes on to the caller (the HTTP import's re-check of
   * the groups: a permission added to one of them while the import ran is not the caller's to hand out, OWASP ASVS
   * 4.0 4.1.3, 5.0 8.2.1). `authorizeTarget`, when given, must be asked about every existing user a row is to
   * overwrite, as stored once the batch holds the protected group's lock and that user's row lock and before the
   * batch writes any of it (its groups as they were, not the row's), dry runs too; a throw likewise rolls the batch
   * back (the HTTP import's re-check of the caller's right to manage the target: a user made an admin while the
   * import ran is not the caller's to overwrite, OWASP ASVS 4.0 4.1.3, 5.0 15.4.2). `refuseTarget`, when given, must be
   * asked about every existing user a row is to overwrite, as `authorizeTarget` is (as stored under that user's row
   * lock, before any of it is written, dry runs too); a row it answers true for is not written: `directory_managed`,
   * as for the stored mark above (the importer asks the user manager's `renamesDirectoryManaged`, and for a row with a
   * `passwordHash` its `isDirectoryManaged`, so a host manager's `isDirectoryManaged` decides too; OWASP ASVS 5.0
   * 7.5.1, 4.0 V2.5). A store that cannot honour any of the three
   * must throw rather than ignore it. The module cannot tell a store that honours `refuseTarget` from one written
   * before it existed (which drops the option unread and overwrites the user): no capability flag says so, and the
   * outcome of an ignored refusal looks like any update. Run `runBackOfficeStoreContract` (`backoffice-identity/testing`)
   * against a store of your own: its user-import case fails a store that ignores `refuseTarget`.
   */
  importUsers(
    rows: ImportedUserRow[],
    options: {
      onConflict: ImportConflictMode;
      dryRun: boolean;
      protectedGroup: string;
      authorize?: ImportWrittenAuthorizer;
      authorizeTarget?: ImportWrittenAuthorizer;
      refuseTarget?: (current: BackOfficeUser, index: number) => boolean;
    },
    now: Date,
  ): Promise<ImportRowOutcome[]>;
}

/**
 * The existing user a record updates with `onConflict: 'update'`, or null when it updates no one: the user with the
 * record's email, unless another user holds the record's username (the store answers `duplicate_email`); a match by
 * username only updates no one (`duplicate_username`), and no match inserts. The TypeORM store's write and the HTTP
 * import's step-up decide with this one rule (the in-memory store has no bulk import).
 */
export function importUpdateTarget<U extends { id: string }>(sameEmail: U | null | undefined, sameUsername: U | null | undefined): U | null {
  return sameEmail && (!sameUsername || sameUsername.id === sameEmail.id) ? sameEmail : null;
}

/**
 * Whether an update writing `username` (a record's, as stored: NFC, trimmed) gives `existing` another username: a new
 * sign-in identity for a password checker keyed by username (LDAP `uid={username}`), so an account takeover when
 * the new one is the attacker's directory account (OWASP ASVS 5.0 7.5.1, 4.0 V2.5). A change of ASCII letter case
 * alone is not one (directories match user names regardless of it); a look-alike (full-width letters) is, although
 * it has the same lookup key. The HTTP import's step-up uses it (the TypeORM store's directory-managed refusal uses
 * renamesDirectoryManagedUser, the same comparison).
 */
export function importRenamesUser(existing: { username: string }, username: string): boolean {
  return differsBeyondAsciiCase(username, existing.username);
}

export const isUserImportStore = (s: object): s is UserImportStore => typeof (s as Record<string, unknown>).importUsers === 'function';

/** Counts of a list of results. */
export function summarizeImport(results: readonly ImportUserResult[]): ImportUsersSummary {
  const summary: ImportUsersSummary = { total: results.length, created: 0, updated: 0, skipped: 0, invalid: 0 };
  for (const r of results) summary[r.outcome]++;
  return summary;
}
