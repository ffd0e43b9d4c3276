import type { ServerResponse } from 'node:http';

/**
 * The headers of every answer under the route prefix (below Nest's global prefix, if any; errors included):
 * `Cache-Control: no-store` (answers carry secrets such as a TOTP secret or recovery codes, and personal data;
 * ASVS 4.0 8.2.1), `Pragma: no-cache` for HTTP/1.0 caches, `X-Content-Type-Options: nosniff`, no framing by any
 * site (`frame-ancestors 'none'`, and `X-Frame-Options: DENY` for older browsers; ASVS 5.0 3.4.6), no plugins and
 * no `<base>` (ASVS 5.0 3.4.3), and no referrer (ASVS 5.0 3.4.5). The pages send a stricter policy of their own in
 * its place; Swagger UI at `<prefix>/docs` keeps working under this one. The host app's other routes are left alone. Set by the module's middleware; Express parses bodies before any middleware runs,
 * so the exception filter sets the same headers on its parser's errors.
 */
export const BACKOFFICE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/**
 * {@link BACKOFFICE_SECURITY_HEADERS} as `[name, value]` pairs, worked out once: every answer of the module writes
 * them, and `Object.entries` on each request made the list anew.
 */
export const BACKOFFICE_SECURITY_HEADER_LIST: ReadonlyArray<readonly [string, string]> = Object.freeze(
  Object.entries(BACKOFFICE_SECURITY_HEADERS).map(([name, value]) => Object.freeze([name, value] as const)),
);

/** Sets {@link BACKOFFICE_SECURITY_HEADERS} on an answer of the module and drops an `X-Powered-By` naming the stack. */
export function setBackOfficeSecurityHeaders(response: ServerResponse): void {
  for (let i = 0; i < BACKOFFICE_SECURITY_HEADER_LIST.length; i++) {
    const header = BACKOFFICE_SECURITY_HEADER_LIST[i];
    response.setHeader(header[0], header[1]);
  }
  response.removeHeader('X-Powered-By');
}
