import { randomBytes } from 'node:crypto';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { DataSource } from 'typeorm';
import { BackOfficeEvents, type BackOfficeIdentityModuleOptions, type BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { withIp } from '../support/fixed-client-ip.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';

const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';
const PASSKEYS = { rpId: RP_ID, rpName: 'Acme back office', origins: [ORIGIN] };

/** A client address of its own per app, so the sign-ins of one suite run never share a login limit with another's. */
const uniqueIp = () => `198.18.${randomBytes(1)[0]}.${randomBytes(1)[0]}`;

/**
 * The signed-in user's own renames (`PUT /auth/me` name, `PATCH /auth/passkeys/:id`) each write an audit entry; with
 * `audit.retentionDays` 0 and lists newest first, a stolen session cookie could bury the earlier entries under
 * renames (OWASP ASVS 5.0 16.3.x log integrity / 4.0 11.1.4 anti-automation). An unchanged name writes and audits
 * nothing; each user's renames are limited (`rateLimits.profileChangePerUser`).
 */
describe('own profile and passkey renames: no-op renames, a per-user limit', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function app(options: BackOfficeIdentityModuleOptions = {}): Promise<{ ctx: IdentityApp; newUser: () => Promise<BackOfficeUser> }> {
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { passkeys: PASSKEYS, ...options }) });
    return { ctx, newUser: userFactory(() => ctx, `pel${randomBytes(3).toString('hex')}-`) };
  }

  async function signedIn(ctx: IdentityApp, user: BackOfficeUser): Promise<HttpClient> {
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).body.status).toBe('success');
    return http;
  }

  async function registerPasskey(http: HttpClient, name = 'Laptop'): Promise<{ id: string; name: string }> {
    const options = await http.post('/auth/passkeys/options', {});
    expect(options.status, options.text).toBe(200);
    const created = await http.post('/auth/passkeys', { name, credential: new SoftwareAuthenticator(ORIGIN, RP_ID).register(options.body) });
    expect(created.status, created.text).toBe(201);
    return created.body;
  }

  /** The audit entries of `event` about `userId`, oldest first. */
  async function audited(ctx: IdentityApp, event: string, userId: string): Promise<Array<Record<string, unknown>>> {
    const rows = await ctx.app.get(DataSource).query(
      `SELECT details FROM backoffice_audit_entry WHERE event = $1 AND affected_user_id = $2 ORDER BY created_at, id`,
      [event, userId],
    );
    return rows.map((row: { details: Record<string, unknown> }) => row.details);
  }

  /** Counts the notifications named `event` about `userId` while `run` runs. */
  async function notificationsDuring(ctx: IdentityApp, event: string, userId: string, run: () => Promise<void>): Promise<number> {
    const emitter = ctx.app.get(EventEmitter2);
    let count = 0;
    const listener = (notification: { affectedUserId: string | null }) => {
      if (notification.affectedUserId === userId) count++;
    };
    emitter.on(event, listener);
    try {
      await run();
    } finally {
      emitter.off(event, listener);
    }
    return count;
  }

  it('OWASP ASVS 5.0 16.3.x / 4.0 11.1.4: PATCH /auth/passkeys/:id with the name the passkey already has (after trimming and NFC) answers 200 with the passkey as before, and writes and audits nothing', async () => {
    const { ctx, newUser } = await app();
    try {
      const user = await newUser();
      const http = await signedIn(ctx, user);
      const passkey = await registerPasskey(http, 'Caf\u00e9');
      const rename = vi.spyOn(ctx.userManager.store as unknown as { renamePasskey: (...args: unknown[]) => Promise<boolean> }, 'renamePasskey');
      const answers: Array<{ status: number; body: unknown }> = [];
      const sent = await notificationsDuring(ctx, BackOfficeEvents.PasskeyRenamed, user.id, async () => {
        for (const name of ['Caf\u00e9', '  Caf\u00e9 ', 'Cafe\u0301']) {
          const res = await http.request('PATCH', `/auth/passkeys/${passkey.id}`, { body: { name } });
          answers.push({ status: res.status, body: res.body });
        }
      });
      const storeWrites = rename.mock.calls.length;
      rename.mockRestore();
      const listed = (await http.get('/auth/passkeys')).body.find((p: { id: string }) => p.id === passkey.id);
      expect(answers).toEqual([0, 1, 2].map(() => ({ status: 200, body: listed })));
      expect({ sent, storeWrites, audit: await audited(ctx, BackOfficeEvents.PasskeyRenamed, user.id) }).toEqual({ sent: 0, storeWrites: 0, audit: [] });
      // A real rename is still written and audited once.
      const renamed = await http.request('PATCH', `/auth/passkeys/${passkey.id}`, { body: { name: 'Phone' } });
      expect({ status: renamed.status, name: renamed.body.name }).toEqual({ status: 200, name: 'Phone' });
      expect(await audited(ctx, BackOfficeEvents.PasskeyRenamed, user.id)).toEqual([{ passkeyId: passkey.id, passkeyName: 'Phone', previousName: 'Caf\u00e9' }]);
    } finally {
      await ctx.close();
    }
  });

  it('OWASP ASVS 5.0 16.3.x / 4.0 11.1.4: PUT /auth/me with the name the user already has (after trimming and NFC) answers 200 with the user, and writes and audits nothing', async () => {
    const { ctx, newUser } = await app();
    try {
      const user = await newUser({ name: 'Ad\u00e9le Lovelace' });
      const http = await signedIn(ctx, user);
      const me = (await http.get('/auth/me')).body;
      const write = vi.spyOn(ctx.userManager.store, 'updateProfile');
      const answers: Array<{ status: number; body: unknown }> = [];
      const sent = await notificationsDuring(ctx, BackOfficeEvents.ProfileUpdated, user.id, async () => {
        for (const name of ['Ad\u00e9le Lovelace', ' Ad\u00e9le Lovelace  ', 'Ade\u0301le Lovelace']) {
          const res = await http.request('PUT', '/auth/me', { body: { name } });
          answers.push({ status: res.status, body: res.body });
        }
      });
      const storeWrites = write.mock.calls.length;
      write.mockRestore();
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      for (const answer of answers) expect(answer.body).toMatchObject({ id: me.id, name: me.name, email: me.email });
      expect({ sent, storeWrites, audit: await audited(ctx, BackOfficeEvents.ProfileUpdated, user.id) }).toEqual({ sent: 0, storeWrites: 0, audit: [] });
      // The route takes no other field (so nothing else to compare): an email in the body is refused.
      expectClientError(await http.request('PUT', '/auth/me', { body: { name: 'Ad\u00e9le Lovelace', email: user.email } }), 400);
      const renamed = await http.request('PUT', '/auth/me', { body: { name: 'Ada Lovelace' } });
      expect({ status: renamed.status, name: renamed.body.name }).toEqual({ status: 200, name: 'Ada Lovelace' });
      expect(await audited(ctx, BackOfficeEvents.ProfileUpdated, user.id)).toEqual([{ changes: { name: { from: 'Ad\u00e9le Lovelace', to: 'Ada Lovelace' } } }]);
    } finally {
      await ctx.close();
    }
  });

  function expectLimited(result: HttpResult) {
    expectClientError(result, 429);
    expect(result.body).toMatchObject({ statusCode: 429, code: 'too_many_requests' });
    expect(Number(result.headers.get('retry-after'))).toBeGreaterThan(0);
  }

  it('OWASP ASVS 4.0 11.1.4 / 5.0 16.3.x: rateLimits.profileChangePerUser bounds a user\'s renames: N alternating passkey renames, then 429 too_many_requests with nothing written or audited; another user keeps their budget', async () => {
    const { ctx, newUser } = await app({ rateLimits: { profileChangePerUser: 3 } });
    try {
      const user = await newUser();
      const http = await signedIn(ctx, user);
      const passkey = await registerPasskey(http);
      const statuses = [];
      for (const name of ['A', 'B', 'A']) statuses.push((await http.request('PATCH', `/auth/passkeys/${passkey.id}`, { body: { name } })).status);
      expect(statuses).toEqual([200, 200, 200]);
      expectLimited(await http.request('PATCH', `/auth/passkeys/${passkey.id}`, { body: { name: 'B' } }));
      expect((await audited(ctx, BackOfficeEvents.PasskeyRenamed, user.id)).map((d) => d.passkeyName)).toEqual(['A', 'B', 'A']);
      expect((await http.get('/auth/passkeys')).body.map((p: { name: string }) => p.name)).toEqual(['A']);
      // One counter for both routes: PUT /auth/me is refused as well, and writes nothing.
      expectLimited(await http.request('PUT', '/auth/me', { body: { name: 'Someone else' } }));
      expect((await http.get('/auth/me')).body.name).toBe(user.name);
      expect(await audited(ctx, BackOfficeEvents.ProfileUpdated, user.id)).toEqual([]);
      // Another user is not limited by that one's counter.
      const other = await signedIn(ctx, await newUser());
      expect((await other.request('PUT', '/auth/me', { body: { name: 'Other' } })).status).toBe(200);
    } finally {
      await ctx.close();
    }
  });

  it('OWASP ASVS 4.0 11.1.4 / 5.0 16.3.x: PUT /auth/me with alternating names is limited by default to 30 per hour per user (then 429, nothing audited), the counter shared with passkey renames', async () => {
    const { ctx, newUser } = await app();
    try {
      const user = await newUser();
      const http = await signedIn(ctx, user);
      const passkey = await registerPasskey(http);
      const statuses = [];
      for (let i = 0; i < 29; i++) statuses.push((await http.request('PUT', '/auth/me', { body: { name: i % 2 === 0 ? 'Name A' : 'Name B' } })).status);
      statuses.push((await http.request('PATCH', `/auth/passkeys/${passkey.id}`, { body: { name: 'Phone' } })).status);
      expect(statuses.every((s) => s === 200), String(statuses)).toBe(true);
      expectLimited(await http.request('PUT', '/auth/me', { body: { name: 'Name C' } }));
      expectLimited(await http.request('PATCH', `/auth/passkeys/${passkey.id}`, { body: { name: 'Tablet' } }));
      expect(await audited(ctx, BackOfficeEvents.ProfileUpdated, user.id)).toHaveLength(29);
      expect(await audited(ctx, BackOfficeEvents.PasskeyRenamed, user.id)).toHaveLength(1);
      expect((await http.get('/auth/me')).body.name).toBe('Name A');
    } finally {
      await ctx.close();
    }
  });
});
