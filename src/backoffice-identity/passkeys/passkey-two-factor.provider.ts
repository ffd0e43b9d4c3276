import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { TwoFactorProvider, TwoFactorSetup, TwoFactorVerifyOptions } from '../two-factor/two-factor-provider.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import { isUserPasskeyStore, type BackOfficeUserStore, type UserPasskeyStore } from '../users/stores/user-store.interface.js';
import type { BackOfficePasskeyCeremonies } from './passkey-ceremonies.service.js';

/** Provider name of passkeys at the second-factor step. */
export const PASSKEY_PROVIDER = 'passkey';

/**
 * The slot (`BackOfficePendingSignIn.slot`) of a pending sign-in's second-factor challenge: issued to it by `POST
 * /auth/2fa/passkey/options` (one at a time), and consumed only by its own second step.
 */
export function secondFactorChallengeSlot(pendingSignInId: string): string {
  return `second_factor:${pendingSignInId}`;
}

/** Longest accepted assertion JSON (the credential of `POST /auth/2fa/passkey`). */
export const MAX_ASSERTION_JSON = 16_384;

/**
 * A passkey as the second factor: offered to users with 2FA on who have a passkey. The "code" is the JSON of
 * the browser's assertion for a challenge from `POST /auth/2fa/passkey/options`. Passkeys are added through
 * the account routes (`POST /auth/passkeys`), not through two-factor setup, and turning 2FA off keeps them
 * (they are sign-in credentials in their own right).
 */
export class PasskeyTwoFactorProvider implements TwoFactorProvider {
  readonly name = PASSKEY_PROVIDER;
  readonly maxCodeLength = MAX_ASSERTION_JSON;
  readonly enrolsThroughSetup = false;

  constructor(
    private readonly store: UserPasskeyStore,
    private readonly ceremonies: BackOfficePasskeyCeremonies,
  ) {}

  /** True when the user has a passkey: an existence test where the store has one (`hasPasskeys`), else the list. */
  async isSetUp(user: BackOfficeUser): Promise<boolean> {
    return this.store.hasPasskeys ? this.store.hasPasskeys(user.id) : (await this.store.listPasskeys(user.id)).length > 0;
  }

  async generateSetup(): Promise<TwoFactorSetup> {
    throw new BackOfficeHttpError(400, 'unknown_provider', 'Passkeys are added with POST /auth/passkeys, not through two-factor setup.');
  }

  /**
   * With `pendingSignInId` (the second step of a sign-in) only that pending sign-in's challenge is used: an assertion
   * made for another pending sign-in of the user is refused, and that one's challenge stays (OWASP ASVS 4.0 2.8.4 /
   * 5.0 6.5.1). Without it, any second-factor challenge of the user.
   */
  async verify(user: BackOfficeUser, code: string, options: TwoFactorVerifyOptions = {}): Promise<boolean> {
    if (options.enrolling || typeof code !== 'string' || code.length > MAX_ASSERTION_JSON) return false;
    let response: AuthenticationResponseJSON;
    try {
      response = JSON.parse(code);
    } catch {
      return false;
    }
    if (typeof response !== 'object' || response === null) return false;
    const slot = options.pendingSignInId === undefined ? undefined : secondFactorChallengeSlot(options.pendingSignInId);
    const passkey = await this.ceremonies.findPasskey(response);
    if (!passkey || passkey.userId !== user.id) {
      await this.ceremonies.discardChallenge(response, 'second_factor', user.id, slot);
      return false;
    }
    const result = await this.ceremonies.verifyAssertion(response, passkey, 'second_factor', user.id, slot);
    if (!result.verified) return false;
    await this.ceremonies.notifyUsed(result.passkey, 'secondFactor', result.userVerified);
    return true;
  }

  /** Turning 2FA off keeps the user's passkeys (they still sign in without a password). */
  async reset(): Promise<void> {}

  /**
   * This provider reading through `userStore` (the transaction's store): {@link reset} writes nothing, and
   * {@link isSetUp} (asked in the flag's transaction by `setTwoFactorEnabled`'s `whileSetUp`) reads in the transaction,
   * not on a second connection while it is open. Null for a store without passkeys (asked outside it then).
   */
  inTransactionOf(userStore: BackOfficeUserStore): PasskeyTwoFactorProvider | null {
    if (userStore === (this.store as object)) return this;
    return isUserPasskeyStore(userStore) ? new PasskeyTwoFactorProvider(userStore, this.ceremonies) : null;
  }
}
