import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { BACKOFFICE_USER_STORE } from '../../constants.js';
import { backOfficeIdentityEntities } from './entities.js';
import { TypeOrmBackOfficeUserStore } from './typeorm-user-store.js';

/** Fails start-up with a clear message when the host's DataSource lacks the module's entities or tables. */
@Injectable()
export class BackOfficeIdentityStartupCheck implements OnModuleInit {
  constructor(
    @Inject(BACKOFFICE_USER_STORE) private readonly store: unknown,
    private readonly moduleRef: ModuleRef,
  ) {}

  async onModuleInit(): Promise<void> {
    const dataSource = this.moduleRef.get(DataSource, { strict: false });
    if (!(this.store instanceof TypeOrmBackOfficeUserStore) && !dataSource) return;
    const missing = backOfficeIdentityEntities.filter((entity) => !dataSource.hasMetadata(entity));
    if (missing.length > 0) {
      throw new Error(
        `BackOfficeIdentityModule: the TypeORM DataSource does not know the entities ${missing.map((e) => e.name).join(', ')}. ` +
          'Add `autoLoadEntities: true` or `entities: [...backOfficeIdentityEntities]` to TypeOrmModule.forRoot().',
      );
    }
    const [row] = await dataSource.query(`SELECT to_regclass('backoffice_user') IS NOT NULL AS present`);
    if (!row?.present) {
      throw new Error(
        'BackOfficeIdentityModule: table backoffice_user does not exist. Add `migrations: [...backOfficeIdentityMigrations]` ' +
          'and `migrationsRun: true` to TypeOrmModule.forRoot(), or run the migrations with the TypeORM CLI.',
      );
    }
  }
}
