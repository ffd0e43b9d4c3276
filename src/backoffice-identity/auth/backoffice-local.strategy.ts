import type { Provider } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { randomUUID } from 'node:crypto';
import passport from 'passport';
import { Strategy } from 'passport-local';
import { BACKOFFICE_SIGN_IN_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { BackOfficeSignInManager, SignInResult } from '../sign-in/backoffice-sign-in-manager.js';
import type { BackOfficeClock } from '../common/clock.js';
import type { IdentityResult } from '../common/identity-result.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import { BACKOFFICE_CLOCK } from '../constants.js';
import { LOCKED_UNTIL_UNLOCKED } from '../users/backoffice-user-manager.js';

/** DI token of this module instance's passport strategy name (unique, so two apps in one process never clash). */
export const BACKOFFICE_LOCAL_STRATEGY = 'BACKOFFICE_LOCAL_STRATEGY';

/** What the strategy hands to the login route. */
export interface BackOfficeLocalStrategyHandle {
  name: string;
  /** Unregisters the strategy from passport when the app closes. */
  onModuleDestroy(): void;
}

/** Maps a refused sign-in to its HTTP error: identical bodies for unknown users and wrong passwords. */
export function signInError(result: SignInResult, now: Date): BackOfficeHttpError {
  switch (result.status) {
    case 'lockedOut': {
      const end = result.lockoutEnd;
      const untilUnlocked = !end || end.getTime() >= LOCKED_UNTIL_UNLOCKED.getTime();
      const retryAfterSeconds = untilUnlocked ? null : Math.max(1, Math.ceil((end.getTime() - now.getTime()) / 1000));
      return new BackOfficeHttpError(
        423,
        'locked_out',
        'The account is locked after too many failed attempts.',
        { retryAfterSeconds },
        retryAfterSeconds ? { 'Retry-After': String(retryAfterSeconds) } : {},
      );
    }
    case 'notAllowed':
      if (result.reason === 'user_verification_required') {
        return new BackOfficeHttpError(401, 'user_verification_required', 'Use your passkey again with its PIN or biometrics (user verification).');
      }
      if (result.reason === 'password_reset_required') return BackOfficeHttpError.passwordResetRequired();
      return result.reason === 'local_login_disabled'
        ? BackOfficeHttpError.localLoginDisabled()
        : new BackOfficeHttpError(403, 'not_allowed', 'This account may not sign in.');
    default:
      return BackOfficeHttpError.invalidCredentials();
  }
}

/**
 * Throws 423 `locked_out` (with `retryAfterSeconds`, as at sign-in) when an account flow (change password,
 * turning 2FA off) refused because `user` is locked out; otherwise does nothing.
 */
export function throwIfLockedOut(result: IdentityResult<unknown>, user: Pick<BackOfficeUser, 'lockoutEnd'>, now: Date): void {
  if (result.errors[0]?.code === 'locked_out') throw signInError({ status: 'lockedOut', lockoutEnd: user.lockoutEnd }, now);
}

/**
 * Throws the two refusals of a password check at change-password and the password step-up: 409 `no_local_password`
 * (no password of the user to check here) and 401 `invalid_credentials` (a wrong password, or one the directory could
 * not check); otherwise does nothing. Not {@link BackOfficeHttpError.fromResult}: it answers `no_local_password` with the
 * account service's description (to ask an administrator), these routes tell to re-authenticate through the provider.
 */
export function throwIfPasswordRefused(result: IdentityResult<unknown>): void {
  if (result.errors.some((e) => e.code === 'no_local_password')) throw BackOfficeHttpError.noLocalPassword();
  if (result.errors.some((e) => e.code === 'invalid_credentials')) throw BackOfficeHttpError.invalidCredentials();
}

/**
 * Registers a `passport-local` strategy (through `@nestjs/passport`) that signs in with the
 * `BACKOFFICE_SIGN_IN_MANAGER` resolved from DI, under a name unique to this module instance.
 */
export const backOfficeLocalStrategyProvider: Provider = {
  provide: BACKOFFICE_LOCAL_STRATEGY,
  inject: [BACKOFFICE_SIGN_IN_MANAGER, BACKOFFICE_CLOCK],
  useFactory: (signInManager: BackOfficeSignInManager, clock: BackOfficeClock): BackOfficeLocalStrategyHandle => {
    const name = `backoffice-local-${randomUUID()}`;
    class BackOfficeLocalStrategy extends PassportStrategy(Strategy, name) {
      constructor() {
        super({ usernameField: 'username', passwordField: 'password', passReqToCallback: true, session: false });
      }
      async validate(_request: unknown, username: string, password: string): Promise<SignInResult> {
        const result = await signInManager.passwordSignIn(username, password);
        if (result.status === 'success' || result.status === 'requiresTwoFactor' || result.status === 'requiresTwoFactorSetup') return result;
        throw signInError(result, clock.now());
      }
    }
    new BackOfficeLocalStrategy();
    return { name, onModuleDestroy: () => void passport.unuse(name) };
  },
};

/**
 * The answer of a step-up route (password or passkey) from `BackOfficeAccountService.completeStepUp`: its end, else
 * 423 `locked_out` (as {@link throwIfLockedOut}) or 401 `unauthenticated` (the session's token was renewed or ended).
 */
export function stepUpAnswer(result: IdentityResult<Date>, user: Pick<BackOfficeUser, 'lockoutEnd'>, now: Date): { reauthenticatedUntil: string } {
  throwIfLockedOut(result, user, now);
  if (!result.succeeded) throw BackOfficeHttpError.unauthenticated();
  return { reauthenticatedUntil: result.value!.toISOString() };
}
