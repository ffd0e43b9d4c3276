import { BackOfficeEvents, type BackOfficeEventName } from '../constants.js';

/** Fields every notification carries. */
export interface BackOfficeNotificationInit {
  ipAddress?: string | null;
  performingUserId?: string | null;
  affectedUserId?: string | null;
  dateTimeUtc?: Date;
}

/** Base class of every back-office notification. */
export abstract class BackOfficeNotification {
  abstract readonly eventName: BackOfficeEventName;
  readonly ipAddress: string | null;
  readonly performingUserId: string | null;
  readonly affectedUserId: string | null;
  readonly dateTimeUtc: Date;

  constructor(init: BackOfficeNotificationInit) {
    this.ipAddress = init.ipAddress ?? null;
    this.performingUserId = init.performingUserId ?? null;
    this.affectedUserId = init.affectedUserId ?? null;
    this.dateTimeUtc = init.dateTimeUtc ?? new Date();
  }

  /** Extra fields for the audit trail; never secrets. */
  auditDetails(): Record<string, unknown> {
    return {};
  }
}

export class UserLoginSuccessNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.LoginSuccess;
}

export class UserLoginFailedNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.LoginFailed;
  /** Why: `invalid_credentials`, `locked_out`, `not_allowed`, `invalid_code`, ... */
  readonly reason: string;
  constructor(init: BackOfficeNotificationInit & { reason: string }) {
    super(init);
    this.reason = init.reason;
  }
  override auditDetails() {
    return { reason: this.reason };
  }
}

export class UserLoginRequiresVerificationNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.LoginRequiresVerification;
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
    this.groups = init.groups;
    this.added = init.added ?? [];
    this.removed = init.removed ?? [];
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

/** One import of users (API, CLI or code) finished: the counts, never a record or a hash. */
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
  constructor(
    init: BackOfficeNotificationInit & { total: number; created: number; updated: number; skipped: number; invalid: number; dryRun: boolean; onConflict: string; source?: string },
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
  }
  override auditDetails() {
    const { total, created, updated, skipped, invalid, dryRun, onConflict, source } = this;
    return { total, created, updated, skipped, invalid, dryRun, onConflict, source };
  }
}

export class UserTwoFactorEnabledNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.TwoFactorEnabled;
}

export class UserTwoFactorDisabledNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.TwoFactorDisabled;
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

/** Emitted after logout; a listener may set {@link signOutRedirectUrl} ("log out everywhere"). */
export class UserLogoutSuccessNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.LogoutSuccess;
  /** Returned to the client by `POST /auth/logout`; `null` when no listener set it. */
  signOutRedirectUrl: string | null = null;
  override auditDetails() {
    return { signOutRedirectUrl: this.signOutRedirectUrl };
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
 */
export class SendEmailNotification extends BackOfficeNotification {
  readonly eventName = BackOfficeEvents.SendEmail;
  readonly emailType: BackOfficeEmailType;
  readonly message: BackOfficeEmailMessage;
  private handled = false;
  constructor(init: BackOfficeNotificationInit & { emailType: BackOfficeEmailType; message: BackOfficeEmailMessage }) {
    super(init);
    this.emailType = init.emailType;
    this.message = init.message;
  }
  /** Tell the module that this email was taken care of: the default sender will not send it. */
  handleEmail(): void {
    this.handled = true;
  }
  get isHandled(): boolean {
    return this.handled;
  }
  override auditDetails() {
    return { emailType: this.emailType, handled: this.handled };
  }
}
