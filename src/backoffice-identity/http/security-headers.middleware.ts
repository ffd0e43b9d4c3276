import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BackOfficeModulePaths } from './module-paths.js';

/** The headers of every answer under the route prefix (see {@link BackOfficeSecurityHeadersMiddleware}). */
export const BACKOFFICE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'X-Content-Type-Options': 'nosniff',
};

/**
 * On every answer under the route prefix (below Nest's global prefix, if any; errors included):
 * `Cache-Control: no-store` (answers carry secrets such as a TOTP secret or recovery codes, and personal data;
 * ASVS 4.0 8.2.1), `Pragma: no-cache` for HTTP/1.0 caches, `X-Content-Type-Options: nosniff`, and no
 * `X-Powered-By` naming the stack.
 * The host app's other routes are left alone. Express parses bodies before any middleware runs: the exception
 * filter sets the same headers on its parser's errors.
 */
@Injectable()
export class BackOfficeSecurityHeadersMiddleware implements NestMiddleware {
  constructor(@Inject(BackOfficeModulePaths) private readonly modulePaths: BackOfficeModulePaths) {}

  use(request: IncomingMessage, response: ServerResponse, next: () => void): void {
    // Express routes paths case-insensitively by default (`/BackOffice/auth/...`) and Fastify decodes escapes
    // (`/%62ackoffice/auth/...`): both reach the module's routes, so the path is compared as the routers match it.
    if (this.modulePaths.contains((request as { originalUrl?: string }).originalUrl ?? request.url ?? '')) {
      for (const [name, value] of Object.entries(BACKOFFICE_SECURITY_HEADERS)) response.setHeader(name, value);
      response.removeHeader('X-Powered-By');
    }
    next();
  }
}
