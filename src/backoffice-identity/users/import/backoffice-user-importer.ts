import { randomToken } from '../../common/crypto.js';
import type { IdentityError } from '../../common/identity-result.js';
import { CONTROL_CHARACTERS } from '../../common/lookup-normalizer.js';
import type { BackOfficeErrorDescriber } from '../../common/error-describer.js';
import type { BackOfficeUserStore } from '../stores/user-store.interface.js';
import type { BackOfficeUser } from '../backoffice-user.js';
import type { BackOfficeUserCandidate } from '../validators.interface.js';
import { toStoredImportedHash } from '../passwords/foreign-password-hashes.js';
import {
  type ImportConflictMode,
  type ImportedUserRow,
  type ImportRowOutcome,
  type ImportUserResult,
  type ImportUsersOptions,
  type ImportWrittenAuthorizer,
  isUserImportStore,
  MAX_IMPORT_BATCH,
} from './user-import.js';

const RECORD_FIELDS = new Set(['email', 'name', 'username', 'groups', 'isApproved', 'createdAt', 'lastLoginAt', 'passwordHash', 'passwordFormat']);
const CONFLICT_MODES: readonly ImportConflictMode[] = ['skip', 'update', 'fail'];
const MAX_GROUPS = 20;
/** Imported dates may lie at most this far ahead (clock skew between systems). */
const FUTURE_SLACK_MS = 24 * 3_600_000;

/** Options after checking, with defaults. */
export interface ResolvedImportOptions {
  dryRun: boolean;
  onConflict: ImportConflictMode;
  groupMap: ReadonlyMap<string, string | null>;
}

/**
 * One record of a batch as an {@link ImportAuthorizer} sees it: its position, its groups after `groupMap`
 * (known aliases only) and, when it is well-formed enough to match an existing user, its normalised keys, its
 * username, its address, its password hash in the stored form (null without one) and its `isApproved`, to compare with the user it would update.
 * The hash is for that comparison only: never report or log it.
 */
export interface ImportRecordToAuthorize {
  index: number;
  /** Whether the record passed every check and goes to the store; false for one reported `invalid` (nothing of it is written). */
  valid: boolean;
  groups: readonly string[];
  normalizedEmail?: string;
  normalizedUsername?: string;
  /** The username as the store writes it (NFC, trimmed; the email when `usernameIsEmail` or when the record has none). */
  username?: string;
  email?: string;
  passwordHash?: string | null;
  /** The record's `isApproved`, or null when it has none (a new user is then approved, an updated one keeps its own). */
  isApproved?: boolean | null;
}

/**
 * Checks a whole batch before anything of it is written (dry runs too) and throws to refuse it. The HTTP import
 * passes one that applies the caller's permissions; the CLI (an operator with database access) passes none.
 * `asStored` is asked again about every user the batch created or updated, as stored in the batch's
 * transaction after its writes, with the record's index in the batch (dry runs too); a throw rolls the batch back
 * (the store's `importUsers` option `authorize`): a group edited between the first check and the write is checked
 * as it was written (OWASP ASVS 4.0 4.1.3, 5.0 8.2.1). `asStoredTarget` is asked about every existing
 * user the batch is to overwrite, as stored under the batch's locks before it is written (the store's option
 * `authorizeTarget`): a user made an admin after the first check is checked as it then is (OWASP ASVS 4.0 4.1.3,
 * 5.0 15.4.2). Each is optional for a host calling `userManager.importUsers` (a bare function stays valid); the
 * HTTP import gives both.
 */
export type ImportAuthorizer = ((records: readonly ImportRecordToAuthorize[]) => Promise<void>) & {
  asStored?: ImportWrittenAuthorizer;
  asStoredTarget?: ImportWrittenAuthorizer;
};

/** A record that passed every check, and where its report line goes. */
interface PreparedRecord {
  index: number;
  row: ImportedUserRow;
}

/**
 * Checks imported records and hands the valid ones to the store's `importUsers`, one transaction per batch of at
 * most {@link MAX_IMPORT_BATCH}. An invalid record is reported with its errors and nothing of it is written.
 * Password hashes are never part of a report, an error description or a log line.
 */
/**
 * What the importer needs of the user manager (`BackOfficeUserManager` is one): declared here so the importer
 * does not import the manager that creates it.
 */
export interface BackOfficeUserImportHost {
  readonly store: BackOfficeUserStore;
  readonly errorDescriber: BackOfficeErrorDescriber;
  normalizeKey(value: string): string;
  now(): Date;
  knownGroupAliases(): Promise<Set<string>>;
  prepareUserCandidate(input: { email?: unknown; username?: unknown; name?: unknown }): Promise<{ candidate: BackOfficeUserCandidate; errors: IdentityError[] }>;
  /** Whether writing `username` renames a directory-managed user (the manager's rule, a host's `isDirectoryManaged` included). */
  renamesDirectoryManaged(user: BackOfficeUser, username: string): boolean;
  /** Whether the user's password is the directory's (the manager's rule, a host's `isDirectoryManaged` included). */
  isDirectoryManaged(user: BackOfficeUser): boolean;
}

export class BackOfficeUserImporter {
  constructor(private readonly manager: BackOfficeUserImportHost) {}

  /** Checks the options; throws a `TypeError` naming the option when one is wrong. */
  static resolveOptions(options: ImportUsersOptions = {}): ResolvedImportOptions {
    const onConflict = options.onConflict ?? 'skip';
    if (!CONFLICT_MODES.includes(onConflict)) throw new TypeError(`importUsers: option "onConflict" must be one of ${CONFLICT_MODES.join(', ')}`);
    if (options.dryRun !== undefined && typeof options.dryRun !== 'boolean') throw new TypeError('importUsers: option "dryRun" must be a boolean');
    const map = options.groupMap ?? {};
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new TypeError('importUsers: option "groupMap" must be an object of alias to alias (or null)');
    const groupMap = new Map<string, string | null>();
    for (const [from, to] of Object.entries(map)) {
      if (to !== null && typeof to !== 'string') throw new TypeError(`importUsers: option "groupMap.${from}" must be a group alias or null`);
      groupMap.set(from, to);
    }
    return { dryRun: options.dryRun ?? false, onConflict, groupMap };
  }

  /**
   * Imports every record, in batches of {@link MAX_IMPORT_BATCH} (each its own transaction). With `authorize`,
   * the records must fit in one batch, so that a refusal leaves everything unwritten. `onBatch` gets the results of
   * each batch once it is committed, so a caller knows what was written when a later batch fails.
   */
  async importUsers(
    records: readonly unknown[],
    options: ImportUsersOptions = {},
    authorize?: ImportAuthorizer,
    onBatch?: (results: readonly ImportUserResult[]) => void,
  ): Promise<ImportUserResult[]> {
    if (!Array.isArray(records)) throw new TypeError('importUsers: records must be an array');
    const resolved = BackOfficeUserImporter.resolveOptions(options);
    if (authorize && records.length > MAX_IMPORT_BATCH) throw new RangeError(`importUsers with authorize takes at most ${MAX_IMPORT_BATCH} records`);
    const results: ImportUserResult[] = [];
    for (let start = 0; start < records.length; start += MAX_IMPORT_BATCH) {
      const batch = await this.importBatch(records.slice(start, start + MAX_IMPORT_BATCH), resolved, authorize);
      results.push(...batch);
      onBatch?.(batch);
    }
    return results;
  }

  /**
   * Imports one batch (at most {@link MAX_IMPORT_BATCH} records) in one transaction. `authorize` sees every
   * record once checked and before the store is called (also on a dry run); when it throws, nothing is written.
   */
  async importBatch(records: readonly unknown[], options: ResolvedImportOptions, authorize?: ImportAuthorizer): Promise<ImportUserResult[]> {
    if (records.length > MAX_IMPORT_BATCH) throw new RangeError(`importBatch takes at most ${MAX_IMPORT_BATCH} records`);
    const store = this.manager.store;
    const knownGroups = await this.manager.knownGroupAliases();
    const results: ImportUserResult[] = [];
    const prepared: PreparedRecord[] = [];
    const seenEmails = new Set<string>();
    const seenUsernames = new Set<string>();
    const toAuthorize: ImportRecordToAuthorize[] = [];
    for (const [index, record] of records.entries()) {
      const { email, row, groups, errors } = await this.prepare(record, knownGroups, options.groupMap);
      if (row && seenEmails.has(row.normalizedEmail)) errors.push(this.manager.errorDescriber.duplicateInImport('email'));
      else if (row && seenUsernames.has(row.normalizedUsername)) errors.push(this.manager.errorDescriber.duplicateInImport('username'));
      const valid = row !== undefined && errors.length === 0;
      toAuthorize.push(
        row
          ? { index, valid, groups, normalizedEmail: row.normalizedEmail, normalizedUsername: row.normalizedUsername, username: row.username, email: row.email, passwordHash: row.passwordHash, isApproved: row.isApproved }
          : { index, valid, groups },
      );
      if (row && errors.length === 0) {
        seenEmails.add(row.normalizedEmail);
        seenUsernames.add(row.normalizedUsername);
        prepared.push({ index, row });
      }
      results.push(errors.length ? { email, outcome: 'invalid', errors } : { email, outcome: 'skipped' });
    }
    if (authorize) await authorize(toAuthorize);
    if (prepared.length === 0) return results;
    if (!isUserImportStore(store)) {
      const notSupported = this.manager.errorDescriber.notSupported('importing users');
      for (const { index } of prepared) results[index] = { email: results[index].email, outcome: 'invalid', errors: [notSupported] };
      return results;
    }
    const { asStored, asStoredTarget } = authorize ?? {};
    const outcomes = await store.importUsers(
      prepared.map((p) => p.row),
      {
        onConflict: options.onConflict,
        dryRun: options.dryRun,
        protectedGroup: 'admin',
        ...(asStored ? { authorize: (written: BackOfficeUser, i: number) => asStored(written, prepared[i].index) } : {}),
        ...(asStoredTarget ? { authorizeTarget: (current: BackOfficeUser, i: number) => asStoredTarget(current, prepared[i].index) } : {}),
        // The user a row overwrites, as stored under its row lock: a rename of a user the manager calls directory-managed,
        // or a local password for one, is refused (directory_managed), not only for one the store finds marked (OWASP
        // ASVS 5.0 7.5.1, 4.0 V2.5; forgot-password and the forced reset ask isDirectoryManaged too).
        refuseTarget: (current: BackOfficeUser, i: number) =>
          this.manager.renamesDirectoryManaged(current, prepared[i].row.username) || (prepared[i].row.passwordHash !== null && this.manager.isDirectoryManaged(current)),
      },
      this.manager.now(),
    );
    // Groups deleted after the check above (DELETE /groups/:alias): the rows naming them are answered as naming an unknown group.
    const known = outcomes.includes('unknown_group') ? await this.manager.knownGroupAliases() : undefined;
    prepared.forEach(({ index, row }, i) => (results[index] = this.toResult(results[index].email, outcomes[i], row, known)));
    return results;
  }

  private toResult(email: string | null, outcome: ImportRowOutcome, row: ImportedUserRow, known?: ReadonlySet<string>): ImportUserResult {
    const d = this.manager.errorDescriber;
    switch (outcome) {
      case 'unknown_group': {
        const gone = row.groups.filter((alias) => !known?.has(alias));
        return { email, outcome: 'invalid', errors: (gone.length > 0 ? gone : row.groups).map((alias) => d.unknownGroup(alias)) };
      }
      case 'created':
      case 'updated':
      case 'skipped':
        return { email, outcome };
      case 'duplicate_email':
        return { email, outcome: 'invalid', errors: [d.duplicateEmail()] };
      case 'duplicate_username':
        return { email, outcome: 'invalid', errors: [d.duplicateUserName()] };
      case 'last_admin':
        return { email, outcome: 'invalid', errors: [d.lastAdmin()] };
      case 'directory_managed':
        return { email, outcome: 'invalid', errors: [d.importDirectoryManaged()] };
    }
  }

  /** Checks one record; `row` is set when it is well-formed enough to compare with others. */
  private async prepare(
    record: unknown,
    knownGroups: ReadonlySet<string>,
    groupMap: ReadonlyMap<string, string | null>,
  ): Promise<{ email: string | null; row?: ImportedUserRow; groups: string[]; errors: IdentityError[] }> {
    const d = this.manager.errorDescriber;
    if (typeof record !== 'object' || record === null || Array.isArray(record)) return { email: null, groups: [], errors: [d.importRecordInvalid()] };
    const input = record as Record<string, unknown>;
    const email = typeof input.email === 'string' && !CONTROL_CHARACTERS.test(input.email) ? input.email.trim().slice(0, 256) : null;
    const errors: IdentityError[] = Object.keys(input)
      .filter((key) => !RECORD_FIELDS.has(key))
      .slice(0, 5)
      .map((key) => d.importUnknownField(key));
    const username = input.username === undefined || input.username === null ? input.email : input.username;
    const { candidate, errors: userErrors } = await this.manager.prepareUserCandidate({ email: input.email, username, name: input.name });
    errors.push(...userErrors);
    const groups = this.mapGroups(input.groups, knownGroups, groupMap, errors);
    if (input.isApproved !== undefined && typeof input.isApproved !== 'boolean') errors.push(d.importInvalidApproval());
    const createdAt = this.date(input.createdAt, 'createdAt', errors);
    const lastLoginAt = this.date(input.lastLoginAt, 'lastLoginAt', errors);
    let passwordHash: string | null = null;
    if (input.passwordHash !== undefined || input.passwordFormat !== undefined) {
      const stored = toStoredImportedHash(input.passwordFormat, input.passwordHash);
      if ('error' in stored) errors.push({ ...stored.error });
      else passwordHash = stored.stored;
    }
    if (userErrors.length > 0) return { email, groups, errors };
    const row: ImportedUserRow = {
      username: candidate.username,
      normalizedUsername: this.manager.normalizeKey(candidate.username),
      email: candidate.email,
      normalizedEmail: this.manager.normalizeKey(candidate.email),
      name: candidate.name,
      passwordHash,
      securityStamp: randomToken(24),
      isApproved: typeof input.isApproved === 'boolean' ? input.isApproved : null, // null: new users approved, updated ones keep theirs
      groups,
      createdAt: createdAt ?? this.manager.now(),
      lastLoginAt: lastLoginAt ?? null,
    };
    return { email, row, groups, errors };
  }

  private mapGroups(value: unknown, known: ReadonlySet<string>, groupMap: ReadonlyMap<string, string | null>, errors: IdentityError[]): string[] {
    const d = this.manager.errorDescriber;
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value) || value.length > MAX_GROUPS || !value.every((g) => typeof g === 'string' && g.length > 0 && g.length <= 256)) {
      errors.push(d.importInvalidGroups(MAX_GROUPS));
      return [];
    }
    const aliases = new Set<string>();
    for (const original of value as string[]) {
      const alias = groupMap.has(original) ? groupMap.get(original)! : original;
      if (alias === null) continue;
      if (!known.has(alias)) errors.push(d.unknownGroup(alias));
      else aliases.add(alias);
    }
    return [...aliases];
  }

  private date(value: unknown, field: 'createdAt' | 'lastLoginAt', errors: IdentityError[]): Date | undefined {
    if (value === undefined || value === null) return undefined;
    const date = value instanceof Date ? value : typeof value === 'string' && value.length <= 64 ? new Date(value) : new Date(NaN);
    const time = date.getTime();
    if (Number.isNaN(time) || time < Date.UTC(1970, 0, 1) || time > this.manager.now().getTime() + FUTURE_SLACK_MS) {
      const d = this.manager.errorDescriber;
      errors.push(field === 'createdAt' ? d.importInvalidCreatedAt() : d.importInvalidLastLoginAt());
      return undefined;
    }
    return date;
  }
}
