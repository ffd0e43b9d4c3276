import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata, UseGuards } from '@nestjs/common';
import { ApiCookieAuth } from '@nestjs/swagger';
import { toBackOfficeUserDto, type BackOfficeUserDto } from '../users/backoffice-user.js';
import {
  BACKOFFICE_AUTHORIZE_METADATA,
  BackOfficeAuthGuard,
  type BackOfficeAuthenticatedRequest,
  type BackOfficeAuthorizeOptions,
} from './backoffice-auth.guard.js';

/**
 * Protects a controller or route with the back-office session: 401 without a live session, 403 `xsrf_failed`
 * on a state-changing request without the XSRF header, 403 `forbidden` outside `groups`.
 *
 * ```ts
 * @BackOfficeAuthorize({ groups: ['admin'] })
 * @Get('reports') reports(@CurrentBackOfficeUser() user: BackOfficeUserDto) { ... }
 * ```
 */
export const BackOfficeAuthorize = (options: BackOfficeAuthorizeOptions = {}) =>
  applyDecorators(SetMetadata(BACKOFFICE_AUTHORIZE_METADATA, options), UseGuards(BackOfficeAuthGuard), ApiCookieAuth('backoffice_session'));

/** The signed-in user (public shape) of a route protected by `@BackOfficeAuthorize()`. */
export const CurrentBackOfficeUser = createParamDecorator((_data: unknown, context: ExecutionContext): BackOfficeUserDto | undefined => {
  const request = context.switchToHttp().getRequest<BackOfficeAuthenticatedRequest>();
  return request.backOffice ? toBackOfficeUserDto(request.backOffice.user, new Date()) : undefined;
});
