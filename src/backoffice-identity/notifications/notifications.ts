import { Logger } from '@nestjs/common';
import { BackOfficeEvents, type BackOfficeEventName } from '../constants.js';
import { redactText, secretForms } from '../common/redaction.js';
import { currentListenerRun, type BackOfficeListenerRun } from './listener-run.js';

/** Fields every notification carries. */
export interface BackOfficeNotificationInit {
  ipAddress?: string | null;
  performingUserId?: string | null;
  affectedUserId?: string | null;
  dateTimeUtc?: Date;
}

/**
 * A frozen copy of plain data (arrays and plain objects, at every depth; a `Date` in it is copied): what a
 * notification holds of the module's own objects, so that a listener can change neither them nor what the audit
 * trail writes of the notification. Other values are kept as they are.
 */
function frozenCopy<T>(value: T): T {
  if (Array.isArray(value)) return Object.freeze(value.map(frozenCopy)) as T;
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (value === null || typeof value !== 'object') return value;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
  const copy = Object.create(prototype) as Record<string, unknown>;
  for (const [key, item] of Object.entries(value)) copy[key] = frozenCopy(item);
  return Object.freeze(copy) as T;
}

/**
 * Defines `name` on `target` as an own enumerable, read-only property that answers a new `Date` of `time` at each read
 * (`null` stays `null`): a `Date` cannot be frozen (`setTime()` still works), so a listener that changes the one it
 * read changes only its own copy, never what the module or the audit trail reads next.
 */
function defineTimeProperty(target: object, name: string, time: Date | null): void {
  const ms = time === null ? null : time.getTime();
  Object.defineProperty(target, name, { enumerable: true, configurable: false, get: () => (ms === null ? null : new Date(ms)) });
}

/**
 * Base class of every back-office notification. The publisher freezes it before its listeners run, and what it
 * holds is frozen too (lists, diffs; copies of the module's own objects): a listener reads it and cannot change it.
 */
export abstract class BackOfficeNotification {
  abstract readonly eventName: BackOfficeEventName;
  readonly ipAddress: string | null;
  readonly performingUserId: string | null;
  readonly affectedUserId: string | null;
  /** When it happened. Each read gives a new `Date` (changing it changes nothing else). */
  declare readonly dateTimeUtc: Date;

  constructor(init: BackOfficeNotificationInit) {
    this.ipAddress = init.ipAddress ?? null;
    this.performingUserId = init.performingUserId ?? null;
    this.affectedUserId = init.affectedUserId ?? null;
    defineTimeProperty(this, 'dateTimeUtc', init.dateTimeUtc ?? new Date());
  }

  /** Extra fields for the audit trail; never secrets. */
  auditDetails(): Record<string, unknown> {
    return {};
  }

  /**
   * How long the publisher waits for each of this notification's own listeners (milliseconds); `undefined`: the
   * module's `notifications.listenerTimeoutMs`. A listener still running then is logged and left behind.
   */
  get listenerTimeoutMs(): number | undefined {
    return undefined;
  }

  /**
   * Called once the publisher stopped waiting for the listeners (all settled, or the time limit passed): a
   * notification that carries a listener's decision refuses it from now on (the module has acted without it).
   */
  listenersSettled(): void {}

  /**
   * Called by the publisher when one of this notification's own listeners failed (threw or rejected within its time
   * limit): `run` is that listener's run (see `listener-run.ts`). A notification that took a decision from it may void it.
   */
  listenerFailed(_run: BackOfficeListenerRun): void {}

  /** `text` (e.g. a failed listener's error message, about to be logged) without the secrets this notification carries. */
  redact(text: string): string {
    return text;
  }
}

/** The second factor a sign-in step was answered with, for the audit: `{ twoFactorProvider }`, or nothing without one. */
const twoFactorDetails = (provider: string | null): Record<string, unknown> => (provider === null ? {} : { twoFactorProvider: provider });

/**
 * Where a signed-in user's password or passkey is checked again: step-up, the current password of a change, or the
 * password that turns two-factor off.
 */
export type BackOfficeCredentialCheckVia = 'reauthentication' | 'change_password' | 'two_factor_disable';

export class UserLoginSuccessNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.LoginSuccess;
  /**
   * The second factor that finished the sign-in (`totp`, `recovery` for a recovery code, or another registered
   * provider's name); null when there was no second step (OWASP ASVS 5.0 16.3.1: the factor used is audited).
   */
  readonly twoFactorProvider: string | null;
  constructor(init: BackOfficeNotificationInit & { twoFactorProvider?: string | null }) {
    super(init);
    this.twoFactorProvider = init.twoFactorProvider ?? null;
  }
  override auditDetails(): Record<string, unknown> {
    return twoFactorDetails(this.twoFactorProvider);
  }
}

export class UserLoginFailedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.LoginFailed;
  /** Why: `invalid_credentials`, `locked_out`, `not_allowed`, `invalid_code`, `two_factor_code_reused` (a right TOTP code used before), `password_check_unavailable` (a directory outage, not counted), ... */
  readonly reason: string;
  /** On a refused second step: the known provider the code was given for (`totp`, `recovery`, ...); else null. */
  readonly twoFactorProvider: string | null;
  /**
   * Where a signed-in user's credential was refused: `reauthentication` (step-up with a password or passkey) or
   * `change_password` (a wrong current password) or `two_factor_disable` (a wrong password at `POST /auth/2fa/disable`);
   * null for a sign-in.
   */
  readonly via: BackOfficeCredentialCheckVia | null;
  constructor(init: BackOfficeNotificationInit & { reason: string; twoFactorProvider?: string | null; via?: BackOfficeCredentialCheckVia | null }) {
    super(init);
    this.reason = init.reason;
    this.twoFactorProvider = init.twoFactorProvider ?? null;
    this.via = init.via ?? null;
  }
  override auditDetails() {
    return { reason: this.reason, ...twoFactorDetails(this.twoFactorProvider), ...(this.via === null ? {} : { via: this.via }) };
  }
}

export class UserLoginRequiresVerificationNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.LoginRequiresVerification;
}

/** A member of a `requireTwoFactor` group without 2FA signed in with the right password: enrolment comes first. */
export class UserLoginRequiresTwoFactorSetupNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.LoginRequiresTwoFactorSetup;
}

/**
 * A signed-in user re-authenticated (step-up: `POST /auth/reauthenticate`, its passkey form, or a round trip to a
 * linked provider) and the session got a new token (OWASP ASVS 5.0 16.3.1: successes are audited too; a refused
 * step-up is `UserLoginFailedNotification` with `via: 'reauthentication'`). No sign-in: `UserLoginSuccessNotification`
 * is not emitted.
 */
export class UserReauthenticatedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.Reauthenticated;
  /** What confirmed it: `password`, `passkey` or the provider's `name`. */
  readonly method: 'password' | 'passkey' | (string & {});
  constructor(init: BackOfficeNotificationInit & { method: 'password' | 'passkey' | (string & {}) }) {
    super(init);
    this.method = init.method;
  }
  override auditDetails() {
    return { method: this.method };
  }
}

export class UserTwoFactorRequestedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.TwoFactorRequested;
  readonly provider: string;
  constructor(init: BackOfficeNotificationInit & { provider: string }) {
    super(init);
    this.provider = init.provider;
  }
  override auditDetails() {
    return { provider: this.provider };
  }
}

export class UserLockedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.Locked;
}

export class UserUnlockedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.Unlocked;
}

export class UserResetAccessFailedCountNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.AccessFailedCountReset;
}

export class UserPasswordChangedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.PasswordChanged;
}

export class UserPasswordResetNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.PasswordReset;
}

export class UserForgotPasswordRequestedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.ForgotPasswordRequested;
}

export class UserForgotPasswordChangedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.ForgotPasswordChanged;
}

export class UserInvitedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.Invited;
}

export class UserInviteAcceptedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.InviteAccepted;
}

export class UserDisabledNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.Disabled;
  /** The admin's reason, if given. */
  readonly reason: string | null;
  /** When the disable ends by itself, if set (each read gives a new `Date`). */
  declare readonly until: Date | null;
  constructor(init: BackOfficeNotificationInit & { reason?: string | null; until?: Date | null }) {
    super(init);
    this.reason = init.reason ?? null;
    defineTimeProperty(this, 'until', init.until ?? null);
  }
  override auditDetails() {
    return this.reason === null && this.until === null ? {} : { reason: this.reason, until: this.until?.toISOString() ?? null };
  }
}

export class UserEnabledNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.Enabled;
}

export class UserGroupsChangedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.GroupsChanged;
  readonly groups: string[];
  /** Aliases the change added and removed (the diff). */
  readonly added: string[];
  readonly removed: string[];
  /** Who decided: `local` (an admin or the host) or `provider:<name>` (groups managed by an external provider). */
  readonly source: string;
  constructor(init: BackOfficeNotificationInit & { groups: string[]; added?: string[]; removed?: string[]; source?: string }) {
    super(init);
    this.groups = frozenCopy(init.groups);
    this.added = frozenCopy(init.added ?? []);
    this.removed = frozenCopy(init.removed ?? []);
    this.source = init.source ?? 'local';
  }
  override auditDetails() {
    return { groups: this.groups, added: this.added, removed: this.removed, source: this.source };
  }
}

/** Base of the notifications about one external login provider. */
abstract class ExternalLoginNotification extends BackOfficeNotification {
  /** The provider's `name`. */
  readonly provider: string;
  constructor(init: BackOfficeNotificationInit & { provider: string }) {
    super(init);
    this.provider = init.provider;
  }
  override auditDetails(): Record<string, unknown> {
    return { provider: this.provider };
  }
}

/** A user signed in through an external provider (emitted beside `UserLoginSuccessNotification`). */
export class UserExternalLoginSuccessNotification extends ExternalLoginNotification {
  readonly eventName = BackOfficeEvents.ExternalLoginSuccess;
}

/** An external login was added to a user (manual link, invite, or auto-link). */
export class UserLoginLinkedNotification extends ExternalLoginNotification {
  readonly eventName = BackOfficeEvents.LoginLinked;
}

/** An external login was removed from a user. */
export class UserLoginUnlinkedNotification extends ExternalLoginNotification {
  readonly eventName = BackOfficeEvents.LoginUnlinked;
}

/** A user was created by auto-linking on a first external sign-in. */
export class UserAutoLinkedNotification extends ExternalLoginNotification {
  readonly eventName = BackOfficeEvents.AutoLinked;
}

/**
 * Groups an external provider's groups claim named were not granted (OpenID Connect; OWASP ASVS 4.0 4.1.3):
 * `reason` `not_mapped` (a provider group grants a back-office group only through `autoLink.groupMapping`; without
 * one the claim grants nothing). `groups` are the back-office aliases the claim named that were not granted.
 */
export class UserProviderGroupsRefusedNotification extends ExternalLoginNotification {
  readonly eventName = BackOfficeEvents.ProviderGroupsRefused;
  readonly groups: string[];
  readonly reason: string;
  constructor(init: BackOfficeNotificationInit & { provider: string; groups: string[]; reason: string }) {
    super(init);
    this.groups = frozenCopy(init.groups);
    this.reason = init.reason;
  }
  override auditDetails(): Record<string, unknown> {
    return { provider: this.provider, groups: this.groups, reason: this.reason };
  }
}

/** A user's sessions were ended by an admin (or by a security event). */
export class UserSessionsRevokedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.SessionsRevoked;
  readonly count: number;
  constructor(init: BackOfficeNotificationInit & { count: number }) {
    super(init);
    this.count = init.count;
  }
  override auditDetails() {
    return { count: this.count };
  }
}

/**
 * One import of users (API, CLI or code) finished, or stopped part-way (`interrupted`: a file that broke off, the
 * database gone) after some of its batches were committed: the counts of what was done, never a record or a hash.
 */
export class UsersImportedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.UsersImported;
  readonly total: number;
  readonly created: number;
  readonly updated: number;
  readonly skipped: number;
  readonly invalid: number;
  readonly dryRun: boolean;
  readonly onConflict: string;
  /** Where the import came from: `api`, `cli` or `code`. */
  readonly source: string;
  /** The import stopped part-way: the counts are those of the batches committed before it stopped. */
  readonly interrupted: boolean;
  constructor(
    init: BackOfficeNotificationInit & {
      total: number;
      created: number;
      updated: number;
      skipped: number;
      invalid: number;
      dryRun: boolean;
      onConflict: string;
      source?: string;
      interrupted?: boolean;
    },
  ) {
    super(init);
    this.total = init.total;
    this.created = init.created;
    this.updated = init.updated;
    this.skipped = init.skipped;
    this.invalid = init.invalid;
    this.dryRun = init.dryRun;
    this.onConflict = init.onConflict;
    this.source = init.source ?? 'code';
    this.interrupted = init.interrupted === true;
  }
  override auditDetails() {
    const { total, created, updated, skipped, invalid, dryRun, onConflict, source } = this;
    return { total, created, updated, skipped, invalid, dryRun, onConflict, source, ...(this.interrupted ? { interrupted: true } : {}) };
  }
}

export class UserTwoFactorEnabledNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.TwoFactorEnabled;
}

export class UserTwoFactorDisabledNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.TwoFactorDisabled;
}

/**
 * A user with 2FA on got a new set of recovery codes (the old set is void): `count` codes, never the codes
 * themselves. Not raised by the set that turning 2FA on hands out (that is `UserTwoFactorEnabledNotification`).
 */
export class UserRecoveryCodesRegeneratedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.RecoveryCodesRegenerated;
  /** How many codes the new set has. */
  readonly count: number;
  constructor(init: BackOfficeNotificationInit & { count: number }) {
    super(init);
    this.count = init.count;
  }
  override auditDetails() {
    return { count: this.count };
  }
}

/** Fields of a passkey notification: which passkey (never its key material). */
export interface PasskeyNotificationInit extends BackOfficeNotificationInit {
  passkeyId: string;
  passkeyName: string;
}

abstract class PasskeyNotification extends BackOfficeNotification {
  readonly passkeyId: string;
  readonly passkeyName: string;
  constructor(init: PasskeyNotificationInit) {
    super(init);
    this.passkeyId = init.passkeyId;
    this.passkeyName = init.passkeyName;
  }
  override auditDetails(): Record<string, unknown> {
    return { passkeyId: this.passkeyId, passkeyName: this.passkeyName };
  }
}

/** A passkey was registered. */
export class UserPasskeyAddedNotification extends PasskeyNotification {
  readonly eventName = BackOfficeEvents.PasskeyAdded;
}

/** A passkey was removed. */
export class UserPasskeyRemovedNotification extends PasskeyNotification {
  readonly eventName = BackOfficeEvents.PasskeyRemoved;
}

/** A passkey was renamed: `passkeyName` is the new name, `previousName` the one it replaced. */
export class UserPasskeyRenamedNotification extends PasskeyNotification {
  readonly eventName = BackOfficeEvents.PasskeyRenamed;
  readonly previousName: string;
  constructor(init: PasskeyNotificationInit & { previousName: string }) {
    super(init);
    this.previousName = init.previousName;
  }
  override auditDetails() {
    return { ...super.auditDetails(), previousName: this.previousName };
  }
}

/** A passkey signed in (`usage` `signIn`), answered the second-factor step (`secondFactor`) or confirmed a step-up (`reauthentication`). */
export class UserPasskeyUsedNotification extends PasskeyNotification {
  readonly eventName = BackOfficeEvents.PasskeyUsed;
  readonly usage: 'signIn' | 'secondFactor' | 'reauthentication';
  readonly userVerified: boolean;
  constructor(init: PasskeyNotificationInit & { usage: 'signIn' | 'secondFactor' | 'reauthentication'; userVerified: boolean }) {
    super(init);
    this.usage = init.usage;
    this.userVerified = init.userVerified;
  }
  override auditDetails() {
    return { ...super.auditDetails(), usage: this.usage, userVerified: this.userVerified };
  }
}

/**
 * A passkey's signature counter did not move forward: the authenticator may have been cloned. The assertion
 * was refused.
 */
export class UserPasskeyCounterRegressedNotification extends PasskeyNotification {
  readonly eventName = BackOfficeEvents.PasskeyCounterRegressed;
  readonly storedCounter: number;
  readonly receivedCounter: number;
  constructor(init: PasskeyNotificationInit & { storedCounter: number; receivedCounter: number }) {
    super(init);
    this.storedCounter = init.storedCounter;
    this.receivedCounter = init.receivedCounter;
  }
  override auditDetails() {
    return { ...super.auditDetails(), storedCounter: this.storedCounter, receivedCounter: this.receivedCounter };
  }
}

/** The longest `signOutRedirectUrl` a listener may set (an end-session URL with an ID token hint fits). */
const MAX_SIGN_OUT_REDIRECT_URL_LENGTH = 8192;

/** Why `url` cannot be a `signOutRedirectUrl` (for the log: never the value itself), or null when it may. */
function refusedSignOutRedirectUrl(url: unknown): string | null {
  if (url === null || (typeof url === 'string' && url.length <= MAX_SIGN_OUT_REDIRECT_URL_LENGTH)) return null;
  if (typeof url === 'string') return `${url.length} characters long (at most ${MAX_SIGN_OUT_REDIRECT_URL_LENGTH})`;
  const kind = typeof url === 'object' ? (Array.isArray(url) ? 'an array' : `an object (${(url as object).constructor?.name ?? 'no prototype'})`) : `a ${typeof url}`;
  return `${kind}, not a string or null`;
}

/** Emitted after logout; a listener may set {@link signOutRedirectUrl} ("log out everywhere"). */
export class UserLogoutSuccessNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.LogoutSuccess;
  /**
   * Returned to the client by `POST /auth/logout`; `null` when no listener set it. A string of at most 8192 characters
   * or `null`: anything else (a `URL` object, a number, a longer string) is logged as an error and ignored, and the
   * route answers only an absolute `http(s):` URL or a same-origin path (others are logged and ignored too). Several
   * listeners: the last set wins. Set it before the listener's
   * promise settles and within `notifications.listenerTimeoutMs`: later the response has gone out, so a late value is
   * ignored (logged once as a warning; it never throws, so a detached `.then()` that sets it cannot crash the process).
   * An own enumerable property: `JSON.stringify` and `{ ...notification }` show it.
   */
  declare signOutRedirectUrl: string | null;
  #redirectUrl: string | null = null;
  #closed = false;
  #lateSetLogged = false;

  constructor(init: BackOfficeNotificationInit) {
    super(init);
    Object.defineProperty(this, 'signOutRedirectUrl', {
      enumerable: true,
      configurable: false,
      get: (): string | null => this.#redirectUrl,
      set: (url: string | null) => this.#setRedirectUrl(url),
    });
  }

  /** From now on a `signOutRedirectUrl` set is ignored: the logout answers with what was set. */
  override listenersSettled(): void {
    this.#closed = true;
  }
  override auditDetails() {
    return { signOutRedirectUrl: this.signOutRedirectUrl };
  }

  #setRedirectUrl(url: string | null): void {
    if (!this.#closed) {
      const refused = refusedSignOutRedirectUrl(url);
      if (refused === null) this.#redirectUrl = url;
      else new Logger('BackOfficeNotifications').error(`A listener of ${this.eventName} set a signOutRedirectUrl that is ${refused}: it is ignored (the logout answers as if it was not set)`);
      return;
    }
    if (this.#lateSetLogged) return;
    this.#lateSetLogged = true;
    new Logger('BackOfficeNotifications').warn(
      `signOutRedirectUrl set on ${this.eventName} came after its listeners' time limit: the logout had already answered without it, the value is ignored`,
    );
  }
}

/** Kinds of email the module sends. */
export type BackOfficeEmailType = 'UserInvite' | 'PasswordReset' | (string & {});

/** A ready-to-send email. */
export interface BackOfficeEmailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/**
 * Emitted before an email is sent. A listener that calls {@link handleEmail} takes over delivery
 * (e.g. invites through an external identity provider); otherwise the `BackOfficeEmailSender` sends it.
 * `message` holds the live link (a take-over needs it), but is no enumerable property: `JSON.stringify` (see
 * {@link toJSON}), a spread copy and `util.inspect` / `console.log` of the notification (an `onAny` forwarder to a
 * SIEM, a debug log line) show the message without its token (OWASP ASVS 4.0 7.1.1).
 */
export class SendEmailNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.SendEmail;
  readonly emailType: BackOfficeEmailType;
  /**
   * The email as it will be sent, with its live link: read it to deliver the email yourself, never log it. Frozen: a
   * listener that writes to it (`to`, `text`, ...) fails (logged) and the email goes out as the module built it.
   */
  declare readonly message: BackOfficeEmailMessage;
  #handled = false;
  #closed = false;
  /** The listener runs that called handleEmail(), and the ones of them that failed. */
  readonly #takers = new Set<BackOfficeListenerRun | undefined>();
  readonly #failedTakers = new Set<BackOfficeListenerRun | undefined>();
  readonly #timeoutMs: number | undefined;
  readonly #secrets: readonly string[];
  /**
   * `secrets`: the values the message carries that must never be logged (its token), wherever they appear in its text;
   * the `token` values of its links are found without being named.
   */
  constructor(init: BackOfficeNotificationInit & { emailType: BackOfficeEmailType; message: BackOfficeEmailMessage; listenerTimeoutMs?: number; secrets?: readonly string[] }) {
    super(init);
    this.emailType = init.emailType;
    // A frozen copy: a listener cannot turn the email the default sender delivers to another address or link.
    Object.defineProperty(this, 'message', { value: Object.freeze({ ...init.message }), enumerable: false, writable: false, configurable: false });
    this.#timeoutMs = init.listenerTimeoutMs;
    this.#secrets = init.secrets ?? [];
  }
  /**
   * Tell the module that this email was taken care of: the default sender will not send it. Call it before the
   * listener's promise settles and within `email.listenerTimeoutMs`: later the default sender has already sent the
   * email, and this throws, so that code written as `n.handleEmail(); await mySend(n.message)` stops instead of
   * sending it a second time. Thrown in the listener's own promise chain, the error is logged by the module; a
   * listener that detaches its work (a `.then()` it does not return or await) must catch it itself, or it becomes an
   * unhandled rejection. A listener that calls it and then fails (its own send threw, within the time limit) did not
   * deliver the email: see {@link takeOverFailed}.
   */
  handleEmail(): void {
    if (this.#closed) throw new Error(`handleEmail() on a ${this.emailType} email came after its listeners' time limit: the default sender had already taken it`);
    this.#handled = true;
    this.#takers.add(currentListenerRun());
  }
  override get listenerTimeoutMs(): number | undefined {
    return this.#timeoutMs;
  }
  /**
   * Removes the message's secrets from `text`: the ones it was created with, wherever they appear, and the `token`
   * values of its links. A listener's or a relay's error that quotes the email must not put a live token in the log
   * (OWASP ASVS 4.0 7.1.1).
   */
  override redact(text: string): string {
    return redactText(text, this.secretForms());
  }

  /** Every form (raw, percent-encoded, form-encoded) of the message's secrets, longest first. */
  secretForms(): string[] {
    return secretForms([...this.#secrets, ...SendEmailNotification.linkSecrets(this.message)]);
  }

  /** The `token` values of the links in a message (fragment or query), as written and decoded. */
  private static linkSecrets(message: BackOfficeEmailMessage): string[] {
    const secrets: string[] = [];
    for (const body of [message.text, message.html]) {
      for (const match of String(body ?? '').matchAll(/[#?&](?:amp;)?token=([^&\s"'<>#]+)/g)) {
        secrets.push(match[1]);
        try {
          secrets.push(decodeURIComponent(match[1]));
        } catch {
          // kept as written
        }
      }
    }
    return secrets;
  }

  /** From now on `handleEmail()` is refused: the module decided who delivers. */
  override listenersSettled(): void {
    this.#closed = true;
  }
  get isHandled(): boolean {
    return this.#handled;
  }

  /**
   * True when every listener that called {@link handleEmail} then failed (threw or rejected within its time limit):
   * it took the email over and did not deliver it, so the module counts the email as not sent (a failed delivery:
   * 502 `email_failed` for an invite, the previous link kept on a resend), never as delivered. Seen whatever the
   * listener's `suppressErrors`: with `@nestjs/event-emitter`'s default the error never reaches the publisher, and the
   * module's guard on the listener's method (`BackOfficeTakeOverListenerGuard`) tells it instead.
   */
  get takeOverFailed(): boolean {
    return this.#takers.size > 0 && [...this.#takers].every((run) => run !== undefined && this.#failedTakers.has(run));
  }

  override listenerFailed(run: BackOfficeListenerRun): void {
    // After the time limit the module has decided: a later failure is only logged (as the publisher does).
    if (!this.#closed && this.#takers.has(run)) this.#failedTakers.add(run);
  }
  override auditDetails() {
    return { emailType: this.emailType, handled: this.#handled };
  }

  /**
   * What `JSON.stringify` shows (an `onAny` forwarder, a log line): the common fields, `emailType`, `isHandled` and the
   * message with its secrets replaced by `[redacted]`. `message` itself stays live for the listener that delivers it.
   */
  toJSON(): Record<string, unknown> {
    const forms = this.secretForms();
    const { to, subject, text, html } = this.message;
    const message = { to, subject: redactText(String(subject ?? ''), forms), text: redactText(String(text ?? ''), forms), html: redactText(String(html ?? ''), forms) };
    return { ...(this as object), message, isHandled: this.#handled };
  }
}

/** What a group change records: the group, and per changed field its value before and after. */
export interface BackOfficeGroupChange {
  alias: string;
  /** `{ field: { from, to } }`; on create `from` is null, on delete `to` is null. */
  changes: Record<string, { from: unknown; to: unknown }>;
  /** On delete: where the members went and how many they were. */
  movedMembersTo?: string | null;
  movedMembers?: number;
}

/** Base of the group notifications: no affected user, the group and the diff in the audit details. */
export abstract class BackOfficeGroupNotification extends BackOfficeNotification {
  readonly alias: string;
  readonly changes: BackOfficeGroupChange['changes'];
  readonly movedMembersTo?: string | null;
  readonly movedMembers?: number;
  constructor(init: BackOfficeNotificationInit & BackOfficeGroupChange) {
    super({ ...init, affectedUserId: null });
    this.alias = init.alias;
    this.changes = frozenCopy(init.changes);
    this.movedMembersTo = init.movedMembersTo;
    this.movedMembers = init.movedMembers;
  }
  override auditDetails(): Record<string, unknown> {
    const details: Record<string, unknown> = { group: this.alias, changes: this.changes };
    if (this.movedMembers !== undefined) Object.assign(details, { movedMembersTo: this.movedMembersTo ?? null, movedMembers: this.movedMembers });
    return details;
  }
}

/** A group was created (`changes` holds every field with `from: null`). */
export class GroupCreatedNotification extends BackOfficeGroupNotification {
  readonly eventName = BackOfficeEvents.GroupCreated;
}

/** A group's name or permissions changed (`changes` holds only what changed). */
export class GroupUpdatedNotification extends BackOfficeGroupNotification {
  readonly eventName = BackOfficeEvents.GroupUpdated;
}

/** A group was deleted, its members moved to `movedMembersTo` first when it had any. */
export class GroupDeletedNotification extends BackOfficeGroupNotification {
  readonly eventName = BackOfficeEvents.GroupDeleted;
}

/** An API user (machine) was created; the secret is never part of a notification. */
export class ApiUserCreatedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.ApiUserCreated;
  readonly clientId: string;
  readonly groups: string[];
  constructor(init: BackOfficeNotificationInit & { clientId: string; groups: string[] }) {
    super(init);
    this.clientId = init.clientId;
    this.groups = frozenCopy(init.groups);
  }
  override auditDetails() {
    return { clientId: this.clientId, groups: this.groups };
  }
}

/** An API user's secret was replaced; the previous one works until `previousSecretExpiresAt` (or not at all). */
export class ApiSecretRotatedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.ApiSecretRotated;
  readonly clientId: string;
  /** Each read gives a new `Date`. */
  declare readonly previousSecretExpiresAt: Date | null;
  constructor(init: BackOfficeNotificationInit & { clientId: string; previousSecretExpiresAt: Date | null }) {
    super(init);
    this.clientId = init.clientId;
    defineTimeProperty(this, 'previousSecretExpiresAt', init.previousSecretExpiresAt);
  }
  override auditDetails() {
    return { clientId: this.clientId, previousSecretExpiresAt: this.previousSecretExpiresAt?.toISOString() ?? null };
  }
}

/** A bearer token was issued to an API user (client credentials grant). */
export class ApiTokenIssuedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.ApiTokenIssued;
  readonly clientId: string;
  /** True when the secret that worked is the previous one, still in its rotation overlap. */
  readonly usedPreviousSecret: boolean;
  constructor(init: BackOfficeNotificationInit & { clientId: string; usedPreviousSecret: boolean }) {
    super(init);
    this.clientId = init.clientId;
    this.usedPreviousSecret = init.usedPreviousSecret;
  }
  override auditDetails() {
    return { clientId: this.clientId, usedPreviousSecret: this.usedPreviousSecret };
  }
}

/** A token request was refused: `unknown_client`, or for a known client `invalid_secret`, `locked_out` or `not_allowed` (disabled). */
export class ApiTokenRefusedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.ApiTokenRefused;
  /** The client id asked for; null when the request named none shaped like a client id (reason `unknown_client`). */
  readonly clientId: string | null;
  /** `unknown_client` (no such client; no affected user), `invalid_secret`, `locked_out` or `not_allowed`. */
  readonly reason: string;
  constructor(init: BackOfficeNotificationInit & { clientId: string | null; reason: string }) {
    super(init);
    this.clientId = init.clientId;
    this.reason = init.reason;
  }
  override auditDetails() {
    return { clientId: this.clientId, reason: this.reason };
  }
}

/**
 * Profile fields changed (own name, an admin's edit, or a name an external provider's `onExternalLogin` gave at a
 * sign-in): `changes` is `{ field: { from, to } }`.
 */
export class UserProfileUpdatedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.ProfileUpdated;
  readonly changes: Record<string, { from: unknown; to: unknown }>;
  /**
   * Who decided: `local` (the user, an admin or the host) or `provider:<name>` (an external provider's sign-in), as
   * {@link UserGroupsChangedNotification.source}. The audit entry names it only for a provider.
   */
  readonly source: string;
  constructor(init: BackOfficeNotificationInit & { changes: Record<string, { from: unknown; to: unknown }>; source?: string }) {
    super(init);
    this.changes = frozenCopy(init.changes);
    this.source = init.source ?? 'local';
  }
  override auditDetails() {
    return this.source === 'local' ? { changes: this.changes } : { changes: this.changes, source: this.source };
  }
}

/** A user asked to change their email: a link went to the new address and a notice to the old one. */
export class UserEmailChangeRequestedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.EmailChangeRequested;
}

/** The email changed (confirmed link, or an admin's edit). */
export class UserEmailChangedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.EmailChanged;
  readonly from: string;
  readonly to: string;
  constructor(init: BackOfficeNotificationInit & { from: string; to: string }) {
    super(init);
    this.from = init.from;
    this.to = init.to;
  }
  override auditDetails() {
    return { from: this.from, to: this.to };
  }
}

/** An admin forced a password reset: the password no longer works, sessions ended, a reset link was sent. */
export class UserPasswordResetForcedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.PasswordResetForced;
}

/** Where a password reset of a directory-managed user was refused. */
export type BackOfficePasswordResetRefusedVia = 'forgot_password' | 'reset_password' | 'force_password_reset';

/**
 * A password reset was refused because the user's password is managed by the directory
 * (`BackOfficeUser.directoryManagedAt`): forgot-password sent a notice instead of a link, a reset link was
 * refused, or an admin's forced reset answered 409 `directory_managed`.
 */
export class UserPasswordResetRefusedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.PasswordResetRefused;
  readonly reason: 'directory_managed';
  readonly via: BackOfficePasswordResetRefusedVia;
  constructor(init: BackOfficeNotificationInit & { via: BackOfficePasswordResetRefusedVia; reason?: 'directory_managed' }) {
    super(init);
    this.reason = init.reason ?? 'directory_managed';
    this.via = init.via;
  }
  override auditDetails() {
    return { reason: this.reason, via: this.via };
  }
}

/**
 * A user was marked directory-managed (`managed: true`: the password checker, e.g. LDAP, vouched for them the first
 * time) or the mark was cleared (`managed: false`, `BackOfficeUserManager.clearDirectoryManaged`).
 */
export class UserDirectoryManagedChangedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.DirectoryManagedChanged;
  readonly managed: boolean;
  constructor(init: BackOfficeNotificationInit & { managed: boolean }) {
    super(init);
    this.managed = init.managed;
  }
  override auditDetails() {
    return { managed: this.managed };
  }
}

/** A user was deleted; the audit trail keeps the id (and the username, for people reading it). */
export class UserDeletedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.Deleted;
  readonly username: string;
  constructor(init: BackOfficeNotificationInit & { username: string }) {
    super(init);
    this.username = init.username;
  }
  override auditDetails() {
    return { username: this.username };
  }
}

/**
 * A signed-in user (or API user) was refused: 403 `forbidden` (a group or permission they lack, or a user or
 * group beyond what they hold) or `xsrf_failed` (a state-changing cookie request without the XSRF header).
 * Written to the audit trail (OWASP ASVS 4.0 7.2.2: every failed access control decision is logged).
 * `affectedUserId` is the user acted on, when there is one.
 */
export class UserAccessDeniedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.AccessDenied;
  /** The error code answered: `forbidden` or `xsrf_failed`. */
  readonly reason: string;
  /** The request's method and path (no query string), when known. */
  readonly method: string | null;
  readonly path: string | null;
  /** The error message answered (which names what was missing; never a secret). */
  readonly message: string;
  constructor(init: BackOfficeNotificationInit & { reason: string; method?: string | null; path?: string | null; message: string }) {
    super(init);
    this.reason = init.reason;
    this.method = init.method ?? null;
    this.path = init.path ?? null;
    this.message = init.message;
  }
  override auditDetails() {
    return { reason: this.reason, method: this.method, path: this.path, message: this.message };
  }
}
