import { Body, Controller, Delete, Get, HttpCode, Inject, Logger, Param, Post, Query, Req, Res, UseGuards, UsePipes } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { BackOfficeClock } from '../common/clock.js';
import { toSameOriginPath } from '../common/same-origin-path.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeHttpPlatform, type BackOfficeHttpResponse } from '../http/http-platform.js';
import { LIST_PAGE_RESPONSE_HEADERS, ListPageQuery, nextPageLink } from '../http/list-page.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import { UserLogoutSuccessNotification } from '../notifications/notifications.js';
import { BackOfficeAccountService } from '../account/backoffice-account.service.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { AllowTwoFactorSetupSession, SESSION_PEEK_HEADER, sessionOf, type BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import { BackOfficeSessionService, type BackOfficeSessionDeadlines, type BackOfficeSessionDto } from '../sessions/backoffice-session.service.js';
import { BackOfficeSessionCookies } from '../sessions/session-cookies.js';
import { toBackOfficeUserDto, type BackOfficeUserDto } from '../users/backoffice-user.js';
import { BackOfficeSessionIssuer } from '../sessions/backoffice-session-issuer.js';
import { BackOfficeTwoFactorChallengeService } from '../two-factor/two-factor-challenge.service.js';
import { BackOfficeExternalLoginSessions } from '../external-logins/external-login-sessions.service.js';
import { BackOfficeExternalLoginProviders } from '../external-logins/external-login-providers.service.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { ApiErrors } from '../openapi/api-errors.decorator.js';
import {
  ChangePasswordDto,
  LoginDto,
  LoginResponse,
  LogoutResponse,
  MeResponse,
  ReauthenticateDto,
  ReauthenticateResponse,
  RevokedSessionsResponse,
  SessionResponse,
} from './auth.dto.js';
import { stepUpAnswer, throwIfLockedOut, throwIfPasswordRefused } from './backoffice-local.strategy.js';
import { BackOfficeLoginGuard, type BackOfficeLoginRequest } from './backoffice-login.guard.js';
import { PER_IP, TOO_MANY_PASSWORD_CHECKS } from '../openapi/rate-limit-descriptions.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';

const errors = ApiErrors;

/**
 * The place a browser may be sent after logout, or undefined: an absolute `http(s):` URL without whitespace or
 * control characters, as given, or a same-origin path as {@link toSameOriginPath} writes it (the final string).
 * Anything else a listener set (`javascript:`, `data:`, `//host`, `/.//host`, ...) is not a sign-out page and is
 * never handed to the client (OWASP ASVS 4.0 5.1.5).
 */
function signOutRedirectUrl(url: string): string | undefined {
  if (url.startsWith('/')) return toSameOriginPath(url);
  if (/[\0-\x20\x7f]/.test(url)) return undefined;
  try {
    const { protocol } = new URL(url);
    return protocol === 'https:' || protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** Sign-in, sign-out and the signed-in user's own account and sessions. */
@ApiTags('auth')
@Controller('auth')
@UsePipes(BackOfficeValidationPipe)
export class AuthController {
  private readonly logger = new Logger('BackOfficeAuth');

  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
    @Inject(BackOfficeSessionCookies) private readonly cookies: BackOfficeSessionCookies,
    @Inject(BackOfficeSessionIssuer) private readonly issuer: BackOfficeSessionIssuer,
    @Inject(BackOfficeTwoFactorChallengeService) private readonly challenges: BackOfficeTwoFactorChallengeService,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeExternalLoginSessions) private readonly externalSessions: BackOfficeExternalLoginSessions,
    @Inject(BackOfficeExternalLoginProviders) private readonly externalProviders: BackOfficeExternalLoginProviders,
    @Inject(BackOfficeAccountService) private readonly account: BackOfficeAccountService,
    @Inject(BackOfficeHttpPlatform) private readonly platform: BackOfficeHttpPlatform,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
  ) {}

  @Post('login')
  @HttpCode(200)
  @UseGuards(JsonBodyGuard, BackOfficeLoginGuard)
  @ApiBody({ type: LoginDto })
  @ApiOkResponse({ type: LoginResponse, description: 'Signed in (session and XSRF cookies set), or a second factor is required' })
  @errors(
    [400, 'validation_failed / malformed_json'],
    [401, 'invalid_credentials: unknown user and wrong password alike'],
    [403, 'not_allowed (disabled / invited) or local_login_disabled'],
    [423, 'locked_out, with retryAfterSeconds'],
    [415, 'unsupported_media_type: the body must be application/json (no login CSRF through HTML forms)'],
    [429, `too_many_requests, with Retry-After: rateLimits.loginPerIp ${PER_IP}; rateLimits.loginPerIpAndUsername per IP + username`],
  )
  async login(@Req() request: BackOfficeLoginRequest, @Res({ passthrough: true }) response: BackOfficeHttpResponse): Promise<LoginResponse> {
    const result = request.backOfficeSignIn;
    if (result.status === 'requiresTwoFactor') {
      await this.challenges.start(result.user!, response);
      return { status: 'requiresTwoFactor', providers: result.providers ?? [] };
    }
    if (result.status === 'requiresTwoFactorSetup') return this.issuer.issueSignIn({ ...result, status: result.status }, response);
    let user: BackOfficeUserDto;
    try {
      user = await this.issuer.issue(result.user!, response);
    } finally {
      // The guard held the last-login write and audit entry for the session row; written now if it was not.
      await this.sessions.flushSignInWrites();
    }
    return result.twoFactorSetupDeadline ? { status: 'success', user, twoFactorSetupDeadline: result.twoFactorSetupDeadline.toISOString() } : { status: 'success', user };
  }

  @Post('logout')
  @AllowTwoFactorSetupSession()
  @HttpCode(200)
  @BackOfficeAuthorize()
  @ApiOkResponse({ type: LogoutResponse })
  @errors([401, 'unauthenticated'], [403, 'xsrf_failed'])
  async logout(@Req() request: BackOfficeAuthenticatedRequest, @Res({ passthrough: true }) response: BackOfficeHttpResponse): Promise<LogoutResponse> {
    const { user } = request.backOffice;
    const session = sessionOf(request);
    await this.sessions.revoke(user.id, session.id);
    this.cookies.clear(response);
    const notification = await this.userManager.notify(UserLogoutSuccessNotification, user);
    const url = notification.signOutRedirectUrl;
    if (typeof url === 'string' && url.length > 0) {
      const target = signOutRedirectUrl(url);
      if (target !== undefined) return { signOutRedirectUrl: target };
      this.logger.warn('A listener of backoffice.user.logout.success set a signOutRedirectUrl that is no http(s) URL or same-origin path; it was ignored.');
    }
    // A session that came through a provider with an end_session_endpoint: RP-initiated logout. Set after the
    // notification, so the ID token in the URL never reaches the audit trail.
    return { signOutRedirectUrl: await this.externalSessions.signOutUrl(session.id) };
  }

  @Get('me')
  @AllowTwoFactorSetupSession()
  @BackOfficeAuthorize()
  @ApiHeader({ name: SESSION_PEEK_HEADER, required: false, description: '`1`: answer without sliding the idle deadline' })
  @ApiOkResponse({ type: MeResponse, description: 'The signed-in user with their external logins, and the session\'s idle and absolute deadlines' })
  @errors([401, 'unauthenticated'])
  async me(
    @Req() request: BackOfficeAuthenticatedRequest,
  ): Promise<BackOfficeUserDto & { session: BackOfficeSessionDeadlines; logins: Array<{ provider: string; displayName: string }>; recoveryCodesLeft: number | null; twoFactorProviders: string[] | null }> {
    const auth = request.backOffice;
    const { user } = auth;
    // With external providers configured, the session lookup read the linked logins too (one round trip in
    // every configuration); a swapped user store or manager is asked separately.
    const providers = !this.externalProviders.enabled
      ? []
      : ((auth.scheme === 'cookie' ? auth.loginProviders : undefined) ?? (await this.userManager.getLogins(user)).map((l) => l.provider));
    const logins = providers.map((provider) => ({ provider, displayName: this.externalProviders.displayName(provider) }));
    // While 2FA is on, asked here only (the session lookup every authenticated request makes stays as it is): the
    // unused recovery codes and the second factors set up (recovery codes aside; the account page offers TOTP beside
    // a passkey), sent at once: with the built-in stores and providers one round trip's wait for users with 2FA.
    const [recoveryCodesLeft, twoFactorProviders] = user.twoFactorEnabled
      ? await Promise.all([
          this.userManager.supportsUserRecoveryCodes ? this.userManager.countRecoveryCodes(user) : null,
          this.userManager.supportsUserTwoFactor ? this.userManager.getSetUpTwoFactorProviders(user) : null,
        ])
      : [null, null];
    // Object.assign onto the DTO, not `{ ...dto, session, ... }`: on Node 20 a spread followed by more keys took
    // several µs per request. The same keys in the same order.
    return Object.assign(toBackOfficeUserDto(user, this.clock.now()), { session: this.sessions.deadlines(sessionOf(request)), logins, recoveryCodesLeft, twoFactorProviders });
  }

  @Post('change-password')
  @HttpCode(200)
  @BackOfficeAuthorize()
  @ApiOkResponse({ description: 'Changed; the user\'s other sessions are revoked. The current password was checked (a re-authentication): the session gets a new token, new session and XSRF cookies are set, the old token stops working' })
  @errors(
    [400, 'validation_failed / invalid_password with errors'],
    [401, 'invalid_credentials: wrong current password'],
    [403, 'xsrf_failed, or local_login_disabled: passwords are off (denyLocalLogin)'],
    [409, 'no_local_password: the account has no password (it signs in through an external login provider); not counted toward lockout'],
    [423, 'locked_out: the password is not checked while the account is locked'],
    [429, TOO_MANY_PASSWORD_CHECKS],
  )
  async changePassword(
    @Req() request: BackOfficeAuthenticatedRequest,
    @Body() body: ChangePasswordDto,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<{ status: 'success' }> {
    // With denyLocalLogin a password signs nobody in: it may neither be set here nor stand in for a sign-in below.
    if (this.options.denyLocalLogin) throw BackOfficeHttpError.localLoginDisabled();
    await this.rateLimiter.enforcePasswordCheckPerIp();
    const { user } = request.backOffice;
    const result = await this.account.changePassword(user, sessionOf(request), body.currentPassword, body.newPassword, response);
    throwIfLockedOut(result, user, this.clock.now());
    throwIfPasswordRefused(result);
    if (!result.succeeded) throw BackOfficeHttpError.invalidPassword(result.errors);
    return { status: 'success' };
  }

  @Post('reauthenticate')
  // A setup-only session must step up too: the 2FA setup routes need a recent sign-in and it lasts 15 minutes.
  @AllowTwoFactorSetupSession()
  @HttpCode(200)
  @BackOfficeAuthorize()
  @ApiOkResponse({
    type: ReauthenticateResponse,
    description: 'Password confirmed: sensitive routes accept this session for the next minutes. The session gets a new token: new session and XSRF cookies are set, the old token stops working',
  })
  @errors(
    [400, 'validation_failed / malformed_json'],
    [401, 'unauthenticated (also when another step-up renewed the session token first), or invalid_credentials: wrong password (counts toward lockout)'],
    [403, 'xsrf_failed, or local_login_disabled: passwords are off (denyLocalLogin); step up through your external login provider'],
    [409, 'no_local_password: re-authenticate through your external login provider'],
    [423, 'locked_out: the password is not checked while the account is locked; also a right password once wrong ones in flight locked it'],
    [429, TOO_MANY_PASSWORD_CHECKS],
  )
  async reauthenticate(
    @Req() request: BackOfficeAuthenticatedRequest,
    @Body() body: ReauthenticateDto,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<ReauthenticateResponse> {
    const { user } = request.backOffice;
    const session = sessionOf(request);
    if (this.options.denyLocalLogin) throw BackOfficeHttpError.localLoginDisabled();
    await this.rateLimiter.enforcePasswordCheckPerIp();
    const result = await this.account.reauthenticateWithPassword(user, session, body.password, response);
    throwIfPasswordRefused(result);
    // 423 as at sign-in (user.lockoutEnd is the lock's end), or 401 when the session's token was renewed meanwhile.
    return stepUpAnswer(result, user, this.clock.now());
  }

  @Get('sessions')
  @BackOfficeAuthorize()
  @ApiOkResponse({
    type: [SessionResponse],
    headers: LIST_PAGE_RESPONSE_HEADERS,
    description: 'Own live sessions, most recently seen first (ties by id), all of them unless there are more than `take` (default and largest 1000); then a page and a `Link: <...>; rel="next"` header',
  })
  @errors([400, 'validation_failed (skip or take)'], [401, 'unauthenticated'])
  async listSessions(
    @Req() request: BackOfficeAuthenticatedRequest,
    @Query() query: ListPageQuery,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<BackOfficeSessionDto[]> {
    const page = await this.account.listSessionsPage(request.backOffice.user, sessionOf(request), query);
    const next = page.more ? nextPageLink(query) : undefined;
    if (next) this.platform.setHeader(response, 'Link', next);
    return page.items;
  }

  @Delete('sessions')
  @HttpCode(200)
  @BackOfficeAuthorize()
  @RequiresRecentSignIn()
  @ApiOkResponse({ type: RevokedSessionsResponse, description: 'Signed out everywhere else: every other session of the user ended' })
  @errors([401, 'unauthenticated or reauthentication_required'], [403, 'xsrf_failed'])
  async revokeOtherSessions(@Req() request: BackOfficeAuthenticatedRequest): Promise<RevokedSessionsResponse> {
    return { revoked: await this.account.revokeOtherSessions(request.backOffice.user, sessionOf(request)) };
  }

  @Delete('sessions/:id')
  @HttpCode(204)
  @BackOfficeAuthorize()
  // Ending sessions one at a time is signing out elsewhere as much as DELETE /auth/sessions is (OWASP ASVS 5.0 7.5.2):
  // a stolen cookie must not end the owner's sessions by id either. Checked before the id is looked up: no oracle.
  @RequiresRecentSignIn()
  @ApiResponse({ status: 204, description: 'Revoked' })
  @errors([401, 'unauthenticated or reauthentication_required'], [403, 'xsrf_failed'], [404, 'not_found: no such session of yours'])
  async revokeSession(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string): Promise<void> {
    if (!(await this.account.revokeSession(request.backOffice.user, id))) throw BackOfficeHttpError.notFound('No such session.');
  }
}
