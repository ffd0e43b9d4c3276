import type { BackOfficeIdentityModuleOptions } from '../../src/backoffice-identity/index.js';
import {
  EXTERNAL_LOGIN_COOKIE_SUFFIX,
  pendingSignInCookieName,
  TWO_FACTOR_COOKIE_SUFFIX,
} from '../../src/backoffice-identity/sessions/session-cookies.js';

/**
 * The names of the pending two-factor (`twoFactor`) and external sign-in (`externalLogin`) cookies of an app with
 * these `session` options (the module's defaults otherwise: `backoffice_session`, Secure cookies), as the module
 * names them.
 */
export function pendingSignInCookies(session: BackOfficeIdentityModuleOptions['session'] = {}): { twoFactor: string; externalLogin: string } {
  const resolved = { cookieName: session.cookieName ?? 'backoffice_session', secureCookies: session.secureCookies ?? true };
  return {
    twoFactor: pendingSignInCookieName(resolved, TWO_FACTOR_COOKIE_SUFFIX),
    externalLogin: pendingSignInCookieName(resolved, EXTERNAL_LOGIN_COOKIE_SUFFIX),
  };
}

/**
 * The `Set-Cookie` line of `setCookies` that sets `name` to a value, checked to keep the `__Host-` prefix rules
 * (RFC 6265bis 4.1.3.2: a browser drops a `__Host-` cookie unless it is Secure, has `Path=/` and no Domain);
 * returns its attributes (e.g. `HttpOnly`, `SameSite=Lax`).
 */
export function expectHostOnlyCookie(setCookies: string[], name: string): string[] {
  expect(name).toMatch(/^__Host-/);
  const line = setCookies.find((c) => c.startsWith(`${name}=`) && !/Max-Age=0/i.test(c));
  expect(line, `no Set-Cookie for ${name} in ${setCookies.join(' | ')}`).toBeDefined();
  const attributes = line!.split(';').slice(1).map((a) => a.trim());
  expect(attributes, line).toContain('Secure');
  expect(attributes, line).toContain('Path=/');
  expect(attributes.some((a) => /^domain=/i.test(a)), line).toBe(false);
  return attributes;
}
