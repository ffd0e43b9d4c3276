import { Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { requireHostDataSource } from './backoffice-data-source.provider.js';
import { DataSource } from 'typeorm';
import type {
  BackOfficeAuditEntry,
  BackOfficeAuditPage,
  BackOfficeAuditQuery,
  BackOfficeAuditStore,
  NewBackOfficeAuditEntry,
} from '../../audit/backoffice-audit-store.interface.js';
import { cappedCount, type ListingTotal } from './capped-count.js';
import { preparedQuery } from './prepared-query.js';
import { deleteInBatches } from './sql-results.js';
import { toStorableJson } from '../../common/storable-text.js';


interface AuditRow {
  id: string;
  event: string;
  performing_user_id: string | null;
  affected_user_id: string | null;
  ip_address: string | null;
  created_at: Date;
  created_us: string;
  details: Record<string, unknown>;
}

const COLUMNS = `id, event, performing_user_id, affected_user_id, ip_address, created_at,
  (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us, details`;
const ORDER = `ORDER BY created_at DESC, id DESC`;

/** The columns an appended entry sets. */
export const AUDIT_INSERT_COLUMNS = `(event, performing_user_id, affected_user_id, ip_address, created_at, details)`;
/** One row of {@link AUDIT_INSERT_COLUMNS}, its parameters numbered from `$first`. */
export const auditInsertValues = (first: number) =>
  `($${first}, $${first + 1}, $${first + 2}, $${first + 3}, $${first + 4}, $${first + 5}::jsonb)`;

/** SQL conditions and their parameters, numbered from $1. */
class Conditions {
  readonly params: unknown[] = [];
  readonly parts: string[] = [];

  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  where(extra: string[] = []): string {
    const all = [...this.parts, ...extra];
    return all.length ? `WHERE ${all.join(' AND ')}` : '';
  }
}

/**
 * The audit trail in `backoffice_audit_entry` (PostgreSQL and PGlite). Keyset pages walk the indexes
 * `(created_at, id)`, `(affected_user_id, created_at, id)`, `(performing_user_id, created_at, id)` and
 * `(event, created_at, id)`; a per-user listing is a UNION of the two user indexes, each read newest first.
 */
@Injectable()
export class TypeOrmBackOfficeAuditStore implements BackOfficeAuditStore {
  constructor(@Optional() @InjectDataSource() private readonly dataSource: DataSource) {
    requireHostDataSource(dataSource);
  }

  /** True when entries are appended by this class's own SQL on `dataSource` (so another store may write them too). */
  writesWith(dataSource: DataSource): boolean {
    return this.dataSource === dataSource && this.append === TypeOrmBackOfficeAuditStore.prototype.append;
  }

  /** The parameters of one entry, in the column order of {@link AUDIT_INSERT_COLUMNS}. */
  static values(entry: NewBackOfficeAuditEntry): unknown[] {
    return [entry.event, entry.performingUserId, entry.affectedUserId, entry.ipAddress, entry.createdAt, toStorableJson(entry.details ?? {})];
  }

  async append(entry: NewBackOfficeAuditEntry): Promise<void> {
    // A prepared statement: this runs on every sign-in.
    await preparedQuery(
      this.dataSource,
      'backoffice_insert_audit_entry',
      `INSERT INTO backoffice_audit_entry ${AUDIT_INSERT_COLUMNS} VALUES ${auditInsertValues(1)}`,
      TypeOrmBackOfficeAuditStore.values(entry),
    );
  }

  async list(query: BackOfficeAuditQuery): Promise<BackOfficeAuditPage> {
    const skip = query.before ? 0 : (query.skip ?? 0);
    const limit = query.take + 1;
    const c = new Conditions();
    if (query.event) c.parts.push(`event = ${c.param(query.event)}`);
    const keyset: string[] = [];
    if (query.before) {
      const at = c.param(query.before.createdAtMicros);
      const id = c.param(query.before.id);
      keyset.push(`(created_at, id) < (timestamptz 'epoch' + ${at}::bigint * interval '1 microsecond', ${id}::bigint)`);
    }
    let sql: string;
    if (query.userId) {
      const user = c.param(query.userId);
      const branch = (column: string) =>
        `(SELECT ${COLUMNS} FROM backoffice_audit_entry ${c.where([`${column} = ${user}::uuid`, ...keyset])} ${ORDER} LIMIT ${skip + limit})`;
      // UNION (not OR): each branch reads its own index newest first and stops early; UNION drops the
      // entries where the user both acted and was affected from appearing twice.
      sql = `SELECT * FROM (${branch('affected_user_id')} UNION ${branch('performing_user_id')}) a ${ORDER} OFFSET ${skip} LIMIT ${limit}`;
    } else if (skip > 0) {
      // The deprecated offset: found on the index alone (no row is read or projected while skipping), then
      // the page is a keyset range from there. No row at that offset: the comparison with NULL selects none.
      const start = `(SELECT created_at, id FROM backoffice_audit_entry ${c.where()} ${ORDER} OFFSET ${skip} LIMIT 1)`;
      sql = `SELECT ${COLUMNS} FROM backoffice_audit_entry ${c.where([`(created_at, id) <= ${start}`])} ${ORDER} LIMIT ${limit}`;
    } else {
      sql = `SELECT ${COLUMNS} FROM backoffice_audit_entry ${c.where(keyset)} ${ORDER} LIMIT ${limit}`;
    }
    const rows: AuditRow[] = await this.dataSource.query(sql, c.params);
    const items = rows.slice(0, query.take).map(toEntry);
    const count = query.count ?? 'none';
    return {
      items,
      next: rows.length > query.take ? items.at(-1)!.position : null,
      ...(count === 'none' ? {} : { total: await this.count(query, count === 'exact') }),
    };
  }

  async prune(olderThan: Date): Promise<number> {
    return deleteInBatches(this.dataSource, 'backoffice_audit_entry', ['created_at', 'id'], 'created_at < $1', [olderThan]);
  }

  /** Exact, or exact up to the cap and the planner's row estimate beyond it. */
  private count(query: BackOfficeAuditQuery, exact: boolean): Promise<ListingTotal> {
    const c = new Conditions();
    if (query.event) c.parts.push(`event = ${c.param(query.event)}`);
    if (query.userId) {
      const user = c.param(query.userId);
      c.parts.push(`(affected_user_id = ${user}::uuid OR performing_user_id = ${user}::uuid)`);
    }
    return cappedCount(this.dataSource, `SELECT 1 FROM backoffice_audit_entry ${c.where()}`, c.params, exact);
  }
}

function toEntry(row: AuditRow): BackOfficeAuditEntry {
  return {
    id: String(row.id),
    event: row.event,
    performingUserId: row.performing_user_id,
    affectedUserId: row.affected_user_id,
    ipAddress: row.ip_address,
    createdAt: new Date(row.created_at),
    details: row.details ?? {},
    position: { createdAtMicros: String(row.created_us), id: String(row.id) },
  };
}
