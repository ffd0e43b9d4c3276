import { Inject, Injectable, Logger, Optional, type OnModuleInit } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage } from 'node:http';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import { servedRoutePath } from '../http/http-platform.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/**
 * `/backoffice/` (the address people type and the URL) on Fastify, which, unlike Express, routes it apart
 * from `/backoffice`: a 302 to `/backoffice`, keeping the query. Nothing to do on Express, nor when the host's
 * Fastify instance already ignores trailing slashes (the route then exists and registering it again is refused).
 * Under Nest's global prefix (`app.setGlobalPrefix('api')`, unless the host excluded the UI root from it) the page is
 * `/api/backoffice`: the redirect is registered at `/api/backoffice/` and points there. It was registered at
 * `/backoffice/` whatever the prefix, so on Fastify `/api/backoffice/` answered 404 (Express: the page) and the host's
 * own `/backoffice/` was taken over by a redirect to a path the module does not serve.
 */
@Injectable()
export class BackOfficeUiTrailingSlash implements OnModuleInit {
  private readonly logger = new Logger('BackOfficeIdentity');

  constructor(
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Optional() @Inject(ApplicationConfig) private readonly appConfig?: ApplicationConfig,
  ) {}

  /**
   * Where the UI root is served: `/<routePrefix>`, below Nest's global prefix unless the host excluded it (read at
   * init), in the case the host wrote them (the redirect target; {@link servedRoutePath}).
   */
  private uiRoot(): string {
    return servedRoutePath(this.appConfig, `/${this.options.routePrefix}`);
  }

  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!this.options.ui.enabled || !adapter || adapter.getType() !== 'fastify') return;
    const base = this.uiRoot();
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
