import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { BACKOFFICE_IP_RESOLVER } from '../constants.js';
import type { BackOfficeIpResolver } from '../common/ip-resolver.interface.js';
import { backOfficeRequestContextOf } from '../common/request-context-of.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BackOfficeSessionCookies } from '../sessions/session-cookies.js';
import { BackOfficeTossedCookieCleaner } from '../sessions/tossed-cookie-cleaner.js';
import { BackOfficeUiTrailingSlash } from '../ui/ui-trailing-slash.js';
import { BackOfficeHttpError } from './backoffice-http-error.js';
import { requestPath, requestTarget, type BackOfficeHttpRequest } from './http-platform.js';
import { BackOfficeModulePaths } from './module-paths.js';
import { assertReadableBody } from './readable-body.js';
import { setBackOfficeSecurityHeaders } from './security-headers.js';

/**
 * The module's one middleware, on every path of the host (a single pattern: see the module's `configure`). It asks
 * once whether the request reaches the module's routes, as the routers match the path (any case, escapes decoded,
 * below Nest's global prefix unless excluded). If so, the answer gets the module's security headers (errors and the
 * prefix's 404s included) and the request runs in its request context: client IP (from the IP resolver), user
 * agent, method and path (and the session cookie's token, which a sign-in ends). Every other request is isolated (`isolate`): host routes guarded by
 * `BackOfficeAuthGuard` get the same context from the guard, and the context of one request never reaches the next
 * one on the same connection. A body the module cannot read is refused here (415: {@link assertReadableBody}). A
 * session or XSRF cookie sent twice (tossed from a sibling subdomain) is expired on the parent domains in whatever
 * the module answers ({@link BackOfficeTossedCookieCleaner}). Conditional request headers are dropped (the answers are
 * `no-store`: Express would answer 304 where Fastify answers in full). A page's path with a trailing slash is
 * redirected to the page ({@link BackOfficeUiTrailingSlash.redirectTrailingSlash}).
 */
@Injectable()
export class BackOfficeModuleRequestMiddleware implements NestMiddleware {
  constructor(
    @Inject(BACKOFFICE_IP_RESOLVER) private readonly ipResolver: BackOfficeIpResolver,
    @Inject(BackOfficeModulePaths) private readonly modulePaths: BackOfficeModulePaths,
    @Inject(BackOfficeTossedCookieCleaner) private readonly tossedCookies: BackOfficeTossedCookieCleaner,
    @Inject(BackOfficeSessionCookies) private readonly sessionCookies: BackOfficeSessionCookies,
    @Inject(BackOfficeUiTrailingSlash) private readonly uiTrailingSlash: BackOfficeUiTrailingSlash,
  ) {}

  use(request: BackOfficeHttpRequest, response: ServerResponse, next: () => void): void {
    const path = requestPath(request);
    if (!this.modulePaths.contains(path)) {
      BackOfficeRequestContextStore.isolate(next);
      return;
    }
    setBackOfficeSecurityHeaders(response);
    BackOfficeModuleRequestMiddleware.assertNoFragment(request);
    // a page's path with a trailing slash: a 302 to the page on both platforms
    if (this.uiTrailingSlash.redirectTrailingSlash(request, response)) return;
    BackOfficeModuleRequestMiddleware.dropConditionalHeaders(request);
    this.tossedCookies.clear(request, response);
    assertReadableBody(request);
    const context = backOfficeRequestContextOf(request, this.ipResolver, path);
    // The session a sign-in in this request would replace: it ends then (BackOfficeSessionIssuer.issue).
    context.sessionToken = this.sessionCookies.readToken(request);
    BackOfficeRequestContextStore.run(context, next);
  }

  /**
   * A request target holds no fragment (RFC 9112 3.2; browsers never send one), and the platforms read one
   * differently: in the query, Express's URL parser cut `#frag` off (`?take=1#frag` listed one item) where Fastify's
   * query parser kept it in the value (`take` is `1#frag`: 400 `validation_failed`); before any `?`, Express read
   * `#?take=1` as the fragment (the default page) where Fastify's router cut the path at `#` and its query parser
   * still read `take=1`; right after the route prefix, both routed `/backoffice#x` to the sign-in page but Fastify read
   * `/backoffice#status=requiresTwoFactor` as the query. So a raw `#` anywhere in the target as sent (`originalUrl ??
   * url`, path and query) is refused with 400 `bad_request` on both, before the trailing-slash redirect (which would
   * carry it into `Location`). Whether the target is under the prefix is read from its path up to the first `?` or
   * `#` (`requestPath`), as the routers read it; this is the one place a `#` is refused.
   */
  private static assertNoFragment(request: BackOfficeHttpRequest): void {
    if (requestTarget(request).includes('#')) throw BackOfficeHttpError.of('bad_request', 'The request target must not hold a fragment (#).');
  }

  /**
   * The module's answers are `Cache-Control: no-store` (its assets aside, which neither platform answers conditionally),
   * so a conditional request has nothing stored to revalidate. Express answered `If-None-Match: *` (or the weak ETag it
   * puts on every JSON answer) on `GET /auth/me` and every other JSON route with 304 and no body, where Fastify, which
   * ignores these headers, answered 200 with the JSON. They are dropped, so both platforms answer in full.
   */
  private static dropConditionalHeaders(request: BackOfficeHttpRequest): void {
    delete request.headers['if-none-match'];
    delete request.headers['if-modified-since'];
  }
}
