import { Injectable, type OnModuleInit } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { InjectBackOfficeDataSource } from './backoffice-data-source.provider.js';
import { backOfficeIdentityEntities } from './entities.js';

/** Fails start-up with a clear message when the host's DataSource lacks the module's entities or tables. */
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
    const [row] = await this.dataSource.query(`SELECT to_regclass('backoffice_user') IS NOT NULL AS present`);
    if (!row?.present) {
      throw new Error(
        'BackOfficeIdentityModule: table backoffice_user does not exist. Add `migrations: [...backOfficeIdentityMigrations]` ' +
          'and `migrationsRun: true` to TypeOrmModule.forRoot(), or run the migrations with the TypeORM CLI.',
      );
    }
  }
}
