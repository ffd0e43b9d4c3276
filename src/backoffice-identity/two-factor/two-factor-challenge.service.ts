import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { BackOfficeClock } from '../common/clock.js';
import { randomToken, sha256Hex } from '../common/crypto.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import { requestCookies, type BackOfficeHttpRequest, type BackOfficeHttpResponse } from '../http/http-platform.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeSessionCookies } from '../sessions/session-cookies.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';

/** A sign-in that passed the password and waits for its second factor. */
export interface PendingTwoFactorSignIn {
  id: string;
  userId: string;
  securityStamp: string;
  /** How the first step was passed: `password`, or `passkey` (then a passkey is not accepted as the second factor). */
  firstFactor: 'password' | 'passkey';
  /** Set when the first factor was an external provider: sealed provider and ID token, for the session. */
  externalLogin: string | null;
}

/**
 * The pending state between password and second factor: a random token in a short-lived HttpOnly cookie
 * (`<session cookie>_2fa`), stored as SHA-256 with its expiry; no session exists until the code is right.
 */
@Injectable()
export class BackOfficeTwoFactorChallengeService {
  readonly cookieName: string;
  private readonly lifetimeMs: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeSessionCookies) private readonly cookies: BackOfficeSessionCookies,
  ) {
    this.cookieName = `${options.session.cookieName}_2fa`;
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
    await this.dataSource.query(
      `INSERT INTO backoffice_two_factor_challenge (user_id, token_hash, security_stamp, expires_at, created_at, external_login, first_factor) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [user.id, sha256Hex(token), user.securityStamp, new Date(now.getTime() + this.lifetimeMs), now, externalLogin, firstFactor],
    );
    this.cookies.setCookie(response, this.cookieName, token, { httpOnly: true, maxAgeSeconds: this.lifetimeMs / 1000 });
  }

  /** The live pending sign-in of the request's cookie, or null (missing, unknown, expired, used). */
  async find(request: BackOfficeHttpRequest): Promise<PendingTwoFactorSignIn | null> {
    const token = requestCookies(request)[this.cookieName];
    if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
    const rows = await this.dataSource.query(
      `SELECT id, user_id, security_stamp, external_login, first_factor FROM backoffice_two_factor_challenge
       WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`,
      [sha256Hex(token), this.clock.now()],
    );
    const row = rows[0];
    return row
      ? {
          id: row.id,
          userId: row.user_id,
          securityStamp: row.security_stamp,
          externalLogin: row.external_login ?? null,
          firstFactor: row.first_factor === 'passkey' ? 'passkey' : 'password',
        }
      : null;
  }

  /** Uses the pending sign-in up; true for exactly one caller. */
  async complete(id: string): Promise<boolean> {
    const rows = await this.dataSource.query(
      `UPDATE backoffice_two_factor_challenge SET used_at = $2 WHERE id = $1 AND used_at IS NULL RETURNING id`,
      [id, this.clock.now()],
    );
    return (Array.isArray(rows[0]) ? rows[0] : rows).length === 1;
  }

  clear(response: BackOfficeHttpResponse): void {
    this.cookies.setCookie(response, this.cookieName, '', { httpOnly: true, maxAgeSeconds: 0 });
  }
}
