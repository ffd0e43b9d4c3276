import { Body, Controller, HttpCode, Inject, Post, Res, UseGuards, UsePipes } from '@nestjs/common';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { BackOfficeHttpResponse } from '../http/http-platform.js';
import { ErrorResponse, LinkAccountResponse, LoginResponse, UserTokenDto } from '../auth/auth.dto.js';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_SIGN_IN_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { BackOfficeSessionIssuer } from '../sessions/backoffice-session-issuer.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import { BackOfficeInviteService } from './backoffice-invite.service.js';
import { AcceptInviteDto } from './invite.dto.js';
import { TOO_MANY_SIGN_IN_ATTEMPTS } from '../openapi/rate-limit-descriptions.js';

@ApiTags('auth')
@Controller('auth/invite')
@UsePipes(BackOfficeValidationPipe)
export class InviteAcceptController {
  constructor(
    @Inject(BackOfficeInviteService) private readonly invites: BackOfficeInviteService,
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficeSessionIssuer) private readonly issuer: BackOfficeSessionIssuer,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
  ) {}

  // A lookup, not an accept: with denyLocalLogin the invite is still accepted (through a provider's invite challenge,
  // which answers the same invalid_token for a dead link), so its page checks the link here as well. No password is set.
  @Post('verify')
  @UseGuards(JsonBodyGuard)
  @HttpCode(200)
  @ApiOkResponse({ type: LinkAccountResponse, description: 'The invite works: the username of the invited account, for the page\'s username field (password managers). The token stays live. Answers with denyLocalLogin too (the page checks the link before its provider buttons).' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'invalid_token (wrong, used, expired, unknown user, not invited: one answer), validation_failed' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_SIGN_IN_ATTEMPTS })
  async verify(@Body() body: UserTokenDto): Promise<LinkAccountResponse> {
    await this.rateLimiter.enforceSignInPerIp('invite-verify-ip');
    const username = await this.invites.usernameForLink(body.userId, body.token);
    if (username === null) throw BackOfficeHttpError.invalidToken();
    return { username };
  }

  @Post('accept')
  @UseGuards(JsonBodyGuard)
  @HttpCode(200)
  @ApiOkResponse({
    type: LoginResponse,
    description:
      'Password set, user active and signed in (cookies set); as after a password sign-in, a member of a group that requires ' +
      'two-factor gets requiresTwoFactorSetup and a setup-only session (or success with twoFactorSetupDeadline in the grace period)',
  })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'invalid_token, invalid_password, validation_failed' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'local_login_disabled' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: TOO_MANY_SIGN_IN_ATTEMPTS })
  async accept(@Body() body: AcceptInviteDto, @Res({ passthrough: true }) response: BackOfficeHttpResponse): Promise<LoginResponse> {
    if (this.options.denyLocalLogin) throw BackOfficeHttpError.localLoginDisabled();
    await this.rateLimiter.enforceSignInPerIp('invite-accept-ip');
    const user = await this.signInManager.userManager.findById(body.userId);
    if (!user) throw BackOfficeHttpError.invalidToken();
    BackOfficeHttpError.throwIfTokenFlowFailed(await this.invites.accept(user, body.token, body.password));
    // The same rule as a password sign-in: a group's requireTwoFactor (past any grace period) gets a setup-only session.
    return this.issuer.issueSignIn(await this.signInManager.finishSignIn(user), response);
  }
}
