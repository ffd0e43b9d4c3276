import 'reflect-metadata';
import { type INestApplication, type NestApplicationOptions, ShutdownSignal } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { BACKOFFICE_USER_MANAGER, type BackOfficeUserManager, setupBackOfficeOpenApi } from '../backoffice-identity/index.js';
import { AppModule } from './app.module.js';
import { DemoConfigError, loadDemoConfig, readDotEnvFile } from './demo.config.js';
import { openDemoDatabase } from './demo-database.js';
import { resolveEncryptionKey } from './encryption-key.js';
import { ensureFirstAdmin, FirstAdminError } from './first-admin.bootstrap.js';

const NAME = 'backoffice-identity demo';
/** Docker sends SIGKILL 10 s after SIGTERM: give up a little earlier, with a message. */
const SHUTDOWN_TIMEOUT_MS = 8000;
const SHUTDOWN_SIGNALS = [ShutdownSignal.SIGTERM, ShutdownSignal.SIGINT];

/** Prints why start-up failed and exits 1. No stack trace: Nest has already logged one for its own errors. */
function exitWith(error: unknown): never {
  const message =
    error instanceof DemoConfigError
      ? `invalid environment:\n${error.problems.map((p) => `  - ${p}`).join('\n')}`
      : error instanceof FirstAdminError
        ? error.message
        : `failed to start: ${error instanceof Error ? error.message : String(error)}`;
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(1);
}

/** POST /backoffice/users/import takes up to 1,000 users (with hashes ~300 kB): above Express's 100 kB default. */
const JSON_BODY_LIMIT_BYTES = 2 * 1024 * 1024;

/** The app on Express (Nest's default) or Fastify; Fastify's adapter is loaded only when asked for. */
async function createApp(platform: 'express' | 'fastify', module: Parameters<typeof NestFactory.create>[0], options: NestApplicationOptions): Promise<INestApplication> {
  if (platform === 'express') {
    const app = await NestFactory.create<NestExpressApplication>(module, options);
    app.useBodyParser('json', { limit: JSON_BODY_LIMIT_BYTES });
    return app;
  }
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  // Behind a proxy, pass { trustProxy: '10.0.0.5' } (your proxies' addresses) here, never true: the module reads the
  // client IP from request.ip, and trusting every hop lets clients choose it with X-Forwarded-For.
  return NestFactory.create(module, new FastifyAdapter({ bodyLimit: JSON_BODY_LIMIT_BYTES }), options);
}

async function bootstrap(): Promise<void> {
  readDotEnvFile();
  const loaded = loadDemoConfig();
  const config = { ...loaded, encryptionKey: resolveEncryptionKey(loaded.encryptionKey, loaded.dataDir).key };
  const database = await openDemoDatabase(config.database);
  let app: INestApplication | undefined;
  try {
    app = await createApp(config.httpPlatform, AppModule.forRoot(config, database), { logger: ['error', 'warn'], abortOnError: false });
    // SIGTERM / SIGINT: close the app (and, through DemoDatabaseShutdown, the embedded PGlite), then exit 0.
    app.enableShutdownHooks(SHUTDOWN_SIGNALS, { useProcessExit: true });
    for (const signal of SHUTDOWN_SIGNALS) {
      process.once(signal, () => {
        setTimeout(() => {
          process.stderr.write(`${NAME}: shutdown took longer than ${SHUTDOWN_TIMEOUT_MS} ms, exiting\n`);
          process.exit(1);
        }, SHUTDOWN_TIMEOUT_MS).unref();
      });
    }

    const admin = await ensureFirstAdmin(app.get<BackOfficeUserManager>(BACKOFFICE_USER_MANAGER), config);
    if (admin.created && admin.generatedPassword) {
      process.stdout.write(
        `==== FIRST ADMIN CREATED: ${admin.email}  PASSWORD: ${admin.generatedPassword}  ` +
          '(printed only this once: store it now, change it after the first login) ====\n',
      );
    } else if (admin.created) {
      process.stdout.write(`${NAME}: first admin created: ${admin.email} (password from BACKOFFICE_ADMIN_PASSWORD)\n`);
    }

    // OpenAPI document at /backoffice/openapi.json, Swagger UI at /backoffice/docs.
    setupBackOfficeOpenApi(app, { title: 'backoffice-identity demo' });

    // Fastify listens on localhost only unless told otherwise; Express on every interface (e.g. in Docker).
    await (config.httpPlatform === 'fastify' ? app.listen(config.port, '0.0.0.0') : app.listen(config.port));
  } catch (error) {
    await app?.close().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw error;
  }
  const { port } = app.getHttpServer().address() as { port: number };
  process.stdout.write(`${NAME} listening on http://localhost:${port} (database: ${database.description})\n`);
}

bootstrap().catch(exitWith);
