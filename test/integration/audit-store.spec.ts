import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import { backOfficeIdentityEntities, defineAuditStoreContract, TypeOrmBackOfficeAuditStore } from '../../src/backoffice-identity/index.js';

let db: TestDatabase;
let source: DataSource;
beforeAll(async () => {
  db = await createTestDatabase();
  source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities });
  await source.initialize();
});
afterAll(async () => {
  await source?.destroy();
  await db?.drop();
});

describe(`TypeOrmBackOfficeAuditStore (${process.env.TEST_DB_KIND ?? 'pglite'})`, () => {
  defineAuditStoreContract(
    async () => {
      await source.query('TRUNCATE backoffice_audit_entry RESTART IDENTITY');
      return new TypeOrmBackOfficeAuditStore(source);
    },
    { describe, it, expect },
  );

  describe('at size (60k entries): the listings walk their indexes', () => {
    const user = '00000000-0000-4000-8000-000000004242';
    beforeAll(async () => {
      await source.query('TRUNCATE backoffice_audit_entry RESTART IDENTITY');
      await source.query(
        `INSERT INTO backoffice_audit_entry (event, performing_user_id, affected_user_id, created_at, details)
         SELECT 'backoffice.e' || (g % 5), CASE WHEN g % 1000 = 7 THEN $1::uuid END,
                CASE WHEN g % 1000 = 3 THEN $1::uuid ELSE gen_random_uuid() END,
                timestamptz '2026-01-01' + (g / 3) * interval '1 second', '{}'
           FROM generate_series(1, 60000) g`,
        [user],
      );
      await source.query('ANALYZE backoffice_audit_entry');
    });

    /** The plan of `sql` as text, with the planner's choices as for a real call. */
    const plan = async (sql: string, params: unknown[] = []) =>
      (await source.query(`EXPLAIN ${sql}`, params)).map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n');

    it('the newest page, a keyset page, per-event and per-user pages use the indexes and sort nothing large', async () => {
      const store = new TypeOrmBackOfficeAuditStore(source);
      const logged: Array<[string, unknown[]]> = [];
      const query = source.query.bind(source);
      source.query = (async (sql: string, params: unknown[] = []) => {
        logged.push([sql, params]);
        return query(sql, params);
      }) as typeof source.query;
      try {
        const first = await store.list({ take: 20 });
        await store.list({ take: 20, before: first.next! });
        await store.list({ take: 20, event: 'backoffice.e3', before: first.next! });
        await store.list({ take: 20, userId: user, before: first.next! });
      } finally {
        source.query = query;
      }
      const [newest, keyset, byEvent, byUser] = logged;
      expect(await plan(...newest!)).toMatch(/Index Scan Backward using ix_backoffice_audit_entry_created/);
      const keysetPlan = await plan(...keyset!);
      expect(keysetPlan).toMatch(/ix_backoffice_audit_entry_created/);
      expect(keysetPlan).not.toMatch(/Seq Scan/);
      expect(await plan(...byEvent!)).toMatch(/ix_backoffice_audit_entry_event/);
      const userPlan = await plan(...byUser!);
      expect(userPlan).toMatch(/ix_backoffice_audit_entry_affected/);
      expect(userPlan).toMatch(/ix_backoffice_audit_entry_performing/);
      expect(userPlan).not.toMatch(/Seq Scan/);
    });

    it('count=estimate is exact up to 10,000 matches and an estimate beyond; count=exact is exact', async () => {
      const store = new TypeOrmBackOfficeAuditStore(source);
      expect((await store.list({ take: 1, userId: user, count: 'estimate' })).total).toEqual({ value: 120, exact: true });
      const estimated = (await store.list({ take: 1, count: 'estimate' })).total!;
      expect(estimated.exact).toBe(false);
      expect(estimated.value).toBeGreaterThan(10_000);
      expect(Math.abs(estimated.value - 60_000)).toBeLessThan(12_000);
      expect((await store.list({ take: 1, event: 'backoffice.e1', count: 'exact' })).total).toEqual({ value: 12_000, exact: true });
    });
  });
});
