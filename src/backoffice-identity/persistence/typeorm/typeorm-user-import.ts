import type { EntityManager } from 'typeorm';
import { PENDING_INVITEE_SQL } from '../../users/backoffice-user.js';
import { lockGroupsForShare } from './group-share-locks.js';
import { importUpdateTarget, type ImportConflictMode, type ImportedUserRow, type ImportRowOutcome } from '../../users/import/user-import.js';
import { renamesDirectoryManagedUser } from '../../common/lookup-normalizer.js';

interface ExistingUser {
  id: string;
  normalized_email: string;
  normalized_username: string;
}

interface ImportWriteOptions {
  onConflict: ImportConflictMode;
  protectedGroup: string;
  /**
   * Asked about the existing users the batch is to overwrite (their ids, with their rows' indexes), once their rows
   * are locked and before anything of them is written; a throw rolls the batch back. Answers the indexes of the rows
   * to refuse as `directory_managed` (the caller's rule, beside the stored mark read here).
   */
  checkTargets?: (targets: ReadonlyArray<{ id: string; index: number }>) => Promise<ReadonlySet<number>>;
}

/**
 * SQL of "this person can sign in now" (a person, not an API user; approved, not locked out, not waiting for an
 * invite to be accepted): only such admins keep the back office administrable, as in the manager's last-admin rule.
 */
const canSignInNow = (u: string, now: string) =>
  `${u}.kind = 'person' AND ${u}.is_approved AND (${u}.lockout_end IS NULL OR ${u}.lockout_end <= ${now}::timestamptz)
   AND NOT ${PENDING_INVITEE_SQL(u)}`;

const rowsOf = <T>(result: unknown): T[] => (Array.isArray((result as unknown[])[0]) ? (result as T[][])[0] : (result as T[]));

/**
 * Writes one batch of imported users with a handful of statements whatever its size: one lookup of the
 * existing users, one bulk insert (`unnest`), one bulk group insert, and one update per overwritten user.
 * Runs inside the caller's transaction.
 */
export async function writeImportedUsers(manager: EntityManager, rows: ImportedUserRow[], options: ImportWriteOptions, now: Date): Promise<ImportRowOutcome[]> {
  const outcomes: ImportRowOutcome[] = new Array(rows.length);
  const existing = await findExisting(manager, rows);
  const byEmail = new Map(existing.map((u) => [u.normalized_email, u]));
  const byUsername = new Map(existing.map((u) => [u.normalized_username, u]));
  const inserts: number[] = [];
  const updates: Array<{ index: number; target: ExistingUser }> = [];
  rows.forEach((row, index) => {
    const sameEmail = byEmail.get(row.normalizedEmail);
    const sameUsername = byUsername.get(row.normalizedUsername);
    const target = importUpdateTarget(sameEmail, sameUsername);
    if (!sameEmail && !sameUsername) inserts.push(index);
    else if (options.onConflict === 'skip') outcomes[index] = 'skipped';
    else if (options.onConflict === 'update' && target) updates.push({ index, target });
    else outcomes[index] = sameEmail ? 'duplicate_email' : 'duplicate_username';
  });

  // The groups the batch gives, locked FOR SHARE before any user is written (with the targets' groups below when the
  // batch overwrites users, else here), so none of them can be deleted before the commit.
  const given = new Set([...inserts, ...updates.map((u) => u.index)].flatMap((i) => rows[i].groups));
  if (updates.length === 0) await lockGroupsForShare(manager, [], [...given]);
  // The rows of the users to overwrite, locked in id order before any is written (USER_ROW_FIRST: the user's row
  // before its links; FOR UPDATE: email and username are unique), after the protected group's lock (the manager's
  // order: group lock, then user rows). Taken in the records' order, two imports listing the same users in different
  // orders waited on each other in a cycle: PostgreSQL aborted one (40P01).
  // The targets marked directory-managed, with their usernames as locked (the ones the refusal below compares with).
  const directoryManaged = new Map<string, { directoryManagedAt: Date; username: string }>();
  // The rows the caller refuses as directory_managed (the user manager's renamesDirectoryManaged, asked about the locked target).
  let refusedByCaller: ReadonlySet<number> = new Set();
  if (updates.length > 0) {
    await lockProtectedGroup(manager, options.protectedGroup);
    // Before the targets' rows (the group store's delete locks its groups, then the members' rows it moves): the
    // groups the targets are in and the ones the batch gives, so the re-check of the targets below waits for a group
    // edit under way and sees the permissions it gave (OWASP ASVS 4.0 4.1.3, 5.0 8.2.1). With or without that re-check
    // (an admin's import too): a delete moving a target's group into one the batch gives held both groups and waited
    // for the target's row this import held, which waited for the group's row (a deadlock, 503).
    await lockGroupsForShare(manager, updates.map((u) => u.target.id), [...given]);
    const locked = rowsOf<{ id: string; directory_managed_at: Date | null; username: string }>(
      await manager.query(`SELECT id, directory_managed_at, username FROM backoffice_user WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, [
        updates.map((u) => u.target.id),
      ]),
    );
    for (const row of locked) if (row.directory_managed_at != null) directoryManaged.set(row.id, { directoryManagedAt: row.directory_managed_at, username: row.username });
    // Every target as it is now, under the admin lock and its row lock (what a write making it an admin or changing
    // its groups waits for) and before this batch replaces its groups: a user made an admin (or given a group with a
    // permission the caller lacks) after the caller's first check is no longer the caller's to overwrite (OWASP ASVS
    // 4.0 4.1.3, 5.0 15.4.2). The re-check after the writes sees only the groups the record gives.
    if (options.checkTargets) refusedByCaller = await options.checkTargets(updates.map(({ index, target }) => ({ id: target.id, index })));
  }
  // A group deleted after the caller checked the records (DELETE /groups/:alias) and before the locks above: the records
  // naming it are answered as naming an unknown group and nothing of them is written (the membership insert's join
  // dropped it silently, or its foreign key failed: 500), as a serial import answers.
  const gone = await goneGroups(manager, given);
  const namesGone = (index: number) => {
    if (!rows[index].groups.some((alias) => gone.has(alias))) return false;
    outcomes[index] = 'unknown_group';
    return true;
  };
  // A record with a password hash for a directory-managed user (LDAP: `directory_managed_at`, read under the row lock
  // that marking writes under) would give a user removed from the directory a local password: refused, nothing of
  // it written (OWASP ASVS 4.0 V2.5). So is one giving it another username (renamesDirectoryManagedUser, on the username read
  // under that lock): a password checker keyed by username (LDAP `uid={username}`) would then sign the account in with
  // another directory account's password (an account takeover, whoever imports: a step-up does not make it the
  // directory's). Without either the record updates the profile as for anyone. So is a record the caller refuses
  // (checkTargets: the importer asks the user manager's renamesDirectoryManaged, and isDirectoryManaged for a passwordHash, so a host manager's isDirectoryManaged
  // decides too; the stored mark above stays the store's own defence). Refused before the last-admin count: a
  // refused record demotes no one, so it must not use up another record's allowance.
  const writable = updates.filter(({ index, target }) => {
    if (namesGone(index)) return false;
    const managed = directoryManaged.get(target.id);
    const refusedByMark = managed !== undefined && (rows[index].passwordHash !== null || renamesDirectoryManagedUser(managed, rows[index].username));
    if (!refusedByMark && !refusedByCaller.has(index)) return true;
    outcomes[index] = 'directory_managed';
    return false;
  });
  const groupPairs: Array<[string, string]> = [];
  // In one order (the lookup key): two imports inserting the same new users wait for each other, never in a cycle.
  const creatable = inserts.filter((index) => !namesGone(index));
  creatable.sort((a, b) => (rows[a].normalizedEmail < rows[b].normalizedEmail ? -1 : rows[a].normalizedEmail > rows[b].normalizedEmail ? 1 : 0));
  const insertedIds = await insertUsers(manager, creatable.map((i) => rows[i]), now);
  for (const index of creatable) {
    const id = insertedIds.get(rows[index].normalizedEmail);
    // Taken by a concurrent writer between the lookup and the insert.
    if (!id) outcomes[index] = options.onConflict === 'skip' ? 'skipped' : 'duplicate_email';
    else {
      outcomes[index] = 'created';
      for (const alias of rows[index].groups) groupPairs.push([id, alias]);
    }
  }
  const allowed = await withoutLastProtectedMember(manager, writable, rows, options.protectedGroup, outcomes, now);
  allowed.sort((a, b) => (a.target.id < b.target.id ? -1 : a.target.id > b.target.id ? 1 : 0));
  for (const { index, target } of allowed) {
    await updateUser(manager, target.id, rows[index], now);
    outcomes[index] = 'updated';
    for (const alias of rows[index].groups) groupPairs.push([target.id, alias]);
  }
  if (allowed.length > 0) {
    await manager.query(`DELETE FROM backoffice_user_group WHERE user_id = ANY($1::uuid[])`, [allowed.map((u) => u.target.id)]);
  }
  if (groupPairs.length > 0) {
    await manager.query(
      `INSERT INTO backoffice_user_group (user_id, group_id)
       SELECT x.u, g.id FROM unnest($1::uuid[], $2::varchar[]) AS x(u, a) JOIN backoffice_group g ON g.alias = x.a
       ON CONFLICT DO NOTHING`,
      [groupPairs.map((p) => p[0]), groupPairs.map((p) => p[1])],
    );
  }
  return outcomes;
}

/** The aliases of `given` with no group now (a new statement after the groups' locks: it sees a delete committed meanwhile). */
async function goneGroups(manager: EntityManager, given: ReadonlySet<string>): Promise<Set<string>> {
  if (given.size === 0) return new Set();
  const found = rowsOf<{ alias: string }>(await manager.query(`SELECT alias FROM backoffice_group WHERE alias = ANY($1::text[])`, [[...given]]));
  const existing = new Set(found.map((g) => g.alias));
  return new Set([...given].filter((alias) => !existing.has(alias)));
}

async function findExisting(manager: EntityManager, rows: ImportedUserRow[]): Promise<ExistingUser[]> {
  const result = await manager.query(
    `SELECT u.id, u.normalized_email, u.normalized_username
     FROM backoffice_user u WHERE u.normalized_email = ANY($1::varchar[]) OR u.normalized_username = ANY($2::varchar[])`,
    [rows.map((r) => r.normalizedEmail), rows.map((r) => r.normalizedUsername)],
  );
  return rowsOf<ExistingUser>(result);
}

/** Inserts in one statement; answers normalized email -> id of the rows actually inserted. */
async function insertUsers(manager: EntityManager, rows: ImportedUserRow[], now: Date): Promise<Map<string, string>> {
  if (rows.length === 0) return new Map();
  const column = <K extends keyof ImportedUserRow>(key: K) => rows.map((r) => r[key]);
  const result = await manager.query(
    `INSERT INTO backoffice_user (username, normalized_username, email, normalized_email, name, password_hash, security_stamp,
                                  is_approved, created_at, last_login_at, updated_at)
     SELECT x.*, $11::timestamptz FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::text[],
                                              $7::varchar[], $8::boolean[], $9::timestamptz[], $10::timestamptz[])
       AS x(username, normalized_username, email, normalized_email, name, password_hash, security_stamp, is_approved, created_at, last_login_at)
     ON CONFLICT DO NOTHING
     RETURNING id, normalized_email`,
    [
      column('username'),
      column('normalizedUsername'),
      column('email'),
      column('normalizedEmail'),
      column('name'),
      column('passwordHash'),
      column('securityStamp'),
      rows.map((r) => r.isApproved !== false), // a record without isApproved makes an approved user
      column('createdAt'),
      column('lastLoginAt'),
      now,
    ],
  );
  return new Map(rowsOf<{ id: string; normalized_email: string }>(result).map((r) => [r.normalized_email, r.id]));
}

/**
 * The updates that may run: one that takes a member who can sign in now out of `protectedGroup` (disables them
 * or drops the group) only while another such member remains, counted under the group's advisory lock (the same
 * lock as the manager's last-admin check; the caller holds it, {@link lockProtectedGroup}). The others are marked `last_admin`. Every batch with updates takes the
 * lock and reads its targets again under it, whatever the first lookup said of them, as the manager re-reads the
 * user it changes: judged on that lookup, a target that was disabled (or out of the group) then was not counted,
 * so an import demoting it once it had been enabled, while a request took the other admin out counting it, left
 * no admin.
 */
async function withoutLastProtectedMember(
  manager: EntityManager,
  updates: Array<{ index: number; target: ExistingUser }>,
  rows: ImportedUserRow[],
  protectedGroup: string,
  outcomes: ImportRowOutcome[],
  now: Date,
): Promise<Array<{ index: number; target: ExistingUser }>> {
  if (updates.length === 0) return updates;
  const members = rowsOf<{ id: string }>(
    await manager.query(
      `SELECT u.id FROM backoffice_user u WHERE u.id = ANY($1::uuid[]) AND ${canSignInNow('u', '$3')}
         AND EXISTS (SELECT 1 FROM backoffice_user_group ug JOIN backoffice_group g ON g.id = ug.group_id WHERE ug.user_id = u.id AND g.alias = $2)`,
      [updates.map((u) => u.target.id), protectedGroup, now],
    ),
  );
  const demotableNow = new Set(members.map((m) => m.id));
  const demotes = (u: { index: number; target: ExistingUser }) =>
    demotableNow.has(u.target.id) && !(rows[u.index].isApproved !== false && rows[u.index].groups.includes(protectedGroup));
  if (!updates.some(demotes)) return updates;
  const counted = rowsOf<{ n: number }>(
    await manager.query(
      `SELECT count(*)::int AS n FROM backoffice_user u JOIN backoffice_user_group ug ON ug.user_id = u.id
       JOIN backoffice_group g ON g.id = ug.group_id WHERE g.alias = $1 AND ${canSignInNow('u', '$2')}`,
      [protectedGroup, now],
    ),
  );
  let remaining = Number(counted[0]?.n ?? 0);
  return updates.filter((update) => {
    if (!demotes(update)) return true;
    if (remaining > 1) {
      remaining--;
      return true;
    }
    outcomes[update.index] = 'last_admin';
    return false;
  });
}

/** The protected group's advisory lock (the manager's `withGroupLock`), held to the end of the caller's transaction. */
async function lockProtectedGroup(manager: EntityManager, protectedGroup: string): Promise<void> {
  await manager.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`backoffice_group:${protectedGroup}`]);
}

/**
 * Overwrites an existing user's profile (and its hash when the record has one; its `isApproved` when the record
 * has one, else it keeps its own); a new security stamp ends its sessions. When the hash or the email (a variant
 * of the same lookup key) changed or the user was disabled, its outstanding password-reset, invite and email-change links are voided, as the manager's password
 * change, email change and disable do (OWASP ASVS 4.0 V2.5, 3.3.3); a disabled user's API bearer tokens are revoked (3.3.1), so
 * enabling it again never revives them. All in the caller's transaction.
 *
 * The record's `isApproved` enables or disables for good, as the manager's `setApproved` without an `until` does
 * (`POST /users/:id/enable`, or `/disable` without `until`): whatever the user's disable, it clears `disabled_until`,
 * and a disable voids the reset, invite and email-change links. Kept, an `until` (past, or of a timed disable still
 * running) had the user's next sign-in after it enable again (`liftExpiredDisable`, no step-up) a user the import
 * disabled, and the user list showed it enabled (OWASP ASVS 4.0 1.11.3, 5.0 15.4.2). `disabled_reason` is cleared by
 * an enable and by a disable that changes the user's state (an approved user, or a timed disable made one for good);
 * a user already disabled for good keeps the reason an admin gave (a re-imported export's `isApproved: false` is a
 * lossless round trip).
 */
async function updateUser(manager: EntityManager, id: string, row: ImportedUserRow, now: Date): Promise<void> {
  const result = await manager.query(
    `WITH old AS (SELECT password_hash, email, $8::boolean IS NOT NULL AS for_good,
                         $8::boolean IS NOT NULL AND ($8::boolean OR is_approved OR disabled_until IS NOT NULL) AS new_disable
                  FROM backoffice_user WHERE id = $1 FOR UPDATE)
     UPDATE backoffice_user u SET username = $2, normalized_username = $3, email = $4, name = $5,
       password_hash = COALESCE($6, u.password_hash), security_stamp = $7, is_approved = COALESCE($8, u.is_approved),
       disabled_until = CASE WHEN old.for_good THEN NULL ELSE u.disabled_until END,
       disabled_reason = CASE WHEN old.new_disable THEN NULL ELSE u.disabled_reason END,
       last_password_change_at = CASE WHEN $6::text IS NOT NULL AND $6::text IS DISTINCT FROM old.password_hash THEN $10 ELSE u.last_password_change_at END,
       password_reset_forced_at = CASE WHEN $6::text IS NOT NULL THEN NULL ELSE u.password_reset_forced_at END,
       last_login_at = COALESCE($9, u.last_login_at), updated_at = $10
     FROM old WHERE u.id = $1
     RETURNING (u.password_hash IS DISTINCT FROM old.password_hash) AS hash_changed, (u.email IS DISTINCT FROM old.email) AS email_changed,
               old.for_good AND NOT u.is_approved AS disabled, u.is_approved AS approved`,
    [id, row.username, row.normalizedUsername, row.email, row.name, row.passwordHash, row.securityStamp, row.isApproved, row.lastLoginAt, now],
  );
  const written = rowsOf<{ hash_changed: boolean; email_changed: boolean; disabled: boolean; approved: boolean }>(result)[0];
  if (!written) return;
  if (written.hash_changed || written.email_changed || written.disabled) {
    await manager.query(
      `UPDATE backoffice_user_token SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL AND purpose IN ('password_reset', 'invite', 'change_email')`,
      [id, now],
    );
  }
  if (!written.approved) {
    await manager.query(`UPDATE backoffice_access_token SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, [id, now]);
  }
}
