import { Test } from '@nestjs/testing';
import { EventEmitterModule } from '@nestjs/event-emitter';
import {
  BACKOFFICE_IDENTITY_OPTIONS,
  BackOfficeIdentityModule,
  BackOfficeIdentityOptionsError,
  InMemoryBackOfficeStores,
  type BackOfficeIdentityModuleAsyncOptions,
} from '../../src/backoffice-identity/index.js';

/**
 * A host that configures the module through forRootAsync wrongly gets a start-up error naming the mistake and the fix,
 * never the defaults in silence (publicUrl http://localhost:3000 in every email link, ...).
 */
describe('BackOfficeIdentityModule.forRootAsync, configured wrongly', () => {
  const stores = () => InMemoryBackOfficeStores.create();
  const compile = (options: unknown) =>
    Test.createTestingModule({ imports: [EventEmitterModule.forRoot(), BackOfficeIdentityModule.forRootAsync(options as BackOfficeIdentityModuleAsyncOptions)] }).compile();

  describe('a factory that returns no options object', () => {
    it.each([
      ['undefined (a block body without return)', undefined],
      ['null', null],
      ['a number', 42],
      ['a string', 'https://cms.example.com'],
      ['an array', [{ publicUrl: 'https://cms.example.com' }]],
    ])('returning %s fails start-up naming useFactory and the fix', async (_title, produced) => {
      const compiling = compile({ stores: stores(), useFactory: async () => produced });
      await expect(compiling).rejects.toThrow(BackOfficeIdentityOptionsError);
      await expect(compiling).rejects.toThrow(/option "useFactory" must return .*options object.*\{\}.*defaults/);
    });

    it('returning {} starts with the defaults', async () => {
      const moduleRef = await compile({ stores: stores(), useFactory: () => ({ maintenanceIntervalMinutes: 0 }) });
      expect(moduleRef.get(BACKOFFICE_IDENTITY_OPTIONS).publicUrl).toBe('http://localhost:3000');
      await moduleRef.close();
    });
  });
});

describe('BackOfficeIdentityModule.forRootAsync, given keys it does not take', () => {
  const stores = () => InMemoryBackOfficeStores.create();
  const register = (options: unknown) => () => BackOfficeIdentityModule.forRootAsync(options as BackOfficeIdentityModuleAsyncOptions);

  it('a module option beside useFactory (read nowhere before) is refused, saying to return it from useFactory', () => {
    const registering = register({ stores: stores(), publicUrl: 'https://cms.example.com', useFactory: () => ({}) });
    expect(registering).toThrow(BackOfficeIdentityOptionsError);
    expect(registering).toThrow(/option "publicUrl" .*return it from useFactory/);
  });

  it.each(['useClass', 'useExisting', 'useValue'])('%s (no options factory of Nest\'s other kinds) is refused, naming useFactory as the fix', (key) => {
    class HostOptionsFactory {}
    const registering = register({ stores: stores(), [key]: HostOptionsFactory });
    expect(registering).toThrow(BackOfficeIdentityOptionsError);
    expect(registering).toThrow(new RegExp(`option "${key}" is not supported.*useFactory`));
  });

  it('a typo of a forRootAsync key is refused with the keys it takes', () => {
    const registering = register({ stores: stores(), injects: ['CONFIG'], useFactory: () => ({}) });
    expect(registering).toThrow(/option "injects" is not a known option of forRootAsync \(known: .*inject/);
  });

  it('an undefined inject token (a circular import of the token) is refused, naming its index', () => {
    const registering = register({ stores: stores(), inject: ['CONFIG', undefined], useFactory: () => ({}) });
    expect(registering).toThrow(/option "inject\[1\]" must be a DI token .*circular import/);
  });

  it('routePrefix, imports, inject and the swaps beside useFactory are accepted', () => {
    expect(register({ stores: stores(), routePrefix: 'admin', imports: [], inject: ['CONFIG', { token: 'OTHER', optional: true }], extraProviders: [], useFactory: () => ({}) })).not.toThrow();
  });
});
