import { inspect, isDeepStrictEqual } from 'node:util';
import { ConsoleLogger } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  BACKOFFICE_USER_MANAGER,
  BackOfficeIdentityModule,
  type BackOfficeUser,
  type BackOfficeUserManager,
  InMemoryBackOfficeStores,
  InMemoryBackOfficeUserStore,
  type NewBackOfficeUser,
  redactSecretsWhenLogged,
} from '../../src/backoffice-identity/index.js';

/** A host's own store: hands back plain objects it made itself (here: fresh copies), no redaction of its own. */
class PlainObjectUserStore extends InMemoryBackOfficeUserStore {
  private plain = (user: BackOfficeUser | null): BackOfficeUser | null => (user ? { ...user } : null);
  override async create(user: NewBackOfficeUser, now: Date): Promise<BackOfficeUser> {
    return { ...(await super.create(user, now)) };
  }
  override async findById(id: string): Promise<BackOfficeUser | null> {
    return this.plain(await super.findById(id));
  }
  override async findByNormalizedEmail(normalizedEmail: string): Promise<BackOfficeUser | null> {
    return this.plain(await super.findByNormalizedEmail(normalizedEmail));
  }
  override async findByNormalizedUsername(normalizedUsername: string): Promise<BackOfficeUser | null> {
    return this.plain(await super.findByNormalizedUsername(normalizedUsername));
  }
}

/** What Nest's own `ConsoleLogger` writes to stdout for `value` (text and JSON formats). */
function nestLoggerOutput(value: unknown): string {
  const written: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
  try {
    new ConsoleLogger('Host').log(value);
    new ConsoleLogger('Host', { json: true }).log(value);
  } finally {
    write.mockRestore();
  }
  return written.join('');
}

/** What a host's `console.log(user)`, Nest's Logger and a JSON logger would write for the value. */
const logged = (value: unknown): string[] => [
  JSON.stringify(value),
  inspect(value),
  inspect({ nested: { value } }, { depth: 5 }),
  JSON.stringify({ value }),
  nestLoggerOutput(value),
];

describe.each([
  ['the in-memory store', () => InMemoryBackOfficeStores.create()],
  ['a host store that returns plain objects', () => {
    const set = InMemoryBackOfficeStores.create();
    return { ...set, userStore: new PlainObjectUserStore(set.userStore.state) };
  }],
])('ASVS 5.0 16.2.5 / 4.0 7.1.1: a user from the manager logged or serialized by the host shows no secret (%s)', (_name, stores) => {
  let moduleRef: TestingModule;
  let manager: BackOfficeUserManager;

  beforeEach(async () => {
    moduleRef = await Test.createTestingModule({
      imports: [EventEmitterModule.forRoot(), BackOfficeIdentityModule.forRoot({ stores: stores(), maintenanceIntervalMinutes: 0 })],
    }).compile();
    manager = moduleRef.get(BACKOFFICE_USER_MANAGER);
  });
  afterEach(() => moduleRef.close());

  it('createUser, findById, findByEmail and findByName redact the password hash and security stamp, and property access still reads them', async () => {
    const created = await manager.createUser({ email: 'secret-logs@example.com', name: 'Secret', password: 'correct horse battery staple' });
    const user = created.value!;
    const users = [user, await manager.findById(user.id), await manager.findByEmail('secret-logs@example.com'), await manager.findByName('secret-logs@example.com')];
    for (const found of users) {
      expect(found!.passwordHash).toMatch(/\$2[aby]\$/); // bcrypt
      expect(found!.securityStamp.length).toBeGreaterThan(10);
      for (const line of logged(found)) {
        expect(line).not.toContain(found!.passwordHash!);
        expect(line).not.toContain(found!.securityStamp);
        expect(line).toContain('[redacted]');
        expect(line).toContain('secret-logs@example.com'); // the rest is still logged
      }
    }
    expect(await manager.checkPassword(users[1]!, 'correct horse battery staple')).toBe(true);
  });

  it('the redaction follows later changes of the same object and leaves copies, keys and equality alone', async () => {
    const user = (await manager.createUser({ email: 'secret-copy@example.com', name: 'Copy', password: 'correct horse battery staple' })).value!;
    expect(Object.keys(user)).toContain('passwordHash');
    expect({ ...user }.passwordHash).toBe(user.passwordHash); // a copy carries the secrets...
    expect(structuredClone(user).securityStamp).toBe(user.securityStamp);
    expect(await manager.findById(user.id)).toEqual({ ...user }); // ...and plain-object equality holds
    expect((await manager.changePassword(user, 'correct horse battery staple', 'another passphrase of mine')).succeeded).toBe(true);
    for (const line of logged(user)) {
      expect(line).not.toContain(user.passwordHash!);
      expect(line).not.toContain(user.securityStamp);
    }
    expect(JSON.parse(JSON.stringify(user))).toMatchObject({ email: 'secret-copy@example.com', passwordHash: '[redacted]', securityStamp: '[redacted]' });
  });

  it('a marked plain user stays a plain object: its prototype is Object.prototype (what lodash isPlainObject and node:assert deepStrictEqual check)', async () => {
    const user = (await manager.createUser({ email: 'secret-plain@example.com', name: 'Plain', password: 'correct horse battery staple' })).value!;
    const found = (await manager.findById(user.id))!;
    for (const marked of [user, found, redactSecretsWhenLogged({ ...found })]) {
      expect(Object.getPrototypeOf(marked) === Object.prototype, 'Object.getPrototypeOf(user) === Object.prototype').toBe(true);
      expect(isDeepStrictEqual(marked, { ...marked }), 'util.isDeepStrictEqual(user, { ...user })').toBe(true);
      expect(JSON.stringify(marked)).not.toContain(found.securityStamp);
    }
  });
});
