import { Inject, Injectable } from '@nestjs/common';
import type { BackOfficeListPage } from '../common/list-page.js';
import { IdentityResult, type IdentityError } from '../common/identity-result.js';
import { BACKOFFICE_SIGN_IN_MANAGER } from '../constants.js';
import type { BackOfficeHttpResponse } from '../http/http-platform.js';
import { UserReauthenticatedNotification, type BackOfficeCredentialCheckVia } from '../notifications/notifications.js';
import { BackOfficeSessionIssuer } from '../sessions/backoffice-session-issuer.js';
import { BackOfficeSessionService, type BackOfficeSessionDto } from '../sessions/backoffice-session.service.js';
import type { BackOfficeSession as BackOfficeSessionEntity } from '../sessions/session-store.interface.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import { TwoFactorAlreadySetUpError, type TwoFactorProvider, type TwoFactorSetup } from '../two-factor/two-factor-provider.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficePasswordCheckOutcome, BackOfficeUserManager } from '../users/backoffice-user-manager.js';

/**
 * The session an account change is made from: it stays signed in, the user's other sessions end. `tokenHash` (the
 * request's session, as the guard read it, has it) lets a setup-only session get a new token when enrolment ends.
 */
export type BackOfficeAccountSession = Pick<BackOfficeSessionEntity, 'id' | 'twoFactorSetupOnly' | 'createdAt' | 'expiresAt'> &
  Partial<Pick<BackOfficeSessionEntity, 'tokenHash'>>;

const failure = (code: string, description: string): IdentityResult<never> => IdentityResult.failed({ code, description } satisfies IdentityError);

/**
 * While a lockout lasts the flows that check the password refuse without checking it, as sign-in and
 * re-authentication do: the lockout leaves live sessions working, and a session must not guess past it
 * (OWASP ASVS 4.0 2.2.1).
 */
const lockedOut = (): IdentityResult<never> => failure('locked_out', 'The account is locked after too many failed attempts.');
const invalidCredentials = (): IdentityResult<never> => failure('invalid_credentials', 'The username or password is incorrect.');
const noLocalPassword = (): IdentityResult<never> =>
  failure('no_local_password', 'This account has no password to confirm this with; an administrator can reset its two-factor authentication.');
/**
 * The session the request came with is gone (revoked, its user deleted, or its token renewed by another request
 * meanwhile): `unauthenticated`, answered 401 as the guard answers its next request. `message` is the one the flow
 * has always said.
 */
const sessionEnded = (message = 'The session has ended; sign in again.'): IdentityResult<never> => failure('unauthenticated', message);

/**
 * The signed-in user's own account flows, for the REST routes and for host code alike: change password, turn
 * two-factor authentication on and off, list and end sessions. Each flow renews the security stamp through the
 * user manager (which raises the notification) and then keeps the calling session while ending the others
 * (`signInManager.refreshSignIn`). Refusals are `IdentityResult` failures with the registry's codes
 * (`invalid_credentials`, `two_factor_already_enabled`, ...); the controllers only map them to HTTP.
 */
@Injectable()
export class BackOfficeAccountService {
  constructor(
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
    @Inject(BackOfficeSessionIssuer) private readonly issuer: BackOfficeSessionIssuer,
  ) {}

  private get userManager(): BackOfficeUserManager {
    return this.signInManager.userManager;
  }

  /** `locked_out`, audited as a refused check of a locked account ({@link BackOfficeUserManager.lockedOutRefused}). */
  private async refusedWhileLocked(user: BackOfficeUser, via: BackOfficeCredentialCheckVia): Promise<IdentityResult<never>> {
    await this.userManager.lockedOutRefused(user, via);
    return lockedOut();
  }

  /**
   * No password of `user` can be checked here: no local hash and no password checker to ask (an external provider's
   * user). Nothing is guessed then, so nothing is counted or audited (OWASP ASVS 4.0 2.2.1: a lockout no guess earned).
   */
  private hasNoPasswordToCheck(user: BackOfficeUser): boolean {
    return !this.userManager.hasPassword(user) && !this.userManager.hasExternalPasswordChecker;
  }

  /**
   * The checker did not know the user and there is no local hash (`outcome.noPasswordToCheck`), at the step-up,
   * change-password and turning 2FA off: a directory-managed user's password is the directory's (it is down, or no longer knows them),
   * refused as a wrong one; anyone else has none here. Neither is counted.
   */
  private noPasswordToCheck(user: BackOfficeUser): IdentityResult<never> {
    return this.userManager.isDirectoryManaged(user) ? invalidCredentials() : noLocalPassword();
  }

  /**
   * A wrong password, counted toward lockout and audited (`credentialRefused`, OWASP ASVS 5.0 16.3.1) with `via`:
   * the attempt that locks the account, or whose count finds it locked meanwhile, answers `locked_out`, as sign-in
   * does; else `invalid_credentials`.
   */
  private async wrongPassword(user: BackOfficeUser, via: BackOfficeCredentialCheckVia): Promise<IdentityResult<never>> {
    return (await this.userManager.lockedByCount(user, await this.userManager.credentialRefused(user, 'invalid_credentials', via))) ? lockedOut() : invalidCredentials();
  }

  /**
   * Changes the password after checking the current one; a wrong current password counts toward lockout and
   * fails with `invalid_credentials` (`locked_out` when that attempt locked the account), a weak new one with the policy's errors. A user without a
   * password to check gets `no_local_password` (a directory-managed one `invalid_credentials`), nothing counted. While the user is locked out the
   * password is not checked, and a right one in a request already in flight when the lock came changes nothing
   * (`locked_out`). On success only `session` stays.
   *
   * The check of the current password is a re-authentication (OWASP ASVS 5.0 7.2.4): with `response` (and the
   * request's session, which carries its `tokenHash`) the session gets a new token once the password is changed,
   * as the cookies of `response`, and records the re-authentication; the old token stops at once. Should the
   * session no longer hold the token it was read with (another request renewed it meanwhile, or it was revoked) the
   * password is still changed and no cookie is set.
   */
  async changePassword(
    user: BackOfficeUser,
    session: BackOfficeAccountSession,
    currentPassword: string,
    newPassword: string,
    response?: BackOfficeHttpResponse,
  ): Promise<IdentityResult> {
    if (this.userManager.isLockedOut(user)) return this.refusedWhileLocked(user, 'change_password');
    if (this.hasNoPasswordToCheck(user)) return noLocalPassword();
    const outcome: BackOfficePasswordCheckOutcome = {};
    const result = await this.signInManager.keepSignedInThrough(session.id, () => this.userManager.changePassword(user, currentPassword, newPassword, outcome));
    if (!result.succeeded) {
      // A right password once wrong ones in flight locked the account (the user manager read the lock again).
      if (result.errors[0]?.code === 'locked_out') return this.refusedWhileLocked(user, 'change_password');
      if (!result.errors.some((e) => e.code === 'password_mismatch')) return result;
      if (outcome.noPasswordToCheck) return this.noPasswordToCheck(user);
      return this.wrongPassword(user, 'change_password');
    }
    await this.signInManager.refreshSignIn(user, session.id);
    await this.renewAfterPasswordCheck(session, response, true);
    return result;
  }

  /**
   * The password step-up (`POST /auth/reauthenticate`, OWASP ASVS 5.0 7.2.4): `session` (the request's, with its
   * `tokenHash`) counts as a recent sign-in once `password` is right. In this order: `no_local_password` when no
   * password of `user` can be checked (nothing counted); `locked_out` while `user` (as the guard loaded them) is
   * locked, the password not checked, audited ({@link refuseStepUpWhileLocked}); the password is checked: a directory
   * outage (the checker's `unavailable`) is `invalid_credentials`, not counted; no password to check for this user
   * (`outcome.noPasswordToCheck`) is `invalid_credentials` for a directory-managed user, else `no_local_password`, not
   * counted; a wrong one is counted toward lockout and audited with `via: 'reauthentication'`, `locked_out` when that
   * count locked the account (or found it locked meanwhile), else `invalid_credentials`. A right one ends as
   * {@link completeStepUp} with `method: 'password'`: the lock read again (`locked_out`), a new token for the session
   * as the cookies of `response`, or `unauthenticated` when the session no longer holds its token. Succeeds with the
   * step-up's end.
   */
  async reauthenticateWithPassword(
    user: BackOfficeUser,
    session: BackOfficeSessionEntity,
    password: string,
    response: BackOfficeHttpResponse,
  ): Promise<IdentityResult<Date>> {
    // A directory user has no local hash (created by the directory, or retired by it): the password checker decides.
    if (this.hasNoPasswordToCheck(user)) return noLocalPassword();
    // Not checked while locked, but audited as a locked sign-in is (OWASP ASVS 5.0 16.3.1).
    const unlocked = await this.refuseStepUpWhileLocked(user);
    if (!unlocked.succeeded) return unlocked as IdentityResult<never>;
    const outcome: BackOfficePasswordCheckOutcome = {};
    if (!(await this.userManager.checkPassword(user, password, outcome))) {
      // A directory outage is refused as at sign-in, but is no wrong password: not counted toward lockout.
      if (outcome.unavailable) return invalidCredentials();
      if (outcome.noPasswordToCheck) return this.noPasswordToCheck(user);
      return this.wrongPassword(user, 'reauthentication');
    }
    return this.completeStepUp(user, session, response, 'password');
  }

  /**
   * The start of a step-up that checks something (`POST /auth/reauthenticate`, its passkey twin): while `user` (as the
   * guard loaded them) is locked out nothing is checked, and it fails `locked_out`, audited as a refused check of a
   * locked account ({@link BackOfficeUserManager.lockedOutRefused}, OWASP ASVS 5.0 16.3.1). Succeeds otherwise.
   */
  async refuseStepUpWhileLocked(user: BackOfficeUser): Promise<IdentityResult> {
    if (!this.userManager.isLockedOut(user)) return IdentityResult.success();
    return this.refusedWhileLocked(user, 'reauthentication');
  }

  /**
   * The start of the passkey step-up's options (`POST /auth/reauthenticate/passkey/options`): while `user` (as the
   * guard loaded them) is locked out it fails `locked_out`, not audited (the options check nothing). Succeeds otherwise.
   */
  refuseStepUpOptionsWhileLocked(user: BackOfficeUser): IdentityResult {
    return this.userManager.isLockedOut(user) ? lockedOut() : IdentityResult.success();
  }

  /**
   * The end of a step-up whose password or passkey was right (`POST /auth/reauthenticate`, its passkey twin): the
   * lock is read again (the user the guard loaded at the request's start may have been locked since by wrong
   * step-ups in flight: a right guess among parallel ones steps nothing up, OWASP ASVS 4.0 2.2.1) and answers
   * `locked_out`; else the failed-access count is reset, `beforeComplete` runs (the passkey's use is recorded), the
   * session gets a new token as the cookies of `response` (OWASP ASVS 5.0 7.2.4: the old one stops working now) and
   * `UserReauthenticatedNotification` is raised with `method`. `unauthenticated` when the session no longer holds the
   * token it was read with (another step-up renewed it first, or it was revoked). Succeeds with the step-up's end.
   */
  async completeStepUp(
    user: BackOfficeUser,
    session: BackOfficeSessionEntity,
    response: BackOfficeHttpResponse,
    method: 'password' | 'passkey',
    beforeComplete?: () => Promise<unknown>,
  ): Promise<IdentityResult<Date>> {
    if (await this.userManager.isLockedOutNow(user)) return this.refusedWhileLocked(user, 'reauthentication');
    if (this.userManager.supportsUserLockout) await this.userManager.resetAccessFailedCount(user);
    await beforeComplete?.();
    const until = await this.issuer.completeStepUp(session, response);
    if (!until) return sessionEnded('The session has ended or was renewed meanwhile.');
    await this.userManager.notify(UserReauthenticatedNotification, user, { method });
    return IdentityResult.success(until);
  }

  /**
   * Starts enrolling with `providerName` (a secret and QR code to confirm with `enableTwoFactor`). While 2FA is on
   * through another factor (a passkey) the user may still add this one, as ASP.NET Identity allows several;
   * `two_factor_already_enabled` only when 2FA is on and this provider is the one already set up.
   */
  async startTwoFactorSetup(user: BackOfficeUser, providerName: string): Promise<IdentityResult<TwoFactorSetup>> {
    const provider = this.twoFactorProvider(providerName);
    if (!provider.succeeded) return provider as IdentityResult<never>;
    const alreadyOn = () => failure('two_factor_already_enabled', 'Two-factor authentication is already on.');
    if (await this.alreadyEnrolled(user, provider.value!)) return alreadyOn();
    try {
      return IdentityResult.success(await provider.value!.generateSetup(user));
    } catch (error) {
      // `user` was read before an enable committed: the provider kept the key that enable confirmed. A store also
      // writes nothing for a user deleted meanwhile: that session is gone (401, as the guard answers it next).
      if (error instanceof TwoFactorAlreadySetUpError) {
        return (await this.userManager.findById(user.id)) ? alreadyOn() : sessionEnded();
      }
      throw error;
    }
  }

  /** 2FA is on and `provider` is set up for it (so a new enrolment would replace a working factor). */
  private async alreadyEnrolled(user: BackOfficeUser, provider: TwoFactorProvider): Promise<boolean> {
    return user.twoFactorEnabled && (await provider.isSetUp(user));
  }

  /**
   * Confirms the enrolment with a code and turns 2FA on (`UserTwoFactorEnabledNotification`): a setup-only
   * session becomes a full one, the user's other sessions end, and 10 new recovery codes are answered (shown once;
   * none when the store keeps no recovery codes). When 2FA is already on through another factor (a passkey), the
   * provider is added beside it (`UserTwoFactorEnabledNotification` again, other sessions end) and the user's
   * recovery codes are kept: none are answered unless none were left.
   *
   * A setup-only session that becomes a full one gets a new token first (OWASP ASVS 5.0 7.2.4, a rise in
   * privilege): with `response` (and the request's session, which carries its `tokenHash`) the new session and XSRF
   * cookies are set on it and the old token stops at once; `unauthenticated` (nothing changed) when the session no
   * longer holds that token. Without `response` there is no way to hand a new token over: the setup-only session
   * ends once 2FA is on, and the user signs in again, with the second factor.
   */
  async enableTwoFactor(
    user: BackOfficeUser,
    session: BackOfficeAccountSession,
    providerName: string,
    code: string,
    response?: BackOfficeHttpResponse,
  ): Promise<IdentityResult<{ recoveryCodes: string[] }>> {
    const provider = this.twoFactorProvider(providerName);
    if (!provider.succeeded) return provider as IdentityResult<never>;
    if (await this.alreadyEnrolled(user, provider.value!)) return failure('two_factor_already_enabled', 'Two-factor authentication is already on.');
    // 2FA already on through another factor (a passkey): this one is added beside it, and the recovery codes the
    // user saved stay good (new ones only when none are left, as ASP.NET Identity's EnableAuthenticator does).
    const alreadyOn = user.twoFactorEnabled;
    if (!(await provider.value!.verify(user, code, { enrolling: true }))) {
      return failure('invalid_code', 'The code is not valid; check the time on your device and try the next code.');
    }
    const setupOnly = session.twoFactorSetupOnly;
    const renewable = setupOnly && this.canRenew(session, response);
    // The new token before 2FA is on: the setup-only session's token never reaches the full session, and of two
    // confirmations sent at once with one token only one goes on. The step-up window is not extended.
    if (renewable && !(await this.issuer.renew(session as BackOfficeSessionEntity, response, { reauthenticated: false }))) {
      return sessionEnded('The session ended; sign in again.');
    }
    // Only while the enrolment just confirmed is still set up, asked under the user's row lock: a setup sent meanwhile
    // (another tab) saw 2FA off and replaced the key; it is refused as a wrong code, nothing turned on (ASVS 4.0 1.11.3).
    const enabled = await this.signInManager.keepSignedInThrough(session.id, () => this.userManager.setTwoFactorEnabled(user, true, { whileSetUp: provider.value! }));
    if (!enabled.succeeded) {
      // The enrolment gone with the user (deleted meanwhile, its key with it): the session is gone too, as the guard
      // answers its next request, not "a new setup was started".
      const gone = enabled.errors.some((e) => e.code === 'invalid_code') && !(await this.userManager.findById(user.id));
      return gone ? sessionEnded() : (enabled as IdentityResult<never>);
    }
    await this.signInManager.refreshSignIn(user, session.id);
    if (setupOnly && !renewable) await this.sessions.revoke(user.id, session.id);
    else await this.sessions.completeTwoFactorSetup(session as BackOfficeSessionEntity);
    if (user.twoFactorSetupDeadline) await this.userManager.setTwoFactorSetupDeadline(user, null);
    // A store without recovery codes (no UserRecoveryCodeStore) still gets 2FA, with no codes to show.
    const keepCodes = alreadyOn && (await this.userManager.countRecoveryCodes(user)) > 0;
    // Written only while 2FA is still on, read under the lock of the write: a disable (an admin's reset) that committed
    // since the flag was turned on leaves no code stored with 2FA off, and the enable is told so.
    const recoveryCodes =
      this.userManager.supportsUserRecoveryCodes && !keepCodes ? await this.userManager.generateNewRecoveryCodes(user, undefined, { whileTwoFactorEnabled: true }) : [];
    if (recoveryCodes === null) return failure('two_factor_not_enabled', 'Two-factor authentication was turned off meanwhile.');
    return IdentityResult.success({ recoveryCodes });
  }

  /**
   * A new set of 10 recovery codes for a user with 2FA on, answered once; the old set is void at once
   * (`UserRecoveryCodesRegeneratedNotification`). `two_factor_not_enabled` while 2FA is off, `not_found` when 2FA
   * or recovery codes are not available. Sessions stay as they are: no way in was added or removed. The REST route
   * asks for a recent sign-in first (a stolen session must not mint codes).
   */
  async regenerateRecoveryCodes(user: BackOfficeUser): Promise<IdentityResult<{ recoveryCodes: string[] }>> {
    if (!this.userManager.supportsUserTwoFactor || !this.userManager.supportsUserRecoveryCodes) {
      return failure('not_found', 'Recovery codes are not enabled.');
    }
    const result = await this.userManager.regenerateRecoveryCodes(user);
    return result.succeeded ? IdentityResult.success({ recoveryCodes: result.value! }) : (result as IdentityResult<never>);
  }

  /**
   * Turns 2FA off after checking the password (a wrong or missing one counts toward lockout and is audited as
   * `UserLoginFailedNotification` with `via: 'two_factor_disable'`: `invalid_credentials`, `locked_out` when that attempt
   * locked the account; a user without a password
   * to check gets `no_local_password`, a directory-managed one the checker no longer knows `invalid_credentials`, as at
   * the step-up and change-password, nothing counted);
   * refused while a group of the user requires it (`two_factor_required`), and while the user is locked out
   * (`locked_out`, the password not checked). With `denyLocalLogin` no password is asked (none is accepted
   * anywhere): the route's recent sign-in, through the provider, is the proof. Only `session` stays signed in.
   *
   * With `response` (and the request's session, with its `tokenHash`) the session gets a new token once 2FA is off,
   * as `changePassword` does (OWASP ASVS 5.0 7.2.4); the password check is recorded as a re-authentication (with
   * `denyLocalLogin`, where none is checked, the token is renewed without recording one).
   */
  async disableTwoFactor(
    user: BackOfficeUser,
    session: BackOfficeAccountSession,
    password: string | undefined,
    response?: BackOfficeHttpResponse,
  ): Promise<IdentityResult> {
    if (!this.userManager.supportsUserTwoFactor) return failure('not_found', 'Two-factor authentication is not enabled.');
    if (!user.twoFactorEnabled) return failure('two_factor_not_enabled', 'Two-factor authentication is not on.');
    if (user.twoFactorRequiredByGroup) {
      return failure('two_factor_required', 'One of your groups requires two-factor authentication; it cannot be turned off.');
    }
    if (this.userManager.isLockedOut(user)) return this.refusedWhileLocked(user, 'two_factor_disable');
    if (!this.userManager.options.denyLocalLogin) {
      if (this.hasNoPasswordToCheck(user)) return noLocalPassword();
      const outcome: BackOfficePasswordCheckOutcome = {};
      if (password === undefined || !(await this.userManager.checkPassword(user, password, outcome))) {
        if (outcome.noPasswordToCheck) return this.noPasswordToCheck(user);
        // A directory outage (the password checker's `unavailable`) is refused without counting toward lockout. A wrong
        // password is counted and audited, as at step-up and change-password.
        return outcome.unavailable ? invalidCredentials() : this.wrongPassword(user, 'two_factor_disable');
      }
      if (await this.userManager.isLockedOutNow(user)) return this.refusedWhileLocked(user, 'two_factor_disable');
    }
    const result = await this.signInManager.keepSignedInThrough(session.id, () => this.userManager.resetTwoFactor(user));
    if (!result.succeeded) return result;
    await this.signInManager.refreshSignIn(user, session.id);
    await this.renewAfterPasswordCheck(session, response, !this.userManager.options.denyLocalLogin);
    return result;
  }

  /**
   * A new token for `session` after a change that checked the user's password (a re-authentication, OWASP ASVS 5.0
   * 7.2.4), set as the cookies of `response`; `reauthenticated` records it for `@RequiresRecentSignIn()` routes.
   * Nothing without `response` or the session's `tokenHash` (host code calling the service directly), nor when the
   * session no longer holds that token: the change is made either way.
   */
  private async renewAfterPasswordCheck(session: BackOfficeAccountSession, response: BackOfficeHttpResponse | undefined, reauthenticated: boolean): Promise<void> {
    if (this.canRenew(session, response)) await this.issuer.renew(session as BackOfficeSessionEntity, response, { reauthenticated });
  }

  /** True when `session` can get a new token here: a route's `response` to carry it, and the token hash it was read with. */
  private canRenew(session: BackOfficeAccountSession, response: BackOfficeHttpResponse | undefined): response is BackOfficeHttpResponse {
    return response !== undefined && typeof session.tokenHash === 'string';
  }

  /** The user's live sessions, `current` marking `session`. */
  listSessions(user: BackOfficeUser, session: Pick<BackOfficeSessionEntity, 'id'>): Promise<BackOfficeSessionDto[]> {
    return this.sessions.list(user, session.id);
  }

  /** One page of {@link listSessions} (most recently seen first, ties by id) and whether sessions follow it. */
  listSessionsPage(
    user: BackOfficeUser,
    session: Pick<BackOfficeSessionEntity, 'id'>,
    page: BackOfficeListPage,
  ): Promise<{ items: BackOfficeSessionDto[]; more: boolean }> {
    return this.sessions.listPage(user, page, session.id);
  }

  /**
   * Ends one of the user's own live sessions (`UserSessionsRevokedNotification` with `count` 1, audited); false, and
   * nothing published, when it is not theirs, or (given the user's `securityStamp`, as a signed-in request's user has
   * it) no longer live: revoked, timed out, or made under a stamp the user no longer has.
   */
  async revokeSession(user: Pick<BackOfficeUser, 'id'> & Partial<Pick<BackOfficeUser, 'securityStamp'>>, sessionId: string): Promise<boolean> {
    const { id, securityStamp } = user;
    const revoked = await this.sessions.revoke(securityStamp === undefined ? id : { id, securityStamp }, sessionId);
    if (!revoked) return false;
    // The email-change link that session may have asked for (to a thief's mailbox) ends with it; audited either way.
    await this.userManager.sessionsEnded(user, 1);
    return revoked;
  }

  /** Signs out everywhere else: every other session ends (`UserSessionsRevokedNotification`). Answers how many. */
  async revokeOtherSessions(user: BackOfficeUser, session: Pick<BackOfficeSessionEntity, 'id'>): Promise<number> {
    const revoked = await this.sessions.revokeAll(user, session.id);
    await this.userManager.sessionsEnded(user, revoked);
    return revoked;
  }

  private twoFactorProvider(name: string): IdentityResult<TwoFactorProvider> {
    if (!this.userManager.supportsUserTwoFactor) return failure('not_found', 'Two-factor authentication is not enabled.');
    const provider = this.userManager.getTwoFactorProvider(name);
    return provider ? IdentityResult.success(provider) : failure('unknown_provider', 'No such two-factor provider.');
  }
}
