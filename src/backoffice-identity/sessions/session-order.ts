import type { BackOfficeSession } from './session-store.interface.js';

/**
 * The order of `GET /auth/sessions`: most recently seen first, then by id (the built-in TypeORM store's
 * `ORDER BY last_seen_at DESC, id`; lower-case UUIDs compare alike as text in both), so pages of it neither overlap
 * nor leave a session out while nothing changes.
 */
export function byLastSeenThenId(a: Pick<BackOfficeSession, 'lastSeenAt' | 'id'>, b: Pick<BackOfficeSession, 'lastSeenAt' | 'id'>): number {
  return b.lastSeenAt.getTime() - a.lastSeenAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
