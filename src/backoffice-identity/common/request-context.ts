import { AsyncLocalStorage } from 'node:async_hooks';

/** What the current request tells the managers: who and where from. */
export interface BackOfficeRequestContext {
  ipAddress?: string;
  userAgent?: string;
  performingUserId?: string | null;
}

const storage = new AsyncLocalStorage<BackOfficeRequestContext>();

/** Request context carried through async calls (set by the module's middleware for each request). */
export const BackOfficeRequestContextStore = {
  run<T>(context: BackOfficeRequestContext, fn: () => T): T {
    return storage.run(context, fn);
  },
  current(): BackOfficeRequestContext {
    return storage.getStore() ?? {};
  },
  /** True inside a request context (the module's routes, or a host route the module's guard has entered). */
  active(): boolean {
    return storage.getStore() !== undefined;
  },
  /**
   * Enters `context` for the rest of the current execution and what it awaits: how the module's guard gives a
   * host route (which the module's middleware does not run on) the request context of its own routes.
   */
  enter(context: BackOfficeRequestContext): void {
    storage.enterWith(context);
  },
};
