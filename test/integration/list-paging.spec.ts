import { DataSource } from 'typeorm';
import {
  BACKOFFICE_API_CLIENT_STORE,
  BACKOFFICE_GROUP_STORE,
  BACKOFFICE_SESSION_STORE,
  BackOfficeApiUserService,
  BackOfficeSessionService,
  type BackOfficeSession,
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
  const MANY = 1010;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const boss = await make({ groups: ['admin'] });
    adminId = boss.id;
    admin = new HttpClient(ctx.url);
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);

    // MANY more live sessions of the admin, five per last-seen time (ties the order has to break the same way each
    // time), in one INSERT: over the default page of 1000, so the default cut and its Link are tested.
    const sql = ctx.app.get(DataSource);
    const stamp = (await ctx.userManager.findById(adminId))!.securityStamp;
    const now = ctx.clock.now().getTime();
    await sql.query(
      `INSERT INTO backoffice_session (id, user_id, token_hash, security_stamp, next_security_stamps, created_at, last_seen_at, expires_at,
         reauthenticated_at, revoked_at, ip, user_agent, two_factor_setup_only)
       SELECT gen_random_uuid(), $1, md5('a' || i) || md5('b' || i), $2, NULL, t, t, $3, t, NULL, '192.0.2.1', 'agent ' || i, false
         FROM generate_series(0, ${MANY - 1}) i, LATERAL (SELECT $4::timestamptz - (i / 5) * interval '1 second' AS t) seen`,
      [adminId, stamp, new Date(now + 3_600_000), new Date(now - 60_000)],
    );
    // MANY API users: ten through the service, the rest copies of the first one's rows (user and API client) by SQL,
    // each a millisecond younger; MANY groups in one INSERT.
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    for (let i = 0; i < 10; i++) await apiUsers.create({ name: `Robot ${i}`, groups: [] });
    const columns: Array<{ column_name: string }> = await sql.query(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'backoffice_user' AND column_name <> 'id' AND is_generated = 'NEVER' ORDER BY ordinal_position`,
    );
    const made: Record<string, string> = {
      username: `'robot-' || i`,
      normalized_username: `'ROBOT-' || i`,
      email: `'robot-' || i || '@api-users.invalid'`,
      normalized_email: `'ROBOT-' || i || '@API-USERS.INVALID'`,
      name: `'Robot ' || i`,
      created_at: `u.created_at + i * interval '1 millisecond'`,
    };
    const names = columns.map((c) => c.column_name);
    await sql.query(
      `WITH template AS (SELECT u.* FROM backoffice_user u JOIN backoffice_api_client c ON c.user_id = u.id ORDER BY u.created_at DESC, u.id DESC LIMIT 1),
       users AS (
         INSERT INTO backoffice_user (${names.join(', ')})
         SELECT ${names.map((n) => made[n] ?? `u.${n}`).join(', ')} FROM template u, generate_series(10, ${MANY - 1}) i
         RETURNING id, created_at)
       INSERT INTO backoffice_api_client (user_id, client_id, secret_hash, created_at)
       SELECT id, 'boc_copy_' || md5(id::text), md5(id::text) || md5(id::text), created_at FROM users`,
    );
    await sql.query(
      `INSERT INTO backoffice_group (alias, name) SELECT 'team-' || lpad(i::text, 4, '0'), 'Team ' || i FROM generate_series(0, ${MANY - 1}) i`,
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
    const pages = await walk('/auth/sessions', 150, (page) => page.body);
    const all = pages.flatMap(ids);
    expect(all).toHaveLength(MANY + 1);
    expect(new Set(all).size).toBe(all.length);
    const rows = pages.flatMap((p) => p.body as Array<{ id: string; lastSeenAt: string; current: boolean }>);
    expect(rows[0].current).toBe(true);
    const sorted = [...rows].sort((a, b) => Date.parse(b.lastSeenAt) - Date.parse(a.lastSeenAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    expect(rows.map((r) => r.id)).toEqual(sorted.map((r) => r.id));
    // The same page twice: the same sessions in the same order.
    expect(ids(await admin.get('/auth/sessions?skip=150&take=150'))).toEqual(all.slice(150, 300));
  });

  it('GET /auth/sessions without parameters: the first 1000 (a plain array) and a Link to the rest; a user with a few sessions gets them all, no Link', async () => {
    const first = await admin.get('/auth/sessions');
    expect(first.status).toBe(200);
    expect(Array.isArray(first.body)).toBe(true);
    expect(first.body).toHaveLength(1000);
    expect(first.headers.get('link')).toBe('</backoffice/auth/sessions?skip=1000&take=1000>; rel="next"');
    const rest = await admin.get('/auth/sessions?skip=1000');
    expect(rest.body).toHaveLength(MANY + 1 - 1000);
    // The two default pages are the whole list, each session once.
    expect(new Set([...first.body, ...rest.body].map((s: { id: string }) => s.id)).size).toBe(MANY + 1);
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

  it('GET /users/api: pages cover every API user exactly once, oldest first; total counts them all; the default page holds 1000', async () => {
    const pages = await walk('/users/api', 150, (page) => page.body.items);
    const items = pages.flatMap((p) => p.body.items as Array<{ id: string; name: string; createdAt: string }>);
    expect(items).toHaveLength(MANY);
    expect(new Set(items.map((i) => i.id)).size).toBe(MANY);
    expect(new Set(items.map((i) => i.name))).toEqual(new Set(Array.from({ length: MANY }, (_, i) => `Robot ${i}`)));
    const sorted = [...items].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    expect(items.map((i) => i.id)).toEqual(sorted.map((i) => i.id));
    for (const page of pages) expect(page.body).toMatchObject({ total: MANY, totalExact: true });
    const first = await admin.get('/users/api');
    expect(first.body.items).toHaveLength(1000);
    expect(first.body.total).toBe(MANY);
    expect(first.headers.get('link')).toBe('</backoffice/users/api?skip=1000&take=1000>; rel="next"');
  });

  it('GET /groups: pages cover every group exactly once, by alias; total counts them all; every page lists the permissions', async () => {
    const pages = await walk('/groups', 150, (page) => page.body.items);
    const aliases = pages.flatMap((p) => (p.body.items as Array<{ alias: string }>).map((g) => g.alias));
    const total = pages[0].body.total as number;
    expect(total).toBeGreaterThanOrEqual(MANY + 1);
    expect(aliases).toHaveLength(total);
    expect(new Set(aliases).size).toBe(total);
    expect(aliases).toEqual([...aliases].sort());
    const aliasSet = new Set(aliases);
    for (let i = 0; i < MANY; i++) expect(aliasSet.has(`team-${String(i).padStart(4, '0')}`), `team-${i}`).toBe(true);
    for (const page of pages) {
      expect(page.body.total).toBe(total);
      expect(page.body.permissions.map((p: { key: string }) => p.key)).toContain('groups.manage');
    }
    const first = await admin.get('/groups');
    expect(first.body.items).toHaveLength(1000);
    expect(first.body.items.map((g: { alias: string }) => g.alias)).toEqual(aliases.slice(0, 1000));
    expect(first.headers.get('link')).toBe('</backoffice/groups?skip=1000&take=1000>; rel="next"');
  });

  it('a skip past the end is an empty page (no Link); take=1000 is the largest page', async () => {
    const sessions = await admin.get('/auth/sessions?skip=10000');
    expect(sessions.status).toBe(200);
    expect(sessions.body).toEqual([]);
    expect(sessions.headers.get('link')).toBeNull();
    const groups = await admin.get('/groups?skip=10000');
    expect(groups.body.items).toEqual([]);
    expect(groups.body.total).toBeGreaterThan(MANY);
    const big = await admin.get('/users/api?take=1000&skip=10');
    expect(big.body.items).toHaveLength(MANY - 10);
    expect(big.headers.get('link')).toBeNull();
  });

  it('a host store without the paged reads (listLivePage, listClientsPage, listPage) gets the same pages, cut from its full list', async () => {
    const paths = ['/auth/sessions?skip=37&take=41', '/users/api?skip=37&take=41', '/groups?skip=37&take=41', '/groups?skip=140&take=41', '/auth/sessions?skip=980&take=41', '/groups?skip=990&take=41', '/auth/sessions', '/groups'];
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

  it('a host store whose listLive answers a frozen, cached array (no listLivePage): pages and list() work and leave that array as it was', async () => {
    const store = ctx.app.get<BackOfficeSessionStore>(BACKOFFICE_SESSION_STORE);
    const sessionService = ctx.app.get(BackOfficeSessionService);
    const admin0 = (await ctx.userManager.findById(adminId))!;
    const before = await admin.get('/auth/sessions?skip=37&take=41');
    const whole = await sessionService.list(admin0);
    // The store caches one array (oldest seen first, not the answer's order) and hands it out frozen each time.
    let cached: readonly BackOfficeSession[] | undefined;
    const listLive = store.listLive.bind(store);
    Object.defineProperty(store, 'listLivePage', { value: undefined, configurable: true });
    Object.defineProperty(store, 'listLive', {
      configurable: true,
      value: async (...args: Parameters<BackOfficeSessionStore['listLive']>) => {
        cached ??= Object.freeze([...(await listLive(...args))].reverse());
        return cached as BackOfficeSession[];
      },
    });
    try {
      const after = await admin.get('/auth/sessions?skip=37&take=41');
      expect(after.status, after.text).toBe(200);
      expect(after.body).toEqual(before.body);
      expect(after.headers.get('link')).toBe(before.headers.get('link'));
      const snapshot = [...cached!];
      expect((await sessionService.list(admin0)).map((s) => s.id)).toEqual(whole.map((s) => s.id));
      expect((await admin.get('/auth/sessions?skip=0&take=5')).status).toBe(200);
      expect(cached).toEqual(snapshot);
      expect(Object.isFrozen(cached)).toBe(true);
    } finally {
      delete (store as unknown as Record<string, unknown>).listLivePage;
      delete (store as unknown as Record<string, unknown>).listLive;
    }
  });

  it('bad paging input (negative, zero, huge, non-numeric, Unicode digits, repeated) is 400 validation_failed naming the field, on each route', async () => {
    const cases: Array<[string, string]> = [
      ['take=-1', 'take'],
      ['take=0', 'take'],
      ['take=1001', 'take'],
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

  it('OWASP ASVS 4.0 5.1.4: every numeric query field of every route (skip / take of /auth/sessions, /users/api, /groups, /users, /audit) refuses signs, spaces and non-ASCII digits alike (400 validation_failed, code isInt, naming the field); plain ASCII digits still answer 200', async () => {
    const routes = ['/auth/sessions', '/users/api', '/groups', '/users', '/audit'];
    const values = ['%C2%A01', '1%20', '%201', '%2B1', '-0', '%091', '0x1', '1_0', '%E2%80%891', encodeURIComponent('١'), ''];
    for (const path of routes) {
      for (const field of ['skip', 'take']) {
        for (const value of values) {
          const query = `${field}=${value}`;
          const result = await admin.get(`${path}?${query}`);
          expectClientError(result, 400);
          expect(result.body.code, `${path}?${query}`).toBe('validation_failed');
          expect(result.body.errors, `${path}?${query}`).toContainEqual(expect.objectContaining({ field, code: 'isInt' }));
        }
      }
      const fine = await admin.get(`${path}?skip=0&take=1`);
      expect(fine.status, `${path} ${fine.text}`).toBe(200);
      expect((await admin.get(`${path}?skip=01&take=007`)).status, path).toBe(200);
    }
  });

  it('a numeric query field that is not a number gets the type error alone (code isInt first and only, no min / max beside it), on every route; a number out of bounds still gets its bound', async () => {
    for (const path of ['/auth/sessions', '/users/api', '/groups', '/users', '/audit']) {
      for (const field of ['skip', 'take']) {
        for (const value of ['abc', 'NaN', '1e309', '%2B1', '-1.5', `${field}=1&${field}`]) {
          const query = value.includes('=') ? value.replace(/&[a-z]+$/, `&${field}=2`) : `${field}=${value}`;
          const result = await admin.get(`${path}?${query}`);
          expectClientError(result, 400);
          const own = result.body.errors.filter((e: { field: string }) => e.field === field);
          expect(own.map((e: { code: string }) => e.code), `${path}?${query}`).toEqual(['isInt']);
          expect(result.body.errors[0], `${path}?${query}`).toMatchObject({ field, code: 'isInt' });
        }
      }
      const tooDeep = await admin.get(`${path}?skip=10001&take=0`);
      expectClientError(tooDeep, 400);
      expect(tooDeep.body.errors.map((e: { field: string; code: string }) => `${e.field}:${e.code}`).sort(), path).toEqual(['skip:max', 'take:min']);
    }
  });
});
