import { Inject, Injectable } from '@nestjs/common';
import type { BackOfficeClock } from '../common/clock.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_TWO_FACTOR_PROVIDERS } from '../constants.js';
import type { BackOfficeHttpResponse } from '../http/http-platform.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { SignInResult } from '../sign-in/backoffice-sign-in-manager.js';
import type { TwoFactorProvider } from '../two-factor/two-factor-provider.interface.js';
import { toBackOfficeUserDto, type BackOfficeUser, type BackOfficeUserDto } from '../users/backoffice-user.js';
import { BackOfficeSessionService, type RenewTokenOptions } from './backoffice-session.service.js';
import { BackOfficeSessionCookies } from './session-cookies.js';
import { sessionTimeoutsMs } from './session-liveness.js';
import type { BackOfficeSession } from './session-store.interface.js';
import { BackOfficeExternalLoginSessions, type SealedExternalLogin } from '../external-logins/external-login-sessions.service.js';

/**
 * Starts a session for a user who has just signed in: row, cookies, the concurrent-login rule, and the end of the
 * session whose token the request's cookie carried (the one the new cookie replaces).
 */
@Injectable()
export class BackOfficeSessionIssuer {
  /** The session's absolute and re-authentication lengths, whole milliseconds ({@link sessionTimeoutsMs}): options are fixed once resolved. */
  private readonly absoluteMs: number;
  private readonly reauthenticationMs: number;

  constructor(
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
    @Inject(BackOfficeSessionCookies) private readonly cookies: BackOfficeSessionCookies,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeExternalLoginSessions) private readonly externalSessions: BackOfficeExternalLoginSessions,
    @Inject(BACKOFFICE_TWO_FACTOR_PROVIDERS) private readonly twoFactorProviders: TwoFactorProvider[],
  ) {
    ({ absoluteMs: this.absoluteMs, reauthenticationMs: this.reauthenticationMs } = sessionTimeoutsMs(options.session));
  }

  /**
   * The session and answer for a sign-in manager's `success` or `requiresTwoFactorSetup` (a passkey, an accepted
   * invite; `POST /auth/login` answers the same): a full session, with `twoFactorSetupDeadline` during a group's
   * grace period, or a setup-only session and the providers to enrol in.
   */
  async issueSignIn(
    result: SignInResult & { status: 'success' | 'requiresTwoFactorSetup' },
    response: BackOfficeHttpResponse,
  ): Promise<{ status: 'success'; user: BackOfficeUserDto; twoFactorSetupDeadline?: string } | { status: 'requiresTwoFactorSetup'; providers: string[] }> {
    if (result.status === 'requiresTwoFactorSetup') {
      // A setup-only session: it reaches the 2FA setup routes (and me/logout) until enrolment is confirmed.
      await this.issue(result.user!, response, { twoFactorSetupOnly: true });
      return { status: 'requiresTwoFactorSetup', providers: this.twoFactorProviders.filter((p) => p.enrolsThroughSetup !== false).map((p) => p.name) };
    }
    const user = await this.issue(result.user!, response);
    return result.twoFactorSetupDeadline ? { status: 'success', user, twoFactorSetupDeadline: result.twoFactorSetupDeadline.toISOString() } : { status: 'success', user };
  }

  /**
   * `externalLogin`: the sign-in came through an external provider (kept for RP-initiated logout);
   * `twoFactorSetupOnly`: a session that reaches only the two-factor setup routes (group-enforced 2FA);
   * `replaces`: a session the sign-in ends besides the one of the request's cookie (the session whose cookie an external
   * sign-in's challenge carried, see `BackOfficeSessionService.replacedSessionOf`);
   * `authenticatedSecondsAgo`: when the sign-in's authentication was made, for the step-up rule (left out: now; a
   * provider's `auth_time`; null: unknown, no recent sign-in; see `BackOfficeSessionService.create`).
   */
  async issue(
    user: BackOfficeUser,
    response: BackOfficeHttpResponse,
    options: {
      externalLogin?: SealedExternalLogin | null;
      twoFactorSetupOnly?: boolean;
      replaces?: { userId: string; sessionId: string };
      authenticatedSecondsAgo?: number | null;
    } = {},
  ): Promise<BackOfficeUserDto> {
    const context = BackOfficeRequestContextStore.current();
    const kind = { twoFactorSetupOnly: options.twoFactorSetupOnly, authenticatedSecondsAgo: options.authenticatedSecondsAgo };
    const { token, session } = await this.sessions.create(user, { ip: context.ipAddress, userAgent: context.userAgent }, kind);
    if (options.externalLogin) await this.externalSessions.attach(session.id, options.externalLogin);
    // The session this browser had until now ends (OWASP ASVS 5.0 7.2.4): the new cookie replaces its token.
    await this.sessions.endReplacedSession(context.sessionToken, session.id);
    await this.sessions.endReplacedSessionById(options.replaces, session.id);
    if (!this.options.session.allowConcurrentLogins) await this.sessions.revokeOthersAtSignIn(user.id, session.id);
    this.cookies.set(response, token);
    return toBackOfficeUserDto(user, this.clock.now());
  }

  /**
   * After a re-authentication (step-up) in `session`: records it and sets a new session token, and the XSRF token
   * bound to it, as the cookies of `response` (OWASP ASVS 5.0 7.2.4); the old token stops authenticating at once.
   * The session keeps its id, creation time and deadlines, and the new cookies live as long as the session has left
   * (not a whole new absolute timeout: a cookie that outlives its session only invites a 401). False when `session`
   * no longer holds the token it was read with (revoked, or renewed by another re-authentication meanwhile): nothing
   * is set, answer 401; also when `authenticatedSecondsAgo` is no time ({@link completeStepUp}). `reauthenticated:
   * false` sets the new token without recording a re-authentication: for a rise in privilege of the session, such
   * as a setup-only session becoming a full one when two-factor enrolment is confirmed; `authenticatedSecondsAgo` records it as made that long ago (see `BackOfficeSessionService.renewToken`).
   */
  async renew(session: BackOfficeSession, response: BackOfficeHttpResponse, options: RenewTokenOptions = {}): Promise<boolean> {
    const token = await this.sessions.renewToken(session, options);
    if (token === null) return false;
    this.cookies.set(response, token, this.remainingSeconds(session));
    return true;
  }

  /**
   * The end of every step-up (password, passkey, a provider round trip): {@link renew}s the session's token and
   * answers until when `@RequiresRecentSignIn()` routes accept the session (`session.reauthenticationMinutes` from
   * the re-authentication: now, or `authenticatedSecondsAgo` before now for a provider's `auth_time`). Null when the
   * token could not be renewed (nothing set): the step-up is refused; so is one whose `authenticatedSecondsAgo` is no
   * time (not finite, further in the future than the clock skew, before the earliest Date): the session keeps its
   * token and its earlier re-authentication.
   */
  async completeStepUp(session: BackOfficeSession, response: BackOfficeHttpResponse, options: { authenticatedSecondsAgo?: number } = {}): Promise<Date | null> {
    if (!(await this.renew(session, response, options))) return null;
    return new Date(session.reauthenticatedAt!.getTime() + this.reauthenticationMs);
  }

  /**
   * Seconds until the session's absolute deadline (at least 1). A setup-only session may still become a full one
   * (two-factor enrolment confirmed: its deadline moves to the absolute timeout from its creation, without new
   * cookies), so its cookies live until that later deadline, as the cookies it was issued with do.
   */
  private remainingSeconds(session: BackOfficeSession): number {
    const absolute = session.createdAt.getTime() + this.absoluteMs;
    const deadline = session.twoFactorSetupOnly ? Math.max(session.expiresAt.getTime(), absolute) : session.expiresAt.getTime();
    return Math.max(1, Math.ceil((deadline - this.clock.now().getTime()) / 1000));
  }
}
