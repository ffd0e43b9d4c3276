import type { BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficeUserStore } from '../users/stores/user-store.interface.js';

/** What a provider hands the user to enrol (e.g. a TOTP secret and its QR code). */
export interface TwoFactorSetup {
  secret: string;
  otpauthUri: string;
  qrCodeDataUrl: string;
}

/** What a provider may tell about a refused code, beyond the refusal (filled in by `verify`). */
export interface TwoFactorVerifyOutcome {
  /**
   * The code was right but already used (a TOTP step accepted before): refused like a wrong one, but audited as a
   * reuse (`two_factor_code_reused`, OWASP ASVS 4.0 2.8.5), since someone else may hold the code.
   */
  reused?: boolean;
}

/** What {@link TwoFactorProvider.verify} is told about the code it checks. */
export interface TwoFactorVerifyOptions {
  /** Check the unconfirmed enrolment, and confirm it. */
  enrolling?: boolean;
  /** Filled in by the provider about a refused code. */
  outcome?: TwoFactorVerifyOutcome;
  /**
   * The pending sign-in whose second step this code answers (`POST /auth/2fa`, `POST /auth/2fa/passkey`). A provider
   * that issued a challenge to a pending sign-in (passkeys: `POST /auth/2fa/passkey/options`) accepts only an answer
   * to that pending sign-in's challenge, not to another's of the same user (OWASP ASVS 4.0 2.8.4 / 5.0 6.5.1).
   */
  pendingSignInId?: string;
}

/**
 * Thrown by {@link TwoFactorProvider.generateSetup} when the user's confirmed enrolment stays (2FA is on with it, read
 * as the new one would be written): `POST /auth/2fa/setup` answers 409 `two_factor_already_enabled`.
 */
export class TwoFactorAlreadySetUpError extends Error {
  constructor(readonly provider: string) {
    super(`Two-factor provider "${provider}" is set up already: its confirmed enrolment was kept`);
    this.name = 'TwoFactorAlreadySetUpError';
  }
}

/**
 * A second factor, like ASP.NET Identity's token providers. Register extra ones through
 * `forRoot({ twoFactor: { providers: [...] } })`; TOTP is built in.
 */
export interface TwoFactorProvider {
  /** Stable name clients send as `provider` (e.g. `totp`). `recovery` is reserved. */
  readonly name: string;
  /** Longest code accepted (default 64); longer codes are refused without asking the provider. */
  readonly maxCodeLength?: number;
  /**
   * False for a factor enrolled elsewhere (passkeys: `POST /auth/passkeys`), which `POST /auth/2fa/setup` cannot
   * start: such a provider is not offered to a sign-in that must first set up two-factor (`requiresTwoFactorSetup`),
   * whose setup-only session reaches only the 2FA setup routes. Default true.
   */
  readonly enrolsThroughSetup?: boolean;
  /** True when the user has a confirmed enrolment with this provider. */
  isSetUp(user: BackOfficeUser): Promise<boolean>;
  /**
   * Starts (or restarts) an unconfirmed enrolment. Throws {@link TwoFactorAlreadySetUpError} rather than replace a
   * confirmed enrolment while the user has 2FA on (the check made before it ran on a copy of the user read earlier).
   */
  generateSetup(user: BackOfficeUser): Promise<TwoFactorSetup>;
  /**
   * Checks a code. With `{ enrolling: true }` it checks the unconfirmed enrolment and confirms it. Codes are single
   * use; a provider that can tell a reused code from a wrong one sets `outcome.reused`. At a sign-in's second step
   * `pendingSignInId` names the pending sign-in ({@link TwoFactorVerifyOptions}).
   */
  verify(user: BackOfficeUser, code: string, options?: TwoFactorVerifyOptions): Promise<boolean>;
  /** Removes the user's enrolment. */
  reset(user: BackOfficeUser): Promise<void>;
  /**
   * This provider working in the user store's open transaction (`userStore`, the store a transaction's work is
   * handed), or null when it cannot (its enrolments live elsewhere). An admin's 2FA reset removes the enrolments of
   * the providers that can join in the transaction that turns the flag off, after the flag (the user's row is locked
   * before any enrolment row, the lock order of a setup and of a user's delete) (and, from `POST /users/:id/2fa/reset`,
   * re-checks the caller's right under the admin group's lock); the others' after it commits. Turning 2FA on
   * (`BackOfficeUserManager.setTwoFactorEnabled` with `whileSetUp`, `POST /auth/2fa/enable`) asks the returned provider
   * `isSetUp` in the flag's transaction, before and after the flag. So the returned provider's reads (`isSetUp`) and
   * writes (`reset`) must all go through `userStore`: one that reads through its own store (returning `this`) would
   * read on a second connection while the transaction is open, seeing stale data or, on a one-connection pool
   * (PGlite), waiting for ever. Optional.
   */
  inTransactionOf?(userStore: BackOfficeUserStore): TwoFactorProvider | null;
}
