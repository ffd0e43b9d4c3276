import { Injectable } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, typeOrmOptionsFor } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import pg from 'pg';
import { DataSource } from 'typeorm';
import {
  BACKOFFICE_IDENTITY_OPTIONS,
  BackOfficeIdentityModule,
  BACKOFFICE_PASSWORD_CHECKER,
  BACKOFFICE_PASSWORD_HASHER,
  BACKOFFICE_USER_MANAGER,
  BACKOFFICE_USER_STORE,
  BACKOFFICE_SESSION_STORE,
  BACKOFFICE_PENDING_SIGN_IN_STORE,
  InMemoryBackOfficeSessionStore,
  InMemoryBackOfficeStores,
  TypeOrmBackOfficePendingSignInStore,
  BackOfficeUserManager,
  BackOfficeUserManagerDependencies,
  BcryptPasswordHasher,
  InjectBackOfficeUserManager,
  TypeOrmBackOfficeAuditStore,
  TypeOrmBackOfficeUserStore,
  type BackOfficePasswordChecker,
  type BackOfficeUser,
} from '../../src/backoffice-identity/index.js';

/** The seed's example: a custom manager, no constructor of its own. */
class NoTwoFactorUserManager extends BackOfficeUserManager {
  override get supportsUserTwoFactor(): boolean {
    return false;
  }
}

/** A custom manager that records and overrides the password check. */
class MasterKeyUserManager extends BackOfficeUserManager {
  static calls = 0;
  override async checkPassword(user: BackOfficeUser, password: string): Promise<boolean> {
    MasterKeyUserManager.calls++;
    return password === 'open sesame master key' || super.checkPassword(user, password);
  }
}

/** A custom manager with an extra dependency of its own. */
@Injectable()
class Greeter {
  greet = (name: string) => `hello ${name}`;
}
@Injectable()
class ManagerWithDependency extends BackOfficeUserManager {
  constructor(deps: BackOfficeUserManagerDependencies, readonly greeter: Greeter) {
    super(deps);
  }
}

/** A store without the two-factor capability. */
@Injectable()
class StoreWithoutTwoFactor extends TypeOrmBackOfficeUserStore {}
Object.defineProperty(StoreWithoutTwoFactor.prototype, 'setTwoFactorEnabled', { value: undefined });

@Injectable()
class ConsumerOfManager {
  constructor(@InjectBackOfficeUserManager() readonly manager: BackOfficeUserManager) {}
}

describe('Swapping the user manager and its parts', () => {
  let db: TestDatabase;
  const password = 'correct horse battery staple';
  let counter = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function userWith2fa(manager: BackOfficeUserManager) {
    const created = await manager.createUser({ email: `swap${++counter}@example.com`, name: 'Swap', password });
    const user = created.value!;
    await manager.setTwoFactorEnabled(user, true);
    return user;
  }

  it('forRoot({ userManager }): the sign-in flow and every consumer get the custom manager', async () => {
    const ctx = await createIdentityApp(db, { identity: { userManager: NoTwoFactorUserManager }, providers: [ConsumerOfManager] });
    try {
      expect(ctx.userManager).toBeInstanceOf(NoTwoFactorUserManager);
      expect(ctx.signInManager.userManager).toBe(ctx.userManager);
      expect(ctx.app.get(ConsumerOfManager).manager).toBe(ctx.userManager);
      // the user turned 2FA on, but the custom manager does not support it: plain success
      const user = await userWith2fa(ctx.userManager);
      expect((await ctx.signInManager.passwordSignIn(user.email, password)).status).toBe('success');
    } finally {
      await ctx.close();
    }
  });

  it('without the swap, the same user requires two-factor (control)', async () => {
    const ctx = await createIdentityApp(db);
    try {
      const user = await userWith2fa(ctx.userManager);
      expect((await ctx.signInManager.passwordSignIn(user.email, password)).status).toBe('requiresTwoFactor');
    } finally {
      await ctx.close();
    }
  });

  it('overrideProvider(BACKOFFICE_USER_MANAGER): the sign-in flow calls the override', async () => {
    const ctx = await createIdentityApp(db, {
      override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(MasterKeyUserManager),
    });
    try {
      expect(ctx.userManager).toBeInstanceOf(MasterKeyUserManager);
      const created = await ctx.userManager.createUser({ email: `swap${++counter}@example.com`, name: 'Swap', password });
      const before = MasterKeyUserManager.calls;
      expect((await ctx.signInManager.passwordSignIn(created.value!.email, 'open sesame master key')).status).toBe('success');
      expect(MasterKeyUserManager.calls).toBe(before + 1);
    } finally {
      await ctx.close();
    }
  });

  it('forRootAsync with a swapped manager works the same', async () => {
    const ctx = await createIdentityApp(db, { async: true, identity: { userManager: { useClass: MasterKeyUserManager } } });
    try {
      const created = await ctx.userManager.createUser({ email: `swap${++counter}@example.com`, name: 'Swap', password });
      expect((await ctx.signInManager.passwordSignIn(created.value!.email, 'open sesame master key')).status).toBe('success');
    } finally {
      await ctx.close();
    }
  });

  it('forRootAsync: a routePrefix given beside useFactory mounts the routes there, and the errors and links follow it', async () => {
    const ctx = await createIdentityApp(db, { async: true, identity: { routePrefix: 'admin-area', publicUrl: 'http://localhost:1' } });
    try {
      const http = new HttpClient(ctx.url, '/admin-area');
      const created = await ctx.userManager.createUser({ email: `prefix${++counter}@example.com`, name: 'Prefix', password });
      expect((await http.post('/auth/login', { username: created.value!.email, password })).status).toBe(200);
      // the module's error shape on its own prefix, Nest's default on the old one (nothing mounted there)
      const refused = await http.fresh().post('/auth/login', { username: created.value!.email, password: 'wrong' });
      expect(refused.body).toMatchObject({ statusCode: 401, code: 'invalid_credentials' });
      const old = await new HttpClient(ctx.url, '/backoffice').post('/auth/login', { username: created.value!.email, password });
      expect(old.status).toBe(404);
      expect(old.body.code).toBeUndefined();
      expect(ctx.app.get(BACKOFFICE_IDENTITY_OPTIONS).routePrefix).toBe('admin-area');
    } finally {
      await ctx.close();
    }
  });

  it('forRootAsync: a routePrefix returned only by the factory is refused at start-up with a clear error', async () => {
    const module = BackOfficeIdentityModule.forRootAsync({ useFactory: async () => ({ routePrefix: 'elsewhere' }) });
    const builder = Test.createTestingModule({ imports: [TypeOrmModule.forRoot({ ...typeOrmOptionsFor(db), manualInitialization: true }), EventEmitterModule.forRoot({ wildcard: true }), module] });
    await expect(builder.compile()).rejects.toThrow(/option "routePrefix" is mounted at "\/backoffice" before useFactory runs; pass it beside useFactory/);
  });

  it('a custom manager with its own constructor dependencies is built by DI', async () => {
    const ctx = await createIdentityApp(db, { identity: { userManager: ManagerWithDependency, extraProviders: [Greeter] } });
    try {
      expect((ctx.userManager as ManagerWithDependency).greeter.greet('x')).toBe('hello x');
      expect(ctx.userManager.options.password.hashCost).toBe(4);
    } finally {
      await ctx.close();
    }
  });

  it('a store without UserTwoFactorStore turns supportsUserTwoFactor off', async () => {
    const ctx = await createIdentityApp(db, { identity: { userStore: StoreWithoutTwoFactor } });
    try {
      expect(ctx.app.get(BACKOFFICE_USER_STORE)).toBeInstanceOf(StoreWithoutTwoFactor);
      expect(ctx.userManager.supportsUserTwoFactor).toBe(false);
      expect(ctx.userManager.supportsUserLockout).toBe(true);
      const created = await ctx.userManager.createUser({ email: `swap${++counter}@example.com`, name: 'Swap', password });
      expect((await ctx.userManager.setTwoFactorEnabled(created.value!, true)).errors[0].code).toBe('not_supported');
    } finally {
      await ctx.close();
    }
  });

  it('a password checker ("LDAP first") is asked before the local hash: valid, invalid and fallback', async () => {
    const answers = new Map<string, 'valid' | 'invalid' | 'fallback'>();
    const checker: BackOfficePasswordChecker = { checkPassword: async (user) => answers.get(user.email) ?? 'fallback' };
    const ctx = await createIdentityApp(db, { identity: { passwordChecker: { useValue: checker } } });
    try {
      expect(ctx.app.get(BACKOFFICE_PASSWORD_CHECKER)).toBe(checker);
      const make = async () => (await ctx.userManager.createUser({ email: `ldap${++counter}@example.com`, name: 'L', password })).value!;
      const valid = await make();
      const invalid = await make();
      const fallback = await make();
      answers.set(valid.email, 'valid');
      answers.set(invalid.email, 'invalid');
      expect((await ctx.signInManager.passwordSignIn(valid.email, 'anything the directory accepts')).status).toBe('success');
      expect((await ctx.signInManager.passwordSignIn(invalid.email, password)).status).toBe('failed');
      expect((await ctx.signInManager.passwordSignIn(fallback.email, password)).status).toBe('success');
    } finally {
      await ctx.close();
    }
  });

  it('overrideProvider(BACKOFFICE_PASSWORD_HASHER) reaches the manager', async () => {
    class CountingHasher extends BcryptPasswordHasher {
      hashes = 0;
      override hashPassword(pw: string) {
        this.hashes++;
        return super.hashPassword(pw);
      }
    }
    const ctx = await createIdentityApp(db, { override: (b) => b.overrideProvider(BACKOFFICE_PASSWORD_HASHER).useClass(CountingHasher) });
    try {
      await ctx.userManager.createUser({ email: `hash${++counter}@example.com`, name: 'H', password });
      expect((ctx.app.get(BACKOFFICE_PASSWORD_HASHER) as CountingHasher).hashes).toBeGreaterThanOrEqual(1);
    } finally {
      await ctx.close();
    }
  });

  it('a wrong option fails start-up with a message naming it', async () => {
    await expect(createIdentityApp(db, { identity: { lockout: { maxFailedAccessAttempts: 0 } } })).rejects.toThrow(/lockout\.maxFailedAccessAttempts/);
    await expect(createIdentityApp(db, { async: true, identity: { password: { hashCost: 99 } } })).rejects.toThrow(/password\.hashCost/);
  });

  it('sessionStore: sessions live in the swapped store (none in backoffice_session); the others stay TypeORM', async () => {
    const sessions = new InMemoryBackOfficeSessionStore();
    const ctx = await createIdentityApp(db, { identity: { sessionStore: { useValue: sessions } } });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      expect(ctx.app.get(BACKOFFICE_SESSION_STORE)).toBe(sessions);
      expect(ctx.app.get(BACKOFFICE_PENDING_SIGN_IN_STORE)).toBeInstanceOf(TypeOrmBackOfficePendingSignInStore);
      const created = (await ctx.userManager.createUser({ email: `sessions${++counter}@example.com`, name: 'S', password })).value!;
      const before = Number((await client.query('SELECT count(*) AS n FROM backoffice_session')).rows[0].n);
      const http = new HttpClient(ctx.url);
      expect((await http.login(created.email, password)).status).toBe(200);
      expect((await http.get('/auth/me')).status).toBe(200);
      expect((await sessions.listLive(created.id, created.securityStamp, new Date(), new Date(0))).length).toBe(1);
      expect(Number((await client.query('SELECT count(*) AS n FROM backoffice_session')).rows[0].n)).toBe(before);
      expect((await http.post('/auth/logout')).status).toBe(200);
      expect((await http.get('/auth/me')).status).toBe(401);
    } finally {
      await client.end();
      await ctx.close();
    }
  });

  it("a host module declaring an exported TypeORM store as its own provider gets it built on the host's DataSource", async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [TypeOrmModule.forRoot(typeOrmOptionsFor(db))],
      providers: [TypeOrmBackOfficeAuditStore, TypeOrmBackOfficeUserStore],
    }).compile();
    try {
      const audit = moduleRef.get(TypeOrmBackOfficeAuditStore);
      expect(audit.writesWith(moduleRef.get(DataSource))).toBe(true);
      expect(Array.isArray((await audit.list({ take: 1 })).items)).toBe(true);
      expect(await moduleRef.get(TypeOrmBackOfficeUserStore).findById('00000000-0000-4000-8000-000000000000')).toBeNull();
    } finally {
      await moduleRef.close();
    }
  });

  it('in-memory stores configured, overrideProvider(BACKOFFICE_USER_STORE).useClass(TypeOrmBackOfficeUserStore): users land in the database', async () => {
    const ctx = await createIdentityApp(db, {
      identity: { stores: InMemoryBackOfficeStores.create() },
      override: (b) => b.overrideProvider(BACKOFFICE_USER_STORE).useClass(TypeOrmBackOfficeUserStore),
    });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      expect(ctx.app.get(BACKOFFICE_USER_STORE)).toBeInstanceOf(TypeOrmBackOfficeUserStore);
      const created = (await ctx.userManager.createUser({ email: `override${++counter}@example.com`, name: 'O', password })).value!;
      expect((await client.query('SELECT email FROM backoffice_user WHERE id = $1', [created.id])).rows).toHaveLength(1);
    } finally {
      await client.end();
      await ctx.close();
    }
  });

  it('stores: a whole set swaps every store; a single swap beside it wins; a non-object is refused at start-up', async () => {
    const set = InMemoryBackOfficeStores.create();
    const own = new InMemoryBackOfficeSessionStore(set.userStore.state);
    const ctx = await createIdentityApp(db, { identity: { stores: { ...set, userStore: undefined }, sessionStore: { useValue: own } } });
    try {
      expect(ctx.app.get(BACKOFFICE_SESSION_STORE)).toBe(own);
      expect(ctx.app.get(BACKOFFICE_PENDING_SIGN_IN_STORE)).toBe(set.pendingSignInStore);
      expect(ctx.app.get(BACKOFFICE_USER_STORE)).toBeInstanceOf(TypeOrmBackOfficeUserStore);
    } finally {
      await ctx.close();
    }
    await expect(createIdentityApp(db, { identity: { stores: 'memory' as never } })).rejects.toThrow(/stores/);
  });
});
