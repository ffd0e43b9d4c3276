/**
 * A user-manager operation needs a capability the configured user store lacks (ASP.NET Identity's
 * `NotSupportedException`). Code `not_supported`; over HTTP a 501. Check the manager's `supportsX` getter first
 * to avoid it (see README, "Missing capabilities").
 */
export class BackOfficeNotSupportedError extends Error {
  readonly code = 'not_supported' as const;

  constructor(
    /** The capability interface the store lacks, e.g. `UserLockoutStore`. */
    readonly capability: string,
  ) {
    super(`The user store does not support ${capability}; check the user manager's supports* getter first.`);
    this.name = 'BackOfficeNotSupportedError';
  }
}
