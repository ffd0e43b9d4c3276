import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { BackOfficeHttpError } from './backoffice-http-error.js';

/**
 * Unauthenticated state-changing routes (login, second factor, reset, invite acceptance) take JSON only:
 * an HTML form on another site can post `application/x-www-form-urlencoded` or `text/plain` cross-site, but
 * not `application/json` without a CORS preflight, so this closes login CSRF. 415 `unsupported_media_type`.
 */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<IncomingMessage>();
    const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') {
      throw new BackOfficeHttpError(415, 'unsupported_media_type', 'Send the body as application/json.');
    }
    return true;
  }
}
