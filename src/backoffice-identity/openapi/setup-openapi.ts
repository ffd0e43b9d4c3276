import { type INestApplication, Logger } from '@nestjs/common';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { setBackOfficeSecurityHeaders } from '../http/security-headers.js';
import type { ServerResponse } from 'node:http';

/** Options of {@link setupBackOfficeOpenApi}. */
export interface BackOfficeOpenApiOptions {
  title?: string;
  version?: string;
  /**
   * Also serve Swagger UI at `/<routePrefix>/docs`. Default true; on Fastify only when `@fastify/static` is
   * installed (Swagger UI needs it there): without it the JSON document is still served, and a warning says why
   * the UI is not.
   */
  swaggerUi?: boolean;
}

const ERROR_SCHEMA = { $ref: '#/components/schemas/ErrorResponse' };

/**
 * Adds the answers every route of the module can give: 503 `database_unavailable` (database unreachable,
 * restarting or past its statement timeout; `Retry-After: 1`), and on routes with a JSON body 400
 * `malformed_json` and `validation_failed` for bodies nested too deep.
 */
function addCommonErrors(document: OpenAPIObject, routePrefix: string): OpenAPIObject {
  for (const [path, item] of Object.entries(document.paths)) {
    if (!path.startsWith(`/${routePrefix}/`)) continue;
    for (const operation of Object.values(item as Record<string, { responses?: Record<string, any>; requestBody?: unknown }>)) {
      if (!operation?.responses) continue;
      operation.responses['503'] ??= {
        description: 'database_unavailable: the database is unreachable, restarting or too slow; retry after Retry-After seconds',
        content: { 'application/json': { schema: ERROR_SCHEMA } },
      };
      if (!operation.requestBody) continue;
      const badRequest = (operation.responses['400'] ??= { description: 'validation_failed', content: { 'application/json': { schema: ERROR_SCHEMA } } });
      if (!/malformed_json/.test(badRequest.description)) badRequest.description += ' / malformed_json: the body is not valid JSON';
      badRequest.description += ' (a body nested deeper than 16 levels: validation_failed with the field code `too_deep`)';
    }
  }
  return document;
}

/**
 * Builds the OpenAPI document of the app (the module's routes and the host's) and serves it at
 * `/<routePrefix>/openapi.json`, with Swagger UI at `/<routePrefix>/docs`, both with the module's security headers.
 * Call before `app.listen()`.
 */
export function setupBackOfficeOpenApi(app: INestApplication, options: BackOfficeOpenApiOptions = {}): OpenAPIObject {
  const resolved = app.get<ResolvedBackOfficeIdentityOptions>(BACKOFFICE_IDENTITY_OPTIONS);
  const config = new DocumentBuilder()
    .setTitle(options.title ?? 'Back-office identity API')
    .setDescription(
      'Back-office login, sessions, invites and user management. Errors are `{ statusCode, code, message, errors? }`. ' +
        'State-changing requests with the session cookie must send `X-XSRF-TOKEN` equal to the `XSRF-TOKEN` cookie.',
    )
    .setVersion(options.version ?? '0.1.0')
    .addCookieAuth(resolved.session.cookieName, { type: 'apiKey', in: 'cookie', name: resolved.session.cookieName }, 'backoffice_session')
    .build();
  const document = addCommonErrors(SwaggerModule.createDocument(app, config), resolved.routePrefix);
  if (app.getHttpAdapter().getType() === 'express') {
    // Express routes these before the module's middleware (which Nest mounts at init, after this call), so they
    // would go without the headers of every other answer below the prefix (no framing, no caching, nosniff).
    const withHeaders = (_request: unknown, response: ServerResponse, next: () => void) => {
      setBackOfficeSecurityHeaders(response);
      next();
    };
    app.use(`/${resolved.routePrefix}/docs`, withHeaders);
    app.use(`/${resolved.routePrefix}/openapi.json`, withHeaders);
  }
  SwaggerModule.setup(`${resolved.routePrefix}/docs`, app, document, {
    jsonDocumentUrl: `${resolved.routePrefix}/openapi.json`,
    swaggerUiEnabled: swaggerUiEnabled(app, options.swaggerUi),
    raw: ['json'],
  });
  return document;
}

/** Swagger UI on Fastify needs `@fastify/static`, which SwaggerModule would otherwise demand by exiting the process. */
function swaggerUiEnabled(app: INestApplication, requested: boolean | undefined): boolean {
  if (requested === false || app.getHttpAdapter().getType() !== 'fastify') return requested ?? true;
  try {
    createRequire(join(process.cwd(), 'package.json')).resolve('@fastify/static');
    return true;
  } catch {
    const reason = 'Swagger UI on Fastify needs the "@fastify/static" package';
    if (requested) throw new Error(`setupBackOfficeOpenApi: ${reason}: install it, or pass { swaggerUi: false }`);
    new Logger('BackOfficeIdentity').warn(`${reason}: not installed, so only the JSON document is served`);
    return false;
  }
}
