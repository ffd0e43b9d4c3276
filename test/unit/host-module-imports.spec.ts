import { Test } from '@nestjs/testing';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { BackOfficeIdentityModule, InMemoryBackOfficeStores } from '../../src/backoffice-identity/index.js';

/**
 * What a host app must import beside the module, and the start-up error that says so when it is missing: Nest's own
 * "can't resolve dependencies" message would advise importing the missing module into BackOfficeIdentityModule.
 */
describe('The host app\'s imports beside BackOfficeIdentityModule', () => {
  const identity = () => BackOfficeIdentityModule.forRoot({ stores: InMemoryBackOfficeStores.create(), maintenanceIntervalMinutes: 0 });

  it('without EventEmitterModule.forRoot(): start-up fails with a message naming the fix', async () => {
    const compiling = Test.createTestingModule({ imports: [identity()] }).compile();
    await expect(compiling).rejects.toThrow(/BackOfficeIdentityModule.*EventEmitterModule\.forRoot\(\).*imports of your app module/s);
  });

  it('with EventEmitterModule.forRoot(): it starts', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [EventEmitterModule.forRoot(), identity()] }).compile();
    await moduleRef.close();
  });
});
