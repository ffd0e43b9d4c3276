import { Body, Controller, HttpCode, Inject, Post, Put, Req, UseGuards, UsePipes } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ErrorResponse, UserResponse } from '../auth/auth.dto.js';
import type { BackOfficeClock } from '../common/clock.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import type { BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import { ConfirmEmailChangeDto, RequestEmailChangeDto, UpdateOwnProfileDto } from './account.dto.js';
import { toBackOfficeUserDto, type BackOfficeUserDto } from './backoffice-user.js';
import { BackOfficeUserLifecycleService } from './backoffice-user-lifecycle.service.js';
import { TOO_MANY_PROFILE_CHANGES, TOO_MANY_SIGN_IN_ATTEMPTS } from '../openapi/rate-limit-descriptions.js';

/** The signed-in user's own profile: name, and email change with confirmation. */
@ApiTags('auth')
@Controller('auth/me')
@UsePipes(BackOfficeValidationPipe)
export class AccountController {
  constructor(
    @Inject(BackOfficeUserLifecycleService) private readonly lifecycle: BackOfficeUserLifecycleService,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  @Put()
  @HttpCode(200)
  @BackOfficeAuthorize()
  @ApiOkResponse({ type: UserResponse, description: 'The name changed (audited with a diff); the name the user already has (trimmed, NFC) answers the same, nothing written or audited' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed' })
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'unauthenticated' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'xsrf_failed' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_PROFILE_CHANGES })
  async updateName(@Req() request: BackOfficeAuthenticatedRequest, @Body() body: UpdateOwnProfileDto): Promise<BackOfficeUserDto> {
    const { user } = request.backOffice;
    // Each rename is an audit entry: limited per user, so a stolen cookie cannot bury the earlier ones (OWASP ASVS 4.0 11.1.4).
    await this.rateLimiter.enforceProfileChangePerUser(user.id);
    await this.lifecycle.updateProfile(user, { name: body.name });
    return toBackOfficeUserDto(user, this.clock.now());
  }

  @Post('email')
  @HttpCode(202)
  @BackOfficeAuthorize()
  @RequiresRecentSignIn()
  @ApiAcceptedResponse({ description: 'A confirmation link went to the new address and a notice to the old one (the same answer when the address is taken)' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (bad or unchanged email)' })
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'unauthenticated, or reauthentication_required (POST /auth/reauthenticate first)' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'xsrf_failed' })
  @ApiResponse({
    status: 409,
    type: ErrorResponse,
    description: 'directory_managed: usernameIsEmail and the directory (LDAP) manages the user, whose username (the key it signs in with) would move; nothing is mailed',
  })
  @ApiResponse({ status: 429, type: ErrorResponse, description: 'too_many_requests (rateLimits.emailChangePerUser, default 5 per hour per user)' })
  async requestEmailChange(@Req() request: BackOfficeAuthenticatedRequest, @Body() body: RequestEmailChangeDto): Promise<{ status: 'pending' }> {
    // Each request mails a link to an address the caller picks: limited per user, so a signed-in account cannot
    // turn the app into a mail cannon (counted before the address is looked up, so a 429 tells nothing about it).
    const { user } = request.backOffice;
    await this.rateLimiter.enforce([{ name: 'email-change-user', key: user.id, limit: this.options.rateLimits.emailChangePerUser, windowSeconds: 3600 }]);
    await this.lifecycle.requestEmailChange(user, body.newEmail, request.backOffice.session?.id);
    return { status: 'pending' };
  }

  @Post('email/confirm')
  @HttpCode(200)
  @UseGuards(JsonBodyGuard)
  @ApiOkResponse({ type: UserResponse, description: 'The email changed; every session ended (sign in with the new address)' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'invalid_token (wrong, used, expired), validation_failed' })
  @ApiResponse({
    status: 409,
    type: ErrorResponse,
    description: 'duplicate_email: the address was taken meanwhile; directory_managed: the user was marked directory-managed since the link was asked (usernameIsEmail: the username would move); nothing is written',
  })
  @ApiResponse({ status: 415, type: ErrorResponse, description: 'unsupported_media_type' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_SIGN_IN_ATTEMPTS })
  async confirmEmailChange(@Body() body: ConfirmEmailChangeDto): Promise<BackOfficeUserDto> {
    await this.rateLimiter.enforceSignInPerIp('email-confirm-ip');
    return toBackOfficeUserDto(await this.lifecycle.confirmEmailChange(body.userId, body.token), this.clock.now());
  }
}
