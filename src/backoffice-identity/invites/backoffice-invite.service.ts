import { Inject, Injectable } from '@nestjs/common';
import type { BackOfficeClock } from '../common/clock.js';
import { IdentityResult } from '../common/identity-result.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeEmailDispatcher, type EmailDispatchResult } from '../email/email-dispatcher.service.js';
import { BackOfficeEmailTemplates } from '../email/email-templates.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { UserInviteAcceptedNotification, UserInvitedNotification } from '../notifications/notifications.js';
import { deriveUserState, isPendingInvitee, type BackOfficeUser, type BackOfficeWriteAuthorizer } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';

/** A failure of the invite's announcement (its notification), told apart from a failed email. */
class NotAnnounced {
  constructor(readonly error: unknown) {}
}

/** What an admin sends to invite someone. */
export interface BackOfficeInviteInput {
  email: string;
  name: string;
  groups: string[];
  /** A personal note for the invite email. */
  message?: string;
}

/** Outcome of sending an invite: the user exists either way; `delivery` says how the email went. */
export interface BackOfficeInviteOutcome {
  user: BackOfficeUser;
  delivery: EmailDispatchResult | { failed: true; messageId?: string };
}

/**
 * Invites (Umbraco's user invite): an invited user without a password, a single-use invite token, a
 * `UserInvitedNotification`, then the `UserInvite` email through `SendEmailNotification`.
 */
@Injectable()
export class BackOfficeInviteService {
  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BackOfficeEmailDispatcher) private readonly emails: BackOfficeEmailDispatcher,
    @Inject(BackOfficeEmailTemplates) private readonly templates: BackOfficeEmailTemplates,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
  ) {}

  async invite(input: BackOfficeInviteInput, inviter: BackOfficeUser | null, authorize?: BackOfficeWriteAuthorizer): Promise<IdentityResult<BackOfficeInviteOutcome>> {
    // The user and the invite token are written in one transaction: never an invited user without a token. With
    // `authorize` it is asked about the invitee as stored by that insert, in its transaction (a throw refuses: nothing
    // kept, no email), so the caller's check of the groups cannot rest on a copy a concurrent group edit made stale.
    const created = await this.userManager.createInvitedUser({ email: input.email, name: input.name, groups: input.groups, ...(authorize ? { authorize } : {}) });
    if (!created.succeeded) return IdentityResult.failed(...created.errors);
    const { user, token } = created.value!;
    await this.userManager.notify(UserInvitedNotification, user);
    // A new user's token was stored with it: `send` has no link to refuse.
    return IdentityResult.success({ user, delivery: (await this.send(user, inviter, input.message, token)) ?? { failed: true } });
  }

  /**
   * Issues a new invite token and sends the email again. The old link stops working only once the new email was
   * accepted (by the mail relay or a listener that called `handleEmail()`): when delivery fails the answer says so
   * and the old link still works (OWASP ASVS 4.0 2.5.x: a failed resend must not leave the invitee without a link).
   * When the store refuses the new link (the invitee was disabled since `user` was read: a disable that raced the
   * resend), or the invitee's email address moved since (the link would go to the old one), or the invitee accepted
   * since (an invitation to an active account, audited as an invite), no link stays stored and
   * no email is attempted: 409 `not_invited`, as for a user no longer waiting for an invite (not 502 `email_failed`,
   * which would invite a pointless retry). `UserInvitedNotification` is published
   * only once the new link was stored (before its email), so a refused resend is not audited as an invite.
   */
  async resend(user: BackOfficeUser, inviter: BackOfficeUser | null): Promise<BackOfficeInviteOutcome> {
    const delivery = await this.send(user, inviter, undefined, undefined, () => this.userManager.notify(UserInvitedNotification, user));
    if (delivery === null) throw BackOfficeHttpError.of('not_invited', 'This user is not waiting for an invite.');
    if (!('failed' in delivery)) await this.userManager.store.updateProfile(user.id, { invitedAt: this.clock.now() }, this.clock.now());
    return { user, delivery };
  }

  /**
   * Waiting for an invite: never signed in, no password, an invite sent, not disabled. A lockout does not end it:
   * failed sign-ins on the address (anyone can make them) must not void the link or block its resend, and
   * accepting clears the lockout, as a password reset does (OWASP ASVS 4.0 2.2.1). Not a user marked
   * directory-managed (`directoryManagedAt`): the invite would give them a local password the directory does not
   * own, so accepting answers `invalid_token` (as for a used link) and a resend 409 `not_invited` (OWASP ASVS 4.0 V2.5).
   */
  isInvited(user: BackOfficeUser): boolean {
    return isPendingInvitee(user) && deriveUserState(user, this.clock.now()) !== 'disabled' && !this.userManager.isDirectoryManaged(user);
  }

  /**
   * Sends the invite with `issued` (a new user's token) or with a new token that replaces the live one once sent.
   * Null when the store refused the new token (the invitee was disabled since it was read): no link, no email.
   * `announce` runs once the new token was stored, before its email; its failure is no delivery failure (rethrown).
   */
  private async send(
    user: BackOfficeUser,
    inviter: BackOfficeUser | null,
    message?: string,
    issued?: string,
    announce?: () => Promise<unknown>,
  ): Promise<BackOfficeInviteOutcome['delivery'] | null> {
    const dispatch = async (token: string) => {
      if (announce) await announce().catch((error: unknown) => Promise.reject(new NotAnnounced(error)));
      return this.emails.dispatch('UserInvite', this.templates.invite(user, token, inviter, message), user, [token]);
    };
    try {
      return await (issued === undefined ? this.userManager.deliverNewInviteToken(user, dispatch) : dispatch(issued));
    } catch (error) {
      // The announcement failed (the new token was dropped, as for a failed email): not an email failure.
      if (error instanceof NotAnnounced) throw error.error;
      return { failed: true, messageId: (error as { messageId?: string }).messageId };
    }
  }

  /**
   * The username of an invite link's user while the invite works, for the accept-invite page's
   * `autocomplete="username"` field; null whenever {@link accept} would answer `invalid_token` (unknown user, not
   * invited, wrong, used or expired token). Nothing is revealed without a live token; the token stays live.
   */
  async usernameForLink(userId: string, token: string): Promise<string | null> {
    const user = await this.userManager.findById(userId);
    if (!user || !this.isInvited(user)) return null;
    return (await this.userManager.verifyUserToken(user, 'invite', token)) ? user.username : null;
  }

  /** Accepts an invite: first password, user activated, token used up. */
  async accept(user: BackOfficeUser, token: string, password: string): Promise<IdentityResult> {
    if (!this.isInvited(user)) return IdentityResult.failed(this.userManager.errorDescriber.invalidToken());
    const result = await this.userManager.acceptInvite(user, token, password);
    if (result.succeeded) await this.userManager.notify(UserInviteAcceptedNotification, user);
    return result;
  }
}
