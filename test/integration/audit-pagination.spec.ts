import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';
import {
  BACKOFFICE_AUDIT_STORE,
  BackOfficeMaintenanceService,
  encodeAuditCursor,
  InMemoryBackOfficeAuditStore,
  type BackOfficeAuditStore,
} from '../../src/backoffice-identity/index.js';

interface AuditItem {
  id: string;
  event: string;
  performingUserId: string | null;
  affectedUserId: string | null;
  createdAt: string;
}

describe('GET /audit: keyset pages, filters, counts over HTTP', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const subject = randomUUID();

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, maintenanceIntervalMinutes: 0, audit: { retentionDays: 30 } } });
    await ctx.userManager.createUser({ email: 'auditor@example.com', name: 'Auditor', password: TEST_PASSWORD, groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login('auditor@example.com', TEST_PASSWORD)).status).toBe(200);
    const store = ctx.app.get<BackOfficeAuditStore>(BACKOFFICE_AUDIT_STORE);
    const at = Date.now() - 3_600_000;
    // 45 entries over 9 timestamps (5 per timestamp: ties), every third one about `subject`.
    for (let i = 0; i < 45; i++) {
      await store.append({
        event: i % 2 ? 'test.audit.odd' : 'test.audit.even',
        performingUserId: null,
        affectedUserId: i % 3 === 0 ? subject : null,
        ipAddress: null,
        createdAt: new Date(at + Math.floor(i / 5) * 1000),
        details: { i },
      });
    }
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('nextCursor walks the whole trail newest first, each entry once; the old response fields stay', async () => {
    const first = await admin.get('/audit?take=7');
    expect(first.status).toBe(200);
    expect(first.body.total).toBeGreaterThanOrEqual(46); // ours and the admin's sign-in
    expect(first.body.totalExact).toBe(true);
    const ids: string[] = [];
    let page = first;
    for (;;) {
      expect(page.status, page.text).toBe(200);
      ids.push(...page.body.items.map((e: AuditItem) => e.id));
      if (!page.body.nextCursor) break;
      page = await admin.get(`/audit?take=7&before=${page.body.nextCursor}`);
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(first.body.total);
    const all = (await admin.get('/audit?take=200')).body.items as AuditItem[];
    expect(ids).toEqual(all.map((e) => e.id));
    const times = all.map((e) => Date.parse(e.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });

  it('skip still pages by offset (deprecated, same order as the cursor)', async () => {
    const all = (await admin.get('/audit?take=200')).body.items as AuditItem[];
    const offset = await admin.get('/audit?take=5&skip=10');
    expect(offset.body.items.map((e: AuditItem) => e.id)).toEqual(all.slice(10, 15).map((e) => e.id));
  });

  it('filters by event and by user, alone and with a cursor; count=exact and count=none', async () => {
    const odd = await admin.get('/audit?take=10&event=test.audit.odd&count=exact');
    expect(odd.body.total).toBe(22);
    expect(odd.body.totalExact).toBe(true);
    expect(odd.body.items.every((e: AuditItem) => e.event === 'test.audit.odd')).toBe(true);
    const next = await admin.get(`/audit?take=10&event=test.audit.odd&before=${odd.body.nextCursor}`);
    expect(next.body.items).toHaveLength(10);
    expect(next.body.items.every((e: AuditItem) => e.event === 'test.audit.odd')).toBe(true);
    const mine = await admin.get(`/audit?take=50&userId=${subject}`);
    expect(mine.body.items).toHaveLength(15);
    expect(mine.body.nextCursor).toBeNull();
    expect(mine.body.items.every((e: AuditItem) => e.affectedUserId === subject)).toBe(true);
    const none = await admin.get('/audit?take=1&count=none');
    expect(none.body).not.toHaveProperty('total');
    expect(none.body.items).toHaveLength(1);
  });

  it('a well-formed cursor for a place with nothing older gives an empty last page', async () => {
    const cursor = encodeAuditCursor({ createdAtMicros: '1', id: '1' });
    const page = await admin.get(`/audit?before=${cursor}`);
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({ items: [], nextCursor: null });
  });

  it('bad query parameters: 400 validation_failed naming the field, never a 500', async () => {
    const cursor = (await admin.get('/audit?take=1')).body.nextCursor as string;
    const cases: Array<[string, string]> = [
      ['before=not-a-cursor!', 'before'],
      [`before=${'A'.repeat(10_000)}`, 'before'],
      [`before=${encodeURIComponent('名前🎉')}`, 'before'],
      [`before=${Buffer.from('-5.1').toString('base64url')}`, 'before'],
      [`before=${Buffer.from('99999999999999999999.1').toString('base64url')}`, 'before'],
      [`before=${cursor}&before=${cursor}`, 'before'],
      [`before=${cursor}&skip=5`, 'skip'],
      ['count=maybe', 'count'],
      ['count=exact&count=none', 'count'],
      ['count[]=exact', 'count[]'],
      ['event=has spaces', 'event'],
      [`event=${encodeURIComponent('ünïcode.événement')}`, 'event'],
      [`event=${'e'.repeat(129)}`, 'event'],
      ['event=a&event=b', 'event'],
      ['take=abc', 'take'],
      ['take=1e3', 'take'],
      ['skip=1.5', 'skip'],
      ['userId=00000000-0000-0000-0000-00000000000g', 'userId'],
    ];
    for (const [query, field] of cases) {
      const result = await admin.get(`/audit?${query}`);
      expectClientError(result, 400);
      expect(result.body.code, query).toBe('validation_failed');
      expect(result.body.errors.map((e: { field: string }) => e.field), query).toContain(field);
    }
  });

  it('OWASP ASVS 4.0 5.1.3: a cursor tampered to a time past any Date (e.g. the bigint maximum) is 400 validation_failed, not a 500 from the database', async () => {
    for (const userId of [undefined, '00000000-0000-4000-8000-000000000000']) {
      for (const micros of ['9223372036854775807', '9223000000000000000', '8640000000000000001']) {
        const cursor = Buffer.from(`${micros}.1`).toString('base64url');
        const result = await admin.get(`/audit?before=${cursor}${userId ? `&userId=${userId}` : ''}`);
        expectClientError(result, 400);
        expect(result.body.errors.map((e: { field: string }) => e.field), micros).toContain('before');
      }
    }
    // The latest time a Date holds is still a cursor (nothing is newer, so everything is older).
    expect((await admin.get(`/audit?take=1&before=${Buffer.from('8640000000000000000.1').toString('base64url')}`)).status).toBe(200);
  });

  it('OWASP ASVS 5.0 2.4.1 (4.0 11.1.4): skip is at most 10,000 (an offset costs work in proportion to it): deeper is 400 validation_failed naming skip and pointing to before, with or without filters; 10,000 still answers', async () => {
    for (const filters of ['', `&userId=${subject}`, '&event=test.audit.odd']) {
      for (const skip of ['10001', '10000000']) {
        const result = await admin.get(`/audit?take=200&skip=${skip}${filters}`);
        expectClientError(result, 400);
        expect(result.body.code).toBe('validation_failed');
        const error = result.body.errors.find((e: { field: string }) => e.field === 'skip');
        expect(error, `${skip}${filters}`).toMatchObject({ code: 'max' });
        expect(error.description).toMatch(/10,000.*before.*nextCursor/);
      }
      const deepest = await admin.get(`/audit?take=200&skip=10000${filters}`);
      expect(deepest.status, deepest.text).toBe(200);
      expect(deepest.body.items).toEqual([]);
    }
  });

  it('needs audit.read: anonymous 401', async () => {
    expectClientError(await new HttpClient(ctx.url).get('/audit?take=1'), 401);
  });

  it('audit.retentionDays: maintenance prunes older entries through the store, newer ones stay', async () => {
    const store = ctx.app.get<BackOfficeAuditStore>(BACKOFFICE_AUDIT_STORE);
    await store.append({ event: 'test.audit.ancient', performingUserId: null, affectedUserId: null, ipAddress: null, createdAt: new Date(Date.now() - 31 * 86_400_000), details: {} });
    const before = (await admin.get('/audit?take=1&count=exact')).body.total as number;
    const result = await ctx.app.get(BackOfficeMaintenanceService).prune();
    expect(result.auditEntries).toBe(1);
    expect((await admin.get('/audit?take=1&count=exact')).body.total).toBe(before - 1);
    expect((await admin.get('/audit?event=test.audit.ancient')).body.items).toEqual([]);
    const rows = await ctx.app.get(DataSource).query(`SELECT count(*)::int AS n FROM backoffice_audit_entry WHERE event = 'test.audit.ancient'`);
    expect(rows[0].n).toBe(0);
  });
});

describe('auditStore swap: the listener, GET /audit and maintenance use the host store', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const store = new InMemoryBackOfficeAuditStore();
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, maintenanceIntervalMinutes: 0, auditStore: { useValue: store } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('sign-ins land in the swapped store, not in the table, and are listed from it', async () => {
    await ctx.userManager.createUser({ email: 'swapped-audit@example.com', name: 'S', password: TEST_PASSWORD, groups: ['admin'] });
    const client = new HttpClient(ctx.url);
    expect((await client.login('swapped-audit@example.com', TEST_PASSWORD)).status).toBe(200);
    await expect.poll(async () => (await store.list({ take: 10, event: 'backoffice.user.login.success' })).items.length).toBe(1);
    const rows = await ctx.app.get(DataSource).query(`SELECT count(*)::int AS n FROM backoffice_audit_entry`);
    expect(rows[0].n).toBe(0);
    const listed = await client.get('/audit?take=50&event=backoffice.user.login.success');
    expect(listed.body.items).toHaveLength(1);
    expect(ctx.app.get(BackOfficeMaintenanceService)).toBeDefined();
    expect((await ctx.app.get(BackOfficeMaintenanceService).prune()).auditEntries).toBe(0); // retention off by default
  });
});
