import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import {
  backOfficeIdentityEntities,
  TypeOrmBackOfficeApiClientStore,
  TypeOrmBackOfficeExternalLoginSessionStore,
  TypeOrmBackOfficeGroupStore,
  TypeOrmBackOfficePendingSignInStore,
  TypeOrmBackOfficeSessionStore,
  TypeOrmBackOfficeUserStore,
  type BackOfficeStores,
} from '../../src/backoffice-identity/index.js';
import { runBackOfficeStoreContract } from '../../src/backoffice-identity/testing/index.js';

/** The TypeORM stores on one database per file (PostgreSQL, or PGlite), built as the module builds them. */
let db: TestDatabase;
let source: DataSource;
let stores: BackOfficeStores;

beforeAll(async () => {
  db = await createTestDatabase();
  source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities });
  await source.initialize();
  stores = {
    userStore: new TypeOrmBackOfficeUserStore(source),
    sessionStore: new TypeOrmBackOfficeSessionStore(source),
    pendingSignInStore: new TypeOrmBackOfficePendingSignInStore(source),
    groupStore: new TypeOrmBackOfficeGroupStore(source),
    apiClientStore: new TypeOrmBackOfficeApiClientStore(source),
    externalLoginSessionStore: new TypeOrmBackOfficeExternalLoginSessionStore(source),
  };
});

afterAll(async () => {
  await source?.destroy();
  await db?.drop();
});

runBackOfficeStoreContract(`TypeORM stores on ${dbKind() === 'postgres' ? 'PostgreSQL' : 'PGlite'}`, async () => stores, { describe, it, expect });
