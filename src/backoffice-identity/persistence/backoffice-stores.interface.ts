import type { BackOfficeApiClientStore } from '../api-users/api-client-store.interface.js';
import type { BackOfficeAuditStore } from '../audit/backoffice-audit-store.interface.js';
import type { BackOfficeExternalLoginSessionStore } from '../external-logins/external-login-session-store.interface.js';
import type { BackOfficeGroupStore } from '../groups/group-store.interface.js';
import type { BackOfficeSessionStore } from '../sessions/session-store.interface.js';
import type { BackOfficePendingSignInStore } from '../sign-in/pending-sign-in-store.interface.js';
import type { BackOfficeUserStore } from '../users/stores/user-store.interface.js';

/**
 * Every persistence port of the module, by swap key. Pass a whole set as the `stores` option (e.g.
 * `InMemoryBackOfficeStores.create()` in tests); a single swap (`sessionStore: ...`) wins over the set.
 */
export interface BackOfficeStores {
  userStore: BackOfficeUserStore;
  sessionStore: BackOfficeSessionStore;
  pendingSignInStore: BackOfficePendingSignInStore;
  groupStore: BackOfficeGroupStore;
  apiClientStore: BackOfficeApiClientStore;
  externalLoginSessionStore: BackOfficeExternalLoginSessionStore;
  auditStore: BackOfficeAuditStore;
}

/** The swap keys of the stores, in the order they are documented. */
export const BACKOFFICE_STORE_KEYS = [
  'userStore',
  'sessionStore',
  'pendingSignInStore',
  'groupStore',
  'apiClientStore',
  'externalLoginSessionStore',
  'auditStore',
] as const satisfies ReadonlyArray<keyof BackOfficeStores>;
