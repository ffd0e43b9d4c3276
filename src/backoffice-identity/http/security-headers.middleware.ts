import { Inject, Injectable, type NestMiddleware, Optional } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { isUnderBasePath, moduleBasePath, moduleGlobalPrefix } from './http-platform.js';

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
  private readonly routePrefix: string;
  /** The module's base path, Nest's global prefix included (read at the first request: hosts set it after the module is built). */
  private base?: string;

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Optional() @Inject(ApplicationConfig) private readonly appConfig?: ApplicationConfig,
  ) {
    this.routePrefix = options.routePrefix;
  }

  use(request: IncomingMessage, response: ServerResponse, next: () => void): void {
    // Express routes paths case-insensitively by default (`/BackOffice/auth/...`) and Fastify decodes escapes
    // (`/%62ackoffice/auth/...`): both reach the module's routes, so the path is compared as the routers match it.
    this.base ??= moduleBasePath(this.routePrefix, moduleGlobalPrefix(this.appConfig, this.routePrefix).prefix);
    if (isUnderBasePath((request as { originalUrl?: string }).originalUrl ?? request.url ?? '', this.base)) {
      for (const [name, value] of Object.entries(BACKOFFICE_SECURITY_HEADERS)) response.setHeader(name, value);
      response.removeHeader('X-Powered-By');
    }
    next();
  }
}
