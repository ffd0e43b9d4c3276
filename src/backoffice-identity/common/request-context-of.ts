import { requestPath, requestRawQuery, type BackOfficeHttpRequest } from '../http/http-platform.js';
import type { BackOfficeIpResolver } from './ip-resolver.interface.js';
import type { BackOfficeRequestContext } from './request-context.js';

/** The request context of a request: client IP (from the IP resolver), user agent, method, path and query string, no performing user yet. */
export function backOfficeRequestContextOf(request: BackOfficeHttpRequest, ipResolver: BackOfficeIpResolver, path = requestPath(request)): BackOfficeRequestContext {
  const userAgent = request.headers['user-agent'];
  return {
    ipAddress: ipResolver.resolveIp(request).slice(0, 64),
    userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : undefined,
    performingUserId: null,
    method: request.method,
    path: path.slice(0, 512),
    rawQuery: requestRawQuery(request),
  };
}
