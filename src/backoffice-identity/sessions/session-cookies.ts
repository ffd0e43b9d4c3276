import { Inject, Injectable } from '@nestjs/common';
import { createHmac } from 'node:crypto';
import { constantTimeEquals } from '../common/crypto.js';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import {
  BackOfficeHttpPlatform,
  requestCookieOnce,
  requestCookies,
  requestHeader,
  type BackOfficeCookieAttributes,
  type BackOfficeHttpRequest,
  type BackOfficeHttpResponse,
} from '../http/http-platform.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/** Name of the readable XSRF cookie; clients echo it in the `X-XSRF-TOKEN` header. */
export const XSRF_COOKIE = 'XSRF-TOKEN';
export const XSRF_HEADER = 'x-xsrf-token';
/** Suffix of the pending two-factor sign-in cookie's name (`<session cookie>_2fa`, see {@link pendingSignInCookieName}). */
export const TWO_FACTOR_COOKIE_SUFFIX = '_2fa';
/** Suffix of the pending external sign-in cookie's name (`<session cookie>_ext`, see {@link pendingSignInCookieName}). */
export const EXTERNAL_LOGIN_COOKIE_SUFFIX = '_ext';
/** The suffix of a pending sign-in cookie: {@link TWO_FACTOR_COOKIE_SUFFIX} or {@link EXTERNAL_LOGIN_COOKIE_SUFFIX}. */
export type PendingSignInCookieSuffix = typeof TWO_FACTOR_COOKIE_SUFFIX | typeof EXTERNAL_LOGIN_COOKIE_SUFFIX;

/** The `__Host-` cookie name prefix: the browser keeps such a cookie only when Secure, with `Path=/` and no Domain. */
export const HOST_COOKIE_PREFIX = '__Host-';
/** A cookie name with the `__Host-` prefix, in any case (as browsers match it). */
export const HOST_PREFIXED_COOKIE_NAME = /^__host-/i;
const SECURE_PREFIX = /^__secure-/i;

/**
 * The name of a pending sign-in cookie (the two-factor step's or the external sign-in's); nothing else builds it.
 * With Secure cookies it is `__Host-<session cookie><suffix>` (e.g. `__Host-backoffice_session_2fa`; a `__Host-`
 * session cookie name keeps its prefix, a `__Secure-` one has it replaced), so no other host, a sibling subdomain
 * included, can set it (cookie tossing: a lone tossed cookie would make the victim finish the attacker's sign-in,
 * login CSRF; OWASP ASVS 5.0 3.3.3); such a cookie must be set with `Path=/` and no Domain. Without Secure cookies
 * (plain-HTTP development) it is `<session cookie><suffix>`. These names are not part of the contract.
 */
export function pendingSignInCookieName(session: Pick<ResolvedBackOfficeIdentityOptions['session'], 'cookieName' | 'secureCookies'>, suffix: PendingSignInCookieSuffix): string {
  const { cookieName, secureCookies } = session;
  if (!secureCookies || HOST_PREFIXED_COOKIE_NAME.test(cookieName)) return `${cookieName}${suffix}`;
  return `${HOST_COOKIE_PREFIX}${cookieName.replace(SECURE_PREFIX, '')}${suffix}`;
}

/**
 * Session and XSRF cookies, on Express and Fastify alike. The XSRF token is an HMAC of the session token, so
 * it is bound to the session and needs no storage; a request must send it as header and cookie alike (double
 * submit).
 */
@Injectable()
export class BackOfficeSessionCookies {
  readonly name: string;
  private readonly secure: boolean;
  private readonly maxAgeSeconds: number;

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeHttpPlatform) private readonly platform: BackOfficeHttpPlatform,
  ) {
    this.name = options.session.cookieName;
    this.secure = options.session.secureCookies;
    this.maxAgeSeconds = options.session.absoluteTimeoutHours * 3600;
  }

  static xsrfTokenFor(sessionToken: string): string {
    return createHmac('sha256', sessionToken).update('backoffice-xsrf').digest('base64url');
  }

  /**
   * The session token of the request's cookie, or undefined. A request that sends the session cookie twice has
   * none: the second one was set for a parent domain by a sibling subdomain (cookie tossing; a `__Host-` name rules
   * it out), and which one the browser meant cannot be told, so neither may pick the session (OWASP ASVS 5.0 3.3.3).
   */
  readToken(request: BackOfficeHttpRequest): string | undefined {
    return requestCookieOnce(request, this.name);
  }

  /** True when header and cookie both carry the XSRF token derived from the session token. */
  checkXsrf(request: BackOfficeHttpRequest, sessionToken: string): boolean {
    const header = requestHeader(request, XSRF_HEADER);
    const cookie = requestCookies(request)[XSRF_COOKIE];
    if (header === undefined || typeof cookie !== 'string') return false;
    const expected = BackOfficeSessionCookies.xsrfTokenFor(sessionToken);
    return constantTimeEquals(header, expected) && constantTimeEquals(cookie, expected);
  }

  /**
   * Sets the session cookie and the XSRF cookie bound to it. `maxAgeSeconds`: how long they live, by default the
   * absolute timeout (a new session); a renewed token of an existing session passes what that session has left.
   */
  set(response: BackOfficeHttpResponse, sessionToken: string, maxAgeSeconds: number = this.maxAgeSeconds): void {
    this.setCookie(response, this.name, sessionToken, { httpOnly: true, maxAgeSeconds });
    this.setCookie(response, XSRF_COOKIE, BackOfficeSessionCookies.xsrfTokenFor(sessionToken), { httpOnly: false, maxAgeSeconds });
  }

  clear(response: BackOfficeHttpResponse): void {
    this.setCookie(response, this.name, '', { httpOnly: true, maxAgeSeconds: 0 });
    this.setCookie(response, XSRF_COOKIE, '', { httpOnly: false, maxAgeSeconds: 0 });
  }

  /** Adds one cookie (`SameSite=Strict` unless `attrs.sameSite` says otherwise; Secure when the module's cookies are) without dropping ones already set. */
  setCookie(response: BackOfficeHttpResponse, name: string, value: string, attrs: Omit<BackOfficeCookieAttributes, 'secure'>): void {
    this.platform.setCookie(response, name, value, { ...attrs, secure: this.secure });
  }
}
