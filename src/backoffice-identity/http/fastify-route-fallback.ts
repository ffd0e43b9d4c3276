import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/** The part of a Fastify instance this class uses (so the module needs no Fastify types). */
interface FastifyRouting {
  addHook(name: 'onRoute', hook: (route: { url?: string; path?: string }) => void): unknown;
  route(options: { method: string[]; url: string; handler: (request: unknown, reply: { callNotFound(): void }) => void }): unknown;
}

/** Every method Fastify routes without extra configuration, OPTIONS excepted (left to CORS hooks and the 404 route). */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Fastify's router refuses a request whose route parameter is longer than `maxParamLength` (100 characters by
 * default) with its own 414 body before any hook, Nest filter or module code runs, where Express routes it and
 * the module answers (404 for every id of the module, none of which is that long). So that a host needs no
 * router options, this registers on Fastify a wildcard route `<base>/*` under each path the module's routes are
 * mounted on (the host's global prefix included), whose handler is Fastify's not-found handler
 * (`reply.callNotFound()`): the router matches the wildcard instead of refusing the request, and the answer is
 * the module's 404 `not_found`, exactly as for any unknown path under the prefix. Fastify's router always tries
 * static and parametric routes before a wildcard, so no route of the module or the host is shadowed; a base the
 * host already routes with a wildcard is left alone. Nothing happens on Express.
 */
@Injectable()
export class BackOfficeFastifyRouteFallback implements OnModuleInit {
  private readonly logger = new Logger('BackOfficeIdentity');
  private readonly bases = new Set<string>();
  private readonly segment: string;

  constructor(
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
  ) {
    this.segment = `/${options.routePrefix}/`;
  }

  /**
   * Starts watching the routes Nest registers (called while the module's middleware is configured, which Nest
   * does before it registers the routes), to learn the full paths (global prefix included) of the module.
   */
  watchRoutes(): void {
    const fastify = this.fastify();
    if (!fastify) return;
    fastify.addHook('onRoute', (route) => {
      const url = route.url ?? route.path ?? '';
      const at = url.indexOf(this.segment);
      if (at !== -1 && !url.includes('*')) this.bases.add(url.slice(0, at + this.segment.length));
    });
  }

  /** Registers the wildcard routes (Nest has registered its routes by now). */
  onModuleInit(): void {
    const fastify = this.fastify();
    if (!fastify) return;
    for (const base of this.bases) {
      try {
        fastify.route({ method: METHODS, url: `${base}*`, handler: (_request, reply) => reply.callNotFound() });
      } catch (error) {
        this.logger.debug?.(`${base}* is already routed: ${(error as Error).message}`);
      }
    }
  }

  private fastify(): FastifyRouting | undefined {
    const adapter = this.adapterHost?.httpAdapter;
    return adapter?.getType() === 'fastify' ? (adapter.getInstance() as FastifyRouting) : undefined;
  }
}
