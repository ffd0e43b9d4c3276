import { EventEmitterModule } from '@nestjs/event-emitter';
import { Test, type TestingModule } from '@nestjs/testing';
import { BACKOFFICE_USER_MANAGER, BackOfficeIdentityModule, type BackOfficeUserManager, InMemoryBackOfficeStores } from '../../src/backoffice-identity/index.js';

/** `createUserWithLogin` (the first sign-in through a provider): the user and its login stand or fall together. */
describe('userManager.createUserWithLogin on the in-memory stores', () => {
  let moduleRef: TestingModule;
  let manager: BackOfficeUserManager;
  const login = (providerKey: string) => ({ provider: 'oidc', providerKey, displayName: 'OIDC' });

  beforeEach(async () => {
    moduleRef = await Test.createTestingModule({
      imports: [EventEmitterModule.forRoot(), BackOfficeIdentityModule.forRoot({ stores: InMemoryBackOfficeStores.create(), maintenanceIntervalMinutes: 0 })],
    }).compile();
    manager = moduleRef.get(BACKOFFICE_USER_MANAGER);
  });
  afterEach(() => moduleRef.close());

  it('creates the user with its login; with an authorize callback that allows it, the login is stored too', async () => {
    const plain = await manager.createUserWithLogin({ email: 'plain-login@example.com', name: 'Plain' }, login('sub-plain'));
    expect(plain.succeeded).toBe(true);
    expect((await manager.getLogins(plain.value!)).map((l) => l.providerKey)).toEqual(['sub-plain']);

    const seen: string[][] = [];
    const checked = await manager.createUserWithLogin(
      { email: 'checked-login@example.com', name: 'Checked', groups: ['editor'], authorize: (user) => void seen.push(user.groups) },
      login('sub-checked'),
    );
    expect(checked.succeeded).toBe(true);
    expect(seen).toEqual([['editor']]);
    expect((await manager.getLogins(checked.value!)).map((l) => l.providerKey), 'the login was dropped when authorize was given').toEqual(['sub-checked']);
    expect((await manager.findByLogin('oidc', 'sub-checked'))?.id).toBe(checked.value!.id);
  });

  it('a refusal of authorize keeps neither the user nor the login', async () => {
    const refusal = new Error('refused');
    await expect(
      manager.createUserWithLogin({ email: 'refused-login@example.com', name: 'Refused', authorize: () => { throw refusal; } }, login('sub-refused')),
    ).rejects.toBe(refusal);
    expect(await manager.findByEmail('refused-login@example.com')).toBeNull();
    expect(await manager.findByLogin('oidc', 'sub-refused')).toBeNull();
  });

  it('a provider key linked already: login_already_linked, and the new user is not kept', async () => {
    expect((await manager.createUserWithLogin({ email: 'first-login@example.com', name: 'First' }, login('sub-taken'))).succeeded).toBe(true);
    const second = await manager.createUserWithLogin({ email: 'second-login@example.com', name: 'Second' }, login('sub-taken'));
    expect(second.succeeded).toBe(false);
    expect(second.errors.map((e) => e.code)).toEqual(['login_already_linked']);
    expect(await manager.findByEmail('second-login@example.com')).toBeNull();
  });
});
