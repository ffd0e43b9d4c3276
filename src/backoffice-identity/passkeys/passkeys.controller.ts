import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Req, UsePipes } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { PublicKeyCredentialCreationOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { BACKOFFICE_SIGN_IN_MANAGER, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { sessionOf, type BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import type { IdentityResult } from '../common/identity-result.js';
import { TOO_MANY_CHALLENGES, TOO_MANY_PROFILE_CHANGES } from '../openapi/rate-limit-descriptions.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { BackOfficePasskeyCeremonies } from './passkey-ceremonies.service.js';
import { PasskeyOptionsResponse, PasskeyRegisterDto, PasskeyRenameDto, PasskeyResponse, toPasskeyResponse, documented } from './passkey.dto.js';

/** Maps a refused passkey change to its HTTP error. */
function passkeyChangeError(result: IdentityResult<unknown>): BackOfficeHttpError {
  const error = result.errors[0];
  switch (error?.code) {
    case 'not_found':
      return BackOfficeHttpError.notFound('No such passkey.');
    case 'passkey_already_registered':
    case 'too_many_passkeys':
    case 'last_second_factor':
      return new BackOfficeHttpError(409, error.code, error.description);
    case 'password_reset_required':
      // The describer's text (a host may word it), as for the codes above.
      return new BackOfficeHttpError(403, error.code, error.description);
    default:
      return new BackOfficeHttpError(400, error?.code ?? 'validation_failed', error?.description ?? 'The request is not valid.');
  }
}

/** The signed-in user's own passkeys: register, list, rename, remove. */
@ApiTags('passkeys')
@Controller('auth/passkeys')
@UsePipes(BackOfficeValidationPipe)
@BackOfficeAuthorize()
export class PasskeysController {
  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BackOfficePasskeyCeremonies) private readonly ceremonies: BackOfficePasskeyCeremonies,
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
  ) {}

  private requireSupport(): void {
    if (!this.userManager.supportsUserPasskeys) throw BackOfficeHttpError.notFound('Passkeys are not enabled.');
  }

  @Get()
  @ApiOkResponse({ type: [PasskeyResponse] })
  @documented(401, 'unauthenticated')
  @documented(404, 'not_found: passkeys are not enabled')
  async list(@Req() request: BackOfficeAuthenticatedRequest): Promise<PasskeyResponse[]> {
    this.requireSupport();
    return (await this.userManager.getPasskeys(request.backOffice.user)).map(toPasskeyResponse);
  }

  @Post('options')
  @HttpCode(200)
  @RequiresRecentSignIn()
  @ApiOkResponse({ type: PasskeyOptionsResponse, description: 'PublicKeyCredentialCreationOptionsJSON for startRegistration(); the challenge is single use' })
  @documented(403, 'xsrf_failed')
  @documented(404, 'not_found: passkeys are not enabled')
  @documented(429, TOO_MANY_CHALLENGES)
  async registrationOptions(@Req() request: BackOfficeAuthenticatedRequest): Promise<PublicKeyCredentialCreationOptionsJSON> {
    this.requireSupport();
    // Each call stores a challenge until it expires (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1).
    await this.rateLimiter.enforceChallengePerIp('passkey-registration-options-ip');
    const user = request.backOffice.user;
    return this.ceremonies.registrationOptions(user, await this.userManager.getPasskeys(user));
  }

  @Post()
  @HttpCode(201)
  @RequiresRecentSignIn()
  @ApiCreatedResponse({ type: PasskeyResponse, description: "Registered (backoffice.user.passkey.added); the user's other sessions end, this one stays" })
  @documented(400, 'validation_failed, invalid_passkey (attestation refused: challenge, origin, rp id, signature), invalid_passkey_name')
  @documented(401, 'unauthenticated (also when the user was deleted while the registration was under way)')
  @documented(403, 'xsrf_failed, password_reset_required (an admin forced a password reset while the registration was under way)')
  @documented(404, 'not_found: passkeys are not enabled')
  @documented(409, 'passkey_already_registered, too_many_passkeys')
  async register(@Req() request: BackOfficeAuthenticatedRequest, @Body() body: PasskeyRegisterDto): Promise<PasskeyResponse> {
    this.requireSupport();
    const user = request.backOffice.user;
    const name = this.userManager.normalizePasskeyName(body.name);
    if (name === null) {
      const { code, description } = this.userManager.errorDescriber.invalidPasskeyName();
      throw new BackOfficeHttpError(400, code, description);
    }
    const verified = await this.ceremonies.verifyRegistration(user, body.credential as unknown as RegistrationResponseJSON, name);
    if (!verified) throw new BackOfficeHttpError(400, 'invalid_passkey', 'The passkey could not be verified; start again.');
    // A new way in (as turning 2FA on): the user's other sessions end with a new security stamp; this session stays,
    // also for its requests in flight meanwhile (OWASP ASVS 5.0 7.4.3).
    const sessionId = sessionOf(request).id;
    const result = await this.signInManager.keepSignedInThrough(sessionId, () => this.userManager.addPasskey(user, verified));
    // The user deleted meanwhile: their sessions went with them, so this one answers as any route of a session gone.
    if (!result.succeeded) throw result.errors[0]?.code === 'not_found' ? BackOfficeHttpError.unauthenticated() : passkeyChangeError(result);
    await this.signInManager.refreshSignIn(user, sessionId);
    return toPasskeyResponse(result.value!);
  }

  @Patch(':id')
  @ApiOkResponse({ type: PasskeyResponse, description: 'Renamed (backoffice.user.passkey.renamed, with the previous name); the name it already has (trimmed, NFC) answers the same, nothing written or audited' })
  @documented(400, 'validation_failed, invalid_passkey_name')
  @documented(401, 'unauthenticated')
  @documented(403, 'xsrf_failed')
  @documented(404, 'not_found: no such passkey of yours')
  @documented(429, TOO_MANY_PROFILE_CHANGES)
  async rename(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string, @Body() body: PasskeyRenameDto): Promise<PasskeyResponse> {
    this.requireSupport();
    const user = request.backOffice.user;
    // Each rename is an audit entry: limited per user, one counter with PUT /auth/me (OWASP ASVS 4.0 11.1.4).
    await this.rateLimiter.enforceProfileChangePerUser(user.id);
    const result = await this.userManager.renamePasskey(user, id, body.name);
    if (!result.succeeded) throw passkeyChangeError(result);
    const renamed = (await this.userManager.getPasskeys(user)).find((p) => p.id === id);
    if (!renamed) throw BackOfficeHttpError.notFound('No such passkey.');
    return toPasskeyResponse(renamed);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequiresRecentSignIn()
  @ApiResponse({ status: 204, description: "Removed (backoffice.user.passkey.removed); the user's other sessions end, this one stays" })
  @documented(403, 'xsrf_failed')
  @documented(404, 'not_found: no such passkey of yours')
  @documented(409, 'last_second_factor: two-factor is on and rests on this passkey alone')
  async remove(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string): Promise<void> {
    this.requireSupport();
    const user = request.backOffice.user;
    const sessionId = sessionOf(request).id;
    // A way in is gone (as after a password change or an unlinked login): the sessions it may have opened end
    // with a new security stamp; this session stays, also for its requests in flight meanwhile.
    const removed = await this.signInManager.keepSignedInThrough(sessionId, () => this.userManager.removeOwnPasskey(user, id));
    if (!removed.succeeded) throw passkeyChangeError(removed);
    await this.signInManager.refreshSignIn(user, sessionId);
  }
}
