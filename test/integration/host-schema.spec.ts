import { EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import pg from 'pg';
import { BackOfficeIdentityModule, BackOfficeUserManager, BACKOFFICE_USER_MANAGER } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { TEST_IDENTITY_DEFAULTS, TEST_PASSWORD, typeOrmOptionsFor } from '../support/identity-app.js';

/** A host whose DataSource uses a schema of its own (`schema: 'identity'`), as the README describes it. */
describe.skipIf(dbKind() === 'pglite')('A host DataSource with a non-default schema', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    // pg_trgm already installed in public, as on most hosts that use it.
    await client.query(`CREATE SCHEMA identity; CREATE SCHEMA identity_b; CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public`);
    await client.end();
  });
  afterAll(async () => {
    await db?.drop();
  });

  const start = async (typeOrm: object) => {
    const moduleRef = await Test.createTestingModule({
      imports: [TypeOrmModule.forRoot({ ...typeOrmOptionsFor(db), retryAttempts: 0, ...typeOrm }), EventEmitterModule.forRoot({ wildcard: true }), BackOfficeIdentityModule.forRoot({ ...TEST_IDENTITY_DEFAULTS, maintenanceIntervalMinutes: 0 })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await app.init();
    } catch (error) {
      await app.close().catch(() => undefined);
      throw error;
    }
    return app;
  };

  it('schema without a matching search_path: start-up fails naming the fix, instead of tables in public the stores never find', async () => {
    const starting = start({ schema: 'identity' });
    await expect(starting).rejects.toThrow(/identity\.backoffice_user.*search_path/s);
    await starting.then((app) => app.close(), () => undefined);
  });

  it('schema with search_path (README), pg_trgm in public: the migrations create the tables (and the trigram index) in that schema and the stores use them', async () => {
    const app = await start({ schema: 'identity_b', extra: { max: db.poolSize, options: '-c search_path=identity_b' } });
    try {
      const users = app.get<BackOfficeUserManager>(BACKOFFICE_USER_MANAGER);
      const created = await users.createUser({ email: 'schema@example.com', name: 'Schema', password: TEST_PASSWORD });
      expect(created.succeeded).toBe(true);
      expect((await users.findByEmail('schema@example.com'))?.id).toBe(created.value!.id);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT table_schema FROM information_schema.tables WHERE table_name = 'backoffice_user' ORDER BY 1`);
        expect(rows.map((r) => r.table_schema)).toContain('identity_b');
        const indexes = await client.query(`SELECT indexname FROM pg_indexes WHERE schemaname = 'identity_b' AND indexname = 'ix_backoffice_user_search'`);
        expect(indexes.rows).toHaveLength(1);
      } finally {
        await client.end();
      }
    } finally {
      await app.close();
    }
  });
});
