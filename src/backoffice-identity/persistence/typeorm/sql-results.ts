import type { EntityManager } from 'typeorm';
import type { FailedAccessResult } from '../../users/stores/user-store.interface.js';

/** Rows of an `UPDATE/DELETE ... RETURNING` (TypeORM hands back `[rows, count]` for those). */
export const returned = <T = unknown>(rows: unknown[]): T[] => (Array.isArray(rows[0]) ? (rows[0] as T[]) : (rows as T[]));

/** Runs a `DELETE` and returns how many rows it removed. */
export async function deleteCounting(manager: Pick<EntityManager, 'query'>, sql: string, params: unknown[]): Promise<number> {
  const result = await manager.query(`WITH gone AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM gone`, params);
  return Number(result[0]?.n ?? 0);
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
