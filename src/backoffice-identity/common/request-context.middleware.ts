import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import { BACKOFFICE_IP_RESOLVER } from '../constants.js';
import { requestPath, type BackOfficeHttpRequest } from '../http/http-platform.js';
import { BackOfficeModulePaths } from '../http/module-paths.js';
import type { BackOfficeIpResolver } from './ip-resolver.interface.js';
import { BackOfficeRequestContextStore, type BackOfficeRequestContext } from './request-context.js';

/** The request context of a request: client IP (from the IP resolver), user agent, method and path, no performing user yet. */
export function backOfficeRequestContextOf(request: BackOfficeHttpRequest, ipResolver: BackOfficeIpResolver): BackOfficeRequestContext {
  const userAgent = request.headers['user-agent'];
  return {
    ipAddress: ipResolver.resolveIp(request).slice(0, 64),
    userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : undefined,
    performingUserId: null,
    method: request.method,
    path: requestPath(request).slice(0, 512),
  };
}

/**
 * Puts the client IP and user agent of each request under the module's prefix (as the routers match it: any case,
 * escapes decoded, below Nest's global prefix) into the async request context. Every other request runs with an
 * empty store of its own (`isolate`): host routes guarded by `BackOfficeAuthGuard` get the same context from the
 * guard, and the context of one request never reaches the next one on the same connection.
 */
@Injectable()
export class BackOfficeRequestContextMiddleware implements NestMiddleware {
  constructor(
    @Inject(BACKOFFICE_IP_RESOLVER) private readonly ipResolver: BackOfficeIpResolver,
    @Inject(BackOfficeModulePaths) private readonly modulePaths: BackOfficeModulePaths,
  ) {}

  use(request: BackOfficeHttpRequest, _response: unknown, next: () => void): void {
    if (this.modulePaths.contains(requestPath(request))) BackOfficeRequestContextStore.run(backOfficeRequestContextOf(request, this.ipResolver), next);
    else BackOfficeRequestContextStore.isolate(next);
  }
}
