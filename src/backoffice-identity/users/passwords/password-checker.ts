import type { BackOfficeUser } from '../backoffice-user.js';

/** Answer of a {@link BackOfficePasswordChecker}. `fallback`: check the local password hash instead. */
export type BackOfficePasswordCheckerResult = 'valid' | 'invalid' | 'fallback';

/**
 * Optional external password check, asked before the local hash (like Umbraco's
 * `IBackOfficeUserPasswordChecker`, e.g. LDAP first). Register it through `BACKOFFICE_PASSWORD_CHECKER`.
 */
export interface BackOfficePasswordChecker {
  checkPassword(user: BackOfficeUser, password: string): Promise<BackOfficePasswordCheckerResult>;
}

/** The default: always fall back to the local hash. */
export class FallbackPasswordChecker implements BackOfficePasswordChecker {
  async checkPassword(): Promise<BackOfficePasswordCheckerResult> {
    return 'fallback';
  }
}
