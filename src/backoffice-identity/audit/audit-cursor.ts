import type { BackOfficeAuditPosition } from './backoffice-audit-store.interface.js';

/** Longest cursor accepted: two 20-digit numbers, a dot, in base64url. */
const MAX_CURSOR_LENGTH = 64;
const POSITION = /^(\d{1,19})\.(\d{1,19})$/;
const MAX_BIGINT = 9223372036854775807n;
/**
 * The latest time a `Date` holds (8.64e15 ms), in microseconds: no entry is newer. A position past it is no cursor
 * this module issued, and PostgreSQL's timestamp arithmetic overflows on it (an error, not an empty page).
 */
const MAX_MICROS = 8_640_000_000_000_000_000n;

/** The opaque `before` / `nextCursor` of `GET /audit`: base64url of `<microseconds>.<id>`. */
export function encodeAuditCursor(position: BackOfficeAuditPosition): string {
  return Buffer.from(`${position.createdAtMicros}.${position.id}`, 'utf8').toString('base64url');
}

/** The position of a cursor, or null when it is not one this module issued (wrong shape or out of range). */
export function decodeAuditCursor(cursor: string): BackOfficeAuditPosition | null {
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  const match = POSITION.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) return null;
  const [, micros, id] = match;
  if (BigInt(micros!) > MAX_MICROS || BigInt(id!) > MAX_BIGINT) return null;
  return { createdAtMicros: BigInt(micros!).toString(), id: BigInt(id!).toString() };
}

/** Orders positions newest first: negative when `a` is newer than `b`. */
export function compareAuditPositions(a: BackOfficeAuditPosition, b: BackOfficeAuditPosition): number {
  const byTime = BigInt(b.createdAtMicros) - BigInt(a.createdAtMicros);
  if (byTime !== 0n) return byTime > 0n ? 1 : -1;
  const byId = BigInt(b.id) - BigInt(a.id);
  return byId === 0n ? 0 : byId > 0n ? 1 : -1;
}
