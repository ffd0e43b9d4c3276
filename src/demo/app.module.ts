import { type DynamicModule, Global, Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  BackOfficeIdentityModule,
  BackOfficeMigrationLockTimeoutError,
  backOfficeIdentityDataSourceFactory,
  backOfficeIdentityMigrations,
} from '../backoffice-identity/index.js';
import { type DemoConfig, identityOptionsFrom, passwordCheckerFrom } from './demo.config.js';
import { DEMO_DATABASE, type DemoDatabase, DemoDatabaseShutdown } from './demo-database.js';
import { HealthController } from './health.controller.js';

/** DI token of the {@link DemoConfig}. */
export const DEMO_CONFIG = 'DEMO_CONFIG';

/** Makes the demo's config and database injectable everywhere, as `ConfigModule` would. */
@Global()
@Module({})
class DemoConfigModule {
  static forRoot(config: DemoConfig, database: DemoDatabase): DynamicModule {
    return {
      module: DemoConfigModule,
      providers: [
        { provide: DEMO_CONFIG, useValue: config },
        { provide: DEMO_DATABASE, useValue: database },
      ],
      exports: [DEMO_CONFIG, DEMO_DATABASE],
    };
  }
}

/** The demo back-office API: the host app owns the DataSource, the module brings entities and migrations. */
@Module({})
export class AppModule {
  static forRoot(config: DemoConfig, database: DemoDatabase): DynamicModule {
    const configModule = DemoConfigModule.forRoot(config, database);
    return {
      module: AppModule,
      imports: [
        configModule,
        TypeOrmModule.forRootAsync({
          inject: [DEMO_DATABASE],
          useFactory: (db: DemoDatabase) => ({
            type: 'postgres' as const,
            url: db.url,
            migrations: backOfficeIdentityMigrations,
            migrationsRun: true,
            autoLoadEntities: true,
            extra: { max: db.poolSize },
            retryAttempts: 3,
            retryDelay: 2000,
            toRetry: (error: unknown) => !(error instanceof BackOfficeMigrationLockTimeoutError),
            logging: false,
          }),
          dataSourceFactory: backOfficeIdentityDataSourceFactory,
        }),
        EventEmitterModule.forRoot({ wildcard: true }),
        BackOfficeIdentityModule.forRootAsync({
          imports: [configModule],
          inject: [DEMO_CONFIG],
          useFactory: identityOptionsFrom,
          passwordChecker: { useFactory: passwordCheckerFrom, inject: [DEMO_CONFIG] },
        }),
      ],
      controllers: [HealthController],
      providers: [DemoDatabaseShutdown],
    };
  }
}
