import { Inject, Injectable, Logger } from '@nestjs/common';
import type { EventEmitter2 } from '@nestjs/event-emitter';
import type { BackOfficeNotification } from './notifications.js';
import { withinTimeLimit } from '../common/time-limit.js';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import { BACKOFFICE_EVENT_EMITTER } from './backoffice-event-emitter.provider.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { DEFAULT_NOTIFICATION_LISTENER_TIMEOUT_MS } from '../options/resolve-options.js';
import { inListenerRun } from './listener-run.js';

/** What the publisher needs of the module's options. */
export type NotificationPublisherOptions = Pick<ResolvedBackOfficeIdentityOptions, 'notifications'>;

/** The publisher's options when it is made without the module's: `notifications.listenerTimeoutMs` as the module's default. */
const DEFAULT_OPTIONS: NotificationPublisherOptions = { notifications: { listenerTimeoutMs: DEFAULT_NOTIFICATION_LISTENER_TIMEOUT_MS } };

/** A listener as EventEmitter2's `onAny` calls it: the event name, then the notification. */
export type BackOfficeAnyListener = (event: string | string[], ...values: unknown[]) => unknown;

/**
 * The `onAny` listeners given to {@link NotificationPublisher.awaitInFull}, for every publisher in the process: the
 * emitter is the host's and may be shared by several publishers (the module imported twice, in two apps of one
 * process or two test modules), and each publisher runs every `onAny` listener on it, the other module's audit
 * listener included. A per-publisher set would time-limit that one.
 */
const awaitedInFull = new WeakSet<BackOfficeAnyListener>();

/**
 * Emits notifications through EventEmitter2 and awaits every listener, like `emitAsync`, but with each
 * listener isolated: one that throws (sync or async) is logged and neither breaks the operation that
 * notified nor cuts short the listeners that run beside it (`emitAsync` rejects on the first failure).
 * The event's own listeners run first; `onAny` listeners (the audit listener, a host's forwarder) run once they have
 * all settled, so they see what those decided, also after an await (`handleEmail()`, `signOutRedirectUrl`). Every
 * listener has a time limit: the notification's `listenerTimeoutMs` (`SendEmailNotification`:
 * `email.listenerTimeoutMs`), else `notifications.listenerTimeoutMs`. One still running then is logged and left
 * behind (a later failure of it is logged too), so a hanging host listener (a slow webhook, a SIEM forwarder on
 * `onAny`) never hangs the request; what it sets on the notification afterwards is not used (`listenersSettled()`: a
 * late `signOutRedirectUrl` is ignored and logged, a late `handleEmail()` throws). Only the `onAny` listeners given to
 * {@link awaitInFull} (the module's audit listener) are awaited without a limit: the audit trail is always written.
 * The notification is frozen before its listeners run: they read it, and decide only through what it offers
 * (`signOutRedirectUrl`, `handleEmail()`). A listener that called `handleEmail()` and then failed is told to the
 * notification (`listenerFailed`): its take-over failed.
 */
@Injectable()
export class NotificationPublisher {
  private readonly logger = new Logger('BackOfficeNotifications');

  constructor(
    @Inject(BACKOFFICE_EVENT_EMITTER) private readonly emitter: EventEmitter2,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: NotificationPublisherOptions = DEFAULT_OPTIONS,
  ) {}

  /**
   * Exempts an `onAny` listener (the same function given to `emitter.onAny`) from the time limit: it is awaited until
   * it settles. For the module's audit listener; a host's own `onAny` listener keeps the limit. The exemption is the
   * listener's, not this publisher's: every publisher on the same emitter awaits it in full.
   */
  awaitInFull(listener: BackOfficeAnyListener): void {
    awaitedInFull.add(listener);
  }

  /** Ends {@link awaitInFull} for `listener` (for every publisher). */
  stopAwaitingInFull(listener: BackOfficeAnyListener): void {
    awaitedInFull.delete(listener);
  }

  /** Runs the event's own listeners, then the `onAny` ones, each within its time limit; resolves `notification`. */
  async publish<T extends BackOfficeNotification>(notification: T): Promise<T> {
    // Frozen before any listener sees it (its lists and diffs are frozen copies, its dates new at each read; see
    // BackOfficeNotification): a listener's write (`affectedUserId`, `eventName`, `added.push()`, ...) throws in a
    // strict-mode listener (logged), is ignored in a sloppy-mode one, and never changes what the module writes next (the
    // audit entry, which a sign-in writes in the same statement as its session). What a notification takes from
    // listeners goes through its own methods and setters.
    Object.freeze(notification);
    const name = notification.eventName;
    const limit = notification.listenerTimeoutMs ?? this.options.notifications.listenerTimeoutMs;
    const runs = this.emitter.listeners(name).map((listener) => {
      const run = {};
      const settled = inListenerRun(run, () => this.invoke(listener, [notification]));
      // A failure within the limit is told to the notification with its run (a failed take-over voids handleEmail()).
      return this.limited(notification, settled, limit).catch((error: unknown) => {
        notification.listenerFailed(run);
        throw error;
      });
    });
    await this.settle(notification, runs);
    notification.listenersSettled();
    const anyRuns = this.emitter.listenersAny().map((listener) => {
      const run = this.invoke(listener, [name, notification]);
      return awaitedInFull.has(listener as BackOfficeAnyListener) ? run : this.limited(notification, run, limit);
    });
    await this.settle(notification, anyRuns);
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
