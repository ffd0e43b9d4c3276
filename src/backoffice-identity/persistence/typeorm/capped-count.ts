import type { DataSource, EntityManager } from 'typeorm';

/** Matches counted exactly before a listing's total becomes the planner's estimate. */
export const EXACT_COUNT_CAP = 10_000;

/** A listing's total: `exact` false when `value` is the planner's estimate. */
export interface ListingTotal {
  value: number;
  exact: boolean;
}

/**
 * The number of rows of `sql` (a SELECT with `$n` parameters), exact up to {@link EXACT_COUNT_CAP} (reading
 * at most that many rows plus one) and the planner's estimate beyond it, so a page of a table with millions
 * of rows never pays for a full count. With `exact`, a plain `count(*)`.
 */
export async function cappedCount(source: DataSource | EntityManager, sql: string, params: unknown[], exact = false): Promise<ListingTotal> {
  if (exact) {
    const rows = await source.query(`SELECT count(*)::bigint::text AS n FROM (${sql}) m`, params);
    return { value: Number(rows[0].n), exact: true };
  }
  const capped = await source.query(`SELECT count(*)::int AS n FROM (${sql} LIMIT ${EXACT_COUNT_CAP + 1}) m`, params);
  const n = Number(capped[0].n);
  if (n <= EXACT_COUNT_CAP) return { value: n, exact: true };
  return { value: Math.max(n, await plannerRows(source, sql, params)), exact: false };
}

/** The planner's row estimate of a query, from table statistics (0 when unavailable). */
async function plannerRows(source: DataSource | EntityManager, sql: string, params: unknown[]): Promise<number> {
  try {
    const rows: Array<{ 'QUERY PLAN': unknown }> = await source.query(`EXPLAIN (FORMAT JSON) ${sql}`, params);
    const raw = rows[0]?.['QUERY PLAN'];
    const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Array<{ Plan?: { 'Plan Rows'?: number } }>;
    return Math.round(Number(plan[0]?.Plan?.['Plan Rows'] ?? 0));
  } catch {
    return 0;
  }
}
