import { Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { onEntityManager, requireHostDataSource } from './backoffice-data-source.provider.js';
import { DataSource, EntityManager, In, QueryFailedError } from 'typeorm';
import { cappedCount } from './capped-count.js';
import { abortable } from '../../common/abortable-transaction.js';
import { isUuid } from '../../common/ids.js';
import { isUndefinedColumnError } from '../../common/database-errors.js';
import { BackOfficeIdentityTokenHandOverPending1732640000000 } from './migrations/1732640000000-backoffice-identity-token-hand-over-pending.js';
import { preparedQuery } from './prepared-query.js';
import { deleteCounting, deleteInBatches, failedAccessResult, PRUNE_BATCH_SIZE } from './sql-results.js';
import { PENDING_INVITEE_SQL, redactSecretsWhenLogged, type BackOfficeUser, type BackOfficeUserKind } from '../../users/backoffice-user.js';
import { BackOfficeGroupEntity } from './entities/backoffice-group.entity.js';
import { BackOfficeUserEntity } from './entities/backoffice-user.entity.js';
import type { ImportConflictMode, ImportedUserRow, ImportRowOutcome, ImportWrittenAuthorizer, UserImportStore } from '../../users/import/user-import.js';
import { writeImportedUsers } from './typeorm-user-import.js';
import { lockGroupsForShare } from './group-share-locks.js';
import {
  BackOfficeDuplicateUserError,
  type BackOfficeGroup,
  type BackOfficeUserProfileChanges,
  type BackOfficeUserQuery,
  type BackOfficeUserStore,
  type FailedAccessResult,
  type LockoutPolicy,
  type NewBackOfficeUser,
  type TransactionalUserStore,
  type UnknownUserLockoutStore,
  type UserGroupStore,
  type UserLockoutStore,
  type UserPasswordStore,
  type UserDirectoryManagedStore,
  type UserPhoneNumberStore,
  type UserQueryStore,
  type UserSecurityStampStore,
  type UserTokenStore,
  type UserTokenHandoverStore,
  type UserTokenIssueOptions,
  type UserTwoFactorStore,
  type StoredAuthenticatorKey,
  type UserAuthenticatorKeyStore,
  type UserRecoveryCodeStore,
  BackOfficeDuplicatePasskeyError,
  BackOfficePasskeyRefusedError,
  type AddPasskeyOptions,
  BackOfficeTooManyPasskeysError,
  type NewStoredPasskey,
  type StoredPasskey,
  type UserPasskeyStore,
  type BackOfficeUserLogin,
  BackOfficeDuplicateLoginError,
  type UserLoginStore,
  type BackOfficeTokenPurpose,
  type PrunableUserStore,
  type UserEmailChangeStore,
  type UserEmailChangeHandoverStore,
  passwordResetForcedAtAfterWrite,
  BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS,
} from '../../users/stores/user-store.interface.js';


function toUser(entity: BackOfficeUserEntity): BackOfficeUser {
  const { groups, ...fields } = entity;
  const permissions = [...new Set((groups ?? []).flatMap((g) => g.permissions ?? []))].sort();
  const twoFactorRequiredByGroup = (groups ?? []).some((g) => g.requireTwoFactor);
  return redactSecretsWhenLogged({ ...fields, groups: (groups ?? []).map((g) => g.alias), permissions, twoFactorRequiredByGroup });
}

/**
 * A `backoffice_user` row as `row_to_json` gives it: snake_case keys, timestamps as ISO 8601 text. One JSON field
 * costs the driver far less than forty columns (one type parser, no per-column date parsing) on the hot paths.
 */
export interface UserJson {
  id: string;
  username: string;
  normalized_username: string;
  email: string;
  normalized_email: string;
  name: string;
  password_hash: string | null;
  security_stamp: string;
  access_failed_count: number;
  lockout_enabled: boolean;
  lockout_end: string | null;
  is_approved: boolean;
  two_factor_enabled: boolean;
  phone_number: string | null;
  phone_number_confirmed: boolean;
  invited_at: string | null;
  last_login_at: string | null;
  last_password_change_at: string | null;
  created_at: string;
  updated_at: string;
  kind?: BackOfficeUserKind;
  two_factor_setup_deadline?: string | null;
  disabled_reason?: string | null;
  disabled_until?: string | null;
  directory_managed_at?: string | null;
  password_reset_forced_at?: string | null;
}

/** One group of a user as {@link USER_GROUPS_JOIN} lists it: alias, `require_two_factor`, permission keys. */
type GroupTuple = [alias: string, requireTwoFactor: boolean, permissions: string[] | null];

/** A user with its groups, as {@link USER_COLUMNS} selects it. */
export interface UserRow {
  /** The user; null when an outer join found none. */
  u: UserJson | null;
  /** The user's groups (a `json` value, parsed by the driver; text from a driver that does not); null when in none. */
  groups: GroupTuple[] | string | null;
}

/** Postgres arrays arrive parsed from `pg`; a driver that hands back `{a,b}` text is parsed here. */
export function aliases(value: string[] | string): string[] {
  if (Array.isArray(value)) return value;
  const inner = value.replace(/^\{|\}$/g, '');
  return inner ? inner.split(',').map((a) => a.replace(/^"|"$/g, '')) : [];
}

/**
 * The select list of a user with its groups (`u` is `backoffice_user`; needs {@link USER_GROUPS_JOIN} after it),
 * mapped by {@link userFromRow}.
 */
export const USER_COLUMNS = `row_to_json(u) AS u, ug.groups`;

/**
 * Joined after `backoffice_user u`: the user's groups as one `json` array of `[alias, require_two_factor,
 * permissions]` in one pass over the memberships (a lateral aggregate). JSON because it is the cheapest for both
 * sides: no sort inside the aggregate for the server (the order is made in {@link userFromRow}), one `JSON.parse`
 * for the driver where text arrays took a parser of their own (measured with pgbench and a CPU profile).
 */
export const USER_GROUPS_JOIN = `LEFT JOIN LATERAL (
  SELECT json_agg(json_build_array(g.alias, g.require_two_factor, g.permissions)) AS groups
  FROM backoffice_user_group m JOIN backoffice_group g ON g.id = m.group_id WHERE m.user_id = u.id) ug ON true`;

/** Aliases (in code point order), permission keys (distinct, in code point order) and 2FA rule of a user's groups. */
function groupsOf(value: GroupTuple[] | string | null): { groups: string[]; permissions: string[]; twoFactorRequiredByGroup: boolean } {
  const tuples: GroupTuple[] = value === null ? [] : typeof value === 'string' ? JSON.parse(value) : value;
  const groups: string[] = [];
  const keys = new Set<string>();
  let twoFactorRequiredByGroup = false;
  for (const [alias, requireTwoFactor, permissions] of tuples) {
    groups.push(alias);
    if (requireTwoFactor === true) twoFactorRequiredByGroup = true;
    if (permissions) for (const key of permissions) keys.add(key);
  }
  return { groups: groups.sort(), permissions: [...keys].sort(), twoFactorRequiredByGroup };
}

/** A timestamp of a `row_to_json` value (ISO 8601 with the offset), or null. */
export function jsonDate(value: string | null | undefined): Date | null {
  return value === null || value === undefined ? null : new Date(value);
}

/**
 * A mark a later migration added (`directory_managed_at`, `password_reset_forced_at`): undefined when the row has no
 * such key, as `row_to_json` gives it on a database that migration has not reached yet (run after the deploy, or
 * undone), so the manager takes the mark for unknown (its fallback) rather than for "not set".
 */
function jsonMark(value: string | null | undefined): Date | null | undefined {
  return value === undefined ? undefined : jsonDate(value);
}

/** Maps a row of {@link USER_COLUMNS} with a user by hand (no entity hydration on the hot paths). */
export function userFromRow(row: UserRow & { u: UserJson }): BackOfficeUser {
  const u = row.u;
  const { groups, permissions, twoFactorRequiredByGroup } = groupsOf(row.groups);
  return redactSecretsWhenLogged({
    id: u.id,
    username: u.username,
    normalizedUsername: u.normalized_username,
    email: u.email,
    normalizedEmail: u.normalized_email,
    name: u.name,
    passwordHash: u.password_hash,
    securityStamp: u.security_stamp,
    accessFailedCount: Number(u.access_failed_count),
    lockoutEnabled: u.lockout_enabled,
    lockoutEnd: jsonDate(u.lockout_end),
    isApproved: u.is_approved,
    twoFactorEnabled: u.two_factor_enabled,
    phoneNumber: u.phone_number,
    phoneNumberConfirmed: u.phone_number_confirmed,
    invitedAt: jsonDate(u.invited_at),
    lastLoginAt: jsonDate(u.last_login_at),
    lastPasswordChangeAt: jsonDate(u.last_password_change_at),
    createdAt: new Date(u.created_at),
    updatedAt: new Date(u.updated_at),
    groups,
    permissions,
    kind: u.kind ?? 'person',
    twoFactorRequiredByGroup,
    twoFactorSetupDeadline: jsonDate(u.two_factor_setup_deadline),
    disabledReason: u.disabled_reason ?? null,
    disabledUntil: jsonDate(u.disabled_until),
    directoryManagedAt: jsonMark(u.directory_managed_at),
    passwordResetForcedAt: jsonMark(u.password_reset_forced_at),
  });
}

/**
 * How `insertOnlyLiveToken` writes a link: `addressedTo` as in {@link UserTokenIssueOptions}; `unchecked` (a new
 * user's first link, written in the transaction that creates the row) only locks the row and skips the check that
 * the user may get a link. Built by the store's own methods, never taken from a caller's options.
 */
interface LiveTokenWrite {
  addressedTo?: string;
  unchecked?: boolean;
}

interface PasskeyRow {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: Buffer;
  counter: string | number;
  transports: string[] | string;
  name: string;
  device_type: string;
  backed_up: boolean;
  created_at: Date;
  last_used_at: Date | null;
}

function fromPasskeyRow(row: PasskeyRow): StoredPasskey {
  return {
    id: row.id,
    userId: row.user_id,
    credentialId: row.credential_id,
    publicKey: new Uint8Array(row.public_key),
    counter: Number(row.counter),
    transports: aliases(row.transports),
    name: row.name,
    deviceType: row.device_type,
    backedUp: row.backed_up,
    createdAt: new Date(row.created_at),
    lastUsedAt: row.last_used_at ? new Date(row.last_used_at) : null,
  };
}

/** Rows of an `UPDATE/DELETE ... RETURNING` (TypeORM hands back `[rows, count]` for those). */
const returned = (rows: unknown[]): unknown[] => (Array.isArray(rows[0]) ? (rows[0] as unknown[]) : rows);

const DAY_MS = 86_400_000;
/** A lock ending later than this from now is one until an admin unlocks (lockout.durationMinutes is at most 365 days). */
const UNTIL_UNLOCKED_AFTER_MS = 366 * DAY_MS;

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The lock order of a user's links (`backoffice_user_token`): every transaction that writes them takes the user's
 * row first, then the link rows. A password change, reset, admin's forced reset and invite acceptance hold the row
 * FOR NO KEY UPDATE (they write it), an email change and an import's update FOR UPDATE (email and username are
 * unique), and a statement that writes links (a new link, a void, a link used up) without having written the row
 * locks it FOR NO KEY UPDATE (`strength`; FOR UPDATE where an email write follows, as a confirmation's) with this
 * uncorrelated sub-select (an InitPlan: run before the scan hands back any link row, so before any link row is
 * locked). With one order no two of them wait on each other in a cycle (PostgreSQL aborts one of such a pair:
 * `deadlock detected`), and no writer takes a weaker lock on the row and upgrades it later.
 */
const USER_ROW_FIRST = (userIdParam: string, strength: 'NO KEY UPDATE' | 'UPDATE' = 'NO KEY UPDATE') =>
  `(SELECT id FROM backoffice_user WHERE id = ${userIdParam} FOR ${strength})`;

/** SQL of one atomic failed-access count: the row is only counted while not locked. */
const countFailure = (table: string) => `
  access_failed_count = CASE WHEN ${table}.access_failed_count + 1 >= $2::int THEN 0 ELSE ${table}.access_failed_count + 1 END,
  lockout_end = CASE WHEN ${table}.access_failed_count + 1 >= $2::int THEN $3::timestamptz ELSE ${table}.lockout_end END,
  updated_at = $4::timestamptz`;

/** `backoffice_user_token.hand_over_pending` (migration 1732640000000): stored by `addToken`, not handed over yet. */
const HAND_OVER_PENDING = 'hand_over_pending';

/**
 * What a store found of `hand_over_pending` (migration 1732640000000): unknown until its first statement naming it,
 * then present or missing for the store's life (a migration run later takes a restart). One object shared by the
 * stores bound to transactions ({@link TypeOrmBackOfficeUserStore.withEntityManager}: their prototype is the store).
 */
interface HandOverPendingColumn {
  state: 'unknown' | 'present' | 'missing';
}

/**
 * The default user store: TypeORM repositories on PostgreSQL. Implements every capability interface.
 * Counters and single-use tokens are changed with single atomic statements, so concurrent requests
 * cannot lose an increment or use a token twice.
 */
@Injectable()
export class TypeOrmBackOfficeUserStore
  implements
    BackOfficeUserStore,
    UserPasswordStore,
    UserDirectoryManagedStore,
    UserSecurityStampStore,
    UserLockoutStore,
    UnknownUserLockoutStore,
    UserTwoFactorStore,
    UserPhoneNumberStore,
    UserTokenStore,
    UserTokenHandoverStore,
    UserGroupStore,
    UserQueryStore,
    UserAuthenticatorKeyStore,
    UserRecoveryCodeStore,
    UserImportStore,
    UserPasskeyStore,
    UserLoginStore,
    UserEmailChangeStore,
    UserEmailChangeHandoverStore,
    PrunableUserStore,
    TransactionalUserStore<TypeOrmBackOfficeUserStore>
{
  private readonly manager: EntityManager;
  private readonly handOverPendingColumn: HandOverPendingColumn = { state: 'unknown' };

  constructor(@Optional() @InjectDataSource() source: DataSource | EntityManager) {
    requireHostDataSource(source);
    this.manager = source instanceof DataSource ? source.manager : source;
  }

  private get users() {
    return this.manager.getRepository(BackOfficeUserEntity);
  }

  /**
   * The entity manager of the transaction this store works in (the store `transaction` hands its work), or null
   * outside one: other built-in stores of the same database join it (the API client store's revocation on disable).
   */
  openTransaction(): EntityManager | null {
    return this.manager.queryRunner?.isTransactionActive ? this.manager : null;
  }

  /**
   * Runs `work` in one transaction, on this store bound to it: a host's subclass keeps its overrides and its own
   * fields there (the work gets this very store with the transaction's entity manager, not a new base-class store).
   */
  transaction<T>(work: (store: TypeOrmBackOfficeUserStore) => Promise<T>): Promise<T> {
    if (this.manager.queryRunner?.isTransactionActive) return work(this);
    return this.manager.transaction((em) => work(this.withEntityManager(em)));
  }

  /**
   * This store working on `manager` (a transaction's), for {@link transaction}. The default is an object whose
   * prototype is this store, with only its entity manager replaced: a subclass keeps its overrides and the
   * dependencies its constructor took. A subclass with `#private` members (they do not pass through a prototype),
   * or one that keeps state of its own during a transaction, overrides this to build a new instance on `manager`,
   * e.g. `return new MyUserStore(manager, this.audit) as this`; its own queries in a transaction go through
   * {@link openTransaction}, else they run outside it and may wait for the rows it locked.
   */
  protected withEntityManager(manager: EntityManager): this {
    return onEntityManager(this, manager);
  }

  async create(user: NewBackOfficeUser, now: Date): Promise<BackOfficeUser> {
    const { groups, initialToken, ...fields } = user;
    return this.transaction(async (store) => {
      const groupEntities = await store.groupsByAlias(groups);
      const entity = store.users.create({ ...fields, createdAt: now, updatedAt: now, groups: groupEntities });
      try {
        await store.users.save(entity);
      } catch (error) {
        throw TypeOrmBackOfficeUserStore.translateUniqueViolation(error);
      }
      // The row was written just now in this transaction, as the caller asked: its first link goes with it.
      if (initialToken) await store.insertOnlyLiveToken(entity.id, initialToken.purpose, initialToken.tokenHash, initialToken.expiresAt, now, null, { unchecked: true });
      return toUser(entity);
    });
  }

  private async groupsByAlias(aliases: string[]): Promise<BackOfficeGroupEntity[]> {
    if (aliases.length === 0) return [];
    const found = await this.manager.getRepository(BackOfficeGroupEntity).findBy({ alias: In(aliases) });
    if (found.length !== new Set(aliases).size) {
      const missing = aliases.find((a) => !found.some((g) => g.alias === a));
      throw new Error(`Unknown group "${missing}"`);
    }
    return found;
  }

  private static translateUniqueViolation(error: unknown): unknown {
    if (error instanceof QueryFailedError) {
      const driverError = (error as QueryFailedError & { driverError?: { code?: string; constraint?: string } }).driverError;
      if (driverError?.code === '23505') {
        if (driverError.constraint?.includes('email')) return new BackOfficeDuplicateUserError('email');
        if (driverError.constraint?.includes('username')) return new BackOfficeDuplicateUserError('username');
      }
    }
    return error;
  }

  async importUsers(
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
  ): Promise<ImportRowOutcome[]> {
    if (rows.length === 0) return [];
    const { authorizeTarget, refuseTarget } = options;
    // A dry run aborts once its outcomes are known: the transaction rolls back and the outcomes are answered.
    return abortable((abort: (outcomes: ImportRowOutcome[]) => never) =>
      this.transaction(async (store) => {
        const outcomes = await writeImportedUsers(
          store.manager,
          rows,
          {
            onConflict: options.onConflict,
            protectedGroup: options.protectedGroup,
            ...(authorizeTarget || refuseTarget
              ? { checkTargets: (targets: ReadonlyArray<{ id: string; index: number }>) => store.checkTargets(targets, authorizeTarget, refuseTarget) }
              : {}),
          },
          now,
        );
        if (options.authorize) await store.authorizeImported(rows, outcomes, options.authorize);
        if (options.dryRun) abort(outcomes);
        return outcomes;
      }),
    );
  }

  /**
   * Asks `authorize` and `refuse` about every existing user the batch is to overwrite, read in one query once their rows
   * are locked (after the admin group's lock) and before the batch writes any of them: their groups as they are then,
   * not the ones the batch gives them. Answers the indexes of the rows `refuse` answered true for.
   */
  private async checkTargets(
    targets: ReadonlyArray<{ id: string; index: number }>,
    authorize: ImportWrittenAuthorizer | undefined,
    refuse: ((current: BackOfficeUser, index: number) => boolean) | undefined,
  ): Promise<Set<number>> {
    const refused = new Set<number>();
    if (targets.length === 0) return refused;
    const byId = await this.usersKeyedBy('id', targets.map((t) => t.id));
    for (const { id, index } of targets) {
      const user = byId.get(id);
      // Deleted since the batch looked it up: its update writes nothing, so there is nothing of it to check.
      if (!user) continue;
      authorize?.(user, index);
      if (refuse?.(user, index)) refused.add(index);
    }
    return refused;
  }

  /**
   * Asks `authorize` about every user the batch created or updated, read again after its writes (in one query, in the
   * batch's transaction): the memberships' inserts waited for any group edit holding a group's row, so the
   * permissions read here are the ones the memberships were written with.
   */
  private async authorizeImported(rows: ImportedUserRow[], outcomes: ImportRowOutcome[], authorize: ImportWrittenAuthorizer): Promise<void> {
    const written = rows.map((row, index) => ({ row, index })).filter(({ index }) => outcomes[index] === 'created' || outcomes[index] === 'updated');
    if (written.length === 0) return;
    const byEmail = await this.usersKeyedBy('normalized_email', written.map(({ row }) => row.normalizedEmail));
    for (const { row, index } of written) {
      const user = byEmail.get(row.normalizedEmail);
      if (!user) throw new Error('importUsers: a user the batch wrote was not found in its transaction');
      authorize(user, index);
    }
  }

  /** The users (with their groups) whose `column` is one of `values`, in one query, keyed by that column. */
  private async usersKeyedBy(column: 'id' | 'normalized_email', values: string[]): Promise<Map<string, BackOfficeUser>> {
    const type = column === 'id' ? 'uuid' : 'varchar';
    const found = returned(
      await this.manager.query(`SELECT ${USER_COLUMNS} FROM backoffice_user u ${USER_GROUPS_JOIN} WHERE u.${column} = ANY($1::${type}[])`, [values]),
    ) as Array<UserRow & { u: UserJson }>;
    return new Map(found.map((r) => [r.u[column], userFromRow(r)]));
  }

  async findById(id: string): Promise<BackOfficeUser | null> {
    return isUuid(id) ? this.findOneWhere('id', id) : null;
  }

  findByNormalizedUsername(normalizedUsername: string): Promise<BackOfficeUser | null> {
    return this.findOneWhere('normalized_username', normalizedUsername);
  }

  findByNormalizedEmail(normalizedEmail: string): Promise<BackOfficeUser | null> {
    return this.findOneWhere('normalized_email', normalizedEmail);
  }

  /**
   * One query (the user with its group aliases aggregated), mapped by hand: this runs on every authenticated
   * request, and entity hydration of the many-to-many relation cost more than the query itself.
   */
  private async findOneWhere(column: 'id' | 'normalized_username' | 'normalized_email', value: string): Promise<BackOfficeUser | null> {
    const rows = await preparedQuery<UserRow>(
      this.manager,
      `backoffice_find_user_by_${column}`,
      `SELECT ${USER_COLUMNS} FROM backoffice_user u ${USER_GROUPS_JOIN} WHERE u.${column} = $1`,
      [value],
    );
    const row = rows[0];
    return row?.u ? userFromRow(row as UserRow & { u: UserJson }) : null;
  }

  async updateProfile(userId: string, changes: BackOfficeUserProfileChanges, now: Date): Promise<void> {
    const keys = Object.keys(changes);
    if (keys.length === 1 && keys[0] === 'lastLoginAt') {
      // Every successful sign-in: a prepared statement instead of the query builder.
      await preparedQuery(this.manager, 'backoffice_record_login', `UPDATE backoffice_user SET last_login_at = $2, updated_at = $3 WHERE id = $1`, [
        userId,
        changes.lastLoginAt,
        now,
      ]);
      return;
    }
    try {
      await this.users.update({ id: userId }, { ...changes, updatedAt: now });
    } catch (error) {
      throw TypeOrmBackOfficeUserStore.translateUniqueViolation(error);
    }
  }

  /** False when no row was deleted (none, or a concurrent delete took it first: this one waited for its row lock). */
  async delete(userId: string): Promise<boolean> {
    if (!isUuid(userId)) return false;
    return (await deleteCounting(this.manager, `DELETE FROM backoffice_user WHERE id = $1`, [userId])) > 0;
  }

  /** The end of the user's grace period for enrolling in 2FA (null clears it). */
  async setTwoFactorSetupDeadline(userId: string, deadline: Date | null): Promise<void> {
    if (isUuid(userId)) await this.users.update({ id: userId }, { twoFactorSetupDeadline: deadline });
  }

  /** People only: API users are not counted. */
  count(): Promise<number> {
    return this.users.count({ where: { kind: 'person' } });
  }

  async setPasswordHash(
    userId: string,
    passwordHash: string | null,
    securityStamp: string,
    now: Date,
    options: { rehashOf?: string; unlessDirectoryManaged?: boolean; forcedReset?: boolean } = {},
  ): Promise<boolean> {
    if (options.rehashOf !== undefined) {
      await this.users.update({ id: userId, passwordHash: options.rehashOf }, { passwordHash, updatedAt: now });
      return true;
    }
    const passwordResetForcedAt = passwordResetForcedAtAfterWrite(passwordHash, now, options);
    if (options.unlessDirectoryManaged) {
      // One statement: a mark committed while it waited for the row is seen by the re-check of its WHERE.
      if (!isUuid(userId)) return false;
      const rows: unknown[] = await this.manager.query(
        `UPDATE backoffice_user SET password_hash = $2, security_stamp = $3, last_password_change_at = $4, updated_at = $4, password_reset_forced_at = $5
         WHERE id = $1 AND directory_managed_at IS NULL RETURNING id`,
        [userId, passwordHash, securityStamp, now, passwordResetForcedAt],
      );
      return returned(rows).length > 0;
    }
    await this.users.update({ id: userId }, { passwordHash, securityStamp, lastPasswordChangeAt: now, updatedAt: now, passwordResetForcedAt });
    return true;
  }

  async markDirectoryManaged(userId: string, now: Date): Promise<boolean> {
    if (!isUuid(userId)) return false;
    const rows: unknown[] = await this.manager.query(
      `UPDATE backoffice_user SET directory_managed_at = $2, updated_at = $2 WHERE id = $1 AND directory_managed_at IS NULL RETURNING id`,
      [userId, now],
    );
    return returned(rows).length > 0;
  }

  async clearDirectoryManaged(userId: string, now: Date): Promise<boolean> {
    if (!isUuid(userId)) return false;
    const rows: unknown[] = await this.manager.query(
      `UPDATE backoffice_user SET directory_managed_at = NULL, updated_at = $2 WHERE id = $1 AND directory_managed_at IS NOT NULL RETURNING id`,
      [userId, now],
    );
    return returned(rows).length > 0;
  }

  async setSecurityStamp(userId: string, securityStamp: string, now: Date): Promise<void> {
    await this.users.update({ id: userId }, { securityStamp, updatedAt: now });
  }

  async recordFailedAccess(userId: string, policy: LockoutPolicy, now: Date): Promise<FailedAccessResult> {
    const rows: Array<{ access_failed_count: number; lockout_end: Date | null }> = await this.manager.query(
      `UPDATE backoffice_user SET ${countFailure('backoffice_user')}
       WHERE id = $1 AND lockout_enabled AND (lockout_end IS NULL OR lockout_end <= $4::timestamptz)
       RETURNING access_failed_count, lockout_end`,
      [userId, policy.maxFailedAccessAttempts, policy.lockoutEnd, now],
    );
    return failedAccessResult(rows, now);
  }



  async resetAccessFailedCount(userId: string, now: Date): Promise<void> {
    await this.users.update({ id: userId }, { accessFailedCount: 0, updatedAt: now });
  }

  async setLockoutEnd(userId: string, lockoutEnd: Date | null, now: Date): Promise<void> {
    await this.users.update({ id: userId }, { lockoutEnd, updatedAt: now });
  }

  async getUnknownUserLockoutEnd(usernameKey: string, now: Date): Promise<Date | null> {
    const rows: Array<{ lockout_end: Date }> = await this.manager.query(
      `SELECT lockout_end FROM backoffice_login_attempt WHERE username_hash = $1 AND lockout_end > $2::timestamptz`,
      [usernameKey, now],
    );
    return rows[0] ? new Date(rows[0].lockout_end) : null;
  }

  async recordFailedAccessForUnknownUser(usernameKey: string, policy: LockoutPolicy, now: Date): Promise<FailedAccessResult> {
    const rows = await this.manager.query(
      `INSERT INTO backoffice_login_attempt AS a (username_hash, access_failed_count, lockout_end, updated_at)
       VALUES ($1, CASE WHEN 1 >= $2::int THEN 0 ELSE 1 END, CASE WHEN 1 >= $2::int THEN $3::timestamptz END, $4::timestamptz)
       ON CONFLICT (username_hash) DO UPDATE SET ${countFailure('a')}
       WHERE a.lockout_end IS NULL OR a.lockout_end <= $4::timestamptz
       RETURNING access_failed_count, lockout_end`,
      [usernameKey, policy.maxFailedAccessAttempts, policy.lockoutEnd, now],
    );
    return failedAccessResult(rows, now);
  }

  async setTwoFactorEnabled(userId: string, enabled: boolean, securityStamp: string, now: Date): Promise<void> {
    await this.users.update({ id: userId }, { twoFactorEnabled: enabled, securityStamp, updatedAt: now });
  }

  async setPhoneNumber(userId: string, phoneNumber: string | null, confirmed: boolean, now: Date): Promise<void> {
    await this.users.update({ id: userId }, { phoneNumber, phoneNumberConfirmed: confirmed, updatedAt: now });
  }

  async replaceToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, expiresAt: Date, now: Date, options: UserTokenIssueOptions = {}): Promise<boolean> {
    return this.insertOnlyLiveToken(userId, purpose, tokenHash, expiresAt, now, null, { addressedTo: options.addressedTo });
  }

  /**
   * Voids the user's live tokens of `purpose` and stores the new one, in one transaction that first locks the user's
   * row FOR NO KEY UPDATE ({@link USER_ROW_FIRST}: the user's row before any link row, the order of every writer of
   * links). The mode conflicts with every transaction that voids the user's links (a password change, reset or
   * invite acceptance writes the row FOR NO KEY UPDATE, an email change or import update FOR UPDATE), so a new link
   * is written either before such a transaction (and voided by it) or after it commits, never committed while it is
   * open and left live by it (OWASP ASVS 4.0 1.11.3, 2.5.x; FOR KEY SHARE, as before, let a new link through during a
   * password change). It also serialises concurrent requests (two "forgot password" clicks, two resends of an
   * invite), which would otherwise each void what was committed before and both insert, leaving two live links.
   * Unless `write.unchecked` ({@link create} only), nothing is written unless the user, read under that lock, may
   * get a link ({@link mayGetLinkLocked}, with `write.addressedTo`): false. Checked on the caller's earlier read, a
   * disable committed in between (an admin's forced reset racing it) left the disabled user a live link, which worked
   * again once enabled.
   */
  private async insertOnlyLiveToken(
    userId: string,
    purpose: BackOfficeTokenPurpose,
    tokenHash: string,
    expiresAt: Date,
    now: Date,
    newEmail: string | null,
    write: LiveTokenWrite,
  ): Promise<boolean> {
    if (!isUuid(userId)) return false;
    return this.transaction(async (store) => {
      if (!write.unchecked) {
        if (!(await store.mayGetLinkLocked(userId, purpose, now, write.addressedTo))) return false;
      } else {
        await store.manager.query(`SELECT ${USER_ROW_FIRST('$1')}`, [userId]);
      }
      await store.voidTokens(userId, purpose, now);
      await store.manager.query(
        `INSERT INTO backoffice_user_token (user_id, purpose, token_hash, expires_at, created_at, new_email) VALUES ($1, $2, $3, $4, $5, $6)`,
        [userId, purpose, tokenHash, expiresAt, now, newEmail],
      );
      return true;
    });
  }

  /**
   * Locks the user's row FOR NO KEY UPDATE (as {@link USER_ROW_FIRST}) and answers whether the user, read under that
   * lock, may get a link: it exists and is not disabled (a timed disable whose end has passed does not count), and for
   * a link that sets a password (`password_reset`, `invite`) is not marked directory-managed, and, given
   * `addressedTo`, still has that normalized email. A disable, a mark and an email change write that row and void the
   * links in one transaction, so a link is either written before it (and voided by it) or refused after it. Runs in
   * the caller's transaction.
   */
  private async mayGetLinkLocked(userId: string, purpose: BackOfficeTokenPurpose, now: Date, addressedTo?: string): Promise<boolean> {
    const rows = returned(
      await this.manager.query(
        `SELECT (is_approved OR COALESCE(disabled_until <= $2::timestamptz, false))
                AND ($3::boolean OR directory_managed_at IS NULL)
                AND ($4::text IS NULL OR normalized_email = $4::text) AS may
           FROM backoffice_user WHERE id = $1 FOR NO KEY UPDATE`,
        [userId, now, purpose === 'change_email', addressedTo ?? null],
      ),
    ) as Array<{ may: boolean }>;
    return rows[0]?.may === true;
  }

  /**
   * Uses the link up. The user's row is locked first ({@link USER_ROW_FIRST}): a password reset or invite
   * acceptance goes on to write the user's row, and an email change or import update that had locked the row
   * between the two and then voided the user's links deadlocked with it (OWASP ASVS 4.0 1.11.3).
   */
  async consumeToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): Promise<boolean> {
    if (!isUuid(userId)) return false;
    const rows = await this.manager.query(
      `UPDATE backoffice_user_token SET used_at = $4
       WHERE user_id = ${USER_ROW_FIRST('$1')} AND purpose = $2 AND token_hash = $3 AND used_at IS NULL AND expires_at > $4
       RETURNING id`,
      [userId, purpose, tokenHash, now],
    );
    const updated = Array.isArray(rows[0]) ? rows[0] : rows;
    return updated.length === 1;
  }

  async isTokenLive(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): Promise<boolean> {
    if (!isUuid(userId)) return false;
    const rows = await this.manager.query(
      `SELECT 1 FROM backoffice_user_token
       WHERE user_id = $1 AND purpose = $2 AND token_hash = $3 AND used_at IS NULL AND expires_at > $4`,
      [userId, purpose, tokenHash, now],
    );
    return rows.length === 1;
  }

  async addToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, expiresAt: Date, now: Date, options: UserTokenIssueOptions = {}): Promise<boolean> {
    return this.insertTokenBeside(userId, purpose, tokenHash, expiresAt, now, null, options);
  }

  /**
   * Stores a token beside the user's live ones (the user's row locked first, as {@link insertOnlyLiveToken} does),
   * only while the user, read under that lock, may get a link (not disabled, or a timed disable that has ended; still
   * at `options.addressedTo`): a disable or email change (row and links in one transaction) is then either before it
   * and seen here, or after it and voids the link. Checked on the caller's earlier read, a disable committed in
   * between left the disabled user a live link.
   */
  private async insertTokenBeside(
    userId: string,
    purpose: BackOfficeTokenPurpose,
    tokenHash: string,
    expiresAt: Date,
    now: Date,
    newEmail: string | null,
    options: UserTokenIssueOptions,
  ): Promise<boolean> {
    if (!isUuid(userId)) return false;
    return this.transaction(async (store) => {
      if (!(await store.mayGetLinkLocked(userId, purpose, now, options.addressedTo))) return false;
      await store.withHandOverPending(
        `INSERT INTO backoffice_user_token (user_id, purpose, token_hash, expires_at, created_at, new_email, hand_over_pending) VALUES ($1, $2, $3, $4, $5, $6, true)`,
        [userId, purpose, tokenHash, expiresAt, now, newEmail],
        // Without migration 1732640000000 the token is stored as before it: a later hand-over voids it while still mailed.
        `INSERT INTO backoffice_user_token (user_id, purpose, token_hash, expires_at, created_at, new_email) VALUES ($1, $2, $3, $4, $5, $6)`,
        [userId, purpose, tokenHash, expiresAt, now, newEmail],
      );
      return true;
    });
  }

  /**
   * Runs `withColumn` (naming `hand_over_pending`), or `without` on a database that migration 1732640000000 has not
   * reached, in the transaction this store is bound to. The first try runs under a savepoint, so the failed statement
   * does not abort a transaction already open (25P02 for the rest of it); the answer is remembered for this store
   * (one failed statement, one warning), and later calls send only the statement that works.
   */
  private async withHandOverPending(withColumn: string, withParameters: unknown[], without: string, withoutParameters: unknown[]): Promise<void> {
    const column = this.handOverPendingColumn;
    if (column.state !== 'unknown') {
      await (column.state === 'present' ? this.manager.query(withColumn, withParameters) : this.manager.query(without, withoutParameters));
      return;
    }
    await this.manager.query('SAVEPOINT backoffice_column_probe');
    try {
      await this.manager.query(withColumn, withParameters);
      column.state = 'present';
    } catch (error) {
      if (!isUndefinedColumnError(error, HAND_OVER_PENDING)) throw error;
      await this.manager.query('ROLLBACK TO SAVEPOINT backoffice_column_probe');
      if (column.state === 'unknown') {
        new Logger('BackOfficeIdentity').warn(
          `BackOfficeIdentityModule: backoffice_user_token.${HAND_OVER_PENDING} is missing (migration ${BackOfficeIdentityTokenHandOverPending1732640000000.name} ` +
            'has not run): a hand-over voids the links whose email is still being sent, as before it, until it runs and the app restarts.',
        );
      }
      column.state = 'missing';
      await this.manager.query(without, withoutParameters);
    }
    await this.manager.query('RELEASE SAVEPOINT backoffice_column_probe');
  }

  /**
   * Voids the user's other live tokens of `purpose` while this one is live, in one transaction under the user's row
   * lock ({@link USER_ROW_FIRST}), so concurrent hand-overs run one after the other: the last one leaves its token the
   * one live link. Tokens stored by {@link addToken} whose hand-over has not run yet (their email still on its way) are
   * left live (`hand_over_pending`): when their email is accepted after this one, their own hand-over voids this token,
   * so the link of the email accepted last is the live one; but only while younger than
   * {@link BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS} (`created_at`): an older one belongs to a request that died before its
   * hand-over and is voided. The row lock is taken here, after the email was sent, never held across it.
   */
  async keepOnlyToken(userId: string, purpose: BackOfficeTokenPurpose, tokenHash: string, now: Date): Promise<boolean> {
    if (!isUuid(userId)) return false;
    return this.transaction(async (store) => {
      await store.manager.query(`SELECT ${USER_ROW_FIRST('$1')}`, [userId]);
      if (!(await store.isTokenLive(userId, purpose, tokenHash, now))) return false;
      await store.withHandOverPending(
        `UPDATE backoffice_user_token SET used_at = CASE WHEN token_hash = $3 THEN used_at ELSE $4 END, hand_over_pending = false
          WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND (token_hash = $3 OR NOT hand_over_pending OR created_at < $5)`,
        [userId, purpose, tokenHash, now, new Date(now.getTime() - BACKOFFICE_TOKEN_HAND_OVER_PENDING_MAX_AGE_MS)],
        `UPDATE backoffice_user_token SET used_at = $4 WHERE user_id = $1 AND purpose = $2 AND token_hash <> $3 AND used_at IS NULL`,
        [userId, purpose, tokenHash, now],
      );
      return true;
    });
  }

  /** The user's row is locked first ({@link USER_ROW_FIRST}; a no-op in the transactions that wrote it already). */
  async voidTokens(userId: string, purpose: BackOfficeTokenPurpose, now: Date): Promise<void> {
    await this.manager.query(
      `UPDATE backoffice_user_token SET used_at = $3 WHERE user_id = ${USER_ROW_FIRST('$1')} AND purpose = $2 AND used_at IS NULL`,
      [userId, purpose, now],
    );
  }

  async replaceEmailChangeToken(userId: string, tokenHash: string, newEmail: string, expiresAt: Date, now: Date, options: UserTokenIssueOptions = {}): Promise<boolean> {
    return this.insertOnlyLiveToken(userId, 'change_email', tokenHash, expiresAt, now, newEmail, { addressedTo: options.addressedTo });
  }

  async addEmailChangeToken(userId: string, tokenHash: string, newEmail: string, expiresAt: Date, now: Date, options: UserTokenIssueOptions = {}): Promise<boolean> {
    return this.insertTokenBeside(userId, 'change_email', tokenHash, expiresAt, now, newEmail, options);
  }

  /**
   * The user's row is locked first FOR UPDATE (the lock of the email write that follows a confirmation in the same
   * transaction: taken at once, not upgraded later; see {@link USER_ROW_FIRST}), so a password change that voids the
   * link either committed before (the link is not live) or waits for the confirmation's transaction.
   */
  async consumeEmailChangeToken(userId: string, tokenHash: string, now: Date): Promise<string | null> {
    if (!isUuid(userId)) return null;
    const rows = await this.manager.query(
      `UPDATE backoffice_user_token SET used_at = $4
        WHERE user_id = ${USER_ROW_FIRST('$1', 'UPDATE')} AND purpose = $2 AND token_hash = $3 AND used_at IS NULL AND expires_at > $4 RETURNING new_email`,
      [userId, 'change_email', tokenHash, now],
    );
    const row = returned(rows)[0] as { new_email: string | null } | undefined;
    return row?.new_email ?? null;
  }

  async prune(now: Date): Promise<{ loginAttempts: number; tokens: number }> {
    const dayAgo = new Date(now.getTime() - DAY_MS);
    const monthAgo = new Date(now.getTime() - 30 * DAY_MS);
    return {
      loginAttempts: (await deleteInBatches(
        this.manager,
        'backoffice_login_attempt',
        'username_hash',
        // A lock ends nobody can end for an unknown username (lockout.durationMinutes 0 locks until an admin unlocks,
        // and there is no account to unlock) goes 30 days after it began (a locked counter's updated_at is the lock's
        // start): it was kept for ever, so the table grew by one row per username an attacker locked. Only such a
        // lock (ending later than any timed lock can: durationMinutes is at most 365 days); a timed one is kept until
        // it ends, as a known user's is (no 401 where a known user answers 423).
        '(updated_at < $1 AND (lockout_end IS NULL OR lockout_end < $2)) OR (updated_at < $3 AND lockout_end > $4)',
        [dayAgo, now, monthAgo, new Date(now.getTime() + UNTIL_UNLOCKED_AFTER_MS)],
      )) + (await this.forgetStaleFailures(dayAgo, now)),
      // Links that a transaction holds (one voiding a user's links, under the user's row: USER_ROW_FIRST) are left
      // for the next prune: taking many users' links without their rows and waiting for one of them deadlocked with
      // a password change voiding the same user's links one purpose after another (OWASP ASVS 4.0 1.11.3).
      tokens: await deleteInBatches(this.manager, 'backoffice_user_token', 'id', 'expires_at < $1', [monthAgo]),
    };
  }

  /**
   * Resets the failed-attempt count of known users whose last write (a failure writes `updated_at`) is a day old and
   * who are not locked, the rule {@link prune} deletes unknown-username counters by: else a known account's count
   * outlived an unknown username's, and the guess after a day answered 423 for the account alone (OWASP ASVS 5.0
   * 6.3.8). A failure counted meanwhile writes `updated_at`, so PostgreSQL's re-check of the row leaves it counted.
   * In batches, in id order, skipping rows another transaction holds (`FOR UPDATE SKIP LOCKED`, as
   * {@link deleteInBatches} does; the next prune takes them): one statement over every such row locked them in scan
   * order and waited for a held one, which deadlocked with a request locking two users' rows in id order.
   */
  private async forgetStaleFailures(dayAgo: Date, now: Date): Promise<number> {
    const stale = 'access_failed_count > 0 AND updated_at < $1 AND (lockout_end IS NULL OR lockout_end < $2)';
    let total = 0;
    for (;;) {
      const rows: unknown[] = await this.manager.query(
        `UPDATE backoffice_user SET access_failed_count = 0
          WHERE id = ANY(ARRAY(SELECT id FROM backoffice_user WHERE ${stale} ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)) AND ${stale}
          RETURNING id`,
        [dayAgo, now, PRUNE_BATCH_SIZE],
      );
      const reset = returned(rows).length;
      total += reset;
      if (reset < PRUNE_BATCH_SIZE) return total;
    }
  }

  async getAuthenticatorKey(userId: string, provider: string): Promise<StoredAuthenticatorKey | null> {
    const rows = await this.manager.query(
      `SELECT encrypted_secret, confirmed_at, last_used_step FROM backoffice_user_authenticator WHERE user_id = $1 AND provider = $2`,
      [userId, provider],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      encryptedSecret: row.encrypted_secret,
      confirmed: row.confirmed_at !== null,
      lastUsedStep: row.last_used_step === null ? null : Number(row.last_used_step),
    };
  }

  /**
   * One statement: the user's row is locked (FOR NO KEY UPDATE, before the key's row: the order of the other writers)
   * and its 2FA flag read under that lock, so a confirmed key of a user whose 2FA an enable turned on meanwhile is
   * kept (false), and a key an enable confirms after this is the new one. No user: nothing written (false).
   */
  async setAuthenticatorKey(userId: string, provider: string, encryptedSecret: string, now: Date): Promise<boolean> {
    if (!isUuid(userId)) return false;
    const rows = await this.manager.query(
      `WITH owner AS (SELECT two_factor_enabled FROM backoffice_user WHERE id = $1 FOR NO KEY UPDATE)
       INSERT INTO backoffice_user_authenticator (user_id, provider, encrypted_secret, confirmed_at, last_used_step, created_at)
       SELECT $1, $2, $3, NULL, NULL, $4 FROM owner
       ON CONFLICT (user_id, provider) DO UPDATE SET encrypted_secret = $3, confirmed_at = NULL, last_used_step = NULL, created_at = $4
       WHERE backoffice_user_authenticator.confirmed_at IS NULL OR NOT (SELECT two_factor_enabled FROM owner)
       RETURNING user_id`,
      [userId, provider, encryptedSecret, now],
    );
    return returned(rows).length === 1;
  }

  async useAuthenticatorStep(userId: string, provider: string, step: number, confirm: boolean, now: Date, encryptedSecret?: string): Promise<boolean> {
    const rows = await this.manager.query(
      `UPDATE backoffice_user_authenticator
       SET last_used_step = $3, confirmed_at = CASE WHEN $4::boolean THEN $5::timestamptz ELSE confirmed_at END
       WHERE user_id = $1 AND provider = $2 AND (last_used_step IS NULL OR last_used_step < $3)
         AND (confirmed_at IS NULL) = $4::boolean AND ($6::text IS NULL OR encrypted_secret = $6::text)
       RETURNING user_id`,
      [userId, provider, step, confirm, now, encryptedSecret ?? null],
    );
    return (Array.isArray(rows[0]) ? rows[0] : rows).length === 1;
  }

  async removeAuthenticatorKey(userId: string, provider: string): Promise<void> {
    await this.manager.query(`DELETE FROM backoffice_user_authenticator WHERE user_id = $1 AND provider = $2`, [userId, provider]);
  }

  /**
   * The user's whole set of codes, replaced in one transaction that first locks the user's row FOR NO KEY UPDATE
   * ({@link USER_ROW_FIRST}, the user's row before its link rows). That serialises two replacements: without it the
   * second one's DELETE, waiting on the rows the first deleted, did not see the first one's new rows (its snapshot
   * began before they were committed) and kept them, so both sets worked (20 codes, a mix of the two). With
   * `whileTwoFactorEnabled` the flag is read under that lock: false, nothing written, once a disable (flag and codes
   * in one transaction under the same row) committed.
   */
  async replaceRecoveryCodes(userId: string, codeHashes: string[], now: Date, options: { whileTwoFactorEnabled?: boolean } = {}): Promise<boolean> {
    if (!isUuid(userId)) return false;
    return this.transaction(async (store) => {
      const rows = returned(
        await store.manager.query(`SELECT two_factor_enabled FROM backoffice_user WHERE id = $1 FOR NO KEY UPDATE`, [userId]),
      ) as Array<{ two_factor_enabled: boolean }>;
      if (options.whileTwoFactorEnabled && rows[0]?.two_factor_enabled !== true) return false;
      await store.manager.query(`DELETE FROM backoffice_user_recovery_code WHERE user_id = $1`, [userId]);
      for (const hash of codeHashes) {
        await store.manager.query(
          `INSERT INTO backoffice_user_recovery_code (user_id, code_hash, created_at) VALUES ($1, $2, $3)`,
          [userId, hash, now],
        );
      }
      return true;
    });
  }

  async redeemRecoveryCode(userId: string, codeHashes: string | readonly string[], now: Date): Promise<boolean> {
    const hashes = typeof codeHashes === 'string' ? [codeHashes] : [...codeHashes];
    const rows = await this.manager.query(
      `UPDATE backoffice_user_recovery_code SET used_at = $3
       WHERE user_id = $1 AND code_hash = ANY($2::text[]) AND used_at IS NULL RETURNING id`,
      [userId, hashes, now],
    );
    return (Array.isArray(rows[0]) ? rows[0] : rows).length >= 1;
  }

  async countRecoveryCodes(userId: string): Promise<number> {
    const rows = await this.manager.query(
      `SELECT count(*)::int AS n FROM backoffice_user_recovery_code WHERE user_id = $1 AND used_at IS NULL`,
      [userId],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async listPasskeys(userId: string): Promise<StoredPasskey[]> {
    if (!isUuid(userId)) return [];
    const rows: PasskeyRow[] = await this.manager.query(
      `SELECT * FROM backoffice_user_passkey WHERE user_id = $1 ORDER BY created_at, id`,
      [userId],
    );
    return rows.map(fromPasskeyRow);
  }

  async hasPasskeys(userId: string): Promise<boolean> {
    if (!isUuid(userId)) return false;
    const rows = await this.manager.query(`SELECT EXISTS (SELECT 1 FROM backoffice_user_passkey WHERE user_id = $1) AS found`, [userId]);
    return rows[0]?.found === true;
  }

  async findPasskeyByCredentialId(credentialId: string): Promise<StoredPasskey | null> {
    const rows: PasskeyRow[] = await this.manager.query(`SELECT * FROM backoffice_user_passkey WHERE credential_id = $1`, [credentialId]);
    return rows[0] ? fromPasskeyRow(rows[0]) : null;
  }

  /**
   * With `maxPerUser`, the user's row is locked first ({@link USER_ROW_FIRST}, its own statement so that the count
   * after it sees what a registration that held the lock committed), then the count and the insert are one statement.
   */
  async addPasskey(userId: string, passkey: NewStoredPasskey, now: Date, options: AddPasskeyOptions = {}): Promise<StoredPasskey> {
    const values = [userId, passkey.credentialId, Buffer.from(passkey.publicKey), passkey.counter, passkey.transports, passkey.name, passkey.deviceType, passkey.backedUp, now];
    const insert = `INSERT INTO backoffice_user_passkey (user_id, credential_id, public_key, counter, transports, name, device_type, backed_up, created_at)`;
    try {
      const { maxPerUser, refuseIf } = options;
      const rows: PasskeyRow[] =
        maxPerUser === undefined && refuseIf === undefined
          ? await this.manager.query(`${insert} VALUES ($1, $2, $3, $4, $5::varchar[], $6, $7, $8, $9) RETURNING *`, values)
          : await this.transaction(async (store) => {
              await store.manager.query(`SELECT ${USER_ROW_FIRST('$1')}`, [userId]);
              if (refuseIf) {
                // Read under the row lock a forced reset's password write also takes: that write committed (refused
                // here) or waits for this insert (and its removal of the passkeys then sees it).
                const locked = await store.findById(userId);
                if (!locked || refuseIf(locked)) throw new BackOfficePasskeyRefusedError();
              }
              return store.manager.query(
                `${insert} SELECT $1, $2, $3, $4, $5::varchar[], $6, $7, $8, $9
                 WHERE (SELECT count(*) FROM backoffice_user_passkey WHERE user_id = $1) < $10::int RETURNING *`,
                [...values, maxPerUser ?? 2147483647],
              );
            });
      if (!rows[0]) throw new BackOfficeTooManyPasskeysError();
      return fromPasskeyRow(rows[0]);
    } catch (error) {
      const code = (error as { driverError?: { code?: string } }).driverError?.code;
      if (error instanceof QueryFailedError && code === '23505') throw new BackOfficeDuplicatePasskeyError();
      throw error;
    }
  }

  async renamePasskey(userId: string, passkeyId: string, name: string, _now: Date): Promise<boolean> {
    if (!isUuid(userId) || !isUuid(passkeyId)) return false;
    const rows = await this.manager.query(
      `UPDATE backoffice_user_passkey SET name = $3 WHERE id = $2 AND user_id = $1 RETURNING id`,
      [userId, passkeyId, name],
    );
    return returned(rows).length === 1;
  }

  async removePasskey(userId: string, passkeyId: string, keepAtLeast = 0): Promise<boolean> {
    if (!isUuid(userId) || !isUuid(passkeyId)) return false;
    // The user's passkeys are locked first, so two concurrent removals cannot both pass the count.
    const rows = await this.manager.query(
      `WITH locked AS (SELECT id FROM backoffice_user_passkey WHERE user_id = $1 FOR UPDATE)
       DELETE FROM backoffice_user_passkey WHERE id = $2 AND user_id = $1 AND (SELECT count(*) FROM locked) > $3::int RETURNING id`,
      [userId, passkeyId, keepAtLeast],
    );
    return returned(rows).length === 1;
  }

  async removeAllPasskeys(userId: string): Promise<StoredPasskey[]> {
    if (!isUuid(userId)) return [];
    // One statement: all of the user's passkeys go, or (when it fails) none.
    const rows = await this.manager.query(`DELETE FROM backoffice_user_passkey WHERE user_id = $1 RETURNING *`, [userId]);
    return (returned(rows) as PasskeyRow[]).map(fromPasskeyRow).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
  }

  async recordPasskeyUse(passkeyId: string, newCounter: number, now: Date): Promise<boolean> {
    const rows = await this.manager.query(
      `UPDATE backoffice_user_passkey SET counter = $2, last_used_at = $3
       WHERE id = $1 AND (counter < $2 OR (counter = 0 AND $2 = 0)) RETURNING id`,
      [passkeyId, newCounter, now],
    );
    return returned(rows).length === 1;
  }

  async addLogin(userId: string, login: Omit<BackOfficeUserLogin, 'createdAt'>, now: Date): Promise<void> {
    try {
      await this.manager.query(
        `INSERT INTO backoffice_user_login (user_id, provider, provider_key, display_name, created_at) VALUES ($1, $2, $3, $4, $5)`,
        [userId, login.provider, login.providerKey, login.displayName, now],
      );
    } catch (error) {
      const code = (error as { driverError?: { code?: string } }).driverError?.code;
      if (error instanceof QueryFailedError && code === '23505') throw new BackOfficeDuplicateLoginError();
      throw error;
    }
  }

  async removeLogin(userId: string, provider: string, keepAtLeast = 0): Promise<boolean> {
    // The user's logins are locked first, so two concurrent removals cannot both pass the count.
    const rows = await this.manager.query(
      `WITH locked AS (SELECT id FROM backoffice_user_login WHERE user_id = $1 FOR UPDATE)
       DELETE FROM backoffice_user_login WHERE user_id = $1 AND provider = $2 AND (SELECT count(*) FROM locked) > $3::int RETURNING id`,
      [userId, provider, keepAtLeast],
    );
    return (Array.isArray(rows[0]) ? rows[0] : rows).length > 0;
  }

  async getLogins(userId: string): Promise<BackOfficeUserLogin[]> {
    if (!isUuid(userId)) return [];
    const rows: Array<{ provider: string; provider_key: string; display_name: string; created_at: Date }> = await this.manager.query(
      `SELECT provider, provider_key, display_name, created_at FROM backoffice_user_login WHERE user_id = $1 ORDER BY created_at, provider`,
      [userId],
    );
    return rows.map((r) => ({ provider: r.provider, providerKey: r.provider_key, displayName: r.display_name, createdAt: r.created_at }));
  }

  async findUserIdByLogin(provider: string, providerKey: string): Promise<string | null> {
    const rows = await this.manager.query(`SELECT user_id FROM backoffice_user_login WHERE provider = $1 AND provider_key = $2`, [provider, providerKey]);
    return rows[0]?.user_id ?? null;
  }

  async listGroups(): Promise<BackOfficeGroup[]> {
    const groups = await this.manager.getRepository(BackOfficeGroupEntity).find({ order: { alias: 'ASC' } });
    return groups.map(({ alias, name }) => ({ alias, name }));
  }

  async setGroups(userId: string, aliases: string[]): Promise<void> {
    await this.transaction(async (store) => {
      const user = await store.users.findOneOrFail({ where: { id: userId } });
      user.groups = await store.groupsByAlias(aliases);
      await store.users.save(user);
    });
  }

  withGroupLock<T>(alias: string, work: (store: TypeOrmBackOfficeUserStore) => Promise<T>): Promise<T> {
    return this.transaction(async (store) => {
      await store.manager.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`backoffice_group:${alias}`]);
      return work(store);
    });
  }

  /** Shared row locks on the users' groups and on `aliases`, in alias order ({@link lockGroupsForShare}). */
  lockGroupsOf(userIds: readonly string[], aliases: readonly string[] = []): Promise<void> {
    return lockGroupsForShare(this.manager, userIds, aliases);
  }

  async countApprovedInGroup(alias: string, options: { now?: Date; exceptUserId?: string } = {}): Promise<number> {
    const qb = this.users
      .createQueryBuilder('u')
      .innerJoin('u.groups', 'g', 'g.alias = :alias', { alias })
      .where('u.isApproved = true')
      .andWhere(`u.kind = 'person'`);
    if (options.now) {
      qb.andWhere('(u.lockoutEnd IS NULL OR u.lockoutEnd <= :now)', { now: options.now }).andWhere(
        `NOT ${PENDING_INVITEE_SQL('u')}`,
      );
    }
    if (isUuid(options.exceptUserId)) qb.andWhere('u.id <> :exceptUserId', { exceptUserId: options.exceptUserId });
    return qb.getCount();
  }

  /**
   * A page of people, newest first. The page's ids come from the `(created_at DESC, id)` index, then one query
   * loads those users with their groups; the text filter is a `LIKE` on the stored `search_text` column
   * (lower-cased username, email and name; trigram-indexed where `pg_trgm` is installed). `total` is exact
   * up to 10,000 matches and the planner's estimate beyond (`totalExact: false`).
   */
  async list(query: BackOfficeUserQuery): Promise<{ items: BackOfficeUser[]; total: number; totalExact: boolean }> {
    const qb = this.users.createQueryBuilder('u').select('u.id', 'id').where(`u.kind = 'person'`);
    if (query.filter) {
      qb.andWhere(`u.search_text LIKE lower(:f) ESCAPE '\\'`, { f: `%${escapeLike(query.filter)}%` });
    }
    const now = query.now;
    // As `deriveUserState`: a timed disable whose `until` has passed no longer counts as disabled.
    const enabled = `(u.isApproved OR COALESCE(u.disabledUntil <= :now, false))`;
    const unlocked = `${enabled} AND (u.lockoutEnd IS NULL OR u.lockoutEnd <= :now)`;
    switch (query.state) {
      case 'disabled':
        qb.andWhere(`NOT ${enabled}`, { now });
        break;
      case 'lockedOut':
        qb.andWhere(`${enabled} AND u.lockoutEnd > :now`, { now });
        break;
      case 'invited':
        qb.andWhere(unlocked, { now }).andWhere(PENDING_INVITEE_SQL('u'));
        break;
      case 'inactive':
        qb.andWhere(unlocked, { now }).andWhere(`u.lastLoginAt IS NULL AND NOT ${PENDING_INVITEE_SQL('u')}`);
        break;
      case 'active':
        qb.andWhere(unlocked, { now }).andWhere('u.lastLoginAt IS NOT NULL');
        break;
    }
    const [countSql, countParams] = qb.getQueryAndParameters();
    const ids: string[] = (await qb.orderBy('u.createdAt', 'DESC').addOrderBy('u.id').offset(query.skip).limit(query.take).getRawMany()).map((r) => r.id);
    const entities = ids.length ? await this.users.find({ where: { id: In(ids) }, relations: { groups: true } }) : [];
    const order = new Map(ids.map((id, i) => [id, i]));
    entities.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
    const total = await cappedCount(this.manager, countSql, countParams);
    return { items: entities.map(toUser), total: total.value, totalExact: total.exact };
  }
}
