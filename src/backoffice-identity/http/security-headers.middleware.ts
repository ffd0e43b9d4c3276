import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { routedPath } from './http-platform.js';

/** The headers of every answer under the route prefix (see {@link BackOfficeSecurityHeadersMiddleware}). */
export const BACKOFFICE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'X-Content-Type-Options': 'nosniff',
};

/**
 * On every answer under the route prefix (errors included): `Cache-Control: no-store` (answers carry
 * secrets such as a TOTP secret or recovery codes, and personal data; ASVS 4.0 8.2.1), `Pragma: no-cache`
 * for HTTP/1.0 caches, `X-Content-Type-Options: nosniff`, and no `X-Powered-By` naming the stack.
 * The host app's other routes are left alone. Express parses bodies before any middleware runs: the exception
 * filter sets the same headers on its parser's errors.
 */
@Injectable()
export class BackOfficeSecurityHeadersMiddleware implements NestMiddleware {
  private readonly prefix: string;

  constructor(@Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions) {
    // Express routes paths case-insensitively by default (`/BackOffice/auth/...`) and Fastify decodes escapes
    // (`/%62ackoffice/auth/...`): both reach the module's routes, so the prefix is compared with the routed path.
    this.prefix = `/${options.routePrefix}`.toLowerCase();
  }

  use(request: IncomingMessage, response: ServerResponse, next: () => void): void {
    const path = routedPath((request as { originalUrl?: string }).originalUrl ?? request.url ?? '');
    if (path === this.prefix || path.startsWith(`${this.prefix}/`)) {
      for (const [name, value] of Object.entries(BACKOFFICE_SECURITY_HEADERS)) response.setHeader(name, value);
      response.removeHeader('X-Powered-By');
    }
    next();
  }
}
