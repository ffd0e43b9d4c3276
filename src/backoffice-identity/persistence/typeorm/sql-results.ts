import type { EntityManager } from 'typeorm';
import type { FailedAccessResult } from '../../users/stores/user-store.interface.js';

/** Rows of an `UPDATE/DELETE ... RETURNING` (TypeORM hands back `[rows, count]` for those). */
export const returned = <T = unknown>(rows: unknown[]): T[] => (Array.isArray(rows[0]) ? (rows[0] as T[]) : (rows as T[]));

/** Runs a `DELETE` and returns how many rows it removed. */
export async function deleteCounting(manager: Pick<EntityManager, 'query'>, sql: string, params: unknown[]): Promise<number> {
  const result = await manager.query(`WITH gone AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM gone`, params);
  return Number(result[0]?.n ?? 0);
}

/** Most rows one prune statement deletes: each batch is its own short statement (and transaction). */
export const PRUNE_BATCH_SIZE = 1000;

/**
 * Deletes the rows of `table` that match `where` (over `params`) in batches of at most `batchSize`, each its own
 * statement, and answers how many went. A batch skips rows another transaction holds (`FOR UPDATE SKIP LOCKED`: a
 * request using a row, or a second app instance pruning at the same time) instead of waiting for them; the next
 * prune takes those. So a prune never holds many row locks for long, never stalls behind (or deadlocks with) the
 * requests, and two instances pruning at once share the work. Batches walk the table in `key` order (a column, or
 * an index's columns ending in a unique one), each from where the last one ended, so a large backlog is read once,
 * not once per batch.
 */
export async function deleteInBatches(
  manager: Pick<EntityManager, 'query'>,
  table: string,
  key: string | readonly [string, ...string[]],
  where: string,
  params: unknown[],
  batchSize = PRUNE_BATCH_SIZE,
): Promise<number> {
  // The walk's order: one unique column, or an index's columns ending in a unique one (the audit trail's
  // (created_at, id): walking its id alone, the last batch of every prune read every row the trail keeps).
  const columns = typeof key === 'string' ? [key] : [...key];
  const id = columns[columns.length - 1];
  const tuple = columns.join(', ');
  const limit = `$${params.length + 1}`;
  const from = columns.map((_, i) => `$${params.length + 2 + i}`).join(', ');
  const batch = (after: boolean) =>
    `WITH gone AS (DELETE FROM ${table} WHERE ${id} = ANY(ARRAY(SELECT ${id} FROM ${table} WHERE (${where})` +
    `${after ? ` AND (${tuple}) > (${from})` : ''} ORDER BY ${tuple} LIMIT ${limit} FOR UPDATE SKIP LOCKED)) RETURNING ${tuple}) ` +
    `SELECT count(*)::int AS n, (SELECT ARRAY[${columns.map((c) => `${c}::text`).join(', ')}] FROM gone ORDER BY ${columns.map((c) => `${c} DESC`).join(', ')} LIMIT 1) AS last FROM gone`;
  let total = 0;
  let last: string[] | null = null;
  for (;;) {
    const rows: Array<{ n: number; last: string[] | null }> = await manager.query(batch(last !== null), last === null ? [...params, batchSize] : [...params, batchSize, ...last]);
    const deleted = Number(rows[0]?.n ?? 0);
    total += deleted;
    if (deleted < batchSize || !rows[0]?.last) return total;
    last = rows[0].last;
  }
}

/** The result of one atomic failed-access `UPDATE ... RETURNING access_failed_count, lockout_end` (no row: not counted). */
export function failedAccessResult(rows: unknown[], now: Date): FailedAccessResult {
  const row = returned<{ access_failed_count: number; lockout_end: Date | null }>(rows)[0];
  if (!row) return { alreadyLocked: true, lockedNow: false, accessFailedCount: 0, lockoutEnd: null };
  const lockoutEnd = row.lockout_end ? new Date(row.lockout_end) : null;
  return {
    alreadyLocked: false,
    lockedNow: lockoutEnd !== null && lockoutEnd.getTime() > now.getTime(),
    accessFailedCount: Number(row.access_failed_count),
    lockoutEnd,
  };
}
