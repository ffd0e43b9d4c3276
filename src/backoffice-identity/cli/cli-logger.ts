import type { LoggerService } from '@nestjs/common';

/**
 * The command-line tools' Nest logger: warnings and errors as one line each on stderr, without stack traces or
 * error details. Nest's own report of a start-up failure (`ExceptionHandler`) is left out: that error reaches the
 * command, which prints it once as its own message.
 */
export class CliLogger implements LoggerService {
  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}

  log(): void {}

  warn(message: unknown, ...rest: unknown[]): void {
    this.line('warning', message, rest);
  }

  error(message: unknown, ...rest: unknown[]): void {
    if (rest.at(-1) === 'ExceptionHandler') return;
    this.line('error', message, rest);
  }

  private line(level: string, message: unknown, rest: unknown[]): void {
    const context = rest.length > 0 && typeof rest.at(-1) === 'string' ? `[${String(rest.at(-1))}] ` : '';
    const text = message instanceof Error ? message.message : String(message);
    this.out.write(`backoffice-identity: ${level}: ${context}${text.split('\n')[0]}\n`);
  }
}
