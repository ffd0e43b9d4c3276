import { Inject, Injectable } from '@nestjs/common';
import { BACKOFFICE_EMAIL_SENDER, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { SendEmailNotification, type BackOfficeEmailMessage, type BackOfficeEmailType } from '../notifications/notifications.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import type { BackOfficeEmailSender } from './email-sender.js';

/** How an email went out. */
export type EmailDispatchResult = { handledByListener: true } | { handledByListener: false; messageId: string };

/**
 * Sends module emails the Umbraco way: first a `SendEmailNotification`; if a listener called
 * `handleEmail()` it took over (e.g. invites through an external identity provider), otherwise the
 * `BACKOFFICE_EMAIL_SENDER` delivers it. A throwing listener never loses the email.
 */
@Injectable()
export class BackOfficeEmailDispatcher {
  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_EMAIL_SENDER) private readonly sender: BackOfficeEmailSender,
  ) {}

  /** @throws BackOfficeEmailDeliveryError (or the sender's error) when delivery fails. */
  async dispatch(emailType: BackOfficeEmailType, message: BackOfficeEmailMessage, user: BackOfficeUser): Promise<EmailDispatchResult> {
    const notification = await this.userManager.notify(SendEmailNotification, user, { emailType, message });
    if (notification.isHandled) return { handledByListener: true };
    const messageId = await this.sender.send(message, emailType);
    return { handledByListener: false, messageId };
  }
}
