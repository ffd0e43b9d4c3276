import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { BackOfficeHttpRequest } from '../http/http-platform.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import { BackOfficeSessionService, type BackOfficeAuthentication } from './backoffice-session.service.js';
import { BackOfficeSessionCookies } from './session-cookies.js';

export const BACKOFFICE_AUTHORIZE_METADATA = 'backoffice:authorize';
export const BACKOFFICE_RECENT_SIGN_IN_METADATA = 'backoffice:recent-sign-in';

/** Options of `@RequiresRecentSignIn()`. */
export interface RequiresRecentSignInOptions {
  /** Minutes a sign-in or re-authentication counts as recent here. Default: `session.reauthenticationMinutes` (5). */
  withinMinutes?: number;
}

/** Options of `@BackOfficeAuthorize()`. */
export interface BackOfficeAuthorizeOptions {
  /** The user must be in at least one of these groups (aliases), else 403 `forbidden`. */
  groups?: string[];
}

/** A request (Express or Fastify) that passed the guard. */
export type BackOfficeAuthenticatedRequest = BackOfficeHttpRequest & { backOffice: BackOfficeAuthentication & { token: string } };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A safe request with this header set to `1` checks the session without sliding its idle deadline: the
 * sign-in pages and `assets/session.js` use it to see how long a session has left without extending it.
 */
export const SESSION_PEEK_HEADER = 'x-backoffice-session-peek';

/**
 * Authenticates the session cookie; on state-changing methods also checks the XSRF double submit
 * (403 `xsrf_failed`), then the groups of `@BackOfficeAuthorize({ groups })` (403 `forbidden`), then the
 * step-up rule of `@RequiresRecentSignIn()` (401 `reauthentication_required`). Runs once per request even
 * when both decorators add it: a second run reuses the first one's authentication.
 */
@Injectable()
export class BackOfficeAuthGuard implements CanActivate {
  constructor(
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
    @Inject(BackOfficeSessionCookies) private readonly cookies: BackOfficeSessionCookies,
    @Inject(Reflector) private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<BackOfficeAuthenticatedRequest>();
    const auth = request.backOffice ?? (await this.authenticate(request));
    const targets = [context.getHandler(), context.getClass()];
    const options = this.reflector.getAllAndOverride<BackOfficeAuthorizeOptions | undefined>(BACKOFFICE_AUTHORIZE_METADATA, targets);
    if (options?.groups?.length && !BackOfficeAuthGuard.inAnyGroup(auth.user, options.groups)) throw BackOfficeHttpError.forbidden();
    const stepUp = this.reflector.getAllAndOverride<RequiresRecentSignInOptions | undefined>(BACKOFFICE_RECENT_SIGN_IN_METADATA, targets);
    if (stepUp && !this.sessions.isRecentlyAuthenticated(auth.session, stepUp.withinMinutes)) {
      throw BackOfficeHttpError.reauthenticationRequired();
    }
    return true;
  }

  private async authenticate(request: BackOfficeAuthenticatedRequest): Promise<BackOfficeAuthenticatedRequest['backOffice']> {
    const token = this.cookies.readToken(request);
    const safe = SAFE_METHODS.has(request.method ?? 'GET');
    const auth = await this.sessions.authenticate(token, { touch: !(safe && request.headers[SESSION_PEEK_HEADER] === '1') });
    if (!auth || !token) throw BackOfficeHttpError.unauthenticated();
    if (!safe && !this.cookies.checkXsrf(request, token)) {
      throw new BackOfficeHttpError(403, 'xsrf_failed', 'Missing or wrong X-XSRF-TOKEN header.');
    }
    request.backOffice = { ...auth, token };
    BackOfficeRequestContextStore.current().performingUserId = auth.user.id;
    return request.backOffice;
  }

  private static inAnyGroup(user: BackOfficeUser, groups: string[]): boolean {
    return groups.some((g) => user.groups.includes(g));
  }
}
