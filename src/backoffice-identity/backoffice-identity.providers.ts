import type { Provider, Type } from '@nestjs/common';
import { SystemClock } from './common/clock.js';
import { BackOfficeErrorDescriber } from './common/error-describer.js';
import { DefaultIpResolver } from './common/ip-resolver.js';
import {
  BACKOFFICE_AUDIT_STORE,
  BACKOFFICE_CLOCK,
  BACKOFFICE_EMAIL_SENDER,
  BACKOFFICE_ERROR_DESCRIBER,
  BACKOFFICE_IP_RESOLVER,
  BACKOFFICE_PASSWORD_CHECKER,
  BACKOFFICE_PASSWORD_HASHER,
  BACKOFFICE_SIGN_IN_MANAGER,
  BACKOFFICE_USER_MANAGER,
  BACKOFFICE_USER_STORE,
  type BackOfficeSwapKey,
  BACKOFFICE_SESSION_STORE,
  BACKOFFICE_PENDING_SIGN_IN_STORE,
  BACKOFFICE_GROUP_STORE,
  BACKOFFICE_API_CLIENT_STORE,
  BACKOFFICE_EXTERNAL_LOGIN_SESSION_STORE,
} from './constants.js';
import { NodemailerEmailSender } from './email/email-sender.js';
import type { BackOfficeIdentitySwaps, BackOfficeProviderSpec } from './backoffice-identity-module-options.interface.js';
import { BackOfficeIdentityOptionsError } from './options/resolve-options.js';
import { BackOfficeSignInManager } from './sign-in/backoffice-sign-in-manager.js';
import { BackOfficeUserManager } from './users/backoffice-user-manager.js';
import { FallbackPasswordChecker } from './users/passwords/password-checker.js';
import { BcryptPasswordHasher } from './users/passwords/password-hasher.js';
import { BACKOFFICE_STORE_KEYS, type BackOfficeStores } from './persistence/backoffice-stores.interface.js';
import { TYPEORM_DEFAULT_STORES } from './persistence/typeorm/typeorm-persistence.js';

type SwapKey = Exclude<BackOfficeSwapKey, 'extraProviders' | 'stores'>;

/** Each swappable part of `BACKOFFICE_SWAP_KEYS`: its token and its default class (the compiler checks none is missing). */
const SWAPPABLE: Record<SwapKey, { token: string; default: Type<unknown> }> = {
  userManager: { token: BACKOFFICE_USER_MANAGER, default: BackOfficeUserManager },
  signInManager: { token: BACKOFFICE_SIGN_IN_MANAGER, default: BackOfficeSignInManager },
  userStore: { token: BACKOFFICE_USER_STORE, default: TYPEORM_DEFAULT_STORES.userStore },
  sessionStore: { token: BACKOFFICE_SESSION_STORE, default: TYPEORM_DEFAULT_STORES.sessionStore },
  pendingSignInStore: { token: BACKOFFICE_PENDING_SIGN_IN_STORE, default: TYPEORM_DEFAULT_STORES.pendingSignInStore },
  groupStore: { token: BACKOFFICE_GROUP_STORE, default: TYPEORM_DEFAULT_STORES.groupStore },
  apiClientStore: { token: BACKOFFICE_API_CLIENT_STORE, default: TYPEORM_DEFAULT_STORES.apiClientStore },
  externalLoginSessionStore: { token: BACKOFFICE_EXTERNAL_LOGIN_SESSION_STORE, default: TYPEORM_DEFAULT_STORES.externalLoginSessionStore },
  auditStore: { token: BACKOFFICE_AUDIT_STORE, default: TYPEORM_DEFAULT_STORES.auditStore },
  passwordHasher: { token: BACKOFFICE_PASSWORD_HASHER, default: BcryptPasswordHasher },
  passwordChecker: { token: BACKOFFICE_PASSWORD_CHECKER, default: FallbackPasswordChecker },
  emailSender: { token: BACKOFFICE_EMAIL_SENDER, default: NodemailerEmailSender },
  ipResolver: { token: BACKOFFICE_IP_RESOLVER, default: DefaultIpResolver },
  errorDescriber: { token: BACKOFFICE_ERROR_DESCRIBER, default: BackOfficeErrorDescriber },
  clock: { token: BACKOFFICE_CLOCK, default: SystemClock },
};

function toProvider(key: SwapKey, spec: BackOfficeProviderSpec<unknown> | undefined): Provider<unknown> {
  const { token, default: fallback } = SWAPPABLE[key];
  if (spec === undefined || spec === null) return { provide: token, useClass: fallback };
  if (typeof spec === 'function') return { provide: token, useClass: spec };
  if (typeof spec === 'object') {
    if ('useClass' in spec && typeof spec.useClass === 'function') return { provide: token, useClass: spec.useClass };
    if ('useValue' in spec) return { provide: token, useValue: spec.useValue };
    if ('useFactory' in spec && typeof spec.useFactory === 'function') {
      return { provide: token, useFactory: spec.useFactory, inject: spec.inject ?? [] };
    }
  }
  throw new BackOfficeIdentityOptionsError(key, 'must be a class or { useClass | useValue | useFactory }', spec);
}

/** The swap of `key`: its own option, else the store of that key in `stores`. */
function specOf(swaps: BackOfficeIdentitySwaps, key: SwapKey): BackOfficeProviderSpec<unknown> | undefined {
  const own = swaps[key] as BackOfficeProviderSpec<unknown> | undefined;
  if (own !== undefined && own !== null) return own;
  const fromSet = (BACKOFFICE_STORE_KEYS as readonly string[]).includes(key) ? swaps.stores?.[key as keyof BackOfficeStores] : undefined;
  return fromSet === undefined || fromSet === null ? undefined : { useValue: fromSet };
}

/** The class a swap makes Nest instantiate (a class, or `{ useClass }`); undefined for a value or a factory. */
function classOf(spec: BackOfficeProviderSpec<unknown>): Type<unknown> | undefined {
  if (typeof spec === 'function') return spec as Type<unknown>;
  return typeof spec === 'object' && 'useClass' in spec && typeof spec.useClass === 'function' ? spec.useClass : undefined;
}

/** True for a default TypeORM store class or a host's subclass of one (both are built on the host's data source). */
function isTypeOrmStoreClass(type: Type<unknown> | undefined): boolean {
  return type !== undefined && Object.values(TYPEORM_DEFAULT_STORES).some((store) => type === store || type.prototype instanceof store);
}

/**
 * True while any store is a TypeORM one, the default or a subclass swapped in (then the module needs the host's
 * TypeORM data source).
 */
export function usesTypeOrmStores(swaps: BackOfficeIdentitySwaps): boolean {
  if (swaps.stores !== undefined && (typeof swaps.stores !== 'object' || swaps.stores === null)) {
    throw new BackOfficeIdentityOptionsError('stores', 'must be an object of stores (e.g. InMemoryBackOfficeStores.create())', swaps.stores);
  }
  return BACKOFFICE_STORE_KEYS.some((key) => {
    const spec = specOf(swaps, key);
    return spec === undefined || isTypeOrmStoreClass(classOf(spec));
  });
}

/** The providers of every swappable part, each under its exported token. */
export function createSwappableProviders(swaps: BackOfficeIdentitySwaps): Provider<unknown>[] {
  const extra = swaps.extraProviders ?? [];
  if (!Array.isArray(extra)) throw new BackOfficeIdentityOptionsError('extraProviders', 'must be an array of providers', extra);
  return [...(Object.keys(SWAPPABLE) as SwapKey[]).map((key) => toProvider(key, specOf(swaps, key))), ...extra];
}
