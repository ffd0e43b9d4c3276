import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { BackOfficeEvents, SendEmailNotification } from 'backoffice-identity';

/** A message handed to the organisation's mail provider. */
export interface SentInvite {
  to: string;
  subject: string;
  text: string;
  sentAt: string;
}

/**
 * Stands in for an external mail or identity provider (e.g. an HTTP API): it records what it was asked to
 * deliver, so the example can show it.
 */
@Injectable()
export class ExternalMailProvider {
  private readonly logger = new Logger(ExternalMailProvider.name);
  readonly sent: SentInvite[] = [];

  async deliverInvite(message: { to: string; subject: string; text: string }): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 5)); // the network call of a real provider
    this.sent.push({ to: message.to, subject: message.subject, text: message.text, sentAt: new Date().toISOString() });
    this.logger.log(`invite for ${message.to} handed to the external provider`);
  }
}

/** Takes over invite emails: the module's default sender (SMTP or `.eml` files) does not send them. */
@Injectable()
export class InviteEmailListener {
  constructor(private readonly provider: ExternalMailProvider) {}

  @OnEvent(BackOfficeEvents.SendEmail)
  async onSendEmail(notification: SendEmailNotification): Promise<void> {
    if (notification.emailType !== 'UserInvite') return; // password resets keep the default delivery
    await this.provider.deliverInvite(notification.message);
    notification.handleEmail();
  }
}
