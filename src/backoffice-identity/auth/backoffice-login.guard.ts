import { type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { AuthGuard, type IAuthModuleOptions } from '@nestjs/passport';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { BackOfficeHttpRequest } from '../http/http-platform.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { BackOfficeSessionService } from '../sessions/backoffice-session.service.js';
import type { SignInResult } from '../sign-in/backoffice-sign-in-manager.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { LoginDto } from './auth.dto.js';
import { BACKOFFICE_LOCAL_STRATEGY, type BackOfficeLocalStrategyHandle } from './backoffice-local.strategy.js';

/** Where the login guard puts the sign-in result of the passport-local strategy. */
export const BACKOFFICE_SIGN_IN_PROPERTY = 'backOfficeSignIn';

/** The login request after the guard: the sign-in result from the passport-local strategy. */
export type BackOfficeLoginRequest = BackOfficeHttpRequest & { [BACKOFFICE_SIGN_IN_PROPERTY]: SignInResult };

/**
 * Guards `POST /auth/login` with passport's own `AuthGuard` (from `@nestjs/passport`) over this module
 * instance's passport-local strategy. Before passport runs it validates the body (400), refuses when local
 * login is off (403) and applies the login rate limits (429); passport then signs in (401 / 423 / 403).
 * Passport reads only `request.body` and, with the guard's callback, never writes the response: the same guard
 * works on Express and Fastify.
 */
@Injectable()
export class BackOfficeLoginGuard extends AuthGuard() {
  private readonly validation = new BackOfficeValidationPipe();

  constructor(
    @Inject(BACKOFFICE_LOCAL_STRATEGY) strategy: BackOfficeLocalStrategyHandle,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly identityOptions: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
  ) {
    // The strategy's name is unique to this module instance, so it is the guard's default strategy.
    super({ defaultStrategy: strategy.name, property: BACKOFFICE_SIGN_IN_PROPERTY, session: false } satisfies IAuthModuleOptions);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<BackOfficeHttpRequest>();
    const body = (await this.validation.transform(request.body === undefined ? {} : request.body, { type: 'body', metatype: LoginDto })) as LoginDto;
    if (this.identityOptions.denyLocalLogin) throw BackOfficeHttpError.localLoginDisabled();
    // Keyed by the manager's own lookup form, so every spelling that finds one user counts against that user.
    await this.rateLimiter.enforceSignInPerIp('login-ip', { name: 'login-ip-user', key: this.userManager.normalizeKey(body.username) });
    request.body = body;
    // A success's last-login write and audit entry go with the session row the route writes (one statement);
    // any other outcome writes what it held back before the answer.
    this.sessions.deferSignInWrites();
    let signedIn = false;
    try {
      const allowed = (await super.canActivate(context)) as boolean;
      signedIn = (request as Partial<BackOfficeLoginRequest>)[BACKOFFICE_SIGN_IN_PROPERTY]?.status === 'success';
      return allowed;
    } finally {
      if (!signedIn) await this.sessions.flushSignInWrites();
    }
  }

  /** A refusal from the strategy keeps its error (401 / 423 / 403); no result at all is `invalid_credentials`. */
  override handleRequest<TUser = SignInResult>(error: unknown, result: TUser | false): TUser {
    if (error) throw error;
    if (!result) throw BackOfficeHttpError.invalidCredentials();
    return result;
  }
}
