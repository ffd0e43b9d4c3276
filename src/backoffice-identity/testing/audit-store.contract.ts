import { randomUUID } from 'node:crypto';
import type { BackOfficeAuditEntry, BackOfficeAuditStore, NewBackOfficeAuditEntry } from '../audit/backoffice-audit-store.interface.js';

/** The matchers the contract uses (a subset of vitest's and jest's `expect`). */
export interface ContractMatchers {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toMatch(expected: RegExp): void;
  toMatchObject(expected: object): void;
  toHaveLength(length: number): void;
  toBeNull(): void;
  toBeUndefined(): void;
  readonly not: ContractMatchers;
}

/** The test functions of the runner that hosts the contract (vitest or jest). */
export interface ContractTestApi {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>, timeout?: number): void;
  expect(actual: unknown): ContractMatchers;
}

/** Makes an empty store for one test (e.g. truncates the table); `dispose` runs after it, when given. */
export type AuditStoreFactory = () => Promise<BackOfficeAuditStore | { store: BackOfficeAuditStore; dispose?: () => Promise<void> }>;

const T0 = Date.parse('2026-03-01T12:00:00.000Z');

function entry(overrides: Partial<NewBackOfficeAuditEntry> = {}): NewBackOfficeAuditEntry {
  return {
    event: 'backoffice.user.login.success',
    performingUserId: null,
    affectedUserId: null,
    ipAddress: '203.0.113.9',
    createdAt: new Date(T0),
    details: {},
    ...overrides,
  };
}

/** Newest first: `createdAt` descending, then `id` (numeric) descending. */
function isNewestFirst(items: BackOfficeAuditEntry[]): boolean {
  return items.every((e, i) => {
    if (i === 0) return true;
    const prev = items[i - 1]!;
    const byTime = prev.createdAt.getTime() - e.createdAt.getTime();
    return byTime > 0 || (byTime === 0 && BigInt(prev.id) > BigInt(e.id));
  });
}

/**
 * The behaviour every {@link BackOfficeAuditStore} must have (like ASP.NET Identity's specification tests):
 * newest-first keyset pages that are stable under ties and concurrent appends, the user and event filters,
 * counts, offsets and pruning. Call it inside your test file with your runner's functions:
 * `defineAuditStoreContract(() => makeEmptyStore(), { describe, it, expect })`.
 */
export function defineAuditStoreContract(factory: AuditStoreFactory, { describe, it, expect }: ContractTestApi): void {
  const withStore = (body: (store: BackOfficeAuditStore) => Promise<void>) => async () => {
    const made = await factory();
    const { store, dispose } = 'append' in made ? { store: made, dispose: undefined } : made;
    try {
      await body(store);
    } finally {
      await dispose?.();
    }
  };

  describe('BackOfficeAuditStore contract', () => {
    it(
      'appends and lists newest first, with every field kept (unicode details included)',
      withStore(async (store) => {
        const alice = randomUUID();
        const bob = randomUUID();
        await store.append(entry({ event: 'a.first', createdAt: new Date(T0), affectedUserId: alice }));
        await store.append(entry({ event: 'a.second', createdAt: new Date(T0 + 1000), performingUserId: bob, affectedUserId: alice, details: { name: 'Zoë 名前 🎉', n: 3 } }));
        const page = await store.list({ take: 10 });
        expect(page.items.map((e) => e.event)).toEqual(['a.second', 'a.first']);
        expect(page.next).toBeNull();
        const [second] = page.items;
        expect(second).toMatchObject({ performingUserId: bob, affectedUserId: alice, ipAddress: '203.0.113.9', details: { name: 'Zoë 名前 🎉', n: 3 } });
        expect(second!.createdAt.toISOString()).toBe(new Date(T0 + 1000).toISOString());
        expect(second!.id).toMatch(/^\d+$/);
      }),
    );

    it(
      'keyset pages cover every entry exactly once, in order, when many share a timestamp',
      withStore(async (store) => {
        // 3 timestamps, 9 entries each: the cursor must break ties by id.
        for (let i = 0; i < 27; i++) await store.append(entry({ event: `tie.${i}`, createdAt: new Date(T0 + Math.floor(i / 9) * 1000) }));
        const all = (await store.list({ take: 100 })).items;
        expect(all).toHaveLength(27);
        expect(isNewestFirst(all)).toBe(true);
        const seen: string[] = [];
        let page = await store.list({ take: 4 });
        let pages = 1;
        seen.push(...page.items.map((e) => e.id));
        while (page.next) {
          page = await store.list({ take: 4, before: page.next });
          seen.push(...page.items.map((e) => e.id));
          pages++;
        }
        expect(pages).toBe(7);
        expect(seen).toEqual(all.map((e) => e.id));
      }),
    );

    it(
      'a cursor stays where it was while newer entries are appended (no repeats, no gaps)',
      withStore(async (store) => {
        for (let i = 0; i < 10; i++) await store.append(entry({ event: `old.${i}`, createdAt: new Date(T0 + i * 1000) }));
        const first = await store.list({ take: 4 });
        expect(first.next).not.toBeNull();
        for (let i = 0; i < 5; i++) await store.append(entry({ event: `new.${i}`, createdAt: new Date(T0 + 60_000 + i) }));
        const second = await store.list({ take: 4, before: first.next! });
        expect(second.items.map((e) => e.event)).toEqual(['old.5', 'old.4', 'old.3', 'old.2']);
        const rest = await store.list({ take: 4, before: second.next! });
        expect(rest.items.map((e) => e.event)).toEqual(['old.1', 'old.0']);
        expect(rest.next).toBeNull();
      }),
    );

    it(
      'the user filter matches the acting or the affected user, once per entry; the event filter is exact',
      withStore(async (store) => {
        const alice = randomUUID();
        const bob = randomUUID();
        await store.append(entry({ event: 'e.alice-acted', performingUserId: alice, affectedUserId: bob, createdAt: new Date(T0 + 1) }));
        await store.append(entry({ event: 'e.alice-affected', performingUserId: bob, affectedUserId: alice, createdAt: new Date(T0 + 2) }));
        await store.append(entry({ event: 'e.alice-self', performingUserId: alice, affectedUserId: alice, createdAt: new Date(T0 + 3) }));
        await store.append(entry({ event: 'e.bob-only', performingUserId: null, affectedUserId: bob, createdAt: new Date(T0 + 4) }));
        await store.append(entry({ event: 'e.alice-self', performingUserId: bob, affectedUserId: bob, createdAt: new Date(T0 + 5) }));
        const forAlice = await store.list({ take: 10, userId: alice, count: 'exact' });
        expect(forAlice.items.map((e) => e.event)).toEqual(['e.alice-self', 'e.alice-affected', 'e.alice-acted']);
        expect(forAlice.total).toEqual({ value: 3, exact: true });
        const selfEvents = await store.list({ take: 10, event: 'e.alice-self', count: 'estimate' });
        expect(selfEvents.items).toHaveLength(2);
        expect(selfEvents.total).toEqual({ value: 2, exact: true });
        const both = await store.list({ take: 10, event: 'e.alice-self', userId: alice });
        expect(both.items.map((e) => e.performingUserId)).toEqual([alice]);
        expect((await store.list({ take: 10, userId: randomUUID(), count: 'exact' })).total).toEqual({ value: 0, exact: true });
        expect((await store.list({ take: 10, event: 'e.nothing' })).items).toEqual([]);
      }),
    );

    it(
      'keyset pages under a user filter walk both columns without repeats',
      withStore(async (store) => {
        const carol = randomUUID();
        for (let i = 0; i < 12; i++) {
          const acted = i % 3 === 0;
          await store.append(entry({ event: `c.${i}`, performingUserId: acted ? carol : null, affectedUserId: acted ? null : carol, createdAt: new Date(T0 + Math.floor(i / 2) * 1000) }));
          await store.append(entry({ event: `noise.${i}`, affectedUserId: randomUUID(), createdAt: new Date(T0 + i * 1000) }));
        }
        const events: string[] = [];
        let page = await store.list({ take: 5, userId: carol });
        events.push(...page.items.map((e) => e.event));
        while (page.next) {
          page = await store.list({ take: 5, userId: carol, before: page.next });
          events.push(...page.items.map((e) => e.event));
        }
        expect(events).toEqual(Array.from({ length: 12 }, (_, i) => `c.${11 - i}`));
      }),
    );

    it(
      'no total unless asked; skip still works as an offset',
      withStore(async (store) => {
        for (let i = 0; i < 6; i++) await store.append(entry({ event: `s.${i}`, createdAt: new Date(T0 + i) }));
        const plain = await store.list({ take: 2 });
        expect(plain.total).toBeUndefined();
        const offset = await store.list({ take: 2, skip: 3, count: 'exact' });
        expect(offset.items.map((e) => e.event)).toEqual(['s.2', 's.1']);
        expect(offset.total).toEqual({ value: 6, exact: true });
        expect(offset.next).not.toBeNull();
        expect((await store.list({ take: 2, skip: 6 })).items).toEqual([]);
      }),
    );

    it(
      'prune deletes entries strictly older than the limit and says how many',
      withStore(async (store) => {
        for (let i = 0; i < 5; i++) await store.append(entry({ event: `p.${i}`, createdAt: new Date(T0 + i * 86_400_000) }));
        expect(await store.prune(new Date(T0 + 2 * 86_400_000))).toBe(2);
        const left = await store.list({ take: 10, count: 'exact' });
        expect(left.items.map((e) => e.event)).toEqual(['p.4', 'p.3', 'p.2']);
        expect(left.total).toEqual({ value: 3, exact: true });
        expect(await store.prune(new Date(T0))).toBe(0);
      }),
    );
  });
}
