import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_USER_MANAGER } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { UI_ASSET_FILES } from './ui-assets.generated.js';
import { UI_ERROR_MESSAGES } from './ui-messages.js';

/** One served asset: its bytes, gzipped bytes, type and content hash. */
export interface BackOfficeUiAsset {
  body: Buffer;
  gzip: Buffer;
  contentType: string;
  hash: string;
}

const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
const SESSION_CONFIG_MARKER = /\/\*__BACKOFFICE_SESSION_CONFIG__\*\/ \{[^\n]*\};/;

/**
 * The assets below `<prefix>/assets/`, built once at start-up: the shipped JS and CSS, `session.js` with the
 * message catalogue and settings filled in, and `theme.css` from `ui.branding`. Each is kept gzipped too.
 */
@Injectable()
export class BackOfficeUiAssets {
  private readonly assets = new Map<string, BackOfficeUiAsset>();
  /**
   * Passkeys are configured, the store keeps them and local sign-in is allowed: the sign-in screens and
   * session.js's "Your session has ended" dialog offer them.
   */
  readonly passkeysAvailable: boolean;

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Inject(BACKOFFICE_USER_MANAGER) userManager: BackOfficeUserManager,
  ) {
    this.passkeysAvailable = userManager.supportsUserPasskeys && !options.denyLocalLogin;
    // webauthn.js first: session.js names its versioned URL.
    if (options.passkeys) this.add('webauthn.js', BackOfficeUiAssets.webAuthnBrowserBundle());
    for (const [file, { body }] of Object.entries(UI_ASSET_FILES)) {
      this.add(file, file === 'session.js' ? this.withSessionConfig(body) : body);
    }
    this.add('theme.css', this.themeCss());
  }

  /**
   * `@simplewebauthn/browser`'s UMD bundle (global `SimpleWebAuthnBrowser`), served from this origin as
   * `assets/webauthn.js`: no CDN, and the CSP stays `script-src 'self'`. Read from the installed package.
   */
  static webAuthnBrowserBundle(): string {
    const requireHere = createRequire(__filename);
    const entry = requireHere.resolve('@simplewebauthn/browser');
    return readFileSync(join(dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js'), 'utf8');
  }

  get(file: string): BackOfficeUiAsset | undefined {
    return this.assets.get(file);
  }

  /** The content hash of an asset, used as `?v=` so pages can cache assets for a year. */
  version(file: string): string {
    return this.assets.get(file)?.hash ?? '0';
  }

  /** Origins other than this one that the pages load images from (the branding's https: URLs). */
  imageOrigins(): string[] {
    const { logoUrl, backgroundImageUrl } = this.options.ui.branding;
    const origins = [logoUrl, backgroundImageUrl].filter((u): u is string => !!u && !u.startsWith('/')).map((u) => new URL(u).origin);
    return [...new Set(origins)];
  }

  private add(file: string, text: string): void {
    const body = Buffer.from(text, 'utf8');
    const extension = file.slice(file.lastIndexOf('.') + 1);
    this.assets.set(file, {
      body,
      gzip: gzipSync(body, { level: 9 }),
      contentType: TYPES[extension] ?? 'application/octet-stream',
      hash: createHash('sha256').update(body).digest('hex').slice(0, 12),
    });
  }

  private withSessionConfig(source: string): string {
    const { ui, routePrefix, usernameIsEmail } = this.options;
    const config = {
      base: `/${routePrefix}`,
      idleWarningSeconds: ui.idleWarningSeconds,
      usernameIsEmail,
      messages: ui.messages,
      errorMessages: UI_ERROR_MESSAGES,
      // denyLocalLogin: the step-up dialog asks for no password (linked providers only).
      localLogin: !this.options.denyLocalLogin,
      // With passkeys on, the dialog loads @simplewebauthn/browser from here when "Sign in with a passkey" is used.
      webAuthnScript: this.passkeysAvailable ? `/${routePrefix}/assets/webauthn.js?v=${this.version('webauthn.js')}` : null,
    };
    const json = JSON.stringify(config).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
    if (!SESSION_CONFIG_MARKER.test(source)) throw new Error('session.js: configuration marker not found');
    return source.replace(SESSION_CONFIG_MARKER, () => `${json};`);
  }

  /** Accent colour and background image: validated at start-up (a colour, and URLs without quotes or brackets). */
  private themeCss(): string {
    const { accentColor, backgroundImageUrl } = this.options.ui.branding;
    const background = backgroundImageUrl ? `\nbody.bo-page { --bo-background: url("${backgroundImageUrl}"); }` : '';
    return `:root { --bo-accent: ${accentColor}; }${background}\n`;
  }
}
