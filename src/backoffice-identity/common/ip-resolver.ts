import { Injectable } from '@nestjs/common';
import type { BackOfficeHttpRequest } from '../http/http-platform.js';

export type { BackOfficeIpResolver } from './ip-resolver.interface.js';
import type { BackOfficeIpResolver } from './ip-resolver.interface.js';

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
