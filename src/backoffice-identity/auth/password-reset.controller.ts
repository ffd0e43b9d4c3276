import { Body, Controller, HttpCode, Inject, Post, UseGuards, UsePipes, type CanActivate, Injectable } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiProperty, ApiResponse, ApiTags } from '@nestjs/swagger';
import { IsNotEmpty, IsString, Matches, MaxLength } from 'class-validator';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { ErrorResponse, LinkAccountResponse, MAX_PASSWORD_INPUT, UserTokenDto } from './auth.dto.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { BackOfficePasswordResetService } from './backoffice-password-reset.service.js';
import { PER_IP, TOO_MANY_SIGN_IN_ATTEMPTS } from '../openapi/rate-limit-descriptions.js';

export class ForgotPasswordDto {
  @ApiProperty({ example: 'admin@example.com', maxLength: 256 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  @Matches(/^[^\s@]+@[^\s@]+$/u, { message: 'email must be an email address' })
  email!: string;
}

export class ResetPasswordDto extends UserTokenDto {
  @ApiProperty({ maxLength: MAX_PASSWORD_INPUT })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PASSWORD_INPUT)
  newPassword!: string;
}

/** 404 `not_found` when `allowPasswordReset` is off; 403 `local_login_disabled` when local login is denied. */
@Injectable()
export class PasswordResetAllowedGuard implements CanActivate {
  constructor(@Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions) {}
  canActivate(): boolean {
    if (!this.options.allowPasswordReset) throw BackOfficeHttpError.notFound('Password reset is not enabled.');
    if (this.options.denyLocalLogin) throw BackOfficeHttpError.localLoginDisabled();
    return true;
  }
}

@ApiTags('auth')
@Controller('auth')
@UsePipes(BackOfficeValidationPipe)
@UseGuards(PasswordResetAllowedGuard, JsonBodyGuard)
export class PasswordResetController {
  constructor(
    @Inject(BackOfficePasswordResetService) private readonly resets: BackOfficePasswordResetService,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
  ) {}

  @Post('forgot-password')
  @HttpCode(202)
  @ApiAcceptedResponse({ description: 'Always, for known and unknown addresses alike; an email follows for active users' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'local_login_disabled' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found when allowPasswordReset is false' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: `too_many_requests, with Retry-After: rateLimits.forgotPasswordPerIp (20 per hour) ${PER_IP}, rateLimits.forgotPasswordPerEmail (5 per hour) per email; the same for known and unknown addresses` })
  async forgot(@Body() body: ForgotPasswordDto): Promise<{ status: 'accepted' }> {
    // Both before the address is looked up: a 429 is the same for known and unknown addresses. The per-IP rule
    // keeps one client from mailing resets to many addresses; the per-email one, many clients to one address. The
    // per-IP rule comes first and the per-email one counts only the requests it let through: a client over its IP
    // limit cannot use up an address's budget and so keep its owner from getting a link.
    const limits = this.options.rateLimits;
    await this.rateLimiter.enforceInOrder([
      ...this.rateLimiter.perIpRules('forgot-ip', limits.forgotPasswordPerIp, 3600),
      // The manager's own lookup form: every spelling that finds one user counts against that user's budget.
      { name: 'forgot-email', key: this.userManager.normalizeKey(body.email), limit: limits.forgotPasswordPerEmail, windowSeconds: 3600 },
    ]);
    this.resets.requestReset(body.email);
    return { status: 'accepted' };
  }

  @Post('reset-password/verify')
  @HttpCode(200)
  @ApiOkResponse({ type: LinkAccountResponse, description: 'The link works: the username of its account, for the page\'s username field (password managers). The token stays live.' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'invalid_token (wrong, used, expired, unknown user: one answer), validation_failed' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'local_login_disabled' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found when allowPasswordReset is false' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_SIGN_IN_ATTEMPTS })
  async verify(@Body() body: UserTokenDto): Promise<LinkAccountResponse> {
    await this.rateLimiter.enforceSignInPerIp('reset-verify-ip');
    const username = await this.resets.usernameForLink(body.userId, body.token);
    if (username === null) throw BackOfficeHttpError.invalidToken();
    return { username };
  }

  @Post('reset-password')
  @HttpCode(200)
  @ApiOkResponse({ description: 'Password set; token used up; lockout cleared; every session revoked' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'invalid_token (wrong, used, expired), invalid_password, validation_failed' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'local_login_disabled' })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found when allowPasswordReset is false' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_SIGN_IN_ATTEMPTS })
  async reset(@Body() body: ResetPasswordDto): Promise<{ status: 'success' }> {
    await this.rateLimiter.enforceSignInPerIp('reset-password-ip');
    BackOfficeHttpError.throwIfTokenFlowFailed(await this.resets.reset(body.userId, body.token, body.newPassword));
    return { status: 'success' };
  }
}
