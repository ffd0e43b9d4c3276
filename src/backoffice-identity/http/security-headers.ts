import type { ServerResponse } from 'node:http';

/**
 * The headers of every answer under the route prefix (below Nest's global prefix, if any; errors included):
 * `Cache-Control: no-store` (answers carry secrets such as a TOTP secret or recovery codes, and personal data;
 * ASVS 4.0 8.2.1), `Pragma: no-cache` for HTTP/1.0 caches, `X-Content-Type-Options: nosniff`. The host app's
 * other routes are left alone. Set by the module's middleware; Express parses bodies before any middleware runs,
 * so the exception filter sets the same headers on its parser's errors.
 */
export const BACKOFFICE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'X-Content-Type-Options': 'nosniff',
};

/** Sets {@link BACKOFFICE_SECURITY_HEADERS} on an answer of the module and drops an `X-Powered-By` naming the stack. */
export function setBackOfficeSecurityHeaders(response: ServerResponse): void {
  for (const [name, value] of Object.entries(BACKOFFICE_SECURITY_HEADERS)) response.setHeader(name, value);
  response.removeHeader('X-Powered-By');
}
