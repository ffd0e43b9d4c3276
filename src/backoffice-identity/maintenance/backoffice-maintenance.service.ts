import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { BackOfficeApiClientStore } from '../api-users/api-client-store.interface.js';
import type { BackOfficeAuditStore } from '../audit/backoffice-audit-store.interface.js';
import type { BackOfficeClock } from '../common/clock.js';
import {
  BACKOFFICE_API_CLIENT_STORE,
  BACKOFFICE_AUDIT_STORE,
  BACKOFFICE_CLOCK,
  BACKOFFICE_IDENTITY_OPTIONS,
  BACKOFFICE_PENDING_SIGN_IN_STORE,
  BACKOFFICE_SESSION_STORE,
  BACKOFFICE_USER_STORE,
} from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeSessionStore } from '../sessions/session-store.interface.js';
import type { BackOfficePendingSignInStore } from '../sign-in/pending-sign-in-store.interface.js';
import { type BackOfficeUserStore, isPrunableUserStore } from '../users/stores/user-store.interface.js';

/** Rows removed by one {@link BackOfficeMaintenanceService.prune} run, per table. */
export interface PruneResult {
  loginAttempts: number;
  twoFactorChallenges: number;
  /** Passkey ceremony challenges once they expired. */
  passkeyChallenges: number;
  sessions: number;
  tokens: number;
  /** API bearer tokens expired for more than a day. */
  accessTokens: number;
  /** Pending external sign-ins (OpenID Connect states) once they expired. */
  externalLoginStates: number;
  /** Audit entries older than `audit.retentionDays` (0 when retention is off). */
  auditEntries: number;
}

/**
 * Asks every store to delete rows that can no longer matter (each store's `prune(now)`), so tables that unauthenticated callers can grow stay small:
 * unknown-username counters a day after their last failure (unless still locked; known users' failed counts are reset
 * by the same rule, so neither outlives the other), passkey challenges and OpenID Connect states once they expired,
 * pending 2FA sign-ins and sessions a week after they ended, single-use tokens 30 days after they expired; audit entries older than
 * `audit.retentionDays` when set (by default the audit trail is kept).
 * Runs every `maintenanceIntervalMinutes` (0: never; call `prune()` from your own scheduler instead).
 */
const DAY_MS = 86_400_000;

@Injectable()
export class BackOfficeMaintenanceService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('BackOfficeMaintenance');
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(BACKOFFICE_USER_STORE) private readonly userStore: BackOfficeUserStore,
    @Inject(BACKOFFICE_SESSION_STORE) private readonly sessionStore: BackOfficeSessionStore,
    @Inject(BACKOFFICE_PENDING_SIGN_IN_STORE) private readonly pendingSignInStore: BackOfficePendingSignInStore,
    @Inject(BACKOFFICE_API_CLIENT_STORE) private readonly apiClientStore: BackOfficeApiClientStore,
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
    const now = this.clock.now();
    const users = isPrunableUserStore(this.userStore) ? await this.userStore.prune(now) : { loginAttempts: 0, tokens: 0 };
    const pending = await this.pendingSignInStore.prune(now);
    return {
      loginAttempts: users.loginAttempts,
      twoFactorChallenges: pending.twoFactorChallenges,
      passkeyChallenges: pending.passkeyChallenges,
      ...(await this.sessionStore.prune(now)),
      tokens: users.tokens,
      ...(await this.apiClientStore.prune(now)),
      externalLoginStates: pending.externalLoginStates,
      auditEntries: this.options.audit.retentionDays > 0 ? await this.auditStore.prune(new Date(now.getTime() - this.options.audit.retentionDays * DAY_MS)) : 0,
    };
  }
}
