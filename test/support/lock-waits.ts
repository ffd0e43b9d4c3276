import pg from 'pg';

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

/** A connection that watches the database's lock waits (for {@link lockWaiters}); `end()` it after the suite. */
export async function connectLockObserver(url: string): Promise<pg.Client> {
  const observer = new pg.Client({ connectionString: url });
  await observer.connect();
  return observer;
}

/** What {@link whileLockHeld} holds, sends and waits for. */
export interface HeldLock<T> {
  /** Takes the lock (and writes what is to commit with it) in the test's transaction. */
  hold(tx: pg.Client): Promise<unknown>;
  /** Sends the request(s) under test, which are to queue on the lock; answers their answer(s). */
  send(): Promise<T>;
  /** Resolves when the requests are queued; by default once `waiters` other backends wait for a lock. */
  queued?(): Promise<void>;
  /** How many backends must wait for a lock before the test goes on (default 1; without `queued`). */
  waiters?: number;
  /** Runs once the requests are queued, before the commit (writes through `tx` commit with the lock). */
  meanwhile?(tx: pg.Client): Promise<unknown>;
}

/**
 * Runs `send` while a transaction of the test's own on `url` holds what `hold` takes: once the requests wait for the
 * lock (PostgreSQL reports their backends waiting, no sleeps), runs `meanwhile`, commits, and answers the requests'
 * answer. The transaction's connection is closed in any case.
 */
export async function whileLockHeld<T>(url: string, observer: LockObserver, { hold, send, queued, waiters = 1, meanwhile }: HeldLock<T>): Promise<T> {
  const tx = new pg.Client({ connectionString: url });
  await tx.connect();
  try {
    await tx.query('BEGIN');
    await hold(tx);
    const pending = send();
    await (queued ? queued() : lockWaitersReach(observer, waiters));
    await meanwhile?.(tx);
    await tx.query('COMMIT');
    return await pending;
  } finally {
    await tx.end();
  }
}

/**
 * `send` and `queued` for {@link whileLockHeld} that start `sends` in turn: each once every request before it waits
 * for a lock or answered (a request that answers without waiting checked what the lock guards as it was); queued
 * once the last one does. Answers every request's answer, in order.
 */
export function inTurn<R>(observer: LockObserver, sends: Array<() => Promise<R>>): Pick<HeldLock<R[]>, 'send' | 'queued'> {
  const pending: Array<Promise<R>> = [];
  let started: Promise<void> | undefined;
  const start = () =>
    (started ??= (async () => {
      let answered = 0;
      for (const send of sends) {
        pending.push(
          send().finally(() => {
            answered += 1;
          }),
        );
        const count = pending.length;
        await until(async () => answered + (await lockWaiters(observer)) >= count);
      }
    })());
  return {
    send: async () => {
      await start();
      return Promise.all(pending);
    },
    queued: start,
  };
}

/** A `hold` for {@link whileLockHeld}: the admin group's lock, which every membership write and the last-admin rule take. */
export const holdAdminGroupLock = (tx: pg.Client) => tx.query(`SELECT pg_advisory_xact_lock(hashtext('backoffice_group:admin'))`);
