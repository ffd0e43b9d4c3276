import type { BackOfficeListPage } from '../../common/list-page.js';
import { Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { requireHostDataSource } from './backoffice-data-source.provider.js';
import { DataSource, IsNull } from 'typeorm';
import { isUuid } from '../../common/ids.js';
import type { BackOfficeAuditStore } from '../../audit/backoffice-audit-store.interface.js';
import { MAX_ANNOUNCED_SECURITY_STAMPS, type BackOfficeSession, type BackOfficeSessionChanges, type BackOfficeSessionStore, type BackOfficeSignInWrites } from '../../sessions/session-store.interface.js';
import type { BackOfficeUser } from '../../users/backoffice-user.js';
import type { BackOfficeUserStore } from '../../users/stores/user-store.interface.js';
import { BackOfficeSessionEntity } from './entities/backoffice-session.entity.js';
import { preparedQuery } from './prepared-query.js';
import { AUDIT_INSERT_COLUMNS, auditInsertValues, TypeOrmBackOfficeAuditStore } from './typeorm-audit-store.js';
import { deleteInBatches, returned } from './sql-results.js';
import { aliases, jsonDate, TypeOrmBackOfficeUserStore, USER_GROUPS_JOIN, userFromRow, type UserJson, type UserRow } from './typeorm-user-store.js';

const WEEK_MS = 7 * 86_400_000;

/** `backoffice_session` as `row_to_json(s)` gives it (one field for the driver to parse; timestamps as ISO text). */
interface SessionJson {
  id: string;
  user_id: string;
  token_hash: string;
  security_stamp: string;
  next_security_stamps?: string[] | null;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  reauthenticated_at: string | null;
  revoked_at: string | null;
  ip: string | null;
  user_agent: string | null;
  two_factor_setup_only: boolean;
}

interface SessionRow {
  s: SessionJson;
  login_providers?: string[] | string;
}

/** The providers of the user's linked external logins, as `GET /auth/me` lists them (oldest link first). */
const LOGIN_PROVIDERS_COLUMN = `ARRAY(SELECT l.provider FROM backoffice_user_login l WHERE l.user_id = u.id
  ORDER BY l.created_at, l.provider) AS login_providers`;

/**
 * The session row by its token hash with its user (null when none) and the user's groups, and with `logins` the
 * providers of {@link LOGIN_PROVIDERS_COLUMN}, as ONE `json` value `{ s, u, groups[, login_providers] }` (the keys
 * {@link sessionFromRow} and {@link userFromRow} read): one field for the driver to describe and parse on every
 * request instead of three or four (measured with 15,000 executions, old and new statement interleaved, three
 * times: `pg` client CPU 4.3 to 4.8 µs less per execution, PostgreSQL backend CPU the same).
 */
function sessionWithUserSql(extraColumns: string): string {
  return `SELECT row_to_json(r) AS r FROM (SELECT s, u, ug.groups${extraColumns}
    FROM backoffice_session s LEFT JOIN backoffice_user u ON u.id = s.user_id ${USER_GROUPS_JOIN} WHERE s.token_hash = $1) r`;
}

const SESSION_WITH_USER = sessionWithUserSql('');
const SESSION_WITH_USER_AND_LOGINS = sessionWithUserSql(`, ${LOGIN_PROVIDERS_COLUMN}`);

/** The columns and parameters ($1-$11) of a new session row, filled by {@link sessionValues}. */
const SESSION_INSERT = `(id, user_id, token_hash, security_stamp, created_at, last_seen_at, expires_at, reauthenticated_at, ip, user_agent, two_factor_setup_only)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`;

function sessionValues(session: BackOfficeSession): unknown[] {
  return [
    session.id,
    session.userId,
    session.tokenHash,
    session.securityStamp,
    session.createdAt,
    session.lastSeenAt,
    session.expiresAt,
    session.reauthenticatedAt,
    session.ip,
    session.userAgent,
    session.twoFactorSetupOnly,
  ];
}

/**
 * The session of a row, field by field onto the entity (it runs on every authenticated request: no literal copied
 * over with `Object.assign`). The same fields in the same order.
 */
function sessionFromRow({ s }: SessionRow): BackOfficeSession {
  const session = new BackOfficeSessionEntity();
  session.id = s.id;
  session.userId = s.user_id;
  session.tokenHash = s.token_hash;
  session.securityStamp = s.security_stamp;
  session.nextSecurityStamps = s.next_security_stamps ?? null;
  session.createdAt = new Date(s.created_at);
  session.lastSeenAt = new Date(s.last_seen_at);
  session.expiresAt = new Date(s.expires_at);
  session.reauthenticatedAt = jsonDate(s.reauthenticated_at);
  session.revokedAt = jsonDate(s.revoked_at);
  session.ip = s.ip;
  session.userAgent = s.user_agent;
  session.twoFactorSetupOnly = s.two_factor_setup_only === true;
  return session;
}

/** The placeholders (with any casts) of the values {@link liveSessionSql} compares with. */
interface LiveSessionParams {
  securityStamp: string;
  now: string;
  seenAfter: string;
}

/**
 * The one rule of a live session of an unrevoked row `alias` of `backoffice_session` (what {@link TypeOrmBackOfficeSessionStore.listLive}
 * lists and what `revokeAll` with `live` counts), as SQL: on the user's stamp (held, or announced by a change of
 * this session in flight), before its absolute end, seen after `seenAfter` (not idle). Not revoked is the caller's
 * part (`revoked_at IS NULL` where it selects: a RETURNING sees the row already revoked).
 */
function liveSessionSql(alias: string, p: LiveSessionParams): string {
  return `((${alias}.security_stamp = ${p.securityStamp} OR ${p.securityStamp} = ANY (${alias}.next_security_stamps))
    AND ${alias}.expires_at > ${p.now} AND ${alias}.last_seen_at > ${p.seenAfter})`;
}

/**
 * Sessions in PostgreSQL (`backoffice_session`). The lookups that run on every request are prepared statements
 * mapped by hand; with the built-in user store the session and its user come back in one round trip.
 */
@Injectable()
export class TypeOrmBackOfficeSessionStore implements BackOfficeSessionStore {
  constructor(@Optional() @InjectDataSource() private readonly dataSource: DataSource) {
    requireHostDataSource(dataSource);
  }

  private get sessions() {
    return this.dataSource.getRepository(BackOfficeSessionEntity);
  }

  async create(session: BackOfficeSession): Promise<void> {
    // One prepared statement (no entity save: that is a transaction of three round trips).
    await preparedQuery(this.dataSource, 'backoffice_insert_session', `INSERT INTO backoffice_session ${SESSION_INSERT}`, sessionValues(session));
  }

  /** Last logins of the built-in user store and entries of the built-in audit store on this database. */
  signInWritesFor(userStore: BackOfficeUserStore, auditStore: BackOfficeAuditStore | null): { lastLogin: boolean; audit: boolean } {
    return {
      lastLogin: this.readsUsersOf(userStore) && userStore.updateProfile === TypeOrmBackOfficeUserStore.prototype.updateProfile,
      audit: auditStore instanceof TypeOrmBackOfficeAuditStore && auditStore.writesWith(this.dataSource),
    };
  }

  /**
   * The session row, the user's last login and the audit entries in one prepared statement (data-modifying
   * CTEs): one round trip and one commit for a sign-in instead of three, all written or none.
   */
  async createWithSignIn(session: BackOfficeSession, writes: BackOfficeSignInWrites): Promise<void> {
    const values = sessionValues(session);
    const ctes: string[] = [];
    const last = writes.lastLoginAt;
    if (last) {
      values.push(last.userId, last.at);
      ctes.push(`l AS (UPDATE backoffice_user SET last_login_at = $${values.length}, updated_at = $${values.length} WHERE id = $${values.length - 1})`);
    }
    const entries = writes.auditEntries ?? [];
    for (const entry of entries) {
      const first = values.length + 1;
      values.push(...TypeOrmBackOfficeAuditStore.values(entry));
      ctes.push(`a${ctes.length} AS (INSERT INTO backoffice_audit_entry ${AUDIT_INSERT_COLUMNS} VALUES ${auditInsertValues(first)})`);
    }
    if (ctes.length === 0) return this.create(session);
    await preparedQuery(
      this.dataSource,
      `backoffice_insert_session_sign_in_${last ? 'l' : ''}${entries.length}`,
      `WITH ${ctes.join(', ')} INSERT INTO backoffice_session ${SESSION_INSERT}`,
      values,
    );
  }

  async findByTokenHash(tokenHash: string): Promise<BackOfficeSession | null> {
    const rows = await preparedQuery<SessionRow>(
      this.dataSource,
      'backoffice_find_session_by_token_hash',
      `SELECT row_to_json(s) AS s FROM backoffice_session s WHERE s.token_hash = $1`,
      [tokenHash],
    );
    return rows[0] ? sessionFromRow(rows[0]) : null;
  }

  /** Users of the built-in store read through its own `findById` live in the same database. */
  readsUsersOf(userStore: BackOfficeUserStore): boolean {
    return userStore instanceof TypeOrmBackOfficeUserStore && userStore.findById === TypeOrmBackOfficeUserStore.prototype.findById;
  }

  async findByTokenHashWithUser(
    tokenHash: string,
    options: { logins?: boolean } = {},
  ): Promise<{ session: BackOfficeSession; user: BackOfficeUser | null; loginProviders?: string[] } | null> {
    const rows = await preparedQuery<{ r: SessionRow & UserRow }>(
      this.dataSource,
      options.logins ? 'backoffice_find_session_with_user_and_logins' : 'backoffice_find_session_with_user',
      options.logins ? SESSION_WITH_USER_AND_LOGINS : SESSION_WITH_USER,
      [tokenHash],
    );
    const row = rows[0]?.r;
    if (!row) return null;
    const session = sessionFromRow(row);
    if (!row.u) return { session, user: null };
    const user = userFromRow(row as UserRow & { u: UserJson });
    return options.logins ? { session, user, loginProviders: aliases(row.login_providers ?? []) } : { session, user };
  }

  async findById(userId: string, sessionId: string): Promise<BackOfficeSession | null> {
    if (!isUuid(sessionId) || !isUuid(userId)) return null;
    return this.sessions.findOneBy({ id: sessionId, userId });
  }

  listLive(userId: string, securityStamp: string, now: Date, seenAfter: Date): Promise<BackOfficeSession[]> {
    return this.liveSessions(userId, securityStamp, now, seenAfter).getMany();
  }

  /** {@link listLive}'s page: OFFSET / LIMIT on (last_seen_at DESC, id), the order of every page. */
  listLivePage(userId: string, securityStamp: string, now: Date, seenAfter: Date, page: BackOfficeListPage): Promise<BackOfficeSession[]> {
    return this.liveSessions(userId, securityStamp, now, seenAfter).offset(page.skip).limit(page.take).getMany();
  }

  /** The user's live sessions ({@link liveSessionSql}, unrevoked), most recently seen first, ties by id: one SELECT. */
  private liveSessions(userId: string, securityStamp: string, now: Date, seenAfter: Date) {
    return this.sessions
      .createQueryBuilder('s')
      .where(`s.user_id = :userId AND s.revoked_at IS NULL AND ${liveSessionSql('s', { securityStamp: ':securityStamp', now: ':now', seenAfter: ':seenAfter' })}`, {
        userId,
        securityStamp,
        now,
        seenAfter,
      })
      .orderBy('s.lastSeenAt', 'DESC')
      .addOrderBy('s.id', 'ASC');
  }

  async touch(sessionId: string, at: Date): Promise<void> {
    await preparedQuery(
      this.dataSource,
      'backoffice_touch_session',
      `UPDATE backoffice_session SET last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL AND last_seen_at < $2`,
      [sessionId, at],
    );
  }

  /**
   * {@link touch} of every session of `touches` in one UPDATE (the sessions and times as two arrays): the same guards
   * (unrevoked, only forward). A session given twice moves to the later time; an id that is no UUID matches nothing.
   */
  async touchMany(touches: ReadonlyArray<{ sessionId: string; at: Date }>): Promise<void> {
    const valid = touches.filter((t) => isUuid(t.sessionId));
    if (valid.length === 0) return;
    await preparedQuery(
      this.dataSource,
      'backoffice_touch_sessions',
      `UPDATE backoffice_session s SET last_seen_at = v.seen
         FROM (SELECT id, max(seen) AS seen FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, seen) GROUP BY id) v
        WHERE s.id = v.id AND s.revoked_at IS NULL AND s.last_seen_at < v.seen`,
      [valid.map((t) => t.sessionId), valid.map((t) => t.at.toISOString())],
    );
  }

  async update(sessionId: string, changes: BackOfficeSessionChanges, options: { onlyIfLive?: boolean } = {}): Promise<void> {
    if (!isUuid(sessionId)) return;
    await this.sessions.update(options.onlyIfLive ? { id: sessionId, revokedAt: IsNull() } : { id: sessionId }, changes);
  }

  /** One conditional UPDATE: the row keeps its id, the old hash matches nothing from its commit on. */
  async replaceTokenHash(sessionId: string, previousTokenHash: string, tokenHash: string, changes: BackOfficeSessionChanges): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    const result = await this.sessions.update({ id: sessionId, tokenHash: previousTokenHash, revokedAt: IsNull() }, { ...changes, tokenHash });
    return (result.affected ?? 0) > 0;
  }

  /**
   * One statement: the stamp joins the session's announcements (those of its other changes in flight stay: of two
   * announcements at once the second waits for the first's row lock and appends to what it wrote); an announced stamp
   * the user's row holds now becomes the session's own and leaves the list; the newest
   * {@link MAX_ANNOUNCED_SECURITY_STAMPS} are kept.
   */
  async announceSecurityStamp(sessionId: string, nextSecurityStamp: string): Promise<void> {
    if (!isUuid(sessionId)) return;
    const announced = `(array_remove(coalesce(s.next_security_stamps, '{}'::varchar[]), u.security_stamp) || $2::varchar)`;
    await this.dataSource.query(
      `UPDATE backoffice_session s SET
         security_stamp = CASE WHEN u.security_stamp = ANY (s.next_security_stamps) THEN u.security_stamp ELSE s.security_stamp END,
         next_security_stamps = ${announced}[greatest(cardinality(${announced}) - $3 + 1, 1):]
       FROM backoffice_user u
       WHERE s.id = $1 AND s.revoked_at IS NULL AND u.id = s.user_id`,
      [sessionId, nextSecurityStamp, MAX_ANNOUNCED_SECURITY_STAMPS],
    );
  }

  /**
   * One statement: the session takes `securityStamp` if its user's row holds it, read under a share lock on that row
   * so a stamp change of the user committed meanwhile is seen (not the statement's older snapshot) and waits for
   * this adoption; it locks user then session, the order of every other write that touches both. Only this stamp
   * leaves the session's announcements.
   */
  async adoptSecurityStamp(sessionId: string, securityStamp: string): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    const rows = await this.dataSource.query(
      `UPDATE backoffice_session s SET security_stamp = $2, next_security_stamps = array_remove(s.next_security_stamps, $2::varchar)
       WHERE s.id = $1 AND s.revoked_at IS NULL
         AND EXISTS (SELECT 1 FROM backoffice_user u WHERE u.id = s.user_id AND u.security_stamp = $2 FOR SHARE)
       RETURNING s.id`,
      [sessionId, securityStamp],
    );
    return returned(rows).length > 0;
  }

  async revoke(userId: string, sessionId: string, now: Date): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    const result = await this.sessions.update({ id: sessionId, userId, revokedAt: IsNull() }, { revokedAt: now });
    return (result.affected ?? 0) > 0;
  }

  /**
   * Revokes every unrevoked session of the user but `exceptSessionId`, locking them in id order ({@link revokeInIdOrder});
   * with `live`, counts only those that were live.
   */
  async revokeAll(userId: string, now: Date, exceptSessionId?: string, live?: { securityStamp: string; seenAfter: Date }): Promise<number> {
    if (!isUuid(userId)) return 0;
    return this.revokeInIdOrder(userId, now, exceptSessionId !== undefined && isUuid(exceptSessionId) ? exceptSessionId : null, false, live);
  }

  /**
   * Ends all but `keepSessionId` if that one is among the user's unrevoked sessions: the second of two calls at once
   * waits for the first and finds its own session ended.
   */
  async revokeOthersIfLive(userId: string, keepSessionId: string, now: Date): Promise<number> {
    if (!isUuid(keepSessionId) || !isUuid(userId)) return 0;
    return this.revokeInIdOrder(userId, now, keepSessionId, true);
  }

  /**
   * One statement for both: locks the user's unrevoked sessions in id order (a plain UPDATE would lock them in the
   * index's order, and two such writes at once could deadlock), then ends all but `keep`; with `onlyIfKeptIsLive`,
   * only when `keep` is among the locked ones. With `live`, the count is of the ended rows that were live
   * ({@link liveSessionSql}, the rule listLive lists by).
   */
  private async revokeInIdOrder(userId: string, now: Date, keep: string | null, onlyIfKeptIsLive: boolean, live?: { securityStamp: string; seenAfter: Date }): Promise<number> {
    const rows = await this.dataSource.query(
      `WITH locked AS (SELECT id FROM backoffice_session WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id FOR NO KEY UPDATE)
       UPDATE backoffice_session s SET revoked_at = $2 FROM locked l
       WHERE s.id = l.id AND s.id IS DISTINCT FROM $3::uuid AND (NOT $4::boolean OR EXISTS (SELECT 1 FROM locked k WHERE k.id = $3::uuid))
       RETURNING s.id, ($5::varchar IS NULL OR ${liveSessionSql('s', { securityStamp: '$5::varchar', now: '$2', seenAfter: '$6::timestamptz' })}) AS live`,
      [userId, now, keep, onlyIfKeptIsLive, live?.securityStamp ?? null, live?.seenAfter ?? null],
    );
    return returned<{ live: boolean | null }>(rows).filter((row) => row.live === true).length;
  }

  async prune(now: Date): Promise<{ sessions: number }> {
    const weekAgo = new Date(now.getTime() - WEEK_MS);
    // Skips rows another transaction holds (a revokeAll locking them in id order): no deadlock, the next prune takes them.
    return { sessions: await deleteInBatches(this.dataSource, 'backoffice_session', 'id', 'expires_at < $1 OR revoked_at < $1', [weekAgo]) };
  }
}
