import type { Abstract, ModuleMetadata, Provider, Type } from '@nestjs/common';
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
  /** Redis URL: share the counters between app instances. Default: in-process memory. */
  redisUrl?: string;
}

/** Delivery of the default email sender. */
export interface BackOfficeEmailOptions {
  /** Sender address. Default `Back office <noreply@localhost>`. */
  from?: string;
  /** `smtp://` or `smtps://` URL: send through SMTP (nodemailer). Unset: write `.eml` files to `pickupDirectory`. */
  smtpUrl?: string;
  /** Folder for `.eml` files when no SMTP URL is set. Default `.data/mail`. */
  pickupDirectory?: string;
}

/** Options of {@link BackOfficeIdentityModule}. Every field is optional. */
export interface BackOfficeIdentityOptions {
  /** Prefix of every route. Default `backoffice`. */
  routePrefix?: string;
  /** The username is the email address. Default true. */
  usernameIsEmail?: boolean;
  password?: BackOfficePasswordOptions;
  lockout?: BackOfficeLockoutOptions;
  session?: BackOfficeSessionOptions;
  tokens?: BackOfficeTokenOptions;
  rateLimits?: BackOfficeRateLimitOptions;
  /** Offer forgot/reset password. Default true. */
  allowPasswordReset?: boolean;
  /** Refuse password login, forgot/reset and local invite acceptance (external providers only). Default false. */
  denyLocalLogin?: boolean;
  /** Base URL used in email links. Default `http://localhost:3000`. */
  publicUrl?: string;
  email?: BackOfficeEmailOptions;
  /** Write every notification to `backoffice_audit_entry`. Default true. */
  audit?: boolean;
  /** Extra password validators, run after the built-in ones. */
  passwordValidators?: PasswordValidator[];
  /** Extra user validators, run after the built-in ones. */
  userValidators?: UserValidator[];
}

/** Options with every default filled in. */
export type ResolvedBackOfficeIdentityOptions = Required<
  Omit<BackOfficeIdentityOptions, 'password' | 'lockout' | 'session' | 'tokens' | 'rateLimits' | 'email'>
> & {
  password: Required<BackOfficePasswordOptions>;
  lockout: Required<BackOfficeLockoutOptions>;
  session: Required<BackOfficeSessionOptions>;
  tokens: Required<BackOfficeTokenOptions>;
  email: { from: string; smtpUrl?: string; pickupDirectory: string };
  rateLimits: Required<Omit<BackOfficeRateLimitOptions, 'redisUrl'>> & { redisUrl?: string };
};

/** A class, or a full provider definition without `provide`. */
export type BackOfficeProviderSpec<T> =
  | Type<T>
  | { useClass: Type<T> }
  | { useValue: T }
  | { useFactory: (...args: any[]) => T | Promise<T>; inject?: Array<string | symbol | Type | Abstract<unknown>> };

/** The swappable parts: each resolves through its exported DI token. */
export interface BackOfficeIdentitySwaps {
  userManager?: BackOfficeProviderSpec<import('../users/backoffice-user-manager.js').BackOfficeUserManager>;
  signInManager?: BackOfficeProviderSpec<import('../sign-in/backoffice-sign-in-manager.js').BackOfficeSignInManager>;
  userStore?: BackOfficeProviderSpec<import('../users/stores/user-store.interface.js').BackOfficeUserStore>;
  passwordHasher?: BackOfficeProviderSpec<import('../users/passwords/password-hasher.js').BackOfficePasswordHasher>;
  passwordChecker?: BackOfficeProviderSpec<import('../users/passwords/password-checker.js').BackOfficePasswordChecker>;
  emailSender?: BackOfficeProviderSpec<import('../email/email-sender.js').BackOfficeEmailSender>;
  ipResolver?: BackOfficeProviderSpec<import('../common/ip-resolver.js').BackOfficeIpResolver>;
  errorDescriber?: BackOfficeProviderSpec<import('../common/error-describer.js').BackOfficeErrorDescriber>;
  clock?: BackOfficeProviderSpec<import('../common/clock.js').BackOfficeClock>;
  /** Extra providers made available to the module (e.g. dependencies of a custom manager). */
  extraProviders?: Provider[];
}

/** Argument of `BackOfficeIdentityModule.forRoot()`. */
export interface BackOfficeIdentityModuleOptions extends BackOfficeIdentityOptions, BackOfficeIdentitySwaps {}

/** Argument of `BackOfficeIdentityModule.forRootAsync()`: swaps are static, options come from the factory. */
export interface BackOfficeIdentityModuleAsyncOptions extends BackOfficeIdentitySwaps, Pick<ModuleMetadata, 'imports'> {
  /** Route prefix must be known when routes are registered, so it is static here. Default `backoffice`. */
  routePrefix?: string;
  useFactory: (...args: any[]) => BackOfficeIdentityOptions | Promise<BackOfficeIdentityOptions>;
  inject?: Array<string | symbol | Type | Abstract<unknown>>;
}
