export type {
  BackOfficeExternalUserProfile,
  BackOfficePasswordChecker,
  BackOfficePasswordCheckerResult,
  BackOfficeUnknownUserCheckResult,
} from './password-checker.interface.js';
import type { BackOfficePasswordChecker, BackOfficePasswordCheckerResult } from './password-checker.interface.js';

/** The default: always fall back to the local hash. */
export class FallbackPasswordChecker implements BackOfficePasswordChecker {
  async checkPassword(): Promise<BackOfficePasswordCheckerResult> {
    return 'fallback';
  }
}
