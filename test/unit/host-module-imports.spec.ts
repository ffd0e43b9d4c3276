import { Test } from '@nestjs/testing';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { BackOfficeIdentityModule, InMemoryBackOfficeStores, TypeOrmBackOfficeAuditStore, TypeOrmBackOfficeUserStore } from '../../src/backoffice-identity/index.js';

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

  describe('the TypeORM DataSource, which the default (TypeORM) stores need', () => {
    const refusal = /BackOfficeIdentityModule.*TypeOrmModule\.forRoot\(.*imports of your app module.*InMemoryBackOfficeStores/s;

    it('without TypeOrmModule.forRoot(): start-up fails with a message naming the fix, not a module the host cannot edit', async () => {
      const compiling = Test.createTestingModule({ imports: [EventEmitterModule.forRoot(), BackOfficeIdentityModule.forRoot({ maintenanceIntervalMinutes: 0 })] }).compile();
      await expect(compiling).rejects.toThrow(refusal);
      await expect(compiling).rejects.not.toThrow(/can't resolve dependencies/);
    });

    it('with every store but one swapped, the default store left still needs it and says so', async () => {
      const stores = { ...InMemoryBackOfficeStores.create(), auditStore: undefined };
      const compiling = Test.createTestingModule({ imports: [EventEmitterModule.forRoot(), BackOfficeIdentityModule.forRoot({ stores, maintenanceIntervalMinutes: 0 })] }).compile();
      await expect(compiling).rejects.toThrow(refusal);
    });

    it('with every store swapped, one of them a subclass of a TypeORM store: that store still needs it and says so', async () => {
      class HostUserStore extends TypeOrmBackOfficeUserStore {}
      const stores = { ...InMemoryBackOfficeStores.create(), userStore: undefined };
      const identityModule = BackOfficeIdentityModule.forRoot({ stores, userStore: HostUserStore, maintenanceIntervalMinutes: 0 });
      await expect(Test.createTestingModule({ imports: [EventEmitterModule.forRoot(), identityModule] }).compile()).rejects.toThrow(refusal);
    });

    it("a host module declaring an exported TypeORM store as its own provider, without TypeOrmModule.forRoot(): the same message", async () => {
      const compiling = Test.createTestingModule({ providers: [TypeOrmBackOfficeAuditStore] }).compile();
      await expect(compiling).rejects.toThrow(refusal);
      await expect(compiling).rejects.not.toThrow(/can't resolve dependencies/);
    });

    it('with in-memory stores: no DataSource is needed, it starts without TypeORM', async () => {
      const moduleRef = await Test.createTestingModule({ imports: [EventEmitterModule.forRoot(), identity()] }).compile();
      await moduleRef.init();
      await moduleRef.close();
    });
  });
});
