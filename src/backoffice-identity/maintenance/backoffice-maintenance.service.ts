import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { BackOfficeClock } from '../common/clock.js';
import type { BackOfficeAuditStore } from '../audit/backoffice-audit-store.interface.js';
import { BACKOFFICE_AUDIT_STORE, BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

const DAY_MS = 86_400_000;

/** Rows removed by one {@link BackOfficeMaintenanceService.prune} run, per table. */
export interface PruneResult {
  loginAttempts: number;
  twoFactorChallenges: number;
  /** Passkey ceremony challenges a day after they expired. */
  passkeyChallenges: number;
  sessions: number;
  tokens: number;
  /** API bearer tokens expired for more than a day. */
  accessTokens: number;
  /** Pending external sign-ins expired for more than a day. */
  externalLoginStates: number;
  /** Audit entries older than `audit.retentionDays` (0 when retention is off). */
  auditEntries: number;
}

/**
 * Deletes rows that can no longer matter, so tables that unauthenticated callers can grow stay small:
 * unknown-username counters a day after their last failure (unless still locked), pending 2FA sign-ins and
 * sessions a week after they ended, single-use tokens 30 days after they expired; audit entries older than
 * `audit.retentionDays` when set (by default the audit trail is kept).
 * Runs every `maintenanceIntervalMinutes` (0: never; call `prune()` from your own scheduler instead).
 */
@Injectable()
export class BackOfficeMaintenanceService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('BackOfficeMaintenance');
  private timer?: NodeJS.Timeout;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BACKOFFICE_AUDIT_STORE) private readonly auditStore: BackOfficeAuditStore,
  ) {}

  onApplicationBootstrap(): void {
    const minutes = this.options.maintenanceIntervalMinutes;
    if (minutes <= 0) return;
    this.timer = setInterval(() => void this.prune().catch((e: Error) => this.logger.error(`Pruning failed: ${e.message}`)), minutes * 60_000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async prune(): Promise<PruneResult> {
    const now = this.clock.now().getTime();
    const dayAgo = new Date(now - DAY_MS);
    const weekAgo = new Date(now - 7 * DAY_MS);
    const monthAgo = new Date(now - 30 * DAY_MS);
    const count = async (sql: string, params: unknown[]) => {
      const result = await this.dataSource.query(`WITH gone AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM gone`, params);
      return Number(result[0]?.n ?? 0);
    };
    return {
      loginAttempts: await count(
        `DELETE FROM backoffice_login_attempt WHERE updated_at < $1 AND (lockout_end IS NULL OR lockout_end < $2)`,
        [dayAgo, new Date(now)],
      ),
      twoFactorChallenges: await count(`DELETE FROM backoffice_two_factor_challenge WHERE expires_at < $1`, [weekAgo]),
      passkeyChallenges: await count(`DELETE FROM backoffice_passkey_challenge WHERE expires_at < $1`, [dayAgo]),
      sessions: await count(`DELETE FROM backoffice_session WHERE expires_at < $1 OR revoked_at < $1`, [weekAgo]),
      tokens: await count(`DELETE FROM backoffice_user_token WHERE expires_at < $1`, [monthAgo]),
      accessTokens: await count(`DELETE FROM backoffice_access_token WHERE expires_at < $1`, [dayAgo]),
      externalLoginStates: await count(`DELETE FROM backoffice_external_login_state WHERE expires_at < $1`, [dayAgo]),
      auditEntries: this.options.audit.retentionDays > 0 ? await this.auditStore.prune(new Date(now - this.options.audit.retentionDays * DAY_MS)) : 0,
    };
  }
}
