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
