import { Injectable } from '@nestjs/common';
import type { BackOfficeHttpRequest } from '../http/http-platform.js';

/** Resolves the client IP of a request (used for notifications, audit, sessions and rate limits). */
export interface BackOfficeIpResolver {
  resolveIp(request: BackOfficeHttpRequest): string;
}

/**
 * Default resolver: the platform's `req.ip`, which honours Express's `trust proxy` / Fastify's `trustProxy`,
 * else the socket address. It never reads `X-Forwarded-For` by itself, so clients cannot spoof it.
 */
@Injectable()
export class DefaultIpResolver implements BackOfficeIpResolver {
  resolveIp(request: BackOfficeHttpRequest): string {
    const ip = request.ip ?? request.socket?.remoteAddress ?? 'unknown';
    return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  }
}
