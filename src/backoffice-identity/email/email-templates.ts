import { Inject, Injectable } from '@nestjs/common';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { BackOfficeEmailMessage } from '../notifications/notifications.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';

const escapeHtml = (value: string) =>
  value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Every character a mail client may break a line at: CR, LF, VT, FF, NEL, LINE and PARAGRAPH SEPARATOR. */
const LINE_BREAKS = /[\r\n\u000b\u000c\u0085\u2028\u2029]+/g;

/**
 * A user-controlled value (a name) on one line of a body: its line breaks become spaces, so it cannot add lines of
 * its own (a fake notice or link) to the text an email carries (OWASP ASVS 5.0 1.2.x).
 */
const inline = (value: string) => value.replace(LINE_BREAKS, ' ');

/**
 * Strips line breaks from a header value (subject) so no header can be injected, and keeps at most 200 UTF-16 code
 * units, cut between characters: never half of a surrogate pair (an emoji), which a mail relay shows as U+FFFD.
 */
const oneLine = (value: string) => {
  const line = inline(value);
  const end = line.length > 200 && /[\ud800-\udbff]/.test(line[199]) ? 199 : 200;
  return line.slice(0, end);
};

/**
 * Builds the invite and password-reset emails. Override a method (through `overrideProvider` or a subclass)
 * to change wording or branding. Links put user id and token in the URL fragment, which browsers never send
 * to servers or in `Referer` headers.
 */
@Injectable()
export class BackOfficeEmailTemplates {
  constructor(@Inject(BACKOFFICE_IDENTITY_OPTIONS) protected readonly options: ResolvedBackOfficeIdentityOptions) {}

  /** The link of an email: `<publicUrl>/<routePrefix>/<page>#userId=...&token=...`. */
  link(page: 'accept-invite' | 'reset-password' | 'confirm-email', userId: string, token: string): string {
    const fragment = new URLSearchParams({ userId, token }).toString();
    return `${this.options.publicUrl}/${this.options.routePrefix}/${page}#${fragment}`;
  }

  /**
   * The invite link: the accept-invite page, with user id and token in the fragment. With `denyLocalLogin` and an
   * external provider the page offers only the provider ("Continue with ..."), which posts the token to the
   * provider's challenge; the callback links the provider login to the invited user. The token never goes in a
   * query string.
   */
  inviteLink(userId: string, token: string): { url: string; action: string } {
    const providers = this.options.externalLogins;
    const provider = this.options.denyLocalLogin ? (providers.find((p) => p.denyLocalLogin) ?? providers[0]) : undefined;
    const url = this.link('accept-invite', userId, token);
    return { url, action: provider ? `Accept the invitation and sign in with ${provider.displayName}` : 'Accept the invitation and choose a password' };
  }

  invite(user: BackOfficeUser, token: string, inviter: { name: string } | null, message?: string): BackOfficeEmailMessage {
    const { url: link, action } = this.inviteLink(user.id, token);
    const hours = this.options.tokens.inviteLifespanHours;
    const from = inviter ? `${inline(inviter.name)} has invited you` : 'You have been invited';
    const name = inline(user.name);
    const note = message?.trim() ? `\n\n${message.trim()}\n` : '';
    return {
      to: user.email,
      subject: oneLine(`${from} to the back office`),
      text: `Hello ${name},\n\n${from} to the back office.${note}\n\n${action}:\n${link}\n\nThe link works once and expires in ${hours} hours.\n`,
      html:
        `<p>Hello ${escapeHtml(name)},</p><p>${escapeHtml(from)} to the back office.</p>` +
        (note ? `<blockquote>${escapeHtml(message!.trim()).replace(/\n/g, '<br>')}</blockquote>` : '') +
        `<p><a href="${escapeHtml(link)}">${escapeHtml(action)}</a></p>` +
        `<p>The link works once and expires in ${hours} hours.</p>`,
    };
  }

  /** To the new address of an email change: the confirmation link. */
  emailChangeConfirm(user: BackOfficeUser, newEmail: string, token: string, lifespanHours: number): BackOfficeEmailMessage {
    const link = this.link('confirm-email', user.id, token);
    return {
      to: newEmail,
      subject: 'Confirm your new back-office email address',
      text: `Hello ${inline(user.name)},\n\nConfirm that this is your new back-office email address:\n${link}\n\nThe link works once and expires in ${lifespanHours} hours. If you did not ask for this, ignore this email.\n`,
      html:
        `<p>Hello ${escapeHtml(inline(user.name))},</p><p><a href="${escapeHtml(link)}">Confirm that this is your new back-office email address</a></p>` +
        `<p>The link works once and expires in ${lifespanHours} hours. If you did not ask for this, ignore this email.</p>`,
    };
  }

  /** To the old address of an email change: a notice, no link. */
  emailChangeNotice(user: BackOfficeUser, newEmail: string): BackOfficeEmailMessage {
    const text = `Someone signed in as you asked to change your back-office email address to ${inline(newEmail)}. It changes only when the link sent there is opened. If this was not you, change your password and tell an administrator.`;
    return {
      to: user.email,
      subject: 'Your back-office email address is being changed',
      text: `Hello ${inline(user.name)},\n\n${text}\n`,
      html: `<p>Hello ${escapeHtml(inline(user.name))},</p><p>${escapeHtml(text)}</p>`,
    };
  }

  passwordReset(user: BackOfficeUser, token: string): BackOfficeEmailMessage {
    const link = this.link('reset-password', user.id, token);
    const minutes = Math.round(this.options.tokens.passwordResetLifespanHours * 60);
    const twoFactor = user.twoFactorEnabled ? this.twoFactorResetNote() : '';
    return {
      to: user.email,
      subject: 'Reset your back-office password',
      text: `Hello ${inline(user.name)},\n\nSomeone (hopefully you) asked to reset your back-office password. Choose a new one here:\n${link}\n\nThe link works once and expires in ${minutes} minutes. If you did not ask for this, ignore this email.\n${twoFactor ? `\n${twoFactor}\n` : ''}`,
      html:
        `<p>Hello ${escapeHtml(inline(user.name))},</p><p>Someone (hopefully you) asked to reset your back-office password.</p>` +
        `<p><a href="${escapeHtml(link)}">Choose a new password</a></p>` +
        `<p>The link works once and expires in ${minutes} minutes. If you did not ask for this, ignore this email.</p>` +
        (twoFactor ? `<p><strong>${escapeHtml(twoFactor)}</strong></p>` : ''),
    };
  }

  /**
   * Sent instead of a reset link when forgot-password is asked for a directory-managed user (LDAP): the password is
   * the organisation directory's, so it is reset there. No link.
   */
  passwordManagedByDirectory(user: BackOfficeUser): BackOfficeEmailMessage {
    const text =
      'Someone (hopefully you) asked to reset your back-office password. Your password is managed by your organisation\'s ' +
      'directory, so it cannot be reset here: change it in the directory, or ask your administrator. If you did not ask for this, ignore this email.';
    return {
      to: user.email,
      subject: 'Your back-office password is managed by your organisation',
      text: `Hello ${inline(user.name)},\n\n${text}\n`,
      html: `<p>Hello ${escapeHtml(inline(user.name))},</p><p>${escapeHtml(text)}</p>`,
    };
  }

  /**
   * Told to users with two-factor authentication on: a new password does not turn it off, and who can.
   * Override to name your own help desk.
   */
  protected twoFactorResetNote(): string {
    return (
      'Two-factor authentication is on for your account: a new password does not turn it off, so you will still ' +
      'need a code from your authenticator app or one of your recovery codes to sign in. If you have lost both, ' +
      'ask a back-office administrator to reset two-factor authentication for your account.'
    );
  }
}
