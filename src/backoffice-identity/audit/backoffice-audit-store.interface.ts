/**
 * The audit trail's persistence port. The default adapter is `TypeOrmBackOfficeAuditStore` (PostgreSQL);
 * `InMemoryBackOfficeAuditStore` serves host tests. Swap it with the module option `auditStore`
 * (token `BACKOFFICE_AUDIT_STORE`). Every store passes `defineAuditStoreContract`.
 */

/** One entry to append: a notification as the audit listener records it. */
export interface NewBackOfficeAuditEntry {
  event: string;
  performingUserId: string | null;
  affectedUserId: string | null;
  ipAddress: string | null;
  createdAt: Date;
  /** Never secrets: what the notification's `auditDetails()` returned. */
  details: Record<string, unknown>;
}

/**
 * Where an entry sits in the trail's order (newest first: `createdAt` descending, then `id` descending).
 * `createdAtMicros` keeps the database's microseconds, which a `Date` would lose, so a cursor is exact.
 */
export interface BackOfficeAuditPosition {
  /** Microseconds since the Unix epoch, as a decimal string of digits. */
  createdAtMicros: string;
  /** The entry's id: a decimal string of digits (ids grow with each append). */
  id: string;
}

/** A stored entry. */
export interface BackOfficeAuditEntry extends NewBackOfficeAuditEntry {
  id: string;
  position: BackOfficeAuditPosition;
}

/** How to count the matches of a listing. */
export type BackOfficeAuditCount =
  /** No total (the cheapest). */
  | 'none'
  /** Exact up to the store's cap (10,000 for the TypeORM store), a planner estimate beyond it. */
  | 'estimate'
  /** Always exact: a full count of the matches (slow on millions of rows). */
  | 'exact';

/** A listing: newest first; filters combine with AND. */
export interface BackOfficeAuditQuery {
  /** Entries where this user acted or was affected. */
  userId?: string;
  /** Entries of this event name (exact). */
  event?: string;
  /** Only entries strictly older than this position (keyset pagination: the fast path). */
  before?: BackOfficeAuditPosition;
  /** Entries to skip (OFFSET: cost grows with the offset; prefer `before`). Not combined with `before`. */
  skip?: number;
  /** Page size, 1 or more. */
  take: number;
  /** Default `none`. */
  count?: BackOfficeAuditCount;
}

/** One page of a listing. */
export interface BackOfficeAuditPage {
  items: BackOfficeAuditEntry[];
  /** The position of the last item when more entries may follow, else null: pass it as the next `before`. */
  next: BackOfficeAuditPosition | null;
  /** Present unless `count: 'none'`. */
  total?: { value: number; exact: boolean };
}

/** The audit trail's storage. */
export interface BackOfficeAuditStore {
  /** Appends one entry. */
  append(entry: NewBackOfficeAuditEntry): Promise<void>;
  /** A page of entries, newest first. */
  list(query: BackOfficeAuditQuery): Promise<BackOfficeAuditPage>;
  /** Deletes entries created before `olderThan`; returns how many went. */
  prune(olderThan: Date): Promise<number>;
}
