import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import type { BackOfficeNotification } from './notifications.js';

/**
 * Emits notifications through EventEmitter2 and awaits every listener, like `emitAsync`, but with each
 * listener isolated: one that throws (sync or async) is logged and neither breaks the operation that
 * notified nor cuts short the listeners that run beside it (`emitAsync` rejects on the first failure).
 */
@Injectable()
export class NotificationPublisher {
  private readonly logger = new Logger('BackOfficeNotifications');

  constructor(private readonly emitter: EventEmitter2) {}

  async publish<T extends BackOfficeNotification>(notification: T): Promise<T> {
    const name = notification.eventName;
    const runs = [
      ...this.emitter.listeners(name).map((listener) => this.invoke(listener, [notification])),
      ...this.emitter.listenersAny().map((listener) => this.invoke(listener, [name, notification])),
    ];
    const results = await Promise.allSettled(runs);
    for (const result of results) {
      if (result.status === 'rejected') this.logFailure(notification, result.reason);
    }
    return notification;
  }

  private async invoke(listener: (...args: any[]) => unknown, args: unknown[]): Promise<unknown> {
    return listener.apply(this.emitter, args);
  }

  private logFailure(notification: BackOfficeNotification, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.logger.error(`A listener of ${notification.eventName} failed: ${message}`);
  }
}
