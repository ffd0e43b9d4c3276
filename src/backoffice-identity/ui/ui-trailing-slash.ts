import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage } from 'node:http';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/**
 * `/backoffice/` (the address people type and the URL) on Fastify, which, unlike Express, routes it apart
 * from `/backoffice`: a 302 to `/backoffice`, keeping the query. Nothing to do on Express, nor when the host's
 * Fastify instance already ignores trailing slashes (the route then exists and registering it again is refused).
 */
@Injectable()
export class BackOfficeUiTrailingSlash implements OnModuleInit {
  private readonly logger = new Logger('BackOfficeIdentity');

  constructor(
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!this.options.ui.enabled || !adapter || adapter.getType() !== 'fastify') return;
    const base = `/${this.options.routePrefix}`;
    try {
      adapter.get(`${base}/`, (request: IncomingMessage, response: unknown) => {
        const url = request.url ?? '';
        const query = url.includes('?') ? url.slice(url.indexOf('?')) : '';
        adapter.redirect(response, 302, `${base}${query}`);
      });
    } catch (error) {
      this.logger.debug?.(`${base}/ is already routed: ${(error as Error).message}`);
    }
  }
}
