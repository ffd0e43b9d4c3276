import pg from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import {
  BACKOFFICE_MIGRATION_LOCK_KEY,
  backOfficeIdentityDataSourceFactory,
  backOfficeIdentityEntities,
  backOfficeIdentityMigrations,
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
});
