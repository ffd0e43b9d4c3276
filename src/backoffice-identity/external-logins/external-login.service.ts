import { Inject, Injectable, Logger } from '@nestjs/common';
import { MAX_CLOCK_SKEW_SECONDS } from '../common/clock.js';
import { repeatedRequestCookies, requestRawQuery, type BackOfficeHttpRequest, type BackOfficeHttpResponse } from '../http/http-platform.js';
import * as oidc from 'openid-client';
import { sha256Hex } from '../common/crypto.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { toStorableText } from '../common/storable-text.js';
import { toSameOriginPath } from '../common/same-origin-path.js';
import type { IdentityError } from '../common/identity-result.js';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_SIGN_IN_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeInviteService } from '../invites/backoffice-invite.service.js';
import {
  UserAutoLinkedNotification,
  UserExternalLoginSuccessNotification,
  UserInviteAcceptedNotification,
  UserLoginFailedNotification,
  UserLoginLinkedNotification,
  UserLoginRequiresTwoFactorSetupNotification,
  UserLoginRequiresVerificationNotification,
  UserProfileUpdatedNotification,
  UserProviderGroupsRefusedNotification,
  UserReauthenticatedNotification,
  UserTwoFactorRequestedNotification,
} from '../notifications/notifications.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeSessionIssuer } from '../sessions/backoffice-session-issuer.js';
import { BackOfficeSessionService } from '../sessions/backoffice-session.service.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import { BackOfficeTwoFactorChallengeService } from '../two-factor/two-factor-challenge.service.js';
import { isPendingInvitee, type BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import {
  BackOfficeDuplicateLoginError,
  isTransactionalUserStore,
  isUserLockoutStore,
  isUserLoginStore,
  isUserTokenStore,
  type BackOfficeUserStore,
  type UserLoginStore,
} from '../users/stores/user-store.interface.js';
import type { BackOfficeAutoLinkCandidate, BackOfficeExternalLoginClaims, ResolvedExternalLoginProvider } from './external-login-options.js';
import { BackOfficeExternalLoginProviders, describeError, type BackOfficeExternalLoginProvider } from './external-login-providers.service.js';
import { BackOfficeExternalLoginSessions } from './external-login-sessions.service.js';
import { ProviderDeadlineError, withProviderDeadline } from './provider-fetch.js';
import { BackOfficeExternalLoginStateService, PENDING_MINUTES, type PendingExternalLogin } from './external-login-state.service.js';

/** Codes of a failed callback, sent to the sign-in page as `?error=<code>`. */
export type ExternalLoginErrorCode =
  | 'external_login_failed'
  | 'external_email_unverified'
  | 'external_email_in_use'
  | 'not_allowed'
  | 'no_linked_account'
  | 'login_already_linked'
  | 'invalid_token'
  | 'external_groups_unavailable';

/** A refused external sign-in; ends as a redirect to the sign-in page, never as a 5xx. */
export class ExternalLoginError extends Error {
  constructor(
    readonly code: ExternalLoginErrorCode,
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
  }
}

/** The longest name a user may have (the user validator's bound). */
const MAX_NAME_LENGTH = 256;

/** OpenID Connect Core 2: `sub` is at most 255 ASCII characters. */
const MAX_SUBJECT_LENGTH = 255;

/** A subject that can be a login's provider key: 1-255 characters, none that PostgreSQL's text refuses. */
function isProviderKey(sub: unknown): sub is string {
  return typeof sub === 'string' && sub.length > 0 && sub.length <= MAX_SUBJECT_LENGTH && toStorableText(sub) === sub;
}

/**
 * Whether two addresses name the same mailbox for an invite take-over: equal up to canonical equivalence (NFC) and
 * ASCII letter case, nothing more. Not NFKC and not `toLowerCase()` on other letters: compatibility forms (ligatures,
 * fullwidth letters) and letters that lower-case into ASCII (KELVIN SIGN into "k") are other addresses.
 */
function isSameMailbox(a: string, b: string): boolean {
  const fold = (email: string) => email.normalize('NFC').replace(/[A-Z]/g, (c) => c.toLowerCase());
  return fold(a) === fold(b);
}

/**
 * The group names a groups claim holds: one string, or an array whose every element is a string. Anything else (a
 * number, an object, a list of objects such as `[{ id, name }]` or of numbers) cannot be read: undefined.
 */
function groupNamesOf(claim: unknown): string[] | undefined {
  if (typeof claim === 'string') return [claim];
  if (Array.isArray(claim) && claim.every((g) => typeof g === 'string')) return claim as string[];
  return undefined;
}

/**
 * Why an ID token's `iat` or `auth_time` is out of bounds, or undefined (OpenID Connect Core 3.1.3.7 (10)). openid-client
 * checks `exp` only: a token "issued" an hour from now, or a day ago and still unexpired, is refused here. An ID token
 * is minted at the code exchange, so it cannot predate the pending sign-in it completes ({@link PENDING_MINUTES}).
 * `nowSeconds` is the system clock, as for openid-client's own `exp` and `auth_time` checks.
 */
function idTokenTimeProblem(claims: { iat?: unknown; auth_time?: unknown }, nowSeconds: number): string | undefined {
  const { iat, auth_time: authTime } = claims;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'the ID token has no issue time (iat)';
  if (iat > nowSeconds + MAX_CLOCK_SKEW_SECONDS) return 'the ID token was issued in the future (iat beyond the allowed clock skew)';
  if (iat < nowSeconds - PENDING_MINUTES * 60 - MAX_CLOCK_SKEW_SECONDS) return 'the ID token was issued before this sign-in could have started (iat)';
  if (authTime !== undefined && (typeof authTime !== 'number' || authTime > nowSeconds + MAX_CLOCK_SKEW_SECONDS)) {
    return 'the ID token says the person authenticated in the future (auth_time beyond the allowed clock skew)';
  }
  return undefined;
}

/**
 * Why an ID token does not show an authentication made for this link or step-up (sent with `max_age=0`), or undefined
 * (OWASP ASVS 4.0 3.7.1, 5.0 6.8.x). `auth_time` is REQUIRED when `max_age` was requested (OpenID Connect Core 2,
 * 3.1.2.1): a token without it is refused. One older than `maxAgeSeconds` before this callback (which the provider
 * sends right after the person authenticates) is a provider session reused, not an authentication now: the step-up
 * makes the session fresh from `auth_time` on (never a later time). `maxAgeSeconds` is the allowed clock skew, or `session.reauthenticationMinutes`
 * when that is shorter (never a looser check than the window itself). A session reused within it cannot be told from
 * a provider clock that is behind.
 */
function freshAuthenticationProblem(claims: { auth_time?: unknown }, nowSeconds: number, maxAgeSeconds: number): string | undefined {
  const { auth_time: authTime } = claims;
  if (typeof authTime !== 'number' || !Number.isFinite(authTime)) return 'the ID token has no authentication time (auth_time), required as max_age was sent';
  if (authTime < nowSeconds - maxAgeSeconds) return 'the provider did not authenticate the person for this step-up or link (auth_time older than the allowed clock skew or re-authentication window: a provider session reused)';
  return undefined;
}

/**
 * When the provider authenticated the person (the ID token's `auth_time`, seconds), or undefined when the token has
 * none. A non-finite one (JSON `-1e400` parses to -Infinity, which passes {@link idTokenTimeProblem}) counts as none:
 * read as a time it would make the session fresh from now, while a token without `auth_time` makes none.
 */
export function idTokenAuthTime(claims: { auth_time?: unknown }): number | undefined {
  return typeof claims.auth_time === 'number' && Number.isFinite(claims.auth_time) ? claims.auth_time : undefined;
}

/**
 * How long ago (seconds) the provider authenticated the person, on the system clock the ID token's time checks use,
 * taken when the step-up or the sign-in's session is written: the userinfo call and the writes between the token
 * exchange and then do not lengthen its window. The session service makes it a time (never in the future; one that
 * is no time, such as an `auth_time` of -1e13 before the earliest Date, makes no recent sign-in).
 */
function authenticatedSecondsAgo(authTimeSeconds: number | undefined): number | undefined {
  return authTimeSeconds === undefined ? undefined : Date.now() / 1000 - authTimeSeconds;
}

/**
 * How long ago the provider authenticated the person of a sign-in ({@link authenticatedSecondsAgo}, taken when the
 * session is written), or null without `auth_time`: the session is fresh from the provider's authentication, never
 * from the callback (OWASP ASVS 4.0 3.7.1, 5.0 7.5.3). A sign-in sends no `max_age`, so a provider session left open
 * answers it silently; the session it makes passes `@RequiresRecentSignIn()` routes only within
 * `session.reauthenticationMinutes` of that authentication, as a step-up with that `auth_time` would. A second factor
 * checked by the module after the provider (`POST /auth/2fa`) makes the session fresh from then.
 */
function signInAge(authTimeSeconds: number | undefined): number | null {
  return authenticatedSecondsAgo(authTimeSeconds) ?? null;
}

/** What the code exchange gives a callback: the claims, the raw ID token, and when the provider authenticated the person (`auth_time`, seconds). */
type ExchangedLogin = { claims: BackOfficeExternalLoginClaims; idToken?: string; authTimeSeconds?: number };

/**
 * The query string of the provider's redirect (without `?`; `''` without one), read off the request target as sent.
 * Never through `new URL(request.url)`: an absolute-form target (RFC 9112 3.2.2) such as `http://:99999/backoffice/...`
 * or `http://a:b@/backoffice/...` is routed by its path, but its authority is no valid URL, and the throw (before the
 * callback's error handling) answered 500 instead of `?error=external_login_failed`.
 */
function callbackQuery(request: BackOfficeHttpRequest): string {
  const query = requestRawQuery(request) ?? '';
  const fragment = query.indexOf('#');
  return fragment === -1 ? query : query.slice(0, fragment);
}

/** Authentication methods (RFC 8176) that mean the provider did more than one factor. */
const MULTI_FACTOR_AMR = ['mfa', 'otp', 'hwk', 'swk', 'sms', 'face', 'fpt', 'iris', 'retina', 'vbm'];

/**
 * OpenID Connect sign-in (authorization code flow with PKCE S256, `state` and `nonce`, through openid-client),
 * auto-linking, manual linking, invites carried through the provider, provider-managed groups, and the
 * second factor after an external sign-in.
 */
@Injectable()
export class BackOfficeExternalLoginService {
  private readonly logger = new Logger('BackOfficeExternalLogins');
  /** How old a link's or step-up's `auth_time` may be: the clock skew, or the re-authentication window when shorter. */
  private get freshAuthenticationSeconds(): number {
    return Math.min(MAX_CLOCK_SKEW_SECONDS, Math.ceil(this.options.session.reauthenticationMinutes * 60));
  }

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficeExternalLoginProviders) private readonly providers: BackOfficeExternalLoginProviders,
    @Inject(BackOfficeExternalLoginStateService) private readonly states: BackOfficeExternalLoginStateService,
    @Inject(BackOfficeExternalLoginSessions) private readonly externalSessions: BackOfficeExternalLoginSessions,
    @Inject(BackOfficeSessionIssuer) private readonly issuer: BackOfficeSessionIssuer,
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
    @Inject(BackOfficeTwoFactorChallengeService) private readonly challenges: BackOfficeTwoFactorChallengeService,
    @Inject(BackOfficeInviteService) private readonly invites: BackOfficeInviteService,
  ) {}

  private get userManager(): BackOfficeUserManager {
    return this.signInManager.userManager;
  }

  /**
   * The sign-in page: where failures and two-factor prompts land. Its canonical path, without a trailing slash
   * (`/backoffice/` is a 302 to `/backoffice`: one more hop).
   */
  get signInPage(): string {
    return `/${this.options.routePrefix}`;
  }

  /** The provider, or 404 `not_found`. */
  provider(name: string): BackOfficeExternalLoginProvider {
    const provider = this.providers.get(name);
    if (!provider) throw BackOfficeHttpError.notFound('No such external login provider.');
    return provider;
  }

  /**
   * The final same-origin path (`toSameOriginPath`: as the URL parser writes it, which is what goes in the
   * `Location` header), `fallback` when absent, or 400 `invalid_return_url`.
   */
  checkReturnUrl(value: unknown, fallback: string): string {
    if (value === undefined || value === '') return fallback;
    const path = toSameOriginPath(value);
    if (path === undefined) throw new BackOfficeHttpError(400, 'invalid_return_url', 'returnUrl must be a path on this site, such as /backoffice/.');
    return path;
  }

  /** Starts a sign-in (or, with `link`, a manual link): stores the pending state and returns the provider's URL. */
  async challenge(
    name: string,
    input: {
      returnUrl?: unknown;
      /** The sign-in page's automatic redirect (`?auto=1`): see {@link alreadySignedInRedirect}. */
      auto?: boolean;
      invite?: { userId: string; token: string };
      link?: PendingExternalLogin['link'];
      reauthenticate?: PendingExternalLogin['reauthenticate'];
    },
    request: BackOfficeHttpRequest,
    response: BackOfficeHttpResponse,
  ): Promise<string> {
    const provider = this.provider(name);
    const signedIn = input.link ?? input.reauthenticate;
    const returnUrl = this.checkReturnUrl(input.returnUrl, signedIn ? `/${this.options.routePrefix}/account` : this.signInPage);
    if (input.auto && (await this.holdsSession(request))) return this.alreadySignedInRedirect(input.returnUrl === undefined || input.returnUrl === '' ? undefined : returnUrl);
    const invite = input.invite ? await this.checkInvite(input.invite) : undefined;
    const configuration = provider.configuration;
    if (!configuration) {
      throw new BackOfficeHttpError(503, 'provider_unavailable', `The provider "${provider.options.name}" cannot be reached right now; try again later.`, {}, { 'Retry-After': '30' });
    }
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    // A sign-in (not a link or step-up, which keep their session) ends the session whose cookie this same-site request
    // carries; the callback will not see that SameSite=Strict cookie, so the pending state (server-side) keeps it.
    const replaces = signedIn ? null : await this.sessions.replacedSessionOf(BackOfficeRequestContextStore.current().sessionToken);
    const state = await this.states.start(
      {
        provider: provider.options.name,
        nonce,
        codeVerifier,
        returnUrl,
        ...(invite ? { invite } : {}),
        ...(input.link ? { link: input.link } : {}),
        ...(input.reauthenticate ? { reauthenticate: input.reauthenticate } : {}),
        ...(replaces ? { replaces } : {}),
      },
      request,
      response,
    );
    return oidc
      .buildAuthorizationUrl(configuration, {
        redirect_uri: provider.options.callbackUrl,
        scope: provider.options.scopes.join(' '),
        response_type: 'code',
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        // Linking and step-up must prove the person now, not reuse a provider session someone left open: max_age=0 asks
        // for an authentication now and makes auth_time REQUIRED in the ID token (OpenID Connect Core 3.1.2.1, 2). The
        // callback checks it (freshAuthenticationProblem): these parameters can be dropped from the URL.
        ...(signedIn ? { prompt: 'login', max_age: '0' } : {}),
      })
      .toString();
  }

  /**
   * Whether the request sends a live session cookie, or the session cookie twice (a second one tossed from a sibling
   * subdomain: which one the browser meant cannot be told, so it may be a live one). A peek: the session's idle
   * timeout does not slide.
   */
  private async holdsSession(request: BackOfficeHttpRequest): Promise<boolean> {
    if (repeatedRequestCookies(request, [this.options.session.cookieName]).length > 0) return true;
    const token = BackOfficeRequestContextStore.current().sessionToken;
    return token !== undefined && (await this.sessions.authenticate(token, { touch: false })) !== null;
  }

  /**
   * Where an automatic challenge (`?auto=1`, the sign-in page's redirect to an `autoRedirect` provider) of a browser
   * that {@link holdsSession} goes instead of the provider: the sign-in page with `?error=already_signed_in` (and the
   * `returnUrl` it was given; none when none was given, so the page's own default applies, never the sign-in page
   * itself). No pending sign-in is started, so no sign-in can record and replace that session: a sibling subdomain
   * that tosses a second session cookie onto GET /auth/me (answered 401) makes the page redirect although the person
   * is signed in, and a silent provider sign-in would swap their session (login CSRF, OWASP ASVS 5.0 3.5.x / 7.x).
   * The page does not redirect again on `?error=`.
   */
  private alreadySignedInRedirect(returnUrl: string | undefined): string {
    const query = new URLSearchParams(returnUrl === undefined ? {} : { returnUrl });
    return withErrorCode(query.size > 0 ? `${this.signInPage}?${query}` : this.signInPage, 'already_signed_in');
  }

  /**
   * An invite from the accept-invite page (`{ userId, token }` in a JSON body, never a query string): it must be a
   * live invite of a user still invited, else 400 `invalid_token` (a wrong, used or expired token, an unknown or
   * foreign user id alike). It is only checked here; the callback uses it up, so it works once. The pending
   * state keeps just its SHA-256.
   */
  private async checkInvite(invite: { userId: string; token: string }): Promise<NonNullable<PendingExternalLogin['invite']>> {
    const manager = this.userManager;
    const store = manager.store;
    const tokenHash = sha256Hex(invite.token);
    const user = await manager.findById(invite.userId);
    const live = Boolean(user) && this.invites.isInvited(user!) && isUserTokenStore(store) && (await store.isTokenLive(user!.id, 'invite', tokenHash, manager.now()));
    if (!live) throw BackOfficeHttpError.invalidToken();
    return { userId: user!.id, tokenHash };
  }

  /**
   * Completes the provider's redirect: returns where to send the browser. Every failure is a redirect to the
   * sign-in page with `?error=<code>` (logged, audited as a failed login), never an exception.
   */
  async callback(name: string, request: BackOfficeHttpRequest, response: BackOfficeHttpResponse): Promise<string> {
    const provider = this.providers.get(name);
    const query = new URLSearchParams(callbackQuery(request));
    let pending: PendingExternalLogin | null = null;
    try {
      if (!provider) throw new ExternalLoginError('external_login_failed', 'unknown provider');
      pending = await this.states.consume(provider.options.name, query.get('state'), request);
      if (!pending) throw new ExternalLoginError('external_login_failed', 'missing, unknown, expired or replayed state');
      const claims = await this.exchangeWithinDeadline(provider, pending, request);
      if (pending.link) return await this.completeLink(provider.options, pending, claims, response);
      if (pending.reauthenticate) return await this.completeReauthentication(provider.options, pending, claims, response);
      return await this.completeSignIn(provider.options, pending, claims, response);
    } catch (error) {
      const failure = error instanceof ExternalLoginError ? error : new ExternalLoginError('external_login_failed', describeError(error));
      this.logger.warn(`External sign-in through "${String(name).replace(/[^\w-]/g, '?').slice(0, 64)}" refused: ${failure.reason}`);
      if (!(error instanceof ExternalLoginError)) this.logger.error(`Unexpected external login failure: ${describeError(error)}`);
      await this.userManager.notify(UserLoginFailedNotification, null, { reason: failure.code });
      const target = pending?.link || pending?.reauthenticate ? pending.returnUrl : this.signInPage;
      return withErrorCode(target, failure.code);
    }
  }

  /**
   * {@link exchange} under the provider's `callbackTimeoutSeconds`: its calls to the provider (token, JWKS, userinfo)
   * share one budget besides their per-call timeouts, so a slow or hostile provider holds a callback (and its pending
   * sign-in) for at most that long (OWASP ASVS 5.0 2.4.1 / 4.0 11.1.4, anti-automation and resource limits). Past it
   * the calls are cancelled and the callback ends as for an unreachable provider (`external_login_failed`).
   */
  private async exchangeWithinDeadline(provider: BackOfficeExternalLoginProvider, pending: PendingExternalLogin, request: BackOfficeHttpRequest): Promise<ExchangedLogin> {
    try {
      return await withProviderDeadline(provider.options.callbackTimeoutSeconds, () => this.exchange(provider, pending, request));
    } catch (error) {
      if (error instanceof ProviderDeadlineError) throw new ExternalLoginError('external_login_failed', error.message);
      throw error;
    }
  }

  /** Code exchange (PKCE, state, nonce and ID token checked by openid-client), then userinfo. */
  private async exchange(provider: BackOfficeExternalLoginProvider, pending: PendingExternalLogin, request: BackOfficeHttpRequest): Promise<ExchangedLogin> {
    const configuration = provider.configuration;
    if (!configuration) throw new ExternalLoginError('external_login_failed', 'provider unavailable');
    const current = new URL(provider.options.callbackUrl);
    current.search = callbackQuery(request);
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(configuration, current, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: current.searchParams.get('state') ?? undefined,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      throw new ExternalLoginError('external_login_failed', `authorization or token response refused: ${describeError(error)}`);
    }
    const idClaims = tokens.claims();
    if (!idClaims) throw new ExternalLoginError('external_login_failed', 'no ID token');
    const nowSeconds = Math.floor(Date.now() / 1000);
    // A link or step-up counts as a fresh sign-in: the provider must have authenticated the person just now.
    const timeProblem = idTokenTimeProblem(idClaims, nowSeconds) ?? (pending.link || pending.reauthenticate ? freshAuthenticationProblem(idClaims, nowSeconds, this.freshAuthenticationSeconds) : undefined);
    if (timeProblem) throw new ExternalLoginError('external_login_failed', timeProblem);
    // When the provider authenticated the person (the ID token's auth_time, never userinfo's): a sign-in, link or
    // step-up is fresh from then, not from this callback (its age is taken when the session or step-up is written:
    // authenticatedSecondsAgo).
    const authTimeSeconds = idTokenAuthTime(idClaims);
    // The subject becomes the login's provider key: OpenID Connect Core 2 caps it at 255 ASCII characters, and one
    // the store cannot keep would fail after an auto-linked user was created.
    // OpenID Connect Core 3.1.3.7 (5): an `azp` names the party the token was issued to. openid-client checks it
    // only when `aud` has several values; a token issued to another client of the provider is refused also with one.
    if (idClaims.azp !== undefined && idClaims.azp !== provider.options.clientId) {
      throw new ExternalLoginError('external_login_failed', 'the ID token was issued to another client (azp)');
    }
    if (!isProviderKey(idClaims.sub)) throw new ExternalLoginError('external_login_failed', 'the ID token\'s subject is empty, longer than 255 characters or not storable');
    let userInfo: Record<string, unknown> = {};
    if (configuration.serverMetadata().userinfo_endpoint) {
      try {
        userInfo = await oidc.fetchUserInfo(configuration, tokens.access_token, idClaims.sub);
      } catch (error) {
        throw new ExternalLoginError('external_login_failed', `userinfo refused: ${describeError(error)}`);
      }
    }
    const claims = { ...idClaims, ...userInfo, sub: idClaims.sub, amr: idClaims.amr } as BackOfficeExternalLoginClaims;
    // Distributed and aggregated claims (OpenID Connect Core 5.6.2) of both sources: an overage the ID token signals
    // stays visible when userinfo names other claims of its own.
    const claimNames = [idClaims._claim_names, userInfo._claim_names].filter((n): n is Record<string, unknown> => typeof n === 'object' && n !== null && !Array.isArray(n));
    if (claimNames.length > 0) claims._claim_names = Object.assign({}, ...claimNames);
    // `email_verified` is about the address it came with: both from userinfo when it names an address, else both from
    // the ID token, never an ID token's "verified" on another address userinfo answers.
    const emailSource: Record<string, unknown> = userInfo.email !== undefined ? userInfo : idClaims;
    claims.email = emailSource.email as string | undefined;
    claims.email_verified = emailSource.email_verified as boolean | undefined;
    if (claims.email === undefined) delete claims.email;
    if (claims.email_verified === undefined) delete claims.email_verified;
    return { claims, idToken: tokens.id_token, authTimeSeconds };
  }

  private async completeLink(
    provider: ResolvedExternalLoginProvider,
    pending: PendingExternalLogin,
    { claims, authTimeSeconds }: ExchangedLogin,
    response: BackOfficeHttpResponse,
  ): Promise<string> {
    const user = await this.userManager.findById(pending.link!.userId);
    const session = user ? await this.sessions.findLiveSessionOf(pending.link!.sessionId, user) : null;
    if (!user || !session) throw new ExternalLoginError('not_allowed', 'the session that started the link has ended');
    // As a password or passkey step-up (423) and an external sign-in: a locked-out user adds no way in (OWASP ASVS 5.0 6.3.4).
    if (!(await this.maySignIn(user))) throw new ExternalLoginError('not_allowed', 'the user is disabled or locked out');
    // A new way in (as adding a passkey): the user's other sessions end with a new security stamp; the session that
    // started the link stays, also for its requests in flight meanwhile (OWASP ASVS 5.0 7.4.3).
    const login = { provider: provider.name, providerKey: claims.sub, displayName: provider.displayName };
    const result = await this.signInManager.keepSignedInThrough(session.id, () => this.userManager.addLogin(user, login));
    if (!result.succeeded) throw new ExternalLoginError('login_already_linked', 'the provider account is linked already');
    await this.signInManager.refreshSignIn(user, session.id);
    // The provider round trip (with prompt=login) is a fresh sign-in for @RequiresRecentSignIn() routes, and so a
    // new session token (OWASP ASVS 5.0 7.2.4), fresh from the provider's auth_time. The login is linked even if the
    // session ended meanwhile.
    await this.issuer.completeStepUp(session, response, { authenticatedSecondsAgo: authenticatedSecondsAgo(authTimeSeconds) });
    return pending.returnUrl;
  }

  /**
   * Step-up through a provider: the provider account must be the one linked to the session's user. The session gets
   * a new token (OWASP ASVS 5.0 7.2.4), set as the cookie of the callback's answer; the old one stops working. The
   * step-up counts from the ID token's `auth_time` (when the person authenticated at the provider), not the callback.
   */
  private async completeReauthentication(
    provider: ResolvedExternalLoginProvider,
    pending: PendingExternalLogin,
    { claims, authTimeSeconds }: ExchangedLogin,
    response: BackOfficeHttpResponse,
  ): Promise<string> {
    const { userId, sessionId } = pending.reauthenticate!;
    const user = await this.userManager.findById(userId);
    const owner = await this.userManager.findByLogin(provider.name, claims.sub);
    const session = user && owner?.id === user.id ? await this.sessions.findLiveSessionOf(sessionId, user) : null;
    if (!session) throw new ExternalLoginError('not_allowed', 'the provider account is not the one linked to this session\'s user');
    // As a password or passkey step-up (423) and an external sign-in: no step-up while locked out (OWASP ASVS 5.0 6.3.4).
    if (!(await this.maySignIn(user!))) throw new ExternalLoginError('not_allowed', 'the user is disabled or locked out');
    if (!(await this.issuer.completeStepUp(session, response, { authenticatedSecondsAgo: authenticatedSecondsAgo(authTimeSeconds) }))) throw new ExternalLoginError('not_allowed', 'the session ended during the step-up');
    await this.userManager.notify(UserReauthenticatedNotification, user!, { method: provider.name });
    return pending.returnUrl;
  }

  private async completeSignIn(
    provider: ResolvedExternalLoginProvider,
    pending: PendingExternalLogin,
    { claims, idToken, authTimeSeconds }: ExchangedLogin,
    response: BackOfficeHttpResponse,
  ): Promise<string> {
    const manager = this.userManager;
    // Before anything is written (no invite used up, nobody created, no group changed).
    this.assertGroupsReadable(provider, claims);
    let user = pending.invite ? await this.acceptInvite(provider, pending.invite, claims) : await manager.findByLogin(provider.name, claims.sub);
    if (!user) user = await this.autoLink(provider, claims);
    if (!(await this.maySignIn(user))) throw new ExternalLoginError('not_allowed', 'the user is disabled or locked out');
    await this.applyProviderChanges(provider, user, claims);
    const sealed = this.externalSessions.seal(provider.name, idToken);
    if ((await this.signInManager.isTwoFactorRequired(user)) && !this.providerDidMultiFactor(provider, claims)) {
      const providers = await this.signInManager.usableTwoFactorProviders(user);
      if (await this.signInManager.refuseWithoutSecondFactor(user, providers)) {
        throw new ExternalLoginError('not_allowed', 'two-factor authentication is on, but the user has no second factor to answer with');
      }
      await manager.notify(UserLoginRequiresVerificationNotification, user);
      await manager.notify(UserTwoFactorRequestedNotification, user, { provider: providers[0] ?? 'none' });
      await this.challenges.start(user, response, sealed);
      const query = new URLSearchParams({ status: 'requiresTwoFactor', providers: providers.join(','), returnUrl: pending.returnUrl });
      return `${this.signInPage}?${query}`;
    }
    if (manager.supportsUserLockout) await manager.resetAccessFailedCount(user);
    // A group with requireTwoFactor (past its grace period): as after a password, a session that reaches only the
    // two-factor setup routes, on the account page where the setup is.
    if ((await this.signInManager.twoFactorEnrolment(user)) === 'required') {
      await manager.notify(UserLoginRequiresTwoFactorSetupNotification, user);
      await this.issuer.issue(user, response, { externalLogin: sealed, twoFactorSetupOnly: true, replaces: pending.replaces, authenticatedSecondsAgo: signInAge(authTimeSeconds) });
      return `/${this.options.routePrefix}/account?status=requiresTwoFactorSetup`;
    }
    await this.signInManager.succeed(user);
    await manager.notify(UserExternalLoginSuccessNotification, user, { provider: provider.name });
    await this.issuer.issue(user, response, { externalLogin: sealed, replaces: pending.replaces, authenticatedSecondsAgo: signInAge(authTimeSeconds) });
    return pending.returnUrl;
  }

  /**
   * Whether the user the provider vouched for may sign in: as after a right password, a disable whose `until` has
   * passed is lifted first; then the sign-in manager's `canSignIn`, and no lockout (unless `evenLockedOut`: an
   * invitee's lock is no refusal, see {@link linkInvitee}).
   */
  private async maySignIn(user: BackOfficeUser, { evenLockedOut = false }: { evenLockedOut?: boolean } = {}): Promise<boolean> {
    await this.userManager.liftExpiredDisable(user);
    return (await this.signInManager.canSignIn(user)) && (evenLockedOut || !this.userManager.isLockedOut(user));
  }

  private providerDidMultiFactor(provider: ResolvedExternalLoginProvider, claims: BackOfficeExternalLoginClaims): boolean {
    return provider.trustProviderTwoFactor && Array.isArray(claims.amr) && claims.amr.some((m) => MULTI_FACTOR_AMR.includes(m));
  }

  /** Links the provider login to the invited user and uses the invite up (the invite token proves the invitee). */
  private async acceptInvite(provider: ResolvedExternalLoginProvider, invite: NonNullable<PendingExternalLogin['invite']>, claims: BackOfficeExternalLoginClaims): Promise<BackOfficeUser> {
    const manager = this.userManager;
    const user = await manager.findById(invite.userId);
    const store = manager.store;
    if (!user || !this.invites.isInvited(user) || !isUserTokenStore(store)) throw new ExternalLoginError('invalid_token', 'no such pending invite');
    const owner = await manager.findByLogin(provider.name, claims.sub);
    if (owner) throw new ExternalLoginError('login_already_linked', 'the provider account belongs to another user');
    const login = { provider: provider.name, providerKey: claims.sub, displayName: provider.displayName };
    const linkedMeanwhile = () => new ExternalLoginError('login_already_linked', 'the provider account was linked to another user meanwhile');
    // As accepting with a password: the invite proves the mailbox, so a lock that failed sign-ins on the invitee's
    // address set (anyone can cause one) ends with it.
    const locked = isUserLockoutStore(store) && (user.lockoutEnd !== null || user.accessFailedCount > 0);
    // The invite is used up and the login added in one transaction (SQL stores): when another sign-in linked the
    // provider account since the check above (its own first sign-in in another tab), the transaction rolls back and
    // the invite stays usable, as when the account was linked before the check.
    const accept = async (tx: BackOfficeUserStore): Promise<boolean> => {
      const now = manager.now();
      if (!isUserTokenStore(tx) || !isUserLoginStore(tx) || !(await tx.consumeToken(user.id, 'invite', invite.tokenHash, now))) return false;
      if (locked) await manager.clearLockout(user, tx, now);
      try {
        await tx.addLogin(user.id, login, now);
      } catch (error) {
        throw error instanceof BackOfficeDuplicateLoginError ? linkedMeanwhile() : error;
      }
      return true;
    };
    if (!(await (isTransactionalUserStore(store) ? store.transaction(accept) : accept(store)))) {
      throw new ExternalLoginError('invalid_token', 'the invite is wrong, used or expired');
    }
    if (locked) Object.assign(user, { lockoutEnd: null, accessFailedCount: 0 });
    // As manager.addLogin after its write (after the commit): a new way in renews the security stamp, and the link is published.
    await manager.loginLinked(user, login.provider);
    // The invitee has authenticated at the provider: no longer "invited" (no resend, counted as a person who can
    // sign in), even when a second-factor step (enforced by a group) comes before the full session.
    await manager.recordLogin(user);
    await manager.notify(UserInviteAcceptedNotification, user);
    return user;
  }

  /**
   * First sign-in of an unknown provider account: links it to the user still invited with that email (an invite
   * the host took over and sent through the provider), or creates the user; any other user with that email is
   * refused (`external_email_in_use`: no account take-over through a provider). A concurrent first sign-in of the
   * same provider account (another tab) that wrote the user and login first is no such other user: this sign-in
   * finds the login by provider + subject and goes on as that user.
   */
  private async autoLink(provider: ResolvedExternalLoginProvider, claims: BackOfficeExternalLoginClaims): Promise<BackOfficeUser> {
    const manager = this.userManager;
    const options = provider.autoLink;
    if (!options.enabled) throw new ExternalLoginError('no_linked_account', 'no user has this login and auto-linking is off');
    const email = typeof claims.email === 'string' ? claims.email : '';
    if (!email || (options.requireVerifiedEmail && claims.email_verified !== true)) {
      throw new ExternalLoginError('external_email_unverified', 'the provider did not say the email is verified');
    }
    const existing = await manager.findByEmail(email);
    if (existing) {
      // Whatever requireVerifiedEmail says: an invitee carries the groups an admin chose (admin among them), and a
      // provider that lets its users type any address (nOAuth) must not hand them out.
      if (claims.email_verified !== true) throw new ExternalLoginError('external_email_unverified', 'the provider did not say the email is verified');
      try {
        return await this.linkInvitee(provider, existing, claims);
      } catch (error) {
        // A concurrent first sign-in of the same account created (or linked) this user with the login since the
        // lookup by login above: the user and login were written together, so the login is seen now.
        if (!(error instanceof ExternalLoginError) || error.code !== 'external_email_in_use') throw error;
        const winner = await manager.findByLogin(provider.name, claims.sub);
        if (winner) return winner;
        throw error;
      }
    }
    const fromProvider = await this.providerGroups(provider, claims);
    const candidate: BackOfficeAutoLinkCandidate = {
      email,
      name: (await this.providerName({ email, username: email }, claims.name)) ?? email,
      groups: fromProvider.groups,
    };
    if ((await provider.onAutoLinking?.(candidate, claims)) === false) throw new ExternalLoginError('not_allowed', 'onAutoLinking refused');
    // The user and its login in one transaction (a user without its login never stays behind, nor is seen by
    // another sign-in): a concurrent first sign-in of the same account waits for it, then finds the login.
    const login = { provider: provider.name, providerKey: claims.sub, displayName: provider.displayName };
    const created = await manager.createUserWithLogin({ email: candidate.email, name: candidate.name, groups: candidate.groups }, login);
    if (!created.succeeded) {
      // Two first sign-ins of one account at once (two tabs, each with its own state): the other created the user
      // (email taken) or linked the key first. Sign in as the user who has this provider account now, checked as any
      // sign-in by a linked login is (completeSignIn). An email whose user has no such login stays refused: never
      // linked by email.
      const winner = await manager.findByLogin(provider.name, claims.sub);
      if (winner) return winner;
      if (created.errors.some((e) => e.code === 'login_already_linked')) throw new ExternalLoginError('external_login_failed', 'the login could not be linked');
      throw this.creationError(created.errors);
    }
    const user = created.value!;
    await manager.notify(UserAutoLinkedNotification, user, { provider: provider.name });
    // With groupsManagedByProvider the groups are read (and a refusal audited) again right after, on every sign-in.
    if (!options.groupsManagedByProvider) await this.auditRefusedGroups(provider, user, fromProvider.refused);
    return user;
  }

  /**
   * The verified email of a first provider sign-in belongs to `user`. Linked only while `user` is an invitee
   * who has never signed in (invited, no password, no login, never signed in): the invite the host sent through
   * the provider (`SendEmailNotification` + `handleEmail()`), accepted without the module's link. The provider's
   * verified email is the proof here, as the token is on the accept-invite page. Everybody else is refused
   * (`external_email_in_use`); a disabled invitee is refused (`not_allowed`) before anything is written. A locked-out
   * invitee is accepted and the lock cleared, as accepting by the invite link does (the lock can only come from
   * failed sign-ins against an invite nobody accepted). The admin's groups stay (the provider's groups come in only through `groupsManagedByProvider`);
   * `onAutoLinking` is not called: it shapes users being created, and nobody is created here.
   *
   * Race-safe: the check and the link run in one transaction that first writes the user's row (a row lock on
   * SQL stores), so a concurrent first sign-in waits and then finds the login; the login store allows one login
   * per provider and user and per provider key. After the link the user's logins are read back: if another
   * provider account got linked at the same time (a store without row locks), this one is removed again and
   * refused (`login_already_linked`), so at most one provider account is linked and the invite accepted once.
   */
  private async linkInvitee(provider: ResolvedExternalLoginProvider, user: BackOfficeUser, claims: BackOfficeExternalLoginClaims): Promise<BackOfficeUser> {
    const manager = this.userManager;
    const inUse = () => new ExternalLoginError('external_email_in_use', 'the email belongs to an existing user; link the provider from that account');
    const raced = () => new ExternalLoginError('login_already_linked', 'another provider account was linked to the invitee at the same time');
    // The lookup folds emails (NFKC, trimmed, lower case) to keep them unique; a take-over needs the invitee's own
    // address: "\ufb01nance@" or fullwidth letters fold into "finance@" but are other mailboxes.
    if (typeof claims.email !== 'string' || !isSameMailbox(claims.email, user.email)) throw inUse();
    if (!(await this.isPendingInvitee(user))) throw inUse();
    // A lockout is no refusal here: the invitee has no password, so every failed sign-in on the address (anyone can
    // cause them) failed against an invite nobody accepted. The verified email proves the mailbox as the invite
    // token does, and accepting through the invite link (with a password or a provider) ends the lock too.
    if (!(await this.maySignIn(user, { evenLockedOut: true })) || !this.invites.isInvited(user)) {
      throw new ExternalLoginError('not_allowed', 'the invited user is disabled');
    }
    const login = { provider: provider.name, providerKey: claims.sub, displayName: provider.displayName };
    const link = async (store: BackOfficeUserStore): Promise<'linked' | 'in_use' | 'not_allowed' | 'raced'> => {
      const now = manager.now();
      // An empty profile write: it locks the user's row until the transaction ends (SQL stores).
      await store.updateProfile(user.id, {}, now);
      const current = await store.findById(user.id);
      if (!current || !this.isInviteeState(current)) return 'in_use';
      if (!this.invites.isInvited(current)) return 'not_allowed';
      const logins = store as BackOfficeUserStore & UserLoginStore;
      if ((await logins.getLogins(user.id)).length > 0) return 'raced';
      try {
        await logins.addLogin(user.id, login, now);
      } catch (error) {
        if (error instanceof BackOfficeDuplicateLoginError) return 'raced';
        throw error;
      }
      // In the same transaction, after the user's row (the store's lock order): the module's invite (its link was
      // never sent, or is not needed any more) is used up, as on the accept page, and the sign-in recorded (no longer
      // "invited"). Done after the commit, a failure or crash in between left a linked login next to a live invite.
      if (isUserTokenStore(store)) await store.voidTokens(user.id, 'invite', now);
      await store.updateProfile(user.id, { lastLoginAt: now }, now);
      user.lastLoginAt = now;
      // As accepting the invite by its link: a lock that failed sign-ins on the invitee's address set ends with it.
      if (isUserLockoutStore(store) && (current.lockoutEnd !== null || current.accessFailedCount > 0)) {
        await manager.clearLockout(user, store, now);
        Object.assign(user, { lockoutEnd: null, accessFailedCount: 0 });
      }
      return 'linked';
    };
    const store = manager.store;
    const outcome = isTransactionalUserStore(store) ? await store.transaction(link) : await link(store);
    if (outcome === 'in_use') throw inUse();
    if (outcome === 'not_allowed') throw new ExternalLoginError('not_allowed', 'the invited user was disabled meanwhile');
    if (outcome === 'raced') throw raced();
    const logins = manager.getLoginStore();
    try {
      const linked = await logins.getLogins(user.id);
      if (linked.length !== 1 || linked[0].provider !== login.provider || linked[0].providerKey !== login.providerKey) {
        await logins.removeLogin(user.id, login.provider, 0);
        throw raced();
      }
    } catch (error) {
      if (!(error instanceof ExternalLoginError)) await logins.removeLogin(user.id, login.provider, 0).catch(() => undefined);
      throw error;
    }
    await manager.notify(UserLoginLinkedNotification, user, { provider: provider.name });
    await manager.notify(UserInviteAcceptedNotification, user);
    await manager.notify(UserAutoLinkedNotification, user, { provider: provider.name });
    return user;
  }

  /** An invitee who has not accepted in any way: invited, never signed in, no password, no external login (of any state). */
  private async isPendingInvitee(user: BackOfficeUser): Promise<boolean> {
    const manager = this.userManager;
    return this.isInviteeState(user) && manager.supportsUserTokens && (await manager.getLogins(user)).length === 0;
  }

  private isInviteeState(user: BackOfficeUser): boolean {
    return user.kind !== 'api' && isPendingInvitee(user);
  }

  private creationError(errors: readonly IdentityError[]): ExternalLoginError {
    if (errors.some((e) => e.code === 'duplicate_email' || e.code === 'duplicate_username')) {
      return new ExternalLoginError('external_email_in_use', 'the email belongs to an existing user');
    }
    return new ExternalLoginError('external_login_failed', `the user could not be created: ${errors.map((e) => e.code).join(', ')}`);
  }

  /**
   * `defaultGroups` plus the groups claim mapped through `groupMapping` (unknown aliases dropped). A provider group
   * grants a back-office group only through an explicit mapping (OWASP ASVS 4.0 4.1.3): whoever can name a group at
   * the provider must not get a group here by naming it so, be it `admin`, a group holding permissions, or a group
   * the host's own routes check by name (`@BackOfficeAuthorize({ groups: ['finance'] })`). Without a mapping the claim
   * grants nothing; the back-office aliases it named are returned as `refused`, to be audited. A claim that is not
   * a string or a list of strings grants nothing either (with `groupsManagedByProvider` it refuses the sign-in first).
   */
  private async providerGroups(provider: ResolvedExternalLoginProvider, claims: BackOfficeExternalLoginClaims): Promise<{ groups: string[]; refused: string[] }> {
    const { groupsClaim, groupMapping, defaultGroups } = provider.autoLink;
    const fromClaim = (groupsClaim ? groupNamesOf(claims[groupsClaim]) : undefined) ?? [];
    const store = this.userManager.store as Partial<import('../users/stores/user-store.interface.js').UserGroupStore>;
    const known = new Set(typeof store.listGroups === 'function' ? (await store.listGroups()).map((g) => g.alias) : []);
    const granted = new Set(defaultGroups);
    if (Object.keys(groupMapping).length === 0) {
      const refused = [...new Set(fromClaim)].filter((g) => known.has(g) && !granted.has(g));
      return { groups: [...granted].filter((g) => known.has(g)), refused };
    }
    for (const group of fromClaim) {
      if (Object.prototype.hasOwnProperty.call(groupMapping, group)) for (const alias of groupMapping[group]) granted.add(alias);
    }
    return { groups: [...granted].filter((g) => known.has(g)), refused: [] };
  }

  /** Audits (and logs) the back-office groups a provider's claim named without a `groupMapping`: not granted. */
  private async auditRefusedGroups(provider: ResolvedExternalLoginProvider, user: BackOfficeUser, refused: string[]): Promise<void> {
    if (refused.length === 0) return;
    this.logger.warn(
      `Provider "${provider.name}" named the group(s) ${refused.map((g) => `"${g}"`).join(', ')} for user ${user.id}: not granted ` +
        `(provider groups are granted only through autoLink.groupMapping, e.g. { 'cms-editors': 'editor' }).`,
    );
    await this.userManager.notify(UserProviderGroupsRefusedNotification, user, { provider: provider.name, groups: refused, reason: 'not_mapped' });
  }

  /**
   * With `groupsManagedByProvider` the groups claim must be readable, else the sign-in is refused
   * (`external_groups_unavailable`) and the user's groups stay as they are (OWASP ASVS 4.0 4.1.5, fail securely):
   * reading "no groups" into a claim that is not there strips an admin whose provider sent a groups overage (Entra ID:
   * `_claim_names` instead of `groups`) or did not grant the scope; keeping the groups and signing in would let a
   * user whose groups were removed at the provider keep them as long as the claim stays away. An absent claim means
   * "no groups" only with `missingGroupsClaim: 'noGroups'`; an explicit empty array always does.
   */
  private assertGroupsReadable(provider: ResolvedExternalLoginProvider, claims: BackOfficeExternalLoginClaims): void {
    const { groupsClaim, groupsManagedByProvider, missingGroupsClaim } = provider.autoLink;
    if (!groupsManagedByProvider || !groupsClaim) return;
    const raw = claims[groupsClaim];
    if (groupNamesOf(raw) !== undefined) return;
    const names = claims._claim_names;
    if (typeof names === 'object' && names !== null && Object.prototype.hasOwnProperty.call(names, groupsClaim)) {
      throw new ExternalLoginError(
        'external_groups_unavailable',
        `groups overage: the provider sent no "${groupsClaim}" claim but names it in _claim_names (its groups are at another source, e.g. ` +
          `Microsoft Graph); the user's groups were left as they are. Have the provider send only the groups the application needs ` +
          `(Entra ID: "Groups assigned to the application", or app roles)`,
      );
    }
    if (raw === undefined || raw === null) {
      if (missingGroupsClaim === 'noGroups') return;
      throw new ExternalLoginError(
        'external_groups_unavailable',
        `the provider sent no "${groupsClaim}" claim (scope not granted or claim not configured?); the user's groups were left as they are. ` +
          `For a provider that leaves the claim out when a user has no groups, set autoLink.missingGroupsClaim: 'noGroups'`,
      );
    }
    throw new ExternalLoginError(
      'external_groups_unavailable',
      `the "${groupsClaim}" claim is not a group name or a list of group names (strings); the user's groups were left as they are`,
    );
  }

  /** `onExternalLogin` changes, then (with `groupsManagedByProvider`) the provider's groups, audited as a diff. */
  private async applyProviderChanges(provider: ResolvedExternalLoginProvider, user: BackOfficeUser, claims: BackOfficeExternalLoginClaims): Promise<void> {
    const manager = this.userManager;
    const changes = await provider.onExternalLogin?.(user, claims);
    if (changes === false) throw new ExternalLoginError('not_allowed', 'onExternalLogin refused');
    if (changes && typeof changes === 'object') {
      const name = await this.providerName(user, changes.name);
      if (name !== undefined && name !== user.name) {
        // Audited as an admin's or the user's own rename is, with the provider as its source (OWASP ASVS 5.0 16.3.x).
        const rename = { name: { from: user.name, to: name } };
        await manager.store.updateProfile(user.id, { name }, manager.now());
        user.name = name;
        await manager.notify(UserProfileUpdatedNotification, user, { changes: rename, source: `provider:${provider.name}` });
      }
      if (Array.isArray(changes.groups)) await this.syncGroups(provider, user, changes.groups);
    }
    if (provider.autoLink.groupsManagedByProvider) {
      const { groups, refused } = await this.providerGroups(provider, claims);
      await this.auditRefusedGroups(provider, user, refused);
      await this.syncGroups(provider, user, groups);
    }
  }

  /**
   * A name from the provider (the `name` claim of a first sign-in, `onExternalLogin`'s `name`) as it may be stored:
   * NFC, trimmed, cut to 256 characters (never between the halves of a surrogate pair), and passed by the user
   * validators as a name typed into PUT /users/:id is (no control characters, NUL or unpaired surrogate: OWASP ASVS 5.0
   * 2.2.1). Undefined when there is none or it is refused (logged): the caller keeps another name.
   */
  private async providerName(user: { email: string; username: string }, value: unknown): Promise<string | undefined> {
    if (typeof value !== 'string') return undefined;
    let name = value.normalize('NFC').trim();
    if (!name) return undefined;
    if (name.length > MAX_NAME_LENGTH) name = name.slice(0, /[\ud800-\udbff]/.test(name[MAX_NAME_LENGTH - 1]) ? MAX_NAME_LENGTH - 1 : MAX_NAME_LENGTH).trimEnd();
    const manager = this.userManager;
    const { candidate, errors } = await manager.prepareUserCandidate({ email: user.email, username: user.username, name });
    const refused = errors.filter((e) => !/user_?name|email/i.test(e.code));
    if (refused.length > 0 || typeof candidate.name !== 'string') {
      this.logger.warn(`A name from the provider was not stored (the user validators refused it: ${refused.map((e) => e.code).join(', ') || 'not a name'}).`);
      return undefined;
    }
    return candidate.name;
  }

  private async syncGroups(provider: ResolvedExternalLoginProvider, user: BackOfficeUser, groups: string[]): Promise<void> {
    const wanted = [...new Set(groups)].sort();
    if (wanted.join('\n') === [...user.groups].sort().join('\n')) return;
    const result = await this.userManager.setGroups(user, wanted, { byProvider: provider.name });
    if (!result.succeeded) {
      this.logger.warn(`Groups of user ${user.id} from provider "${provider.name}" not applied: ${result.errors.map((e) => e.code).join(', ')}`);
    }
  }
}

/**
 * `path` with `error=<code>` in its query: before the fragment (a `#...` of the returnUrl stays last, and a `?` inside
 * the fragment is no query), so the page reads `?error=` however the returnUrl ends. An `error` the returnUrl already
 * had (a step-up refused again from the page that shows the last refusal: session.js sends the page's own path and
 * query) is replaced, not repeated: the pages read a repeated `?error=` as no message. The rest of the query is kept
 * as it was written.
 */
function withErrorCode(path: string, code: string): string {
  const hashAt = path.indexOf('#');
  const beforeHash = hashAt === -1 ? path : path.slice(0, hashAt);
  const fragment = hashAt === -1 ? '' : path.slice(hashAt);
  const queryAt = beforeHash.indexOf('?');
  const pathname = queryAt === -1 ? beforeHash : beforeHash.slice(0, queryAt);
  const kept = queryAt === -1 ? [] : beforeHash.slice(queryAt + 1).split('&').filter((pair) => pair !== '' && queryName(pair) !== 'error');
  return `${pathname}?${[...kept, `error=${encodeURIComponent(code)}`].join('&')}${fragment}`;
}

/** The decoded name of a `name=value` query pair, as the platforms' query parsers read it. */
function queryName(pair: string): string {
  const name = pair.split('=', 1)[0].replace(/\+/g, ' ');
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
