import { Inject, Injectable } from '@nestjs/common';
import { createHmac } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constantTimeEquals } from '../common/crypto.js';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import { readCookies, serializeCookie } from '../http/cookies.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';

/** Name of the readable XSRF cookie; clients echo it in the `X-XSRF-TOKEN` header. */
export const XSRF_COOKIE = 'XSRF-TOKEN';
export const XSRF_HEADER = 'x-xsrf-token';

/**
 * Session and XSRF cookies. The XSRF token is an HMAC of the session token, so it is bound to the session
 * and needs no storage; a request must send it as header and cookie alike (double submit).
 */
@Injectable()
export class BackOfficeSessionCookies {
  readonly name: string;
  private readonly secure: boolean;
  private readonly maxAgeSeconds: number;

  constructor(@Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions) {
    this.name = options.session.cookieName;
    this.secure = options.session.secureCookies;
    this.maxAgeSeconds = options.session.absoluteTimeoutHours * 3600;
  }

  static xsrfTokenFor(sessionToken: string): string {
    return createHmac('sha256', sessionToken).update('backoffice-xsrf').digest('base64url');
  }

  readToken(request: IncomingMessage): string | undefined {
    return readCookies(request)[this.name];
  }

  /** True when header and cookie both carry the XSRF token derived from the session token. */
  checkXsrf(request: IncomingMessage, sessionToken: string): boolean {
    const header = request.headers[XSRF_HEADER];
    const cookie = readCookies(request)[XSRF_COOKIE];
    if (typeof header !== 'string' || typeof cookie !== 'string') return false;
    const expected = BackOfficeSessionCookies.xsrfTokenFor(sessionToken);
    return constantTimeEquals(header, expected) && constantTimeEquals(cookie, expected);
  }

  set(response: ServerResponse, sessionToken: string): void {
    this.append(response, [
      serializeCookie(this.name, sessionToken, { httpOnly: true, secure: this.secure, maxAgeSeconds: this.maxAgeSeconds }),
      serializeCookie(XSRF_COOKIE, BackOfficeSessionCookies.xsrfTokenFor(sessionToken), { httpOnly: false, secure: this.secure, maxAgeSeconds: this.maxAgeSeconds }),
    ]);
  }

  clear(response: ServerResponse): void {
    this.append(response, [
      serializeCookie(this.name, '', { httpOnly: true, secure: this.secure, maxAgeSeconds: 0 }),
      serializeCookie(XSRF_COOKIE, '', { httpOnly: false, secure: this.secure, maxAgeSeconds: 0 }),
    ]);
  }

  /** Adds Set-Cookie values without dropping ones already set. */
  append(response: ServerResponse, cookies: string[]): void {
    const existing = response.getHeader('Set-Cookie');
    const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
    response.setHeader('Set-Cookie', [...list, ...cookies]);
  }
}
