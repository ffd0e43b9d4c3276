/**
 * Deterministic interleavings against real PostgreSQL: a test holds a lock in one transaction, starts the request
 * under test, and waits until PostgreSQL reports that request's backend as waiting for the lock (no sleeps).
 */

/** A `pg` client or pool (only `query` is used). */
export interface LockObserver {
  query(text: string): Promise<{ rows: Array<Record<string, unknown>> }>;
}

const LOCK_WAITERS_SQL = `SELECT count(*)::int AS n FROM pg_stat_activity
  WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`;

/** How many other backends of the observer's database wait for a lock right now. */
export async function lockWaiters(observer: LockObserver): Promise<number> {
  return (await observer.query(LOCK_WAITERS_SQL)).rows[0].n as number;
}

/** Resolves once `condition` holds, asking again on every turn of the event loop. */
export async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setImmediate(resolve));
}

/** Resolves once at least `n` other backends of the observer's database wait for a lock. */
export function lockWaitersReach(observer: LockObserver, n: number): Promise<void> {
  return until(async () => (await lockWaiters(observer)) >= n);
}
