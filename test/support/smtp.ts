import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** A real SMTP server in the test process that keeps every message it receives, parsed. */
export class TestSmtpServer {
  readonly messages: ParsedMail[] = [];
  private server!: SMTPServer;
  port = 0;
  /** When set, the server rejects messages (to test delivery failures). */
  rejectAll = false;
  /** When set, asked for each message (with its envelope recipients): true rejects it. */
  rejectIf: ((recipients: string[]) => boolean) | null = null;
  /** When set, the server takes each message and never answers (a relay that hangs after DATA). */
  hang = false;
  /** When set, the server refuses each message with 550 and quotes its text (as some content filters do). */
  rejectQuoting = false;
  /** The texts the server quoted in its refusals. */
  readonly quoted: string[] = [];
  /** Holds set by {@link holdNext}, taken by the next messages in turn. */
  private readonly holds: { reached: () => void; released: Promise<void> }[] = [];

  /**
   * Holds the answer to the next message's DATA (a slow relay): the message is taken, kept and accepted only once
   * `release()` is called. `reached` resolves when the message's data is in and its answer is held.
   */
  holdNext(): { reached: Promise<void>; release(): void } {
    let reached!: () => void;
    let release!: () => void;
    const hold = { reached: () => reached(), released: new Promise<void>((resolve) => (release = resolve)) };
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    this.holds.push(hold);
    return { reached: reachedPromise, release };
  }

  async start(): Promise<this> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', async () => {
          if (this.hang) return;
          const hold = this.holds.shift();
          if (hold) {
            hold.reached();
            await hold.released;
          }
          if (this.rejectAll || this.rejectIf?.(session.envelope.rcptTo.map((r) => r.address))) return callback(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }));
          if (this.rejectQuoting) {
            const text = ((await simpleParser(Buffer.concat(chunks))).text ?? '').replace(/\s+/g, ' ').trim();
            this.quoted.push(text);
            return callback(Object.assign(new Error(`content rejected: ${text}`), { responseCode: 550 }));
          }
          this.messages.push(await simpleParser(Buffer.concat(chunks)));
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as { port: number }).port;
    return this;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Waits for a message to `to` (up to `timeoutMs`). */
  async waitFor(to: string, timeoutMs = 10_000): Promise<ParsedMail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find((m) => JSON.stringify(m.to).toLowerCase().includes(to.toLowerCase()));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no email to ${to} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The messages received so far with `to` among their recipients (case-insensitive), oldest first. */
  messagesTo(to: string): ParsedMail[] {
    return this.messages.filter((m) => JSON.stringify(m.to).toLowerCase().includes(to.toLowerCase()));
  }

  countTo(to: string): number {
    return this.messages.filter((m) => JSON.stringify(m.to).toLowerCase().includes(to.toLowerCase())).length;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Reads `userId` and `token` from an email's link fragment. */
export function linkParams(text: string, page: 'accept-invite' | 'reset-password' | 'confirm-email'): { userId: string; token: string; url: string } {
  const match = new RegExp(`(https?://\\S+/${page}#\\S+)`).exec(text);
  if (!match) throw new Error(`no ${page} link in: ${text}`);
  const url = match[1];
  const params = new URLSearchParams(url.split('#')[1]);
  return { userId: params.get('userId')!, token: params.get('token')!, url };
}
