import { MAX_SAME_ORIGIN_PATH_LENGTH } from '../common/same-origin-path.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { html, jsonScript, type SafeHtml } from './ui-html.js';
import type { BackOfficeUiMessages } from './ui-messages.js';

/** The pages of the sign-in screens, by path segment below the route prefix. */
export type BackOfficeUiPage = 'sign-in' | 'two-factor' | 'forgot-password' | 'reset-password' | 'accept-invite' | 'confirm-email' | 'account';

/** The pages that offer passkeys (and load `webauthn.js` + `passkeys.js`). */
const PASSKEY_PAGES: readonly BackOfficeUiPage[] = ['sign-in', 'two-factor', 'account'];

/** Per-request facts a page needs. */
export interface BackOfficeUiPageContext {
  /** A same-origin path to go to after sign-in (already checked). */
  returnUrl?: string;
  /** A message to announce on load (already mapped from a known code). */
  error?: string;
  notice?: string;
  twoFactorAvailable: boolean;
  /** Passkeys are configured and the store keeps them: the pages offer them. */
  passkeysAvailable?: boolean;
  /** `?v=` of each asset, for long-lived caching. */
  assetVersion: (file: string) => string;
}

/**
 * Renders the server-side HTML of the sign-in screens. Every dynamic value is escaped. Every form says
 * `method="post"`: pages.js posts it as JSON, but one submitted before that script runs (slow or blocked) goes as
 * the browser's own POST, so a password, code or email never lands in a URL (OWASP ASVS 4.0 8.3.1).
 */
export class BackOfficeUiRenderer {
  private readonly m: BackOfficeUiMessages;
  private readonly base: string;

  constructor(private readonly options: ResolvedBackOfficeIdentityOptions) {
    this.m = options.ui.messages;
    this.base = `/${options.routePrefix}`;
  }

  /** Where the pages go after sign-in when no `returnUrl` was given. */
  get defaultReturnUrl(): string {
    return this.options.ui.defaultReturnUrl ?? `${this.base}/account`;
  }

  render(page: BackOfficeUiPage, context: BackOfficeUiPageContext): string {
    const { title, body, wide } = this.pages[page].call(this, context);
    return this.layout(page, title, body, context, wide === true).value;
  }

  private readonly pages: Record<BackOfficeUiPage, (context: BackOfficeUiPageContext) => { title: string; body: SafeHtml; wide?: boolean }> = {
    'sign-in': this.signIn,
    'two-factor': this.twoFactor,
    'forgot-password': this.forgot,
    'reset-password': this.reset,
    'accept-invite': this.invite,
    'confirm-email': this.confirmEmail,
    account: this.account,
  };

  private fill(text: string, values: Record<string, string | number>): string {
    return text.replace(/\{(\w+)\}/g, (match, name: string) => (name in values ? String(values[name]) : match));
  }

  private asset(file: string, context: BackOfficeUiPageContext): string {
    return `${this.base}/assets/${file}?v=${context.assetVersion(file)}`;
  }

  private layout(page: BackOfficeUiPage, title: string, body: SafeHtml, context: BackOfficeUiPageContext, wide: boolean): SafeHtml {
    const { branding } = this.options.ui;
    const config = {
      page,
      returnUrl: context.returnUrl ?? null,
      defaultReturnUrl: this.defaultReturnUrl,
      // pages.js's copy of the same-origin path rule (returnUrl) takes the server's limit from here.
      maxPathLength: MAX_SAME_ORIGIN_PATH_LENGTH,
      error: Boolean(context.error),
      twoFactorAvailable: context.twoFactorAvailable,
      passkeys: Boolean(context.passkeysAvailable),
    };
    const passkeyScripts = context.passkeysAvailable && PASSKEY_PAGES.includes(page)
      ? html`<script src="${this.asset('webauthn.js', context)}" defer></script>
<script src="${this.asset('passkeys.js', context)}" defer></script>
`
      : '';
    return html`<!doctype html>
<html lang="${this.m.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} – ${branding.productName}</title>
<link rel="icon" href="${branding.logoUrl || 'data:,'}">
<link rel="stylesheet" href="${this.asset('ui.css', context)}">
<link rel="stylesheet" href="${this.asset('session.css', context)}">
<link rel="stylesheet" href="${this.asset('theme.css', context)}">
<script src="${this.asset('session.js', context)}" data-monitor="${page === 'account' ? 'on' : 'off'}" defer></script>
<script src="${this.asset('pages.js', context)}" defer></script>
${passkeyScripts}${jsonScript('bo-config', config)}
</head>
<body class="bo-page">
<a class="bo-skip" href="#bo-main">${this.m.skipToContent}</a>
<main id="bo-main" class="bo-card${wide ? ' bo-wide' : ''}">
<header class="bo-brand">${branding.logoUrl ? html`<img src="${branding.logoUrl}" alt="">` : ''}<p class="bo-product">${branding.productName}</p></header>
${body}
</main>
</body>
</html>
`;
  }

  /** The error and status live regions; server-side messages are in them from the first paint. */
  private messages(context: BackOfficeUiPageContext): SafeHtml {
    return html`<div id="bo-alert" class="bo-alert" role="alert" aria-live="assertive">${context.error ?? ''}</div>
<div id="bo-status" class="bo-status" role="status" aria-live="polite">${context.notice ?? ''}</div>`;
  }

  private field(id: string, name: string, label: string, type: string, autocomplete: string, extra: { hint?: string; inputmode?: string } = {}): SafeHtml {
    const hintId = extra.hint ? `${id}-hint` : undefined;
    return html`<p class="bo-field"><label for="${id}">${label}</label><input id="${id}" name="${name}" type="${type}" autocomplete="${autocomplete}" required${
      type === 'email' || name === 'username' ? html` autocapitalize="none" spellcheck="false"` : ''
    }${extra.inputmode ? html` inputmode="${extra.inputmode}"` : ''}${hintId ? html` aria-describedby="${hintId}"` : ''}>${
      extra.hint ? html`<span id="${hintId}" class="bo-hint">${extra.hint}</span>` : ''
    }</p>`;
  }

  private showPassword(target: string): SafeHtml {
    return html`<p class="bo-check"><label for="${target}-show"><input type="checkbox" id="${target}-show" data-toggles="${target}">${this.m.showPassword}</label></p>`;
  }

  private newPasswordField(): SafeHtml {
    const hint = this.fill(this.m.passwordHint, { min: this.options.password.requiredLength });
    return html`${this.field('bo-new-password', 'newPassword', this.m.newPasswordLabel, 'password', 'new-password', { hint })}${this.showPassword('bo-new-password')}`;
  }

  private backToSignIn(id?: string): SafeHtml {
    return html`<p class="bo-links"><a${id ? html` id="${id}"` : ''} href="${this.base}">${this.m.backToSignIn}</a></p>`;
  }

  private signIn(context: BackOfficeUiPageContext) {
    const m = this.m;
    const emailLike = this.options.usernameIsEmail;
    const form = this.options.denyLocalLogin
      ? html`<p>${m.localLoginDisabled}</p>`
      : html`<form id="bo-sign-in-form" method="post" novalidate>
${this.field('bo-username', 'username', emailLike ? m.emailLabel : m.usernameLabel, emailLike ? 'email' : 'text', context.passkeysAvailable ? 'username webauthn' : 'username')}
${this.field('bo-password', 'password', m.passwordLabel, 'password', 'current-password')}
${this.showPassword('bo-password')}
<button type="submit">${m.signInButton}</button>
</form>
${context.passkeysAvailable ? html`<div class="bo-passkey"><p>${m.orPasskey}</p><button type="button" id="bo-passkey-sign-in" class="bo-secondary">${m.signInWithPasskeyButton}</button></div>` : ''}
${this.options.allowPasswordReset ? html`<p class="bo-links"><a href="${this.base}/forgot-password">${m.forgotPasswordLink}</a></p>` : ''}`;
    return {
      title: m.signInTitle,
      body: html`<h1>${m.signInTitle}</h1>
<p class="bo-intro">${this.fill(m.signInIntro, { product: this.options.ui.branding.productName })}</p>
${this.messages(context)}
${form}
<div id="bo-providers" class="bo-providers" hidden><p>${m.orUseProvider}</p><ul></ul></div>`,
    };
  }

  private twoFactor(context: BackOfficeUiPageContext) {
    const m = this.m;
    return {
      title: m.twoFactorTitle,
      body: html`<h1>${m.twoFactorTitle}</h1>
${this.messages(context)}
<form id="bo-two-factor-form" method="post" novalidate>
<fieldset><legend>${m.methodLegend}</legend>
<label><input type="radio" name="provider" value="totp" checked> ${m.methodTotp}</label>
<label><input type="radio" name="provider" value="recovery"> ${m.methodRecovery}</label>
</fieldset>
${this.field('bo-code', 'code', m.codeLabel, 'text', 'one-time-code', { hint: m.twoFactorIntro, inputmode: 'numeric' })}
<button type="submit">${m.verifyButton}</button>
</form>
${context.passkeysAvailable ? html`<div class="bo-passkey" id="bo-passkey-2fa-box" hidden><p>${m.orPasskey}</p><button type="button" id="bo-passkey-2fa" class="bo-secondary">${m.usePasskeyButton}</button></div>` : ''}
${this.backToSignIn('bo-back-link')}`,
    };
  }

  private forgot(context: BackOfficeUiPageContext) {
    const m = this.m;
    return {
      title: m.forgotTitle,
      body: html`<h1>${m.forgotTitle}</h1>
<p class="bo-intro">${m.forgotIntro}</p>
${this.messages(context)}
<form id="bo-forgot-form" method="post" novalidate>
${this.field('bo-email', 'email', m.emailLabel, 'email', 'email')}
<button type="submit">${m.sendResetLinkButton}</button>
</form>
${this.backToSignIn()}`,
    };
  }

  /**
   * The account an emailed link sets the password of, filled by pages.js from `POST /auth/reset-password/verify` or
   * `/auth/invite/verify` (a live link only): shown as text ("Account: ana@example.com", not a read-only control a
   * person can tab to but not change), and in a hidden `autocomplete="username"` field beside the new password, so
   * password managers save the new password for that account (as Chromium's password form guidance asks), never
   * sent (no name). Both stay hidden while the link is unverified; once shown, the text is also the first part of the
   * new password's aria-describedby (read with the field; no live region announces it as the page loads).
   */
  private linkAccount(): SafeHtml {
    return html`<p id="bo-link-account" class="bo-link-account" hidden></p>
<input type="text" id="bo-link-username" autocomplete="username" tabindex="-1" aria-hidden="true" hidden>`;
  }

  /** A page that sets a password with a token from the email link (reset, invite). */
  private passwordFromLink(context: BackOfficeUiPageContext, title: string, intro: string, formId: string, after: SafeHtml) {
    return {
      title,
      body: html`<h1>${title}</h1>
<p class="bo-intro">${intro}</p>
${this.messages(context)}
<form id="${formId}" method="post" novalidate>
${this.linkAccount()}
${this.newPasswordField()}
<button type="submit">${this.m.setPasswordButton}</button>
</form>
${after}`,
    };
  }

  private reset(context: BackOfficeUiPageContext) {
    const m = this.m;
    const after = html`<p class="bo-links" id="bo-request-new-link" hidden><a href="${this.base}/forgot-password">${m.requestNewLink}</a></p>
${this.backToSignIn()}`;
    return this.passwordFromLink(context, m.resetTitle, m.resetIntro, 'bo-reset-form', after);
  }

  /** Accept an invite: choose a password, or continue with an external provider (only that with `denyLocalLogin`). */
  private invite(context: BackOfficeUiPageContext) {
    const m = this.m;
    const deny = this.options.denyLocalLogin;
    if (!deny) {
      const providers = html`<div id="bo-providers" class="bo-providers" hidden><p>${m.orContinueWithProvider}</p><ul></ul></div>`;
      return this.passwordFromLink(context, m.inviteTitle, m.inviteIntro, 'bo-invite-form', providers);
    }
    // No form: the account line (filled by pages.js from a live link's verify, as on the password pages) sits between the
    // intro and the buttons, read just before them: the account the provider login will join (the provider may know the
    // person by another address). No hidden username field: there is no password for a password manager to save.
    return { title: m.inviteTitle, body: html`<h1>${m.inviteTitle}</h1>
${this.messages(context)}
<div id="bo-providers" class="bo-providers" hidden><p>${m.inviteProviderIntro}</p><p id="bo-link-account" class="bo-link-account" hidden></p><ul></ul></div>` };
  }

  /** Confirm an email change with the token of the link mailed to the new address (no password asked). */
  private confirmEmail(context: BackOfficeUiPageContext) {
    const m = this.m;
    return {
      title: m.confirmEmailTitle,
      body: html`<h1>${m.confirmEmailTitle}</h1>
<p class="bo-intro">${m.confirmEmailIntro}</p>
${this.messages(context)}
<form id="bo-confirm-email-form" method="post" novalidate>
<button type="submit">${m.confirmEmailButton}</button>
</form>
${this.backToSignIn()}`,
    };
  }

  /** The account page's passkeys: list (rename, remove) and "Add a passkey" with a name. */
  private passkeysSection(): SafeHtml {
    const m = this.m;
    return html`<section class="bo-section" id="bo-passkeys-section" aria-labelledby="bo-passkeys-heading">
<h2 id="bo-passkeys-heading" tabindex="-1">${m.passkeysHeading}</h2>
<p>${m.passkeysIntro}</p>
<ul id="bo-passkeys" class="bo-list"></ul>
<p id="bo-no-passkeys" hidden>${m.noPasskeys}</p>
<form id="bo-passkey-add-form" method="post" novalidate>
${this.field('bo-passkey-name', 'name', m.passkeyNameLabel, 'text', 'off', { hint: m.passkeyNameHint })}
<button type="submit">${m.addPasskeyButton}</button>
</form>
</section>`;
  }

  /**
   * The signed-in account's username in a password form of the account page (filled by pages.js, hidden, never
   * sent): password managers save (and fill) the password for that account, not for a guess (WCAG 3.3.8).
   */
  private accountUsername(): SafeHtml {
    return html`<input type="text" class="bo-account-username" autocomplete="username" tabindex="-1" aria-hidden="true" hidden>`;
  }

  /** "Change password" on the account page; none with `denyLocalLogin` (the server refuses every password then). */
  private changePasswordSection() {
    const m = this.m;
    return html`<section class="bo-section" aria-labelledby="bo-password-heading">
<h2 id="bo-password-heading">${m.changePasswordHeading}</h2>
<form id="bo-change-password-form" method="post" novalidate>
${this.accountUsername()}
${this.field('bo-current-password', 'currentPassword', m.currentPasswordLabel, 'password', 'current-password')}
${this.newPasswordField()}
<button type="submit">${m.changePasswordButton}</button>
</form>
</section>`;
  }

  private account(context: BackOfficeUiPageContext) {
    const m = this.m;
    return {
      title: m.accountTitle,
      wide: true,
      body: html`<h1>${m.accountTitle}</h1>
<div class="bo-account-head"><p id="bo-signed-in-as">${m.loading}</p><button type="button" class="bo-secondary" data-backoffice-sign-out>${m.signOutButton}</button></div>
${this.messages(context)}
<div id="bo-account-content" hidden>
${this.options.denyLocalLogin ? '' : this.changePasswordSection()}
<section class="bo-section" aria-labelledby="bo-2fa-heading">
<h2 id="bo-2fa-heading" tabindex="-1">${m.twoFactorHeading}</h2>
<p id="bo-2fa-state"></p>
<div id="bo-recovery-state" hidden>
<p id="bo-recovery-left"></p>
<p id="bo-recovery-low" class="bo-warning" hidden>${m.recoveryCodesLow}</p>
<p><button type="button" id="bo-recovery-regenerate" class="bo-secondary" aria-describedby="bo-recovery-regenerate-hint">${m.regenerateRecoveryCodesButton}</button>
<span id="bo-recovery-regenerate-hint" class="bo-hint">${m.regenerateRecoveryCodesHint}</span></p>
</div>
<button type="button" id="bo-2fa-start" class="bo-secondary" hidden>${m.setUpTwoFactorButton}</button>
<div id="bo-2fa-setup" hidden>
<p>${m.scanQrCode}</p>
<img id="bo-qr" class="bo-qr" alt="${m.qrCodeAlt}">
<p>${m.setupKeyLabel}: <code id="bo-secret" class="bo-secret"></code></p>
<form id="bo-2fa-enable-form" method="post" novalidate>
${this.field('bo-totp-code', 'code', m.codeLabel, 'text', 'one-time-code', { inputmode: 'numeric' })}
<button type="submit">${m.verifyButton}</button>
</form>
</div>
<div id="bo-recovery" hidden>
<h3 id="bo-recovery-heading" tabindex="-1">${m.recoveryCodesHeading}</h3>
<p>${m.recoveryCodesIntro}</p>
<ul id="bo-recovery-codes" class="bo-codes"></ul>
<p class="bo-actions"><button type="button" id="bo-copy-codes" class="bo-secondary">${m.copyCodesButton}</button><button type="button" id="bo-download-codes" class="bo-secondary">${m.downloadCodesButton}</button><button type="button" id="bo-saved-codes">${m.savedCodesButton}</button></p>
</div>
<form id="bo-2fa-disable-form" method="post" novalidate hidden>
${this.options.denyLocalLogin ? '' : this.accountUsername()}
${this.options.denyLocalLogin ? '' : this.field('bo-2fa-password', 'password', m.passwordLabel, 'password', 'current-password')}
<button type="submit" class="bo-danger">${m.turnOffTwoFactorButton}</button>
</form>
</section>
${context.passkeysAvailable ? this.passkeysSection() : ''}
<section class="bo-section" aria-labelledby="bo-sessions-heading">
<h2 id="bo-sessions-heading" tabindex="-1">${m.sessionsHeading}</h2>
<p>${m.sessionsIntro}</p>
<ul id="bo-sessions" class="bo-list"></ul>
<p id="bo-sessions-more" hidden></p>
<p id="bo-no-other-sessions" hidden>${m.noOtherSessions}</p>
<p><button type="button" id="bo-sign-out-others" class="bo-danger" hidden>${m.signOutOthersButton}</button></p>
</section>
<section class="bo-section" id="bo-logins-section" aria-labelledby="bo-logins-heading" hidden>
<h2 id="bo-logins-heading" tabindex="-1">${m.loginsHeading}</h2>
<p>${m.loginsIntro}</p>
<p id="bo-no-logins" hidden>${m.noLogins}</p>
<ul id="bo-logins" class="bo-list"></ul>
</section>
</div>`,
    };
  }
}
