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
};
