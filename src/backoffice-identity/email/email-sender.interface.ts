import type { BackOfficeEmailMessage, BackOfficeEmailType } from '../notifications/notifications.js';

/** Delivers an email that no `SendEmailNotification` listener handled. Swap it through `BACKOFFICE_EMAIL_SENDER`. */
export interface BackOfficeEmailSender {
  /** Sends the message; rejects when delivery failed. Resolves to a message id. */
  send(message: BackOfficeEmailMessage, emailType: BackOfficeEmailType): Promise<string>;
}
