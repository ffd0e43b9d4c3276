import type { BackOfficeListPage } from '../common/list-page.js';
import type { BackOfficeUserStore, FailedAccessResult, LockoutPolicy } from '../users/stores/user-store.interface.js';

/** The OAuth client of an API user, as stored: secrets as SHA-256 only. */
export interface BackOfficeApiClient {
  userId: string;
  clientId: string;
  secretHash: string;
  /** The secret before the last rotation, accepted until `previousSecretExpiresAt`. */
  previousSecretHash: string | null;
  previousSecretExpiresAt: Date | null;
  accessFailedCount: number;
  lockoutEnd: Date | null;
  createdAt: Date;
  rotatedAt: Date | null;
}

/** An API client with what the listing shows of its user. */
export interface BackOfficeApiClientListing {
  client: BackOfficeApiClient;
  name: string;
  isApproved: boolean;
  groups: string[];
}

/** A bearer token as stored (SHA-256 only). */
export interface BackOfficeAccessTokenRecord {
  userId: string;
  expiresAt: Date;
  revokedAt: Date | null;
}

/**
 * API clients and their bearer tokens. A rotation is one write, tokens are revoked in one statement. Wrong secrets are
 * not counted (see `recordFailedAccess`); a client lockout the store holds still refuses the client until it ends.
 */
export interface BackOfficeApiClientStore {
  createClient(userId: string, clientId: string, secretHash: string, now: Date): Promise<void>;
  findClient(clientId: string): Promise<BackOfficeApiClient | null>;
  /** Every client with its user, oldest first. */
  listClients(): Promise<BackOfficeApiClientListing[]>;
  /**
   * Optional: one page of {@link listClients} (oldest first, ties by user id): `page.skip` clients passed over, then at
   * most `page.take`, with how many there are in all (`totalExact: false` when `total` is an estimate). Stores without
   * it get {@link listClients}, cut into the page in memory.
   */
  listClientsPage?(page: BackOfficeListPage): Promise<{ items: BackOfficeApiClientListing[]; total: number; totalExact?: boolean }>;
  /**
   * Sets a new secret; the current one becomes the previous one until `previousSecretExpiresAt` (null: it
   * stops at once). Clears the lockout. The client id, or null when the user has no client.
   */
  rotateSecret(userId: string, secretHash: string, previousSecretExpiresAt: Date | null, now: Date): Promise<string | null>;
  /**
   * Atomically counts one wrong secret; locks at the maximum. Not counted while locked.
   * @deprecated No longer called: a wrong client secret counts toward no lockout (`BackOfficeApiUserService.issueToken`).
   * Kept so host stores and the store contract still build; a lockout a store holds (`lockoutEnd`) is still honoured.
   */
  recordFailedAccess(userId: string, policy: LockoutPolicy, now: Date): Promise<FailedAccessResult>;
  resetAccessFailedCount(userId: string): Promise<void>;
  /**
   * Optional: ends the client's lockout and clears its failed count (an admin's unlock of the API user). A store
   * without it leaves a client lockout to run out (the unlock logs a warning).
   */
  clearLockout?(userId: string): Promise<void>;
  /**
   * Stores a bearer token. With `issuedFor`, only while the client still has that secret (the current one, or the
   * previous one within its overlap), the client is not locked and its user is enabled, checked by the write itself, so
   * a rotation, disable or lockout that came after the secret was checked leaves no token behind: false when nothing
   * was written. When the secret is the previous one as the write finds it (also one that was current when the caller
   * checked it, before a rotation with an overlap), the token expires no later than `previousSecretExpiresAt`.
   *
   * Answers the expiry it stored when it wrote the token (`POST /auth/token` states `expires_in` from it); `true` or
   * nothing means `expiresAt` as requested (a store that may store an earlier expiry must answer it).
   */
  createAccessToken(userId: string, tokenHash: string, now: Date, expiresAt: Date, issuedFor?: { secretHash: string }): Promise<boolean | Date | void>;
  findAccessToken(tokenHash: string): Promise<BackOfficeAccessTokenRecord | null>;
  /** Revokes every live token of the user; how many. */
  revokeAccessTokens(userId: string, now: Date): Promise<number>;
  /**
   * Optional: this store writing inside the open transaction of `userStore` (the store a user store's
   * `transaction` or `withGroupLock` hands its work), or null when it cannot join it (another database, no transaction
   * open). Used by:
   * - a disable, which revokes an API user's bearer tokens through it, so the revocation commits or rolls back with
   *   the disable (OWASP ASVS 4.0 3.3.1); without it the tokens are revoked right after the disable's commit;
   * - a secret rotation by a caller outside `admin` (`POST /users/api/:id/rotate-secret`), which re-checks the caller's
   *   right to manage the API user under the `admin` group lock and writes the new secret and revokes the tokens
   *   through it, in that transaction (OWASP ASVS 5.0 15.4.2). Without it the rotation is written through this store
   *   while the lock is still held (not rolled back with it); the lock's transaction keeps its connection meanwhile,
   *   so a store sharing the user store's connection pool should implement this method.
   */
  inTransactionOf?(userStore: BackOfficeUserStore): BackOfficeApiClientStore | null;
  /** Deletes tokens expired for more than a day. */
  prune(now: Date): Promise<{ accessTokens: number }>;
}
