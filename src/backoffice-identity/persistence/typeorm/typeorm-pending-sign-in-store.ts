import { Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { requireHostDataSource } from './backoffice-data-source.provider.js';
import { DataSource } from 'typeorm';
import { isUuid } from '../../common/ids.js';
import { sha256Hex } from '../../common/crypto.js';
import { isUndefinedColumnError } from '../../common/database-errors.js';
import { BackOfficeMigrationRequiredError } from '../../common/migration-required.error.js';
import { BackOfficeIdentityExternalLoginStateUser1732620000000 } from './migrations/1732620000000-backoffice-identity-external-login-state-user.js';
import { deleteInBatches, returned } from './sql-results.js';
import type {
  BackOfficePendingSignIn,
  BackOfficePendingSignInKind,
  BackOfficePendingSignInMatch,
  BackOfficePendingSignInStore,
} from '../../sign-in/pending-sign-in-store.interface.js';
import { livePerUserCap } from '../../sign-in/pending-sign-in-store.interface.js';

const DAY_MS = 86_400_000;

/** How one kind of pending step maps onto its table (the tables predate the port; the columns differ). */
interface KindTable {
  table: string;
  key: string;
  purpose: string | null;
  browserHash: string | null;
  userId: string | null;
  securityStamp: string | null;
  payload: string | null;
  /**
   * The user column came with a later migration: it is read through the row's JSON (null while absent), so a
   * database that migration has not reached yet (run after the deploy, or undone) still serves the steps without one.
   */
  lateUserId?: true;
}

const TABLES: Record<BackOfficePendingSignInKind, KindTable> = {
  two_factor: {
    table: 'backoffice_two_factor_challenge',
    key: 'token_hash',
    purpose: 'first_factor',
    browserHash: null,
    userId: 'user_id',
    securityStamp: 'security_stamp',
    payload: 'external_login',
  },
  external_login: {
    table: 'backoffice_external_login_state',
    key: 'state_hash',
    purpose: 'provider',
    browserHash: 'browser_hash',
    // Since migration 1732620000000; null for a sign-in's state (a link's or step-up's has the user).
    userId: 'user_id',
    securityStamp: null,
    payload: 'payload',
    lateUserId: true,
  },
  passkey: {
    table: 'backoffice_passkey_challenge',
    key: 'challenge_hash',
    purpose: 'purpose',
    browserHash: null,
    userId: 'user_id',
    securityStamp: null,
    payload: null,
  },
};

const FIELDS = ['purpose', 'browserHash', 'userId', 'securityStamp', 'payload'] as const;

/** The row id of a step's slot ({@link BackOfficePendingSignIn.slot}): 128 bits of SHA-256 of the kind and slot, as a uuid. */
function slotId(kind: BackOfficePendingSignInKind, slot: string): string {
  const h = sha256Hex(`${kind}:${slot}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The SQL that reads a field's column (see {@link KindTable.lateUserId}), or null when the kind has none. */
function columnOf(t: KindTable, field: (typeof FIELDS)[number]): string | null {
  if (field === 'userId' && t.lateUserId) return `(to_jsonb(${t.table}) ->> '${t.userId}')::uuid`;
  return t[field];
}

/** The select list of a kind, aliased to the port's field names. */
function selectList(t: KindTable): string {
  const column = (field: (typeof FIELDS)[number]) => `${columnOf(t, field) ?? 'NULL'} AS "${field}"`;
  return [`${t.key} AS "keyHash"`, ...FIELDS.map(column), `expires_at AS "expiresAt"`].join(', ');
}


/**
 * Pending sign-in steps in PostgreSQL: one table per kind (`backoffice_two_factor_challenge`,
 * `backoffice_external_login_state`, `backoffice_passkey_challenge`), used up with one conditional `UPDATE`
 * each, so exactly one concurrent caller wins.
 */
@Injectable()
export class TypeOrmBackOfficePendingSignInStore implements BackOfficePendingSignInStore {
  private readonly logger = new Logger('BackOfficeIdentity');
  /** Whether the missing state user column was logged already (once per store: every link would repeat it). */
  private stateUserMissingLogged = false;

  constructor(@Optional() @InjectDataSource() private readonly dataSource: DataSource) {
    requireHostDataSource(dataSource);
  }

  /**
   * @throws BackOfficeMigrationRequiredError for a state with a user (a link's or step-up's) on a database without
   * migration 1732620000000 (the state's `user_id`; 503 `migration_required` over HTTP, logged once naming it).
   */
  async create(pending: BackOfficePendingSignIn, now: Date): Promise<void> {
    try {
      await this.insert(pending, now);
    } catch (error) {
      const t = TABLES[pending.kind];
      if (!t.lateUserId || pending.userId === null || !isUndefinedColumnError(error, t.userId!)) throw error;
      const migrationRequired = new BackOfficeMigrationRequiredError(BackOfficeIdentityExternalLoginStateUser1732620000000.name, `${t.table}.${t.userId}`, { cause: error });
      if (!this.stateUserMissingLogged) {
        this.stateUserMissingLogged = true;
        this.logger.error(
          `BackOfficeIdentityModule: ${migrationRequired.message} POST /auth/external/:name/link and /reauthenticate answer 503 migration_required until it runs ` +
            '(`migrationsRun: true` in TypeOrmModule.forRoot(), or the TypeORM CLI); sign-ins through a provider are not affected.',
        );
      }
      throw migrationRequired;
    }
  }

  private async insert(pending: BackOfficePendingSignIn, now: Date): Promise<void> {
    const t = TABLES[pending.kind];
    // A step without a user leaves the user column out (its default is null): an OpenID Connect sign-in still stores
    // its state on a database that migration 1732620000000 (the state's user_id) has not reached yet.
    // A slot's row always gets its user column (null too), so a takeover writes the new step's owner over the old one's.
    const slotted = pending.kind === 'passkey' && pending.slot !== undefined;
    const fields = FIELDS.filter((f) => t[f] && !(f === 'userId' && pending.userId === null && !slotted));
    const columns = [t.key, ...fields.map((f) => t[f]!), 'expires_at', 'created_at'];
    const values = [pending.keyHash, ...fields.map((f) => pending[f]), pending.expiresAt, now];
    let insert = `INSERT INTO ${t.table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`;
    if (slotted) {
      // One row per slot: its id is derived from the slot, and a new step of the slot takes that row over (in one
      // statement, so of concurrent creations one row is left: the last one's), only when the row is of the same user
      // and purpose: a slot is one pending sign-in's, so another owner's step is a caller's error, refused, not a takeover.
      insert = `INSERT INTO ${t.table} AS t (id, ${columns.join(', ')}) VALUES ($${values.length + 1}::uuid, ${columns.map((_, i) => `$${i + 1}`).join(', ')})
        ON CONFLICT (id) DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, used_at = NULL
        WHERE t.${t.userId} IS NOT DISTINCT FROM EXCLUDED.${t.userId} AND t.${t.purpose} = EXCLUDED.${t.purpose}
        RETURNING t.id`;
      values.push(slotId(pending.kind, pending.slot!));
    }
    const run = async (query: (sql: string, parameters: unknown[]) => Promise<unknown>) => {
      const rows = await query(insert, values);
      if (slotted && Array.isArray(rows) && rows.length === 0) {
        throw new Error(`pending sign-in slot ${JSON.stringify(pending.slot)} is held by a step of another user or purpose`);
      }
    };
    const cap = livePerUserCap(pending);
    if (cap === null) {
      await run((sql, parameters) => this.dataSource.query(sql, parameters));
      return;
    }
    // A user's live steps of one kind and purpose are capped (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1): under a transaction
    // lock of that user and purpose (creations of other users and purposes do not wait), so concurrent creations see
    // each other's rows and the count never passes the cap; the new row is kept, then the newest others.
    await this.dataSource.transaction(async (manager) => {
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`${t.table}:${pending.userId}:${pending.purpose}`]);
      await run((sql, parameters) => manager.query(sql, parameters));
      await manager.query(
        `DELETE FROM ${t.table} WHERE id IN (
           SELECT id FROM ${t.table}
            WHERE ${t.userId} = $1 AND ${t.purpose} = $2 AND ${t.key} <> $3 AND used_at IS NULL AND expires_at > $4
            ORDER BY created_at DESC, id DESC OFFSET $5)`,
        [pending.userId, pending.purpose, pending.keyHash, now, cap - 1],
      );
    });
  }

  async find(kind: BackOfficePendingSignInKind, keyHash: string, now: Date): Promise<BackOfficePendingSignIn | null> {
    const t = TABLES[kind];
    const rows = await this.dataSource.query(
      `SELECT ${selectList(t)} FROM ${t.table} WHERE ${t.key} = $1 AND used_at IS NULL AND expires_at > $2`,
      [keyHash, now],
    );
    return rows[0] ? this.toPending(kind, rows[0]) : null;
  }

  async consume(
    kind: BackOfficePendingSignInKind,
    keyHash: string,
    now: Date,
    match: BackOfficePendingSignInMatch = {},
  ): Promise<BackOfficePendingSignIn | null> {
    const t = TABLES[kind];
    const params: unknown[] = [keyHash, now];
    const conditions = [`${t.key} = $1`, 'used_at IS NULL', 'expires_at > $2'];
    for (const field of ['purpose', 'browserHash'] as const) {
      if (match[field] === undefined) continue;
      if (!t[field]) return null;
      params.push(match[field]);
      conditions.push(`${t[field]} = $${params.length}`);
    }
    if (match.userId !== undefined) {
      if (match.userId !== null && !isUuid(match.userId)) return null;
      if (!t.userId) return null;
      params.push(match.userId);
      conditions.push(`${columnOf(t, 'userId')} IS NOT DISTINCT FROM $${params.length}::uuid`);
    }
    if (match.slot !== undefined) {
      // A slot's step is the row whose id the slot gives (see create); only passkey challenges have one.
      if (kind !== 'passkey') return null;
      params.push(slotId(kind, match.slot));
      conditions.push(`id = $${params.length}::uuid`);
    }
    const rows = await this.dataSource.query(
      `UPDATE ${t.table} SET used_at = $2 WHERE ${conditions.join(' AND ')} RETURNING ${selectList(t)}`,
      params,
    );
    const row = returned(rows)[0] as Record<string, unknown> | undefined;
    return row ? this.toPending(kind, row) : null;
  }

  /**
   * Passkey challenges and external login states go once they expire (nothing reads an expired one: `find` and
   * `consume` answer it as unknown), so the tables anonymous and signed-in callers fill stay small (OWASP ASVS 4.0
   * 11.1.4 / 5.0 2.4.1); two-factor steps a week after.
   */
  async prune(now: Date): Promise<{ twoFactorChallenges: number; passkeyChallenges: number; externalLoginStates: number }> {
    const weekAgo = new Date(now.getTime() - 7 * DAY_MS);
    return {
      twoFactorChallenges: await deleteInBatches(this.dataSource, 'backoffice_two_factor_challenge', 'id', 'expires_at < $1', [weekAgo]),
      passkeyChallenges: await deleteInBatches(this.dataSource, 'backoffice_passkey_challenge', 'id', 'expires_at <= $1', [now]),
      externalLoginStates: await deleteInBatches(this.dataSource, 'backoffice_external_login_state', 'id', 'expires_at <= $1', [now]),
    };
  }

  private toPending(kind: BackOfficePendingSignInKind, row: Record<string, unknown>): BackOfficePendingSignIn {
    return {
      kind,
      keyHash: String(row.keyHash).trim(),
      purpose: (row.purpose as string | null) ?? '',
      browserHash: (row.browserHash as string | null) ?? null,
      userId: (row.userId as string | null) ?? null,
      securityStamp: (row.securityStamp as string | null) ?? null,
      payload: (row.payload as string | null) ?? null,
      expiresAt: new Date(row.expiresAt as Date),
    };
  }
}
