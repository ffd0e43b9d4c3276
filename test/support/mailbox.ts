import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { BackOfficeEvents, SendEmailNotification } from '../../src/backoffice-identity/index.js';

/** One email the module wanted to send. */
export interface CapturedEmail {
  to: string;
  text: string;
  type: string;
}

/**
 * A `SendEmailNotification` listener that takes every module email over (`handleEmail()`: nothing is delivered)
 * and keeps it for the test to read the links. Add it to the test app's `providers`.
 */
@Injectable()
export class Mailbox {
  static messages: CapturedEmail[] = [];

  /** The newest email to `to` (of `type`, when given). */
  static last(to: string, type?: string): CapturedEmail | undefined {
    return Mailbox.messages.filter((m) => m.to === to && (type === undefined || m.type === type)).at(-1);
  }

  @OnEvent(BackOfficeEvents.SendEmail)
  handle(notification: SendEmailNotification): void {
    notification.handleEmail();
    Mailbox.messages.push({ to: notification.message.to, text: notification.message.text, type: notification.emailType });
  }
}
