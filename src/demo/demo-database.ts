import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { describeDatabase, type DemoDatabaseConfig } from './demo.config.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';

/** DI token of the {@link DemoDatabase}. */
export const DEMO_DATABASE = 'DEMO_DATABASE';

/** The database the demo talks to: a PostgreSQL URL, plus the embedded server when the demo started one. */
export interface DemoDatabase {
  url: string;
  /** TypeORM pool size: PGlite is a single backend session. */
  poolSize: number;
  /** For the start line; no password. */
  description: string;
  /** Stops the embedded PGlite, if any. Safe to call more than once. */
  close(): Promise<void>;
}

/** Starts the embedded PGlite (on disk or in memory) or just points at the given PostgreSQL. */
export async function openDemoDatabase(config: DemoDatabaseConfig): Promise<DemoDatabase> {
  const description = describeDatabase(config);
  if (config.kind === 'postgres') {
    return { url: config.url, poolSize: 10, description, close: async () => undefined };
  }
  const embedded = await startEmbeddedPostgres(config.kind === 'embedded' ? config.dataDir : undefined);
  let closing: Promise<void> | undefined;
  return { url: embedded.url, poolSize: 1, description, close: () => (closing ??= embedded.close()) };
}

/** On shutdown: closes the DataSource first, then the embedded PGlite under it. */
@Injectable()
export class DemoDatabaseShutdown implements OnApplicationShutdown {
  constructor(
    @Inject(DEMO_DATABASE) private readonly database: DemoDatabase,
    private readonly dataSource: DataSource,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    await this.database.close();
  }
}
