import { Inject, Injectable } from '@nestjs/common';
import { BackOfficeBackgroundTasks } from '../common/background-tasks.js';
import type { BackOfficeClock } from '../common/clock.js';
import { sha256Hex } from '../common/crypto.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_SIGN_IN_MANAGER, BACKOFFICE_USER_MANAGER } from '../constants.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import { BackOfficeSessionService } from '../sessions/backoffice-session.service.js';
import { BackOfficeEmailDispatcher } from '../email/email-dispatcher.service.js';
import { BackOfficeEmailTemplates } from '../email/email-templates.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import {
  UserDeletedNotification,
  UserEmailChangedNotification,
  UserEmailChangeRequestedNotification,
  UserPasswordResetForcedNotification,
  UserPasswordResetRefusedNotification,
  UserProfileUpdatedNotification,
} from '../notifications/notifications.js';
import type { BackOfficeAuthorizedWriteOptions, BackOfficeUser } from './backoffice-user.js';
import type { BackOfficeUserManager } from './backoffice-user-manager.js';
import { isUuid } from '../common/ids.js';
import { differsBeyondAsciiCase } from '../common/lookup-normalizer.js';
import { BackOfficeDirectoryManagedRenameError, BackOfficeDuplicateUserError, isUserEmailChangeStore, type BackOfficeUserProfileChanges, type UserEmailChangeStore } from './stores/user-store.interface.js';

const BackOfficeLifecycleErrors = {
  /** A move of a directory-managed user's email that would move its username (see `refuseDirectoryManagedRename`). */
  directoryManagedRename: () =>
    BackOfficeHttpError.of('directory_managed', "The organisation's directory manages this user's sign-in: their email address, which is their username, is changed there."),
};

/** Hours an email-change link stays valid. */
export const EMAIL_CHANGE_LIFESPAN_HOURS = 24;

/**
 * The user lifecycle beyond sign-in: own name, email change with confirmation, admin edits, forced password
 * reset, deletion. Every step is audited through a notification.
 */
@Injectable()
export class BackOfficeUserLifecycleService {
  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficeEmailDispatcher) private readonly emails: BackOfficeEmailDispatcher,
    @Inject(BackOfficeEmailTemplates) private readonly templates: BackOfficeEmailTemplates,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeBackgroundTasks) private readonly background: BackOfficeBackgroundTasks,
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
  ) {}

  /**
   * Changes name and/or email (an admin's edit, or the user's own name). The email is validated like a new
   * user's, must be free, and moves the username along when `usernameIsEmail`. Audited with a diff. A new
   * email renews the security stamp (the user's sessions end) and voids outstanding password-reset and invite
   * links, as a confirmed self-service change does, and the user's pending email-change link (it would undo the edit).
   */
  async updateProfile(user: BackOfficeUser, input: { name?: string; email?: string }, options: BackOfficeAuthorizedWriteOptions = {}): Promise<void> {
    const candidate = await this.validated({ name: input.name ?? user.name, email: input.email ?? user.email });
    const changes: Record<string, { from: unknown; to: unknown }> = {};
    if (candidate.name !== user.name) changes.name = { from: user.name, to: candidate.name };
    const emailChanged = candidate.email !== user.email || this.userManager.normalizeKey(candidate.email) !== user.normalizedEmail;
    if (emailChanged) changes.email = { from: user.email, to: candidate.email };
    if (Object.keys(changes).length === 0) return;
    const oldEmail = user.email;
    if (emailChanged) {
      this.refuseDirectoryManagedRename(user, candidate.email);
      await this.writeEmail(user, { name: candidate.name, ...this.emailFields(candidate.email) }, options);
      await this.signInManager.refreshSignIn(user);
    } else {
      await this.rename(user, candidate.name, options);
    }
    await this.userManager.notify(UserProfileUpdatedNotification, user, { changes });
    if (emailChanged) await this.userManager.notify(UserEmailChangedNotification, user, { from: oldEmail, to: user.email });
  }

  /**
   * Whether an edit to `email` would store (and mail) another address than the user's: the address as an edit stores
   * it (NFC, trimmed) compared with the stored one, a change of ASCII letter case aside. Such an edit can hand the
   * account to whoever reads the new address, so an admin's edit of it (or an import's update) needs a recent sign-in. Stricter than the
   * sign-in lookup (NFKC, case-folded), which takes a look-alike (full-width letters) for the same address although
   * mail would go elsewhere.
   */
  changesEmailAddress(user: BackOfficeUser, email: string): boolean {
    return differsBeyondAsciiCase(email.normalize('NFC').trim(), user.email);
  }

  /**
   * With `usernameIsEmail` the username follows the email; for a directory-managed user (LDAP, `directoryManagedAt`)
   * it is the key a password checker keyed by username (LDAP `uid={username}`, a mail filter) signs them in with, so a
   * move to another address (beyond ASCII letter case) would let that address's directory account sign in to them with
   * its own password (OWASP ASVS 5.0 7.5.1, 4.0 V2.5): 409 `directory_managed`, nothing written or mailed. The
   * directory is the source of the address (change it there); the manager's write checks the mark again under the
   * row's lock ({@link BackOfficeDirectoryManagedRenameError}), as a confirmation of a link asked before the mark does.
   */
  private refuseDirectoryManagedRename(user: BackOfficeUser, email: string): void {
    if (this.userManager.options.usernameIsEmail && this.userManager.renamesDirectoryManaged(user, email)) {
      throw BackOfficeLifecycleErrors.directoryManagedRename();
    }
  }

  /**
   * Starts an email change: a link to the new address (24 hours, single use, stored as SHA-256) and a notice to
   * the old one. Only the input is checked before this returns; the lookup, the link and both emails happen
   * afterwards in the background (as forgot-password does), so a taken address (which gets nothing) and a free
   * one answer alike, in the same time, whatever the mail relay does (OWASP ASVS 5.0 6.3.8: no account told by
   * status or timing); a delivery failure is logged. `BackOfficeBackgroundTasks.drain()` waits for it. With
   * `sessionId` (the session that asked), the link is stored only while that session is still live: one ended
   * meanwhile (a stolen cookie the owner signed out) gets no link (see {@link startEmailChange}).
   */
  async requestEmailChange(user: BackOfficeUser, newEmail: string, sessionId?: string): Promise<void> {
    const candidate = await this.validated({ name: user.name, email: newEmail });
    if (this.userManager.normalizeKey(candidate.email) === user.normalizedEmail) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'This is already your email address.');
    }
    this.refuseDirectoryManagedRename(user, candidate.email);
    this.emailChangeStore(); // 501 not_supported at once, like the input checks
    this.background.run('email-change', () => this.startEmailChange(user, candidate.email, sessionId));
  }

  /**
   * The background half of {@link requestEmailChange}: the notice to the old address either way (the requester
   * reads that mailbox, so a notice only for free addresses would tell a taken one: OWASP ASVS 5.0 6.3.8), and
   * for a free address the link to it; a taken address gets nothing. The new link takes over from a pending one only
   * once its email was accepted (`deliverNewEmailChangeToken`): a refused or timed-out confirmation leaves the pending
   * link working (OWASP ASVS 4.0 2.5.x), as resend-invite and forgot-password do. The link is dropped, unmailed, when
   * the session that asked (`sessionId`) was ended before it was stored: ending sessions voids the pending links
   * (`voidEmailChangeLinks`) but not one stored after it, and revoking a session keeps the security stamp, so the
   * stamp check did not see it; left live, a stolen cookie's request answered 202 before the owner ended that session
   * still moved the account to the thief's mailbox (OWASP ASVS 4.0 3.3.x, 1.11.3).
   */
  private async startEmailChange(user: BackOfficeUser, newEmail: string, sessionId?: string): Promise<void> {
    if (await this.userManager.findByEmail(newEmail)) {
      await this.emails.dispatch('EmailChangeNotice', this.templates.emailChangeNotice(user, newEmail), user);
      return;
    }
    let stored = false;
    const stillAsked = sessionId === undefined ? undefined : () => this.sessions.isLiveSessionOf(sessionId, user);
    // The notice goes out even when the link could not be sent (a refusing or typo'd new address, a relay time-out):
    // the owner of the old address must hear of every change attempt (OWASP ASVS 4.0 2.2.3). Then the failure is logged.
    const confirm = await this.userManager
      .deliverNewEmailChangeToken(user, newEmail, EMAIL_CHANGE_LIFESPAN_HOURS, async (token) => {
        stored = true;
        await this.userManager.notify(UserEmailChangeRequestedNotification, user);
        await this.emails.dispatch('EmailChangeConfirm', this.templates.emailChangeConfirm(user, newEmail, token, EMAIL_CHANGE_LIFESPAN_HOURS), user, [token]);
      }, { stillAsked })
      .then(() => null, (error: unknown) => ({ error }));
    if (confirm && !stored) throw confirm.error; // the link could not be stored: no attempt to tell of
    await this.emails.dispatch('EmailChangeNotice', this.templates.emailChangeNotice(user, newEmail), user);
    if (confirm) throw confirm.error;
  }

  /**
   * Confirms an email change with the emailed link: the token is used up atomically, the email (and username
   * when `usernameIsEmail`) changes, the security stamp is renewed, outstanding password-reset and invite links
   * (mailed to the old address) are void, and every session ends.
   */
  async confirmEmailChange(userId: string, token: string): Promise<BackOfficeUser> {
    const user = isUuid(userId) && typeof token === 'string' && token.length <= 512 ? await this.userManager.findById(userId) : null;
    if (!user || !user.isApproved) throw BackOfficeHttpError.invalidToken();
    this.emailChangeStore();
    const oldEmail = user.email;
    // The link used up and the email written in one transaction, on the stamp read above: a password change committed
    // meanwhile wins (OWASP ASVS 4.0 3.3.3).
    const changes = await this.duplicateAs409(() => this.userManager.confirmEmailChange(user, sha256Hex(token), (email) => this.emailFields(email)));
    if (!changes) throw BackOfficeHttpError.invalidToken();
    await this.signInManager.refreshSignIn(user);
    await this.userManager.notify(UserEmailChangedNotification, user, { from: oldEmail, to: user.email });
    return user;
  }

  /**
   * An admin forces a password reset: the password stops working (no hash, new stamp), every session ends and
   * a reset link goes to the user, unless the user is disabled (read again under its row lock as the link is
   * written, so also a disable that raced this request): then no link and no email (a disabled user gets none). Delivery failures surface as 502 `email_failed` (the reset still happened).
   * With `allowPasswordReset: false` it is refused first (404 `not_found`, as the reset routes answer): the link
   * could not be used and the user would be left without a password. So with `denyLocalLogin` (403
   * `local_login_disabled`, as the reset routes answer then). A directory-managed user (LDAP, `directoryManagedAt`):
   * 409 `directory_managed` and nothing changes, until the host clears the mark
   * (`BackOfficeUserManager.clearDirectoryManaged`); the mark is read under the row lock of the removal and of the
   * link, so a mark committed while this ran counts (after the removal: no link, no email, 409 as well).
   */
  async forcePasswordReset(user: BackOfficeUser, options: BackOfficeAuthorizedWriteOptions = {}): Promise<void> {
    if (!this.userManager.options.allowPasswordReset) throw BackOfficeHttpError.notFound('Password reset is not enabled.');
    if (this.userManager.options.denyLocalLogin) throw BackOfficeHttpError.localLoginDisabled();
    // The link would give a local password to a user whose password the directory owns: refused, nothing changes
    // (OWASP ASVS 4.0 V2.5). The host clears the mark first when the user's password is to be local again. The mark
    // is read again under the row lock of the removal: one committed since `user` was read (the directory's first
    // sign-in) counts, and a kept local password (`keepLocalPasswords`) stays.
    const removed = await this.userManager.removePassword(user, { unlessDirectoryManaged: true, authorize: options.authorize });
    if (!removed.succeeded) {
      if (removed.errors[0]?.code === 'password_managed_by_directory') await this.refuseDirectoryManaged(user);
      if (removed.errors[0]?.code === 'not_found') throw BackOfficeHttpError.notFound('User not found.');
      throw new BackOfficeHttpError(501, 'not_supported', 'The user store has no passwords.');
    }
    // The passkeys go with the password: blocked only while the reset is pending (403 password_reset_required), one
    // added by whoever prompted the reset signed in again once the owner set the new password with the emailed link.
    // All in one store write (none removed when it fails: 500, no link); removePassword renewed the stamp already.
    await this.userManager.removeAllPasskeys(user, { stampRenewed: true });
    await this.signInManager.refreshSignIn(user);
    await this.userManager.notify(UserPasswordResetForcedNotification, user);
    const token = await this.userManager.generatePasswordResetToken(user);
    // Null: the user was disabled after it was read (a disable that committed meanwhile), or moved to another email
    // address (the link would have gone to the old one: the owner at the new one asks through forgot-password). The password is gone and the
    // sessions ended, as asked; a disabled user gets no link (it would work again once enabled): no email. Enabled
    // again, the user asks for one through forgot-password.
    // So when the directory marked the user after the removal (the link would be refused by reset): no email, and
    // the answer says the directory manages the password now.
    if (token === null) {
      const current = await this.userManager.findById(user.id);
      if (current) Object.assign(user, { isApproved: current.isApproved, disabledUntil: current.disabledUntil, directoryManagedAt: current.directoryManagedAt });
      if (this.userManager.isDirectoryManaged(user)) await this.refuseDirectoryManaged(user);
      return;
    }
    try {
      await this.emails.dispatch('PasswordReset', this.templates.passwordReset(user, token), user, [token]);
    } catch {
      throw new BackOfficeHttpError(502, 'email_failed', 'The password was reset and sessions ended, but the email could not be sent; try again.');
    }
  }

  /** Audits a forced reset refused for a directory-managed user and answers 409 `directory_managed`. */
  private async refuseDirectoryManaged(user: BackOfficeUser): Promise<never> {
    await this.userManager.notify(UserPasswordResetRefusedNotification, user, { via: 'force_password_reset' });
    throw BackOfficeHttpError.of('directory_managed', "The organisation's directory manages this user's password: reset it there.");
  }

  /**
   * Deletes a user: never oneself, never the last enabled admin (checked under the admin lock); sessions,
   * tokens and memberships go with the row, the audit trail keeps the id. `options.authorize` is asked about the user
   * as stored when the row is deleted ({@link BackOfficeUserManager.deleteUser}).
   */
  async delete(user: BackOfficeUser, actor: BackOfficeUser, options: BackOfficeAuthorizedWriteOptions = {}): Promise<void> {
    if (user.id === actor.id) throw new BackOfficeHttpError(409, 'cannot_delete_self', 'You cannot delete yourself.');
    const result = await this.userManager.deleteUser(user, options);
    // Deleted by a concurrent request after it was looked up: not this request's deletion (no audit entry), 404 as
    // the other routes on a user answer then.
    if (!result.succeeded && result.errors[0].code === 'not_found') throw BackOfficeHttpError.notFound('No such user.');
    if (!result.succeeded) throw new BackOfficeHttpError(409, 'last_admin', result.errors[0].description);
    await this.userManager.notify(UserDeletedNotification, user, { username: user.username });
  }

  /** The user store's email-change capability; without it, email changes answer 501 `not_supported`. */
  private emailChangeStore(): UserEmailChangeStore {
    const store = this.userManager.store;
    if (!isUserEmailChangeStore(store)) throw new BackOfficeHttpError(501, 'not_supported', 'The user store does not support email changes (UserEmailChangeStore).');
    return store;
  }

  private async validated(input: { name: string; email: string }): Promise<{ name: string; email: string }> {
    const { candidate, errors } = await this.userManager.prepareUserCandidate({ ...input, username: input.email });
    const relevant = errors.filter((e) => !/user_?name/i.test(e.code) || this.userManager.options.usernameIsEmail);
    if (relevant.length > 0) throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', { errors: relevant });
    return { name: candidate.name, email: candidate.email };
  }

  private emailFields(email: string) {
    const normalized = this.userManager.normalizeKey(email);
    return this.userManager.options.usernameIsEmail
      ? { email, normalizedEmail: normalized, username: email, normalizedUsername: normalized }
      : { email, normalizedEmail: normalized };
  }

  /** A name-only edit; with `options.authorize`, checked again on the user as stored under the admin lock ({@link BackOfficeUserManager.changeName}). */
  private async rename(user: BackOfficeUser, name: string, options: BackOfficeAuthorizedWriteOptions): Promise<void> {
    const renamed = await this.userManager.changeName(user, name, options);
    if (!renamed.succeeded) throw BackOfficeHttpError.notFound('No such user.');
  }

  /** A write that moves the email: with a new security stamp and the old address's reset and invite links void, in one transaction. */
  private async writeEmail(user: BackOfficeUser, changes: BackOfficeUserProfileChanges, options: BackOfficeAuthorizedWriteOptions = {}): Promise<void> {
    await this.duplicateAs409(() => this.userManager.changeEmail(user, changes, options));
  }

  private async duplicateAs409<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (error instanceof BackOfficeDuplicateUserError) throw new BackOfficeHttpError(409, 'duplicate_email', 'A user with this email already exists.');
      if (error instanceof BackOfficeDirectoryManagedRenameError) throw BackOfficeLifecycleErrors.directoryManagedRename();
      throw error;
    }
  }
}
