import type { PasswordValidator, UserValidator } from '../users/validators.interface.js';

/** Password policy. Defaults follow ASVS 4.0 2.1 and NIST 800-63B: length over composition. */
export interface BackOfficePasswordOptions {
  /** Minimum length in Unicode code points. Default 12. */
  requiredLength?: number;
  /** Maximum length in Unicode code points. Default 256. Every character is significant. */
  maxLength?: number;
  /** Refuse passwords in the shipped list of ~49k common passwords. Default true. */
  rejectCommon?: boolean;
  /** Default false. */
  requireDigit?: boolean;
  /** Default false. */
  requireLowercase?: boolean;
  /** Default false. */
  requireUppercase?: boolean;
  /** Default false. */
  requireNonLetterOrDigit?: boolean;
  /** bcrypt cost (4..20). Default 12. Hashes with a lower cost are re-hashed on the next successful login. */
  hashCost?: number;
}

/** Lockout policy. */
export interface BackOfficeLockoutOptions {
  /** Failed attempts before the account is locked. Default 5. */
  maxFailedAccessAttempts?: number;
  /** Minutes a lockout lasts; `0` locks until an admin unlocks. Default 5. */
  durationMinutes?: number;
}

/** Server-side session settings. */
export interface BackOfficeSessionOptions {
  /** Sliding idle timeout. Default 20. */
  idleTimeoutMinutes?: number;
  /** Absolute lifetime, never extended. Default 12. */
  absoluteTimeoutHours?: number;
  /** Session cookie name. Default `backoffice_session`. */
  cookieName?: string;
  /** Set the `Secure` flag on cookies. Default true; turn off only for plain-HTTP development. */
  secureCookies?: boolean;
  /** `false`: a new login revokes the user's other sessions. Default true. */
  allowConcurrentLogins?: boolean;
  /**
   * Minutes a sign-in (or `POST /auth/reauthenticate`) counts as recent for routes marked
   * `@RequiresRecentSignIn()` (2FA changes, signing out everywhere, ...); older sessions get 401
   * `reauthentication_required`. Default 5.
   */
  reauthenticationMinutes?: number;
}

/** How the module protects itself from a slow or unreachable database. */
export interface BackOfficeDatabaseOptions {
  /**
   * Server-side `statement_timeout` (ms) set on each connection of the TypeORM data source's pool, unless the pool
   * already sets one (`extra.statement_timeout`). A stuck query then fails and the request answers 503
   * `database_unavailable` instead of hanging. `0` leaves the connections alone. Default 5000.
   */
  statementTimeoutMs?: number;
  /**
   * How long (ms) to wait for a pooled connection (pg's `connectionTimeoutMillis`), unless the pool already
   * sets one: a server that does not answer the connection attempt then gives 503 within this time instead of a
   * request that waits forever (a server that is down refuses at once and answers 503 sooner). pg-pool also
   * applies it to the wait for a free connection of a busy pool, so a small value sheds load in bursts: keep it
   * at least as long as `statementTimeoutMs`. `0` leaves it alone. Default 5000.
   */
  connectionTimeoutMs?: number;
}

/** Lifetimes of single-use tokens. */
export interface BackOfficeTokenOptions {
  /** Default 72. */
  inviteLifespanHours?: number;
  /** Default 1. */
  passwordResetLifespanHours?: number;
}

/** Rate limits, per fixed window. */
export interface BackOfficeRateLimitOptions {
  /** Default true. */
  enabled?: boolean;
  /** Logins per minute for one IP + username. Default 10. */
  loginPerIpAndUsername?: number;
  /** Logins per minute for one IP. Default 100. */
  loginPerIp?: number;
  /** Forgot-password requests per hour for one email. Default 5. */
  forgotPasswordPerEmail?: number;
  /** Forgot-password requests per hour from one IP, whatever the addresses. Default 20. */
  forgotPasswordPerIp?: number;
  /** Token requests (`POST /auth/token`) per minute for one IP + client id. Default 60. */
  tokenPerIpAndClient?: number;
  /**
   * Email-change requests (`POST /auth/me/email`, each mails a link to an address the caller picks) per hour for
   * one user. Default 5.
   */
  emailChangePerUser?: number;
  /**
   * The signed-in user's own renames (`PUT /auth/me`, `PATCH /auth/passkeys/:id`, each an audit entry) per hour for one
   * user, one counter shared by the two routes, every request counted: a stolen session cookie cannot bury the earlier
   * audit entries under renames. 1 to 1000000. Default 30.
   */
  profileChangePerUser?: number;
  /** Invite resends (`POST /users/:id/resend-invite`) per hour for one invited user. Default 5. */
  inviteResendPerUser?: number;
  /**
   * Password checks of a signed-in user (`POST /auth/reauthenticate`, `POST /auth/change-password`,
   * `POST /auth/2fa/disable`, and the passkey step-up's assertion `POST /auth/reauthenticate/passkey`) per minute from one IP, one counter shared by the four routes. Lockout bounds the guesses per
   * account; this bounds one client's guesses across the accounts it holds sessions of. Default 30.
   */
  passwordCheckPerIp?: number;
  /**
   * Challenges issued to a signed-in user, each stored until it expires (`POST /auth/passkeys/options`,
   * `POST /auth/reauthenticate/passkey/options`, `POST /auth/external/{provider}/link`,
   * `POST /auth/external/{provider}/reauthenticate`), per minute from one IP, each route under its own counter: a
   * stolen or idle session cookie cannot fill the table (a user also keeps at most 5 live passkey challenges per
   * ceremony). Default 30.
   */
  challengePerIp?: number;
  /**
   * Per-IP limits count an IPv6 client by the first this-many bits of its address: a client usually holds a whole
   * /64 and can rotate through it. 16 to 128 (128: each address on its own). Default 64. IPv4 addresses count one by one.
   */
  ipv6Subnet?: number;
  /**
   * Per-IP limits also count an IPv6 client's wider prefix of this many bits, at `ipv6AggregateMultiplier` times
   * the per-IP limit: a client that holds a /56 (256 /64s: one customer's allocation, e.g. an AWS VPC or a home
   * line) gets no fresh budget by moving to another /64 once the /56 has used its own, while the clients that share
   * a /56 are not held to one /64's limit together. A wider prefix (48: bound rotation across a whole /48) also lets
   * one tenant use up the budget of its neighbours that share it (hosters and carriers put many customers in one
   * /48). 16 to `ipv6Subnet`; equal to `ipv6Subnet`: no second count. Default 56 (`ipv6Subnet` when that is 56 or
   * less). IPv4 addresses (also IPv4-mapped) have no such second count.
   */
  ipv6AggregateSubnet?: number;
  /** The limit of the `ipv6AggregateSubnet` prefix as a multiple of each per-IP limit. 1 to 65536. Default 16. */
  ipv6AggregateMultiplier?: number;
  /** Redis URL: share the counters between app instances. Default: in-process memory. */
  redisUrl?: string;
  /**
   * Start of every Redis key of the counters. The instances of one application share it (and so their limits); give
   * each application that uses the same Redis its own (`"shop-admin:rl:"`), or their counters add up. 1 to 64
   * characters, no spaces. Default `backoffice:rl:`.
   */
  redisKeyPrefix?: string;
}

/** Delivery of the default email sender. */
export interface BackOfficeEmailOptions {
  /** Sender address. Default `Back office <noreply@localhost>`. */
  from?: string;
  /** `smtp://` or `smtps://` URL: send through SMTP (nodemailer). Unset: write `.eml` files to `pickupDirectory`. */
  smtpUrl?: string;
  /** Folder for `.eml` files when no SMTP URL is set. Default `.data/mail`. */
  pickupDirectory?: string;
  /**
   * Time limit of one delivery by the `BACKOFFICE_EMAIL_SENDER` (the default sender's SMTP connection, greeting and
   * socket too), in milliseconds: past it the email counts as failed (502 `email_failed` where a request sends it).
   * Default 20000.
   */
  sendTimeoutMs?: number;
  /**
   * How long the `SendEmailNotification` listeners may take, in milliseconds: past it a listener that has not
   * called `handleEmail()` is logged and left behind, the default sender delivers the email, and a later
   * `handleEmail()` throws. Default 10000.
   */
  listenerTimeoutMs?: number;
}

/** The host's notification listeners (`@OnEvent(BackOfficeEvents.…)`). */
export interface BackOfficeNotificationOptions {
  /**
   * How long the module waits for each listener of a notification, in milliseconds (`SendEmailNotification` has
   * its own: `email.listenerTimeoutMs`): past it the listener is logged and left behind, the request goes on without
   * it, and what it sets on the notification afterwards is not used (a late `signOutRedirectUrl` is ignored and
   * logged once). A host's `onAny` listeners have the same limit; only the module's audit listener is always
   * awaited in full. Default 10000.
   */
  listenerTimeoutMs?: number;
}

/** Two-factor authentication. TOTP is built in and on when `encryptionKey` is set. */
export interface BackOfficeTwoFactorOptions {
  /**
   * Secret (a string of >= 32 characters, at least 8 of them different, e.g. `openssl rand -base64 32`) that
   * encrypts TOTP secrets at rest (AES-256-GCM). Without it the built-in TOTP
   * provider is off. Keep it stable: changing it makes enrolled authenticators unusable.
   */
  encryptionKey?: string;
  /** Issuer shown in authenticator apps. Default `Back office`. */
  issuer?: string;
  /** Extra providers (e.g. SMS, email codes), beside the built-in TOTP. */
  providers?: import('../two-factor/two-factor-provider.interface.js').TwoFactorProvider[];
  /** Minutes a password-verified sign-in may wait for its second factor. Default 5. */
  pendingMinutes?: number;
  /**
   * Hours a member of a `requireTwoFactor` group without 2FA may still sign in normally, counted from the first
   * sign-in after the requirement applied. Default 0: enrolment is required at once.
   */
  enforcementGraceHours?: number;
}

/** Look of the sign-in screens, as Umbraco's login screen allows. Validated at start-up: no HTML or CSS can be injected. */
export interface BackOfficeUiBranding {
  /** Product name in page titles and headings (plain text, up to 80 characters). Default `Back office`. */
  productName?: string;
  /** Logo: an `https:` URL or a same-origin path such as `/static/logo.svg`. Default: none. */
  logoUrl?: string;
  /** Accent colour of buttons and links: `#rgb` or `#rrggbb`. Default `#1b6ac9`. */
  accentColor?: string;
  /** Background image of the sign-in pages: an `https:` URL or a same-origin path. Default: none. */
  backgroundImageUrl?: string;
}

/** The sign-in screens below the route prefix (`/backoffice/`, `/backoffice/account`, ...). */
export interface BackOfficeUiOptions {
  /** Serve the pages and `assets/session.js`. Default true (`ui: false` is the same as `{ enabled: false }`). */
  enabled?: boolean;
  /** Overrides of the message catalogue (see `BACKOFFICE_UI_MESSAGES` for every key and its English text). */
  messages?: Partial<import('../ui/ui-messages.js').BackOfficeUiMessages>;
  /** Product name, logo, accent colour, background image. */
  branding?: BackOfficeUiBranding;
  /** Where the pages go after sign-in when there is no `returnUrl`: a same-origin path. Default: the account page. */
  defaultReturnUrl?: string;
  /** Seconds before the idle deadline at which the pages and `session.js` warn. Default 120 (at most half the idle timeout). */
  idleWarningSeconds?: number;
}

/**
 * Passkeys (WebAuthn). Off unless set. The relying-party id is the registrable domain the passkeys belong to
 * (`example.com` covers `admin.example.com`); `origins` are the exact origins the browser pages are served from.
 */
export interface BackOfficePasskeyOptions {
  /** Relying-party id: a domain name (not an IP address), e.g. `example.com` or `localhost`. */
  rpId: string;
  /** Name shown by the browser and the authenticator. Default `Back office`. */
  rpName?: string;
  /** Allowed origins, e.g. `['https://admin.example.com']`: https, or http only on localhost; each inside `rpId`. */
  origins: string[];
  /** Minutes a ceremony challenge stays valid. Default 5. */
  challengeMinutes?: number;
}

/** Options of {@link BackOfficeIdentityModule}. Every field is optional. */
export interface BackOfficeIdentityOptions {
  /** Prefix of every route. Default `backoffice`. */
  routePrefix?: string;
  /** The username is the email address. Default true. */
  usernameIsEmail?: boolean;
  /** Password policy and hashing. Defaults: 12..256 characters, common passwords refused, bcrypt cost 12. */
  password?: BackOfficePasswordOptions;
  /** Lockout after failed logins. Defaults: 5 attempts, 5 minutes. */
  lockout?: BackOfficeLockoutOptions;
  /** Server-side sessions and their cookie. Defaults: 20 minutes idle, 12 hours absolute, `Secure` cookies. */
  session?: BackOfficeSessionOptions;
  /** Lifetimes of invite and password-reset tokens. Defaults: 72 hours and 1 hour. */
  tokens?: BackOfficeTokenOptions;
  /** Rate limits of sign-in, forgot-password, token and email-change requests, in memory or in Redis. On by default. */
  rateLimits?: BackOfficeRateLimitOptions;
  /** Offer forgot/reset password. Default true. */
  allowPasswordReset?: boolean;
  /** Refuse password login, forgot/reset and local invite acceptance (external providers only). Default false. */
  denyLocalLogin?: boolean;
  /** Base URL used in email links. Default `http://localhost:3000`. */
  publicUrl?: string;
  /**
   * Delivery of invite and password-reset emails by the default sender, when no `SendEmailNotification`
   * listener called `handleEmail()`: SMTP when `smtpUrl` is set, else `.eml` files in `pickupDirectory`.
   */
  email?: BackOfficeEmailOptions;
  /** How long the module waits for the host's notification listeners. */
  notifications?: BackOfficeNotificationOptions;
  twoFactor?: BackOfficeTwoFactorOptions;
  /** Statement and connection timeouts. Defaults: 5 s and 5 s. */
  database?: BackOfficeDatabaseOptions;
  /** Passkeys (WebAuthn) as a first factor and as a second factor. Off when unset. */
  passkeys?: BackOfficePasskeyOptions;
  /**
   * Minutes between runs that delete expired sessions, pending 2FA sign-ins, unknown-username counters and
   * old single-use tokens. Default 60; `0` turns the timer off.
   */
  maintenanceIntervalMinutes?: number;
  /**
   * The audit trail: `true` (default) writes every notification through the audit store
   * (`backoffice_audit_entry`), `false` writes none; an object sets `enabled` and `retentionDays`.
   */
  audit?: boolean | BackOfficeAuditOptions;
  /** Extra password validators, run after the built-in ones. */
  passwordValidators?: PasswordValidator[];
  /** Extra user validators, run after the built-in ones. */
  userValidators?: UserValidator[];
  /** The sign-in screens; on by default, `false` turns them off. */
  ui?: false | BackOfficeUiOptions;
  /**
   * The host's own permission keys (beside the built-in `users.read`, `users.manage`, ...), each
   * `{ key, description }` with a dotted lower-case key such as `reports.export`. Groups can then hold them and
   * routes require them with `@BackOfficeAuthorize({ permissions: ['reports.export'] })`. Default none.
   */
  permissions?: import('../permissions/permission-definition.interface.js').BackOfficePermissionDefinition[];
  /** API users (machines, client credentials). */
  apiUsers?: BackOfficeApiUserOptions;
  /**
   * OpenID Connect providers people can sign in with (contract section 6). Each is discovered at start-up; a
   * provider that cannot be reached is retried with back-off and answers 503 `provider_unavailable` meanwhile.
   */
  externalLogins?: import('../external-logins/external-login-options.js').BackOfficeExternalLoginProviderOptions[];
}

/** API users: bearer token lifetime and the longest overlap a secret rotation may grant. */
export interface BackOfficeApiUserOptions {
  /** Lifetime of a bearer token from `POST /auth/token`. Default 10. */
  tokenLifetimeMinutes?: number;
  /** Upper bound of `overlapMinutes` when rotating a secret. Default 10080 (7 days). */
  maxSecretOverlapMinutes?: number;
}

/** Options with every default filled in. */
/** The audit trail's options. */
export interface BackOfficeAuditOptions {
  /** Write every notification to the audit store. Default true. */
  enabled?: boolean;
  /**
   * Days an entry is kept: maintenance deletes older entries on each run. Default 0: kept forever.
   * An integer from 0 to 36500.
   */
  retentionDays?: number;
}

export type ResolvedBackOfficeIdentityOptions = Required<
  Omit<BackOfficeIdentityOptions, 'password' | 'lockout' | 'session' | 'tokens' | 'rateLimits' | 'email' | 'notifications' | 'twoFactor' | 'database' | 'ui' | 'externalLogins' | 'passkeys' | 'apiUsers' | 'audit'>
> & {
  audit: Required<BackOfficeAuditOptions>;
  database: Required<BackOfficeDatabaseOptions>;
  ui: ResolvedBackOfficeUiOptions;
  apiUsers: Required<BackOfficeApiUserOptions>;
  /** `null` when passkeys are off. */
  passkeys: Required<BackOfficePasskeyOptions> | null;
  externalLogins: import('../external-logins/external-login-options.js').ResolvedExternalLoginProvider[];
  password: Required<BackOfficePasswordOptions>;
  lockout: Required<BackOfficeLockoutOptions>;
  session: Required<BackOfficeSessionOptions>;
  tokens: Required<BackOfficeTokenOptions>;
  email: { from: string; smtpUrl?: string; pickupDirectory: string; sendTimeoutMs: number; listenerTimeoutMs: number };
  notifications: Required<BackOfficeNotificationOptions>;
  twoFactor: {
    encryptionKey?: string;
    issuer: string;
    providers: import('../two-factor/two-factor-provider.interface.js').TwoFactorProvider[];
    pendingMinutes: number;
    enforcementGraceHours: number;
  };
  rateLimits: Required<Omit<BackOfficeRateLimitOptions, 'redisUrl'>> & { redisUrl?: string };
};

/** The sign-in screens' options with every default filled in. */
export interface ResolvedBackOfficeUiOptions {
  enabled: boolean;
  messages: import('../ui/ui-messages.js').BackOfficeUiMessages;
  branding: Required<Pick<BackOfficeUiBranding, 'productName' | 'accentColor'>> & Pick<BackOfficeUiBranding, 'logoUrl' | 'backgroundImageUrl'>;
  defaultReturnUrl?: string;
  idleWarningSeconds: number;
}
