import type { DynamicModule, INestApplication, LoggerService, NestApplicationOptions, Provider, Type } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  BACKOFFICE_CLOCK,
  BACKOFFICE_SIGN_IN_MANAGER,
  BACKOFFICE_USER_MANAGER,
  BackOfficeIdentityModule,
  BACKOFFICE_SWAP_KEYS,
  backOfficeIdentityMigrations,
  type BackOfficeIdentityModuleOptions,
  type BackOfficeSignInManager,
  type BackOfficeUser,
  type BackOfficeUserManager,
  type CreateBackOfficeUserInput,
} from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { HttpClient } from './http-client.js';

export type TestHttpPlatform = 'express' | 'fastify';

/** The Nest HTTP platform of the suites: `TEST_HTTP_PLATFORM` of the Vitest project (default Express). */
export const httpPlatform = (): TestHttpPlatform => (process.env.TEST_HTTP_PLATFORM === 'fastify' ? 'fastify' : 'express');

/** A clock tests can move. */
export class TestClock {
  private offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export interface IdentityAppOptions {
  identity?: BackOfficeIdentityModuleOptions;
  /** Use forRootAsync instead of forRoot. */
  async?: boolean;
  providers?: Provider[];
  controllers?: Type[];
  imports?: DynamicModule[];
  /** Options of the host's `EventEmitterModule.forRoot()` (default `{ wildcard: true }`). */
  eventEmitter?: Parameters<typeof EventEmitterModule.forRoot>[0];
  override?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
  clock?: TestClock;
  /** A logger for the app (default: errors and warnings to the console). */
  logger?: LoggerService;
  /** Port to listen on (default: any free one). */
  port?: number;
  /** The JSON body limit of the platform (Express's JSON parser `limit`, Fastify's `bodyLimit`); default theirs. */
  jsonBodyLimitBytes?: number;
  /** `false`: Nest registers no body parsers (its `bodyParser` option); the host registers its own. */
  bodyParser?: false;
  /** The HTTP platform (default: the project's, {@link httpPlatform}); a parity test boots one app of each. */
  platform?: TestHttpPlatform;
  /** Called after the app is created, before it listens (e.g. to set up OpenAPI). */
  beforeListen?: (app: INestApplication) => void | Promise<void>;
  /** `false`: the app runs no migration at start-up (a database left at an older schema stays so); default true. */
  migrationsRun?: boolean;
}

export interface IdentityApp {
  app: INestApplication;
  url: string;
  clock: TestClock;
  userManager: BackOfficeUserManager;
  signInManager: BackOfficeSignInManager;
  close(): Promise<void>;
}

/** Test defaults: real bcrypt at the lowest cost, so suites stay fast; everything else as shipped. */
export const TEST_IDENTITY_DEFAULTS: BackOfficeIdentityModuleOptions = {
  password: { hashCost: 4 },
  twoFactor: { encryptionKey: 'test-encryption-key-0123456789abcdef' },
};

export function typeOrmOptionsFor(db: TestDatabase, migrationsRun = true) {
  return {
    type: 'postgres' as const,
    url: db.url,
    migrations: backOfficeIdentityMigrations,
    migrationsRun,
    autoLoadEntities: true,
    extra: { max: db.poolSize },
    logging: false as const,
  };
}

/** Boots a Nest app with the module on `db`, listening on a loopback port. */
export async function createIdentityApp(db: TestDatabase, options: IdentityAppOptions = {}): Promise<IdentityApp> {
  const clock = options.clock ?? new TestClock();
  const identity = {
    ...TEST_IDENTITY_DEFAULTS,
    ...options.identity,
    password: { ...TEST_IDENTITY_DEFAULTS.password, ...options.identity?.password },
    clock: options.identity?.clock ?? { useValue: clock },
  };
  const swaps = Object.fromEntries(Object.entries(identity).filter(([key]) => (BACKOFFICE_SWAP_KEYS as readonly string[]).includes(key)));
  const plain = Object.fromEntries(Object.entries(identity).filter(([key]) => !(BACKOFFICE_SWAP_KEYS as readonly string[]).includes(key)));
  const identityModule = options.async
    ? BackOfficeIdentityModule.forRootAsync({ ...swaps, routePrefix: identity.routePrefix, useFactory: async () => plain })
    : BackOfficeIdentityModule.forRoot(identity);
  let builder = Test.createTestingModule({
    imports: [TypeOrmModule.forRoot(typeOrmOptionsFor(db, options.migrationsRun ?? true)), EventEmitterModule.forRoot(options.eventEmitter ?? { wildcard: true }), identityModule, ...(options.imports ?? [])],
    providers: options.providers ?? [],
    controllers: options.controllers ?? [],
  });
  if (options.override) builder = options.override(builder);
  const moduleRef = await builder.compile();
  const appOptions: NestApplicationOptions = { logger: options.logger ?? ['error', 'warn'], ...(options.bodyParser === false ? { bodyParser: false } : {}) };
  const limit = options.jsonBodyLimitBytes;
  let app: INestApplication;
  if ((options.platform ?? httpPlatform()) === 'fastify') {
    app = moduleRef.createNestApplication(new FastifyAdapter(limit === undefined ? {} : { bodyLimit: limit }), appOptions);
  } else {
    app = moduleRef.createNestApplication<NestExpressApplication>(appOptions);
    if (limit !== undefined) (app as NestExpressApplication).useBodyParser('json', { limit });
  }
  await options.beforeListen?.(app);
  await app.listen(options.port ?? 0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  return {
    app,
    url: `http://127.0.0.1:${address.port}`,
    clock: moduleRef.get(BACKOFFICE_CLOCK),
    userManager: moduleRef.get(BACKOFFICE_USER_MANAGER),
    signInManager: moduleRef.get(BACKOFFICE_SIGN_IN_MANAGER),
    close: () => app.close(),
  };
}

/** The password every test user gets unless a test says otherwise. */
export const TEST_PASSWORD = 'correct horse battery staple';

/** A client signed in as `email` through `POST /auth/login` (expects 200: a user without 2FA). */
export async function signedInClient(ctx: Pick<IdentityApp, 'url'>, email: string, password = TEST_PASSWORD): Promise<HttpClient> {
  const client = new HttpClient(ctx.url);
  const res = await client.login(email, password);
  expect(res.status, res.text).toBe(200);
  return client;
}

/**
 * Step-up of a signed-in client: `POST /auth/reauthenticate` with the password (expects 200; the client takes the
 * renewed cookies), for routes that need a recent sign-in once the test clock moved past the sign-in.
 */
export async function reauthenticate(client: HttpClient, password = TEST_PASSWORD): Promise<void> {
  const res = await client.post('/auth/reauthenticate', { password });
  expect(res.status, res.text).toBe(200);
}

/** Creates users with unique emails (`<prefix><n>@example.com`) and the test password; fails the test on errors. */
export function userFactory(getApp: () => IdentityApp, prefix: string) {
  let counter = 0;
  return async (overrides: Partial<CreateBackOfficeUserInput> = {}): Promise<BackOfficeUser> => {
    const result = await getApp().userManager.createUser({
      email: `${prefix}${++counter}@example.com`,
      name: 'Test User',
      password: TEST_PASSWORD,
      ...overrides,
    });
    if (!result.succeeded) throw new Error(`createUser failed: ${result.errors.map((e) => e.code).join(', ')}`);
    return result.value!;
  };
}

/** A suite's app with an admin user: `ctx` and `adminEmail` are set once `beforeAll` ran; `make` creates users. */
export interface AdminAppSuite {
  readonly ctx: IdentityApp;
  readonly adminEmail: string;
  readonly make: ReturnType<typeof userFactory>;
}

/**
 * Registers `beforeAll` / `afterAll` that boot an app on a fresh test database (rate limits off) with one admin
 * (`<prefix>1@example.com`), and close both afterwards (`options`: the app's other options, e.g. a swapped store).
 * Read `ctx` and `adminEmail` inside the tests.
 */
export function adminAppSuite(prefix: string, options: Omit<IdentityAppOptions, 'identity'> = {}): AdminAppSuite {
  let db: TestDatabase | undefined;
  const suite = { make: userFactory(() => suite.ctx, prefix) } as { ctx: IdentityApp; adminEmail: string; make: ReturnType<typeof userFactory> };
  beforeAll(async () => {
    db = await createTestDatabase();
    suite.ctx = await createIdentityApp(db, { ...options, identity: { rateLimits: { enabled: false } } });
    suite.adminEmail = (await suite.make({ groups: ['admin'] })).email;
  });
  afterAll(async () => {
    await suite.ctx?.close();
    await db?.drop();
  });
  return suite;
}
