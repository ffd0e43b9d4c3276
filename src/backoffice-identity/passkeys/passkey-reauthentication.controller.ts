import { Body, Controller, HttpCode, Inject, Post, Req, Res, UsePipes } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { BackOfficeAccountService } from '../account/backoffice-account.service.js';
import { ReauthenticateResponse } from '../auth/auth.dto.js';
import { signInError, stepUpAnswer, throwIfLockedOut } from '../auth/backoffice-local.strategy.js';
import type { BackOfficeClock } from '../common/clock.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import type { BackOfficeHttpResponse } from '../http/http-platform.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { sessionOf, type BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeAuthorize } from '../sessions/backoffice-authorize.decorator.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { TOO_MANY_CHALLENGES, TOO_MANY_PASSWORD_CHECKS } from '../openapi/rate-limit-descriptions.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { BackOfficePasskeyCeremonies } from './passkey-ceremonies.service.js';
import { documented, PasskeyOptionsResponse, PasskeyVerifyDto } from './passkey.dto.js';

/**
 * Step-up re-authentication with a passkey instead of the password (`POST /auth/reauthenticate`): what lets a
 * passwordless user reach `@RequiresRecentSignIn()` routes. Same rules: failures count toward lockout, a locked
 * account's assertion is not checked (423), and the assertion is limited per IP as the password is
 * (`rateLimits.passwordCheckPerIp`, 429); its options, which store a challenge, under `rateLimits.challengePerIp`. With `denyLocalLogin`, 403 `local_login_disabled` (as the password step-up):
 * the step-up then goes through the provider.
 */
@ApiTags('passkeys')
@Controller('auth/reauthenticate/passkey')
@UsePipes(BackOfficeValidationPipe)
@BackOfficeAuthorize()
export class PasskeyReauthenticationController {
  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BackOfficePasskeyCeremonies) private readonly ceremonies: BackOfficePasskeyCeremonies,
    @Inject(BackOfficeAccountService) private readonly account: BackOfficeAccountService,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly identityOptions: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
  ) {}

  /** Refuses the step-up unless passkeys can serve it. */
  private requireSupport(): void {
    if (!this.userManager.supportsUserPasskeys) throw BackOfficeHttpError.notFound('Passkeys are not enabled.');
    // A passkey is a local credential, like the password: with denyLocalLogin, step-up goes through the provider.
    if (this.identityOptions.denyLocalLogin) throw BackOfficeHttpError.localLoginDisabled();
  }

  @Post('options')
  @HttpCode(200)
  @ApiOkResponse({ type: PasskeyOptionsResponse, description: 'PublicKeyCredentialRequestOptionsJSON for startAuthentication(), limited to your passkeys' })
  @documented(400, 'unknown_provider: the account has no passkey')
  @documented(401, 'unauthenticated')
  @documented(403, 'xsrf_failed, or local_login_disabled (denyLocalLogin)')
  @documented(404, 'not_found: passkeys are not enabled')
  @documented(423, 'locked_out')
  @documented(429, TOO_MANY_CHALLENGES)
  async options(@Req() request: BackOfficeAuthenticatedRequest): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const { user } = request.backOffice;
    this.requireSupport();
    // 423 while the account is locked, as at the step-up; not audited: the options check nothing.
    throwIfLockedOut(this.account.refuseStepUpOptionsWhileLocked(user), user, this.clock.now());
    // Each call stores a challenge until it expires: a stolen or idle session cookie must not fill the table
    // (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1).
    await this.rateLimiter.enforceChallengePerIp('reauthenticate-passkey-options-ip');
    const passkeys = await this.userManager.getPasskeys(user);
    if (passkeys.length === 0) throw new BackOfficeHttpError(400, 'unknown_provider', 'No passkey is registered for this account.');
    return this.ceremonies.authenticationOptions('reauthentication', user.id, passkeys);
  }

  @Post()
  @HttpCode(200)
  @ApiOkResponse({
    type: ReauthenticateResponse,
    description: 'Passkey confirmed: sensitive routes accept this session for the next minutes. The session gets a new token: new session and XSRF cookies are set, the old token stops working',
  })
  @documented(400, 'validation_failed')
  @documented(401, 'unauthenticated (also when another step-up renewed the session token first), or invalid_passkey (counts toward lockout)')
  @documented(403, 'xsrf_failed, or local_login_disabled (denyLocalLogin)')
  @documented(404, 'not_found: passkeys are not enabled')
  @documented(423, 'locked_out: the assertion is not checked while the account is locked; also the answer to the refused assertion that locks the account, or whose count finds it locked meanwhile by a request in flight; also a right assertion once wrong attempts in flight locked it')
  @documented(429, TOO_MANY_PASSWORD_CHECKS)
  async reauthenticate(
    @Req() request: BackOfficeAuthenticatedRequest,
    @Body() body: PasskeyVerifyDto,
    @Res({ passthrough: true }) httpResponse: BackOfficeHttpResponse,
  ): Promise<ReauthenticateResponse> {
    const { user } = request.backOffice;
    const session = sessionOf(request);
    // A step-up guess as much as a password is (OWASP ASVS 4.0 2.2.1 / 5.0 6.3.1): lockout bounds the guesses per
    // account, this one client's across the accounts it holds sessions of. The options only issue a challenge.
    this.requireSupport();
    await this.rateLimiter.enforcePasswordCheckPerIp();
    // 423 while the account is locked: the assertion is not checked, as at the password step-up, and the refusal is
    // audited as a locked sign-in is (OWASP ASVS 5.0 16.3.1).
    throwIfLockedOut(await this.account.refuseStepUpWhileLocked(user), user, this.clock.now());
    const response = body.credential as unknown as AuthenticationResponseJSON;
    const passkey = await this.ceremonies.findPasskey(response);
    const result = passkey && passkey.userId === user.id ? await this.ceremonies.verifyAssertion(response, passkey, 'reauthentication', user.id) : null;
    if (!result?.verified) {
      if (!result) await this.ceremonies.discardChallenge(response, 'reauthentication', user.id);
      const counted = await this.userManager.credentialRefused(user, 'invalid_passkey', 'reauthentication');
      // Locked by this count, or meanwhile by a request in flight: 423 as at sign-in and the password step-up, not 401
      // (OWASP ASVS 4.0 2.2.1; user.lockoutEnd is the lock's end).
      if (await this.userManager.lockedByCount(user, counted)) throw signInError({ status: 'lockedOut', lockoutEnd: user.lockoutEnd }, this.clock.now());
      throw new BackOfficeHttpError(401, 'invalid_passkey', 'The passkey was not accepted; try again.');
    }
    const notifyUsed = () => this.ceremonies.notifyUsed(result.passkey, 'reauthentication', result.userVerified);
    return stepUpAnswer(await this.account.completeStepUp(user, session, httpResponse, 'passkey', notifyUsed), user, this.clock.now());
  }
}
