import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import type { BackOfficeNotification } from './notifications.js';
import { withinTimeLimit } from '../common/time-limit.js';

/**
 * Emits notifications through EventEmitter2 and awaits every listener, like `emitAsync`, but with each
 * listener isolated: one that throws (sync or async) is logged and neither breaks the operation that
 * notified nor cuts short the listeners that run beside it (`emitAsync` rejects on the first failure).
 * The event's own listeners run first; `onAny` listeners (the audit listener) run once they have all settled,
 * so they see what those decided, also after an await (`handleEmail()`, `signOutRedirectUrl`). A notification with a
 * `listenerTimeoutMs` (`SendEmailNotification`: `email.listenerTimeoutMs`) waits that long for each of its own
 * listeners: one still running then is logged and left behind (a later failure of it is logged too), so a hanging
 * listener never hangs the request.
 */
@Injectable()
export class NotificationPublisher {
  private readonly logger = new Logger('BackOfficeNotifications');

  constructor(private readonly emitter: EventEmitter2) {}

  async publish<T extends BackOfficeNotification>(notification: T): Promise<T> {
    const name = notification.eventName;
    const limit = notification.listenerTimeoutMs;
    const runs = this.emitter.listeners(name).map((listener) => this.invoke(listener, [notification]));
    await this.settle(notification, limit === undefined ? runs : runs.map((run) => this.limited(notification, run, limit)));
    notification.listenersSettled();
    await this.settle(notification, this.emitter.listenersAny().map((listener) => this.invoke(listener, [name, notification])));
    return notification;
  }

  /** Waits for every run, logging the ones that failed. */
  private async settle(notification: BackOfficeNotification, runs: Promise<unknown>[]): Promise<void> {
    for (const result of await Promise.allSettled(runs)) {
      if (result.status === 'rejected') this.logFailure(notification, result.reason);
    }
  }

  /** `run`, or a resolved promise once `ms` passed (logged); a later failure of `run` is logged, never unhandled. */
  private limited(notification: BackOfficeNotification, run: Promise<unknown>, ms: number): Promise<unknown> {
    return withinTimeLimit(
      run,
      ms,
      () => this.logger.error(`A listener of ${notification.eventName} did not finish within ${ms} ms; the operation goes on without it`),
      (error) => this.logFailure(notification, error),
    );
  }

  private async invoke(listener: (...args: any[]) => unknown, args: unknown[]): Promise<unknown> {
    return listener.apply(this.emitter, args);
  }

  private logFailure(notification: BackOfficeNotification, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.logger.error(`A listener of ${notification.eventName} failed: ${notification.redact(message)}`);
  }
}
