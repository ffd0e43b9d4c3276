import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Redirect, Req, Res, UseGuards, UsePipes } from '@nestjs/common';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import type { BackOfficeHttpRequest, BackOfficeHttpResponse } from '../http/http-platform.js';
import { ApiFoundResponse, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../openapi/api-errors.decorator.js';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_SIGN_IN_MANAGER, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { AllowTwoFactorSetupSession, sessionOf, type BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { BackOfficeExternalLoginProviders, type BackOfficeExternalLoginProviderDto } from './external-login-providers.service.js';
import { BackOfficeExternalLoginService } from './external-login.service.js';
import { ChallengeQuery, ExternalLoginProviderResponse, InviteChallengeDto, LinkExternalLoginDto, LinkExternalLoginResponse } from './external-login.dto.js';
import { TOO_MANY_CHALLENGES, TOO_MANY_SIGN_IN_ATTEMPTS } from '../openapi/rate-limit-descriptions.js';

/** The 503s of a signed-in provider round trip (link, step-up), whose state stores the user. */
const MIGRATION_OR_PROVIDER_UNAVAILABLE = 'provider_unavailable; migration_required: the database lacks migration 1732620000000 (the state\'s user), named in the server log';

/** External login providers (OpenID Connect): contract section 6. */
@ApiTags('external-logins')
@Controller('auth/external')
@UsePipes(BackOfficeValidationPipe)
export class ExternalLoginController {
  constructor(
    @Inject(BackOfficeExternalLoginService) private readonly externalLogins: BackOfficeExternalLoginService,
    @Inject(BackOfficeExternalLoginProviders) private readonly providers: BackOfficeExternalLoginProviders,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  @Get('providers')
  @ApiOkResponse({ type: [ExternalLoginProviderResponse], description: 'The configured providers (public)' })
  listProviders(): BackOfficeExternalLoginProviderDto[] {
    return this.providers.list();
  }

  @Get(':provider/challenge')
  @Redirect()
  @ApiFoundResponse({
    description:
      "302 to the provider's authorization endpoint (code flow, PKCE S256, state, nonce); with auto=1 (the sign-in page's automatic " +
      'redirect) from a browser that sends a live session cookie or the session cookie twice, 302 to the sign-in page with ' +
      '?error=already_signed_in (and the returnUrl given) instead',
  })
  @ApiErrors(
    [400, 'invalid_return_url (only same-origin paths), token_in_query (an invite in the URL: use POST), validation_failed (e.g. auto other than 1)'],
    [404, 'not_found: unknown provider'],
    [429, TOO_MANY_SIGN_IN_ATTEMPTS],
    [503, 'provider_unavailable: discovery has not succeeded yet (retried with back-off)'],
  )
  async challenge(
    @Param('provider') provider: string,
    @Query() query: ChallengeQuery,
    @Req() request: BackOfficeHttpRequest,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<{ url: string; statusCode: number }> {
    // Query strings end up in proxy logs and browser history: an invite token never travels in one.
    if (query.invite !== undefined) {
      throw new BackOfficeHttpError(400, 'token_in_query', 'Send the invite in the body of POST /auth/external/{provider}/challenge, never in the URL.');
    }
    await this.limitPerIp();
    const url = await this.externalLogins.challenge(provider, { returnUrl: query.returnUrl, auto: query.auto === '1' }, request, response);
    return { url, statusCode: 302 };
  }

  @Post(':provider/challenge')
  @HttpCode(200)
  @UseGuards(JsonBodyGuard)
  @ApiOkResponse({
    type: LinkExternalLoginResponse,
    description:
      'Accept an invite through the provider: the accept-invite page posts the userId and token from its link; send the browser to ' +
      'redirectUrl. The callback links the provider login to the invited user, uses the invite up and signs them in.',
  })
  @ApiErrors(
    [400, 'invalid_token (unknown user, not invited, wrong, used or expired token: one answer), invalid_return_url, validation_failed'],
    [404, 'not_found: unknown provider'],
    [415, 'unsupported_media_type: the body must be application/json'],
    [429, TOO_MANY_SIGN_IN_ATTEMPTS],
    [503, 'provider_unavailable'],
  )
  async inviteChallenge(
    @Param('provider') provider: string,
    @Body() body: InviteChallengeDto,
    @Req() request: BackOfficeHttpRequest,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<LinkExternalLoginResponse> {
    await this.limitPerIp();
    const invite = { userId: body.userId, token: body.token };
    return { redirectUrl: await this.externalLogins.challenge(provider, { returnUrl: body.returnUrl, invite }, request, response) };
  }

  @Get(':provider/callback')
  @Redirect()
  @ApiFoundResponse({
    description:
      '302 to returnUrl (signed in, session cookies set), to the sign-in page with ?status=requiresTwoFactor, to the account page with ' +
      '?status=requiresTwoFactorSetup (a setup-only session: a group requires two-factor), or to the sign-in page ' +
      'with ?error=external_login_failed | external_email_unverified | external_email_in_use | not_allowed | no_linked_account | ' +
      'login_already_linked | invalid_token | external_groups_unavailable. Never a 5xx. A session signed in here counts as a recent ' +
      'sign-in (for reauthentication_required routes) from the ID token\'s auth_time, not from the callback (none without auth_time); ' +
      'after ?status=requiresTwoFactor, from the second factor (POST /auth/2fa).',
  })
  async callback(@Param('provider') provider: string, @Req() request: BackOfficeHttpRequest, @Res({ passthrough: true }) response: BackOfficeHttpResponse): Promise<{ url: string; statusCode: number }> {
    return { url: await this.externalLogins.callback(provider, request, response), statusCode: 302 };
  }

  @Post(':provider/link')
  @HttpCode(200)
  @RequiresRecentSignIn()
  @ApiOkResponse({ type: LinkExternalLoginResponse, description: "Send the browser to redirectUrl; the callback adds the login to this user, the user's other sessions end and this one stays" })
  @ApiErrors(
    [400, 'invalid_return_url, validation_failed'],
    [403, 'xsrf_failed'],
    [404, 'not_found: unknown provider'],
    [409, 'login_already_linked: you have a login of this provider'],
    [429, TOO_MANY_CHALLENGES],
    [503, MIGRATION_OR_PROVIDER_UNAVAILABLE],
  )
  async link(
    @Param('provider') provider: string,
    @Body() body: LinkExternalLoginDto,
    @Req() request: BackOfficeAuthenticatedRequest,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<LinkExternalLoginResponse> {
    return this.startSignedInFlow('link', provider, body, request, response);
  }

  @Post(':provider/reauthenticate')
  // As POST /auth/reauthenticate: a setup-only session must step up too (the 2FA setup routes need a recent sign-in,
  // and one made by a provider sign-in is recent only from its auth_time), also a user without a password.
  @AllowTwoFactorSetupSession()
  @HttpCode(200)
  @BackOfficeAuthorize()
  @ApiOkResponse({
    type: LinkExternalLoginResponse,
    description:
      'Step-up through a linked provider (for users without a password): send the browser to redirectUrl; the callback marks this ' +
      'session re-authenticated (as POST /auth/reauthenticate does, from the ID token\'s auth_time) and lands on returnUrl, or on returnUrl?error=not_allowed when ' +
      'the provider account is not the one linked to you (or while you are locked out), or on returnUrl?error=external_login_failed ' +
      'when the provider did not authenticate you now (the ID token has no auth_time, or one older than the allowed clock skew or session.reauthenticationMinutes, the shorter: a provider session reused). ' +
      'Open to a setup-only session (a group requires two-factor), as POST /auth/reauthenticate is: it stays setup-only',
  })
  @ApiErrors(
    [400, 'invalid_return_url, validation_failed'],
    [401, 'unauthenticated'],
    [403, 'xsrf_failed'],
    [404, 'not_found: unknown provider, or no login of this provider'],
    [429, TOO_MANY_CHALLENGES],
    [503, MIGRATION_OR_PROVIDER_UNAVAILABLE],
  )
  async reauthenticate(
    @Param('provider') provider: string,
    @Body() body: LinkExternalLoginDto,
    @Req() request: BackOfficeAuthenticatedRequest,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<LinkExternalLoginResponse> {
    return this.startSignedInFlow('reauthenticate', provider, body, request, response);
  }

  /** A provider round trip for the signed-in user: `link` needs no login of it yet, `reauthenticate` needs one. */
  private async startSignedInFlow(
    kind: 'link' | 'reauthenticate',
    provider: string,
    body: LinkExternalLoginDto | undefined,
    request: BackOfficeAuthenticatedRequest,
    response: BackOfficeHttpResponse,
  ): Promise<LinkExternalLoginResponse> {
    const { user } = request.backOffice;
    const session = sessionOf(request);
    this.externalLogins.provider(provider);
    const linked = (await this.userManager.getLogins(user)).some((l) => l.provider === provider);
    if (kind === 'link' && linked) {
      throw new BackOfficeHttpError(409, 'login_already_linked', this.userManager.errorDescriber.loginAlreadyLinked().description);
    }
    if (kind === 'reauthenticate' && !linked) throw BackOfficeHttpError.notFound('You have no login of this provider.');
    // Each call stores a pending sign-in (the OIDC state) until it expires: a stolen or idle session cookie must not
    // fill the table (OWASP ASVS 4.0 11.1.4 / 5.0 2.4.1).
    await this.rateLimiter.enforceChallengePerIp(`external-${kind}-ip`);
    const flow = { userId: user.id, sessionId: session.id };
    const redirectUrl = await this.externalLogins.challenge(provider, { returnUrl: body?.returnUrl, [kind]: flow }, request, response);
    return { redirectUrl };
  }

  @Delete('logins/:provider')
  @HttpCode(204)
  @RequiresRecentSignIn()
  @ApiNoContentResponse({ description: "Unlinked; the user's other sessions end (those signed in through the provider among them)" })
  @ApiErrors(
    [403, 'xsrf_failed'],
    [404, 'login_not_found: no login of this provider'],
    [409, 'last_login_method: no usable password and no other login'],
  )
  async unlink(@Param('provider') provider: string, @Req() request: BackOfficeAuthenticatedRequest): Promise<void> {
    const { user } = request.backOffice;
    const sessionId = sessionOf(request).id;
    // A way in is gone (as after a password change): the sessions and pending second steps it opened end with a
    // new security stamp; this session stays, also for its requests in flight meanwhile.
    const result = await this.signInManager.keepSignedInThrough(sessionId, async () => {
      const removed = await this.userManager.removeLogin(user, provider);
      if (removed.succeeded && this.userManager.supportsUserSecurityStamp) await this.userManager.updateSecurityStamp(user);
      return removed;
    });
    if (result.succeeded) {
      await this.signInManager.refreshSignIn(user, sessionId);
      return;
    }
    const error = result.errors[0];
    if (error.code === 'last_login_method') throw new BackOfficeHttpError(409, error.code, error.description);
    if (error.code === 'login_not_found') throw new BackOfficeHttpError(404, error.code, error.description);
    throw new BackOfficeHttpError(501, 'not_supported', error.description);
  }

  private limitPerIp(): Promise<void> {
    return this.rateLimiter.enforceSignInPerIp('external-challenge-ip');
  }
}
