import type { BackOfficeUser } from '../backoffice-user.js';

/**
 * Answer of a {@link BackOfficePasswordChecker}. `fallback`: check the local password hash instead. `unavailable`:
 * the external system could not decide (a directory outage); the sign-in is refused like a wrong password (401
 * `invalid_credentials`, audited with reason `password_check_unavailable`) but is counted toward no lockout, for a
 * known and an unknown username alike: an outage is not a wrong password (OWASP ASVS 4.0 2.2.1).
 */
export type BackOfficePasswordCheckerResult = 'valid' | 'invalid' | 'fallback' | 'unavailable';

/** Profile of a user the checker vouches for but the module does not know yet (e.g. from directory attributes). */
export interface BackOfficeExternalUserProfile {
  email: string;
  name: string;
  /** Defaults to the email when `usernameIsEmail`, else to the username signed in with. */
  username?: string;
  groups: string[];
}

/** Answer of {@link BackOfficePasswordChecker.checkUnknownUser}: `valid` with `user` creates that user. */
export interface BackOfficeUnknownUserCheckResult {
  result: BackOfficePasswordCheckerResult;
  /** Set with `valid` when the user should be created. */
  user?: BackOfficeExternalUserProfile;
}

/**
 * Optional external password check, asked before the local hash (like Umbraco's
 * `IBackOfficeUserPasswordChecker`, e.g. LDAP first). Register it through `BACKOFFICE_PASSWORD_CHECKER`.
 * Implementations must not throw: answer `unavailable` (or `fallback`) when the external system cannot answer.
 */
export interface BackOfficePasswordChecker {
  checkPassword(user: BackOfficeUser, password: string): Promise<BackOfficePasswordCheckerResult>;
  /**
   * Optional: asked when the username matches no local user. Answer `valid` with a profile to create the user
   * and sign them in (e.g. a directory user's first sign-in). Do the same work whatever the answer, so
   * response times do not tell which usernames exist. With `usernameIsEmail` (the default) the profile's email must be
   * `username` (as sign-in looks it up): another one is not created (it could not sign in again), and a warning is logged.
   */
  checkUnknownUser?(username: string, password: string): Promise<BackOfficeUnknownUserCheckResult>;
  /**
   * Optional, default false. True: the external system owns the passwords of the users it vouches for. A user it
   * answered `valid` for loses the local password hash at that sign-in, and may not set a local password
   * (`changePassword` answers `not_supported`), so once the external system no longer knows the user (offboarded:
   * `fallback`), no stale local password signs them in.
   */
  readonly retiresLocalPasswords?: boolean;
  /**
   * Optional, defaults to {@link retiresLocalPasswords}. True: the external system is the authority for the
   * passwords of the users it vouches for, even when their local hash is kept. A user it answered `valid` for at a
   * sign-in (or created through {@link checkUnknownUser}) is marked directory-managed
   * (`BackOfficeUser.directoryManagedAt`, through the store's `UserDirectoryManagedStore`): forgot-password sends
   * them a notice instead of a reset link, a reset link issued before is refused (`invalid_token`), and an admin's
   * forced reset answers 409 `directory_managed`, so once removed from the external system they cannot set a local
   * password through their mailbox. `BackOfficeUserManager.clearDirectoryManaged` removes the mark.
   */
  readonly marksDirectoryManaged?: boolean;
}
