import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, IsNull, MoreThan, Not } from 'typeorm';
import { isUuid } from '../../common/ids.js';
import type { BackOfficeSession, BackOfficeSessionChanges, BackOfficeSessionStore } from '../../sessions/session-store.interface.js';
import type { BackOfficeUser } from '../../users/backoffice-user.js';
import type { BackOfficeUserStore } from '../../users/stores/user-store.interface.js';
import { BackOfficeSessionEntity } from './entities/backoffice-session.entity.js';
import { preparedQuery } from './prepared-query.js';
import { deleteCounting } from './sql-results.js';
import { TypeOrmBackOfficeUserStore, USER_COLUMNS, userFromRow, type UserRow } from './typeorm-user-store.js';

const WEEK_MS = 7 * 86_400_000;

/** The session columns, aliased so they can sit beside the user's in one row. */
const SESSION_COLUMNS = `s.id AS s_id, s.user_id AS s_user_id, s.token_hash AS s_token_hash, s.security_stamp AS s_security_stamp,
  s.created_at AS s_created_at, s.last_seen_at AS s_last_seen_at, s.expires_at AS s_expires_at,
  s.reauthenticated_at AS s_reauthenticated_at, s.revoked_at AS s_revoked_at,
  s.ip AS s_ip, s.user_agent AS s_user_agent, s.two_factor_setup_only AS s_two_factor_setup_only`;

interface SessionRow {
  s_id: string;
  s_user_id: string;
  s_token_hash: string;
  s_security_stamp: string;
  s_created_at: Date;
  s_last_seen_at: Date;
  s_expires_at: Date;
  s_reauthenticated_at: Date | null;
  s_revoked_at: Date | null;
  s_ip: string | null;
  s_user_agent: string | null;
  s_two_factor_setup_only: boolean;
}

function sessionFromRow(row: SessionRow): BackOfficeSession {
  return Object.assign(new BackOfficeSessionEntity(), {
    id: row.s_id,
    userId: row.s_user_id,
    tokenHash: row.s_token_hash,
    securityStamp: row.s_security_stamp,
    createdAt: row.s_created_at,
    lastSeenAt: row.s_last_seen_at,
    expiresAt: row.s_expires_at,
    reauthenticatedAt: row.s_reauthenticated_at,
    revokedAt: row.s_revoked_at,
    ip: row.s_ip,
    userAgent: row.s_user_agent,
    twoFactorSetupOnly: row.s_two_factor_setup_only === true,
  });
}

/**
 * Sessions in PostgreSQL (`backoffice_session`). The lookups that run on every request are prepared statements
 * mapped by hand; with the built-in user store the session and its user come back in one round trip.
 */
@Injectable()
export class TypeOrmBackOfficeSessionStore implements BackOfficeSessionStore {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  private get sessions() {
    return this.dataSource.getRepository(BackOfficeSessionEntity);
  }

  async create(session: BackOfficeSession): Promise<void> {
    // One prepared statement (no entity save: that is a transaction of three round trips).
    await preparedQuery(
      this.dataSource,
      'backoffice_insert_session',
      `INSERT INTO backoffice_session (id, user_id, token_hash, security_stamp, created_at, last_seen_at, expires_at, reauthenticated_at, ip, user_agent, two_factor_setup_only)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
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
      ],
    );
  }

  async findByTokenHash(tokenHash: string): Promise<BackOfficeSession | null> {
    const rows = await preparedQuery<SessionRow>(
      this.dataSource,
      'backoffice_find_session_by_token_hash',
      `SELECT ${SESSION_COLUMNS} FROM backoffice_session s WHERE s.token_hash = $1`,
      [tokenHash],
    );
    return rows[0] ? sessionFromRow(rows[0]) : null;
  }

  /** Users of the built-in store read through its own `findById` live in the same database. */
  readsUsersOf(userStore: BackOfficeUserStore): boolean {
    return userStore instanceof TypeOrmBackOfficeUserStore && userStore.findById === TypeOrmBackOfficeUserStore.prototype.findById;
  }

  async findByTokenHashWithUser(tokenHash: string): Promise<{ session: BackOfficeSession; user: BackOfficeUser | null } | null> {
    const rows = await preparedQuery<SessionRow & Partial<UserRow>>(
      this.dataSource,
      'backoffice_find_session_with_user',
      `SELECT ${SESSION_COLUMNS}, ${USER_COLUMNS}
       FROM backoffice_session s LEFT JOIN backoffice_user u ON u.id = s.user_id WHERE s.token_hash = $1`,
      [tokenHash],
    );
    const row = rows[0];
    if (!row) return null;
    return { session: sessionFromRow(row), user: row.id ? userFromRow(row as UserRow) : null };
  }

  async findById(userId: string, sessionId: string): Promise<BackOfficeSession | null> {
    if (!isUuid(sessionId) || !isUuid(userId)) return null;
    return this.sessions.findOneBy({ id: sessionId, userId });
  }

  listLive(userId: string, securityStamp: string, now: Date, seenAfter: Date): Promise<BackOfficeSession[]> {
    return this.sessions.find({
      where: { userId, securityStamp, revokedAt: IsNull(), expiresAt: MoreThan(now), lastSeenAt: MoreThan(seenAfter) },
      order: { lastSeenAt: 'DESC' },
    });
  }

  async touch(sessionId: string, at: Date): Promise<void> {
    await preparedQuery(
      this.dataSource,
      'backoffice_touch_session',
      `UPDATE backoffice_session SET last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL AND last_seen_at < $2`,
      [sessionId, at],
    );
  }

  async update(sessionId: string, changes: BackOfficeSessionChanges, options: { onlyIfLive?: boolean } = {}): Promise<void> {
    if (!isUuid(sessionId)) return;
    await this.sessions.update(options.onlyIfLive ? { id: sessionId, revokedAt: IsNull() } : { id: sessionId }, changes);
  }

  async revoke(userId: string, sessionId: string, now: Date): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    const result = await this.sessions.update({ id: sessionId, userId, revokedAt: IsNull() }, { revokedAt: now });
    return (result.affected ?? 0) > 0;
  }

  async revokeAll(userId: string, now: Date, exceptSessionId?: string): Promise<number> {
    const where = exceptSessionId ? { userId, revokedAt: IsNull(), id: Not(exceptSessionId) } : { userId, revokedAt: IsNull() };
    const result = await this.sessions.update(where, { revokedAt: now });
    return result.affected ?? 0;
  }

  async prune(now: Date): Promise<{ sessions: number }> {
    const weekAgo = new Date(now.getTime() - WEEK_MS);
    return { sessions: await deleteCounting(this.dataSource, `DELETE FROM backoffice_session WHERE expires_at < $1 OR revoked_at < $1`, [weekAgo]) };
  }
}
