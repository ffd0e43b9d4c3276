import { AsyncLocalStorage } from 'node:async_hooks';
import type { NewBackOfficeAuditEntry } from '../audit/backoffice-audit-store.interface.js';

/**
 * The writes of a successful password sign-in that wait for the session row, so that last login, audit entry and
 * session are one statement (`POST /auth/login` with the built-in stores). Internal: set by the login guard only
 * when the session store can write them (see `BackOfficeSessionService.deferSignInWrites`).
 */
export interface BackOfficeDeferredSignInWrites {
  /** The user manager's last-login write may wait for the session row. */
  readonly lastLogin: boolean;
  /** The audit listener's `backoffice.user.login.success` entry may wait for the session row. */
  readonly audit: boolean;
  lastLoginAt?: { userId: string; at: Date };
  auditEntries: NewBackOfficeAuditEntry[];
}

/** What the current request tells the managers: who and where from. */
export interface BackOfficeRequestContext {
  ipAddress?: string;
  userAgent?: string;
  performingUserId?: string | null;
  /** The request's method and path (no query string, at most 512 characters), for the audit of refusals. */
  method?: string;
  path?: string;
  /**
   * @internal The request's query string as the client sent it (without `?`, percent-escapes kept), so that query
   * values are checked alike whatever the platform's query parser made of escapes that are not UTF-8.
   */
  rawQuery?: string;
  /** @internal Writes of a successful sign-in held for the session row (see {@link BackOfficeDeferredSignInWrites}). */
  signInWrites?: BackOfficeDeferredSignInWrites;
  /**
   * @internal The session token the request's session cookie carried (sent once), read by the module's middleware: the
   * session a sign-in in this request replaces, which it ends (OWASP ASVS 5.0 7.2.4).
   */
  sessionToken?: string;
}

const storage = new AsyncLocalStorage<BackOfficeRequestContext>();
/** The empty stores of {@link BackOfficeRequestContextStore.isolate}: a request's own, not active until entered. */
const unentered = new WeakSet<BackOfficeRequestContext>();

/** Request context carried through async calls (set by the module's middleware for each request). */
export const BackOfficeRequestContextStore = {
  run<T>(context: BackOfficeRequestContext, fn: () => T): T {
    return storage.run(context, fn);
  },
  /**
   * Runs `fn` (a host request) so that no context entered for an earlier request on the same connection (and so the
   * same async resource) reaches it: with an empty store of its own that is not active, which the module's guard
   * fills ({@link enter}); or, when no context is current at all, as it is, leaving none current after it.
   */
  isolate<T>(fn: () => T): T {
    // Nothing to isolate from (no request on this connection entered a context): the guard's `enter` then gives this
    // request its own, and every request without one skips the store (measured on a bare Fastify host route: 8 % more
    // throughput once the app has served a module request, 18 % before). The guard enters it on the
    // connection's async resource, though: drop it from there once `fn` returns (the request's own continuations
    // keep it), so that host code running before the module's middleware on the next request never sees it.
    if (storage.getStore() === undefined) {
      try {
        return fn();
      } finally {
        if (storage.getStore() !== undefined) storage.enterWith(undefined as unknown as BackOfficeRequestContext);
      }
    }
    const store: BackOfficeRequestContext = {};
    unentered.add(store);
    return storage.run(store, fn);
  },
  current(): BackOfficeRequestContext {
    return storage.getStore() ?? {};
  },
  /** True inside a request context (the module's routes, or a host route the module's guard has entered). */
  active(): boolean {
    const store = storage.getStore();
    return store !== undefined && !unentered.has(store);
  },
  /**
   * Gives the current request `context`: fills the request's own store (see {@link isolate}), else enters it for
   * the rest of the current execution and what it awaits. How the module's guard gives a host route the request
   * context of the module's own routes.
   */
  enter(context: BackOfficeRequestContext): void {
    const store = storage.getStore();
    if (store !== undefined && unentered.delete(store)) Object.assign(store, context);
    else storage.enterWith(context);
  },
};
