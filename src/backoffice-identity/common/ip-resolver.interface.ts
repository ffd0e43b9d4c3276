import type { BackOfficeHttpRequest } from '../http/http-platform.js';

/** Resolves the client IP of a request (used for notifications, audit, sessions and rate limits). */
export interface BackOfficeIpResolver {
  resolveIp(request: BackOfficeHttpRequest): string;
}
