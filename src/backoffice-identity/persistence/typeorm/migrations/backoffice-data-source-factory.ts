import { DataSource, type DataSourceOptions, type Migration, MigrationExecutor } from 'typeorm';
import { BACKOFFICE_MIGRATION_LOCK_KEY } from '../../../constants.js';

/**
 * Runs the DataSource's pending migrations while holding a PostgreSQL session advisory lock: a second app instance
 * (or the import CLI) starting at the same time waits for the first, then finds nothing pending, instead of
 * creating the same tables at once and failing with a duplicate-key error. The lock and the migrations share one
 * connection (PGlite has only one).
 */
export async function runMigrationsUnderLock(dataSource: DataSource): Promise<Migration[]> {
  const queryRunner = dataSource.createQueryRunner();
  await queryRunner.connect();
  try {
    await queryRunner.query(`SELECT pg_advisory_lock($1)`, [BACKOFFICE_MIGRATION_LOCK_KEY]);
    try {
      const executor = new MigrationExecutor(dataSource, queryRunner);
      executor.transaction = dataSource.options.migrationsTransactionMode ?? 'all';
      return await executor.executePendingMigrations();
    } finally {
      await queryRunner.query(`SELECT pg_advisory_unlock($1)`, [BACKOFFICE_MIGRATION_LOCK_KEY]);
    }
  } finally {
    await queryRunner.release();
  }
}

/**
 * `dataSourceFactory` for `TypeOrmModule.forRoot(Async)`: builds and initializes the DataSource and, with
 * `migrationsRun: true`, runs the pending migrations under an advisory lock ({@link runMigrationsUnderLock}), so
 * several instances of the app can start together on one database. `synchronize`, if set, runs after them.
 */
export async function backOfficeIdentityDataSourceFactory(options?: DataSourceOptions): Promise<DataSource> {
  if (!options) throw new Error('backOfficeIdentityDataSourceFactory: no DataSource options were given');
  const dataSource = new DataSource({ ...options, migrationsRun: false, synchronize: false } as DataSourceOptions);
  await dataSource.initialize();
  try {
    if (options.migrationsRun) await runMigrationsUnderLock(dataSource);
    if (options.synchronize) await dataSource.synchronize();
  } catch (error) {
    await dataSource.destroy().catch(() => undefined);
    throw error;
  }
  return dataSource;
}
