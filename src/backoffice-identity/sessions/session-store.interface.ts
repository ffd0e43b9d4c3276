import type { BackOfficeListPage } from '../common/list-page.js';
import type { BackOfficeAuditStore, NewBackOfficeAuditEntry } from '../audit/backoffice-audit-store.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficeUserStore } from '../users/stores/user-store.interface.js';

/** Writes of a successful sign-in that go with the new session row (see {@link BackOfficeSessionStore.createWithSignIn}). */
export interface BackOfficeSignInWrites {
  /** The user's last-login time (as `UserStore.updateProfile(userId, { lastLoginAt: at }, at)` writes it). */
  lastLoginAt?: { userId: string; at: Date };
  /** Audit entries (as `BackOfficeAuditStore.append` writes them). */
  auditEntries?: NewBackOfficeAuditEntry[];
}

/** A server-side session as stored. The cookie holds a random token; only its SHA-256 is stored. */
export interface BackOfficeSession {
  id: string;
  userId: string;
  /** SHA-256 (hex) of the cookie token. */
  tokenHash: string;
  /** The user's security stamp when the session was made: a new stamp ends the session. */
  securityStamp: string;
  /**
   * Stamps the user's row is about to get from account changes made in this session, oldest first, one per change in
   * flight (two tabs changing the password and turning 2FA on at once announce two): the session stays signed in
   * under each of them too until it adopts it (so its own requests in flight never see a stamp mismatch, whichever
   * change writes first). Each is random and made for this session only, so none lets another session in. A store
   * without it (undefined) keeps the session signed out for the instant between the two writes; null or empty: none.
   */
  nextSecurityStamps?: string[] | null;
  createdAt: Date;
  lastSeenAt: Date;
  /** The absolute end (never extended). */
  expiresAt: Date;
  /** When the user last proved who they are in this session (sign-in or re-authentication). */
  reauthenticatedAt: Date | null;
  revokedAt: Date | null;
  ip: string | null;
  userAgent: string | null;
  /** A session that reaches only the two-factor setup routes. */
  twoFactorSetupOnly: boolean;
}

/** How many announced stamps a session keeps at most (`BackOfficeSession.nextSecurityStamps`): the newest. */
export const MAX_ANNOUNCED_SECURITY_STAMPS = 8;

/**
 * Fields a session may change after it was made. `tokenHash` changes at a re-authentication (a new cookie token,
 * OWASP ASVS 5.0 7.2.4): a store's `update` must write it like the others.
 */
export type BackOfficeSessionChanges = Partial<Pick<BackOfficeSession, 'tokenHash' | 'securityStamp' | 'nextSecurityStamps' | 'reauthenticatedAt' | 'twoFactorSetupOnly' | 'expiresAt'>>;

/**
 * Sessions port (like ASP.NET Core's `ITicketStore`). The session service keeps the rules (idle and absolute
 * timeouts, security stamp, throttled last-seen writes); the store keeps the rows. Every write that ends
 * sessions is one atomic statement, so a revoked session never comes back.
 */
export interface BackOfficeSessionStore {
  create(session: BackOfficeSession): Promise<void>;
  /**
   * Optional: which writes of a successful sign-in {@link createWithSignIn} can make for these stores (e.g. all
   * tables live in one database): the user's last login (of `userStore`) and audit entries (of `auditStore`).
   */
  signInWritesFor?(userStore: BackOfficeUserStore, auditStore: BackOfficeAuditStore | null): { lastLogin: boolean; audit: boolean };
  /**
   * Optional: {@link create} together with the writes of the sign-in, atomically (one statement in the built-in
   * store), only for the kinds {@link signInWritesFor} allowed.
   */
  createWithSignIn?(session: BackOfficeSession, writes: BackOfficeSignInWrites): Promise<void>;
  /** The session whose token hash this is (live or not), or null. */
  findByTokenHash(tokenHash: string): Promise<BackOfficeSession | null>;
  /**
   * True when {@link findByTokenHashWithUser} can read users of `userStore` (e.g. both live in one database):
   * then the auth guard reads session and user in one round trip.
   */
  readsUsersOf?(userStore: BackOfficeUserStore): boolean;
  /**
   * The session with its user (null when the user is gone), in one round trip. With `logins`, also the providers
   * of the user's linked external logins, oldest link first (`GET /auth/me` lists them); a store that leaves
   * `loginProviders` out makes the caller ask the user store.
   */
  findByTokenHashWithUser?(
    tokenHash: string,
    options?: { logins?: boolean },
  ): Promise<{ session: BackOfficeSession; user: BackOfficeUser | null; loginProviders?: string[] } | null>;
  /** Session `sessionId` of `userId`, or null. */
  findById(userId: string, sessionId: string): Promise<BackOfficeSession | null>;
  /**
   * Sessions of the user made under `securityStamp` (or about to adopt it: among `nextSecurityStamps`), not revoked,
   * ending after `now`, seen after `seenAfter`; most recently seen first.
   */
  listLive(userId: string, securityStamp: string, now: Date, seenAfter: Date): Promise<BackOfficeSession[]>;
  /**
   * Optional: one page of {@link listLive}, most recently seen first and, among sessions seen at the same time, by
   * id (so pages never overlap or leave one out while nothing changes): `page.skip` sessions passed over, then at
   * most `page.take`. `GET /auth/sessions` asks for one more than it answers to know whether a next page exists.
   * Stores without it get {@link listLive} (every live session, ordered and cut into the page in memory).
   */
  listLivePage?(userId: string, securityStamp: string, now: Date, seenAfter: Date, page: BackOfficeListPage): Promise<BackOfficeSession[]>;
  /** Moves last-seen forward to `at` (never back, never on a revoked session). */
  touch(sessionId: string, at: Date): Promise<void>;
  /**
   * Optional: {@link touch} of each of `touches` (distinct sessions) in one write, with the same rule for each (never
   * back, never on a revoked session): the built-in store sends one statement however many there are. The session
   * service writes a user's remembered last-seen writes this way before listing or ending their sessions. Stores
   * without it get one {@link touch} per session.
   */
  touchMany?(touches: ReadonlyArray<{ sessionId: string; at: Date }>): Promise<void>;
  /** Applies `changes`; with `onlyIfLive`, not to a revoked session. */
  update(sessionId: string, changes: BackOfficeSessionChanges, options?: { onlyIfLive?: boolean }): Promise<void>;
  /**
   * Optional: gives session `sessionId` the token hash `tokenHash` together with `changes` (a re-authentication
   * renews the cookie token, and the old token must stop authenticating at once), only while the session is
   * unrevoked and still has `previousTokenHash`; true when it did. One atomic write: of two re-authentications
   * of one token at once exactly one succeeds, so the cookie the browser keeps is the one stored. Stores without
   * it get `update(sessionId, { ...changes, tokenHash }, { onlyIfLive: true })` (the last of two such writes wins).
   */
  replaceTokenHash?(sessionId: string, previousTokenHash: string, tokenHash: string, changes: BackOfficeSessionChanges): Promise<boolean>;
  /**
   * Optional, for users this store reads ({@link readsUsersOf}): the unrevoked session `sessionId` adds
   * `nextSecurityStamp` to its announcements (`nextSecurityStamps`), keeping those of the session's other changes in
   * flight, in one atomic write (two announcements at once both stay). In the same write an announced stamp its
   * user's row holds now (a change of the session wrote it and has not adopted it yet) becomes the session's
   * `securityStamp`, and at most {@link MAX_ANNOUNCED_SECURITY_STAMPS} announcements are kept, the newest (a change
   * that failed before writing leaves its random stamp behind). Stores without it get a plain
   * `update(sessionId, { nextSecurityStamps: [nextSecurityStamp] }, { onlyIfLive: true })`, one announcement at a
   * time: two changes at once from one session may then answer its requests 401 for a moment.
   */
  announceSecurityStamp?(sessionId: string, nextSecurityStamp: string): Promise<void>;
  /**
   * Optional, for users this store reads ({@link readsUsersOf}): the unrevoked session `sessionId` adopts
   * `securityStamp` only if its user's row holds that stamp now, atomically with that read (a stamp the user no
   * longer has, because a later change wrote another, is never adopted); of the session's announcements
   * (`nextSecurityStamps`) only this stamp ends (other changes of the session in flight keep theirs).
   * True when adopted. Stores without it get a read of the user and {@link update}, which a write in between can
   * outrun; that `update` also writes back the announcements as read, so one another change made meanwhile is lost
   * (its request may answer 401 for a moment; it never lets a session in). Implement it together with
   * {@link announceSecurityStamp}.
   */
  adoptSecurityStamp?(sessionId: string, securityStamp: string): Promise<boolean>;
  /** Revokes one session of the user; false when it is not theirs or already revoked. */
  revoke(userId: string, sessionId: string, now: Date): Promise<boolean>;
  /**
   * Revokes every unrevoked session of the user except `exceptSessionId`; how many ended. With `live`, only the
   * sessions that were live count ({@link listLive}'s rule with that stamp and `seenAfter`, at `now`): a row already
   * ended by a timeout or a stamp the user no longer has is revoked too but not counted, so a caller that reports
   * the count (`backoffice.user.sessions.revoked`, `DELETE /auth/sessions`) reports only sessions that ended now.
   */
  revokeAll(userId: string, now: Date, exceptSessionId?: string, live?: { securityStamp: string; seenAfter: Date }): Promise<number>;
  /**
   * Optional: {@link revokeAll} for a sign-in with `allowConcurrentLogins: false`, only while `keepSessionId` itself is
   * unrevoked, and atomic with other calls for the same user: two sign-ins at once leave exactly one of them
   * signed in (with `revokeAll` each may end the other, leaving none). Stores without it get `revokeAll`.
   */
  revokeOthersIfLive?(userId: string, keepSessionId: string, now: Date): Promise<number>;
  /** Deletes sessions that ended (expired or revoked) more than a week before `now`. */
  prune(now: Date): Promise<{ sessions: number }>;
}
