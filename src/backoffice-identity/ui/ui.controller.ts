import { Controller, Get, Inject, Param, Query, Req, Res, StreamableFile } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { IncomingMessage } from 'node:http';
import { toSameOriginPath } from '../common/same-origin-path.js';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { BackOfficeUiAssets } from './ui-assets.service.js';
import { UI_ERROR_MESSAGES } from './ui-messages.js';
import { BackOfficeUiRenderer, type BackOfficeUiPage } from './ui-pages.js';

/** Express (`res.header`) and Fastify (`reply.header`) both have `header(name, value)`. */
interface HeaderTarget {
  header(name: string, value: string): unknown;
}

const NOTICES: Record<string, 'passwordResetDone' | 'emailChangeDone'> = { 'password-reset': 'passwordResetDone', 'email-changed': 'emailChangeDone' };

/**
 * True when an `Accept-Encoding` value names gzip (or `x-gzip`) with a weight above 0: `gzip;q=0` refuses it
 * (RFC 9110 12.5.3).
 */
function acceptsGzip(header: unknown): boolean {
  return String(header ?? '')
    .split(',')
    .some((entry) => {
      const [coding, ...params] = entry.toLowerCase().split(';').map((part) => part.trim());
      const weight = params.find((param) => /^q\s*=/.test(param));
      return (coding === 'gzip' || coding === 'x-gzip') && (weight === undefined || Number(weight.replace(/^q\s*=\s*/, '')) > 0);
    });
}

/**
 * The sign-in screens below the route prefix (`ui: false` turns them off): server-rendered HTML with a strict
 * Content-Security-Policy (no inline script, no third-party host, no framing), plus their assets.
 */
@ApiExcludeController()
@Controller()
export class BackOfficeUiController {
  private readonly renderer: BackOfficeUiRenderer;
  private readonly csp: string;

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeUiAssets) private readonly assets: BackOfficeUiAssets,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
  ) {
    this.renderer = new BackOfficeUiRenderer(options);
    const images = ["'self'", 'data:', ...assets.imageOrigins()].join(' ');
    this.csp = [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      `img-src ${images}`,
      "connect-src 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; ');
  }

  /**
   * The sign-in page. `?error=<code>` (from an external provider's callback) shows the catalogue's message for
   * that code; `?status=requiresTwoFactor` (an external sign-in that still needs the second factor) shows the
   * second-factor page.
   */
  @Get()
  signIn(
    @Query('returnUrl') returnUrl: unknown,
    @Query('error') error: unknown,
    @Query('notice') notice: unknown,
    @Query('status') status: unknown,
    @Res({ passthrough: true }) response: HeaderTarget,
  ): string {
    const noticeKey = typeof notice === 'string' && Object.hasOwn(NOTICES, notice) ? NOTICES[notice] : undefined;
    const context = { returnUrl: toSameOriginPath(returnUrl), error: this.errorMessage(error), notice: noticeKey && this.options.ui.messages[noticeKey] };
    return this.page(status === 'requiresTwoFactor' ? 'two-factor' : 'sign-in', response, context);
  }

  @Get('two-factor')
  twoFactor(@Query('returnUrl') returnUrl: unknown, @Res({ passthrough: true }) response: HeaderTarget): string {
    return this.page('two-factor', response, { returnUrl: toSameOriginPath(returnUrl) });
  }

  @Get('forgot-password')
  forgot(@Res({ passthrough: true }) response: HeaderTarget): string {
    if (!this.options.allowPasswordReset || this.options.denyLocalLogin) throw BackOfficeHttpError.notFound();
    return this.page('forgot-password', response);
  }

  @Get('reset-password')
  reset(@Res({ passthrough: true }) response: HeaderTarget): string {
    if (!this.options.allowPasswordReset || this.options.denyLocalLogin) throw BackOfficeHttpError.notFound();
    return this.page('reset-password', response);
  }

  @Get('accept-invite')
  acceptInvite(@Res({ passthrough: true }) response: HeaderTarget): string {
    return this.page('accept-invite', response);
  }

  /** The link of the email-change confirmation (`BackOfficeEmailTemplates.emailChangeConfirm`). */
  @Get('confirm-email')
  confirmEmail(@Res({ passthrough: true }) response: HeaderTarget): string {
    return this.page('confirm-email', response);
  }

  /**
   * The account page; `?error=<code>` comes back from linking an external login, `?status=requiresTwoFactorSetup`
   * from an external sign-in of a member of a group that requires two-factor (a setup-only session).
   */
  @Get('account')
  account(@Query('error') error: unknown, @Query('status') status: unknown, @Res({ passthrough: true }) response: HeaderTarget): string {
    const notice = status === 'requiresTwoFactorSetup' ? this.options.ui.messages.twoFactorSetupRequired : undefined;
    return this.page('account', response, { error: this.errorMessage(error), notice });
  }

  /**
   * The catalogue's message for an `?error=` code; unknown codes get the generic provider message, never the input.
   * Only the catalogue's own keys count: `?error=constructor` (or `__proto__`, `toString`) is unknown, not a property
   * every object inherits (which named no message, so the page showed none and pages.js's automatic redirect to an
   * `autoRedirect` provider went ahead).
   */
  private errorMessage(code: unknown): string | undefined {
    if (typeof code !== 'string' || !code) return undefined;
    return this.options.ui.messages[Object.hasOwn(UI_ERROR_MESSAGES, code) ? UI_ERROR_MESSAGES[code] : 'externalLoginFailed'];
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Query('v') version: unknown, @Req() request: IncomingMessage, @Res({ passthrough: true }) response: HeaderTarget): StreamableFile {
    this.requireUi();
    const asset = this.assets.get(file);
    if (!asset) throw BackOfficeHttpError.notFound();
    const gzip = acceptsGzip(request.headers['accept-encoding']);
    response.header('Content-Type', asset.contentType);
    response.header('X-Content-Type-Options', 'nosniff');
    response.header('Vary', 'Accept-Encoding');
    response.header('Cache-Control', version === asset.hash ? 'public, max-age=31536000, immutable' : 'no-cache');
    response.header('ETag', `"${asset.hash}${gzip ? '-gz' : ''}"`);
    if (gzip) response.header('Content-Encoding', 'gzip');
    return new StreamableFile(gzip ? asset.gzip : asset.body, { type: asset.contentType, length: (gzip ? asset.gzip : asset.body).length });
  }

  private requireUi(): void {
    if (!this.options.ui.enabled) throw BackOfficeHttpError.notFound();
  }

  private page(page: BackOfficeUiPage, response: HeaderTarget, context: { returnUrl?: string; error?: string; notice?: string } = {}): string {
    this.requireUi();
    for (const [name, value] of Object.entries(this.pageHeaders())) response.header(name, value);
    return this.renderer.render(page, {
      ...context,
      twoFactorAvailable: this.userManager.supportsUserTwoFactor && Boolean(this.userManager.getTwoFactorProvider('totp')),
      passkeysAvailable: this.assets.passkeysAvailable,
      assetVersion: (file) => this.assets.version(file),
    });
  }

  /** Every page: no framing, no inline script, no referrer (pages read tokens from the URL fragment), no caching. */
  private pageHeaders(): Record<string, string> {
    return {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': this.csp,
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
      'X-Content-Type-Options': 'nosniff',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
  }
}
