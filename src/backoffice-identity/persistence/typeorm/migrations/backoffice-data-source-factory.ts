import { DataSource, type DataSourceOptions, type Migration, MigrationExecutor } from 'typeorm';
import { BACKOFFICE_MIGRATION_LOCK_KEY } from '../../../constants.js';

/** How long {@link runMigrationsUnderLock} waits for the migration lock by default: 10 minutes. */
export const DEFAULT_MIGRATION_LOCK_WAIT_MS = 10 * 60_000;
const LOCK_POLL_MS = 250;

/**
 * Thrown by {@link runMigrationsUnderLock} (and so by {@link backOfficeIdentityDataSourceFactory}) when another
 * backend held the migration lock for longer than `lockWaitMs`. `@nestjs/typeorm` retries a failed
 * `dataSourceFactory` (`retryAttempts`, 10 by default, every `retryDelay`), and each retry would wait for the lock
 * again; skip the retries for this error with `toRetry: (error) => !(error instanceof BackOfficeMigrationLockTimeoutError)`.
 */
export class BackOfficeMigrationLockTimeoutError extends Error {
  override readonly name = 'BackOfficeMigrationLockTimeoutError';

  constructor(
    /** The backend pids that held the lock when the wait ended (empty when it was released in the meantime). */
    readonly holderPids: readonly number[],
    /** How long the call waited, in milliseconds. */
    readonly lockWaitMs: number,
  ) {
    const by = holderPids.length > 0 ? ` (held by backend pid ${holderPids.join(', ')})` : '';
    super(
      `the migration lock (pg_advisory_lock ${BACKOFFICE_MIGRATION_LOCK_KEY})${by} was not released within ${describeWait(lockWaitMs)}: ` +
        'another instance is migrating or stuck mid-migration; end that backend (pg_terminate_backend) or wait, then start again',
    );
  }
}

/** Options of {@link runMigrationsUnderLock}. */
export interface RunMigrationsUnderLockOptions {
  /**
   * How long to wait for the lock while another instance holds it (migrating, or hung mid-migration) before failing
   * with an error that names the lock and the holder's backend pid. Default {@link DEFAULT_MIGRATION_LOCK_WAIT_MS}.
   * A finite number of milliseconds >= 0 (0: try once); anything else (NaN, a negative number, Infinity, a string) is
   * refused with an error naming the option. There is no "wait forever": pass a long wait instead.
   */
  lockWaitMs?: number;
}

/**
 * Runs the DataSource's pending migrations while holding the PostgreSQL session advisory lock
 * {@link BACKOFFICE_MIGRATION_LOCK_KEY}: a second app instance (or the import CLI) starting at the same time waits
 * for the first, then finds nothing pending, instead of creating the same tables at once and failing with a
 * duplicate-key error. The lock and the migrations share one connection (PGlite has only one; there the lock is
 * taken too, it is just never contended). The wait is bounded (`lockWaitMs`): past it the call fails, saying which
 * backend holds the lock ({@link BackOfficeMigrationLockTimeoutError}), instead of hanging behind an instance stuck
 * mid-migration.
 *
 * For a host that builds its own DataSource in a `dataSourceFactory` (for instance to register it with
 * typeorm-transactional's `addTransactionalDataSource`): create it with `migrationsRun: false`, `initialize()` it,
 * then call this. The DataSource must be initialized.
 *
 * @returns the migrations that ran (none when another instance ran them first).
 */
export async function runMigrationsUnderLock(dataSource: DataSource, options: RunMigrationsUnderLockOptions = {}): Promise<Migration[]> {
  const lockWaitMs = options.lockWaitMs ?? DEFAULT_MIGRATION_LOCK_WAIT_MS;
  if (typeof lockWaitMs !== 'number' || !Number.isFinite(lockWaitMs) || lockWaitMs < 0) {
    throw new Error(`runMigrationsUnderLock: lockWaitMs must be a finite number of milliseconds >= 0 (got ${String(lockWaitMs)})`);
  }
  if (!dataSource.isInitialized) throw new Error('runMigrationsUnderLock: initialize() the DataSource first');
  const queryRunner = dataSource.createQueryRunner();
  await queryRunner.connect();
  try {
    await acquireMigrationLock(queryRunner.query.bind(queryRunner), lockWaitMs);
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

type Query = (sql: string, parameters?: unknown[]) => Promise<Array<Record<string, unknown>>>;

/** Takes the migration lock with `pg_try_advisory_lock`, asking again every 250 ms until `waitMs` has passed. */
async function acquireMigrationLock(query: Query, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const [{ locked }] = await query(`SELECT pg_try_advisory_lock($1) AS locked`, [BACKOFFICE_MIGRATION_LOCK_KEY]);
    if (locked) return;
    if (Date.now() >= deadline) {
      const holders = await query(
        `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1`,
        [BACKOFFICE_MIGRATION_LOCK_KEY],
      );
      throw new BackOfficeMigrationLockTimeoutError(holders.map((row) => Number(row.pid)), waitMs);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(LOCK_POLL_MS, Math.max(deadline - Date.now(), 1))));
  }
}

/** A wait for the lock's error message: milliseconds below a second (`600 ms`), else seconds to one decimal (`1.5 s`, `600 s`). */
function describeWait(waitMs: number): string {
  return waitMs < 1000 ? `${Math.round(waitMs)} ms` : `${Number((waitMs / 1000).toFixed(1))} s`;
}

/**
 * `dataSourceFactory` for `TypeOrmModule.forRoot(Async)`: builds and initializes the DataSource and, with
 * `migrationsRun: true`, runs the pending migrations under an advisory lock ({@link runMigrationsUnderLock}), so
 * several instances of the app can start together on one database. `synchronize`, if set, runs after them.
 *
 * With `manualInitialization: true` (`@nestjs/typeorm`) it gives back the DataSource uninitialized and with
 * `migrationsRun` and `synchronize` off: the host calls `initialize()` itself, then `runMigrationsUnderLock()` (and
 * `synchronize()` if it wants it). To combine the lock with a factory of your own, call
 * {@link runMigrationsUnderLock} there instead.
 */
export async function backOfficeIdentityDataSourceFactory(options?: DataSourceOptions): Promise<DataSource> {
  if (!options) throw new Error('backOfficeIdentityDataSourceFactory: no DataSource options were given');
  const dataSource = new DataSource({ ...options, migrationsRun: false, synchronize: false } as DataSourceOptions);
  if ((options as { manualInitialization?: boolean }).manualInitialization) return dataSource;
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
