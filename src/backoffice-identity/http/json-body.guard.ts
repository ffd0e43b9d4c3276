import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { BackOfficeHttpError } from './backoffice-http-error.js';
import type { BackOfficeHttpRequest } from './http-platform.js';
import { requestMediaType } from './readable-body.js';

/**
 * Unauthenticated state-changing routes (login, second factor, reset, invite acceptance) take JSON only:
 * an HTML form on another site can post `application/x-www-form-urlencoded` or `text/plain` cross-site, but
 * not `application/json` without a CORS preflight, so this closes login CSRF. 415 `unsupported_media_type`.
 */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<BackOfficeHttpRequest>();
    const type = requestMediaType(request);
    if (type !== 'application/json') {
      throw BackOfficeHttpError.unsupportedMediaType();
    }
    return true;
  }
}
