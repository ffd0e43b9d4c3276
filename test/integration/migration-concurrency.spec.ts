import { DataSource, type DataSourceOptions } from 'typeorm';
import { backOfficeIdentityEntities, backOfficeIdentityMigrations, backOfficeIdentityDataSourceFactory } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';

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
    const [{ held }] = await later.query(`SELECT count(*)::int AS held FROM pg_locks WHERE locktype = 'advisory'`);
    expect(held).toBe(0);
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
