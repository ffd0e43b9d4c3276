import { Inject, Injectable, Logger } from '@nestjs/common';
import * as oidc from 'openid-client';
import { BACKOFFICE_EXTERNAL_LOGIN_SESSION_STORE, BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { BackOfficeExternalLoginSessionStore } from './external-login-session-store.interface.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { SecretCipher } from '../two-factor/secret-cipher.js';
import { BackOfficeExternalLoginProviders, describeError } from './external-login-providers.service.js';

/** Which provider a sign-in came through, with its ID token encrypted (JSON text; safe to store). */
export type SealedExternalLogin = string;

/**
 * Remembers which provider a session came through, for RP-initiated logout ("log out everywhere"). The ID
 * token is kept encrypted at rest (AES-256-GCM with a key derived from `twoFactor.encryptionKey`); without
 * that key no token is kept and the logout URL carries `client_id` instead of `id_token_hint`.
 */
@Injectable()
export class BackOfficeExternalLoginSessions {
  private readonly logger = new Logger('BackOfficeExternalLogins');
  private readonly cipher?: SecretCipher;

  constructor(
    @Inject(BACKOFFICE_EXTERNAL_LOGIN_SESSION_STORE) private readonly store: BackOfficeExternalLoginSessionStore,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeExternalLoginProviders) private readonly providers: BackOfficeExternalLoginProviders,
  ) {
    const key = options.twoFactor.encryptionKey;
    this.cipher = key ? new SecretCipher(key, 'external-login-id-token/v1') : undefined;
  }

  /** Seals a sign-in's provider and ID token for storage (pending second factor, then the session). */
  seal(provider: string, idToken: string | undefined): SealedExternalLogin {
    const encryptedIdToken = idToken && this.cipher ? this.cipher.encrypt(idToken) : null;
    return JSON.stringify({ provider, encryptedIdToken });
  }

  /** The provider name of a sealed sign-in. */
  providerOf(sealed: SealedExternalLogin): string {
    return (JSON.parse(sealed) as { provider: string }).provider;
  }

  /** Records that session `sessionId` came through the sealed sign-in. */
  async attach(sessionId: string, sealed: SealedExternalLogin): Promise<void> {
    const { provider, encryptedIdToken } = JSON.parse(sealed) as { provider: string; encryptedIdToken: string | null };
    await this.store.attach(sessionId, { provider, encryptedIdToken });
  }

  /**
   * The provider's end-session URL for a session that came through a provider with an `end_session_endpoint`
   * (with `id_token_hint` or `client_id`, and `post_logout_redirect_uri`), else null.
   */
  async signOutUrl(sessionId: string): Promise<string | null> {
    const row = await this.store.find(sessionId);
    const provider = row ? this.providers.get(row.provider) : undefined;
    if (!row || !provider?.configuration?.serverMetadata().end_session_endpoint) return null;
    const parameters: Record<string, string> = { post_logout_redirect_uri: provider.options.postLogoutRedirectUrl };
    const idToken = this.openIdToken(row.encryptedIdToken);
    if (idToken) parameters.id_token_hint = idToken;
    else parameters.client_id = provider.options.clientId;
    try {
      return oidc.buildEndSessionUrl(provider.configuration, parameters).toString();
    } catch (error) {
      this.logger.warn(`No end-session URL for provider "${row.provider}": ${describeError(error)}`);
      return null;
    }
  }

  private openIdToken(encrypted: string | null): string | null {
    if (!encrypted || !this.cipher) return null;
    try {
      return this.cipher.decrypt(encrypted);
    } catch {
      return null;
    }
  }
}
