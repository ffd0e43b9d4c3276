import { Body, Controller, HttpCode, Inject, Post, Res, UseGuards, UsePipes } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import type { BackOfficeHttpResponse } from '../http/http-platform.js';
import { LoginResponse } from '../auth/auth.dto.js';
import { signInError } from '../auth/backoffice-local.strategy.js';
import type { BackOfficeClock } from '../common/clock.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_SIGN_IN_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { BackOfficeSessionIssuer } from '../sessions/backoffice-session-issuer.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import { BackOfficeTwoFactorChallengeService } from '../two-factor/two-factor-challenge.service.js';
import { BackOfficePasskeyCeremonies } from './passkey-ceremonies.service.js';
import { PasskeyOptionsResponse, PasskeyVerifyDto, documented } from './passkey.dto.js';
import { TOO_MANY_SIGN_IN_ATTEMPTS } from '../openapi/rate-limit-descriptions.js';

/** The one answer for every refused passkey: unknown credential, wrong signature, foreign or used challenge, wrong origin. */
export const invalidPasskey = () => new BackOfficeHttpError(401, 'invalid_passkey', 'The passkey was not accepted; try again.');

/** Sign-in with a passkey instead of a password (username-less: discoverable credentials). */
@ApiTags('passkeys')
@Controller('auth/passkey')
@UsePipes(BackOfficeValidationPipe)
export class PasskeySignInController {
  constructor(
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficePasskeyCeremonies) private readonly ceremonies: BackOfficePasskeyCeremonies,
    @Inject(BackOfficeTwoFactorChallengeService) private readonly challenges: BackOfficeTwoFactorChallengeService,
    @Inject(BackOfficeSessionIssuer) private readonly issuer: BackOfficeSessionIssuer,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly identityOptions: ResolvedBackOfficeIdentityOptions,
  ) {}

  private requireSupport(): void {
    if (!this.signInManager.userManager.supportsUserPasskeys) throw BackOfficeHttpError.notFound('Passkeys are not enabled.');
    if (this.identityOptions.denyLocalLogin) throw BackOfficeHttpError.localLoginDisabled();
  }

  @Post('options')
  @HttpCode(200)
  @UseGuards(JsonBodyGuard)
  @ApiOkResponse({ type: PasskeyOptionsResponse, description: 'PublicKeyCredentialRequestOptionsJSON for startAuthentication() (no allowCredentials: the browser offers its discoverable passkeys)' })
  @documented(403, 'local_login_disabled')
  @documented(404, 'not_found: passkeys are not enabled')
  @documented(415, 'unsupported_media_type: send {} as application/json')
  @documented(429, TOO_MANY_SIGN_IN_ATTEMPTS)
  async options(): Promise<PublicKeyCredentialRequestOptionsJSON> {
    this.requireSupport();
    await this.rateLimiter.enforceSignInPerIp('passkey-options-ip');
    return this.ceremonies.authenticationOptions('authentication', null);
  }

  @Post('verify')
  @HttpCode(200)
  @UseGuards(JsonBodyGuard)
  @ApiOkResponse({
    type: LoginResponse,
    description:
      'Signed in (session and XSRF cookies set); or requiresTwoFactor when the passkey did not verify the user and 2FA is on; ' +
      'or requiresTwoFactorSetup with a setup-only session when a group requires two-factor and the user has none',
  })
  @documented(400, 'validation_failed / malformed_json')
  @documented(401, 'invalid_passkey: unknown credential, wrong signature, used or foreign challenge, wrong origin or rp id, counter gone backwards: one answer (a wrong signature counts toward lockout no more than an unknown credential does); user_verification_required: a passkey without user verification, 2FA on and no other second factor (retry with PIN or biometrics)')
  @documented(403, 'not_allowed (disabled / invited), local_login_disabled, or password_reset_required (an admin forced a password reset: set a new password with the emailed link first; only after a valid passkey)')
  @documented(404, 'not_found: passkeys are not enabled')
  @documented(415, 'unsupported_media_type')
  @documented(423, 'locked_out, with retryAfterSeconds: only for a valid assertion (a wrong signature gets the 401 of an unknown credential, locked account or not)')
  @documented(429, `${TOO_MANY_SIGN_IN_ATTEMPTS}; rateLimits.loginPerIpAndUsername per IP + credential id`)
  async verify(@Body() body: PasskeyVerifyDto, @Res({ passthrough: true }) response: BackOfficeHttpResponse): Promise<LoginResponse> {
    this.requireSupport();
    await this.rateLimiter.enforceSignInPerIp('passkey-ip', { name: 'passkey-ip-credential', key: body.credential.id });
    const result = await this.signInManager.passkeySignIn(body.credential as unknown as AuthenticationResponseJSON);
    if (result.status === 'requiresTwoFactor') {
      await this.challenges.start(result.user!, response, null, 'passkey');
      return { status: 'requiresTwoFactor', providers: result.providers ?? [] };
    }
    if (result.status === 'success' || result.status === 'requiresTwoFactorSetup') return this.issuer.issueSignIn({ ...result, status: result.status }, response);
    if (result.status === 'failed') throw invalidPasskey();
    throw signInError(result, this.clock.now());
  }
}
