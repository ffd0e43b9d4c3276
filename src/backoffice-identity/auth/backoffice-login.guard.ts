import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import passport from 'passport';
import { normalizeLookupKey } from '../common/lookup-normalizer.js';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { BackOfficeHttpRequest, BackOfficeHttpResponse } from '../http/http-platform.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import type { SignInResult } from '../sign-in/backoffice-sign-in-manager.js';
import { LoginDto } from './auth.dto.js';
import { BACKOFFICE_LOCAL_STRATEGY, type BackOfficeLocalStrategyHandle } from './backoffice-local.strategy.js';

/** The login request after the guard: the sign-in result from the passport-local strategy. */
export type BackOfficeLoginRequest = BackOfficeHttpRequest & { backOfficeSignIn: SignInResult };

/**
 * Guards `POST /auth/login`: validates the body (400), refuses when local login is off (403), applies the
 * login rate limits (429), then authenticates through passport-local (401 / 423 / 403).
 */
@Injectable()
export class BackOfficeLoginGuard implements CanActivate {
  private readonly validation = new BackOfficeValidationPipe();

  constructor(
    @Inject(BACKOFFICE_LOCAL_STRATEGY) private readonly strategy: BackOfficeLocalStrategyHandle,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<BackOfficeLoginRequest>();
    const body = (await this.validation.transform(request.body === undefined ? {} : request.body, { type: 'body', metatype: LoginDto })) as LoginDto;
    if (this.options.denyLocalLogin) throw BackOfficeHttpError.localLoginDisabled();
    const ip = BackOfficeRequestContextStore.current().ipAddress ?? 'unknown';
    const limits = this.options.rateLimits;
    await this.rateLimiter.enforce([
      { name: 'login-ip-user', key: `${ip}|${normalizeLookupKey(body.username)}`, limit: limits.loginPerIpAndUsername, windowSeconds: 60 },
      { name: 'login-ip', key: ip, limit: limits.loginPerIp, windowSeconds: 60 },
    ]);
    request.body = body;
    request.backOfficeSignIn = await this.authenticate(request, http.getResponse<BackOfficeHttpResponse>());
    return true;
  }

  /**
   * Runs the passport-local strategy. Passport reads only `request.body` (and `request.query`) and, with a
   * callback, never writes the response: the same call works with Express's and Fastify's request objects.
   */
  private authenticate(request: BackOfficeHttpRequest, response: BackOfficeHttpResponse): Promise<SignInResult> {
    return new Promise((resolve, reject) => {
      passport.authenticate(this.strategy.name, { session: false }, (error: unknown, result: SignInResult | false) => {
        if (error) return reject(error);
        if (!result) return reject(BackOfficeHttpError.invalidCredentials());
        resolve(result);
      })(request, response, (error: unknown) => (error ? reject(error) : undefined));
    });
  }
}
