import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import { BackOfficeNotification } from '../notifications/notifications.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { preparedQuery } from '../persistence/typeorm/prepared-query.js';

/**
 * The built-in audit listener: writes every back-office notification to `backoffice_audit_entry`
 * (event, performing and affected user, IP, time and the notification's `auditDetails()`, which never holds
 * secrets). Off with `audit: false`. A failed write is logged; it never breaks the operation.
 */
@Injectable()
export class BackOfficeAuditListener implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('BackOfficeAudit');
  private readonly listener = (_event: string | string[], payload: unknown) => this.write(payload);

  constructor(
    @Inject(EventEmitter2) private readonly emitter: EventEmitter2,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  onModuleInit(): void {
    if (this.options.audit) this.emitter.onAny(this.listener);
  }

  onModuleDestroy(): void {
    this.emitter.offAny(this.listener);
  }

  async write(payload: unknown): Promise<void> {
    if (!(payload instanceof BackOfficeNotification)) return;
    try {
      // A prepared statement: this runs on every sign-in, and the entity insert's query building cost more.
      await preparedQuery(
        this.dataSource,
        'backoffice_insert_audit_entry',
        `INSERT INTO backoffice_audit_entry (event, performing_user_id, affected_user_id, ip_address, created_at, details)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb)`,
        [
          payload.eventName,
          payload.performingUserId,
          payload.affectedUserId,
          payload.ipAddress?.slice(0, 64) ?? null,
          payload.dateTimeUtc,
          JSON.stringify(payload.auditDetails() ?? {}),
        ],
      );
    } catch (error) {
      this.logger.error(`Could not write the audit entry of ${payload.eventName}: ${(error as Error).message}`);
    }
  }
}
