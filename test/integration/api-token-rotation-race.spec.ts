import pg from 'pg';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, reauthenticate, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { lockWaiters, until } from '../support/lock-waits.js';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * A client credentials grant that checked the (then current) secret before a rotation with an overlap, and writes its
 * token after the rotation revoked the tokens issued so far: the write finds the secret still accepted (it is the
 * previous one now), so the token is the previous secret's, and README promises those "end with the overlap".
 * The interleaving is held with a row lock on the API user (the grant lifts a timed disable first), no sleeps.
 */
describe.skipIf(dbKind() !== 'postgres')('a token request racing a secret rotation with an overlap', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'rotrace');
  const anon = () => new HttpClient(ctx.url);

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
    await reauthenticate(admin);
    const created = await admin.post('/users/api', { name: 'Racer', groups: ['rot-readers'] });
    expect(created.status, created.text).toBe(201);
    const { user, clientId, clientSecret } = created.body as { user: { id: string }; clientId: string; clientSecret: string };
    // A timed disable whose `until` has passed: the grant's first write after its secret check is the lift (on the
    // user's row), which the test holds; the rotation touches the client's row, which is free.
    const disabledUntil = new Date(ctx.clock.now().getTime() + 60_000).toISOString();
    expect((await admin.post(`/users/${user.id}/disable`, { reason: 'race', until: disabledUntil })).status).toBe(200);
    ctx.clock.advance(2 * 60_000);

    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    try {
      await blocker.query('BEGIN');
      // Conflicts with the lift's write of the user, not with the audit entries' foreign-key checks.
      await blocker.query('SELECT 1 FROM backoffice_user WHERE id = $1 FOR NO KEY UPDATE', [user.id]);
      // 1. The grant checks the (current) secret, then waits to lift the disable, before its token write.
      const grant = anon().request('POST', '/auth/token', {
        raw: 'grant_type=client_credentials',
        contentType: 'application/x-www-form-urlencoded',
        headers: { authorization: basic(clientId, clientSecret) },
      });
      await until(async () => (await lockWaiters(observer)) >= 1);
      // 2. The rotation commits: new secret, the old one accepted for 1 minute, the tokens so far revoked.
      await reauthenticate(admin);
      const rotated = await admin.post(`/users/api/${user.id}/rotate-secret`, { overlapMinutes: 1 });
      expect(rotated.status, rotated.text).toBe(200);
      await blocker.query('COMMIT');
      const granted = await grant;
      expect(granted.status, granted.text).toBe(200);
      const token = granted.body.access_token as string;
      const call = () => anon().get('/users?take=1', { headers: { authorization: `Bearer ${token}` } });
      expect((await call()).status).toBe(200);

      ctx.clock.advance(2 * 60_000); // the overlap ended; a full token lifetime (10 minutes) has not
      const after = await call();
      expect(after.status, 'a token of the previous secret outlived the rotation overlap').toBe(401);
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end().catch(() => undefined);
      await observer.end();
    }
  });
});
