import pg from 'pg';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { lockWaitersReach } from '../support/lock-waits.js';
import { createIdentityApp, reauthenticate, signedInClient, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { independentCode } from '../support/oathtool.js';
import { BACKOFFICE_AUDIT_STORE, BackOfficeEvents, InMemoryBackOfficeStores, type BackOfficeAuditStore, type BackOfficeIdentityModuleOptions } from '../../src/backoffice-identity/index.js';

const KEY = 'test-encryption-key-0123456789abcdef';
const ROUTE = '/auth/2fa/recovery-codes';

/** The built-in TypeORM stores and the in-memory ones shipped for host apps' tests. */
const STORES: [string, () => BackOfficeIdentityModuleOptions][] = [
  ['TypeORM stores', () => ({})],
  ['in-memory stores', () => ({ stores: InMemoryBackOfficeStores.create() })],
];

describe.each(STORES)('New recovery codes and how many are left (POST /auth/2fa/recovery-codes, GET /auth/me), %s', (name, stores) => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let events: NotificationRecorder;
  const newUser = userFactory(() => ctx, 'codes-');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, twoFactor: { encryptionKey: KEY }, ...stores() } });
    events = NotificationRecorder.attach(ctx.app);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** A signed-in user who turned TOTP on through the routes; the enable answer's codes. */
  async function enrolled() {
    const user = await newUser();
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).body.status).toBe('success');
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status, setup.text).toBe(200);
    const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expect(enable.status, enable.text).toBe(200);
    return { user, http, recoveryCodes: enable.body.recoveryCodes as string[] };
  }

  /** Signs in with the password and `code` as the second step; the answer's status. */
  async function signInWithRecoveryCode(email: string, code: string): Promise<number> {
    const http = new HttpClient(ctx.url);
    const login = await http.login(email, TEST_PASSWORD);
    expect(login.body.status).toBe('requiresTwoFactor');
    return (await http.post('/auth/2fa', { provider: 'recovery', code })).status;
  }

  const left = async (http: HttpClient) => (await http.get('/auth/me')).body.recoveryCodesLeft;

  it('OWASP ASVS 4.0 2.6.x: 200 with 10 new codes that sign in; the old set is void at once; the count goes 10, 9 after a use, 10 after new codes', async () => {
    const { user, http, recoveryCodes } = await enrolled();
    expect(await left(http)).toBe(10);
    expect(await signInWithRecoveryCode(user.email, recoveryCodes[0])).toBe(200);
    expect(await left(http)).toBe(9);

    const fresh = await http.post(ROUTE, {});
    expect(fresh.status, fresh.text).toBe(200);
    expect(Object.keys(fresh.body)).toEqual(['recoveryCodes']);
    const codes = fresh.body.recoveryCodes as string[];
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
    expect(codes.filter((c) => recoveryCodes.includes(c))).toEqual([]);
    expect(await left(http)).toBe(10);

    expect(await signInWithRecoveryCode(user.email, recoveryCodes[1])).toBe(401);
    expect(await signInWithRecoveryCode(user.email, codes[3])).toBe(200);
    expect(await signInWithRecoveryCode(user.email, codes[3])).toBe(401);
    expect(await left(http)).toBe(9);
  });

  it('notifies backoffice.user.recovery-codes.regenerated (audited, never the codes); no other notification of 2FA; the session stays', async () => {
    const { user, http } = await enrolled();
    events.clear();
    const fresh = await http.post(ROUTE, {});
    expect(fresh.status).toBe(200);
    const raised = events.named(BackOfficeEvents.RecoveryCodesRegenerated, user.id);
    expect(raised).toHaveLength(1);
    expect(raised[0].performingUserId).toBe(user.id);
    expect(raised[0].auditDetails()).toEqual({ count: 10 });
    expect(events.named(BackOfficeEvents.TwoFactorEnabled, user.id)).toEqual([]);
    expect(events.named(BackOfficeEvents.TwoFactorDisabled, user.id)).toEqual([]);
    expect((await http.get('/auth/me')).status).toBe(200);
    if (name !== 'TypeORM stores') return;
    const trail = await ctx.app.get(DataSource).query(`SELECT details FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = $2`, [
      user.id,
      BackOfficeEvents.RecoveryCodesRegenerated,
    ]);
    expect(trail).toHaveLength(1);
    expect(JSON.stringify(trail[0].details)).not.toContain(fresh.body.recoveryCodes[0]);
  });

  it('OWASP ASVS 5.0 16.3.1 / 4.0 7.1.3: the audit trail tells a sign-in finished with a recovery code (and a wrong one) from a password-only one, never holding the code', async () => {
    const { user, recoveryCodes } = await enrolled();
    const store = ctx.app.get<BackOfficeAuditStore>(BACKOFFICE_AUDIT_STORE);
    const trail = async (event: string) => (await store.list({ userId: user.id, event, take: 10 })).items.map((e) => e.details);
    expect(await signInWithRecoveryCode(user.email, 'WRNG-WRNG-WRNG-WRNG')).toBe(401);
    expect(await signInWithRecoveryCode(user.email, recoveryCodes[0])).toBe(200);
    // Newest first: the recovery-code sign-in, then the password-only one of enrolled() (no second factor).
    expect(await trail(BackOfficeEvents.LoginSuccess)).toEqual([{ twoFactorProvider: 'recovery' }, {}]);
    expect(await trail(BackOfficeEvents.LoginFailed)).toEqual([{ reason: 'invalid_code', twoFactorProvider: 'recovery' }]);
    const all = JSON.stringify((await store.list({ userId: user.id, take: 200 })).items);
    expect(all).not.toContain(recoveryCodes[0]);
    expect(all).not.toContain(recoveryCodes[0].replaceAll('-', ''));
  });

  it('OWASP ASVS 4.0 3.7.1: 401 reauthentication_required without a recent sign-in (a stolen session mints no codes); after the step-up, 200', async () => {
    const { user, http, recoveryCodes } = await enrolled();
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (5)
    try {
      const refused = await http.post(ROUTE, {});
      expectClientError(refused, 401);
      expect(refused.body.code).toBe('reauthentication_required');
      expect(await signInWithRecoveryCode(user.email, recoveryCodes[0])).toBe(200);
      await reauthenticate(http);
      expect((await http.post(ROUTE, {})).status).toBe(200);
    } finally {
      ctx.clock.advance(-6 * 60_000);
    }
  });

  it('409 two_factor_not_enabled with 2FA off; GET /auth/me has recoveryCodesLeft null', async () => {
    const user = await newUser();
    const http = new HttpClient(ctx.url);
    await http.login(user.email, TEST_PASSWORD);
    const refused = await http.post(ROUTE, {});
    expectClientError(refused, 409);
    expect(refused.body.code).toBe('two_factor_not_enabled');
    expect(await left(http)).toBeNull();
    expect(events.named(BackOfficeEvents.RecoveryCodesRegenerated, user.id)).toEqual([]);
  });

  it('OWASP ASVS 4.0 4.2.2: 403 xsrf_failed without the X-XSRF-TOKEN header, nothing changed; 401 without a session', async () => {
    const { user, http, recoveryCodes } = await enrolled();
    const refused = await http.request('POST', ROUTE, { body: {}, xsrf: false });
    expectClientError(refused, 403);
    expect(refused.body.code).toBe('xsrf_failed');
    const wrong = await http.request('POST', ROUTE, { body: {}, headers: { 'x-xsrf-token': 'not-the-cookie' } });
    expectClientError(wrong, 403);
    expect(await signInWithRecoveryCode(user.email, recoveryCodes[0])).toBe(200);
    const anonymous = await new HttpClient(ctx.url).post(ROUTE, {});
    expectClientError(anonymous, 401);
    expect(anonymous.body.code).toBe('unauthenticated');
  });

  it('OWASP ASVS 4.0 5.1.x: bad bodies are a clean 400, nothing changed', async () => {
    const { user, http, recoveryCodes } = await enrolled();
    const cases: Array<{ name: string; raw?: string; body?: unknown }> = [
      { name: 'invalid JSON', raw: '{"a":' },
      { name: 'JSON array', raw: '[1,2,3]' },
      { name: 'JSON string', raw: '"text"' },
      { name: 'JSON number', raw: '42' },
      { name: 'unknown field', body: { count: 1000 } },
      { name: 'prototype pollution key', raw: '{"__proto__":{"admin":true}}' },
      { name: 'deeply nested', raw: '{"a":'.repeat(40) + '1' + '}'.repeat(40) },
    ];
    for (const c of cases) {
      const result = await http.request('POST', ROUTE, c.raw !== undefined ? { raw: c.raw } : { body: c.body });
      expectClientError(result, 400);
    }
    expect(events.named(BackOfficeEvents.RecoveryCodesRegenerated, user.id)).toEqual([]);
    expect(await left(http)).toBe(10);
    expect(await signInWithRecoveryCode(user.email, recoveryCodes[0])).toBe(200);
  });

  it.skipIf(name !== 'TypeORM stores' || dbKind() !== 'postgres')(
    'OWASP ASVS 4.0 2.6.x, 1.11.3: new codes asked for while 2FA is being turned off: 409 two_factor_not_enabled and no code left with 2FA off (PostgreSQL: a row lock holds both requests, the disable first)',
    async () => {
      const { user, http } = await enrolled();
      // Hold the user's row: the disable waits on it first, then the new codes (both past their checks of the user).
      const blocker = new pg.Client({ connectionString: db.url });
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query('SELECT 1 FROM backoffice_user WHERE id = $1 FOR NO KEY UPDATE', [user.id]);
        const disable = http.post('/auth/2fa/disable', { password: TEST_PASSWORD });
        await lockWaitersReach(blocker, 1);
        const regenerate = http.post(ROUTE, {});
        await lockWaitersReach(blocker, 2);
        await blocker.query('COMMIT');
        const [off, fresh] = await Promise.all([disable, regenerate]);
        expect(off.status, off.text).toBe(200);
        expect([fresh.status, fresh.body.code]).toEqual([409, 'two_factor_not_enabled']);
        expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(false);
        expect(await ctx.userManager.countRecoveryCodes(user)).toBe(0);
      } finally {
        await blocker.end().catch(() => undefined);
      }
    },
  );

  it(
    'OWASP ASVS 4.0 2.6.x, 1.11.3: an admin 2FA reset landing between the enable\'s flag and its recovery codes (a slow TwoFactorEnabled listener): no code is left stored with 2FA off',
    async () => {
      const admin = await signedInClient(ctx, (await newUser({ groups: ['admin'] })).email);
      const user = await newUser();
      const http = await signedInClient(ctx, user.email);
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      expect(setup.status, setup.text).toBe(200);
      // A host listener (a webhook) holds the enable after its flag is written; the admin's reset goes through meanwhile.
      const emitter = ctx.app.get(EventEmitter2);
      const resets: Array<{ status: number; text: string }> = [];
      const resetMeanwhile = async (notification: { affectedUserId: string | null }) => {
        if (notification.affectedUserId === user.id) resets.push(await admin.post(`/users/${user.id}/2fa/reset`));
      };
      emitter.on(BackOfficeEvents.TwoFactorEnabled, resetMeanwhile);
      let enable;
      try {
        enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
      } finally {
        emitter.off(BackOfficeEvents.TwoFactorEnabled, resetMeanwhile);
      }
      expect(resets.map((r) => [r.status, r.text])).toEqual([[200, expect.any(String)]]);
      expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(false);
      expect(await ctx.userManager.countRecoveryCodes(user)).toBe(0);
      // The enable is told 2FA is off (no codes shown that would not sign in).
      expect([enable.status, enable.body.code]).toEqual([409, 'two_factor_not_enabled']);
    },
  );

  it('two new sets asked for at once: only one whole set works (the last written), never a mix, and 10 are left', async () => {
    const { user, http } = await enrolled();
    for (let round = 0; round < 3; round++) {
      const [a, b] = await Promise.all([http.post(ROUTE, {}), http.post(ROUTE, {})]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(await left(http)).toBe(10);
      const stored = (await ctx.userManager.findById(user.id))!;
      const works = async (codes: string[]) => {
        const used: boolean[] = [];
        for (const code of codes) used.push(await ctx.userManager.redeemRecoveryCode(stored, code));
        return used;
      };
      const worksA = await works(a.body.recoveryCodes);
      const worksB = await works(b.body.recoveryCodes);
      const oneWholeSet = (worksA.every(Boolean) && !worksB.some(Boolean)) || (worksB.every(Boolean) && !worksA.some(Boolean));
      expect({ round, worksA, worksB, oneWholeSet }).toMatchObject({ oneWholeSet: true });
    }
  });
});
