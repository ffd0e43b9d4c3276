import { Inject, Injectable } from '@nestjs/common';
import type { BackOfficeClock } from '../common/clock.js';
import { randomToken, sha256Hex } from '../common/crypto.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_PENDING_SIGN_IN_STORE } from '../constants.js';
import type { BackOfficePendingSignInStore } from '../sign-in/pending-sign-in-store.interface.js';
import { requestCookieOnce, type BackOfficeHttpRequest, type BackOfficeHttpResponse } from '../http/http-platform.js';
import { BackOfficeModulePaths } from '../http/module-paths.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeSessionCookies, EXTERNAL_LOGIN_COOKIE_SUFFIX, HOST_PREFIXED_COOKIE_NAME, pendingSignInCookieName } from '../sessions/session-cookies.js';
import { SecretCipher } from '../two-factor/secret-cipher.js';

/** How long a person may take at the provider between challenge and callback. */
export const PENDING_MINUTES = 10;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** What the callback needs from its challenge. */
export interface PendingExternalLogin {
  provider: string;
  nonce: string;
  codeVerifier: string;
  /** Same-origin path to land on. */
  returnUrl: string;
  /** An invite checked by `POST .../challenge` (the accept-invite page): the token only as SHA-256. */
  invite?: { userId: string; tokenHash: string };
  /** A manual link started by this signed-in user and session. */
  link?: { userId: string; sessionId: string };
  /** A step-up re-authentication of this signed-in user and session through a provider they have linked. */
  reauthenticate?: { userId: string; sessionId: string };
  /**
   * A sign-in's challenge came with the cookie of this session (read by the server from the request, never from client
   * input): the sign-in ends it at the callback, where the SameSite=Strict session cookie does not come back on the
   * provider's cross-site redirect (OWASP ASVS 5.0 7.2.4).
   */
  replaces?: { userId: string; sessionId: string };
}

/**
 * Pending external sign-ins, server-side and single use (the pending sign-in store). The `state` sent to the
 * provider is random; the store keeps its SHA-256, bound to a random browser token in a short-lived HttpOnly cookie (SameSite=Lax, so it
 * comes back on the provider's redirect; with Secure cookies a `__Host-` name on `Path=/`, see {@link pendingSignInCookieName}, else only under `/<global prefix>/<prefix>/auth/external`, see `BackOfficeModulePaths.externalLoginCookiePath`). Nonce, PKCE verifier,
 * return URL, invite and link are encrypted with a key derived from that browser token: the database alone
 * cannot complete a flow, another browser cannot, and a callback is accepted at most once (replays refused).
 */
@Injectable()
export class BackOfficeExternalLoginStateService {
  readonly cookieName: string;
  /** `__Host-` name (Secure cookies): Path=/. */
  private readonly hostPrefixed: boolean;

  constructor(
    @Inject(BACKOFFICE_PENDING_SIGN_IN_STORE) private readonly store: BackOfficePendingSignInStore,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeSessionCookies) private readonly cookies: BackOfficeSessionCookies,
    @Inject(BackOfficeModulePaths) private readonly modulePaths: BackOfficeModulePaths,
  ) {
    this.cookieName = pendingSignInCookieName(options.session, EXTERNAL_LOGIN_COOKIE_SUFFIX);
    this.hostPrefixed = HOST_PREFIXED_COOKIE_NAME.test(this.cookieName);
  }

  /** Stores a pending sign-in; returns the `state` to send to the provider and sets the browser cookie. */
  async start(pending: PendingExternalLogin, request: BackOfficeHttpRequest, response: BackOfficeHttpResponse): Promise<string> {
    const existing = requestCookieOnce(request, this.cookieName);
    const browserToken = typeof existing === 'string' && TOKEN_SHAPE.test(existing) ? existing : randomToken(32);
    const state = randomToken(32);
    const now = this.clock.now();
    const { provider, ...secret } = pending;
    await this.store.create(
      {
        kind: 'external_login',
        keyHash: sha256Hex(state),
        browserHash: sha256Hex(browserToken),
        purpose: provider,
        // A link or step-up is of a signed-in user: the store keeps at most BACKOFFICE_EXTERNAL_LOGIN_STATES_PER_USER
        // of their live states per provider (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1). A sign-in's user is not known yet.
        userId: pending.link?.userId ?? pending.reauthenticate?.userId ?? null,
        securityStamp: null,
        payload: this.cipher(browserToken).encrypt(JSON.stringify(secret)),
        expiresAt: new Date(now.getTime() + PENDING_MINUTES * 60_000),
      },
      now,
    );
    this.cookies.setCookie(response, this.cookieName, browserToken, {
      httpOnly: true,
      sameSite: 'lax',
      // A "__Host-" cookie must have Path=/ (RFC 6265bis 4.1.3.2): browsers drop it with any other path. Else the
      // module's path as mounted (read at the request: hosts set their global prefix after the module is built).
      path: this.hostPrefixed ? '/' : this.modulePaths.externalLoginCookiePath(),
      maxAgeSeconds: PENDING_MINUTES * 60,
    });
    return state;
  }

  /**
   * Uses up the pending sign-in of `state` for `provider`, if this browser started it, it is unexpired and
   * not used yet; true for exactly one caller. Null otherwise (missing, forged, replayed, expired, other browser,
   * or the browser cookie sent twice: one tossed from a sibling subdomain could complete the sign-in its setter
   * started, login CSRF; OWASP ASVS 5.0 3.3.3).
   */
  async consume(provider: string, state: unknown, request: BackOfficeHttpRequest): Promise<PendingExternalLogin | null> {
    const browserToken = requestCookieOnce(request, this.cookieName);
    if (typeof state !== 'string' || !TOKEN_SHAPE.test(state) || typeof browserToken !== 'string' || !TOKEN_SHAPE.test(browserToken)) return null;
    const row = await this.store.consume('external_login', sha256Hex(state), this.clock.now(), { browserHash: sha256Hex(browserToken), purpose: provider });
    if (!row?.payload) return null;
    try {
      return { provider, ...(JSON.parse(this.cipher(browserToken).decrypt(row.payload)) as Omit<PendingExternalLogin, 'provider'>) };
    } catch {
      return null;
    }
  }

  private cipher(browserToken: string): SecretCipher {
    return new SecretCipher(browserToken, 'external-login-state/v1');
  }
}
