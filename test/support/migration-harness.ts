import { DataSource } from 'typeorm';
import { backOfficeIdentityEntities, backOfficeIdentityMigrations } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { createIdentityApp, type IdentityApp, type IdentityAppOptions, typeOrmOptionsFor } from './identity-app.js';

/** The timestamp (13 digits, the end of its name) of the newest migration the module ships. */
export const LATEST_MIGRATION = Math.max(...backOfficeIdentityMigrations.map((m) => Number(/\d{13}$/u.exec(new m().name!)![0])));

/**
 * A fresh database that the module migrated to its newest schema, seeded by an app on it (closed after), and a
 * `DataSource` on it that runs no migration by itself: a migration test undoes migrations down to the one it
 * checks ({@link undoFrom}), writes the rows that migration must carry, then runs them again ({@link migrateUp}).
 */
export class MigrationTestDatabase {
  private constructor(
    private readonly db: TestDatabase,
    readonly source: DataSource,
  ) {}

  static async create(seed: (app: IdentityApp) => Promise<void>, options: IdentityAppOptions = {}): Promise<MigrationTestDatabase> {
    const db = await createTestDatabase();
    const app = await createIdentityApp(db, options);
    try {
      await seed(app);
    } finally {
      await app.close();
    }
    const source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities, migrationsRun: false });
    await source.initialize();
    return new MigrationTestDatabase(db, source);
  }

  /** The database's connection string, for a second client (a transaction holding a table meanwhile). */
  get url(): string {
    return this.db.url;
  }

  /** The timestamp of the newest migration applied. */
  async newest(): Promise<number> {
    return Number((await this.source.query(`SELECT max("timestamp") AS t FROM migrations`))[0].t);
  }

  /** Undoes migrations, newest first, until none from `timestamp` on is applied. */
  async undoFrom(timestamp: number): Promise<void> {
    while ((await this.newest()) >= timestamp) await this.source.undoLastMigration();
  }

  /** Applies every pending migration, each in its own transaction unless told otherwise (TypeORM's transaction mode). */
  async migrateUp(transaction: 'each' | 'all' | 'none' = 'each'): Promise<void> {
    await this.source.runMigrations({ transaction });
  }

  /**
   * Boots an app on this database that runs no migration: the new code on the schema as it is now (a host that
   * runs the migrations after the deploy, or after a `down`). Close it before {@link close}.
   */
  app(options: IdentityAppOptions = {}): Promise<IdentityApp> {
    return createIdentityApp(this.db, { ...options, migrationsRun: false });
  }

  async close(): Promise<void> {
    await this.source.destroy();
    await this.db.drop();
  }
}
