import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficePasskeyCeremonies } from '../passkeys/passkey-ceremonies.service.js';
import { PASSKEY_PROVIDER } from '../passkeys/passkey-two-factor.provider.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BackOfficeSessionService } from '../sessions/backoffice-session.service.js';
import {
  UserLoginFailedNotification,
  UserLoginRequiresTwoFactorSetupNotification,
  UserLoginRequiresVerificationNotification,
  UserLoginSuccessNotification,
  UserTwoFactorRequestedNotification,
} from '../notifications/notifications.js';
import { isPendingInvitee, type BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficePasswordCheckOutcome, BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { isUserTwoFactorStore, type FailedAccessResult } from '../users/stores/user-store.interface.js';
import type { TwoFactorVerifyOutcome } from '../two-factor/two-factor-provider.interface.js';
import { RECOVERY_PROVIDER } from '../two-factor/recovery-codes.js';

/**
 * Audit reason of a sign-in the password checker could not decide (`unavailable`, e.g. an LDAP outage): the client
 * gets 401 `invalid_credentials` as for a wrong password; no failed attempt is counted.
 */
const PASSWORD_CHECK_UNAVAILABLE = 'password_check_unavailable';
/** The refusal of a passkey sign-in while an admin's forced password reset is pending. */
const PASSWORD_RESET_REQUIRED = 'password_reset_required';

/**
 * Audit reason of a second step refused because its code was right but already used (a TOTP step accepted before):
 * the client gets 401 `invalid_code` as for a wrong code, and it counts as a failed attempt; the audit tells them apart.
 */
const TWO_FACTOR_CODE_REUSED = 'two_factor_code_reused';

/** Outcome of a sign-in attempt. */
export type SignInStatus = 'success' | 'failed' | 'lockedOut' | 'notAllowed' | 'requiresTwoFactor' | 'requiresTwoFactorSetup';

export interface SignInResult {
  status: SignInStatus;
  /** Set for `success`, `requiresTwoFactor`, `requiresTwoFactorSetup` and `notAllowed`. */
  user?: BackOfficeUser;
  /** Set for `lockedOut`. */
  lockoutEnd?: Date | null;
  /**
   * Machine-readable detail of a refusal (`invalid_credentials`, `invalid_code`, `two_factor_code_reused`, `locked_out`,
   * `not_allowed`, `local_login_disabled`; `user_verification_required` for a passkey sign-in without user
   * verification of a user with 2FA on and no other second factor; `password_reset_required` for a passkey sign-in while an
   * admin's forced password reset is pending).
   */
  reason?: string;
  /** For `requiresTwoFactor`: the providers the user can answer with (e.g. `totp`, `recovery`). */
  providers?: string[];
  /** For `success` of a member of a `requireTwoFactor` group without 2FA, in the grace period: its end. */
  twoFactorSetupDeadline?: Date;
  /** For a passkey sign-in: the passkey was user-verified (PIN, biometrics). */
  userVerified?: boolean;
}

/** Who signs in from where; taken from the current request when omitted. */
export interface SignInContext {
  ipAddress?: string;
  userAgent?: string;
}

/**
 * Password sign-in with the rules of the contract: while locked the password is not checked; unknown usernames
 * cost one hash check and are counted and locked like real ones, so neither answer nor timing tells whether an
 * account exists; the optional password checker is asked first (through the user manager).
 */
@Injectable()
export class BackOfficeSignInManager {
  private readonly logger = new Logger('BackOfficeSignInManager');
  private warnedNoGracePeriod = false;
  private warnedTwoFactorUnavailable = false;

  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) readonly userManager: BackOfficeUserManager,
    @Optional() @Inject(BackOfficePasskeyCeremonies) protected readonly passkeys?: BackOfficePasskeyCeremonies,
    @Optional() @Inject(BackOfficeSessionService) protected readonly sessions?: BackOfficeSessionService,
  ) {}

  /**
   * Runs `work`, an account change made in session `keepSessionId` that may renew the user's security stamp
   * (change password, two-factor on or off, unlink a login), so that the session stays signed in throughout: the
   * session first announces the stamp the change will write (`BackOfficeUserManager.withSecurityStamp`), so its
   * other requests in flight pass the stamp check while the user's row already holds the new stamp and the
   * session does not yet. Call {@link refreshSignIn} with the same session when the change succeeded.
   */
  async keepSignedInThrough<T>(keepSessionId: string, work: () => Promise<T>): Promise<T> {
    const sessions = this.sessions;
    if (!sessions) return work();
    const stamp = this.userManager.createSecurityStamp();
    await sessions.announceSecurityStamp(keepSessionId, stamp);
    return this.userManager.withSecurityStamp(stamp, work);
  }

  /**
   * The user's security stamp has just changed (password, two-factor, groups, disable, ...): the session
   * `keepSessionId` (the one that made the change, if any) adopts the new stamp and stays signed in; every
   * other session of the user ends. Without `keepSessionId` every session ends. Answers how many ended.
   * The session adopts `user.securityStamp` only while the user's row still holds it: when another change of the
   * same session (announced through {@link keepSignedInThrough}) wrote a later stamp meanwhile, the session keeps
   * that one, which the other change adopts, instead of ending on a stamp the user no longer has.
   */
  async refreshSignIn(user: Pick<BackOfficeUser, 'id' | 'securityStamp'>, keepSessionId?: string | null): Promise<number> {
    const sessions = this.sessions;
    if (!sessions) throw new Error('BackOfficeSignInManager.refreshSignIn needs the BackOfficeSessionService (construct the manager through the module)');
    if (keepSessionId) await sessions.adoptSecurityStamp(keepSessionId, user.securityStamp, user.id);
    return sessions.revokeAll(user.id, keepSessionId ?? undefined);
  }

  async passwordSignIn(username: string, password: string, context?: SignInContext): Promise<SignInResult> {
    if (context) {
      const current = BackOfficeRequestContextStore.current();
      return BackOfficeRequestContextStore.run({ ...current, ...context }, () => this.signIn(username, password));
    }
    return this.signIn(username, password);
  }

  protected async signIn(username: string, password: string): Promise<SignInResult> {
    const manager = this.userManager;
    if (manager.options.denyLocalLogin) return { status: 'notAllowed', reason: 'local_login_disabled' };
    const key = manager.lookupKey(username);
    if (key === null) {
      await manager.verifyAgainstDummyHash(password);
      return this.fail(null, 'invalid_credentials');
    }
    const user = await manager.findByName(username);
    // An API user has no interactive sign-in: its name counts and locks like an unknown one, so wrong passwords
    // never lock the API user itself (which would end its bearer tokens).
    if (!user || user.kind === 'api') return this.unknownUserSignIn(key, username, password);

    if (manager.isLockedOut(user)) return this.lockedOut(user, user.lockoutEnd, password);
    const outcome: BackOfficePasswordCheckOutcome = {};
    if (!(await manager.checkPassword(user, password, outcome))) {
      // The password checker could not decide (a directory outage): refused, audited, but not a wrong password.
      if (outcome.unavailable) return this.fail(user, PASSWORD_CHECK_UNAVAILABLE);
      const counted = await this.recordFailedAccess(user);
      if (counted.alreadyLocked && manager.supportsUserLockout && user.lockoutEnabled) {
        const fresh = await manager.findById(user.id);
        return this.lockedOut(user, fresh?.lockoutEnd ?? null);
      }
      if (counted.lockedNow) return this.lockedOut(user, counted.lockoutEnd);
      return this.fail(user, 'invalid_credentials');
    }
    // Requests already in flight when the account locked must not get in with a right guess: look again.
    const current = await manager.findById(user.id);
    if (!current) return this.fail(null, 'invalid_credentials');
    if (manager.isLockedOut(current)) return this.lockedOut(current, current.lockoutEnd);
    Object.assign(user, current, { passwordHash: user.passwordHash });
    const result = await this.passwordVerified(user);
    // The directory (a checker that retires local passwords) accepted the password: the stale local hash goes, so a
    // user removed from the directory later ('fallback') cannot sign in with it, and the user is marked
    // directory-managed, so no reset link by email gives them a local password either (offboarding).
    if (outcome.vouched && result.status !== 'notAllowed') {
      await manager.markDirectoryManaged(user);
      await manager.retireLocalPassword(user);
    }
    return result;
  }

  /** The steps after a right password: approval, second factor, then success. */
  protected async passwordVerified(user: BackOfficeUser): Promise<SignInResult> {
    const manager = this.userManager;
    const refused = await this.refuseUnlessAllowed(user);
    if (refused) return refused;
    if (await this.isTwoFactorRequired(user)) {
      const providers = await this.usableTwoFactorProviders(user);
      const refused = await this.refuseWithoutSecondFactor(user, providers);
      if (refused) return refused;
      // The failed count is not reset yet: wrong second-factor codes keep counting toward lockout across
      // password sign-ins; it is reset when the second factor succeeds.
      await manager.notify(UserLoginRequiresVerificationNotification, user);
      await manager.notify(UserTwoFactorRequestedNotification, user, { provider: providers[0] ?? 'none' });
      return { status: 'requiresTwoFactor', user, providers };
    }
    await this.resetFailedAccess(user);
    return this.finishSignIn(user);
  }

  /**
   * The last step of every sign-in whose factors are verified (password, passkey, accepted invite): a member of a
   * `requireTwoFactor` group without 2FA gets `requiresTwoFactorSetup` (the caller issues a setup-only session)
   * once any grace period has ended, and `success` with `twoFactorSetupDeadline` during it; everyone else
   * `success`. No way in skips the group's requirement (OWASP ASVS 4.0 2.2.x / 3.x).
   */
  async finishSignIn(user: BackOfficeUser): Promise<SignInResult & { status: 'success' | 'requiresTwoFactorSetup' }> {
    const enrolment = await this.twoFactorEnrolment(user);
    if (enrolment === 'required') {
      await this.userManager.notify(UserLoginRequiresTwoFactorSetupNotification, user);
      return { status: 'requiresTwoFactorSetup', user };
    }
    const result = { ...(await this.succeed(user)), status: 'success' as const };
    return enrolment instanceof Date ? { ...result, twoFactorSetupDeadline: enrolment } : result;
  }

  /**
   * Whether a user without 2FA must enrol first because one of their groups has `requireTwoFactor`:
   * `'none'` (not required), `'required'`, or the end of the grace period (`twoFactor.enforcementGraceHours`),
   * which starts at the first sign-in after the requirement applied. A store that cannot keep that deadline
   * (no `UserTwoFactorSetupDeadlineStore`) gets no grace period: a deadline nobody remembers would start again
   * at every sign-in and never end, so the requirement applies at once (and a warning is logged once).
   */
  async twoFactorEnrolment(user: BackOfficeUser): Promise<'none' | 'required' | Date> {
    const manager = this.userManager;
    if (!user.twoFactorRequiredByGroup || user.twoFactorEnabled || user.kind === 'api' || !manager.supportsUserTwoFactor) return 'none';
    const graceMs = manager.options.twoFactor.enforcementGraceHours * 3_600_000;
    if (graceMs <= 0) return 'required';
    if (!manager.supportsTwoFactorSetupDeadline) {
      if (!this.warnedNoGracePeriod) {
        this.warnedNoGracePeriod = true;
        this.logger.warn(
          'twoFactor.enforcementGraceHours is set, but the user store cannot keep the enrolment deadline (no setTwoFactorSetupDeadline, ' +
            'UserTwoFactorSetupDeadlineStore): members of groups that require 2FA must set it up at their next sign-in, without a grace period.',
        );
      }
      return 'required';
    }
    const now = manager.now();
    let deadline = user.twoFactorSetupDeadline ?? null;
    if (deadline === null) {
      deadline = new Date(now.getTime() + graceMs);
      await manager.setTwoFactorSetupDeadline(user, deadline);
    }
    return deadline.getTime() > now.getTime() ? deadline : 'required';
  }

  /**
   * Sign-in with a passkey instead of a password (the browser's assertion for a challenge from
   * `POST /auth/passkey/options`). The password rules apply: `denyLocalLogin`, lockout (423 only after a valid
   * assertion: a wrong signature answers as an unknown credential, whatever the account's lock, and neither counts
   * toward lockout), `not_allowed` only after a valid passkey, a timed disable that has ended lifted. A user with 2FA on signs in at once after a user-verified passkey; without user
   * verification the second factor is still asked (and cannot be a passkey); when the user has no other (2FA on
   * through passkeys alone, no recovery code) the answer is `notAllowed` with reason `user_verification_required`
   * (sign in again with user verification). With 2FA off a passkey needs no user verification: one factor, like a
   * password. A member of a `requireTwoFactor` group without 2FA gets `requiresTwoFactorSetup` as after a password. Unknown credentials and wrong signatures fail alike (`invalid_passkey`).
   */
  async passkeySignIn(response: AuthenticationResponseJSON, context?: SignInContext): Promise<SignInResult> {
    if (context) {
      const current = BackOfficeRequestContextStore.current();
      return BackOfficeRequestContextStore.run({ ...current, ...context }, () => this.signInWithPasskey(response));
    }
    return this.signInWithPasskey(response);
  }

  protected async signInWithPasskey(response: AuthenticationResponseJSON): Promise<SignInResult> {
    const manager = this.userManager;
    const ceremonies = this.passkeys;
    if (manager.options.denyLocalLogin) return { status: 'notAllowed', reason: 'local_login_disabled' };
    if (!ceremonies || !manager.supportsUserPasskeys) return this.fail(null, 'invalid_passkey');
    const passkey = await ceremonies.findPasskey(response);
    const user = passkey ? await manager.findById(passkey.userId) : null;
    // An API user has no interactive sign-in (as at POST /auth/login, where its name is answered as an unknown one): a
    // passkey it holds (no route gives it one, but a host store, a conversion or an import can) is answered as an
    // unknown credential, unverified and unrecorded, so it never gets a browser session (OWASP ASVS 4.0 2.2.1).
    if (!passkey || !user || user.kind === 'api') {
      await ceremonies.discardChallenge(response, 'authentication', null);
      return this.fail(null, 'invalid_passkey');
    }
    // The assertion is checked before the lockout, as ASP.NET Identity's PasskeySignInAsync does (assertion, then
    // PreSignInCheck). A credential id is no secret (allowCredentials, logs, sent in the clear by the authenticator):
    // were a locked account's id answered 423 unchecked, anyone who has one would learn the lock state, and that the
    // id is a live account's, which an unknown id never tells (OWASP ASVS 4.0 2.2.1 / 5.0 6.3.1). A wrong signature
    // (or userHandle) is answered as an unknown credential and, as one, is not counted: a signature cannot be
    // guessed, so counting it protects nothing and would let anyone with the id lock the account.
    const verification = await ceremonies.verifyAssertion(response, passkey, 'authentication', null);
    if (!verification.verified) {
      if (verification.reason === 'invalid_passkey') return this.fail(user, 'invalid_passkey');
      // A counter gone backwards came with a valid signature (a cloned authenticator): counted, as a wrong password is.
      return this.countFailure(user, verification.reason);
    }
    const current = await manager.findById(user.id);
    if (!current || current.kind === 'api') return this.fail(null, 'invalid_passkey');
    if (manager.isLockedOut(current)) return this.lockedOut(current, current.lockoutEnd);
    const refused = await this.refuseUnlessAllowed(current);
    if (refused) return refused;
    // An admin's forced reset is pending: the password is gone until the emailed link sets a new one, and a passkey
    // (a local credential as the password is, possibly added by whoever prompted the reset) waits for it too. Told
    // only after a valid assertion, not counted: the passkey was right (OWASP ASVS 5.0 6.4.x / 4.0 2.5.x).
    if (manager.isPasswordResetPending(current)) {
      await manager.notify(UserLoginFailedNotification, current, { reason: PASSWORD_RESET_REQUIRED });
      return { status: 'notAllowed', user: current, reason: PASSWORD_RESET_REQUIRED };
    }
    const { userVerified } = verification;
    // The passkey did its step whatever follows (a second factor, an enrolment): its use is on record (ASVS 4.0 7.2.1).
    await ceremonies.notifyUsed(verification.passkey, 'signIn', userVerified);
    if (!userVerified && (await this.isTwoFactorRequired(current))) {
      const providers = await this.usableTwoFactorProviders(current, PASSKEY_PROVIDER);
      // Nothing but passkeys to answer a second step with (2FA on through a passkey, no recovery code left): a second
      // step would be a dead end, so the client is told to ask the same passkey again with user verification, which
      // makes it both factors. Not a failed attempt: the passkey was right (OWASP ASVS 4.0 2.2.x).
      if (providers.length === 0) {
        await manager.notify(UserLoginFailedNotification, current, { reason: 'user_verification_required' });
        return { status: 'notAllowed', user: current, reason: 'user_verification_required', userVerified };
      }
      const refused = await this.refuseWithoutSecondFactor(current, providers);
      if (refused) return { ...refused, userVerified };
      await manager.notify(UserLoginRequiresVerificationNotification, current);
      await manager.notify(UserTwoFactorRequestedNotification, current, { provider: providers[0] ?? 'none' });
      return { status: 'requiresTwoFactor', user: current, providers, userVerified };
    }
    await this.resetFailedAccess(current);
    // A group's requireTwoFactor applies as after a password: a passkey is not the TOTP enrolment it asks for.
    return { ...(await this.finishSignIn(current)), userVerified };
  }

  /**
   * After a verified first factor (password or passkey): lifts a timed disable whose `until` has passed (the next
   * sign-in enables the user again), then asks {@link canSignIn}. An invitee who has not accepted the invite is
   * refused too (whatever its lockout says: a manager without lockouts gets here with a stored `lockoutEnd`): a
   * password checker (LDAP) can vouch for a user without a local password. Null when the user may go on; else the
   * notified `notAllowed` answer.
   */
  private async refuseUnlessAllowed(user: BackOfficeUser): Promise<SignInResult | null> {
    await this.userManager.liftExpiredDisable(user);
    if ((await this.canSignIn(user)) && !isPendingInvitee(user)) return null;
    await this.userManager.notify(UserLoginFailedNotification, user, { reason: 'not_allowed' });
    return { status: 'notAllowed', user, reason: 'not_allowed' };
  }

  /** Counts a failed attempt of a known user; locked now (or already) gives `lockedOut`, else `failed` with `reason`. */
  private async countFailure(user: BackOfficeUser, reason: string, twoFactorProvider: string | null = null): Promise<SignInResult> {
    const manager = this.userManager;
    const counted = await this.recordFailedAccess(user);
    if (counted.lockedNow) return this.lockedOut(user, counted.lockoutEnd, undefined, twoFactorProvider);
    if (counted.alreadyLocked && manager.supportsUserLockout && user.lockoutEnabled) {
      return this.lockedOut(user, (await manager.findById(user.id))?.lockoutEnd ?? null, undefined, twoFactorProvider);
    }
    return this.fail(user, reason, twoFactorProvider);
  }

  /**
   * Second step of a sign-in that returned `requiresTwoFactor`: checks the code (or a recovery code with
   * provider `recovery`). A wrong code counts as a failed access and can lock the account. `options.pendingSignInId`
   * names the pending sign-in this step completes: a provider that issued it a challenge (passkeys) accepts only an
   * answer to that one (OWASP ASVS 4.0 2.8.4 / 5.0 6.5.1).
   */
  async twoFactorSignIn(user: BackOfficeUser, provider: string, code: string, options: { pendingSignInId?: string } = {}): Promise<SignInResult> {
    const manager = this.userManager;
    if (manager.isLockedOut(user)) return this.lockedOut(user, user.lockoutEnd);
    if (!(await this.canSignIn(user))) return { status: 'notAllowed', user, reason: 'not_allowed' };
    const outcome: TwoFactorVerifyOutcome = {};
    // The audit names the factor (OWASP ASVS 5.0 16.3.1), only a known one: `provider` is the client's text.
    const factor = provider === RECOVERY_PROVIDER || manager.getTwoFactorProvider(provider) ? provider : null;
    // A recovery code is used up by its check, and `user` was read before (POST /auth/2fa reads it, then claims the
    // pending sign-in): the lock is read again just before, so an account locked meanwhile answers locked_out with
    // the code still unused, not refused after the check with the code gone (OWASP ASVS 4.0 2.2.1 / 2.6.1).
    if (provider === RECOVERY_PROVIDER && (await manager.isLockedOutNow(user))) return this.lockedOut(user, user.lockoutEnd, undefined, factor);
    if (!(await this.isTwoFactorRequired(user)) || !(await manager.verifyTwoFactorCode(user, provider, code, outcome, options))) {
      // A reused code is answered as any wrong one, but audited apart (OWASP ASVS 4.0 2.8.5): someone else may hold it.
      return this.countFailure(user, outcome.reused ? TWO_FACTOR_CODE_REUSED : 'invalid_code', factor);
    }
    // As after a right password: requests in flight when wrong codes locked the account must not get in with a
    // right code (a burst of parallel guesses is capped by the lockout), so look again before succeeding.
    const current = await manager.findById(user.id);
    if (!current) return this.fail(null, 'invalid_code');
    if (manager.isLockedOut(current)) return this.lockedOut(current, current.lockoutEnd);
    await this.resetFailedAccess(user);
    return this.succeed(user, provider);
  }

  /**
   * A username with no local user: counted and locked like a real one. The password checker may still vouch for
   * it (e.g. a directory user's first sign-in with `createUsers`): the user is then created and signed in.
   */
  private async unknownUserSignIn(key: string, username: string, password: string): Promise<SignInResult> {
    const manager = this.userManager;
    const lockedUntil = await manager.unknownUserLockoutEnd(key);
    if (lockedUntil) return this.lockedOut(null, lockedUntil, password);
    const outcome: BackOfficePasswordCheckOutcome = {};
    const created = await manager.checkUnknownUserPassword(username, password, outcome);
    if (created) return this.passwordVerified(created);
    // As for a known user: an outage is refused without counting, so 423 tells no more during one than before it.
    if (outcome.unavailable) return this.fail(null, PASSWORD_CHECK_UNAVAILABLE);
    if (!manager.supportsUnknownUserLockout) return this.fail(null, 'invalid_credentials');
    const counted = await manager.accessFailedForUnknownUser(key);
    if (counted.alreadyLocked) return this.lockedOut(null, await manager.unknownUserLockoutEnd(key));
    if (counted.lockedNow) return this.lockedOut(null, counted.lockoutEnd);
    return this.fail(null, 'invalid_credentials');
  }

  /**
   * Counts a failed access when the store keeps lockout (`supportsUserLockout`; as ASP.NET's SignInManager
   * checks `SupportsUserLockout`); otherwise nothing is counted.
   */
  protected async recordFailedAccess(user: BackOfficeUser): Promise<FailedAccessResult> {
    const manager = this.userManager;
    return manager.supportsUserLockout ? manager.accessFailed(user) : { alreadyLocked: false, lockedNow: false, accessFailedCount: 0, lockoutEnd: null };
  }

  /** Resets the failed count after a success, when the store keeps lockout. */
  protected async resetFailedAccess(user: BackOfficeUser): Promise<void> {
    if (this.userManager.supportsUserLockout) await this.userManager.resetAccessFailedCount(user);
  }

  /** Approved users may sign in; disabled and invited (no password accepted yet) may not. */
  async canSignIn(user: BackOfficeUser): Promise<boolean> {
    return user.isApproved;
  }

  /**
   * Two-factor is required when the user turned it on and the manager supports it, or when no provider is registered
   * at all (the sign-in then fails closed: {@link refuseWithoutSecondFactor}).
   */
  async isTwoFactorRequired(user: BackOfficeUser): Promise<boolean> {
    if (!user.twoFactorEnabled) return false;
    return this.userManager.supportsUserTwoFactor || this.noTwoFactorProviderBut();
  }

  /**
   * The second factors `user` can answer with now: the registered providers the user has set up, and recovery
   * codes; none while no provider is registered (`supportsUserTwoFactor` false). `exclude` drops one (a passkey
   * that was the first factor cannot be the second).
   */
  async usableTwoFactorProviders(user: BackOfficeUser, exclude?: string): Promise<string[]> {
    if (!this.userManager.supportsUserTwoFactor) return [];
    return (await this.userManager.getValidTwoFactorProviders(user)).filter((p) => p !== exclude);
  }

  /**
   * The refusal of a sign-in that needs a second factor while no second factor is configured that the user could
   * have (no provider registered but passkeys: `twoFactor.encryptionKey` missing after a deploy, say) and the user
   * has none to answer with (`providers` empty: no passkey, no recovery code). Such a sign-in fails closed, 403
   * `not_allowed` and `UserLoginFailedNotification` (audited), instead of passing on the password alone or ending
   * at a second step nobody can answer (OWASP ASVS 4.0 1.4.x, 2.1: fail securely); the log says why, once per
   * process. Null otherwise.
   */
  async refuseWithoutSecondFactor(user: BackOfficeUser, providers: readonly string[]): Promise<SignInResult | null> {
    if (providers.length > 0 || !this.noTwoFactorProviderBut(PASSKEY_PROVIDER)) return null;
    if (!this.warnedTwoFactorUnavailable) {
      this.warnedTwoFactorUnavailable = true;
      this.logger.error(
        'A user with two-factor authentication on cannot sign in: no two-factor provider is configured (set twoFactor.encryptionKey ' +
          'for TOTP, or register a provider). Their sign-ins are refused (not_allowed) until one is.',
      );
    }
    await this.userManager.notify(UserLoginFailedNotification, user, { reason: 'not_allowed' });
    return { status: 'notAllowed', user, reason: 'not_allowed' };
  }

  /** The store keeps two-factor enrolment, but no provider is registered apart from `except` (if given). */
  private noTwoFactorProviderBut(except?: string): boolean {
    return isUserTwoFactorStore(this.userManager.store) && !this.userManager.twoFactorProviders.some((p) => p.name !== except);
  }

  /**
   * Completes a sign-in: last-login time and `UserLoginSuccessNotification` (with `twoFactorProvider`, the second
   * factor that finished it, if any: audited).
   */
  async succeed(user: BackOfficeUser, twoFactorProvider: string | null = null): Promise<SignInResult> {
    await this.userManager.recordLogin(user);
    await this.userManager.notify(UserLoginSuccessNotification, user, { twoFactorProvider });
    return { status: 'success', user };
  }

  /**
   * A refused sign-in of a locked account. With `password` (the account was locked before this attempt),
   * the time of one hash check is spent on a dummy hash: the password is never checked against the account,
   * yet 423 takes as long as 401, so response times say nothing at all.
   */
  private async lockedOut(user: BackOfficeUser | null, lockoutEnd: Date | null, password?: string, twoFactorProvider: string | null = null): Promise<SignInResult> {
    if (password !== undefined) await this.userManager.verifyAgainstDummyHash(password);
    await this.userManager.notify(UserLoginFailedNotification, user, { reason: 'locked_out', twoFactorProvider });
    return { status: 'lockedOut', lockoutEnd, reason: 'locked_out' };
  }

  private async fail(user: BackOfficeUser | null, reason: string, twoFactorProvider: string | null = null): Promise<SignInResult> {
    await this.userManager.notify(UserLoginFailedNotification, user, { reason, twoFactorProvider });
    return { status: 'failed', reason };
  }
}
