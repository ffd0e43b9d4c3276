import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, IsNull, MoreThan, Not } from 'typeorm';
import { BackOfficeBackgroundTasks } from '../common/background-tasks.js';
import type { BackOfficeClock } from '../common/clock.js';
import { randomUUID } from 'node:crypto';
import { randomToken, sha256Hex } from '../common/crypto.js';
import { preparedQuery } from '../common/prepared-query.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { aliases, isUuid, jsonDate, TypeOrmBackOfficeUserStore, USER_COLUMNS, USER_GROUPS_JOIN, userFromRow, type UserJson, type UserRow } from '../users/stores/typeorm-user-store.js';
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
  /**
   * The providers of the user's linked external logins (oldest link first), read by the same statement as the
   * session when external logins are configured and the built-in store serves users; else undefined.
   */
  loginProviders?: string[];
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
/** Longest life of a setup-only session (a member who must enrol in 2FA first). */
export const SETUP_ONLY_SESSION_MINUTES = 15;

/** The providers of the user's linked external logins, as `GET /auth/me` lists them (oldest link first). */
const LOGIN_PROVIDERS_COLUMN = `ARRAY(SELECT l.provider FROM backoffice_user_login l WHERE l.user_id = u.id
  ORDER BY l.created_at, l.provider) AS login_providers`;

/** `backoffice_session` as `row_to_json(s)` gives it (one field for the driver to parse; timestamps as ISO text). */
interface SessionJson {
  id: string;
  user_id: string;
  token_hash: string;
  security_stamp: string;
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
  /** Last-seen writes sent but maybe not yet committed, so this process never reads an older value meanwhile. */
  private readonly pendingTouches = new Map<string, Date>();
  /** Whether users come from the built-in store through the built-in `findById`: then one query reads both. */
  private readonly joinsUser: boolean;
  /** Whether that query also reads the user's linked logins (external providers are configured). */
  private readonly readsLogins: boolean;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeBackgroundTasks) private readonly background: BackOfficeBackgroundTasks,
  ) {
    const store = userManager.store;
    this.joinsUser =
      userManager.findById === BackOfficeUserManager.prototype.findById &&
      store instanceof TypeOrmBackOfficeUserStore &&
      store.findById === TypeOrmBackOfficeUserStore.prototype.findById;
    this.readsLogins = this.joinsUser && options.externalLogins.length > 0;
    this.idleMs = options.session.idleTimeoutMinutes * 60_000;
    this.absoluteMs = options.session.absoluteTimeoutHours * 3_600_000;
    this.touchIntervalMs = Math.min(60_000, this.idleMs / 4);
    this.reauthenticationMs = options.session.reauthenticationMinutes * 60_000;
  }

  private get sessions() {
    return this.dataSource.getRepository(BackOfficeSessionEntity);
  }

  /**
   * Starts a session; returns the cookie token (shown once, never stored). A `twoFactorSetupOnly` session reaches
   * only the two-factor setup routes and lasts at most {@link SETUP_ONLY_SESSION_MINUTES} minutes.
   */
  async create(
    user: BackOfficeUser,
    context: { ip?: string | null; userAgent?: string | null },
    kind: { twoFactorSetupOnly?: boolean } = {},
  ): Promise<{ token: string; session: BackOfficeSessionEntity }> {
    const token = randomToken(32);
    const now = this.clock.now();
    const lifetimeMs = kind.twoFactorSetupOnly ? Math.min(this.absoluteMs, SETUP_ONLY_SESSION_MINUTES * 60_000) : this.absoluteMs;
    const session = Object.assign(new BackOfficeSessionEntity(), {
      id: randomUUID(),
      userId: user.id,
      tokenHash: sha256Hex(token),
      securityStamp: user.securityStamp,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: new Date(now.getTime() + lifetimeMs),
      reauthenticatedAt: now,
      twoFactorSetupOnly: kind.twoFactorSetupOnly === true,
      revokedAt: null,
      ip: context.ip?.slice(0, 64) ?? null,
      userAgent: context.userAgent?.slice(0, 512) ?? null,
    });
    // One prepared statement (no entity save: that is a transaction of three round trips).
    await preparedQuery(
      this.dataSource,
      'backoffice_insert_session',
      `INSERT INTO backoffice_session (id, user_id, token_hash, security_stamp, created_at, last_seen_at, expires_at, reauthenticated_at, ip, user_agent, two_factor_setup_only)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [session.id, session.userId, session.tokenHash, session.securityStamp, now, now, session.expiresAt, now, session.ip, session.userAgent, session.twoFactorSetupOnly],
    );
    return { token, session };
  }

  /**
   * The live session and user for a cookie token, or null. One database round trip: a prepared statement reads
   * the session with its user and groups (two lookups only when the user store or `findById` is swapped). Nothing
   * is cached, so a revoked session, a changed security stamp or a disabled user fails at once. Slides
   * the idle timeout with a throttled last-seen write that the request does not wait for, unless `touch` is
   * false (a peek, e.g. a page checking how long the session has left).
   */
  async authenticate(token: unknown, options: { touch?: boolean } = {}): Promise<BackOfficeAuthentication | null> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return null;
    const found = await this.findByTokenHash(sha256Hex(token));
    if (!found) return null;
    const { session } = found;
    const pending = this.pendingTouches.get(session.id);
    if (pending && pending > session.lastSeenAt) session.lastSeenAt = pending;
    else if (pending) this.pendingTouches.delete(session.id); // the write is visible now
    const now = this.clock.now();
    if (!this.isLive(session, now)) return null;
    const user = found.user === undefined ? await this.userManager.findById(session.userId) : found.user;
    if (!user || !user.isApproved || user.securityStamp !== session.securityStamp) return null;
    if (options.touch !== false && now.getTime() - session.lastSeenAt.getTime() >= this.touchIntervalMs) this.touch(session, now);
    return found.loginProviders ? { session, user, loginProviders: found.loginProviders } : { session, user };
  }

  /**
   * Slides the idle timeout after the response; never revives a revoked session. Until a later read of the
   * session sees the write, this process remembers it: a request whose read raced the write still slides.
   */
  private touch(session: BackOfficeSessionEntity, now: Date): void {
    session.lastSeenAt = now;
    if (this.pendingTouches.size >= 10_000) this.forgetTouchesBefore(new Date(now.getTime() - this.idleMs));
    this.pendingTouches.set(session.id, now);
    this.background.run('session last-seen update', () =>
      preparedQuery(
        this.dataSource,
        'backoffice_touch_session',
        `UPDATE backoffice_session SET last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL AND last_seen_at < $2`,
        [session.id, now],
      ),
    );
  }

  /** Drops remembered writes too old to keep any session alive (sessions that were not seen again). */
  private forgetTouchesBefore(cutoff: Date): void {
    for (const [id, at] of this.pendingTouches) if (at <= cutoff) this.pendingTouches.delete(id);
  }

  /**
   * One indexed lookup, mapped by hand (it runs on every authenticated request). `user` is the session's user
   * (null when gone) when the query could read it too, else undefined; `loginProviders` likewise.
   */
  private async findByTokenHash(
    tokenHash: string,
  ): Promise<{ session: BackOfficeSessionEntity; user?: BackOfficeUser | null; loginProviders?: string[] } | null> {
    const rows = this.readsLogins
      ? await preparedQuery<SessionRow & UserRow>(
          this.dataSource,
          'backoffice_find_session_with_user_and_logins',
          `SELECT row_to_json(s) AS s, ${USER_COLUMNS}, ${LOGIN_PROVIDERS_COLUMN}
           FROM backoffice_session s LEFT JOIN backoffice_user u ON u.id = s.user_id ${USER_GROUPS_JOIN} WHERE s.token_hash = $1`,
          [tokenHash],
        )
      : this.joinsUser
      ? await preparedQuery<SessionRow & UserRow>(
          this.dataSource,
          'backoffice_find_session_with_user',
          `SELECT row_to_json(s) AS s, ${USER_COLUMNS}
           FROM backoffice_session s LEFT JOIN backoffice_user u ON u.id = s.user_id ${USER_GROUPS_JOIN} WHERE s.token_hash = $1`,
          [tokenHash],
        )
      : await preparedQuery<SessionRow>(
          this.dataSource,
          'backoffice_find_session_by_token_hash',
          `SELECT row_to_json(s) AS s FROM backoffice_session s WHERE s.token_hash = $1`,
          [tokenHash],
        );
    const row = rows[0];
    if (!row) return null;
    const s = row.s;
    const session = Object.assign(new BackOfficeSessionEntity(), {
      id: s.id,
      userId: s.user_id,
      tokenHash: s.token_hash,
      securityStamp: s.security_stamp,
      createdAt: new Date(s.created_at),
      lastSeenAt: new Date(s.last_seen_at),
      expiresAt: new Date(s.expires_at),
      reauthenticatedAt: jsonDate(s.reauthenticated_at),
      revokedAt: jsonDate(s.revoked_at),
      ip: s.ip,
      userAgent: s.user_agent,
      twoFactorSetupOnly: s.two_factor_setup_only === true,
    });
    if (!this.joinsUser) return { session };
    const userRow = row as SessionRow & UserRow;
    if (!userRow.u) return { session, user: null };
    const user = userFromRow(userRow as UserRow & { u: UserJson });
    return this.readsLogins ? { session, user, loginProviders: aliases(row.login_providers ?? []) } : { session, user };
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

  /** Turns a setup-only session into a full one once two-factor enrolment is confirmed (normal lifetime). */
  async completeTwoFactorSetup(session: BackOfficeSessionEntity): Promise<void> {
    if (!session.twoFactorSetupOnly) return;
    const expiresAt = new Date(session.createdAt.getTime() + this.absoluteMs);
    await this.sessions.update({ id: session.id }, { twoFactorSetupOnly: false, expiresAt });
    Object.assign(session, { twoFactorSetupOnly: false, expiresAt });
  }
}
