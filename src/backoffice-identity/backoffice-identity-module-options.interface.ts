import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency, Provider, Type } from '@nestjs/common';
import type { BACKOFFICE_SWAP_KEYS } from './constants.js';
import type { BackOfficeIdentityOptions } from './options/backoffice-identity-options.interface.js';

/*
 * The module's own option types: what forRoot / forRootAsync take beside the plain options, chiefly the swaps.
 * Kept beside the module (not with the plain options), so the options file imports no manager, hasher or sender.
 */

/** A class, or a full provider definition without `provide`. */
export type BackOfficeProviderSpec<T> =
  | Type<T>
  | { useClass: Type<T> }
  | { useValue: T }
  | {
      /**
       * Creates the instance from the instances of `inject`, in that order. A method, so that a factory with
       * typed parameters (`(config: MyConfig) => ...`) is accepted under `strictFunctionTypes`.
       */
      useFactory(...args: unknown[]): T | Promise<T>;
      /** DI tokens whose instances are passed to `useFactory`, in order. */
      inject?: Array<InjectionToken<unknown> | OptionalFactoryDependency>;
    };

/** The swappable parts: each resolves through its exported DI token. */
export interface BackOfficeIdentitySwaps {
  /** The user manager: usually a subclass of `BackOfficeUserManager`. Token `BACKOFFICE_USER_MANAGER`. */
  userManager?: BackOfficeProviderSpec<import('./users/backoffice-user-manager.js').BackOfficeUserManager>;
  /** Token `BACKOFFICE_SIGN_IN_MANAGER`. */
  signInManager?: BackOfficeProviderSpec<import('./sign-in/backoffice-sign-in-manager.js').BackOfficeSignInManager>;
  /** The user store port; default: the TypeORM store. Token `BACKOFFICE_USER_STORE`. */
  userStore?: BackOfficeProviderSpec<import('./users/stores/user-store.interface.js').BackOfficeUserStore>;
  /** Sessions; default: the TypeORM store. Token `BACKOFFICE_SESSION_STORE`. */
  sessionStore?: BackOfficeProviderSpec<import('./sessions/session-store.interface.js').BackOfficeSessionStore>;
  /** Pending sign-in steps (2FA, OIDC state, passkey challenges); default: the TypeORM store. Token `BACKOFFICE_PENDING_SIGN_IN_STORE`. */
  pendingSignInStore?: BackOfficeProviderSpec<import('./sign-in/pending-sign-in-store.interface.js').BackOfficePendingSignInStore>;
  /** Groups and their permissions; default: the TypeORM store. Token `BACKOFFICE_GROUP_STORE`. */
  groupStore?: BackOfficeProviderSpec<import('./groups/group-store.interface.js').BackOfficeGroupStore>;
  /** API clients and bearer tokens; default: the TypeORM store. Token `BACKOFFICE_API_CLIENT_STORE`. */
  apiClientStore?: BackOfficeProviderSpec<import('./api-users/api-client-store.interface.js').BackOfficeApiClientStore>;
  /** Sessions' external-login data (RP-initiated logout); default: the TypeORM store. Token `BACKOFFICE_EXTERNAL_LOGIN_SESSION_STORE`. */
  externalLoginSessionStore?: BackOfficeProviderSpec<import('./external-logins/external-login-session-store.interface.js').BackOfficeExternalLoginSessionStore>;
  /** The audit trail's store port; default: the TypeORM store. Token `BACKOFFICE_AUDIT_STORE`. */
  auditStore?: BackOfficeProviderSpec<import('./audit/backoffice-audit-store.interface.js').BackOfficeAuditStore>;
  /**
   * A whole set of stores (e.g. `InMemoryBackOfficeStores.create()` for tests without a database). A single
   * store swap beside it wins. When no TypeORM store is left in use, the module needs no TypeORM data source.
   */
  stores?: Partial<import('./persistence/backoffice-stores.interface.js').BackOfficeStores>;
  /** Default: bcrypt. Token `BACKOFFICE_PASSWORD_HASHER`. */
  passwordHasher?: BackOfficeProviderSpec<import('./users/passwords/password-hasher.interface.js').BackOfficePasswordHasher>;
  /** Checks passwords before the local hash (e.g. LDAP); `fallback` means "use the local hash". Token `BACKOFFICE_PASSWORD_CHECKER`. */
  passwordChecker?: BackOfficeProviderSpec<import('./users/passwords/password-checker.interface.js').BackOfficePasswordChecker>;
  /** Default: SMTP or `.eml` pickup files. Token `BACKOFFICE_EMAIL_SENDER`. */
  emailSender?: BackOfficeProviderSpec<import('./email/email-sender.interface.js').BackOfficeEmailSender>;
  /** Finds the client IP of a request. Token `BACKOFFICE_IP_RESOLVER`. */
  ipResolver?: BackOfficeProviderSpec<import('./common/ip-resolver.interface.js').BackOfficeIpResolver>;
  /** Texts of `IdentityResult` errors. Token `BACKOFFICE_ERROR_DESCRIBER`. */
  errorDescriber?: BackOfficeProviderSpec<import('./common/error-describer.js').BackOfficeErrorDescriber>;
  /** The time source; swap it in tests. Token `BACKOFFICE_CLOCK`. */
  clock?: BackOfficeProviderSpec<import('./common/clock.js').BackOfficeClock>;
  /** Extra providers made available to the module (e.g. dependencies of a custom manager). */
  extraProviders?: Provider<unknown>[];
}

/** Argument of `BackOfficeIdentityModule.forRoot()`. */
export interface BackOfficeIdentityModuleOptions extends BackOfficeIdentityOptions, BackOfficeIdentitySwaps {}

/** Argument of `BackOfficeIdentityModule.forRootAsync()`: swaps are static, options come from the factory. */
export interface BackOfficeIdentityModuleAsyncOptions extends BackOfficeIdentitySwaps, Pick<ModuleMetadata, 'imports'> {
  /**
   * Route prefix: routes are registered before `useFactory` runs, so it is static here. Default `backoffice`.
   * The factory may return the same prefix; a different one is refused at start-up (`BackOfficeIdentityOptionsError`).
   */
  routePrefix?: string;
  /**
   * Returns the options, from the instances of `inject` in that order (e.g. `(config: ConfigService) => ({...})`).
   * A method, so that a factory with typed parameters is accepted under `strictFunctionTypes`.
   */
  useFactory(...args: unknown[]): BackOfficeIdentityOptions | Promise<BackOfficeIdentityOptions>;
  /** DI tokens whose instances are passed to `useFactory`, in order; their modules go in `imports`. */
  inject?: Array<InjectionToken<unknown> | OptionalFactoryDependency>;
}

/** Compile-time check: the swap keys of the table (`BACKOFFICE_SWAP_KEYS`) are exactly the keys of `BackOfficeIdentitySwaps`. */
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
export const SWAP_KEYS_MATCH: SameKeys<keyof BackOfficeIdentitySwaps, (typeof BACKOFFICE_SWAP_KEYS)[number]> = true;
