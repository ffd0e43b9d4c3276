import { Inject, type FactoryProvider } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** Internal token: the host app's TypeORM `DataSource`, which the default (TypeORM) stores read and write through. */
export const BACKOFFICE_DATA_SOURCE = Symbol('BACKOFFICE_DATA_SOURCE');

/** Injects the host's TypeORM `DataSource` as {@link backOfficeDataSourceProvider} resolves it. */
export const InjectBackOfficeDataSource = (): ParameterDecorator & PropertyDecorator => Inject(BACKOFFICE_DATA_SOURCE);

/**
 * Resolves the host's TypeORM `DataSource` once for the module's consumers (the TypeORM stores, the start-up check,
 * the database timeouts); registered only while a TypeORM store is in use. Without `TypeOrmModule.forRoot()` in the
 * host app, start-up fails with the fix in the message, not with Nest's advice to make the DataSource available in
 * BackOfficeIdentityModule, which the host cannot edit.
 */
export const backOfficeDataSourceProvider: FactoryProvider<DataSource> = {
  provide: BACKOFFICE_DATA_SOURCE,
  inject: [{ token: DataSource, optional: true }],
  useFactory: (dataSource: DataSource | undefined) => {
    if (dataSource) return dataSource;
    throw new Error(
      "BackOfficeIdentityModule: no TypeORM DataSource for its default stores. Add TypeOrmModule.forRoot({ ..., autoLoadEntities: true }) " +
        "(or forRootAsync, from '@nestjs/typeorm') to the imports of your app module, beside BackOfficeIdentityModule. " +
        'Without a database, pass stores of your own, e.g. BackOfficeIdentityModule.forRoot({ stores: InMemoryBackOfficeStores.create() }) in tests.',
    );
  },
};
