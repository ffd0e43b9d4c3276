import type { DynamicModule, Provider, Type } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { BackOfficeStores } from '../backoffice-stores.interface.js';
import { backOfficeDataSourceProvider } from './backoffice-data-source.provider.js';
import { BackOfficeIdentityStartupCheck } from './backoffice-identity-startup-check.js';
import { BackOfficeDatabaseTimeouts } from './database-timeouts.js';
import { backOfficeIdentityEntities } from './entities.js';
import { backOfficeIdentityDataSourceFactory } from './migrations/backoffice-data-source-factory.js';
import { backOfficeIdentityMigrations } from './migrations/index.js';
import { TypeOrmBackOfficeApiClientStore } from './typeorm-api-client-store.js';
import { TypeOrmBackOfficeAuditStore } from './typeorm-audit-store.js';
import { TypeOrmBackOfficeExternalLoginSessionStore } from './typeorm-external-login-session-store.js';
import { TypeOrmBackOfficeGroupStore } from './typeorm-group-store.js';
import { TypeOrmBackOfficePendingSignInStore } from './typeorm-pending-sign-in-store.js';
import { TypeOrmBackOfficeSessionStore } from './typeorm-session-store.js';
import { TypeOrmBackOfficeUserStore } from './typeorm-user-store.js';

/** The default store of each port: TypeORM on PostgreSQL (or PGlite). */
export const TYPEORM_DEFAULT_STORES: Record<keyof BackOfficeStores, Type<unknown>> = {
  userStore: TypeOrmBackOfficeUserStore,
  sessionStore: TypeOrmBackOfficeSessionStore,
  pendingSignInStore: TypeOrmBackOfficePendingSignInStore,
  groupStore: TypeOrmBackOfficeGroupStore,
  apiClientStore: TypeOrmBackOfficeApiClientStore,
  externalLoginSessionStore: TypeOrmBackOfficeExternalLoginSessionStore,
  auditStore: TypeOrmBackOfficeAuditStore,
};

/**
 * What the module adds while any TypeORM store is in use: the host's data source (resolved in one place, with a
 * clear error when the host has none), the start-up check (entities and tables present) and the database timeouts.
 * The entities are registered for the host's `autoLoadEntities: true` as `TypeOrmModule.forFeature()` does it, when
 * called; its repository providers are not imported: the stores use the data source itself, and without one the
 * repositories would stop start-up first, with Nest's "can't resolve dependencies" instead of the fix.
 */
export function typeOrmPersistence(): Provider[] {
  TypeOrmModule.forFeature(backOfficeIdentityEntities); // registers the entities for autoLoadEntities
  return [backOfficeDataSourceProvider, BackOfficeIdentityStartupCheck, BackOfficeDatabaseTimeouts];
}

/**
 * A TypeORM data source of its own on `databaseUrl` (PostgreSQL), with the module's entities and migrations run
 * at start-up (under the migration lock, see {@link backOfficeIdentityDataSourceFactory}): for the command-line
 * tools, which have no host app.
 */
export function standaloneTypeOrmRoot(databaseUrl: string): DynamicModule {
  return TypeOrmModule.forRootAsync({
    useFactory: () => ({
      type: 'postgres',
      url: databaseUrl,
      migrations: backOfficeIdentityMigrations,
      migrationsRun: true,
      autoLoadEntities: true,
      extra: { max: 1 },
      retryAttempts: 0,
      // No retry: @nestjs/typeorm logs "Unable to connect to the database. Retrying (1)..." before it counts the
      // attempts (even with retryAttempts 0), unless toRetry refuses the error, which it then throws at once.
      toRetry: () => false,
      logging: false,
    }),
    dataSourceFactory: backOfficeIdentityDataSourceFactory,
  });
}
