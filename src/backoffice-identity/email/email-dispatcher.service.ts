import { Inject, Injectable, Logger } from '@nestjs/common';
import { BACKOFFICE_EMAIL_SENDER, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { SendEmailNotification, type BackOfficeEmailMessage, type BackOfficeEmailType } from '../notifications/notifications.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { redactError } from '../common/redaction.js';
import { withinTimeLimit } from '../common/time-limit.js';
import { BackOfficeEmailTakeOverError, BackOfficeEmailTimeoutError, type BackOfficeEmailSender } from './email-sender.js';

/** How an email went out. */
export type EmailDispatchResult = { handledByListener: true } | { handledByListener: false; messageId: string };

/**
 * Sends module emails the Umbraco way: first a `SendEmailNotification`; if a listener called
 * `handleEmail()` it took over (e.g. invites through an external identity provider), otherwise the
 * `BACKOFFICE_EMAIL_SENDER` delivers it. A listener that took it over and then failed did not deliver it: that is a
 * failed delivery ({@link BackOfficeEmailTakeOverError}), as when the sender fails. A throwing listener never loses the email, and neither does one that is
 * still running after `email.listenerTimeoutMs` (its later `handleEmail()` is refused). The sender gets
 * `email.sendTimeoutMs`: a request that sends mail never hangs on the mail relay.
 */
@Injectable()
export class BackOfficeEmailDispatcher {
  private readonly logger = new Logger('BackOfficeEmailSender');

  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_EMAIL_SENDER) private readonly sender: BackOfficeEmailSender,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  /**
   * `secrets`: the values in the message that no log may show (the token it carries), wherever they appear in its
   * text; the `token` values of its links are found without being named.
   * @throws BackOfficeEmailDeliveryError, BackOfficeEmailTimeoutError (or the sender's error) when delivery fails;
   * BackOfficeEmailTakeOverError when the listener that called `handleEmail()` then failed.
   */
  async dispatch(emailType: BackOfficeEmailType, message: BackOfficeEmailMessage, user: BackOfficeUser, secrets: readonly string[] = []): Promise<EmailDispatchResult> {
    const { listenerTimeoutMs, sendTimeoutMs } = this.options.email;
    const notification = await this.userManager.notify(SendEmailNotification, user, { emailType, message, listenerTimeoutMs, secrets });
    if (notification.isHandled && notification.takeOverFailed) {
      // Taken over, then not delivered (the listener's own send failed; its error was logged without the secrets):
      // a failed delivery, never "sent", so a resend keeps the previous link and the admin is told.
      const error = new BackOfficeEmailTakeOverError(emailType);
      this.logger.error(error.message);
      throw error;
    }
    if (notification.isHandled) return { handledByListener: true };
    // A sender's error that quotes the message (a relay that refuses it with its text) is logged here and up the
    // stack: it goes on without the secrets, in its message, its stack and its other properties.
    const sending = this.sender.send(message, emailType).catch((error: unknown) => {
      redactError(error, notification.secretForms());
      const reason = error instanceof Error ? error.message : notification.redact(String(error));
      this.logger.error(`Could not send the ${emailType} email: ${reason}`);
      throw error;
    });
    const messageId = await this.withinTimeLimit(sending, emailType, sendTimeoutMs);
    return { handledByListener: false, messageId };
  }

  /** The sender's answer, or a {@link BackOfficeEmailTimeoutError} (logged: type and limit, never the message) after `ms`. */
  private withinTimeLimit(sending: Promise<string>, emailType: BackOfficeEmailType, ms: number): Promise<string> {
    // A sender that fails after the limit was already reported: its rejection must not go unhandled.
    return withinTimeLimit(sending, ms, () => {
      const error = new BackOfficeEmailTimeoutError(emailType, ms);
      this.logger.error(error.message);
      throw error;
    });
  }
}
