import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/demo/embedded-postgres.js';

export type TestDbKind = 'postgres' | 'pglite';

/** A fresh, empty database for one suite: its own database on real PostgreSQL, or an in-memory PGlite. */
export interface TestDatabase {
  kind: TestDbKind;
  url: string;
  /** Pool size to use: PGlite is one backend session. */
  poolSize: number;
  drop(): Promise<void>;
}

export const dbKind = (): TestDbKind => (process.env.TEST_DB_KIND === 'postgres' ? 'postgres' : 'pglite');

export async function createTestDatabase(): Promise<TestDatabase> {
  if (dbKind() === 'pglite') {
    const embedded = await startEmbeddedPostgres();
    return { kind: 'pglite', url: embedded.url, poolSize: 1, drop: () => embedded.close() };
  }
  const adminUrl = process.env.TEST_PG_URL!;
  const name = `bo_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    kind: 'postgres',
    url: url.toString(),
    poolSize: 10,
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
