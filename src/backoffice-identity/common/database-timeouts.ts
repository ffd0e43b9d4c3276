import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/** The parts of a `pg` Pool (and its clients) this service touches. */
interface PgPoolLike {
  options: { connectionTimeoutMillis?: number; statement_timeout?: number; options?: string };
  on(event: 'acquire', listener: (client: PgClientLike) => void): unknown;
}
interface PgClientLike {
  query(text: string): Promise<unknown>;
}

const isPgPool = (value: unknown): value is PgPoolLike =>
  typeof value === 'object' && value !== null && typeof (value as PgPoolLike).on === 'function' && typeof (value as PgPoolLike).options === 'object';

/**
 * Keeps requests from hanging on a slow or unreachable database (`database` options): on the DataSource's
 * `pg` pool it sets the wait for a connection (`connectionTimeoutMillis`) and a server-side
 * `statement_timeout` on every connection, unless the host configured either itself. Connections opened
 * before start-up get the timeout on their next checkout (a `SET` queued ahead of the caller's query).
 */
@Injectable()
export class BackOfficeDatabaseTimeouts implements OnModuleInit {
  private readonly logger = new Logger('BackOfficeIdentity');

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    private readonly moduleRef: ModuleRef,
  ) {}

  onModuleInit(): void {
    let dataSource: DataSource | undefined;
    try {
      dataSource = this.moduleRef.get(DataSource, { strict: false });
    } catch {
      return; // a custom store without TypeORM
    }
    const pool = (dataSource?.driver as { master?: unknown } | undefined)?.master;
    if (!isPgPool(pool)) return;
    const { statementTimeoutMs, connectionTimeoutMs } = this.options.database;
    if (connectionTimeoutMs > 0 && !pool.options.connectionTimeoutMillis) pool.options.connectionTimeoutMillis = connectionTimeoutMs;
    const hostSetsTimeout = pool.options.statement_timeout !== undefined || /statement_timeout/.test(pool.options.options ?? '');
    if (statementTimeoutMs > 0 && !hostSetsTimeout) this.applyStatementTimeout(pool, statementTimeoutMs);
  }

  private applyStatementTimeout(pool: PgPoolLike, ms: number): void {
    const configured = new WeakSet<PgClientLike>();
    pool.on('acquire', (client) => {
      if (configured.has(client)) return;
      configured.add(client);
      // Queued before the caller's first query on this connection; a failure only means no timeout there.
      client.query(`SET statement_timeout = ${Math.floor(ms)}`).catch((error: Error) => {
        this.logger.warn(`Could not set statement_timeout on a database connection: ${error.message}`);
      });
    });
  }
}
