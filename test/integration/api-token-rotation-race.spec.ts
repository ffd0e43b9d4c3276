import pg from 'pg';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import {
  InMemoryBackOfficeStores,
  type InMemoryBackOfficeApiClientStore,
  type InMemoryBackOfficeStoreSet,
  type InMemoryBackOfficeUserStore,
} from '../../src/backoffice-identity/index.js';
import { createIdentityApp, reauthenticate, signedInClient, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { lockWaiters, lockWaitersReach, until } from '../support/lock-waits.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * Runs `body` with two connections of its own: `blocker`, whose transaction holds the lock the test interleaves the
 * requests on (rolled back if the test left it open), and `observer`, which watches lock waits and reads what committed.
 */
async function withBlockerAndObserver(url: string, body: (blocker: pg.Client, observer: pg.Client) => Promise<void>): Promise<void> {
  const blocker = new pg.Client({ connectionString: url });
  const observer = new pg.Client({ connectionString: url });
  await blocker.connect();
  await observer.connect();
  try {
    await body(blocker, observer);
  } finally {
    await blocker.query('ROLLBACK').catch(() => undefined);
    await blocker.end().catch(() => undefined);
    await observer.end();
  }
}

/**
 * A client credentials grant that checked the (then current) secret before a rotation with an overlap, and writes its
 * token after the rotation revoked the tokens issued so far: the write finds the secret still accepted (it is the
 * previous one now), so the token is the previous secret's, and README promises those "end with the overlap".
 * The interleaving is held at the audit table (the grant lifts a timed disable and audits it first), no sleeps.
 */
describe.skipIf(dbKind() !== 'postgres')('a token request racing a secret rotation with an overlap', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'rotrace');
  const anon = () => new HttpClient(ctx.url);

  /** An API user in rot-readers with a timed disable whose `until` has passed: a grant lifts it (and audits that) after its secret check. */
  async function apiUserPastTimedDisable(name: string): Promise<{ id: string; clientId: string; clientSecret: string }> {
    await reauthenticate(admin);
    const created = await admin.post('/users/api', { name, groups: ['rot-readers'] });
    expect(created.status, created.text).toBe(201);
    const { user, clientId, clientSecret } = created.body as { user: { id: string }; clientId: string; clientSecret: string };
    const disabledUntil = new Date(ctx.clock.now().getTime() + 60_000).toISOString();
    expect((await admin.post(`/users/${user.id}/disable`, { reason: 'race', until: disabledUntil })).status).toBe(200);
    ctx.clock.advance(2 * 60_000);
    await reauthenticate(admin);
    return { id: user.id, clientId, clientSecret };
  }

  /**
   * Holds the audit table in `blocker`'s transaction, then: 1. a client credentials grant checks the (current) secret,
   * lifts the disable (committed) and waits at that audit entry, before its token write; 2. a rotation with a 1-minute
   * overlap commits (new secret, the old one still accepted, the tokens so far revoked) and waits at its own audit entry.
   * Returns both pending answers; the caller commits `blocker` to let them go on.
   */
  async function grantHeldBehindRotation(user: { id: string; clientId: string; clientSecret: string }, blocker: pg.Client, observer: pg.Client) {
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE backoffice_audit_entry IN SHARE MODE');
    const grant = anon().request('POST', '/auth/token', {
      raw: 'grant_type=client_credentials',
      contentType: 'application/x-www-form-urlencoded',
      headers: { authorization: basic(user.clientId, user.clientSecret) },
    });
    await until(async () => (await lockWaiters(observer)) >= 1);
    const rotation = admin.post(`/users/api/${user.id}/rotate-secret`, { overlapMinutes: 1 });
    await until(async () => (await lockWaiters(observer)) >= 2);
    return { grant, rotation };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    const boss = await make({ groups: ['admin'] });
    admin = anon();
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    expect((await admin.post('/groups', { alias: 'rot-readers', name: 'Readers', permissions: ['users.read'] })).status).toBe(201);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 3.3.1, 3.5.2: a token the old secret gets while a rotation (overlap 1 minute) commits ends with the overlap, not a full lifetime later', async () => {
    const user = await apiUserPastTimedDisable('Racer');
    await withBlockerAndObserver(db.url, async (blocker, observer) => {
      const { grant, rotation } = await grantHeldBehindRotation(user, blocker, observer);
      const committed = await observer.query('SELECT previous_secret_expires_at IS NOT NULL AS rotated FROM backoffice_api_client WHERE user_id = $1', [user.id]);
      expect(committed.rows[0].rotated).toBe(true);
      await blocker.query('COMMIT');
      const rotated = await rotation;
      expect(rotated.status, rotated.text).toBe(200);
      const granted = await grant;
      expect(granted.status, granted.text).toBe(200);
      // The answer states the lifetime the token was stored with: the overlap's minute, not the full 10 minutes (a
      // client scheduling its refresh by expires_in would otherwise meet 401s).
      const token = granted.body.access_token as string;
      const stored = await observer.query(
        `SELECT floor(extract(epoch FROM expires_at - created_at))::int AS lifetime, expires_at = (SELECT previous_secret_expires_at FROM backoffice_api_client WHERE user_id = $1) AS capped
           FROM backoffice_access_token WHERE token_hash = encode(sha256(convert_to($2, 'UTF8')), 'hex')`,
        [user.id, token],
      );
      expect(stored.rows[0]?.capped).toBe(true);
      expect(granted.body.expires_in, 'expires_in of a token capped at the overlap').toBe(stored.rows[0].lifetime);
      expect(granted.body.expires_in).toBeGreaterThanOrEqual(60);
      expect(granted.body.expires_in).toBeLessThan(120);
      const call = () => anon().get('/users?take=1', { headers: { authorization: `Bearer ${token}` } });
      expect((await call()).status).toBe(200);

      ctx.clock.advance(2 * 60_000); // the overlap ended; a full token lifetime (10 minutes) has not
      const after = await call();
      expect(after.status, 'a token of the previous secret outlived the rotation overlap').toBe(401);
    });
  });

  it('OWASP ASVS 4.0 3.3.1, 3.5.2: a grant whose token would end with an overlap that ran out while it waited is refused as invalid_client, not answered with a dead token', async () => {
    const user = await apiUserPastTimedDisable('Late racer');
    await withBlockerAndObserver(db.url, async (blocker, observer) => {
      const { grant, rotation } = await grantHeldBehindRotation(user, blocker, observer);
      // The overlap runs out before the grant goes on.
      ctx.clock.advance(2 * 60_000);
      await blocker.query('COMMIT');
      const rotated = await rotation;
      expect(rotated.status, rotated.text).toBe(200);
      const granted = await grant;
      expect(granted.status, `a token already past its end was answered: ${granted.text}`).toBe(401);
      expect(granted.body.code).toBe('invalid_client');
      expect(granted.headers.get('www-authenticate')).toMatch(/^Basic/);
    });
  });

  it('OWASP ASVS 5.0 15.4.2, 4.0 4.1.3: a lesser admin\'s rotation checked against the API user\'s old groups is not written after the API user was put in admin', async () => {
    expect((await admin.post('/groups', { alias: 'rot-desk', name: 'Desk', permissions: ['users.read', 'users.manage'] })).status).toBe(201);
    const deskUser = await make({ groups: ['rot-desk'] });
    const desk = anon();
    expect((await desk.login(deskUser.email, TEST_PASSWORD)).status).toBe(200);
    await reauthenticate(admin);
    const created = await admin.post('/users/api', { name: 'Promoted', groups: ['rot-readers'] });
    expect(created.status, created.text).toBe(201);
    const robotId = created.body.user.id as string;

    await withBlockerAndObserver(db.url, async (blocker, observer) => {
      const storedSecret = async () =>
        (await observer.query('SELECT secret_hash, rotated_at FROM backoffice_api_client WHERE user_id = $1', [robotId])).rows[0] as { secret_hash: string; rotated_at: Date | null };
      const before = await storedSecret();
      // The test holds the admin group's lock (the lock every membership change takes) in its own transaction: the
      // desk's rotation passes its checks (the robot holds only users.read), then waits for that lock; the test's
      // transaction puts the robot in admin and commits. Before the re-check the rotation went ahead on its stale check.
      await blocker.query('BEGIN');
      await blocker.query(`SELECT pg_advisory_xact_lock(hashtext('backoffice_group:admin'))`);
      const rotation = desk.post(`/users/api/${robotId}/rotate-secret`, {});
      await lockWaitersReach(observer, 1);
      await blocker.query(`INSERT INTO backoffice_user_group (user_id, group_id) SELECT $1, id FROM backoffice_group WHERE alias = 'admin'`, [robotId]);
      await blocker.query('COMMIT');
      const rotated = await rotation;
      // The desk may not hold the secret of an API user in admin.
      expect(rotated.status, `rotation of an API user made an admin meanwhile: ${rotated.text}`).toBe(403);
      expect(rotated.body.code).toBe('forbidden');
      expect(rotated.body.clientSecret).toBeUndefined();
      expect(await storedSecret(), 'a new secret was written').toEqual(before);
    });
  });
  it('a caller in admin may manage any API user: its rotation takes no admin lock (no re-check to make, as for /users/:id)', async () => {
    await reauthenticate(admin);
    const created = await admin.post('/users/api', { name: 'Admin-rotated', groups: ['rot-readers'] });
    expect(created.status, created.text).toBe(201);
    const robotId = created.body.user.id as string;
    await withBlockerAndObserver(db.url, async (blocker, observer) => {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT pg_advisory_xact_lock(hashtext('backoffice_group:admin'))`);
      const rotation = admin.post(`/users/api/${robotId}/rotate-secret`, {});
      const first = await Promise.race([rotation.then(() => 'answered'), lockWaitersReach(observer, 1).then(() => 'waited for the admin lock')]);
      await blocker.query('COMMIT');
      expect(first, 'an admin\'s rotation waited for the admin group lock').toBe('answered');
      const rotated = await rotation;
      expect(rotated.status, rotated.text).toBe(200);
    });
  });
});

/**
 * The same rotation on stores that cannot join the admin lock's transaction (the in-memory API-client store has no
 * `inTransactionOf`, nor may a host's): the re-check under the lock must still cover the secret's write, so the write
 * happens before the lock is released. The in-memory lock is a promise chain (KeyedMutex, no timers), so the
 * interleaving is held by pausing the store's real `rotateSecret` until the test opens it: the promotion asked for
 * the lock meanwhile, and one turn of the event loop is enough for it to run if the lock is free.
 */
describe('a rotation on an API-client store that cannot join the lock\'s transaction (in-memory stores)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let stores: InMemoryBackOfficeStoreSet;
  const make = userFactory(() => ctx, 'rotmem');

  beforeAll(async () => {
    db = await createTestDatabase();
    stores = InMemoryBackOfficeStores.create();
    ctx = await createIdentityApp(db, { identity: { stores, rateLimits: { enabled: false } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 5.0 15.4.2, 4.0 4.1.3: an API user cannot be put in admin between a lesser admin\'s re-check under the lock and the secret\'s write', async () => {
    const admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    expect((await admin.post('/groups', { alias: 'rotmem-desk', name: 'Desk', permissions: ['users.read', 'users.manage'] })).status).toBe(201);
    const desk = await signedInClient(ctx, (await make({ groups: ['rotmem-desk'] })).email);
    const created = await admin.post('/users/api', { name: 'Promoted in memory', groups: ['editor'] });
    expect(created.status, created.text).toBe(201);
    const robotId = created.body.user.id as string;

    const api = stores.apiClientStore as InMemoryBackOfficeApiClientStore;
    const users = stores.userStore as InMemoryBackOfficeUserStore;
    let entered!: () => void;
    const rotationWriting = new Promise<void>((resolve) => (entered = resolve));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let asked!: () => void;
    const promotionAsked = new Promise<void>((resolve) => (asked = resolve));
    let watching = false;
    let promotionRan = false;
    const realRotate = api.rotateSecret.bind(api);
    const realLock = users.withGroupLock.bind(users);
    Object.assign(api, {
      rotateSecret: async (...args: Parameters<InMemoryBackOfficeApiClientStore['rotateSecret']>) => {
        entered();
        await gate;
        return realRotate(...args);
      },
    });
    Object.assign(users, {
      withGroupLock: <T>(alias: string, work: (store: InMemoryBackOfficeUserStore) => Promise<T>): Promise<T> => {
        if (!watching || alias !== 'admin') return realLock(alias, work);
        asked();
        return realLock(alias, (store) => {
          promotionRan = true;
          return work(store);
        });
      },
    });
    try {
      // 1. The desk (allowed: the robot is only an editor) rotates; its secret's write is paused.
      const rotation = desk.post(`/users/api/${robotId}/rotate-secret`, {});
      await rotationWriting;
      // 2. An admin puts the robot in admin meanwhile: it asks for the admin lock.
      watching = true;
      const promotion = admin.request('PUT', `/users/${robotId}/groups`, { body: { groups: ['editor', 'admin'] } });
      await promotionAsked;
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(promotionRan, 'the promotion ran between the rotation\'s re-check under the admin lock and its write').toBe(false);
      open();
      const [rotated, promoted] = await Promise.all([rotation, promotion]);
      // The rotation was written before the promotion, while the robot was an editor: both stand.
      expect(rotated.status, rotated.text).toBe(200);
      expect(promoted.status, promoted.text).toBe(200);
    } finally {
      open();
      delete (api as Partial<InMemoryBackOfficeApiClientStore>).rotateSecret;
      delete (users as Partial<InMemoryBackOfficeUserStore>).withGroupLock;
    }
  });
});
