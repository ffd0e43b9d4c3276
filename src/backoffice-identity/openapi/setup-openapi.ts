import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/** Options of {@link setupBackOfficeOpenApi}. */
export interface BackOfficeOpenApiOptions {
  title?: string;
  version?: string;
  /** Also serve Swagger UI at `/<routePrefix>/docs`. Default true. */
  swaggerUi?: boolean;
}

/**
 * Builds the OpenAPI document of the app (the module's routes and the host's) and serves it at
 * `/<routePrefix>/openapi.json`, with Swagger UI at `/<routePrefix>/docs`. Call before `app.listen()`.
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
  const document = SwaggerModule.createDocument(app, config);
  SwaggerModule.setup(`${resolved.routePrefix}/docs`, app, document, {
    jsonDocumentUrl: `${resolved.routePrefix}/openapi.json`,
    swaggerUiEnabled: options.swaggerUi ?? true,
    raw: ['json'],
  });
  return document;
}
