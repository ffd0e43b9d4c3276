import { Inject, Injectable, Logger } from '@nestjs/common';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createTransport, type Transporter } from 'nodemailer';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { BackOfficeEmailMessage, BackOfficeEmailType } from '../notifications/notifications.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

export type { BackOfficeEmailSender } from './email-sender.interface.js';
import type { BackOfficeEmailSender } from './email-sender.interface.js';

/**
 * Default sender (nodemailer): SMTP when `email.smtpUrl` is set, else one `.eml` file per message in
 * `email.pickupDirectory`. Logs only the message id, type, recipient domain and the relay's status code: never bodies,
 * nor the relay's text (they may hold tokens).
 */
@Injectable()
export class NodemailerEmailSender implements BackOfficeEmailSender {
  private readonly logger = new Logger('BackOfficeEmailSender');
  private readonly transport: Transporter;
  private readonly pickupDirectory?: string;

  constructor(@Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions) {
    if (options.email.smtpUrl) {
      // nodemailer's own limits (2 min to connect, 10 min of socket silence) would outlast any request.
      const limit = options.email.sendTimeoutMs;
      this.transport = createTransport({ url: options.email.smtpUrl, connectionTimeout: limit, greetingTimeout: limit, socketTimeout: limit, dnsTimeout: limit });
    } else {
      this.pickupDirectory = options.email.pickupDirectory;
      this.transport = createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
    }
  }

  async send(message: BackOfficeEmailMessage, emailType: BackOfficeEmailType): Promise<string> {
    const messageId = `<${randomUUID()}@backoffice-identity>`;
    const domain = message.to.split('@').pop();
    try {
      const info = await this.transport.sendMail({ ...message, from: this.options.email.from, messageId });
      if (this.pickupDirectory) {
        await mkdir(this.pickupDirectory, { recursive: true });
        const file = join(this.pickupDirectory, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID()}.eml`);
        await writeFile(file, (info as unknown as { message: Buffer }).message, { mode: 0o600 });
      }
      this.logger.log(`Sent ${emailType} email ${messageId} to a recipient at ${domain}`);
      return messageId;
    } catch (error) {
      // The relay's answer may quote the message and its token (a content filter's 550): it is not logged here, but
      // carried in the error, which the dispatcher logs once the message's secrets are out of it.
      const reason = error instanceof Error ? error.message : String(error);
      const code = (error as { responseCode?: unknown; code?: unknown } | null)?.responseCode ?? (error as { code?: unknown } | null)?.code;
      this.logger.error(`Could not send ${emailType} email ${messageId} to a recipient at ${domain}${typeof code === 'number' || typeof code === 'string' ? ` (${code})` : ''}`);
      throw new BackOfficeEmailDeliveryError(messageId, reason);
    }
  }
}

/** The sender or the `SendEmailNotification` listeners did not finish within the configured time limit. */
export class BackOfficeEmailTimeoutError extends Error {
  constructor(readonly emailType: string, readonly timeoutMs: number, readonly messageId?: string) {
    super(`Sending the ${emailType} email timed out after ${timeoutMs} ms (email.sendTimeoutMs)`);
    this.name = 'BackOfficeEmailTimeoutError';
  }
}

/**
 * A `SendEmailNotification` listener took the email over (`handleEmail()`) and then failed: nobody sent it. The module
 * counts it as a failed delivery (502 `email_failed` where a request sends it).
 */
export class BackOfficeEmailTakeOverError extends Error {
  constructor(readonly emailType: string) {
    super(`A listener took the ${emailType} email over (handleEmail()) and then failed: the email was not sent`);
    this.name = 'BackOfficeEmailTakeOverError';
  }
}

/** Delivery failed; carries the message id that was logged. */
export class BackOfficeEmailDeliveryError extends Error {
  constructor(readonly messageId: string, reason: string) {
    super(`Email ${messageId} could not be sent: ${reason}`);
    this.name = 'BackOfficeEmailDeliveryError';
  }
}
