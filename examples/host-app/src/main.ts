import 'reflect-metadata';
import { type INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { BACKOFFICE_USER_MANAGER, setupBackOfficeOpenApi, type BackOfficeUserManager } from 'backoffice-identity';
import { AppModule } from './app.module.js';
import { HostConfig } from './host-config.js';

/** Creates the first admin from BACKOFFICE_ADMIN_EMAIL / BACKOFFICE_ADMIN_PASSWORD when there is no user yet. */
async function ensureFirstAdmin(users: BackOfficeUserManager, config: HostConfig, logger: Logger): Promise<void> {
  if ((await users.store.count()) > 0) return;
  if (!config.adminEmail || !config.adminPassword) {
    logger.warn('no back-office user yet: set BACKOFFICE_ADMIN_EMAIL and BACKOFFICE_ADMIN_PASSWORD to create the first admin');
    return;
  }
  const result = await users.createUser({ email: config.adminEmail, name: 'Administrator', password: config.adminPassword, groups: ['admin'] });
  if (!result.succeeded) {
    throw new Error(`cannot create the first admin: ${result.errors.map((e) => e.description).join(' ')}`);
  }
  logger.log(`first admin created: ${config.adminEmail}`);
}

async function bootstrap(): Promise<void> {
  const logger = new Logger('host-app');
  const options = { logger: ['error', 'warn', 'log'] as Array<'error' | 'warn' | 'log'> };
  // The module works on both Nest HTTP platforms: Express (Nest's default) or Fastify (HTTP_PLATFORM=fastify).
  const app: INestApplication =
    process.env.HTTP_PLATFORM === 'fastify'
      ? await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter(), options)
      : await NestFactory.create(AppModule, options);
  app.enableShutdownHooks();
  const config = app.get(HostConfig);
  await ensureFirstAdmin(app.get<BackOfficeUserManager>(BACKOFFICE_USER_MANAGER), config, logger);
  setupBackOfficeOpenApi(app, { title: 'Host app', swaggerUi: false });
  await app.listen(config.port);
  const { port } = app.getHttpServer().address() as { port: number };
  process.stdout.write(`host-app listening on http://localhost:${port} (${app.getHttpAdapter().getType()})\n`);
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(`host-app: failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
