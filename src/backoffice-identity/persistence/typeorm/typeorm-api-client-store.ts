import type { BackOfficeListPage } from '../../common/list-page.js';
import { cappedCount } from './capped-count.js';
import { Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { onEntityManager, requireHostDataSource } from './backoffice-data-source.provider.js';
import { DataSource, type EntityManager } from 'typeorm';
import type {
  BackOfficeAccessTokenRecord,
  BackOfficeApiClient,
  BackOfficeApiClientListing,
  BackOfficeApiClientStore,
} from '../../api-users/api-client-store.interface.js';
import { isUuid } from '../../common/ids.js';
import type { FailedAccessResult, LockoutPolicy } from '../../users/stores/user-store.interface.js';
import { preparedQuery } from './prepared-query.js';
import { deleteInBatches, failedAccessResult, returned } from './sql-results.js';
import type { BackOfficeUserStore } from '../../users/stores/user-store.interface.js';
import { aliases, TypeOrmBackOfficeUserStore } from './typeorm-user-store.js';

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

const date = (value: Date | string | null): Date | null => (value ? new Date(value) : null);

function clientFromRow(row: ClientRow): BackOfficeApiClient {
  return {
    userId: row.user_id,
    clientId: row.client_id,
    secretHash: row.secret_hash,
    previousSecretHash: row.previous_secret_hash,
    previousSecretExpiresAt: date(row.previous_secret_expires_at),
    accessFailedCount: Number(row.access_failed_count),
    lockoutEnd: date(row.lockout_end),
    createdAt: new Date(row.created_at),
    rotatedAt: date(row.rotated_at),
  };
}


/** API clients (`backoffice_api_client`) and bearer tokens (`backoffice_access_token`) in PostgreSQL. */
@Injectable()
export class TypeOrmBackOfficeApiClientStore implements BackOfficeApiClientStore {
  private readonly manager: EntityManager;

  constructor(@Optional() @InjectDataSource() source: DataSource | EntityManager) {
    requireHostDataSource(source);
    this.manager = source instanceof DataSource ? source.manager : source;
  }

  /** This store on the built-in user store's open transaction (same database), so a disable revokes tokens in it. */
  inTransactionOf(userStore: BackOfficeUserStore): TypeOrmBackOfficeApiClientStore | null {
    if (!(userStore instanceof TypeOrmBackOfficeUserStore)) return null;
    const manager = userStore.openTransaction();
    return manager && manager.connection === this.manager.connection ? this.withEntityManager(manager) : null;
  }

  /**
   * This store working on `manager` (the user store's transaction), for {@link inTransactionOf}. The default keeps a
   * subclass's overrides and dependencies (an object whose prototype is this store); a subclass with `#private`
   * members overrides it to build a new instance on `manager`.
   */
  protected withEntityManager(manager: EntityManager): this {
    return onEntityManager(this, manager);
  }

  async createClient(userId: string, clientId: string, secretHash: string, now: Date): Promise<void> {
    await this.manager.query(`INSERT INTO backoffice_api_client (user_id, client_id, secret_hash, created_at) VALUES ($1, $2, $3, $4)`, [
      userId,
      clientId,
      secretHash,
      now,
    ]);
  }

  async findClient(clientId: string): Promise<BackOfficeApiClient | null> {
    const rows: ClientRow[] = await this.manager.query(`SELECT * FROM backoffice_api_client WHERE client_id = $1`, [clientId]);
    return rows[0] ? clientFromRow(rows[0]) : null;
  }

  async listClients(): Promise<BackOfficeApiClientListing[]> {
    return this.readListing('');
  }

  /** A page by OFFSET / LIMIT in the listing's order; the total exact up to 10,000 clients (as `GET /users`'). */
  async listClientsPage(page: BackOfficeListPage): Promise<{ items: BackOfficeApiClientListing[]; total: number; totalExact: boolean }> {
    const items = await this.readListing(' OFFSET $1 LIMIT $2', [page.skip, page.take]);
    const total = await cappedCount(this.manager, 'SELECT 1 FROM backoffice_api_client c JOIN backoffice_user u ON u.id = c.user_id', []);
    return { items, total: total.value, totalExact: total.exact };
  }

  private async readListing(range: string, params: unknown[] = []): Promise<BackOfficeApiClientListing[]> {
    const rows: Array<ClientRow & { name: string; is_approved: boolean; groups: string[] | string }> = await this.manager.query(
      `SELECT c.*, u.name, u.is_approved,
              ARRAY(SELECT g.alias FROM backoffice_user_group ug JOIN backoffice_group g ON g.id = ug.group_id WHERE ug.user_id = u.id ORDER BY g.alias) AS groups
         FROM backoffice_api_client c JOIN backoffice_user u ON u.id = c.user_id ORDER BY c.created_at, u.id${range}`,
      params,
    );
    return rows.map((r) => ({ client: clientFromRow(r), name: r.name, isApproved: r.is_approved, groups: aliases(r.groups) }));
  }

  async rotateSecret(userId: string, secretHash: string, previousSecretExpiresAt: Date | null, now: Date): Promise<string | null> {
    if (!isUuid(userId)) return null;
    const rows = await this.manager.query(
      `UPDATE backoffice_api_client
          SET previous_secret_hash = CASE WHEN $3::timestamptz IS NULL THEN NULL ELSE secret_hash END,
              previous_secret_expires_at = $3::timestamptz, secret_hash = $2, rotated_at = $4,
              access_failed_count = 0, lockout_end = NULL
        WHERE user_id = $1 RETURNING client_id`,
      [userId, secretHash, previousSecretExpiresAt, now],
    );
    return returned<{ client_id: string }>(rows)[0]?.client_id ?? null;
  }

  async recordFailedAccess(userId: string, policy: LockoutPolicy, now: Date): Promise<FailedAccessResult> {
    const rows = await this.manager.query(
      `UPDATE backoffice_api_client SET
         access_failed_count = CASE WHEN access_failed_count + 1 >= $2::int THEN 0 ELSE access_failed_count + 1 END,
         lockout_end = CASE WHEN access_failed_count + 1 >= $2::int THEN $3::timestamptz ELSE lockout_end END
       WHERE user_id = $1 AND (lockout_end IS NULL OR lockout_end <= $4::timestamptz) RETURNING access_failed_count, lockout_end`,
      [userId, policy.maxFailedAccessAttempts, policy.lockoutEnd, now],
    );
    return failedAccessResult(rows, now);
  }

  async resetAccessFailedCount(userId: string): Promise<void> {
    await this.manager.query(`UPDATE backoffice_api_client SET access_failed_count = 0 WHERE user_id = $1`, [userId]);
  }

  async clearLockout(userId: string): Promise<void> {
    if (!isUuid(userId)) return;
    await this.manager.query(`UPDATE backoffice_api_client SET access_failed_count = 0, lockout_end = NULL WHERE user_id = $1`, [userId]);
  }

  async createAccessToken(userId: string, tokenHash: string, now: Date, expiresAt: Date, issuedFor?: { secretHash: string }): Promise<false | Date> {
    if (!issuedFor) {
      await this.manager.query(`INSERT INTO backoffice_access_token (user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)`, [
        userId,
        tokenHash,
        now,
        expiresAt,
      ]);
      return new Date(expiresAt);
    }
    // The rows are share-locked: a rotation or disable under way finishes first (a disable revokes in its own
    // transaction, so this insert then finds the user disabled and writes nothing). A token written for the previous
    // secret ends no later than that secret does, also when the secret was the current one as the caller checked it
    // and a rotation (whose revocation this token came too late for) made it the previous one since.
    const rows = await this.manager.query(
      `INSERT INTO backoffice_access_token (user_id, token_hash, created_at, expires_at)
       SELECT c.user_id, $2, $3,
              CASE WHEN c.secret_hash = $5 THEN $4::timestamptz ELSE LEAST($4::timestamptz, c.previous_secret_expires_at) END
         FROM backoffice_api_client c JOIN backoffice_user u ON u.id = c.user_id
        WHERE c.user_id = $1 AND u.is_approved AND (c.lockout_end IS NULL OR c.lockout_end <= $3)
          AND (c.secret_hash = $5 OR (c.previous_secret_hash = $5 AND c.previous_secret_expires_at > $3))
        FOR SHARE OF c, u
       RETURNING expires_at`,
      [userId, tokenHash, now, expiresAt, issuedFor.secretHash],
    );
    // The expiry as stored (capped or not): the grant states `expires_in` from it.
    const written = returned<{ expires_at: Date | string }>(rows);
    return written.length === 1 ? new Date(written[0].expires_at) : false;
  }

  async findAccessToken(tokenHash: string): Promise<BackOfficeAccessTokenRecord | null> {
    const rows = await preparedQuery<{ user_id: string; expires_at: Date; revoked_at: Date | null }>(
      this.manager,
      'backoffice_find_access_token',
      `SELECT user_id, expires_at, revoked_at FROM backoffice_access_token WHERE token_hash = $1`,
      [tokenHash],
    );
    const row = rows[0];
    return row ? { userId: row.user_id, expiresAt: new Date(row.expires_at), revokedAt: date(row.revoked_at) } : null;
  }

  async revokeAccessTokens(userId: string, now: Date): Promise<number> {
    if (!isUuid(userId)) return 0;
    const rows = await this.manager.query(
      `UPDATE backoffice_access_token SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id`,
      [userId, now],
    );
    return returned(rows).length;
  }

  async prune(now: Date): Promise<{ accessTokens: number }> {
    const dayAgo = new Date(now.getTime() - 86_400_000);
    return { accessTokens: await deleteInBatches(this.manager, 'backoffice_access_token', 'id', 'expires_at < $1', [dayAgo]) };
  }
}
