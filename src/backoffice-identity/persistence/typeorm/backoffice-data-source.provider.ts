import { Inject, type FactoryProvider } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';

/** Internal token: the host app's TypeORM `DataSource`, for the start-up check and the database timeouts. */
export const BACKOFFICE_DATA_SOURCE = Symbol('BACKOFFICE_DATA_SOURCE');

/** Injects the host's TypeORM `DataSource` as {@link backOfficeDataSourceProvider} resolves it. */
export const InjectBackOfficeDataSource = (): ParameterDecorator & PropertyDecorator => Inject(BACKOFFICE_DATA_SOURCE);

/**
 * The host's TypeORM `DataSource` (or an `EntityManager` given in its place), or, when there is none, the error that
 * names the fix: `TypeOrmModule.forRoot()` in the host app, or stores of its own. Nest's "can't resolve
 * dependencies" would advise making the DataSource available in BackOfficeIdentityModule, which the host cannot edit.
 *
 * Each TypeORM store calls it in its constructor, where the DataSource is injected as optional with Nest's own
 * token (`@Optional() @InjectDataSource()`): so a store resolves wherever the host's `TypeOrmModule.forRoot()` is
 * visible (as a provider of the host's own module, or through `overrideProvider(...).useClass(...)` while other
 * stores are configured), and fails with this message where it is not.
 */
export function requireHostDataSource<T extends DataSource | EntityManager>(dataSource: T | null | undefined): T {
  if (dataSource) return dataSource;
  throw new Error(
    "BackOfficeIdentityModule: no TypeORM DataSource for its default stores. Add TypeOrmModule.forRoot({ ..., autoLoadEntities: true }) " +
      "(or forRootAsync, from '@nestjs/typeorm') to the imports of your app module, beside BackOfficeIdentityModule. " +
      'Without a database, pass stores of your own, e.g. BackOfficeIdentityModule.forRoot({ stores: InMemoryBackOfficeStores.create() }) in tests.',
  );
}

/**
 * `store` bound to another entity manager (a transaction's): an object whose prototype is `store`, with only its
 * `manager` replaced. A host's subclass of a TypeORM store keeps its overrides and the dependencies its own
 * constructor was given (a `new` of the base class would drop both, and the subclass's constructor may take more).
 */
export function onEntityManager<T extends object>(store: T, manager: EntityManager): T {
  return Object.create(store, { manager: { value: manager, enumerable: false } }) as T;
}

/**
 * Resolves the host's TypeORM `DataSource` once for the start-up check and the database timeouts (the stores use
 * {@link requireHostDataSource} themselves); registered only while a TypeORM store is in use. Without
 * `TypeOrmModule.forRoot()` in the host app, start-up fails with the same message.
 */
export const backOfficeDataSourceProvider: FactoryProvider<DataSource> = {
  provide: BACKOFFICE_DATA_SOURCE,
  inject: [{ token: DataSource, optional: true }],
  useFactory: (dataSource: DataSource | undefined) => requireHostDataSource(dataSource),
};
