import { Inject, Injectable, Optional } from '@nestjs/common';
import type { BackOfficeAuditStore } from '../audit/backoffice-audit-store.interface.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BackOfficeBackgroundTasks } from '../common/background-tasks.js';
import { MAX_CLOCK_SKEW_SECONDS, type BackOfficeClock } from '../common/clock.js';
import { randomUUID } from 'node:crypto';
import { randomToken, sha256Hex } from '../common/crypto.js';
import { BACKOFFICE_AUDIT_STORE, BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_SESSION_STORE, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { isUuid } from '../common/ids.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { redactSecretsWhenLogged, type BackOfficeUser } from '../users/backoffice-user.js';
import { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { UserSessionsRevokedNotification } from '../notifications/notifications.js';
import type { BackOfficeSession, BackOfficeSessionChanges, BackOfficeSessionStore } from './session-store.interface.js';
import { slicePage, type BackOfficeListPage } from '../common/list-page.js';
import { holdsStamp, idleCutoff, isUnexpired, minutesToMs, sessionTimeoutsMs } from './session-liveness.js';
import { byLastSeenThenId } from './session-order.js';

/** What the step-up rule reads of an authenticated request (`request.backOffice`). */
type RecentSignInSubject = { scheme: 'cookie' | 'bearer'; session?: Pick<BackOfficeSession, 'reauthenticatedAt'> };

/** `BackOfficeSessionService.renewToken`'s options: whether to record a re-authentication, and how long ago it was made. */
export type RenewTokenOptions = { reauthenticated?: boolean; authenticatedSecondsAgo?: number };

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
  session: BackOfficeSession;
  user: BackOfficeUser;
  /**
   * The providers of the user's linked external logins (oldest link first), read by the same statement as the
   * session when external logins are configured and the session store reads users too; else undefined.
   */
  loginProviders?: string[];
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
/** Longest life of a setup-only session (a member who must enrol in 2FA first). */
export const SETUP_ONLY_SESSION_MINUTES = 15;

/**
 * When a sign-in's (or a step-up's) authentication made `secondsAgo` before `nowMs` happened, or null when that is
 * no time: not a finite number, further in the future than {@link MAX_CLOCK_SKEW_SECONDS}, or before the earliest
 * `Date` (an Invalid Date the store would refuse: a provider's finite `auth_time` of -1e13 failed the sign-in). A
 * future within the skew (a provider clock ahead) is now.
 */
function authenticationTime(nowMs: number, secondsAgo: number): Date | null {
  if (!Number.isFinite(secondsAgo) || secondsAgo < -MAX_CLOCK_SKEW_SECONDS) return null;
  const at = new Date(nowMs - Math.max(0, secondsAgo) * 1000);
  return Number.isNaN(at.getTime()) ? null : at;
}

/** A session as its owner sees it in `GET /auth/sessions` (`current`: the session that asks). */
function toSessionDto(s: BackOfficeSession, currentSessionId: string | undefined): BackOfficeSessionDto {
  return {
    id: s.id,
    createdAt: s.createdAt.toISOString(),
    lastSeenAt: s.lastSeenAt.toISOString(),
    ip: s.ip,
    userAgent: s.userAgent,
    current: s.id === currentSessionId,
  };
}

/**
 * Server-side sessions, kept by the {@link BackOfficeSessionStore} (PostgreSQL by default). The cookie carries a 256-bit random token; only its SHA-256 is stored.
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
  /**
   * Last-seen writes sent but maybe not yet committed (by session id, with the session's user), so this process never
   * reads an older value meanwhile. In the order of the writes (`touch` deletes before it sets), so pruning stops at
   * the first recent one.
   */
  private readonly pendingTouches = new Map<string, { at: Date; userId: string }>();
  /** The ids of {@link pendingTouches} by user, so a read of a user's sessions flushes theirs only ({@link flushTouchesOf}). */
  private readonly pendingTouchesOfUser = new Map<string, Set<string>>();
  /** Whether users come from the built-in store through the built-in `findById`: then one query reads both. */
  private readonly joinsUser: boolean;
  /** Whether that lookup also reads the user's linked logins (external providers are configured). */
  private readonly readsLogins: boolean;
  /** Which writes of a sign-in the store can make together with the session row (null: none). */
  private readonly signInFold: { lastLogin: boolean; audit: boolean } | null;

  constructor(
    @Inject(BACKOFFICE_SESSION_STORE) private readonly store: BackOfficeSessionStore,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeBackgroundTasks) private readonly background: BackOfficeBackgroundTasks,
    @Optional() @Inject(BACKOFFICE_AUDIT_STORE) private readonly auditStore: BackOfficeAuditStore | null = null,
  ) {
    const fold = store.signInWritesFor && store.createWithSignIn ? store.signInWritesFor(userManager.store, auditStore ?? null) : null;
    this.signInFold = fold && (fold.lastLogin || fold.audit) ? fold : null;
    this.joinsUser =
      userManager.findById === BackOfficeUserManager.prototype.findById &&
      typeof store.findByTokenHashWithUser === 'function' &&
      store.readsUsersOf?.(userManager.store) === true;
    this.readsLogins = this.joinsUser && options.externalLogins.length > 0;
    ({ idleMs: this.idleMs, absoluteMs: this.absoluteMs, reauthenticationMs: this.reauthenticationMs } = sessionTimeoutsMs(options.session));
    this.touchIntervalMs = Math.min(60_000, this.idleMs / 4);
  }

  /**
   * Starts a session; returns the cookie token (shown once, never stored). A `twoFactorSetupOnly` session reaches
   * only the two-factor setup routes and lasts at most {@link SETUP_ONLY_SESSION_MINUTES} minutes.
   * `authenticatedSecondsAgo`: when the sign-in's authentication was made (`@RequiresRecentSignIn()` routes accept
   * the session for `session.reauthenticationMinutes` from then): left out, now (a password, passkey or second factor
   * checked by this request); a number, that long before now, never in the future (an external provider's
   * `auth_time`); null, unknown, so the session starts without a recent sign-in. A number that is no time (not
   * finite, further in the future than the clock skew, before the earliest Date) is taken as null: never a fresh
   * session, never an Invalid Date.
   */
  async create(
    user: BackOfficeUser,
    context: { ip?: string | null; userAgent?: string | null },
    kind: { twoFactorSetupOnly?: boolean; authenticatedSecondsAgo?: number | null } = {},
  ): Promise<{ token: string; session: BackOfficeSession }> {
    const token = randomToken(32);
    const now = this.clock.now();
    const lifetimeMs = kind.twoFactorSetupOnly ? Math.min(this.absoluteMs, SETUP_ONLY_SESSION_MINUTES * 60_000) : this.absoluteMs;
    const session: BackOfficeSession = {
      id: randomUUID(),
      userId: user.id,
      tokenHash: sha256Hex(token),
      securityStamp: user.securityStamp,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: new Date(now.getTime() + lifetimeMs),
      reauthenticatedAt:
        kind.authenticatedSecondsAgo === undefined ? new Date(now) : kind.authenticatedSecondsAgo === null ? null : authenticationTime(now.getTime(), kind.authenticatedSecondsAgo),
      twoFactorSetupOnly: kind.twoFactorSetupOnly === true,
      revokedAt: null,
      ip: context.ip?.slice(0, 64) ?? null,
      userAgent: context.userAgent?.slice(0, 512) ?? null,
    };
    try {
      await this.write(session);
    } catch (error) {
      // The user was deleted after the sign-in checked them (the session row's foreign key refused it): a sign-in of
      // a user who no longer exists, answered as one of an unknown user, not a 500. Other failures go on. Read from the
      // store: a host manager's findById may answer from a cache that still holds the deleted user.
      if ((await this.userManager.store.findById(user.id)) === null) throw BackOfficeHttpError.invalidCredentials();
      throw error;
    }
    return { token, session };
  }

  /** Writes a new session row, with the sign-in's deferred writes when the request holds some. */
  private async write(session: BackOfficeSession): Promise<void> {
    const request = BackOfficeRequestContextStore.current();
    const writes = request.signInWrites;
    if (writes && (writes.lastLoginAt || writes.auditEntries.length > 0)) {
      request.signInWrites = undefined;
      await this.store.createWithSignIn!(session, { lastLoginAt: writes.lastLoginAt, auditEntries: writes.auditEntries });
    } else {
      await this.store.create(session);
    }
  }

  /**
   * Lets the last-login write and the `login.success` audit entry of a sign-in in the current request wait for
   * the session row, so {@link create} writes all three in one statement. Does nothing when the stores cannot.
   * Call {@link flushSignInWrites} when the sign-in ends without a session (or fails).
   */
  deferSignInWrites(): void {
    if (!this.signInFold || !BackOfficeRequestContextStore.active()) return;
    BackOfficeRequestContextStore.current().signInWrites = { ...this.signInFold, auditEntries: [] };
  }

  /** Writes what {@link deferSignInWrites} held back and no session took with it; stops deferring. */
  async flushSignInWrites(): Promise<void> {
    const context = BackOfficeRequestContextStore.current();
    const writes = context.signInWrites;
    if (!writes) return;
    context.signInWrites = undefined;
    if (writes.lastLoginAt) await this.userManager.store.updateProfile(writes.lastLoginAt.userId, { lastLoginAt: writes.lastLoginAt.at }, writes.lastLoginAt.at);
    for (const entry of writes.auditEntries) await this.auditStore!.append(entry);
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
    const session = this.withPendingTouch(found.session);
    const now = this.clock.now();
    // listLive's rule (isLiveOnStamp), in two steps: the stamp once the user is read
    if (!this.isUnrevokedAndUnexpired(session, now)) return null;
    // request.backOffice.user: redacted when logged, whatever store read it (see BackOfficeUser)
    const user = redactSecretsWhenLogged(found.user === undefined ? await this.userManager.findById(session.userId) : found.user);
    if (!user || !user.isApproved || !holdsStamp(session, user.securityStamp)) return null;
    if (options.touch !== false) this.touchIfDue(session, now);
    return found.loginProviders ? { session, user, loginProviders: found.loginProviders } : { session, user };
  }

  /**
   * Slides the idle timeout of a session {@link authenticate} returned with `touch: false`, once the request has
   * shown it may keep the session alive (the guard: after the XSRF check, so a forged request does not; OWASP ASVS
   * 5.0 3.5.1). Throttled like `authenticate`'s own last-seen write, which the request does not wait for.
   */
  slideIdleDeadline(session: BackOfficeSession): void {
    this.touchIfDue(session, this.clock.now());
  }

  private touchIfDue(session: BackOfficeSession, now: Date): void {
    if (now.getTime() - session.lastSeenAt.getTime() >= this.touchIntervalMs) this.touch(session, now);
  }

  /**
   * Slides the idle timeout after the response; never revives a revoked session. Until a later read of the
   * session sees the write, this process remembers it: a request whose read raced the write still slides.
   */
  private touch(session: BackOfficeSession, now: Date): void {
    session.lastSeenAt = now;
    if (this.pendingTouches.size >= 10_000) this.forgetTouchesBefore(now.getTime() - this.idleMs);
    this.forgetTouch(session.id); // re-inserted last: the map's order is the order of the writes
    this.pendingTouches.set(session.id, { at: now, userId: session.userId });
    const ofUser = this.pendingTouchesOfUser.get(session.userId);
    if (ofUser) ofUser.add(session.id);
    else this.pendingTouchesOfUser.set(session.userId, new Set([session.id]));
    this.background.run('session last-seen update', () => this.store.touch(session.id, now));
  }

  /** Forgets the remembered write of session `sessionId` (in both maps). */
  private forgetTouch(sessionId: string): void {
    const pending = this.pendingTouches.get(sessionId);
    if (!pending) return;
    this.pendingTouches.delete(sessionId);
    const ofUser = this.pendingTouchesOfUser.get(pending.userId);
    ofUser?.delete(sessionId);
    if (ofUser?.size === 0) this.pendingTouchesOfUser.delete(pending.userId);
  }

  /**
   * Writes this process's remembered last-seen writes of the user's sessions ({@link touch}) and waits for them, so the
   * store's read that follows (list, listPage, revokeAll: the store filters, orders, pages and counts by last-seen)
   * sees every session live by one, as {@link authenticate} does. The same writes as those in flight (a no-op for one
   * that committed first), all in one (`touchMany`: one statement in the built-in store; one `touch` per session for a
   * store without it); none when the user has no remembered write, or only ones too old to keep a session alive.
   */
  private async flushTouchesOf(userId: string, seenAfter: Date): Promise<void> {
    const ids = this.pendingTouchesOfUser.get(userId);
    if (!ids) return;
    const flushed = [...ids].map((id) => ({ id, pending: this.pendingTouches.get(id)! }));
    const due = flushed.filter(({ pending }) => pending.at > seenAfter).map(({ id, pending }) => ({ sessionId: id, at: pending.at }));
    if (due.length > 0 && this.store.touchMany) await this.store.touchMany(due);
    else await Promise.all(due.map(({ sessionId, at }) => this.store.touch(sessionId, at)));
    for (const { id, pending } of flushed) {
      if (this.pendingTouches.get(id) === pending) this.forgetTouch(id); // visible now (unless touched again meanwhile)
    }
  }

  /**
   * Drops remembered writes too old to keep any session alive (sessions that were not seen again), oldest first,
   * up to the first recent one: amortized O(1) per touch however many sessions are active (a full scan on every
   * touch made CPU grow with the square of them). If the clock steps back, a write older than one after it is
   * dropped a little later, never early.
   */
  private forgetTouchesBefore(cutoffMs: number): void {
    for (const [id, { at }] of this.pendingTouches) {
      if (at.getTime() > cutoffMs) return;
      this.forgetTouch(id);
    }
  }

  /**
   * `session` (as read from the store) with the last-seen time of a write of this process not visible yet
   * ({@link touch}); a remembered write the read already sees is forgotten. Every liveness decision of the service
   * on a session it reads (authenticate, findLiveSessionOf, endReplaced) takes it through this, so they agree; those
   * on the user's sessions that the store reads by last-seen (list, listPage, revokeAll) flush them first ({@link flushTouchesOf}).
   */
  private withPendingTouch(session: BackOfficeSession): BackOfficeSession {
    const pending = this.pendingTouches.get(session.id)?.at;
    if (pending && pending > session.lastSeenAt) session.lastSeenAt = pending;
    else if (pending) this.forgetTouch(session.id); // the write is visible now
    return session;
  }

  /**
   * One indexed lookup, mapped by hand (it runs on every authenticated request). `user` is the session's user
   * (null when gone) when the query could read it too, else undefined.
   */
  private async findByTokenHash(
    tokenHash: string,
  ): Promise<{ session: BackOfficeSession; user?: BackOfficeUser | null; loginProviders?: string[] } | null> {
    if (this.joinsUser) return this.store.findByTokenHashWithUser!(tokenHash, this.readsLogins ? { logins: true } : {});
    const session = await this.store.findByTokenHash(tokenHash);
    return session ? { session } : null;
  }

  /**
   * Not revoked, and live by the rule listLive and revokeAll count by (`isLiveOnStamp`: {@link isUnexpired} and
   * {@link holdsStamp}) at `now`.
   */
  private isLive(session: BackOfficeSession, securityStamp: string, now: Date): boolean {
    return this.isUnrevokedAndUnexpired(session, now) && holdsStamp(session, securityStamp);
  }

  /** {@link isLive} but for the stamp (which `authenticate` checks once the user is read). */
  private isUnrevokedAndUnexpired(session: BackOfficeSession, now: Date): boolean {
    return session.revokedAt === null && isUnexpired(session, now, idleCutoff(now, this.idleMs));
  }

  /** The idle and absolute deadlines of a live session. */
  deadlines(session: BackOfficeSession): BackOfficeSessionDeadlines {
    const idle = session.lastSeenAt.getTime() + this.idleMs;
    const absolute = session.expiresAt.getTime();
    return {
      now: this.clock.now().toISOString(),
      idleExpiresAt: new Date(Math.min(idle, absolute)).toISOString(),
      absoluteExpiresAt: new Date(absolute).toISOString(),
    };
  }

  /** True while session `sessionId` of `user` is live (not revoked, not timed out, same security stamp). */
  async isLiveSessionOf(sessionId: string, user: Pick<BackOfficeUser, 'id' | 'securityStamp'>): Promise<boolean> {
    return (await this.findLiveSessionOf(sessionId, user)) !== null;
  }

  /** Session `sessionId` of `user` while it is live (not revoked, not timed out, same security stamp), else null. */
  async findLiveSessionOf(sessionId: string, user: Pick<BackOfficeUser, 'id' | 'securityStamp'>): Promise<BackOfficeSession | null> {
    if (!isUuid(sessionId)) return null;
    const session = await this.store.findById(user.id, sessionId);
    return session && this.isLive(this.withPendingTouch(session), user.securityStamp, this.clock.now()) ? session : null;
  }

  /**
   * The user's live sessions, most recently seen first: only those made under the user's current security
   * stamp (the others no longer authenticate). Live by this process's last-seen writes not committed yet too (they are
   * written first).
   */
  async list(user: Pick<BackOfficeUser, 'id' | 'securityStamp'>, currentSessionId?: string): Promise<BackOfficeSessionDto[]> {
    const now = this.clock.now();
    const seenAfter = idleCutoff(now, this.idleMs);
    await this.flushTouchesOf(user.id, seenAfter);
    const rows = await this.store.listLive(user.id, user.securityStamp, now, seenAfter);
    // A copy: the host store's array may be frozen or cached (sorting it in place would throw or reorder it).
    return [...rows].sort(byLastSeenThenId).map((s) => toSessionDto(s, currentSessionId));
  }

  /**
   * One page of {@link list} (same sessions, same order, ties by id) and whether sessions follow it. With a store's
   * `listLivePage` one read of at most `take + 1` rows; otherwise `listLive`, ordered and cut here.
   */
  async listPage(
    user: Pick<BackOfficeUser, 'id' | 'securityStamp'>,
    page: BackOfficeListPage,
    currentSessionId?: string,
  ): Promise<{ items: BackOfficeSessionDto[]; more: boolean }> {
    const now = this.clock.now();
    const seenAfter = idleCutoff(now, this.idleMs);
    // Written before the read, not applied after it: the store orders and pages by last-seen, so pages stay whole and disjoint.
    await this.flushTouchesOf(user.id, seenAfter);
    let rows: BackOfficeSession[];
    let more: boolean;
    if (this.store.listLivePage) {
      const read = await this.store.listLivePage(user.id, user.securityStamp, now, seenAfter, { skip: page.skip, take: page.take + 1 });
      rows = read.slice(0, page.take);
      more = read.length > page.take;
    } else {
      // Sorted as a copy, as in list(): the store's array may be frozen or cached.
      ({ items: rows, more } = slicePage([...(await this.store.listLive(user.id, user.securityStamp, now, seenAfter))].sort(byLastSeenThenId), page));
    }
    return { items: rows.map((s) => toSessionDto(s, currentSessionId)), more };
  }

  /**
   * Revokes one of the user's own sessions; false when it is not theirs. Given the user (with its security stamp),
   * also false when the session is no longer live (revoked, timed out, or made under a stamp the user no longer has):
   * it authenticates nothing already, so nothing ends (and `DELETE /auth/sessions/:id` audits no revocation). Given
   * only the user's id, any session of theirs not revoked yet is revoked.
   */
  async revoke(user: string | Pick<BackOfficeUser, 'id' | 'securityStamp'>, sessionId: string): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    if (typeof user !== 'string' && !(await this.findLiveSessionOf(sessionId, user))) return false;
    return this.store.revoke(typeof user === 'string' ? user : user.id, sessionId, this.clock.now());
  }

  /**
   * Ends the session of `token`, whoever's it is, unless it is `keepSessionId`: a sign-in terminates the session token
   * the browser sent with it (OWASP ASVS 5.0 7.2.4), so a copy of it taken by someone else, or the previous person's
   * session on a shared computer, stops working. Nothing for a token of no session. A session it ends is published
   * (`UserSessionsRevokedNotification`, `count` 1, audited) for its owner, who may be another user (OWASP ASVS 5.0
   * 16.3.2), only when it was live: one already ended (idle or absolute timeout, a stamp its owner no longer has) is
   * revoked too, but nothing ended now.
   */
  async endReplacedSession(token: string | undefined, keepSessionId: string): Promise<void> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return;
    const session = await this.store.findByTokenHash(sha256Hex(token));
    if (session && session.revokedAt === null) await this.endReplaced(session, keepSessionId);
  }

  /**
   * The unrevoked session of `token` (the session cookie a request carried), as `{ userId, sessionId }`, or null: what
   * a sign-in that completes in a later request (an external provider's callback, to which the SameSite=Strict cookie
   * does not come back) ends through {@link endReplacedSessionById}.
   */
  async replacedSessionOf(token: string | undefined): Promise<{ userId: string; sessionId: string } | null> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return null;
    const session = await this.store.findByTokenHash(sha256Hex(token));
    return session && session.revokedAt === null ? { userId: session.userId, sessionId: session.id } : null;
  }

  /**
   * {@link endReplacedSession} of a session found before ({@link replacedSessionOf}): same revocation, same notification
   * (only when the session is still live when it ends: it may have timed out or lost its stamp since it was found).
   */
  async endReplacedSessionById(replaced: { userId: string; sessionId: string } | null | undefined, keepSessionId: string): Promise<void> {
    if (!replaced || replaced.sessionId === keepSessionId || !isUuid(replaced.sessionId)) return;
    const session = await this.store.findById(replaced.userId, replaced.sessionId);
    if (session && session.revokedAt === null) await this.endReplaced(session, keepSessionId);
  }

  /** Revokes the unrevoked `session` (not `keepSessionId`); published for its owner only if it was live (listLive's rule). */
  private async endReplaced(session: BackOfficeSession, keepSessionId: string): Promise<void> {
    if (session.id === keepSessionId) return;
    const now = this.clock.now();
    const owner = await this.userManager.findById(session.userId);
    const wasLive = owner !== null && this.isLive(this.withPendingTouch(session), owner.securityStamp, now);
    if (!(await this.store.revoke(session.userId, session.id, now))) return;
    if (owner && wasLive) await this.userManager.notify(UserSessionsRevokedNotification, owner, { count: 1 });
  }

  /**
   * Revokes every session of the user not revoked yet, except `exceptSessionId`. Returns how many ended. Given the
   * user (with its security stamp), counts only the sessions that were live (not already ended by the idle or
   * absolute timeout or by a stamp the user no longer has), which is what a published or answered count must say;
   * a session live by a last-seen write of this process not committed yet counts (written first, as in {@link list}).
   */
  async revokeAll(user: string | Pick<BackOfficeUser, 'id' | 'securityStamp'>, exceptSessionId?: string): Promise<number> {
    const now = this.clock.now();
    if (typeof user === 'string') return this.store.revokeAll(user, now, exceptSessionId);
    const seenAfter = idleCutoff(now, this.idleMs);
    await this.flushTouchesOf(user.id, seenAfter);
    return this.store.revokeAll(user.id, now, exceptSessionId, { securityStamp: user.securityStamp, seenAfter });
  }

  /**
   * Ends the user's other sessions for a sign-in that made `sessionId` (`allowConcurrentLogins: false`): with a store
   * that has `revokeOthersIfLive`, only while `sessionId` is live, so of two sign-ins at once exactly one stays.
   */
  async revokeOthersAtSignIn(userId: string, sessionId: string): Promise<number> {
    const now = this.clock.now();
    return this.store.revokeOthersIfLive ? this.store.revokeOthersIfLive(userId, sessionId, now) : this.store.revokeAll(userId, now, sessionId);
  }

  /** True while the session's last sign-in or re-authentication lies within `session.reauthenticationMinutes`. */
  isRecentlyAuthenticated(session: Pick<BackOfficeSession, 'reauthenticatedAt'>, withinMinutes?: number): boolean {
    const windowMs = withinMinutes === undefined ? this.reauthenticationMs : minutesToMs(withinMinutes);
    const at = session.reauthenticatedAt;
    return at !== null && this.clock.now().getTime() - new Date(at).getTime() < windowMs;
  }

  /**
   * The step-up rule (`@RequiresRecentSignIn()`, and routes where it depends on the request, such as an admin's edit
   * that moves another user's email): throws 401 `reauthentication_required` unless the request came with a session
   * cookie whose sign-in or re-authentication is recent ({@link isRecentlyAuthenticated}). An API user's bearer token
   * has no sign-in to renew and is always refused.
   */
  assertRecentSignIn(auth: RecentSignInSubject, withinMinutes?: number): void {
    if (!this.hasRecentSignIn(auth, withinMinutes)) throw BackOfficeHttpError.reauthenticationRequired();
  }

  /**
   * Whether the request passes the step-up rule ({@link assertRecentSignIn}) without throwing: a session cookie whose
   * sign-in or re-authentication is recent. Always false for a bearer token.
   */
  hasRecentSignIn(auth: RecentSignInSubject, withinMinutes?: number): boolean {
    return auth.scheme === 'cookie' && auth.session != null && this.isRecentlyAuthenticated(auth.session, withinMinutes);
  }

  /**
   * A re-authentication of the session's user (password, passkey, an external provider's round trip): records it
   * (`@RequiresRecentSignIn()` routes accept the session for the next few minutes) and gives the session a new
   * token (OWASP ASVS 5.0 7.2.4), in one write: from then on the token it had (`session.tokenHash`) authenticates
   * nothing. The session stays the same session (id, creation, deadlines). Returns the new token for the cookie
   * ({@link BackOfficeSessionIssuer.renew} sets it), or null when the session no longer has that token: revoked
   * meanwhile, or renewed by another re-authentication first. `reauthenticated: false` renews the token without
   * recording a re-authentication (the step-up window stays where it was): for a rise in privilege that proves no
   * more than the session itself, such as confirming the enrolment of a setup-only session. `authenticatedSecondsAgo`
   * (a provider's `auth_time`): the re-authentication was made that long before now (never after now), and the
   * step-up window runs from then, not from the callback; never earlier than the session's last one. An
   * `authenticatedSecondsAgo` that is no time (not finite, further in the future than the clock skew, before the
   * earliest Date: as {@link create} takes it) refuses the step-up: null, nothing written, the session keeps its token
   * and its earlier re-authentication (never fresher for it, never an Invalid Date).
   */
  async renewToken(session: BackOfficeSession, options: RenewTokenOptions = {}): Promise<string | null> {
    const reauthenticatedAt = options.reauthenticated === false ? undefined : this.reauthenticationTime(session, options.authenticatedSecondsAgo);
    if (reauthenticatedAt === null) return null;
    const token = randomToken(32);
    const tokenHash = sha256Hex(token);
    const changes: BackOfficeSessionChanges = reauthenticatedAt === undefined ? {} : { reauthenticatedAt };
    if (this.store.replaceTokenHash) {
      if (!(await this.store.replaceTokenHash(session.id, session.tokenHash, tokenHash, changes))) return null;
    } else {
      await this.store.update(session.id, { ...changes, tokenHash }, { onlyIfLive: true });
    }
    Object.assign(session, changes, { tokenHash });
    return token;
  }

  /**
   * When a re-authentication made `secondsAgo` (none: now; never in the future) happened, and not before the session's
   * last one; null when `secondsAgo` is no time ({@link authenticationTime}).
   */
  private reauthenticationTime(session: Pick<BackOfficeSession, 'reauthenticatedAt'>, secondsAgo: number | undefined): Date | null {
    const now = this.clock.now().getTime();
    const at = secondsAgo === undefined ? now : authenticationTime(now, secondsAgo)?.getTime();
    if (at === undefined) return null;
    // A host store may answer undefined (or an unparsable value) for "never": no earlier re-authentication to keep.
    const stored = session.reauthenticatedAt == null ? Number.NaN : new Date(session.reauthenticatedAt).getTime();
    const last = Number.isFinite(stored) ? stored : Number.NEGATIVE_INFINITY;
    return new Date(Math.min(now, Math.max(at, last)));
  }

  /**
   * Records that the session's user has just proved who they are: `@RequiresRecentSignIn()` routes accept the
   * session for the next few minutes. It keeps the session's token: a re-authentication should renew it,
   * through {@link BackOfficeSessionIssuer.renew} (or {@link renewToken}), which records it too.
   */
  async markReauthenticated(session: BackOfficeSession): Promise<void> {
    const now = this.clock.now();
    await this.store.update(session.id, { reauthenticatedAt: now }, { onlyIfLive: true });
    session.reauthenticatedAt = now;
  }

  /**
   * Announces the stamp an account change made in `sessionId` is about to give its user: from now on the session
   * is signed in under that stamp as well as its own, so its requests in flight pass while the change is written.
   * {@link adoptSecurityStamp} ends the announcement. The stamp is random, made for this session's change only, and
   * never leaves the server. With a store that can read the user (`BackOfficeSessionStore.announceSecurityStamp`)
   * the session keeps one announcement per change in flight, so of several changes sent at once from it whichever
   * writes first, or last, the session holds its stamp; a stamp it announced and the user's row holds now becomes
   * its own in the same write. Other stores keep the latest announcement only.
   */
  async announceSecurityStamp(sessionId: string, nextSecurityStamp: string): Promise<void> {
    if (this.store.announceSecurityStamp && this.store.readsUsersOf?.(this.userManager.store)) return this.store.announceSecurityStamp(sessionId, nextSecurityStamp);
    await this.store.update(sessionId, { nextSecurityStamps: [nextSecurityStamp] }, { onlyIfLive: true });
  }

  /**
   * Keeps `sessionId` of user `userId` alive across a security-stamp change made by its own user (e.g. password
   * change): the session adopts `securityStamp` only while the user's row holds it. Of two changes made at once
   * from the session, the one whose stamp a later write replaced adopts nothing (the session keeps the later one,
   * which it announced, and that change adopts it), so the session never ends up on a stamp the user no longer has;
   * a stamp renewed by someone else is never adopted. Its own announcement ends; those of the session's other changes in
   * flight stay, so the session is not signed out between such a change's write and its adoption.
   * True when adopted. Without `userId` (the older call) and a store that cannot read users, the session adopts
   * the stamp unconditionally.
   */
  async adoptSecurityStamp(sessionId: string, securityStamp: string, userId?: string): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    if (this.store.adoptSecurityStamp && this.store.readsUsersOf?.(this.userManager.store)) return this.store.adoptSecurityStamp(sessionId, securityStamp);
    if (userId === undefined) {
      await this.store.update(sessionId, { securityStamp, nextSecurityStamps: null });
      return true;
    }
    // A store that cannot read the user with the session: read both, then write (a change in between can outrun it).
    const session = await this.store.findById(userId, sessionId);
    if (!session || session.revokedAt !== null || (await this.userManager.findById(session.userId))?.securityStamp !== securityStamp) return false;
    // Only its own announcement ends: other changes of the session may have announced their stamps meanwhile.
    const announced = session.nextSecurityStamps;
    const changes = announced?.includes(securityStamp) ? { securityStamp, nextSecurityStamps: announced.filter((s) => s !== securityStamp) } : { securityStamp };
    await this.store.update(sessionId, changes, { onlyIfLive: true });
    return true;
  }

  /**
   * Turns a setup-only session into a full one once two-factor enrolment is confirmed (normal lifetime). It keeps
   * the session's token: renew it first ({@link BackOfficeSessionIssuer.renew} with `reauthenticated: false`), as
   * `BackOfficeAccountService.enableTwoFactor` does, so the token of the setup-only session never reaches more.
   */
  async completeTwoFactorSetup(session: BackOfficeSession): Promise<void> {
    if (!session.twoFactorSetupOnly) return;
    const expiresAt = new Date(session.createdAt.getTime() + this.absoluteMs);
    await this.store.update(session.id, { twoFactorSetupOnly: false, expiresAt });
    Object.assign(session, { twoFactorSetupOnly: false, expiresAt });
  }
}
