import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata, UseGuards } from '@nestjs/common';
import { ApiCookieAuth, ApiResponse } from '@nestjs/swagger';
import { ErrorResponse } from '../auth/auth.dto.js';
import { toBackOfficeUserDto, type BackOfficeUserDto } from '../users/backoffice-user.js';
import {
  BACKOFFICE_AUTHORIZE_METADATA,
  BACKOFFICE_RECENT_SIGN_IN_METADATA,
  BackOfficeAuthGuard,
  type BackOfficeAuthenticatedRequest,
  type BackOfficeAuthorizeOptions,
  type RequiresRecentSignInOptions,
} from './backoffice-auth.guard.js';

/**
 * Protects a controller or route with the back-office session: 401 without a live session, 403 `xsrf_failed`
 * on a state-changing request without the XSRF header, 403 `forbidden` outside `groups` or without every one
 * of `permissions` (held through the user's groups; `admin` holds all).
 *
 * ```ts
 * @BackOfficeAuthorize({ permissions: ['reports.export'] })
 * @Get('reports') reports(@CurrentBackOfficeUser() user: BackOfficeUserDto) { ... }
 * ```
 * On a controller and one of its routes, the route's options replace the controller's.
 */
export const BackOfficeAuthorize = (options: BackOfficeAuthorizeOptions = {}) =>
  applyDecorators(SetMetadata(BACKOFFICE_AUTHORIZE_METADATA, options), UseGuards(BackOfficeAuthGuard), ApiCookieAuth('backoffice_session'));

/**
 * Step-up re-authentication for a sensitive route (OWASP ASVS 5.0 7.5.1-7.5.3; ASVS 4.0 3.7.1): the session
 * must have signed in or re-authenticated (`POST /auth/reauthenticate { password }`) within
 * `session.reauthenticationMinutes` (default 5), else 401 `reauthentication_required`. Where the rule depends on
 * the request, call `BackOfficeSessionService.assertRecentSignIn(request.backOffice)` (the same check) instead. Implies `@BackOfficeAuthorize()` (session, XSRF);
 * combine with it for groups. Applies to a route or a whole controller.
 *
 * ```ts
 * @BackOfficeAuthorize({ groups: ['admin'] })
 * @RequiresRecentSignIn()
 * @Delete('api-keys/:id') revokeKey(...) { ... }
 * ```
 */
export const RequiresRecentSignIn = (options: RequiresRecentSignInOptions = {}) =>
  applyDecorators(
    SetMetadata(BACKOFFICE_RECENT_SIGN_IN_METADATA, options),
    UseGuards(BackOfficeAuthGuard),
    ApiCookieAuth('backoffice_session'),
    ApiResponse({
      status: 401,
      type: ErrorResponse,
      description: 'unauthenticated, or reauthentication_required: no sign-in or POST /auth/reauthenticate within the last minutes',
    }),
  );

/**
 * The signed-in user (public shape) of a route protected by `@BackOfficeAuthorize()`; its `state` is derived at the
 * module's clock (`BACKOFFICE_CLOCK`) as the guard read it, as the module's own routes derive it.
 */
export const CurrentBackOfficeUser = createParamDecorator((_data: unknown, context: ExecutionContext): BackOfficeUserDto | undefined => {
  const request = context.switchToHttp().getRequest<BackOfficeAuthenticatedRequest>();
  return request.backOffice ? toBackOfficeUserDto(request.backOffice.user, request.backOffice.authenticatedAt ?? new Date()) : undefined;
});
