import { Body, Controller, HttpCode, Inject, Post, Req, Res, UseGuards, UsePipes } from '@nestjs/common';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ErrorResponse, LoginResponse, TwoFactorCodeDto } from '../auth/auth.dto.js';
import { signInError, throwIfLockedOut } from '../auth/backoffice-local.strategy.js';
import type { BackOfficeClock } from '../common/clock.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_SIGN_IN_MANAGER } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { BackOfficeHttpRequest, BackOfficeHttpResponse } from '../http/http-platform.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { UserExternalLoginSuccessNotification } from '../notifications/notifications.js';
import { BackOfficeAccountService } from '../account/backoffice-account.service.js';
import { BackOfficeExternalLoginSessions } from '../external-logins/external-login-sessions.service.js';
import { AllowTwoFactorSetupSession, sessionOf, type BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import { BackOfficeSessionIssuer } from '../sessions/backoffice-session-issuer.js';
import { BackOfficeSessionService } from '../sessions/backoffice-session.service.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import type { TwoFactorProvider, TwoFactorSetup } from './two-factor-provider.interface.js';
import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { BackOfficePasskeyCeremonies } from '../passkeys/passkey-ceremonies.service.js';
import { PASSKEY_PROVIDER, secondFactorChallengeSlot } from '../passkeys/passkey-two-factor.provider.js';
import { PasskeyOptionsResponse, PasskeyVerifyDto } from '../passkeys/passkey.dto.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import { BackOfficeTwoFactorChallengeService, type PendingTwoFactorSignIn } from './two-factor-challenge.service.js';
import { RecoveryCodesRegenerateDto, RecoveryCodesResponse, TwoFactorDisableDto, TwoFactorSetupDto, TwoFactorSetupResponse } from './two-factor.dto.js';
import { TOO_MANY_PASSWORD_CHECKS, TOO_MANY_SIGN_IN_ATTEMPTS } from '../openapi/rate-limit-descriptions.js';
import { RECOVERY_PROVIDER } from './recovery-codes.js';

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
    @Inject(BackOfficePasskeyCeremonies) private readonly passkeys: BackOfficePasskeyCeremonies,
    @Inject(BackOfficeExternalLoginSessions) private readonly externalSessions: BackOfficeExternalLoginSessions,
    @Inject(BackOfficeAccountService) private readonly account: BackOfficeAccountService,
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
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_SIGN_IN_ATTEMPTS })
  async verify(@Req() request: BackOfficeHttpRequest, @Body() body: TwoFactorCodeDto, @Res({ passthrough: true }) response: BackOfficeHttpResponse): Promise<LoginResponse> {
    return this.completeSignIn(request, response, body.provider, body.code);
  }

  @Post('passkey/options')
  @HttpCode(200)
  @UseGuards(JsonBodyGuard)
  @ApiOkResponse({ type: PasskeyOptionsResponse, description: 'PublicKeyCredentialRequestOptionsJSON for startAuthentication(), limited to the pending user\'s passkeys' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'unknown_provider: the account has no passkey, or a passkey started this sign-in (then the second factor cannot be one)' })
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'two_factor_expired: no pending sign-in' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found: passkeys are not enabled' })
  @ApiResponse({ status: 415, type: ErrorResponse, description: 'unsupported_media_type' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_SIGN_IN_ATTEMPTS })
  async passkeyOptions(@Req() request: BackOfficeHttpRequest): Promise<PublicKeyCredentialRequestOptionsJSON> {
    if (!this.userManager.supportsUserPasskeys) throw BackOfficeHttpError.notFound('Passkeys are not enabled.');
    await this.limitPerIp();
    const { user, pending } = await this.pendingUser(request);
    if (pending.firstFactor === 'passkey') throw new BackOfficeHttpError(400, 'unknown_provider', 'A passkey started this sign-in; finish it with another factor.');
    const passkeys = await this.userManager.getPasskeys(user);
    if (passkeys.length === 0) throw new BackOfficeHttpError(400, 'unknown_provider', 'No passkey is registered for this account.');
    // One live challenge per pending sign-in: its next call replaces it, another pending sign-in's stays (OWASP ASVS 4.0
    // 11.1.4 / 5.0 2.4.1), and only this pending sign-in's second step can use it (4.0 2.8.4 / 5.0 6.5.1).
    return this.passkeys.authenticationOptions('second_factor', user.id, passkeys, secondFactorChallengeSlot(pending.id));
  }

  @Post('passkey')
  @HttpCode(200)
  @UseGuards(JsonBodyGuard)
  @ApiOkResponse({ type: LoginResponse, description: 'Signed in (session cookies set)' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed' })
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'invalid_code (the passkey was refused; counts as a failed attempt) or two_factor_expired' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'not_allowed' })
  @ApiResponse({ status: 415, type: ErrorResponse, description: 'unsupported_media_type' })
  @ApiResponse({ status: 423, type: ErrorResponse, description: 'locked_out' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_SIGN_IN_ATTEMPTS })
  async verifyPasskey(@Req() request: BackOfficeHttpRequest, @Body() body: PasskeyVerifyDto, @Res({ passthrough: true }) response: BackOfficeHttpResponse): Promise<LoginResponse> {
    return this.completeSignIn(request, response, PASSKEY_PROVIDER, JSON.stringify(body.credential));
  }

  private limitPerIp(): Promise<void> {
    return this.rateLimiter.enforceSignInPerIp('two-factor-ip');
  }

  /** The live pending sign-in of the request and its user, or 401 `two_factor_expired`. */
  private async pendingUser(request: BackOfficeHttpRequest): Promise<{ user: BackOfficeUser; pending: PendingTwoFactorSignIn }> {
    const pending = await this.challenges.find(request);
    if (!pending) throw expired();
    const user = await this.userManager.findById(pending.userId);
    if (!user || user.securityStamp !== pending.securityStamp) throw expired();
    return { user, pending };
  }

  /** The second step: checks the answer of `provider`, then issues the session (once per pending sign-in). */
  private async completeSignIn(request: BackOfficeHttpRequest, response: BackOfficeHttpResponse, provider: string, code: string): Promise<LoginResponse> {
    await this.limitPerIp();
    const { user, pending } = await this.pendingUser(request);
    // A passkey that passed the first step (without user verification) is not also the second factor.
    const sameFactor = pending.firstFactor === 'passkey' && provider === PASSKEY_PROVIDER;
    // A recovery code is used up by its check: the pending sign-in is claimed first, so of two answers sent at once
    // (a TOTP code and a recovery code) the one that signs in is the only one that may use a recovery code up; a
    // request that finds it claimed gets two_factor_expired with its code unused (OWASP ASVS 4.0 2.6.1). Other
    // factors are checked first and claim it after, as before.
    const claimedFirst = provider === RECOVERY_PROVIDER;
    if (claimedFirst && !(await this.challenges.complete(pending.id))) throw expired();
    const result = await this.signInManager.twoFactorSignIn(user, provider, sameFactor ? '' : code, { pendingSignInId: pending.id });
    if (result.status === 'failed') {
      // A wrong recovery code (counted toward lockout) leaves the sign-in pending, under a new cookie token.
      if (claimedFirst) await this.challenges.resume(pending, response);
      throw invalidCode();
    }
    if (result.status !== 'success') {
      // Locked out or not allowed: the pending sign-in ends on the server too (a kept cookie must not resume it
      // after an unlock without the password).
      if (!claimedFirst) await this.challenges.complete(pending.id);
      this.challenges.clear(response);
      throw signInError(result, this.clock.now());
    }
    if (!claimedFirst && !(await this.challenges.complete(pending.id))) throw expired();
    this.challenges.clear(response);
    if (pending.externalLogin) {
      await this.userManager.notify(UserExternalLoginSuccessNotification, user, { provider: this.externalSessions.providerOf(pending.externalLogin) });
    }
    return { status: 'success', user: await this.issuer.issue(user, response, { externalLogin: pending.externalLogin }) };
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
    const result = await this.account.startTwoFactorSetup(request.backOffice.user, body.provider);
    if (!result.succeeded) throw BackOfficeHttpError.fromResult(result);
    return result.value!;
  }

  @Post('enable')
  @AllowTwoFactorSetupSession()
  @HttpCode(200)
  @BackOfficeAuthorize()
  @RequiresRecentSignIn()
  @ApiOkResponse({
    type: RecoveryCodesResponse,
    description: 'On; the user\'s other sessions end; 10 recovery codes, shown once. A setup-only session becomes a full one with a new token: new session and XSRF cookies are set, the old token stops working',
  })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'invalid_code (also when a setup sent meanwhile replaced the key being confirmed: nothing turned on), unknown_provider' })
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'unauthenticated (also when another request renewed the session token first), reauthentication_required' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found: two-factor authentication is off' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'two_factor_already_enabled; two_factor_not_enabled: 2FA was turned off (an admin\'s reset) while this turned it on, no recovery codes kept' })
  async enable(
    @Req() request: BackOfficeAuthenticatedRequest,
    @Body() body: TwoFactorCodeDto,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<{ recoveryCodes: string[] }> {
    // A setup-only session becomes a full one with a new token (new session and XSRF cookies; OWASP ASVS 5.0 7.2.4).
    const result = await this.account.enableTwoFactor(request.backOffice.user, sessionOf(request), body.provider, body.code, response);
    if (!result.succeeded) throw BackOfficeHttpError.fromResult(result, { invalid_code: 400 });
    return result.value!;
  }

  @Post('recovery-codes')
  @HttpCode(200)
  @BackOfficeAuthorize()
  @RequiresRecentSignIn()
  @ApiOkResponse({ type: RecoveryCodesResponse, description: '10 new recovery codes, shown once; the old set stops working at once. Sessions stay' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed: the body, if any, must be an empty JSON object' })
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'unauthenticated, reauthentication_required' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'xsrf_failed' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found: two-factor authentication or recovery codes are off' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'two_factor_not_enabled' })
  async regenerateRecoveryCodes(@Req() request: BackOfficeAuthenticatedRequest, @Body() _body: RecoveryCodesRegenerateDto): Promise<RecoveryCodesResponse> {
    const result = await this.account.regenerateRecoveryCodes(request.backOffice.user);
    if (!result.succeeded) throw BackOfficeHttpError.fromResult(result);
    return result.value!;
  }

  @Post('disable')
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'invalid_credentials: wrong password (also for a directory-managed user the password checker no longer knows, not counted); unauthenticated; reauthentication_required' })
  @HttpCode(200)
  @BackOfficeAuthorize()
  @RequiresRecentSignIn()
  @ApiOkResponse({ description: 'Off; the user\'s other sessions end. The session gets a new token: new session and XSRF cookies are set, the old token stops working' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'two_factor_required: a group of the user requires it' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found: two-factor authentication is off' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'two_factor_not_enabled; no_local_password: the account has no password to check (not counted toward lockout)' })
  @ApiResponse({ status: 423, type: ErrorResponse, description: 'locked_out: the password is not checked while the account is locked' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_PASSWORD_CHECKS })
  async disable(
    @Req() request: BackOfficeAuthenticatedRequest,
    @Body() body: TwoFactorDisableDto,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<{ status: 'success' }> {
    const { user } = request.backOffice;
    if (body.password === undefined && !this.options.denyLocalLogin) {
      throw BackOfficeHttpError.of('validation_failed', 'The request is not valid.', {
        errors: [{ field: 'password', code: 'isNotEmpty', description: 'password should not be empty' }],
      });
    }
    await this.rateLimiter.enforcePasswordCheckPerIp();
    const result = await this.account.disableTwoFactor(user, sessionOf(request), body.password, response);
    throwIfLockedOut(result, user, this.clock.now());
    if (!result.succeeded) throw BackOfficeHttpError.fromResult(result);
    return { status: 'success' };
  }
}
