import { countedPage, type BackOfficeListPage } from '../common/list-page.js';
import { Inject, Injectable } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import type { BackOfficeClock } from '../common/clock.js';
import { randomToken, sha256Hex } from '../common/crypto.js';
import { BACKOFFICE_API_CLIENT_STORE, BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { isUuid } from '../common/ids.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import {
  ApiSecretRotatedNotification,
  ApiTokenIssuedNotification,
  ApiTokenRefusedNotification,
  ApiUserCreatedNotification,
} from '../notifications/notifications.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUser, BackOfficeWriteAuthorizer } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { isUserGroupStore } from '../users/stores/user-store.interface.js';
import { findAsStored } from '../users/stores/find-as-stored.js';
import type { BackOfficeApiClient, BackOfficeApiClientListing, BackOfficeApiClientStore } from './api-client-store.interface.js';

/** Client ids: `boc_` + 144 random bits. Secrets: `bocs_` + 256 random bits. Tokens: `boat_` + 256 random bits. */
const CLIENT_ID_SHAPE = /^boc_[A-Za-z0-9_-]{24}$/;
const SECRET_SHAPE = /^bocs_[A-Za-z0-9_-]{43}$/;
const TOKEN_SHAPE = /^boat_[A-Za-z0-9_-]{43}$/;
/** Hash compared when the client id is unknown, so both paths do the same work. */
const DUMMY_HASH = sha256Hex('backoffice-api-client-dummy-secret');

/** The answer of a successful client credentials grant (RFC 6749 4.4.3). */
export interface BackOfficeAccessTokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

/** An API user as admins list it: never the secret. */
export interface BackOfficeApiUserView {
  id: string;
  name: string;
  clientId: string;
  groups: string[];
  disabled: boolean;
  createdAt: string;
  secretRotatedAt: string | null;
  previousSecretExpiresAt: string | null;
}

/** RFC 6749 5.2 error with the module's `code` beside `error`. */
export function oauthError(status: number, error: string, description: string, code = error, headers: Record<string, string> = {}): BackOfficeHttpError {
  return new BackOfficeHttpError(status, code, description, { error, error_description: description }, { 'Cache-Control': 'no-store', Pragma: 'no-cache', ...headers });
}

const hashEquals = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));

/**
 * API users (Umbraco's API Users): machine users in groups that sign in with the OAuth 2.0 client credentials
 * grant and call the API with short-lived opaque bearer tokens. Secrets and tokens are stored as SHA-256 only
 * (they are 256-bit random values, so a fast hash is enough); a wrong secret is audited but counted toward no lockout
 * (see {@link BackOfficeApiUserService.issueToken}); a rotation keeps the previous secret for an overlap window.
 */
function toApiUserView({ client, name, isApproved, groups }: BackOfficeApiClientListing, now: Date): BackOfficeApiUserView {
  return {
    id: client.userId,
    name,
    clientId: client.clientId,
    groups,
    disabled: !isApproved,
    createdAt: client.createdAt.toISOString(),
    secretRotatedAt: client.rotatedAt?.toISOString() ?? null,
    previousSecretExpiresAt:
      client.previousSecretExpiresAt && client.previousSecretExpiresAt.getTime() > now.getTime() ? client.previousSecretExpiresAt.toISOString() : null,
  };
}

@Injectable()
export class BackOfficeApiUserService {
  constructor(
    @Inject(BACKOFFICE_API_CLIENT_STORE) private readonly store: BackOfficeApiClientStore,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
  ) {}

  /**
   * Creates an API user in `groups`; the secret is returned once and only its hash is kept. Its email and username
   * are `<client id, lower case>@api-users.invalid` (under both `usernameIsEmail` settings). `authorize` is asked
   * about the API user as stored by the insert, in its transaction (a throw refuses: nothing kept), so a caller's
   * check of the groups cannot rest on a copy a concurrent group edit made stale (`CreateBackOfficeUserInput.authorize`).
   */
  async create(
    input: { name: string; groups: string[] },
    authorize?: BackOfficeWriteAuthorizer,
  ): Promise<{ user: BackOfficeUser; clientId: string; clientSecret: string }> {
    const clientId = `boc_${randomToken(18)}`;
    const clientSecret = `bocs_${randomToken(32)}`;
    // The synthetic address is the username too, whatever `usernameIsEmail` (with `false` the user validator requires
    // one): unique by the random client id, never a person's directory uid (`.invalid`, RFC 2606), and not the name an
    // admin types, which could meet (and so be refused beside, or be taken for) a person's username.
    const email = `${clientId.toLowerCase()}@api-users.invalid`;
    const result = await this.userManager.createUser({
      email,
      username: email,
      name: input.name,
      groups: input.groups,
      kind: 'api',
      ...(authorize ? { authorize } : {}),
    });
    if (!result.succeeded) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'The API user is not valid.', { errors: [...result.errors] });
    }
    const user = result.value!;
    try {
      await this.store.createClient(user.id, clientId, sha256Hex(clientSecret), this.clock.now());
    } catch (error) {
      await this.userManager.store.delete(user.id);
      throw error;
    }
    await this.userManager.notify(ApiUserCreatedNotification, user, { clientId, groups: user.groups });
    return { user, clientId, clientSecret };
  }

  async list(): Promise<BackOfficeApiUserView[]> {
    const now = this.clock.now();
    return (await this.store.listClients()).map((listing) => toApiUserView(listing, now));
  }

  /**
   * One page of {@link list} (oldest first) with how many API users there are (`totalExact: false` when the store
   * estimated it). With a store's `listClientsPage` one page is read; otherwise `listClients`, cut here.
   */
  async listPage(page: BackOfficeListPage): Promise<{ items: BackOfficeApiUserView[]; total: number; totalExact: boolean }> {
    const now = this.clock.now();
    const read = this.store.listClientsPage ? await this.store.listClientsPage(page) : countedPage(await this.store.listClients(), page);
    return { items: read.items.map((listing) => toApiUserView(listing, now)), total: read.total, totalExact: read.totalExact ?? true };
  }

  /**
   * Replaces the secret. The previous one keeps working for `overlapMinutes` (0: it stops at once) so running
   * clients can switch without downtime; a second rotation ends the first one's overlap. Clears the lockout.
   * Every bearer token issued so far is revoked (a rotation answers a leaked secret, and a token is what a leaked
   * secret was used for: OWASP ASVS 4.0 3.3.1, 3.5.2); during the overlap the previous secret still gets tokens,
   * which end no later than the overlap does (see {@link issueToken}).
   */
  async rotateSecret(
    userId: string,
    overlapMinutes: number,
    authorize?: BackOfficeWriteAuthorizer,
  ): Promise<{ clientId: string; clientSecret: string; previousSecretExpiresAt: string | null }> {
    if (overlapMinutes > this.options.apiUsers.maxSecretOverlapMinutes) {
      throw new BackOfficeHttpError(400, 'validation_failed', `overlapMinutes must be at most ${this.options.apiUsers.maxSecretOverlapMinutes}.`);
    }
    const clientSecret = `bocs_${randomToken(32)}`;
    const now = this.clock.now();
    const previousExpires = overlapMinutes > 0 ? new Date(now.getTime() + overlapMinutes * 60_000) : null;
    const rotated = isUuid(userId) ? await this.rotateUnderGroupLock(userId, sha256Hex(clientSecret), previousExpires, now, authorize) : null;
    const clientId = rotated?.clientId ?? null;
    if (!clientId) throw BackOfficeHttpError.notFound('No such API user.');
    if (!rotated!.tokensRevoked) await this.store.revokeAccessTokens(userId, now);
    await this.userManager.notify(ApiSecretRotatedNotification, { id: userId }, { clientId, previousSecretExpiresAt: previousExpires });
    return { clientId, clientSecret, previousSecretExpiresAt: previousExpires?.toISOString() ?? null };
  }

  /**
   * Rotates (and revokes the tokens so far) in the user store's `admin` group lock, the lock every change of group
   * membership takes, with `authorize` asked about the API user as stored under it: a caller's check cannot rest on
   * a copy that a concurrent promotion (into `admin`, or a group with permissions the caller lacks) made stale (OWASP
   * ASVS 5.0 15.4.2). A client store that can join that transaction (`inTransactionOf`) writes in it; one that cannot
   * (the in-memory store, a host's store on another database) writes while the lock is still held, before it is
   * released, so a promotion still waits for the rotation (its write is not rolled back if the lock's transaction
   * fails after it). The lock's transaction keeps its connection meanwhile, so a store sharing the user store's
   * connection pool should implement `inTransactionOf` rather than take a second connection from it.
   */
  private async rotateUnderGroupLock(
    userId: string,
    secretHash: string,
    previousExpires: Date | null,
    now: Date,
    authorize?: BackOfficeWriteAuthorizer,
  ): Promise<{ clientId: string | null; tokensRevoked: boolean }> {
    const users = this.userManager.store;
    if (authorize && isUserGroupStore(users)) {
      return users.withGroupLock('admin', async (tx) => {
        const current = await findAsStored(tx, userId);
        if (!current || current.kind !== 'api') return { clientId: null, tokensRevoked: false };
        authorize(current);
        const clients = this.store.inTransactionOf?.(tx) ?? this.store;
        const clientId = await clients.rotateSecret(userId, secretHash, previousExpires, now);
        if (clientId) await clients.revokeAccessTokens(userId, now);
        return { clientId, tokensRevoked: clientId !== null };
      });
    }
    return { clientId: await this.store.rotateSecret(userId, secretHash, previousExpires, now), tokensRevoked: false };
  }

  /**
   * The client credentials grant: checks the secret (current, or previous within its overlap) in constant time and
   * issues an opaque token. Unknown client ids, wrong secrets and locked or disabled clients get the same 401
   * `invalid_client` body, and each is audited (`ApiTokenRefusedNotification`, reason `unknown_client`,
   * `invalid_secret`, `locked_out` or `not_allowed`). A secret that is not shaped like one (truncated, the client id
   * again) is a wrong secret of a known client: audited against its API user.
   *
   * A wrong secret counts toward no lockout (OWASP ASVS 4.0 2.2.1 / 5.0 6.3.x), for the reason a failed passkey
   * assertion does not: a secret is 256 random bits, which no number of attempts guesses, while the client id is no
   * secret (it is in logs, configs and every request), so counting would only let anyone who has the id lock the
   * integration out. Guessing is bounded by the rate limits of `POST /auth/token` (per IP, per IP + client id). A lock
   * the module did not count here still refuses: the API user's own (`userManager.setLockoutEnd`), a disable, and a
   * client lockout already stored (counted by an earlier version, or written by a host's store; the secret is not
   * checked while it lasts, an admin's unlock or a rotation ends it). An unknown client id is counted nowhere either, so
   * both refusals do the same work (a read and the audit entry) and the time of the answer does not tell them apart.
   */
  async issueToken(clientId: string, clientSecret: string): Promise<BackOfficeAccessTokenResponse> {
    const secretHash = sha256Hex(clientSecret);
    const client = CLIENT_ID_SHAPE.test(clientId) ? await this.store.findClient(clientId) : null;
    const now = this.clock.now();
    if (!client) {
      hashEquals(secretHash, DUMMY_HASH);
      // Audited like a wrong secret (OWASP ASVS 5.0 16.3.1): only a value shaped like a client id is recorded, never
      // what may be a secret sent in the wrong field.
      await this.userManager.notify(ApiTokenRefusedNotification, null, {
        clientId: CLIENT_ID_SHAPE.test(clientId) ? clientId : null,
        reason: 'unknown_client',
        performingUserId: null,
      });
      throw BackOfficeApiUserService.invalidClient();
    }
    if (client.lockoutEnd && client.lockoutEnd.getTime() > now.getTime()) {
      // While locked the secret is not checked, so the lockout is no oracle.
      await this.refused(client, 'locked_out');
      throw BackOfficeApiUserService.invalidClient();
    }
    const wellFormed = SECRET_SHAPE.test(clientSecret);
    const current = hashEquals(secretHash, client.secretHash) && wellFormed;
    const previous =
      !current &&
      wellFormed &&
      client.previousSecretHash !== null &&
      client.previousSecretExpiresAt !== null &&
      client.previousSecretExpiresAt.getTime() > now.getTime() &&
      hashEquals(secretHash, client.previousSecretHash);
    if (!current && !previous) {
      // Audited, not counted (see above): no write but the audit entry's, as for an unknown client id.
      await this.refused(client, 'invalid_secret');
      throw BackOfficeApiUserService.invalidClient();
    }
    const user = await this.userManager.findById(client.userId);
    // The client credentials grant is the API user's sign-in: a timed disable whose `until` passed ends here too.
    if (user && user.kind === 'api') await this.userManager.liftExpiredDisable(user);
    if (!user || !user.isApproved || user.kind !== 'api') {
      await this.refused(client, 'not_allowed');
      throw BackOfficeApiUserService.invalidClient();
    }
    // A locked user's bearer tokens are refused (see authenticateBearer): issuing one would hand out a dead token.
    if (this.userManager.isLockedOut(user)) {
      await this.refused(client, 'locked_out');
      throw BackOfficeApiUserService.invalidClient();
    }
    if (client.accessFailedCount > 0) await this.store.resetAccessFailedCount(client.userId);
    const token = `boat_${randomToken(32)}`;
    // A token from the previous secret (during a rotation's overlap) ends no later than that secret does.
    const fullEnd = now.getTime() + Math.round(this.options.apiUsers.tokenLifetimeMinutes * 60) * 1000;
    const expiresAt = new Date(previous ? Math.min(fullEnd, client.previousSecretExpiresAt!.getTime()) : fullEnd);
    // Written only while the secret still holds and the user is enabled: a rotation or disable that revoked the
    // user's tokens since the checks above leaves no token behind (OWASP ASVS 4.0 3.3.1).
    const written = await this.store.createAccessToken(user.id, sha256Hex(token), now, expiresAt, { secretHash });
    if (written === false) {
      await this.refused(client, 'not_allowed');
      throw BackOfficeApiUserService.invalidClient();
    }
    // `expires_in` is the lifetime the token was stored with (the write may have ended it earlier, with a rotation's
    // overlap that began after the secret was checked; a store answering nothing stored `expiresAt`), from its issue,
    // in whole seconds rounded down: a client refreshing by it does not hold a token the module already refuses. A
    // token already past its end when answered (the overlap ran out while the write waited) is no token: refused as
    // if the secret no longer held (OWASP ASVS 4.0 3.3.1).
    const storedEnd = (written instanceof Date && !Number.isNaN(written.getTime()) ? written : expiresAt).getTime();
    if (storedEnd <= Math.max(now.getTime(), this.clock.now().getTime())) {
      await this.refused(client, 'not_allowed');
      throw BackOfficeApiUserService.invalidClient();
    }
    await this.userManager.notify(ApiTokenIssuedNotification, user, { clientId: client.clientId, usedPreviousSecret: previous });
    return { access_token: token, token_type: 'Bearer', expires_in: Math.floor((storedEnd - now.getTime()) / 1000) };
  }

  /** The API user of a live bearer token, or null (unknown, expired, revoked, user disabled or locked). */
  async authenticateBearer(token: string): Promise<BackOfficeUser | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const row = await this.store.findAccessToken(sha256Hex(token));
    const now = this.clock.now();
    if (!row || row.revokedAt !== null || row.expiresAt.getTime() <= now.getTime()) return null;
    const user = await this.userManager.findById(row.userId);
    if (!user || !user.isApproved || user.kind !== 'api' || this.userManager.isLockedOut(user)) return null;
    return user;
  }

  /** Ends every bearer token of the API user (e.g. on disable or delete). Returns how many. */
  async revokeTokens(userId: string): Promise<number> {
    if (!isUuid(userId)) return 0;
    return this.store.revokeAccessTokens(userId, this.clock.now());
  }

  static invalidClient(): BackOfficeHttpError {
    return oauthError(401, 'invalid_client', 'Client authentication failed.', 'invalid_client', { 'WWW-Authenticate': 'Basic realm="backoffice", charset="UTF-8"' });
  }

  private async refused(client: BackOfficeApiClient, reason: string): Promise<void> {
    await this.userManager.notify(ApiTokenRefusedNotification, { id: client.userId }, { clientId: client.clientId, reason, performingUserId: null });
  }
}
