import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { EventEmitter2 } from '@nestjs/event-emitter';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BACKOFFICE_AUDIT_STORE, BACKOFFICE_IDENTITY_OPTIONS, BackOfficeEvents } from '../constants.js';
import { BACKOFFICE_EVENT_EMITTER } from '../notifications/backoffice-event-emitter.provider.js';
import { NotificationPublisher } from '../notifications/notification-publisher.service.js';
import { BackOfficeNotification } from '../notifications/notifications.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeAuditStore } from './backoffice-audit-store.interface.js';

/**
 * The built-in audit listener: appends every back-office notification to the audit store (by default
 * `backoffice_audit_entry`): event, performing and affected user, IP, time and the notification's
 * `auditDetails()`, which never holds secrets. Off with `audit: false`. A failed write is logged; it never breaks the operation.
 * The publisher awaits it without the listeners' time limit ({@link NotificationPublisher.awaitInFull}): the entry is
 * written before the request answers.
 */
@Injectable()
export class BackOfficeAuditListener implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('BackOfficeAudit');
  private readonly listener = (_event: string | string[], payload: unknown) => this.write(payload);

  constructor(
    @Inject(BACKOFFICE_EVENT_EMITTER) private readonly emitter: EventEmitter2,
    @Inject(BACKOFFICE_AUDIT_STORE) private readonly store: BackOfficeAuditStore,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(NotificationPublisher) private readonly publisher: NotificationPublisher,
  ) {}

  onModuleInit(): void {
    if (!this.options.audit.enabled) return;
    this.publisher.awaitInFull(this.listener);
    this.emitter.onAny(this.listener);
  }

  onModuleDestroy(): void {
    this.emitter.offAny(this.listener);
    this.publisher.stopAwaitingInFull(this.listener);
  }

  async write(payload: unknown): Promise<void> {
    if (!(payload instanceof BackOfficeNotification)) return;
    try {
      const entry = {
        event: payload.eventName,
        performingUserId: payload.performingUserId,
        affectedUserId: payload.affectedUserId,
        ipAddress: payload.ipAddress?.slice(0, 64) ?? null,
        createdAt: payload.dateTimeUtc,
        details: payload.auditDetails() ?? {},
      };
      // POST /auth/login with the built-in stores: the entry is written in the same statement as the session,
      // before the response (the session service writes it; a sign-in that issues no session writes it at once).
      const deferred = payload.eventName === BackOfficeEvents.LoginSuccess ? BackOfficeRequestContextStore.current().signInWrites : undefined;
      if (deferred?.audit) {
        deferred.auditEntries.push(entry);
        return;
      }
      await this.store.append(entry);
    } catch (error) {
      this.logger.error(`Could not write the audit entry of ${payload.eventName}: ${(error as Error).message}`);
    }
  }
}
