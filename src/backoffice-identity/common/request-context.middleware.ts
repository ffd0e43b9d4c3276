import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import { BACKOFFICE_IP_RESOLVER } from '../constants.js';
import type { BackOfficeHttpRequest } from '../http/http-platform.js';
import type { BackOfficeIpResolver } from './ip-resolver.js';
import { BackOfficeRequestContextStore } from './request-context.js';

/** Puts the client IP and user agent of each request into the async request context. */
@Injectable()
export class BackOfficeRequestContextMiddleware implements NestMiddleware {
  constructor(@Inject(BACKOFFICE_IP_RESOLVER) private readonly ipResolver: BackOfficeIpResolver) {}

  use(request: BackOfficeHttpRequest, _response: unknown, next: () => void): void {
    const userAgent = request.headers['user-agent'];
    BackOfficeRequestContextStore.run(
      {
        ipAddress: this.ipResolver.resolveIp(request).slice(0, 64),
        userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : undefined,
        performingUserId: null,
      },
      next,
    );
  }
}
