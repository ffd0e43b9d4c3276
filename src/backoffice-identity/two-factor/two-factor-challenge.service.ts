import { Inject, Injectable } from '@nestjs/common';
import type { BackOfficeClock } from '../common/clock.js';
import { randomToken, sha256Hex } from '../common/crypto.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_PENDING_SIGN_IN_STORE } from '../constants.js';
import { requestCookieOnce, type BackOfficeHttpRequest, type BackOfficeHttpResponse } from '../http/http-platform.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeSessionCookies, pendingSignInCookieName, TWO_FACTOR_COOKIE_SUFFIX } from '../sessions/session-cookies.js';
import type { BackOfficePendingSignInStore } from '../sign-in/pending-sign-in-store.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';

/** A sign-in that passed the password and waits for its second factor. */
export interface PendingTwoFactorSignIn {
  /** Identifies the pending sign-in (the SHA-256 of its cookie token); {@link BackOfficeTwoFactorChallengeService.complete} takes it. */
  id: string;
  userId: string;
  securityStamp: string;
  /** How the first step was passed: `password`, or `passkey` (then a passkey is not accepted as the second factor). */
  firstFactor: 'password' | 'passkey';
  /** Set when the first factor was an external provider: sealed provider and ID token, for the session. */
  externalLogin: string | null;
  /** When the pending sign-in ends (set at the first step; {@link BackOfficeTwoFactorChallengeService.resume} keeps it). */
  expiresAt: Date;
}

/**
 * The pending state between password and second factor: a random token in a short-lived HttpOnly cookie
 * (`__Host-<session cookie>_2fa` with Secure cookies, see {@link pendingSignInCookieName}), kept by the pending sign-in store as SHA-256 with its expiry; no session exists until
 * the code is right.
 */
@Injectable()
export class BackOfficeTwoFactorChallengeService {
  readonly cookieName: string;
  private readonly lifetimeMs: number;

  constructor(
    @Inject(BACKOFFICE_PENDING_SIGN_IN_STORE) private readonly store: BackOfficePendingSignInStore,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeSessionCookies) private readonly cookies: BackOfficeSessionCookies,
  ) {
    this.cookieName = pendingSignInCookieName(options.session, TWO_FACTOR_COOKIE_SUFFIX);
    this.lifetimeMs = options.twoFactor.pendingMinutes * 60_000;
  }

  /**
   * `externalLogin`: the first factor was an external provider (sealed by `BackOfficeExternalLoginSessions`);
   * `firstFactor`: how the first step was passed (`passkey`: a passkey is then not accepted as the second factor).
   */
  async start(
    user: BackOfficeUser,
    response: BackOfficeHttpResponse,
    externalLogin: string | null = null,
    firstFactor: PendingTwoFactorSignIn['firstFactor'] = 'password',
  ): Promise<void> {
    const token = randomToken(32);
    const now = this.clock.now();
    await this.store.create(
      {
        kind: 'two_factor',
        keyHash: sha256Hex(token),
        purpose: firstFactor,
        userId: user.id,
        securityStamp: user.securityStamp,
        browserHash: null,
        payload: externalLogin,
        expiresAt: new Date(now.getTime() + this.lifetimeMs),
      },
      now,
    );
    this.cookies.setCookie(response, this.cookieName, token, { httpOnly: true, maxAgeSeconds: this.lifetimeMs / 1000 });
  }

  /**
   * The live pending sign-in of the request's cookie, or null (missing, unknown, expired, used, or the cookie sent
   * twice: one tossed from a sibling subdomain, so the person could finish someone else's sign-in; OWASP ASVS 5.0
   * 3.3.3).
   */
  async find(request: BackOfficeHttpRequest): Promise<PendingTwoFactorSignIn | null> {
    const token = requestCookieOnce(request, this.cookieName);
    if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
    const pending = await this.store.find('two_factor', sha256Hex(token), this.clock.now());
    return pending?.userId
      ? {
          id: pending.keyHash,
          userId: pending.userId,
          securityStamp: pending.securityStamp ?? '',
          externalLogin: pending.payload,
          firstFactor: pending.purpose === 'passkey' ? 'passkey' : 'password',
          expiresAt: new Date(pending.expiresAt),
        }
      : null;
  }

  /** Uses the pending sign-in up; true for exactly one caller. */
  async complete(id: string): Promise<boolean> {
    return (await this.store.consume('two_factor', id, this.clock.now())) !== null;
  }

  /**
   * Gives the browser a new pending sign-in in place of `pending`, which a second step claimed ({@link complete})
   * before checking an answer that turned out wrong: same user, security stamp, first factor and external login,
   * and the same end (a wrong answer never extends it), under a new cookie token. The cookie is cleared instead
   * when `pending` has ended meanwhile.
   */
  async resume(pending: PendingTwoFactorSignIn, response: BackOfficeHttpResponse): Promise<void> {
    const now = this.clock.now();
    const seconds = Math.floor((pending.expiresAt.getTime() - now.getTime()) / 1000);
    if (seconds <= 0) return this.clear(response);
    const token = randomToken(32);
    await this.store.create(
      {
        kind: 'two_factor',
        keyHash: sha256Hex(token),
        purpose: pending.firstFactor,
        userId: pending.userId,
        securityStamp: pending.securityStamp,
        browserHash: null,
        payload: pending.externalLogin,
        expiresAt: pending.expiresAt,
      },
      now,
    );
    this.cookies.setCookie(response, this.cookieName, token, { httpOnly: true, maxAgeSeconds: seconds });
  }

  clear(response: BackOfficeHttpResponse): void {
    this.cookies.setCookie(response, this.cookieName, '', { httpOnly: true, maxAgeSeconds: 0 });
  }
}
