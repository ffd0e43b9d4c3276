import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  BACKOFFICE_API_CLIENT_STORE,
  BACKOFFICE_GROUP_STORE,
  BACKOFFICE_SESSION_STORE,
  BackOfficeApiUserService,
  type BackOfficeSessionStore,
} from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';

/**
 * `GET /auth/sessions`, `GET /users/api` and `GET /groups` answered every row at once. They take the module's paging
 * parameters (`skip`, `take`) now, optional, with a default page that holds today's typical answers whole.
 */
describe('Paged lists: own sessions, API users, groups (skip / take)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let adminId: string;
  const make = userFactory(() => ctx, 'paging');
  const MANY = 150;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const boss = await make({ groups: ['admin'] });
    adminId = boss.id;
    admin = new HttpClient(ctx.url);
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);

    // 150 more live sessions of the admin, five per last-seen time (ties the order has to break the same way each time).
    const sessions = ctx.app.get<BackOfficeSessionStore>(BACKOFFICE_SESSION_STORE);
    const stamp = (await ctx.userManager.findById(adminId))!.securityStamp;
    const now = ctx.clock.now().getTime();
    for (let i = 0; i < MANY; i++) {
      const seen = new Date(now - 60_000 - Math.floor(i / 5) * 1000);
      await sessions.create({
        id: randomUUID(),
        userId: adminId,
        tokenHash: randomBytes(32).toString('hex'),
        securityStamp: stamp,
        nextSecurityStamps: null,
        createdAt: seen,
        lastSeenAt: seen,
        expiresAt: new Date(now + 3_600_000),
        reauthenticatedAt: seen,
        revokedAt: null,
        ip: '192.0.2.1',
        userAgent: `agent ${i}`,
        twoFactorSetupOnly: false,
      });
    }
    // 150 API users through the service, ten at a time; 150 groups in one INSERT.
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    for (let i = 0; i < MANY; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => apiUsers.create({ name: `Robot ${i + j}`, groups: [] })));
    }
    await ctx.app.get(DataSource).query(
      `INSERT INTO backoffice_group (alias, name) SELECT 'team-' || lpad(i::text, 3, '0'), 'Team ' || i FROM generate_series(0, ${MANY - 1}) i`,
    );
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** Walks a list page by page with `take`, following the `Link: rel="next"` header; returns the pages. */
  async function walk(path: string, take: number, itemsOf: (page: HttpResult) => unknown[]): Promise<HttpResult[]> {
    const pages: HttpResult[] = [];
    for (let skip = 0; ; skip += take) {
      const page = await admin.get(`${path}?skip=${skip}&take=${take}`);
      expect(page.status, page.text).toBe(200);
      pages.push(page);
      const link = page.headers.get('link');
      if (itemsOf(page).length < take || !link) {
        expect(link, `${path} skip=${skip}`).toBeNull();
        return pages;
      }
      expect(link).toBe(`</backoffice${path}?skip=${skip + take}&take=${take}>; rel="next"`);
      expect(pages.length).toBeLessThan(20);
    }
  }

  it('GET /auth/sessions: pages of take cover every live session exactly once, most recently seen first (ties by id), as a plain array', async () => {
    const ids = (page: HttpResult) => (page.body as Array<{ id: string }>).map((s) => s.id);
    const pages = await walk('/auth/sessions', 40, (page) => page.body);
    const all = pages.flatMap(ids);
    expect(all).toHaveLength(MANY + 1);
    expect(new Set(all).size).toBe(all.length);
    const rows = pages.flatMap((p) => p.body as Array<{ id: string; lastSeenAt: string; current: boolean }>);
    expect(rows[0].current).toBe(true);
    const sorted = [...rows].sort((a, b) => Date.parse(b.lastSeenAt) - Date.parse(a.lastSeenAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    expect(rows.map((r) => r.id)).toEqual(sorted.map((r) => r.id));
    // The same page twice: the same sessions in the same order.
    expect(ids(await admin.get('/auth/sessions?skip=40&take=40'))).toEqual(all.slice(40, 80));
  });

  it('GET /auth/sessions without parameters: the first 100 as before (a plain array) and a Link to the rest; a user with a few sessions gets them all, no Link', async () => {
    const first = await admin.get('/auth/sessions');
    expect(first.status).toBe(200);
    expect(Array.isArray(first.body)).toBe(true);
    expect(first.body).toHaveLength(100);
    expect(first.headers.get('link')).toBe('</backoffice/auth/sessions?skip=100&take=100>; rel="next"');
    const rest = await admin.get('/auth/sessions?skip=100');
    expect(rest.body).toHaveLength(MANY + 1 - 100);
    expect(rest.headers.get('link')).toBeNull();

    const someone = await make();
    const devices = [new HttpClient(ctx.url), new HttpClient(ctx.url), new HttpClient(ctx.url)];
    for (const device of devices) expect((await device.login(someone.email, TEST_PASSWORD)).status).toBe(200);
    const mine = await devices[0].get('/auth/sessions');
    expect(mine.body).toHaveLength(3);
    expect(mine.headers.get('link')).toBeNull();
    // Query fields other than skip and take are ignored as before (a cache buster such as jQuery's `_`).
    expect((await devices[0].get('/auth/sessions?_=1712345678')).body).toHaveLength(3);
  });

  it('GET /users/api: pages cover every API user exactly once, oldest first; total counts them all; the default page holds 100', async () => {
    const pages = await walk('/users/api', 40, (page) => page.body.items);
    const items = pages.flatMap((p) => p.body.items as Array<{ id: string; name: string; createdAt: string }>);
    expect(items).toHaveLength(MANY);
    expect(new Set(items.map((i) => i.id)).size).toBe(MANY);
    expect(new Set(items.map((i) => i.name))).toEqual(new Set(Array.from({ length: MANY }, (_, i) => `Robot ${i}`)));
    const sorted = [...items].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    expect(items.map((i) => i.id)).toEqual(sorted.map((i) => i.id));
    for (const page of pages) expect(page.body).toMatchObject({ total: MANY, totalExact: true });
    const first = await admin.get('/users/api');
    expect(first.body.items).toHaveLength(100);
    expect(first.body.total).toBe(MANY);
    expect(first.headers.get('link')).toBe('</backoffice/users/api?skip=100&take=100>; rel="next"');
  });

  it('GET /groups: pages cover every group exactly once, by alias; total counts them all; every page lists the permissions', async () => {
    const pages = await walk('/groups', 40, (page) => page.body.items);
    const aliases = pages.flatMap((p) => (p.body.items as Array<{ alias: string }>).map((g) => g.alias));
    const total = pages[0].body.total as number;
    expect(total).toBeGreaterThanOrEqual(MANY + 1);
    expect(aliases).toHaveLength(total);
    expect(new Set(aliases).size).toBe(total);
    expect(aliases).toEqual([...aliases].sort());
    for (let i = 0; i < MANY; i++) expect(aliases).toContain(`team-${String(i).padStart(3, '0')}`);
    for (const page of pages) {
      expect(page.body.total).toBe(total);
      expect(page.body.permissions.map((p: { key: string }) => p.key)).toContain('groups.manage');
    }
    const first = await admin.get('/groups');
    expect(first.body.items).toHaveLength(100);
    expect(first.headers.get('link')).toBe('</backoffice/groups?skip=100&take=100>; rel="next"');
  });

  it('a skip past the end is an empty page (no Link); take=200 is the largest page', async () => {
    const sessions = await admin.get('/auth/sessions?skip=10000');
    expect(sessions.status).toBe(200);
    expect(sessions.body).toEqual([]);
    expect(sessions.headers.get('link')).toBeNull();
    const groups = await admin.get('/groups?skip=10000');
    expect(groups.body.items).toEqual([]);
    expect(groups.body.total).toBeGreaterThan(MANY);
    const big = await admin.get('/users/api?take=200');
    expect(big.body.items).toHaveLength(MANY);
    expect(big.headers.get('link')).toBeNull();
  });

  it('a host store without the paged reads (listLivePage, listClientsPage, listPage) gets the same pages, cut from its full list', async () => {
    const paths = ['/auth/sessions?skip=37&take=41', '/users/api?skip=37&take=41', '/groups?skip=37&take=41', '/groups?skip=140&take=41'];
    const before = [];
    for (const path of paths) before.push(await admin.get(path));
    const stores: Array<[object, string]> = [
      [ctx.app.get(BACKOFFICE_SESSION_STORE), 'listLivePage'],
      [ctx.app.get(BACKOFFICE_API_CLIENT_STORE), 'listClientsPage'],
      [ctx.app.get(BACKOFFICE_GROUP_STORE), 'listPage'],
    ];
    // An own property `undefined` hides the class's method: the services see a store without the capability.
    for (const [store, method] of stores) Object.defineProperty(store, method, { value: undefined, configurable: true });
    try {
      for (const [i, path] of paths.entries()) {
        const after = await admin.get(path);
        expect(after.status, after.text).toBe(200);
        expect(after.body, path).toEqual(before[i].body);
        expect(after.headers.get('link'), path).toBe(before[i].headers.get('link'));
      }
    } finally {
      for (const [store, method] of stores) delete (store as Record<string, unknown>)[method];
    }
  });

  it('bad paging input (negative, zero, huge, non-numeric, Unicode digits, repeated) is 400 validation_failed naming the field, on each route', async () => {
    const cases: Array<[string, string]> = [
      ['take=-1', 'take'],
      ['take=0', 'take'],
      ['take=201', 'take'],
      ['take=99999999999999999999999', 'take'],
      ['take=abc', 'take'],
      ['take=1.5', 'take'],
      [`take=${encodeURIComponent('١٢')}`, 'take'],
      [`take=${encodeURIComponent('１２')}`, 'take'],
      ['take=10&take=20', 'take'],
      ['take[]=10', 'take[]'],
      ['skip=-1', 'skip'],
      ['skip=10001', 'skip'],
      ['skip=1e309', 'skip'],
      ['skip=NaN', 'skip'],
      [`skip=${encodeURIComponent('٣')}`, 'skip'],
      ['skip=1&skip=2', 'skip'],
      ['skip=%FF', 'skip'],
    ];
    for (const path of ['/auth/sessions', '/users/api', '/groups']) {
      for (const [query, field] of cases) {
        const result = await admin.get(`${path}?${query}`);
        expectClientError(result, 400);
        expect(result.body.code, `${path}?${query}`).toBe('validation_failed');
        expect(result.body.errors.map((e: { field: string }) => e.field), `${path}?${query}`).toContain(field);
      }
    }
  });
});
