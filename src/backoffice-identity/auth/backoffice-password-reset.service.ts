import { Inject, Injectable } from '@nestjs/common';
import { BackOfficeBackgroundTasks } from '../common/background-tasks.js';
import type { BackOfficeClock } from '../common/clock.js';
import { IdentityResult } from '../common/identity-result.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_SIGN_IN_MANAGER, BACKOFFICE_USER_MANAGER } from '../constants.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import { BackOfficeEmailDispatcher } from '../email/email-dispatcher.service.js';
import { BackOfficeEmailTemplates } from '../email/email-templates.js';
import { UserForgotPasswordChangedNotification, UserForgotPasswordRequestedNotification, UserPasswordResetRefusedNotification } from '../notifications/notifications.js';
import { deriveUserState } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';

/**
 * Forgot / reset password. The request answers at once and the lookup, token and email happen afterwards,
 * so known and unknown addresses take the same time and give the same answer.
 */
@Injectable()
export class BackOfficePasswordResetService {
  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BackOfficeEmailDispatcher) private readonly emails: BackOfficeEmailDispatcher,
    @Inject(BackOfficeEmailTemplates) private readonly templates: BackOfficeEmailTemplates,
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficeBackgroundTasks) private readonly background: BackOfficeBackgroundTasks,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
  ) {}

  /** Starts the reset for `email` in the background; returns immediately whatever the address. */
  requestReset(email: string): void {
    this.background.run('forgot-password', () => this.sendResetEmail(email));
  }

  private async sendResetEmail(email: string): Promise<void> {
    const user = await this.userManager.findByEmail(email);
    if (!user) return;
    const state = deriveUserState(user, this.clock.now());
    if (state === 'disabled' || state === 'invited') return;
    if (this.userManager.isDirectoryManaged(user)) {
      // The directory owns the password (LDAP): a link would let a user removed from it set a local one through a
      // mailbox that still works (offboarding, OWASP ASVS 4.0 V2.5). A notice instead; the HTTP answer was the same.
      await this.userManager.notify(UserPasswordResetRefusedNotification, user, { via: 'forgot_password' });
      await this.emails.dispatch('PasswordManagedByDirectory', this.templates.passwordManagedByDirectory(user), user);
      return;
    }
    // Users with a local password get a link, and so do users whose password an admin's forced reset removed
    // (`lastPasswordChangeAt` records the removal); users who never had one (external logins only) do not.
    if (!this.userManager.hasPassword(user) && user.lastPasswordChangeAt === null) return;
    await this.userManager.notify(UserForgotPasswordRequestedNotification, user);
    // The new link replaces the previous one only once its email went out: a failed send leaves that one working.
    await this.userManager.deliverNewPasswordResetToken(user, (token) => this.emails.dispatch('PasswordReset', this.templates.passwordReset(user, token), user, [token]));
  }

  /**
   * The username of a reset link's user while the link works, for the reset page's `autocomplete="username"` field
   * (password managers save the new password under it); null whenever {@link reset} would refuse the link itself
   * (`invalid_token`: unknown user, wrong, used or expired token, disabled, directory-managed). Nothing is revealed
   * without a live token, and nothing is written: the token stays live.
   */
  async usernameForLink(userId: string, token: string): Promise<string | null> {
    const user = await this.userManager.findById(userId);
    if (!user || this.userManager.isDirectoryManaged(user) || deriveUserState(user, this.clock.now()) === 'disabled') return null;
    return (await this.userManager.verifyUserToken(user, 'password_reset', token)) ? user.username : null;
  }

  /**
   * Resets with the emailed token: all sessions end, the lockout is cleared. Unknown and disabled users:
   * `invalid_token`; a user whose timed disable has ended is enabled again first. A directory-managed user
   * (`directoryManagedAt`): `invalid_token` too, whatever the token, as for a used link (a link mailed before the
   * directory first authenticated them was voided then; the refusal is audited when the token was live).
   */
  async reset(userId: string, token: string, newPassword: string): Promise<IdentityResult> {
    const user = await this.userManager.findById(userId);
    if (!user) return IdentityResult.failed(this.userManager.errorDescriber.invalidToken());
    if (this.userManager.isDirectoryManaged(user)) {
      if (await this.userManager.verifyUserToken(user, 'password_reset', token)) {
        await this.userManager.notify(UserPasswordResetRefusedNotification, user, { via: 'reset_password' });
      }
      return IdentityResult.failed(this.userManager.errorDescriber.invalidToken());
    }
    // A timed disable whose `until` passed ends with a live token, as it does with a right password at sign-in.
    if (!user.isApproved && (await this.userManager.verifyUserToken(user, 'password_reset', token))) await this.userManager.liftExpiredDisable(user);
    if (!user.isApproved) return IdentityResult.failed(this.userManager.errorDescriber.invalidToken());
    const result = await this.userManager.resetPassword(user, token, newPassword);
    if (!result.succeeded) return result;
    await this.signInManager.refreshSignIn(user);
    await this.userManager.notify(UserForgotPasswordChangedNotification, user);
    return result;
  }
}
