import type { BackOfficeIdentityModuleOptions } from '../../src/backoffice-identity/index.js';
import { waitFor } from './external-login-results.js';
import { HttpClient } from './http-client.js';

/** Module options for an app served on 127.0.0.1:`port` that signs in through `externalLogins` (plain-HTTP cookies, no rate limits), plus `extra`. */
export function externalLoginIdentity(
  port: number,
  externalLogins: BackOfficeIdentityModuleOptions['externalLogins'],
  extra: BackOfficeIdentityModuleOptions = {},
): BackOfficeIdentityModuleOptions {
  return { publicUrl: `http://127.0.0.1:${port}`, session: { secureCookies: false }, rateLimits: { enabled: false }, ...extra, externalLogins };
}

/** Resolves once every external login provider of the app at `url` answers available (its discovery is done). */
export function waitForExternalProviders(url: string): Promise<void> {
  return waitFor(async () => (await new HttpClient(url).get('/auth/external/providers')).body.every((p: { available: boolean }) => p.available));
}
