import pg from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import {
  BACKOFFICE_MIGRATION_LOCK_KEY,
  BackOfficeMigrationLockTimeoutError,
  backOfficeIdentityDataSourceFactory,
  backOfficeIdentityEntities,
  backOfficeIdentityMigrations,
  runMigrationsUnderLock,
} from '../../src/backoffice-identity/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';

/**
 * Backends holding the migration lock in this database: its key only (a bigint key is classid = high 32 bits,
 * objid = low 32 bits, objsubid = 1), so advisory locks that parallel suites take on other keys or in other
 * databases of the cluster do not count.
 */
const MIGRATION_LOCK_HOLDERS = `SELECT count(*)::int AS held FROM pg_locks WHERE locktype = 'advisory'
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1`;

/** The DataSource options of a host app as the README shows them (migrations run at start-up). */
const hostOptions = (db: TestDatabase): DataSourceOptions => ({
  type: 'postgres',
  url: db.url,
  entities: backOfficeIdentityEntities,
  migrations: backOfficeIdentityMigrations,
  migrationsRun: true,
  logging: false,
  extra: { max: db.poolSize },
});

describe('Migrations run by several app instances starting together (README: dataSourceFactory)', () => {
  let db: TestDatabase;
  const started: DataSource[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await Promise.all(started.map((source) => source.destroy()));
    await db?.drop();
  });

  // PGlite is one backend session shared by every connection: a lock there cannot tell instances apart (nor can
  // two processes share one in-memory PGlite).
  it.skipIf(dbKind() === 'pglite')('three instances on one empty database all start; every migration ran exactly once (advisory lock)', async () => {
    const results = await Promise.allSettled([1, 2, 3].map(() => backOfficeIdentityDataSourceFactory(hostOptions(db))));
    for (const result of results) if (result.status === 'fulfilled') started.push(result.value);
    expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'started'))).toEqual(['started', 'started', 'started']);
    const rows: { name: string }[] = await started[0].query(`SELECT name FROM migrations ORDER BY id`);
    expect(rows.map((r) => r.name).sort()).toEqual(backOfficeIdentityMigrations.map((m) => m.name).sort());
    expect(started.every((source) => source.isInitialized)).toBe(true);
    // The lock is released: a later start (nothing pending) does not wait for it.
    const later = await backOfficeIdentityDataSourceFactory(hostOptions(db));
    started.push(later);
    // Another advisory lock of this database (as parallel suites take on their own keys) is not the migration lock.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query(`SELECT pg_advisory_lock(42)`);
      const [{ held }] = await later.query(MIGRATION_LOCK_HOLDERS, [BACKOFFICE_MIGRATION_LOCK_KEY]);
      expect(held).toBe(0);
      // ...while the migration lock itself is seen when held.
      await other.query(`SELECT pg_advisory_lock($1)`, [BACKOFFICE_MIGRATION_LOCK_KEY]);
      const [{ held: whileHeld }] = await later.query(MIGRATION_LOCK_HOLDERS, [BACKOFFICE_MIGRATION_LOCK_KEY]);
      expect(whileHeld).toBe(1);
    } finally {
      await other.end();
    }
  });

  it('runs nothing when migrationsRun is off, and gives back an initialized DataSource', async () => {
    const fresh = await createTestDatabase();
    try {
      const source = await backOfficeIdentityDataSourceFactory({ ...hostOptions(fresh), migrationsRun: false });
      try {
        expect(source.isInitialized).toBe(true);
        const [{ present }] = await source.query(`SELECT to_regclass('backoffice_user') IS NOT NULL AS present`);
        expect(present).toBe(false);
      } finally {
        await source.destroy();
      }
    } finally {
      await fresh.drop();
    }
  });

  /** A fresh database, given to `body`, dropped afterwards. */
  const withFreshDatabase = async (body: (fresh: TestDatabase) => Promise<void>) => {
    const fresh = await createTestDatabase();
    try {
      await body(fresh);
    } finally {
      await fresh.drop();
    }
  };
  const migrationNames = async (source: DataSource) =>
    ((await source.query(`SELECT name FROM migrations ORDER BY id`)) as { name: string }[]).map((r) => r.name).sort();

  it('with manualInitialization it gives back the DataSource uninitialized; the host initializes it (no migration runs unlocked) and runs them with runMigrationsUnderLock', async () => {
    await withFreshDatabase(async (fresh) => {
      const source = await backOfficeIdentityDataSourceFactory({ ...hostOptions(fresh), manualInitialization: true } as DataSourceOptions);
      expect(source.isInitialized).toBe(false);
      await source.initialize();
      try {
        const [{ present }] = await source.query(`SELECT to_regclass('backoffice_user') IS NOT NULL AS present`);
        expect(present).toBe(false);
        expect((await runMigrationsUnderLock(source)).length).toBe(backOfficeIdentityMigrations.length);
        expect(await migrationNames(source)).toEqual(backOfficeIdentityMigrations.map((m) => m.name).sort());
      } finally {
        await source.destroy();
      }
    });
  });

  it("a host's own dataSourceFactory (wrapping its DataSource, as typeorm-transactional's addTransactionalDataSource does) calls runMigrationsUnderLock: instances starting together all start", async () => {
    const wrapped = new Set<DataSource>();
    const hostFactory = async (options: DataSourceOptions) => {
      const source = new DataSource({ ...options, migrationsRun: false });
      wrapped.add(source);
      await source.initialize();
      await runMigrationsUnderLock(source);
      return source;
    };
    await withFreshDatabase(async (fresh) => {
      const instances = dbKind() === 'pglite' ? 1 : 3;
      const results = await Promise.allSettled(Array.from({ length: instances }, () => hostFactory(hostOptions(fresh))));
      try {
        expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'started'))).toEqual(Array(instances).fill('started'));
        const first = (results[0] as PromiseFulfilledResult<DataSource>).value;
        expect(await migrationNames(first)).toEqual(backOfficeIdentityMigrations.map((m) => m.name).sort());
      } finally {
        await Promise.all([...wrapped].filter((s) => s.isInitialized).map((s) => s.destroy()));
      }
    });
  });

  it('runMigrationsUnderLock refuses a DataSource that is not initialized', async () => {
    await expect(runMigrationsUnderLock(new DataSource(hostOptions(db)))).rejects.toThrow(/initialize\(\) the DataSource first/);
  });

  it('runMigrationsUnderLock refuses a lockWaitMs that is not a finite number of milliseconds >= 0 (NaN polled every ~1 ms forever), naming the option, before it touches the DataSource', async () => {
    const source = new DataSource(hostOptions(db));
    for (const lockWaitMs of [Number.NaN, -1, Number.POSITIVE_INFINITY, '600' as unknown as number]) {
      await expect(runMigrationsUnderLock(source, { lockWaitMs })).rejects.toThrow(/lockWaitMs must be a finite number of milliseconds >= 0/);
    }
    expect(source.isInitialized).toBe(false);
  });

  it.skipIf(dbKind() === 'pglite')('the lock wait is bounded: while another backend holds the lock (an instance hung mid-migration), start-up fails after lockWaitMs naming the holder, and goes through once it is released', async () => {
    await withFreshDatabase(async (fresh) => {
      const hung = new pg.Client({ connectionString: fresh.url });
      await hung.connect();
      const source = new DataSource({ ...hostOptions(fresh), migrationsRun: false });
      await source.initialize();
      try {
        const { rows } = await hung.query(`SELECT pg_backend_pid() AS pid, pg_advisory_lock($1)`, [BACKOFFICE_MIGRATION_LOCK_KEY]);
        const started = Date.now();
        const error = await runMigrationsUnderLock(source, { lockWaitMs: 600 }).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(BackOfficeMigrationLockTimeoutError);
        expect(error).toMatchObject({ name: 'BackOfficeMigrationLockTimeoutError', holderPids: [Number(rows[0].pid)], lockWaitMs: 600 });
        expect((error as Error).message).toMatch(
          new RegExp(`migration lock \\(pg_advisory_lock ${BACKOFFICE_MIGRATION_LOCK_KEY}\\) \\(held by backend pid ${rows[0].pid}\\) was not released within 600 ms:`),
        );
        expect(Date.now() - started).toBeGreaterThanOrEqual(600);
        const [{ present }] = await source.query(`SELECT to_regclass('backoffice_user') IS NOT NULL AS present`);
        expect(present).toBe(false);
        await hung.query(`SELECT pg_advisory_unlock($1)`, [BACKOFFICE_MIGRATION_LOCK_KEY]);
        expect((await runMigrationsUnderLock(source, { lockWaitMs: 600 })).length).toBe(backOfficeIdentityMigrations.length);
      } finally {
        await hung.end();
        await source.destroy();
      }
    });
  });
});
