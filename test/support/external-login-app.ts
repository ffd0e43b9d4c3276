import type { BackOfficeExternalLoginProviderOptions, BackOfficeIdentityModuleOptions } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { waitFor } from './external-login-results.js';
import { HttpClient } from './http-client.js';
import { createIdentityApp, type IdentityApp } from './identity-app.js';
import { TestOidcProvider } from './oidc-provider.js';

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

/** A fresh test database, a {@link TestOidcProvider} with one client and an app signing in through it as provider `oidc`. */
export interface OidcSignInApp {
  db: TestDatabase;
  idp: TestOidcProvider;
  ctx: IdentityApp;
  /** Closes the app, stops the provider and drops the database. */
  close(): Promise<void>;
}

/**
 * Starts an {@link OidcSignInApp}: the provider's client `clientId` (secret `clientSecret`) redirects to the app's
 * `oidc` callback; the app's provider `oidc` ("Single sign-on") is `provider` with that issuer and client, and the
 * app's options are {@link externalLoginIdentity}'s. Resolves once the provider answers available. A failure half-way
 * undoes what was started.
 */
export async function startOidcSignInApp(
  client: { clientId: string; clientSecret: string },
  provider: Omit<BackOfficeExternalLoginProviderOptions, 'name' | 'displayName' | 'issuer' | 'clientId' | 'clientSecret'>,
): Promise<OidcSignInApp> {
  const db = await createTestDatabase();
  let idp: TestOidcProvider | undefined;
  let ctx: IdentityApp | undefined;
  const close = async () => {
    await ctx?.close();
    await idp?.stop();
    await db.drop();
  };
  try {
    const port = await TestOidcProvider.reservePort();
    idp = await TestOidcProvider.start([
      { client_id: client.clientId, client_secret: client.clientSecret, redirect_uris: [`http://127.0.0.1:${port}/backoffice/auth/external/oidc/callback`] },
    ]);
    ctx = await createIdentityApp(db, {
      port,
      identity: externalLoginIdentity(port, [{ name: 'oidc', displayName: 'Single sign-on', issuer: idp.issuer, ...client, ...provider }]),
    });
    await waitForExternalProviders(ctx.url);
    return { db, idp, ctx, close };
  } catch (error) {
    await close();
    throw error;
  }
}
