import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { InjectBackOfficeDataSource } from './backoffice-data-source.provider.js';
import { backOfficeIdentityEntities } from './entities.js';
import { BackOfficeUserEntity } from './entities/backoffice-user.entity.js';
import { backOfficeIdentityMigrations } from './migrations/index.js';

/**
 * Fails start-up with a clear message when the host's DataSource lacks the module's entities or tables, and warns
 * (without refusing: a host may run the CLI after the deploy) of the module's migrations not applied yet.
 */
@Injectable()
export class BackOfficeIdentityStartupCheck implements OnModuleInit {
  constructor(@InjectBackOfficeDataSource() private readonly dataSource: DataSource) {}

  async onModuleInit(): Promise<void> {
    const missing = backOfficeIdentityEntities.filter((entity) => !this.dataSource.hasMetadata(entity));
    if (missing.length > 0) {
      throw new Error(
        `BackOfficeIdentityModule: the TypeORM DataSource does not know the entities ${missing.map((e) => e.name).join(', ')}. ` +
          'Add `autoLoadEntities: true` or `entities: [...backOfficeIdentityEntities]` to TypeOrmModule.forRoot().',
      );
    }
    // Where the stores look: the entity's table, in the DataSource's `schema` when it has one.
    const { schema, tableName, tablePath } = this.dataSource.getMetadata(BackOfficeUserEntity);
    const quote = (name: string) => this.dataSource.driver.escape(name);
    const [row] = await this.dataSource.query(`SELECT to_regclass($1) IS NOT NULL AS present, to_regclass('backoffice_user')::text AS on_search_path`, [
      schema ? `${quote(schema)}.${quote(tableName)}` : quote(tableName),
    ]);
    if (!row?.present && row?.on_search_path) {
      throw new Error(
        `BackOfficeIdentityModule: the DataSource's entities are in ${tablePath}, but the migrations created ${row.on_search_path} ` +
          '(they follow the connection\'s search_path). With `schema` in TypeOrmModule.forRoot(), set the search_path to it as well: ' +
          "`extra: { options: '-c search_path=<schema>' }`.",
      );
    }
    if (!row?.present) {
      throw new Error(
        'BackOfficeIdentityModule: table backoffice_user does not exist. Add `migrations: [...backOfficeIdentityMigrations]` ' +
          'and `migrationsRun: true` to TypeOrmModule.forRoot(), or run the migrations with the TypeORM CLI.',
      );
    }
    await this.warnOfPendingMigrations(schema, quote);
  }

  /**
   * Names the module's migrations that the DataSource's migrations table (`migrationsTableName`, default
   * `migrations`, in its `schema`) does not list. Says nothing when there is no such table (a schema made otherwise);
   * when the table cannot be read (another tool's, without `name`; no SELECT for the app's role), says so and goes on.
   */
  private async warnOfPendingMigrations(schema: string | undefined, quote: (name: string) => string): Promise<void> {
    const table = this.dataSource.options.migrationsTableName ?? 'migrations';
    const path = schema ? `${quote(schema)}.${quote(table)}` : quote(table);
    const logger = new Logger('BackOfficeIdentity');
    let applied: Set<string>;
    try {
      const [row] = await this.dataSource.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [path]);
      if (!row?.present) return;
      applied = new Set((await this.dataSource.query(`SELECT name FROM ${path}`)).map((r: { name: string }) => r.name));
    } catch (error) {
      // Only a warning rides on it: a table another tool owns, or one the app's role may not read, must not stop start-up.
      logger.warn(`BackOfficeIdentityModule: could not check for its migrations not applied yet in ${path}: ${(error as Error).message}`);
      return;
    }
    const pending = backOfficeIdentityMigrations.map((m) => new m().name!).filter((name) => !applied.has(name));
    if (pending.length === 0) return;
    logger.warn(
      `BackOfficeIdentityModule: ${pending.length} of its migrations are not applied yet: ${pending.join(', ')}. Run them ` +
        '(`migrationsRun: true` in TypeOrmModule.forRoot(), or the TypeORM CLI); until then some writes fail and some checks fall back to older rules.',
    );
  }
}
