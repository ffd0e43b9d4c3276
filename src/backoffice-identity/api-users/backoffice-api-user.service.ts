import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { timingSafeEqual } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { BackOfficeClock } from '../common/clock.js';
import { randomToken, sha256Hex } from '../common/crypto.js';
import { preparedQuery } from '../persistence/typeorm/prepared-query.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import {
  ApiSecretRotatedNotification,
  ApiTokenIssuedNotification,
  ApiTokenRefusedNotification,
  ApiUserCreatedNotification,
} from '../notifications/notifications.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { aliases, isUuid } from '../persistence/typeorm/typeorm-user-store.js';

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

interface ClientRow {
  user_id: string;
  client_id: string;
  secret_hash: string;
  previous_secret_hash: string | null;
  previous_secret_expires_at: Date | null;
  access_failed_count: number;
  lockout_end: Date | null;
  created_at: Date;
  rotated_at: Date | null;
}

/** RFC 6749 5.2 error with the module's `code` beside `error`. */
export function oauthError(status: number, error: string, description: string, code = error, headers: Record<string, string> = {}): BackOfficeHttpError {
  return new BackOfficeHttpError(status, code, description, { error, error_description: description }, { 'Cache-Control': 'no-store', Pragma: 'no-cache', ...headers });
}

const hashEquals = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));

/**
 * API users (Umbraco's API Users): machine users in groups that sign in with the OAuth 2.0 client credentials
 * grant and call the API with short-lived opaque bearer tokens. Secrets and tokens are stored as SHA-256 only
 * (they are 256-bit random values, so a fast hash is enough); wrong secrets are counted atomically and lock the
 * client like a password lockout; a rotation keeps the previous secret for an overlap window.
 */
@Injectable()
export class BackOfficeApiUserService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
  ) {}

  /** Creates an API user in `groups`; the secret is returned once and only its hash is kept. */
  async create(input: { name: string; groups: string[] }): Promise<{ user: BackOfficeUser; clientId: string; clientSecret: string }> {
    const clientId = `boc_${randomToken(18)}`;
    const clientSecret = `bocs_${randomToken(32)}`;
    const result = await this.userManager.createUser({
      email: `${clientId.toLowerCase()}@api-users.invalid`,
      name: input.name,
      groups: input.groups,
      kind: 'api',
    });
    if (!result.succeeded) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'The API user is not valid.', { errors: [...result.errors] });
    }
    const user = result.value!;
    try {
      await this.dataSource.query(
        `INSERT INTO backoffice_api_client (user_id, client_id, secret_hash, created_at) VALUES ($1, $2, $3, $4)`,
        [user.id, clientId, sha256Hex(clientSecret), this.clock.now()],
      );
    } catch (error) {
      await this.userManager.store.delete(user.id);
      throw error;
    }
    await this.userManager.notify(ApiUserCreatedNotification, user, { clientId, groups: user.groups });
    return { user, clientId, clientSecret };
  }

  async list(): Promise<BackOfficeApiUserView[]> {
    const rows = await this.dataSource.query(
      `SELECT u.id, u.name, u.is_approved, c.client_id, c.created_at, c.rotated_at, c.previous_secret_expires_at,
              ARRAY(SELECT g.alias FROM backoffice_user_group ug JOIN backoffice_group g ON g.id = ug.group_id WHERE ug.user_id = u.id ORDER BY g.alias) AS groups
         FROM backoffice_api_client c JOIN backoffice_user u ON u.id = c.user_id ORDER BY c.created_at, u.id`,
    );
    const now = this.clock.now().getTime();
    return rows.map((r: Record<string, any>) => ({
      id: r.id,
      name: r.name,
      clientId: r.client_id,
      groups: aliases(r.groups),
      disabled: !r.is_approved,
      createdAt: new Date(r.created_at).toISOString(),
      secretRotatedAt: r.rotated_at ? new Date(r.rotated_at).toISOString() : null,
      previousSecretExpiresAt: r.previous_secret_expires_at && new Date(r.previous_secret_expires_at).getTime() > now ? new Date(r.previous_secret_expires_at).toISOString() : null,
    }));
  }

  /**
   * Replaces the secret. The previous one keeps working for `overlapMinutes` (0: it stops at once) so running
   * clients can switch without downtime; a second rotation ends the first one's overlap. Clears the lockout.
   */
  async rotateSecret(userId: string, overlapMinutes: number): Promise<{ clientId: string; clientSecret: string; previousSecretExpiresAt: string | null }> {
    if (overlapMinutes > this.options.apiUsers.maxSecretOverlapMinutes) {
      throw new BackOfficeHttpError(400, 'validation_failed', `overlapMinutes must be at most ${this.options.apiUsers.maxSecretOverlapMinutes}.`);
    }
    const clientSecret = `bocs_${randomToken(32)}`;
    const now = this.clock.now();
    const previousExpires = overlapMinutes > 0 ? new Date(now.getTime() + overlapMinutes * 60_000) : null;
    const rows = isUuid(userId)
      ? await this.dataSource.query(
          `UPDATE backoffice_api_client
              SET previous_secret_hash = CASE WHEN $3::timestamptz IS NULL THEN NULL ELSE secret_hash END,
                  previous_secret_expires_at = $3::timestamptz, secret_hash = $2, rotated_at = $4,
                  access_failed_count = 0, lockout_end = NULL
            WHERE user_id = $1 RETURNING client_id`,
          [userId, sha256Hex(clientSecret), previousExpires, now],
        )
      : [];
    const clientId: string | undefined = (Array.isArray(rows[0]) ? rows[0][0] : rows[0])?.client_id;
    if (!clientId) throw BackOfficeHttpError.notFound('No such API user.');
    await this.userManager.notify(ApiSecretRotatedNotification, { id: userId }, { clientId, previousSecretExpiresAt: previousExpires });
    return { clientId, clientSecret, previousSecretExpiresAt: previousExpires?.toISOString() ?? null };
  }

  /**
   * The client credentials grant: checks the secret (current, or previous within its overlap) in constant time,
   * counts a wrong one atomically (lockout after `lockout.maxFailedAccessAttempts`), and issues an opaque token.
   * Unknown client ids, wrong secrets and locked clients get the same 401 `invalid_client` body.
   */
  async issueToken(clientId: string, clientSecret: string): Promise<BackOfficeAccessTokenResponse> {
    const secretHash = sha256Hex(clientSecret);
    const client = CLIENT_ID_SHAPE.test(clientId) && SECRET_SHAPE.test(clientSecret) ? await this.findClient(clientId) : null;
    const now = this.clock.now();
    if (!client) {
      hashEquals(secretHash, DUMMY_HASH);
      throw BackOfficeApiUserService.invalidClient();
    }
    if (client.lockout_end && client.lockout_end.getTime() > now.getTime()) {
      // While locked the secret is not checked, so the lockout is no oracle.
      await this.refused(client, 'locked_out');
      throw BackOfficeApiUserService.invalidClient();
    }
    const current = hashEquals(secretHash, client.secret_hash);
    const previous =
      !current &&
      client.previous_secret_hash !== null &&
      client.previous_secret_expires_at !== null &&
      client.previous_secret_expires_at.getTime() > now.getTime() &&
      hashEquals(secretHash, client.previous_secret_hash);
    if (!current && !previous) {
      await this.countFailure(client, now);
      throw BackOfficeApiUserService.invalidClient();
    }
    const user = await this.userManager.findById(client.user_id);
    if (!user || !user.isApproved || user.kind !== 'api') {
      await this.refused(client, 'not_allowed');
      throw BackOfficeApiUserService.invalidClient();
    }
    if (client.access_failed_count > 0) {
      await this.dataSource.query(`UPDATE backoffice_api_client SET access_failed_count = 0 WHERE user_id = $1`, [client.user_id]);
    }
    const token = `boat_${randomToken(32)}`;
    const lifetimeSeconds = Math.round(this.options.apiUsers.tokenLifetimeMinutes * 60);
    await this.dataSource.query(
      `INSERT INTO backoffice_access_token (user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
      [user.id, sha256Hex(token), now, new Date(now.getTime() + lifetimeSeconds * 1000)],
    );
    await this.userManager.notify(ApiTokenIssuedNotification, user, { clientId: client.client_id, usedPreviousSecret: previous });
    return { access_token: token, token_type: 'Bearer', expires_in: lifetimeSeconds };
  }

  /** The API user of a live bearer token, or null (unknown, expired, revoked, user disabled or locked). */
  async authenticateBearer(token: string): Promise<BackOfficeUser | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const rows = await preparedQuery<{ user_id: string; expires_at: Date; revoked_at: Date | null }>(
      this.dataSource,
      'backoffice_find_access_token',
      `SELECT user_id, expires_at, revoked_at FROM backoffice_access_token WHERE token_hash = $1`,
      [sha256Hex(token)],
    );
    const row = rows[0];
    const now = this.clock.now();
    if (!row || row.revoked_at !== null || new Date(row.expires_at).getTime() <= now.getTime()) return null;
    const user = await this.userManager.findById(row.user_id);
    if (!user || !user.isApproved || user.kind !== 'api' || this.userManager.isLockedOut(user)) return null;
    return user;
  }

  /** Ends every bearer token of the API user (e.g. on disable or delete). Returns how many. */
  async revokeTokens(userId: string): Promise<number> {
    if (!isUuid(userId)) return 0;
    const rows = await this.dataSource.query(
      `UPDATE backoffice_access_token SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id`,
      [userId, this.clock.now()],
    );
    return (Array.isArray(rows[0]) ? rows[0] : rows).length;
  }

  static invalidClient(): BackOfficeHttpError {
    return oauthError(401, 'invalid_client', 'Client authentication failed.', 'invalid_client', { 'WWW-Authenticate': 'Basic realm="backoffice", charset="UTF-8"' });
  }

  private async findClient(clientId: string): Promise<ClientRow | null> {
    const rows: ClientRow[] = await this.dataSource.query(`SELECT * FROM backoffice_api_client WHERE client_id = $1`, [clientId]);
    const row = rows[0];
    if (!row) return null;
    return {
      ...row,
      lockout_end: row.lockout_end ? new Date(row.lockout_end) : null,
      previous_secret_expires_at: row.previous_secret_expires_at ? new Date(row.previous_secret_expires_at) : null,
    };
  }

  /** One atomic statement: concurrent wrong secrets each count; the last allowed one sets the lockout. */
  private async countFailure(client: ClientRow, now: Date): Promise<void> {
    const { maxFailedAccessAttempts, durationMinutes } = this.options.lockout;
    const lockoutEnd = durationMinutes === 0 ? new Date('9999-12-31T00:00:00.000Z') : new Date(now.getTime() + durationMinutes * 60_000);
    const rows = await this.dataSource.query(
      `UPDATE backoffice_api_client SET
         access_failed_count = CASE WHEN access_failed_count + 1 >= $2::int THEN 0 ELSE access_failed_count + 1 END,
         lockout_end = CASE WHEN access_failed_count + 1 >= $2::int THEN $3::timestamptz ELSE lockout_end END
       WHERE user_id = $1 AND (lockout_end IS NULL OR lockout_end <= $4::timestamptz) RETURNING lockout_end`,
      [client.user_id, maxFailedAccessAttempts, lockoutEnd, now],
    );
    const row = (Array.isArray(rows[0]) ? rows[0][0] : rows[0]) as { lockout_end: Date | null } | undefined;
    const locked = row?.lockout_end != null && new Date(row.lockout_end).getTime() > now.getTime();
    await this.refused(client, locked ? 'locked_out' : 'invalid_secret');
  }

  private async refused(client: ClientRow, reason: string): Promise<void> {
    await this.userManager.notify(ApiTokenRefusedNotification, { id: client.user_id }, { clientId: client.client_id, reason, performingUserId: null });
  }
}
