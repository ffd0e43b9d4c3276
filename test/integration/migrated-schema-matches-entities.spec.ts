import { DataSource } from 'typeorm';
import { backOfficeIdentityEntities, backOfficeIdentityMigrations } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';

/**
 * The migrated schema against the entities, as TypeORM's schema builder sees it (`createSchemaBuilder().log()`):
 * no table or column the entities need is missing, and no column differs in type or nullability. Left out, on
 * purpose: names of indexes and constraints (the migrations name their own), foreign keys and checks the entities
 * do not declare, server defaults of timestamps the stores always set, and the generated `search_text`.
 */
describe.skipIf(dbKind() === 'pglite')('The migrated schema matches the entities (real PostgreSQL)', () => {
  let db: TestDatabase;
  let source: DataSource;
  beforeAll(async () => {
    db = await createTestDatabase();
    source = new DataSource({ type: 'postgres', url: db.url, entities: backOfficeIdentityEntities, migrations: backOfficeIdentityMigrations, migrationsRun: true, logging: false });
    await source.initialize();
    // The builder reads the generated column's expression from typeorm_metadata, which the migrations do not create.
    const runner = source.createQueryRunner();
    await (source.driver.createSchemaBuilder() as unknown as { createTypeormMetadataTable(r: typeof runner): Promise<void> }).createTypeormMetadataTable(runner);
    await runner.release();
  });
  afterAll(async () => {
    await source?.destroy();
    await db?.drop();
  });

  it('every migration reverted in order leaves none of the module\'s tables, indexes, sequences or types; up again rebuilds the same schema', async () => {
    const objects = () =>
      source.query(`SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname LIKE '%backoffice%' ORDER BY 1`);
    const constraints = () => source.query(`SELECT conname FROM pg_constraint WHERE conname LIKE '%backoffice%' ORDER BY 1`);
    const columns = () => source.query(`SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_name LIKE 'backoffice%' ORDER BY 1, 2`);
    const before = { objects: await objects(), constraints: await constraints(), columns: await columns() };
    for (let i = 0; i < backOfficeIdentityMigrations.length; i++) await source.undoLastMigration();
    expect(await objects()).toEqual([]);
    expect(await constraints()).toEqual([]);
    expect(await source.query(`SELECT typname FROM pg_type WHERE typname LIKE '%backoffice%'`)).toEqual([]);
    expect(await source.query(`SELECT count(*)::int AS n FROM migrations`)).toEqual([{ n: 0 }]);
    expect(await source.runMigrations()).toHaveLength(backOfficeIdentityMigrations.length);
    expect({ objects: await objects(), constraints: await constraints(), columns: await columns() }).toEqual(before);
    expect(await source.runMigrations()).toEqual([]); // a second run has nothing to do
  });

  it('no pending table or column change', async () => {
    const { upQueries } = await source.driver.createSchemaBuilder().log();
    const columnChanges = upQueries
      .map((q) => q.query)
      .filter((sql) => /CREATE TABLE|ADD "|ADD COLUMN|TYPE |SET NOT NULL|DROP NOT NULL|DROP COLUMN/.test(sql))
      .filter((sql) => !/DROP COLUMN "search_text"/.test(sql));
    expect(columnChanges).toEqual([]);
    // The check proves something: a column dropped from the database shows up.
    await source.query(`ALTER TABLE backoffice_user DROP COLUMN directory_managed_at`);
    const after = (await source.driver.createSchemaBuilder().log()).upQueries.map((q) => q.query);
    expect(after.some((sql) => /ADD "directory_managed_at"/.test(sql))).toBe(true);
  });
});
