import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../../options/backoffice-identity-options.interface.js';
import { InjectBackOfficeDataSource } from './backoffice-data-source.provider.js';

/** The parts of a `pg` Pool (and its clients) this service touches. */
interface PgPoolLike {
  options: { connectionTimeoutMillis?: number; statement_timeout?: number; options?: string; onConnect?: (client: PgClientLike) => unknown };
  connect(): Promise<PgClientLike & { release(error?: Error | boolean): void }>;
  on(event: 'acquire', listener: (client: PgClientLike) => void): unknown;
}
interface PgClientLike {
  query(text: string): Promise<unknown>;
}

const isPgPool = (value: unknown): value is PgPoolLike =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as PgPoolLike).connect === 'function' &&
  typeof (value as PgPoolLike).on === 'function' &&
  typeof (value as PgPoolLike).options === 'object';

/**
 * Keeps requests from hanging on a slow or unreachable database (`database` options): on the DataSource's
 * `pg` pool it sets the wait for a connection (`connectionTimeoutMillis`) and a server-side
 * `statement_timeout` on every connection, unless the host configured either itself. New connections run
 * the `SET` in pg-pool's `onConnect` hook (before anyone uses them). Connections opened before start-up
 * (migrations, start-up checks), idle or still checked out by another provider's start-up, get it when the
 * pool next hands them out: the `SET` is queued on the connection before the borrower's first query.
 */
@Injectable()
export class BackOfficeDatabaseTimeouts implements OnModuleInit {
  private readonly logger = new Logger('BackOfficeIdentity');

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @InjectBackOfficeDataSource() private readonly dataSource: DataSource,
  ) {}

  onModuleInit(): void {
    const pool = (this.dataSource.driver as { master?: unknown } | undefined)?.master;
    if (!isPgPool(pool)) return;
    const { statementTimeoutMs, connectionTimeoutMs } = this.options.database;
    if (connectionTimeoutMs > 0 && !pool.options.connectionTimeoutMillis) pool.options.connectionTimeoutMillis = connectionTimeoutMs;
    const hostSetsTimeout = pool.options.statement_timeout !== undefined || /statement_timeout/.test(pool.options.options ?? '');
    if (statementTimeoutMs > 0 && !hostSetsTimeout) this.applyStatementTimeout(pool, `SET statement_timeout = ${Math.floor(statementTimeoutMs)}`);
  }

  private applyStatementTimeout(pool: PgPoolLike, sql: string): void {
    const applied = new WeakSet<PgClientLike>();
    const hostHook = pool.options.onConnect;
    pool.options.onConnect = async (client) => {
      await client.query(sql);
      applied.add(client);
      await hostHook?.(client);
    };
    // 'acquire' fires before the borrower gets the client; pg runs a client's queries in order.
    pool.on('acquire', (client) => {
      if (applied.has(client)) return;
      applied.add(client);
      client.query(sql).catch((error: unknown) => {
        applied.delete(client);
        this.logger.warn(`Could not set statement_timeout on a database connection: ${(error as Error).message}`);
      });
    });
  }
}
