import { InMemoryBackOfficeAuditStore } from './in-memory-audit-store.js';
import type { BackOfficeStores } from '../backoffice-stores.interface.js';
import { InMemoryBackOfficeApiClientStore } from './in-memory-api-client-store.js';
import { InMemoryBackOfficeExternalLoginSessionStore } from './in-memory-external-login-session-store.js';
import { InMemoryBackOfficeGroupStore } from './in-memory-group-store.js';
import { InMemoryBackOfficePendingSignInStore } from './in-memory-pending-sign-in-store.js';
import { InMemoryBackOfficeSessionStore } from './in-memory-session-store.js';
import { InMemoryBackOfficeState } from './in-memory-state.js';
import { InMemoryBackOfficeUserStore } from './in-memory-user-store.js';

/** A full set of in-memory stores over one shared state. */
export interface InMemoryBackOfficeStoreSet extends BackOfficeStores {
  userStore: InMemoryBackOfficeUserStore;
  sessionStore: InMemoryBackOfficeSessionStore;
  pendingSignInStore: InMemoryBackOfficePendingSignInStore;
  groupStore: InMemoryBackOfficeGroupStore;
  apiClientStore: InMemoryBackOfficeApiClientStore;
  externalLoginSessionStore: InMemoryBackOfficeExternalLoginSessionStore;
}

/**
 * Every store of the module in memory, for host apps' tests (no database, nothing to clean up: make a new set
 * per test). Same rules as the database: atomic counters, single-use tokens and pending sign-ins, serialised
 * group writes (the last-admin rule), security stamps. Not for production: nothing survives a restart and
 * nothing is shared between processes.
 *
 *     BackOfficeIdentityModule.forRoot({ stores: InMemoryBackOfficeStores.create() })
 */
export class InMemoryBackOfficeStores {
  /** A fresh set, with the groups a new database has (`admin`, `editor`, `writer`, `translator`, `sensitiveData`). */
  static create(now: Date = new Date()): InMemoryBackOfficeStoreSet {
    const state = new InMemoryBackOfficeState(now);
    return {
      userStore: new InMemoryBackOfficeUserStore(state),
      sessionStore: new InMemoryBackOfficeSessionStore(state),
      pendingSignInStore: new InMemoryBackOfficePendingSignInStore(),
      groupStore: new InMemoryBackOfficeGroupStore(state),
      apiClientStore: new InMemoryBackOfficeApiClientStore(state),
      externalLoginSessionStore: new InMemoryBackOfficeExternalLoginSessionStore(),
      auditStore: new InMemoryBackOfficeAuditStore(),
    };
  }
}
