import { Inject, Injectable, Logger, Optional, type OnModuleInit } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import { requestPath, requestRawQuery, servedRoutePath, type BackOfficeHttpRequest } from '../http/http-platform.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/** The pages below the UI root (`BackOfficeUiController`'s page routes). */
const UI_PAGES = ['two-factor', 'forgot-password', 'reset-password', 'accept-invite', 'confirm-email', 'account'];

/**
 * `/backoffice/` (the address people type and the URL) on Fastify, which, unlike Express, routes it apart
 * from `/backoffice`: a 302 to `/backoffice`, keeping the query. Nothing to do on Express, nor when the host's
 * Fastify instance already ignores trailing slashes (the route then exists and registering it again is refused).
 * Under Nest's global prefix (`app.setGlobalPrefix('api')`, unless the host excluded the UI root from it) the page is
 * `/api/backoffice`: the redirect is registered at `/api/backoffice/` and points there. It was registered at
 * `/backoffice/` whatever the prefix, so on Fastify `/api/backoffice/` answered 404 (Express: the page) and the host's
 * own `/backoffice/` was taken over by a redirect to a path the module does not serve.
 *
 * The pages with a trailing slash (`/backoffice/account/`) and the UI root get the same 302 to the page's own path on
 * both platforms ({@link redirectTrailingSlash}, from the module's middleware): Express served the page there and
 * Fastify answered 404. The target is the module's own path for that page (never built from the request's path, so
 * no `//host` target can come of it) and the query as sent.
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

  /** The page paths with a trailing slash (`/backoffice/`, `/backoffice/account/`) and where each redirects. */
  private targets?: Map<string, string>;

  /**
   * Answers a GET or HEAD of a page's path with a trailing slash (exactly as the module serves it, global prefix
   * included) with a 302 to the page's path, the query kept as sent, and tells whether it did. Called by the module's
   * middleware on both platforms, so they answer alike (Express served the page, Fastify answered 404).
   */
  redirectTrailingSlash(request: BackOfficeHttpRequest, response: ServerResponse): boolean {
    if (!this.options.ui.enabled || (request.method !== 'GET' && request.method !== 'HEAD')) return false;
    if (!this.targets) {
      const root = this.uiRoot();
      this.targets = new Map([[`${root}/`, root], ...UI_PAGES.map((page): [string, string] => [`${root}/${page}/`, `${root}/${page}`])]);
    }
    const target = this.targets.get(requestPath(request));
    if (target === undefined) return false;
    const query = requestRawQuery(request);
    response.statusCode = 302;
    response.setHeader('Location', query === undefined ? target : `${target}?${query}`);
    response.setHeader('Content-Length', '0');
    response.end();
    return true;
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
