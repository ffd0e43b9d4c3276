import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { BACKOFFICE_CLOCK, BACKOFFICE_IP_RESOLVER } from '../constants.js';
import type { BackOfficeClock } from '../common/clock.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { backOfficeRequestContextOf } from '../common/request-context-of.js';
import type { BackOfficeIpResolver } from '../common/ip-resolver.interface.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeHttpPlatform, type BackOfficeHttpRequest, type BackOfficeHttpResponse } from '../http/http-platform.js';
import { BackOfficeAccessDenials } from '../permissions/backoffice-access-denials.service.js';
import { BackOfficePermissionRegistry } from '../permissions/backoffice-permissions.js';
import { BackOfficeApiUserService } from '../api-users/backoffice-api-user.service.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import { BackOfficeSessionService, type BackOfficeAuthentication } from './backoffice-session.service.js';
import { BackOfficeSessionCookies } from './session-cookies.js';
import { BackOfficeTossedCookieCleaner } from './tossed-cookie-cleaner.js';

export const BACKOFFICE_AUTHORIZE_METADATA = 'backoffice:authorize';
export const BACKOFFICE_RECENT_SIGN_IN_METADATA = 'backoffice:recent-sign-in';

/** Options of `@RequiresRecentSignIn()`. */
export interface RequiresRecentSignInOptions {
  /** Minutes a sign-in or re-authentication counts as recent here. Default: `session.reauthenticationMinutes` (5). */
  withinMinutes?: number;
}

const TWO_FACTOR_SETUP_ROUTE_METADATA = 'backoffice:two-factor-setup-route';

/**
 * Marks a route that a setup-only session (a member of a `requireTwoFactor` group who has not enrolled yet) may
 * reach: the 2FA setup and confirmation, re-authentication by password or through a linked external provider (the
 * setup routes ask for a recent sign-in), `GET /auth/me` and logout. Every other route answers 403
 * `two_factor_setup_required` to such a session.
 */
export const AllowTwoFactorSetupSession = () => SetMetadata(TWO_FACTOR_SETUP_ROUTE_METADATA, true);

/** Options of `@BackOfficeAuthorize()`. */
export interface BackOfficeAuthorizeOptions {
  /** The user must be in at least one of these groups (aliases), else 403 `forbidden`. */
  groups?: string[];
  /**
   * The user must hold every one of these permission keys through their groups (`admin` holds all), else 403
   * `forbidden`. Keys must be built-in or registered with the `permissions` option (checked at start-up).
   */
  permissions?: string[];
  /**
   * Accept `Authorization: Bearer <token>` of API users (from `POST /auth/token`): no cookie and no XSRF header
   * for such requests. Default: true when `groups` or `permissions` are given (a machine is authorised by its
   * groups), false on routes that only need a signed-in person (own account, sessions, 2FA).
   */
  bearer?: boolean;
}

/**
 * How a request that passed the guard was authenticated: a person's session cookie, or an API user's bearer token.
 * `authenticatedAt` is the module's clock (`BACKOFFICE_CLOCK`, swappable) when the guard authenticated it: what
 * `@CurrentBackOfficeUser()` derives the user's state at. Optional, so a `request.backOffice` that a host's own guard or
 * test builds still type-checks; without it the state is derived at the wall clock.
 */
export type BackOfficeRequestAuthentication = { authenticatedAt?: Date } & (
  | (BackOfficeAuthentication & { token: string; scheme: 'cookie' })
  | { user: BackOfficeUser; token: string; scheme: 'bearer'; session?: undefined }
);

/** A request (Express or Fastify) that passed the guard. */
export type BackOfficeAuthenticatedRequest = BackOfficeHttpRequest & { backOffice: BackOfficeRequestAuthentication };

/** Session of a cookie-authenticated request (routes that refuse bearer tokens). */
export function sessionOf(request: BackOfficeAuthenticatedRequest): BackOfficeAuthentication['session'] {
  if (request.backOffice.scheme !== 'cookie') throw BackOfficeHttpError.unauthenticated();
  return request.backOffice.session;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const SEC_FETCH_SITE_HEADER = 'sec-fetch-site';
/** `Sec-Fetch-Site` values of a request the person made on this origin (or typed / bookmarked). */
const OWN_FETCH_SITES = new Set(['same-origin', 'none']);

/** The guard's metadata of one route: read with the reflector once, then kept (route metadata never changes). */
interface RouteRules {
  options: BackOfficeAuthorizeOptions | undefined;
  stepUp: RequiresRecentSignInOptions | undefined;
  allowsSetupOnly: boolean;
}
type Targets = [ReturnType<ExecutionContext['getHandler']>, ReturnType<ExecutionContext['getClass']>];
/** An access token (or client secret) in the query string. */
const TOKEN_IN_QUERY = /[?&](access_token|client_secret)=/i;

/**
 * A safe request with this header set to `1` checks the session without sliding its idle deadline: the
 * sign-in pages and `assets/session.js` use it to see how long a session has left without extending it.
 */
export const SESSION_PEEK_HEADER = 'x-backoffice-session-peek';

/**
 * Authenticates an API user's `Authorization: Bearer` token (routes with groups or permissions; no XSRF), or
 * else the session cookie; on state-changing cookie requests also checks the XSRF double submit
 * (403 `xsrf_failed`), then the groups and permissions of `@BackOfficeAuthorize({ groups, permissions })`
 * (403 `forbidden`), then the step-up rule of `@RequiresRecentSignIn()` (401 `reauthentication_required`;
 * bearer requests have no sign-in to renew and are refused there). A request it lets through gets
 * `Cache-Control: no-store` on its answer (host routes too; their handler may set another). Runs once per
 * request even when both decorators add it: a second run reuses the first one's authentication.
 */
@Injectable()
export class BackOfficeAuthGuard implements CanActivate {
  /** Per handler, per controller class (a handler inherited by two controllers may carry different class metadata). */
  private readonly rules = new WeakMap<object, WeakMap<object, RouteRules>>();

  constructor(
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
    @Inject(BackOfficeSessionCookies) private readonly cookies: BackOfficeSessionCookies,
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(BackOfficePermissionRegistry) private readonly permissions: BackOfficePermissionRegistry,
    @Inject(BackOfficeApiUserService) private readonly apiUsers: BackOfficeApiUserService,
    @Inject(BACKOFFICE_IP_RESOLVER) private readonly ipResolver: BackOfficeIpResolver,
    @Inject(BackOfficeAccessDenials) private readonly denials: BackOfficeAccessDenials,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeHttpPlatform) private readonly platform: BackOfficeHttpPlatform,
    @Inject(BackOfficeTossedCookieCleaner) private readonly tossedCookies: BackOfficeTossedCookieCleaner,
  ) {}

  canActivate(context: ExecutionContext): Promise<boolean> {
    // switchToHttp() once: each call gives the context three new closures.
    const http = context.switchToHttp();
    const request = http.getRequest<BackOfficeAuthenticatedRequest>();
    const response = http.getResponse<BackOfficeHttpResponse>();
    // A host route: the module's middleware gave it an empty store of its own, which the guard fills with the
    // request context (before any await, so the route's handler runs in it too).
    if (!BackOfficeRequestContextStore.active()) BackOfficeRequestContextStore.enter(backOfficeRequestContextOf(request, this.ipResolver));
    // A host route's answer expires a tossed session cookie too (the module's routes did it in the middleware).
    this.tossedCookies.clear(request, response);
    return this.check(this.rulesOf(context.getHandler(), context.getClass()), request, response);
  }

  private async check(rules: RouteRules, request: BackOfficeAuthenticatedRequest, response: BackOfficeHttpResponse): Promise<boolean> {
    const { options, stepUp } = rules;
    const auth = request.backOffice ?? (await this.authenticate(request, rules));
    this.authorize(auth.user, options);
    if (stepUp) this.sessions.assertRecentSignIn(auth, stepUp.withinMinutes);
    // What a route answers to a signed-in caller is theirs alone: no cache keeps it (OWASP ASVS 5.0 14.3.2). The
    // module's own routes have it from its middleware (not written twice); a host route's handler may still set its own.
    if (this.platform.getHeader(response, 'Cache-Control') !== 'no-store') {
      this.platform.setHeader(response, 'Cache-Control', 'no-store');
    }
    return true;
  }

  /** The route's rules; the reflector (and the targets array) only on a route's first request. */
  private rulesOf(handler: Targets[0], controller: Targets[1]): RouteRules {
    let byClass = this.rules.get(handler);
    if (!byClass) this.rules.set(handler, (byClass = new WeakMap()));
    let rules = byClass.get(controller);
    if (!rules) {
      const targets: Targets = [handler, controller];
      rules = {
        options: this.reflector.getAllAndOverride<BackOfficeAuthorizeOptions | undefined>(BACKOFFICE_AUTHORIZE_METADATA, targets),
        stepUp: this.reflector.getAllAndOverride<RequiresRecentSignInOptions | undefined>(BACKOFFICE_RECENT_SIGN_IN_METADATA, targets),
        allowsSetupOnly: this.reflector.getAllAndOverride<boolean>(TWO_FACTOR_SETUP_ROUTE_METADATA, targets) === true,
      };
      byClass.set(controller, rules);
    }
    return rules;
  }

  private async authenticate(request: BackOfficeAuthenticatedRequest, rules: RouteRules): Promise<BackOfficeAuthenticatedRequest['backOffice']> {
    const { options } = rules;
    if (TOKEN_IN_QUERY.test(request.url ?? '')) {
      // RFC 6750 2.3 allows it, but URLs end up in logs, history and Referer headers (OWASP ASVS 4.0 3.1.1).
      throw new BackOfficeHttpError(400, 'token_in_query', 'Send the access token in the Authorization header, never in the URL.');
    }
    const bearer = BackOfficeAuthGuard.bearerToken(request.headers.authorization);
    if (bearer !== null) {
      const acceptsBearer = options?.bearer ?? Boolean(options?.groups?.length || options?.permissions?.length);
      if (!acceptsBearer) throw new BackOfficeHttpError(401, 'unauthenticated', 'This route needs a signed-in person (session cookie).');
      const user = await this.apiUsers.authenticateBearer(bearer);
      if (!user) {
        throw new BackOfficeHttpError(401, 'invalid_token', 'The access token is invalid, expired or revoked.', {}, {
          'WWW-Authenticate': 'Bearer realm="backoffice", error="invalid_token"',
        });
      }
      request.backOffice = { user, token: bearer, scheme: 'bearer', authenticatedAt: this.clock.now() };
      BackOfficeRequestContextStore.current().performingUserId = user.id;
      return request.backOffice;
    }
    const token = this.cookies.readToken(request);
    const safe = SAFE_METHODS.has(request.method ?? 'GET');
    // The idle deadline slides only once the XSRF check passed, and on a safe request only when it is the person's own
    // (safeRequestSlides): a forged request must not keep the session alive.
    const auth = await this.sessions.authenticate(token, { touch: false });
    if (!auth || !token) throw BackOfficeHttpError.unauthenticated();
    BackOfficeRequestContextStore.current().performingUserId = auth.user.id;
    if (!safe && !this.cookies.checkXsrf(request, token)) {
      throw this.denials.refuse(new BackOfficeHttpError(403, 'xsrf_failed', 'Missing or wrong X-XSRF-TOKEN header.'));
    }
    if (!safe || BackOfficeAuthGuard.safeRequestSlides(request)) this.sessions.slideIdleDeadline(auth.session);
    if (auth.session.twoFactorSetupOnly && !rules.allowsSetupOnly) {
      throw new BackOfficeHttpError(403, 'two_factor_setup_required', 'Set up two-factor authentication first (POST /auth/2fa/setup, then /auth/2fa/enable).');
    }
    // Written out, not `{ ...auth, token, ... }`: on Node 20 a spread followed by more keys took several µs per request.
    const authenticatedAt = this.clock.now();
    request.backOffice = auth.loginProviders
      ? { session: auth.session, user: auth.user, loginProviders: auth.loginProviders, token, scheme: 'cookie', authenticatedAt }
      : { session: auth.session, user: auth.user, token, scheme: 'cookie', authenticatedAt };
    return request.backOffice;
  }

  private authorize(user: BackOfficeUser, options: BackOfficeAuthorizeOptions | undefined): void {
    const refused =
      (options?.groups?.length && !BackOfficeAuthGuard.inAnyGroup(user, options.groups)) ||
      (options?.permissions?.length && !this.permissions.holdsAll(user, options.permissions));
    if (refused) throw this.denials.refuse(BackOfficeHttpError.forbidden());
  }

  /** The token of `Authorization: Bearer <token>`, '' for a malformed bearer header, null without one. */
  private static bearerToken(header: string | undefined): string | null {
    if (!header || !/^bearer(\s|$)/i.test(header)) return null;
    return header.slice(6).trim();
  }

  /**
   * Whether a safe request may slide the idle deadline: not a peek, and plausibly the person's own (OWASP ASVS 5.0
   * 7.3.1). SameSite=Strict cookies still go with a request a sibling subdomain makes (`<img src=".../auth/me">`):
   * such a request (`Sec-Fetch-Site: same-site` or `cross-site`) is answered but keeps no session alive. Without
   * the header (a non-browser client, an old browser), `same-origin` or `none` (a typed URL, a bookmark) it slides.
   */
  private static safeRequestSlides(request: BackOfficeHttpRequest): boolean {
    if (request.headers[SESSION_PEEK_HEADER] === '1') return false;
    const site = request.headers[SEC_FETCH_SITE_HEADER];
    if (site === undefined) return true;
    return OWN_FETCH_SITES.has(String(site).trim().toLowerCase());
  }

  private static inAnyGroup(user: BackOfficeUser, groups: string[]): boolean {
    return groups.some((g) => user.groups.includes(g));
  }
}
