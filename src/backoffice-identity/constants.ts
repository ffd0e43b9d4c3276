/** DI token of the resolved, validated {@link BackOfficeIdentityOptions}. */
export const BACKOFFICE_IDENTITY_OPTIONS = 'BACKOFFICE_IDENTITY_OPTIONS';
/** DI token of the {@link BackOfficeUserManager} (or a subclass). */
export const BACKOFFICE_USER_MANAGER = 'BACKOFFICE_USER_MANAGER';
/** DI token of the {@link BackOfficeSignInManager}. */
export const BACKOFFICE_SIGN_IN_MANAGER = 'BACKOFFICE_SIGN_IN_MANAGER';
/** DI token of the {@link BackOfficeUserStore} port. */
export const BACKOFFICE_USER_STORE = 'BACKOFFICE_USER_STORE';
/** DI token of the {@link BackOfficeAuditStore} port (default: the TypeORM store; swap key `auditStore`). */
export const BACKOFFICE_AUDIT_STORE = 'BACKOFFICE_AUDIT_STORE';
/** DI token of the {@link BackOfficeSessionStore} port. */
export const BACKOFFICE_SESSION_STORE = 'BACKOFFICE_SESSION_STORE';
/** DI token of the {@link BackOfficePendingSignInStore} port (two-factor steps, OIDC states, passkey challenges). */
export const BACKOFFICE_PENDING_SIGN_IN_STORE = 'BACKOFFICE_PENDING_SIGN_IN_STORE';
/** DI token of the {@link BackOfficeGroupStore} port. */
export const BACKOFFICE_GROUP_STORE = 'BACKOFFICE_GROUP_STORE';
/** DI token of the {@link BackOfficeApiClientStore} port. */
export const BACKOFFICE_API_CLIENT_STORE = 'BACKOFFICE_API_CLIENT_STORE';
/** DI token of the {@link BackOfficeExternalLoginSessionStore} port. */
export const BACKOFFICE_EXTERNAL_LOGIN_SESSION_STORE = 'BACKOFFICE_EXTERNAL_LOGIN_SESSION_STORE';
/** DI token of the {@link BackOfficePasswordHasher}. */
export const BACKOFFICE_PASSWORD_HASHER = 'BACKOFFICE_PASSWORD_HASHER';
/** DI token of the optional {@link BackOfficePasswordChecker} (e.g. LDAP first). */
export const BACKOFFICE_PASSWORD_CHECKER = 'BACKOFFICE_PASSWORD_CHECKER';
/** DI token of the {@link BackOfficeEmailSender}. */
export const BACKOFFICE_EMAIL_SENDER = 'BACKOFFICE_EMAIL_SENDER';
/** DI token of the {@link BackOfficeIpResolver}. */
export const BACKOFFICE_IP_RESOLVER = 'BACKOFFICE_IP_RESOLVER';
/** DI token of the {@link BackOfficeClock}; override it in tests to move time. */
export const BACKOFFICE_CLOCK = 'BACKOFFICE_CLOCK';
/** DI token of the {@link BackOfficeErrorDescriber}. */
export const BACKOFFICE_ERROR_DESCRIBER = 'BACKOFFICE_ERROR_DESCRIBER';
/** DI token of the registered {@link TwoFactorProvider}s (built-in TOTP first, then `twoFactor.providers`). */
export const BACKOFFICE_TWO_FACTOR_PROVIDERS = 'BACKOFFICE_TWO_FACTOR_PROVIDERS';
/** DI token of the rate-limit storage (in-memory by default, Redis when `rateLimits.redisUrl` is set). */
export const BACKOFFICE_RATE_LIMIT_STORAGE = 'BACKOFFICE_RATE_LIMIT_STORAGE';

/** Event names of every notification, emitted through EventEmitter2 `emitAsync`. */
export const BackOfficeEvents = {
  LoginSuccess: 'backoffice.user.login.success',
  LoginFailed: 'backoffice.user.login.failed',
  LoginRequiresVerification: 'backoffice.user.login.requires-verification',
  LoginRequiresTwoFactorSetup: 'backoffice.user.login.requires-two-factor-setup',
  Reauthenticated: 'backoffice.user.reauthenticated',
  TwoFactorRequested: 'backoffice.user.two-factor.requested',
  Locked: 'backoffice.user.locked',
  Unlocked: 'backoffice.user.unlocked',
  AccessFailedCountReset: 'backoffice.user.access-failed-count.reset',
  PasswordChanged: 'backoffice.user.password.changed',
  PasswordReset: 'backoffice.user.password.reset',
  ForgotPasswordRequested: 'backoffice.user.forgot-password.requested',
  ForgotPasswordChanged: 'backoffice.user.forgot-password.changed',
  Invited: 'backoffice.user.invited',
  LogoutSuccess: 'backoffice.user.logout.success',
  InviteAccepted: 'backoffice.user.invite.accepted',
  Disabled: 'backoffice.user.disabled',
  Enabled: 'backoffice.user.enabled',
  GroupsChanged: 'backoffice.user.groups.changed',
  SessionsRevoked: 'backoffice.user.sessions.revoked',
  TwoFactorEnabled: 'backoffice.user.two-factor.enabled',
  TwoFactorDisabled: 'backoffice.user.two-factor.disabled',
  RecoveryCodesRegenerated: 'backoffice.user.recovery-codes.regenerated',
  PasskeyAdded: 'backoffice.user.passkey.added',
  PasskeyRemoved: 'backoffice.user.passkey.removed',
  PasskeyRenamed: 'backoffice.user.passkey.renamed',
  PasskeyUsed: 'backoffice.user.passkey.used',
  PasskeyCounterRegressed: 'backoffice.user.passkey.counter-regressed',
  ExternalLoginSuccess: 'backoffice.user.external-login.success',
  LoginLinked: 'backoffice.user.login.linked',
  LoginUnlinked: 'backoffice.user.login.unlinked',
  AutoLinked: 'backoffice.user.auto-linked',
  ProviderGroupsRefused: 'backoffice.user.provider-groups.refused',
  SendEmail: 'backoffice.email.send',
  ProfileUpdated: 'backoffice.user.profile.updated',
  EmailChangeRequested: 'backoffice.user.email-change.requested',
  EmailChanged: 'backoffice.user.email.changed',
  PasswordResetForced: 'backoffice.user.password-reset.forced',
  PasswordResetRefused: 'backoffice.user.password-reset.refused',
  DirectoryManagedChanged: 'backoffice.user.directory-managed.changed',
  Deleted: 'backoffice.user.deleted',
  GroupCreated: 'backoffice.group.created',
  GroupUpdated: 'backoffice.group.updated',
  GroupDeleted: 'backoffice.group.deleted',
  ApiUserCreated: 'backoffice.api-user.created',
  ApiSecretRotated: 'backoffice.api-user.secret.rotated',
  ApiTokenIssued: 'backoffice.api-user.token.issued',
  ApiTokenRefused: 'backoffice.api-user.token.refused',
  UsersImported: 'backoffice.users.imported',
  AccessDenied: 'backoffice.user.access-denied',
} as const;

export type BackOfficeEventName = (typeof BackOfficeEvents)[keyof typeof BackOfficeEvents];

/**
 * The swappable parts, one table: the keys of `forRoot` / `forRootAsync` that replace a part (each resolves
 * through its token, e.g. `userManager` -> `BACKOFFICE_USER_MANAGER`) rather than configure it. The module's
 * option split, the options check and the providers all derive from it.
 */
export const BACKOFFICE_SWAP_KEYS = [
  'userManager', 'signInManager', 'userStore', 'sessionStore', 'pendingSignInStore', 'groupStore', 'apiClientStore', 'externalLoginSessionStore',
  'auditStore', 'stores', 'passwordHasher', 'passwordChecker', 'emailSender', 'ipResolver', 'errorDescriber', 'clock', 'extraProviders',
] as const;

/** A key of {@link BACKOFFICE_SWAP_KEYS}. */
export type BackOfficeSwapKey = (typeof BACKOFFICE_SWAP_KEYS)[number];

/**
 * Key of the PostgreSQL advisory lock (`pg_advisory_lock`) held while the module's migrations run, so app
 * instances (and the CLI) starting together on one database run them one after the other, not into each other.
 */
export const BACKOFFICE_MIGRATION_LOCK_KEY = 7_315_020_241_123;

/**
 * How long (ms) a module migration waits for a table lock (PostgreSQL `lock_timeout`, set for its own statements
 * only) before it fails. An `ALTER TABLE` waiting behind a long transaction on `backoffice_user` would queue every
 * sign-in and session check behind it; failing fast leaves the table to the traffic, and the deploy retries.
 */
export const BACKOFFICE_MIGRATION_TABLE_LOCK_TIMEOUT_MS = 5_000;
