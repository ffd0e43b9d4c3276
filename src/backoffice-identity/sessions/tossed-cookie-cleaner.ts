import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_IP_RESOLVER } from '../constants.js';
import type { BackOfficeClock } from '../common/clock.js';
import type { BackOfficeIpResolver } from '../common/ip-resolver.interface.js';
import { BackOfficeHttpPlatform, repeatedRequestCookies, requestHeader, serializeCookie, type BackOfficeHttpRequest, type BackOfficeHttpResponse } from '../http/http-platform.js';
import { BackOfficeModulePaths } from '../http/module-paths.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { EXTERNAL_LOGIN_COOKIE_SUFFIX, HOST_PREFIXED_COOKIE_NAME, pendingSignInCookieName, TWO_FACTOR_COOKIE_SUFFIX, XSRF_COOKIE } from './session-cookies.js';

/** One warning per client IP within this time. */
const WARN_EVERY_MS = 5 * 60_000;
/** Clients remembered for the warning's throttle before the oldest are forgotten. */
const MAX_REMEMBERED_CLIENTS = 10_000;
/** At most this many parent domains are cleared (a.b.c.d.example.com has 4). */
const MAX_PARENT_DOMAINS = 8;
const HOST_NAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The parent domains of `host` (a Host header or URL host; its port is ignored) on which a sibling subdomain can set
 * a cookie the browser sends to `host`: every suffix of at least two labels, the host itself and the public suffix
 * excluded (`a.b.example.com`: `b.example.com`, `example.com`). None for an IP address, `localhost` or a malformed
 * name.
 */
export function parentCookieDomains(host: string | undefined): string[] {
  if (!host || host.startsWith('[')) return [];
  const name = host.replace(/:\d*$/, '').replace(/\.$/, '').toLowerCase();
  if (!HOST_NAME.test(name) || /^[0-9.]+$/.test(name)) return [];
  const labels = name.split('.');
  const domains: string[] = [];
  for (let i = 1; i <= labels.length - 2 && domains.length < MAX_PARENT_DOMAINS; i++) domains.push(labels.slice(i).join('.'));
  return domains;
}

/**
 * Clears session, XSRF, pending two-factor (`_2fa`) and pending external sign-in (`_ext`) cookies tossed from a
 * sibling subdomain (OWASP ASVS 5.0 3.3.3 / 7.2.4). When a request sends one of them twice (a sibling set one for
 * the parent domain, perhaps with a longer Path so the browser sends it first), its value is not used (the request
 * is not authenticated, {@link BackOfficeSessionCookies.readToken}; the pending sign-in is not found), and the
 * answer also expires that cookie name for every parent domain of the request's host and of `publicUrl`'s host, on
 * `Path=/`, the module's base path and its `/auth` path (and `/auth/external` for `_ext`), with the module's Secure
 * / SameSite attributes (HttpOnly except for the XSRF cookie). The
 * browser then drops the tossed cookie and the person can sign in again; the host-only cookie is left to the normal
 * flow. Logs one warning per client IP per 5 minutes (no cookie values). `__Host-` names are not watched: a
 * `__Host-` `session.cookieName` rules tossing out for the session cookie, and with Secure cookies the pending
 * sign-in cookies always have a `__Host-` name ({@link pendingSignInCookieName}); browsers reject a `Domain=` or
 * sub-path line for such a name, and a repeated one is still refused where it is read. So with Secure cookies only
 * the unprefixed session cookie and the XSRF cookie are cleared here; without them, the `_2fa` / `_ext` names too.
 */
@Injectable()
export class BackOfficeTossedCookieCleaner {
  private readonly logger = new Logger('BackOfficeIdentity');
  private readonly handled = new WeakSet<object>();
  private readonly warned = new Map<string, number>();
  private readonly sessionCookie: string;
  /** The cookie names watched for repeats, the session cookie first; never a `__Host-` name. */
  private readonly names: string[];
  private readonly externalLoginCookie: string;
  private readonly secure: boolean;
  private readonly publicDomains: string[];

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeModulePaths) private readonly modulePaths: BackOfficeModulePaths,
    @Inject(BackOfficeHttpPlatform) private readonly platform: BackOfficeHttpPlatform,
    @Inject(BACKOFFICE_IP_RESOLVER) private readonly ipResolver: BackOfficeIpResolver,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
  ) {
    this.sessionCookie = options.session.cookieName;
    this.externalLoginCookie = pendingSignInCookieName(options.session, EXTERNAL_LOGIN_COOKIE_SUFFIX);
    // A `__Host-` name is left out: no other host can set it (nothing to toss), and browsers reject its Domain= and
    // sub-path expiry lines. A repeated one is still refused where it is read (requestCookieOnce).
    this.names = [this.sessionCookie, XSRF_COOKIE, pendingSignInCookieName(options.session, TWO_FACTOR_COOKIE_SUFFIX), this.externalLoginCookie].filter(
      (name) => !HOST_PREFIXED_COOKIE_NAME.test(name),
    );
    this.secure = options.session.secureCookies;
    let publicHost: string | undefined;
    try {
      publicHost = new URL(options.publicUrl).host;
    } catch {
      publicHost = undefined;
    }
    this.publicDomains = parentCookieDomains(publicHost);
  }

  /**
   * When `request` sends the session, XSRF, `_2fa` or `_ext` cookie (not a `__Host-` one) more than once, adds to `response` (a Node response,
   * an Express response or a Fastify reply) the `Set-Cookie` lines that expire the repeated names on the parent
   * domains. Once per response; does nothing for a request without a repeated cookie.
   */
  clear(request: BackOfficeHttpRequest, response: BackOfficeHttpResponse): void {
    const node = (response as { raw?: ServerResponse }).raw ?? (response as ServerResponse);
    if (this.handled.has(node)) return;
    const names = repeatedRequestCookies(request, this.names);
    if (names.length === 0) return;
    this.handled.add(node);
    const domains = [...new Set([...parentCookieDomains(requestHeader(request, 'host')), ...this.publicDomains])];
    const base = this.modulePaths.cookieBasePath();
    const paths = [...new Set(['/', base, `${base}/auth`])];
    const lines = names.flatMap((name) =>
      domains.flatMap((domain) =>
        (name === this.externalLoginCookie ? [...paths, this.modulePaths.externalLoginCookiePath()] : paths).map((path) =>
          serializeCookie(name, '', { httpOnly: name !== XSRF_COOKIE, secure: this.secure, maxAgeSeconds: 0, path, domain }),
        ),
      ),
    );
    if (!node.headersSent) for (const line of lines) this.platform.appendHeader(response, 'Set-Cookie', line);
    this.warn(request, names, domains);
  }

  private warn(request: BackOfficeHttpRequest, names: string[], domains: string[]): void {
    const ip = this.ipResolver.resolveIp(request);
    const now = this.clock.now().getTime();
    const last = this.warned.get(ip);
    if (last !== undefined && now - last < WARN_EVERY_MS) return;
    this.warned.delete(ip);
    if (this.warned.size >= MAX_REMEMBERED_CLIENTS) this.warned.delete(this.warned.keys().next().value!);
    this.warned.set(ip, now);
    const cleared = domains.length > 0 ? `cleared for ${domains.join(', ')}` : 'not cleared (no parent domain of this host)';
    this.logger.warn(
      `A duplicate session cookie (${names.join(', ')} sent twice) from ${ip} was refused and ${cleared}: possible cookie tossing from a sibling subdomain; a __Host- session.cookieName rules it out.`,
    );
  }
}
