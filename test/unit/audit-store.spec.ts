import {
  compareAuditPositions,
  decodeAuditCursor,
  encodeAuditCursor,
} from '../../src/backoffice-identity/index.js';

// The in-memory audit store's contract runs in store-contract.spec.ts, as part of InMemoryBackOfficeStores.

describe('audit cursors', () => {
  it('round-trip a position, microseconds and big ids included', () => {
    const position = { createdAtMicros: '1767225600123456', id: '9223372036854775807' };
    const cursor = encodeAuditCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeAuditCursor(cursor)).toEqual(position);
  });

  it.each([
    ['empty', ''],
    ['not base64url', 'abc$def'],
    ['no dot', Buffer.from('12345').toString('base64url')],
    ['negative', Buffer.from('-1.5').toString('base64url')],
    ['beyond bigint', Buffer.from('9223372036854775808.1').toString('base64url')],
    ['a time past any Date', Buffer.from('8640000000000000001.1').toString('base64url')],
    ['letters', Buffer.from('12.3a').toString('base64url')],
    ['unicode', Buffer.from('١٢.٣').toString('base64url')],
    ['too long', 'A'.repeat(65)],
    ['a NUL inside', Buffer.from('1.2\u00003').toString('base64url')],
  ])('refuse %s', (_name, cursor) => {
    expect(decodeAuditCursor(cursor)).toBeNull();
  });

  it('order newest first, ties broken by id', () => {
    const a = { createdAtMicros: '2000', id: '1' };
    const b = { createdAtMicros: '1000', id: '9' };
    const c = { createdAtMicros: '2000', id: '2' };
    expect([a, b, c].sort(compareAuditPositions)).toEqual([c, a, b]);
  });
});
