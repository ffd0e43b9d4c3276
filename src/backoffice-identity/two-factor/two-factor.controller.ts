import { Body, Controller, HttpCode, Inject, Post, Req, Res, UseGuards, UsePipes } from '@nestjs/common';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ErrorResponse, LoginResponse, TwoFactorCodeDto } from '../auth/auth.dto.js';
import { signInError } from '../auth/backoffice-local.strategy.js';
import type { BackOfficeClock } from '../common/clock.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_SIGN_IN_MANAGER } from '../constants.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { BackOfficeHttpRequest, BackOfficeHttpResponse } from '../http/http-platform.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { UserTwoFactorEnabledNotification } from '../notifications/notifications.js';
import { AllowTwoFactorSetupSession, sessionOf, type BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import { BackOfficeSessionIssuer } from '../sessions/backoffice-session-issuer.js';
import { BackOfficeSessionService } from '../sessions/backoffice-session.service.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { BackOfficeTwoFactorChallengeService } from './two-factor-challenge.service.js';
import type { TwoFactorProvider, TwoFactorSetup } from './two-factor-provider.interface.js';
import { RecoveryCodesResponse, TwoFactorDisableDto, TwoFactorSetupDto, TwoFactorSetupResponse } from './two-factor.dto.js';

const expired = () => new BackOfficeHttpError(401, 'two_factor_expired', 'The sign-in expired; sign in with your password again.');
const invalidCode = () => new BackOfficeHttpError(401, 'invalid_code', 'The code is not valid.');

/** The second step of sign-in, and the signed-in user's own two-factor settings. */
@ApiTags('two-factor')
@Controller('auth/2fa')
@UsePipes(BackOfficeValidationPipe)
export class TwoFactorController {
  constructor(
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficeTwoFactorChallengeService) private readonly challenges: BackOfficeTwoFactorChallengeService,
    @Inject(BackOfficeSessionIssuer) private readonly issuer: BackOfficeSessionIssuer,
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  private get userManager(): BackOfficeUserManager {
    return this.signInManager.userManager;
  }

  @Post()
  @HttpCode(200)
  @UseGuards(JsonBodyGuard)
  @ApiOkResponse({ type: LoginResponse, description: 'Signed in (session cookies set)' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed' })
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'invalid_code (counts as a failed attempt) or two_factor_expired' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'not_allowed' })
  @ApiResponse({ status: 423, type: ErrorResponse, description: 'locked_out' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: 'too_many_requests (per IP, as login)' })
  async verify(@Req() request: BackOfficeHttpRequest, @Body() body: TwoFactorCodeDto, @Res({ passthrough: true }) response: BackOfficeHttpResponse): Promise<LoginResponse> {
    const ip = BackOfficeRequestContextStore.current().ipAddress ?? 'unknown';
    await this.rateLimiter.enforce([{ name: 'two-factor-ip', key: ip, limit: this.options.rateLimits.loginPerIp, windowSeconds: 60 }]);
    const pending = await this.challenges.find(request);
    if (!pending) throw expired();
    const user = await this.userManager.findById(pending.userId);
    if (!user || user.securityStamp !== pending.securityStamp) throw expired();
    const result = await this.signInManager.twoFactorSignIn(user, body.provider, body.code);
    if (result.status === 'failed') throw invalidCode();
    if (result.status !== 'success') {
      this.challenges.clear(response);
      throw signInError(result, this.clock.now());
    }
    if (!(await this.challenges.complete(pending.id))) throw expired();
    this.challenges.clear(response);
    return { status: 'success', user: await this.issuer.issue(user, response) };
  }

  @Post('setup')
  @AllowTwoFactorSetupSession()
  @HttpCode(200)
  @BackOfficeAuthorize()
  @RequiresRecentSignIn()
  @ApiOkResponse({ type: TwoFactorSetupResponse })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'unknown_provider, validation_failed' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found: two-factor authentication is off' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'two_factor_already_enabled' })
  async setup(@Req() request: BackOfficeAuthenticatedRequest, @Body() body: TwoFactorSetupDto): Promise<TwoFactorSetup> {
    const provider = this.providerOrThrow(body.provider);
    const user = request.backOffice.user;
    if (user.twoFactorEnabled) throw new BackOfficeHttpError(409, 'two_factor_already_enabled', 'Two-factor authentication is already on.');
    return provider.generateSetup(user);
  }

  @Post('enable')
  @AllowTwoFactorSetupSession()
  @HttpCode(200)
  @BackOfficeAuthorize()
  @RequiresRecentSignIn()
  @ApiOkResponse({ type: RecoveryCodesResponse, description: 'On; the user\'s other sessions end; 10 recovery codes, shown once' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'invalid_code, unknown_provider' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found: two-factor authentication is off' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'two_factor_already_enabled' })
  async enable(@Req() request: BackOfficeAuthenticatedRequest, @Body() body: TwoFactorCodeDto): Promise<{ recoveryCodes: string[] }> {
    const provider = this.providerOrThrow(body.provider);
    const { user } = request.backOffice;
    const session = sessionOf(request);
    if (user.twoFactorEnabled) throw new BackOfficeHttpError(409, 'two_factor_already_enabled', 'Two-factor authentication is already on.');
    if (!(await provider.verify(user, body.code, { enrolling: true }))) {
      throw new BackOfficeHttpError(400, 'invalid_code', 'The code is not valid; check the time on your device and try the next code.');
    }
    await this.userManager.setTwoFactorEnabled(user, true);
    await this.keepOnlyThisSession(user.id, session.id, user.securityStamp);
    await this.sessions.completeTwoFactorSetup(session);
    if (user.twoFactorSetupDeadline) await this.userManager.setTwoFactorSetupDeadline(user, null);
    const recoveryCodes = await this.userManager.generateNewRecoveryCodes(user);
    await this.userManager.notify(UserTwoFactorEnabledNotification, user);
    return { recoveryCodes };
  }

  @Post('disable')
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'invalid_credentials: wrong password; unauthenticated; reauthentication_required' })
  @HttpCode(200)
  @BackOfficeAuthorize()
  @RequiresRecentSignIn()
  @ApiOkResponse({ description: 'Off; the user\'s other sessions end' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found: two-factor authentication is off' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'two_factor_not_enabled' })
  async disable(@Req() request: BackOfficeAuthenticatedRequest, @Body() body: TwoFactorDisableDto): Promise<{ status: 'success' }> {
    this.requireSupport();
    const { user } = request.backOffice;
    const session = sessionOf(request);
    if (!user.twoFactorEnabled) throw new BackOfficeHttpError(409, 'two_factor_not_enabled', 'Two-factor authentication is not on.');
    if (user.twoFactorRequiredByGroup) {
      throw new BackOfficeHttpError(403, 'two_factor_required', 'One of your groups requires two-factor authentication; it cannot be turned off.');
    }
    if (!(await this.userManager.checkPassword(user, body.password))) {
      await this.userManager.accessFailed(user);
      throw new BackOfficeHttpError(401, 'invalid_credentials', 'The password is incorrect.');
    }
    await this.userManager.resetTwoFactor(user);
    await this.keepOnlyThisSession(user.id, session.id, user.securityStamp);
    return { status: 'success' };
  }

  /** The security stamp changed: this session adopts it, every other one ends. */
  private async keepOnlyThisSession(userId: string, sessionId: string, stamp: string): Promise<void> {
    await this.sessions.adoptSecurityStamp(sessionId, stamp);
    await this.sessions.revokeAll(userId, sessionId);
  }

  private requireSupport(): void {
    if (!this.userManager.supportsUserTwoFactor) throw BackOfficeHttpError.notFound('Two-factor authentication is not enabled.');
  }

  private providerOrThrow(name: string): TwoFactorProvider {
    this.requireSupport();
    const provider = this.userManager.getTwoFactorProvider(name);
    if (!provider) throw new BackOfficeHttpError(400, 'unknown_provider', 'No such two-factor provider.');
    return provider;
  }
}
