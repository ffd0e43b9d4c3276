import {
  EXTERNAL_LOGIN_COOKIE_SUFFIX,
  pendingSignInCookieName,
  TWO_FACTOR_COOKIE_SUFFIX,
} from '../../src/backoffice-identity/sessions/session-cookies.js';

describe('pendingSignInCookieName (ASVS 5.0 3.3.3: pending sign-in cookies a sibling subdomain cannot set)', () => {
  it.each([
    ['backoffice_session', true, '__Host-backoffice_session_2fa', '__Host-backoffice_session_ext'],
    ['__Host-bo', true, '__Host-bo_2fa', '__Host-bo_ext'],
    ['__HOST-bo', true, '__HOST-bo_2fa', '__HOST-bo_ext'],
    ['__Secure-bo', true, '__Host-bo_2fa', '__Host-bo_ext'],
    ['__secure-bo', true, '__Host-bo_2fa', '__Host-bo_ext'],
    ['backoffice_session', false, 'backoffice_session_2fa', 'backoffice_session_ext'],
  ])('session cookie %j, Secure %s: %s and %s', (cookieName, secureCookies, twoFactor, externalLogin) => {
    expect(pendingSignInCookieName({ cookieName, secureCookies }, TWO_FACTOR_COOKIE_SUFFIX)).toBe(twoFactor);
    expect(pendingSignInCookieName({ cookieName, secureCookies }, EXTERNAL_LOGIN_COOKIE_SUFFIX)).toBe(externalLogin);
  });
});
