import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, IsNull, MoreThan, Not } from 'typeorm';
import type { BackOfficeClock } from '../common/clock.js';
import { randomToken, sha256Hex } from '../common/crypto.js';
import { preparedQuery } from '../common/prepared-query.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { isUuid } from '../users/stores/typeorm-user-store.js';
import { BackOfficeSessionEntity } from './backoffice-session.entity.js';

/** A session as its owner sees it. */
export interface BackOfficeSessionDto {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  ip: string | null;
  userAgent: string | null;
  current: boolean;
}

/** When a session ends unless it is used again (idle), and when it ends whatever happens (absolute). */
export interface BackOfficeSessionDeadlines {
  /** The server's clock when this was computed, so clients can correct for their own clock's skew. */
  now: string;
  /** Sliding: every authenticated request (except peeks) moves it. */
  idleExpiresAt: string;
  /** Never extended. */
  absoluteExpiresAt: string;
}

/** An authenticated request's session and user. */
export interface BackOfficeAuthentication {
  session: BackOfficeSessionEntity;
  user: BackOfficeUser;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Server-side sessions in PostgreSQL. The cookie carries a 256-bit random token; only its SHA-256 is stored.
 * A session ends on logout or revocation, after the idle timeout (sliding) or the absolute timeout (never
 * extended), and as soon as the user's security stamp changes or the user is disabled. A lockout blocks new
 * sign-ins only (as in ASP.NET Core Identity): sessions that already exist keep working, so failed guesses
 * at an admin's password cannot keep that admin out.
 */
@Injectable()
export class BackOfficeSessionService {
  private readonly idleMs: number;
  private readonly absoluteMs: number;
  /** Last-seen writes are throttled to one per this interval per session. */
  private readonly touchIntervalMs: number;
  private readonly reauthenticationMs: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
  ) {
    this.idleMs = options.session.idleTimeoutMinutes * 60_000;
    this.absoluteMs = options.session.absoluteTimeoutHours * 3_600_000;
    this.touchIntervalMs = Math.min(60_000, this.idleMs / 4);
    this.reauthenticationMs = options.session.reauthenticationMinutes * 60_000;
  }

  private get sessions() {
    return this.dataSource.getRepository(BackOfficeSessionEntity);
  }

  /** Starts a session; returns the cookie token (shown once, never stored). */
  async create(user: BackOfficeUser, context: { ip?: string | null; userAgent?: string | null }): Promise<{ token: string; session: BackOfficeSessionEntity }> {
    const token = randomToken(32);
    const now = this.clock.now();
    const session = this.sessions.create({
      userId: user.id,
      tokenHash: sha256Hex(token),
      securityStamp: user.securityStamp,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: new Date(now.getTime() + this.absoluteMs),
      reauthenticatedAt: now,
      revokedAt: null,
      ip: context.ip?.slice(0, 64) ?? null,
      userAgent: context.userAgent?.slice(0, 512) ?? null,
    });
    await this.sessions.save(session);
    return { token, session };
  }

  /**
   * The live session and user for a cookie token, or null. Slides the idle timeout (throttled) unless
   * `touch` is false (a peek, e.g. a page checking how long the session has left).
   */
  async authenticate(token: unknown, options: { touch?: boolean } = {}): Promise<BackOfficeAuthentication | null> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return null;
    const session = await this.findByTokenHash(sha256Hex(token));
    const now = this.clock.now();
    if (!session || !this.isLive(session, now)) return null;
    const user = await this.userManager.findById(session.userId);
    if (!user || !user.isApproved || user.securityStamp !== session.securityStamp) return null;
    if (options.touch !== false && now.getTime() - session.lastSeenAt.getTime() >= this.touchIntervalMs) {
      await this.sessions.update({ id: session.id, revokedAt: IsNull() }, { lastSeenAt: now });
      session.lastSeenAt = now;
    }
    return { session, user };
  }

  /** One indexed lookup, mapped by hand (it runs on every authenticated request). */
  private async findByTokenHash(tokenHash: string): Promise<BackOfficeSessionEntity | null> {
    const rows = await preparedQuery<Record<string, any>>(
      this.dataSource,
      'backoffice_find_session_by_token_hash',
      `SELECT id, user_id, token_hash, security_stamp, created_at, last_seen_at, expires_at, reauthenticated_at, revoked_at, ip, user_agent
       FROM backoffice_session WHERE token_hash = $1`,
      [tokenHash],
    );
    const row = rows[0];
    if (!row) return null;
    return this.sessions.create({
      id: row.id,
      userId: row.user_id,
      tokenHash: row.token_hash,
      securityStamp: row.security_stamp,
      createdAt: row.created_at,
      lastSeenAt: row.last_seen_at,
      expiresAt: row.expires_at,
      reauthenticatedAt: row.reauthenticated_at,
      revokedAt: row.revoked_at,
      ip: row.ip,
      userAgent: row.user_agent,
    });
  }

  private isLive(session: BackOfficeSessionEntity, now: Date): boolean {
    return (
      session.revokedAt === null &&
      session.expiresAt.getTime() > now.getTime() &&
      now.getTime() - session.lastSeenAt.getTime() < this.idleMs
    );
  }

  /** The idle and absolute deadlines of a live session. */
  deadlines(session: BackOfficeSessionEntity): BackOfficeSessionDeadlines {
    const idle = session.lastSeenAt.getTime() + this.idleMs;
    const absolute = session.expiresAt.getTime();
    return {
      now: this.clock.now().toISOString(),
      idleExpiresAt: new Date(Math.min(idle, absolute)).toISOString(),
      absoluteExpiresAt: new Date(absolute).toISOString(),
    };
  }

  /** True while session `sessionId` of `user` is live (not revoked, not timed out, same security stamp). */
  async isLiveSessionOf(sessionId: string, user: BackOfficeUser): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    const session = await this.sessions.findOneBy({ id: sessionId, userId: user.id });
    return !!session && this.isLive(session, this.clock.now()) && session.securityStamp === user.securityStamp;
  }

  /**
   * The user's live sessions, most recently seen first: only those made under the user's current security
   * stamp (the others no longer authenticate).
   */
  async list(user: Pick<BackOfficeUser, 'id' | 'securityStamp'>, currentSessionId?: string): Promise<BackOfficeSessionDto[]> {
    const now = this.clock.now();
    const rows = await this.sessions.find({
      where: {
        userId: user.id,
        securityStamp: user.securityStamp,
        revokedAt: IsNull(),
        expiresAt: MoreThan(now),
        lastSeenAt: MoreThan(new Date(now.getTime() - this.idleMs)),
      },
      order: { lastSeenAt: 'DESC' },
    });
    return rows.map((s) => ({
      id: s.id,
      createdAt: s.createdAt.toISOString(),
      lastSeenAt: s.lastSeenAt.toISOString(),
      ip: s.ip,
      userAgent: s.userAgent,
      current: s.id === currentSessionId,
    }));
  }

  /** Revokes one of the user's own sessions; false when it is not theirs (or not live). */
  async revoke(userId: string, sessionId: string): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    const result = await this.sessions.update({ id: sessionId, userId, revokedAt: IsNull() }, { revokedAt: this.clock.now() });
    return (result.affected ?? 0) > 0;
  }

  /** Revokes every live session of the user, except `exceptSessionId`. Returns how many ended. */
  async revokeAll(userId: string, exceptSessionId?: string): Promise<number> {
    const where = exceptSessionId
      ? { userId, revokedAt: IsNull(), id: Not(exceptSessionId) }
      : { userId, revokedAt: IsNull() };
    const result = await this.sessions.update(where, { revokedAt: this.clock.now() });
    return result.affected ?? 0;
  }

  /** True while the session's last sign-in or re-authentication lies within `session.reauthenticationMinutes`. */
  isRecentlyAuthenticated(session: Pick<BackOfficeSessionEntity, 'reauthenticatedAt'>, withinMinutes?: number): boolean {
    const windowMs = withinMinutes === undefined ? this.reauthenticationMs : withinMinutes * 60_000;
    const at = session.reauthenticatedAt;
    return at !== null && this.clock.now().getTime() - new Date(at).getTime() < windowMs;
  }

  /**
   * Records that the session's user has just proved who they are (password, or an external provider's
   * round trip): `@RequiresRecentSignIn()` routes accept the session for the next few minutes.
   */
  async markReauthenticated(session: BackOfficeSessionEntity): Promise<void> {
    const now = this.clock.now();
    await this.sessions.update({ id: session.id, revokedAt: IsNull() }, { reauthenticatedAt: now });
    session.reauthenticatedAt = now;
  }

  /** Keeps `sessionId` alive across a security-stamp change made by its own user (e.g. password change). */
  async adoptSecurityStamp(sessionId: string, securityStamp: string): Promise<void> {
    await this.sessions.update({ id: sessionId }, { securityStamp });
  }
}
