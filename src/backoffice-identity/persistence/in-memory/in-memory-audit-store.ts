import { compareAuditPositions } from '../../audit/audit-cursor.js';
import type {
  BackOfficeAuditEntry,
  BackOfficeAuditPage,
  BackOfficeAuditQuery,
  BackOfficeAuditStore,
  NewBackOfficeAuditEntry,
} from '../../audit/backoffice-audit-store.interface.js';

/**
 * An audit store in process memory, for host tests that run without a database. Not shared between
 * processes and lost on exit: never use it in production. Counts are always exact.
 */
export class InMemoryBackOfficeAuditStore implements BackOfficeAuditStore {
  private readonly entries: BackOfficeAuditEntry[] = [];
  private nextId = 1n;

  async append(entry: NewBackOfficeAuditEntry): Promise<void> {
    const id = (this.nextId++).toString();
    const createdAt = new Date(entry.createdAt.getTime());
    this.entries.push({
      ...entry,
      createdAt,
      details: structuredClone(entry.details ?? {}),
      id,
      position: { createdAtMicros: (BigInt(createdAt.getTime()) * 1000n).toString(), id },
    });
  }

  async list(query: BackOfficeAuditQuery): Promise<BackOfficeAuditPage> {
    const matches = this.entries
      .filter((e) => !query.userId || e.performingUserId === query.userId || e.affectedUserId === query.userId)
      .filter((e) => !query.event || e.event === query.event)
      .sort((a, b) => compareAuditPositions(a.position, b.position));
    const before = query.before;
    const after = before ? matches.filter((e) => compareAuditPositions(e.position, before) > 0) : matches;
    const start = before ? 0 : (query.skip ?? 0);
    const page = after.slice(start, start + query.take + 1);
    const items = page.slice(0, query.take).map((e) => structuredClone(e));
    const count = query.count ?? 'none';
    return {
      items,
      next: page.length > query.take ? items.at(-1)!.position : null,
      ...(count === 'none' ? {} : { total: { value: matches.length, exact: true } }),
    };
  }

  async prune(olderThan: Date): Promise<number> {
    const before = this.entries.length;
    const kept = this.entries.filter((e) => e.createdAt.getTime() >= olderThan.getTime());
    this.entries.splice(0, this.entries.length, ...kept);
    return before - kept.length;
  }
}
