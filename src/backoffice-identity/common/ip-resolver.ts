import { Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';

/** Resolves the client IP of a request (used for notifications, audit, sessions and rate limits). */
export interface BackOfficeIpResolver {
  resolveIp(request: IncomingMessage & { ip?: string }): string;
}

/**
 * Default resolver: Express's `req.ip`, which honours the app's `trust proxy` setting,
 * else the socket address. It never reads `X-Forwarded-For` by itself, so clients cannot spoof it.
 */
@Injectable()
export class DefaultIpResolver implements BackOfficeIpResolver {
  resolveIp(request: IncomingMessage & { ip?: string }): string {
    const ip = request.ip ?? request.socket?.remoteAddress ?? 'unknown';
    return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  }
}
