import type { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/common/background-tasks.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import { BackOfficeSessionService } from '../../src/backoffice-identity/sessions/backoffice-session.service.js';
import type { BackOfficeSessionStore } from '../../src/backoffice-identity/sessions/session-store.interface.js';
import type { BackOfficeUserManager } from '../../src/backoffice-identity/users/backoffice-user-manager.js';

/**
 * The session service (default options) on `store` for the one user `user`, at the clock `now` reads, whose
 * last-seen writes after the response never run: every touch stays remembered (pending) until a read of the
 * user's sessions writes it (the flush) or a read of the session sees it.
 */
export function serviceWithTouchesHeldBack(store: BackOfficeSessionStore, user: object, now: () => Date): BackOfficeSessionService {
  return new BackOfficeSessionService(
    store,
    { store: {}, findById: async () => ({ ...user }), notify: async () => undefined } as unknown as BackOfficeUserManager,
    resolveBackOfficeIdentityOptions({}),
    { now: () => new Date(now()) },
    { run: () => undefined } as unknown as BackOfficeBackgroundTasks,
  );
}
