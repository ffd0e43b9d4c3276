import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  BACKOFFICE_TWO_FACTOR_PROVIDERS,
  BackOfficeBackgroundTasks,
  BackOfficeSessionService,
  BackOfficeUserManager,
  SESSION_PEEK_HEADER,
  TotpTwoFactorProvider,
  type TwoFactorProvider,
  type BackOfficeUser,
} from '../../src/backoffice-identity/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { statementsSentDuring } from '../support/sent-statements.js';
import { TOTP_TEST_KEY } from '../support/totp-app.js';

/** Names of the prepared statements among the last {@link statementsDuring} call's statements (null: unnamed). */
let statementNames: (string | null)[] = [];

/** The texts of the statements sent while `work` runs (their names in {@link statementNames}). */
async function statementsDuring(work: () => Promise<unknown>): Promise<string[]> {
  const sent = await statementsSentDuring(work);
  statementNames = sent.map((s) => s.name);
  return sent.map((s) => s.text);
}

const verb = (sql: string) => sql.split(' ').slice(0, 3).join(' ');

describe('Database round trips of an authenticated request and of a login', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const newUser = userFactory(() => ctx, 'trips-');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();

  it('GET /auth/me is one prepared statement that reads session, user and groups together', async () => {
    const user = await newUser({ groups: ['editor'] });
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    await drain();
    let me: HttpResult | undefined;
    const statements = await statementsDuring(async () => {
      me = await http.get('/auth/me');
    });
    expect(me?.status).toBe(200);
    expect(me?.body.groups).toEqual(['editor']);
    expect(statements).toHaveLength(1);
    // a named statement: parsed and planned once per connection
    expect(statementNames).toEqual(['backoffice_find_session_with_user']);
    expect(statements[0]).toMatch(/FROM backoffice_session s LEFT JOIN backoffice_user u ON u.id = s.user_id LEFT JOIN LATERAL \(.* FROM backoffice_user_group m JOIN backoffice_group g .*\) ug ON true WHERE s.token_hash = \$1/);
  });

  it('the throttled last-seen write runs after the response, and sliding still works', async () => {
    const user = await newUser();
    const http = new HttpClient(ctx.url);
    await http.login(user.email, TEST_PASSWORD);
    await drain();
    ctx.clock.advance(2 * 60_000);
    let status = 0;
    const before = await statementsDuring(async () => {
      status = (await http.get('/auth/me')).status;
    });
    const after = await statementsDuring(drain);
    expect(status).toBe(200);
    expect(before.filter((s) => s.startsWith('UPDATE')).length + after.filter((s) => s.startsWith('UPDATE')).length).toBe(1);
    expect([...before, ...after].filter((s) => s.startsWith('SELECT'))).toHaveLength(1);
    // the idle window (20 min by default) slid: 19 more minutes are fine
    ctx.clock.advance(19 * 60_000);
    expect((await http.get('/auth/me')).status).toBe(200);
    ctx.clock.advance(-21 * 60_000);
  });

  it('ASVS 3.3.1: no cache: a revoked session, a new security stamp and a disabled user fail on the very next request', async () => {
    const user = await newUser();
    const a = new HttpClient(ctx.url);
    const b = new HttpClient(ctx.url);
    await a.login(user.email, TEST_PASSWORD);
    await b.login(user.email, TEST_PASSWORD);
    expect((await a.get('/auth/me')).status).toBe(200);
    const sessionOfB = (await b.get('/auth/sessions')).body.find((s: { current: boolean }) => s.current).id;
    expect((await a.delete(`/auth/sessions/${sessionOfB}`)).status).toBe(204);
    expect((await b.get('/auth/me')).status).toBe(401);

    expect((await a.get('/auth/me')).status).toBe(200);
    await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
    expect((await a.get('/auth/me')).status).toBe(401);

    const c = new HttpClient(ctx.url);
    await c.login(user.email, TEST_PASSWORD);
    expect((await c.get('/auth/me')).status).toBe(200);
    await ctx.userManager.setApproved((await ctx.userManager.findById(user.id))!, false);
    expect((await c.get('/auth/me')).status).toBe(401);
  });

  it('a successful login: three prepared statements (no transaction, no query builder); last login, audit entry and session in one, before the answer', async () => {
    const user = await newUser();
    let status = 0;
    const statements = await statementsDuring(async () => {
      status = (await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD)).status;
    });
    expect(status).toBe(200);
    expect(statements.map(verb)).toEqual([
      'SELECT row_to_json(u) AS', // the user by name, with its groups
      'SELECT row_to_json(u) AS', // again after the hash check: a lock that began meanwhile still refuses
      'WITH l AS', // last login, backoffice.user.login.success and the session: one statement
    ]);
    expect(statements[2]).toMatch(/^WITH l AS \(UPDATE backoffice_user SET last_login_at = .*\), a1 AS \(INSERT INTO backoffice_audit_entry .*\) INSERT INTO backoffice_session /);
    expect(statements.join('\n')).not.toMatch(/START TRANSACTION|BEGIN|COMMIT/);
    // all three were written before the answer
    const before = ctx.clock.now().getTime();
    const stored = (await ctx.userManager.findById(user.id))!;
    expect(stored.lastLoginAt).not.toBeNull();
    expect(Math.abs(stored.lastLoginAt!.getTime() - before)).toBeLessThan(5_000);
    const trail = await ctx.app.get(DataSource).query(`SELECT event FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = 'backoffice.user.login.success'`, [user.id]);
    expect(trail).toHaveLength(1);
    const rows = await ctx.app.get(DataSource).query(`SELECT count(*)::int AS n FROM backoffice_session WHERE user_id = $1`, [user.id]);
    expect(rows[0].n).toBe(1);
  });

  it("an admin's import (onConflict skip, fail, or a dry run) does not read again the users it wrote: no hook asks about them", async () => {
    const admin = await newUser({ groups: ['admin'] });
    const http = new HttpClient(ctx.url);
    expect((await http.login(admin.email, TEST_PASSWORD)).status).toBe(200);
    await drain();
    // The read of the written users as stored (the hook asStored): all of them by email, in one statement.
    const rereads = (statements: string[]) => statements.filter((sql) => /^SELECT row_to_json\(u\) .*WHERE u\.normalized_email = ANY\(\$1::varchar\[\]\)$/.test(sql));
    const imported = async (extra: Record<string, unknown>) => {
      let status = 0;
      const statements = await statementsDuring(async () => {
        status = (await http.post('/users/import', { users: [{ email: `trips-import-${randomBytes(4).toString('hex')}@example.com`, name: 'Imported', groups: ['editor'] }], ...extra })).status;
      });
      expect(status, JSON.stringify(extra)).toBe(200);
      return rereads(statements);
    };
    for (const extra of [{}, { onConflict: 'fail' }, { dryRun: true }]) expect(await imported(extra), JSON.stringify(extra)).toEqual([]);
    // Control: an update asks a step-up of what the users become as written (a group requiring 2FA left), so it reads them.
    expect(await imported({ onConflict: 'update' })).toHaveLength(1);
  });

  it('a refused login (locked, wrong password, not allowed) writes its audit entry at once, with no session', async () => {
    const user = await newUser();
    expect((await ctx.userManager.setApproved((await ctx.userManager.findById(user.id))!, false)).succeeded).toBe(true);
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(403);
    expect((await http.login(user.email, 'wrong password entirely')).status).toBe(401);
    const trail = await ctx.app.get(DataSource).query(
      `SELECT details->>'reason' AS reason FROM backoffice_audit_entry WHERE affected_user_id = $1 AND event = 'backoffice.user.login.failed' ORDER BY id`,
      [user.id],
    );
    expect(trail.map((r: { reason: string }) => r.reason)).toEqual(['not_allowed', 'invalid_credentials']);
    const rows = await ctx.app.get(DataSource).query(`SELECT count(*)::int AS n FROM backoffice_session WHERE user_id = $1`, [user.id]);
    expect(rows[0].n).toBe(0);
    expect((await ctx.userManager.findById(user.id))!.lastLoginAt).toBeNull();
  });
});

describe('With external login providers configured', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const newUser = userFactory(() => ctx, 'trips-ext-');
  // The provider need not answer: GET /auth/me lists linked logins whether or not discovery succeeded.
  const provider = (name: string, displayName: string) => ({ name, displayName, issuer: 'http://127.0.0.1:9/', clientId: 'c', clientSecret: 's'.repeat(32) });

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      logger: false,
      identity: { rateLimits: { enabled: false }, externalLogins: [provider('oidc', 'Single sign-on'), provider('corp', 'Corporate directory')] },
    });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('GET /auth/me is still one prepared statement: the session lookup reads the linked logins too', async () => {
    const user = await newUser({ groups: ['editor'] });
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    await drain(ctx);
    const ask = async () => {
      let me: HttpResult | undefined;
      const statements = await statementsDuring(async () => {
        me = await http.get('/auth/me');
      });
      expect(me?.status).toBe(200);
      expect(statements).toHaveLength(1);
      expect(statements[0]).toMatch(/FROM backoffice_user_login l WHERE l.user_id = u.id .*FROM backoffice_session s LEFT JOIN backoffice_user u ON u.id = s.user_id LEFT JOIN LATERAL .* WHERE s.token_hash = \$1/);
      return me!.body;
    };
    expect((await ask()).logins).toEqual([]);
    const linked = (await ctx.userManager.findById(user.id))!;
    // As a host links from its own route: a link renews the security stamp, so the session that asked is kept.
    const sessionId = (await http.get('/auth/sessions')).body.find((s: { current: boolean }) => s.current).id as string;
    const link = async (login: { provider: string; providerKey: string; displayName: string }) => {
      expect((await ctx.signInManager.keepSignedInThrough(sessionId, () => ctx.userManager.addLogin(linked, login))).succeeded).toBe(true);
      await ctx.signInManager.refreshSignIn(linked, sessionId);
    };
    await link({ provider: 'corp', providerKey: 'k-corp', displayName: 'Corporate directory' });
    ctx.clock.advance(1000);
    await link({ provider: 'oidc', providerKey: 'k-oidc', displayName: 'Single sign-on' });
    await drain(ctx);
    const me = await ask();
    expect(me.logins).toEqual([
      { provider: 'corp', displayName: 'Corporate directory' },
      { provider: 'oidc', displayName: 'Single sign-on' },
    ]);
    expect(me.groups).toEqual(['editor']);
    // Unlinked: gone on the very next request (nothing cached).
    expect(await ctx.userManager.removeLogin(linked, 'corp')).toMatchObject({ succeeded: true });
    expect((await ask()).logins).toEqual([{ provider: 'oidc', displayName: 'Single sign-on' }]);
  });
});

const drain = (ctx: IdentityApp) => ctx.app.get(BackOfficeBackgroundTasks).drain();

@Injectable()
class CountingManager extends BackOfficeUserManager {
  static lookups = 0;
  override async findById(id: string): Promise<BackOfficeUser | null> {
    CountingManager.lookups++;
    return super.findById(id);
  }
}

describe('A user manager that overrides findById', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, userManager: CountingManager } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('is still asked for the user of every authenticated request (the session query then reads the session only)', async () => {
    const user = (await ctx.userManager.createUser({ email: 'counted@example.com', name: 'C', password: TEST_PASSWORD })).value!;
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const before = CountingManager.lookups;
    const statements = await statementsDuring(async () => expect((await http.get('/auth/me')).status).toBe(200));
    expect(CountingManager.lookups).toBe(before + 1);
    expect(statements).toHaveLength(2);
    expect(statements[0]).not.toMatch(/JOIN backoffice_user/);
  });
});

describe('With two-factor authentication on', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const newUser = userFactory(() => ctx, 'trips-2fa-');
  /** A host's own second factor (`twoFactor.providers`), set up for the users in `enrolled`. */
  const enrolled = new Set<string>();
  const hardwareToken: TwoFactorProvider = {
    name: 'hardware-token',
    isSetUp: async (user) => enrolled.has(user.id),
    generateSetup: async () => ({ secret: '', otpauthUri: '', qrCodeDataUrl: '' }),
    verify: async () => false,
    reset: async (user) => void enrolled.delete(user.id),
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: {
        rateLimits: { enabled: false },
        twoFactor: { encryptionKey: TOTP_TEST_KEY, providers: [hardwareToken] },
        passkeys: { rpId: 'localhost', rpName: 'Trips', origins: ['http://localhost:3000'] },
      },
    });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function addPasskey(user: BackOfficeUser): Promise<string> {
    const added = await ctx.userManager.addPasskey(user, {
      credentialId: randomBytes(16).toString('base64url'), publicKey: randomBytes(77), counter: 0, transports: ['internal'], name: 'Laptop', deviceType: 'multiDevice', backedUp: true,
    });
    expect(added.succeeded).toBe(true);
    return added.value!.id;
  }

  /** A user with a passkey who turned TOTP two-factor on (recovery codes handed out), signed in. */
  async function twoFactorUserSignedIn(): Promise<HttpClient> {
    const user = await newUser();
    await addPasskey(user);
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const totp = ctx.app.get<TotpTwoFactorProvider[]>(BACKOFFICE_TWO_FACTOR_PROVIDERS).find((p) => p.name === 'totp') as TotpTwoFactorProvider;
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    const enabled = await http.post('/auth/2fa/enable', { provider: 'totp', code: totp.codeAt(setup.body.secret, ctx.clock.now()) });
    expect(enabled.status, enabled.text).toBe(200);
    ctx.clock.advance(30_000);
    await ctx.app.get(BackOfficeBackgroundTasks).drain();
    return http;
  }

  it('GET /auth/me: after the session lookup, the recovery-code count and the second factors are read at once (one round trip), passkeys as an existence test without their keys', async () => {
    const http = await twoFactorUserSignedIn();
    // Warm the pool: the reads sent at once then find idle connections.
    await Promise.all([1, 2, 3].map(() => http.get('/auth/me', { headers: { [SESSION_PEEK_HEADER]: '1' } })));
    let me: HttpResult | undefined;
    const sent = await statementsSentDuring(async () => {
      me = await http.get('/auth/me', { headers: { [SESSION_PEEK_HEADER]: '1' } });
    });
    expect(me?.status).toBe(200);
    expect(me?.body).toMatchObject({ recoveryCodesLeft: 10, twoFactorProviders: ['totp', 'passkey'] });
    const reads = sent.slice(1).map((s) => s.text);
    expect(sent[0].name).toBe('backoffice_find_session_with_user');
    expect(reads).toHaveLength(3);
    expect(reads.filter((s) => s.includes('backoffice_user_recovery_code'))).toHaveLength(1);
    expect(reads.filter((s) => s.includes('backoffice_user_passkey'))).toEqual([expect.stringMatching(/^SELECT EXISTS/)]);
    // All three were sent before the first answer came back: one round trip's wait, not three. PGlite is one
    // in-process connection that runs one statement at a time, so there the three are sent one after another.
    expect(sent.slice(1).map((s) => s.inFlight)).toEqual(dbKind() === 'postgres' ? [0, 1, 2] : [0, 0, 0]);
  });

  it('a host provider is still asked (its isSetUp): GET /auth/me names it, and beside it the last passkey of a 2FA user may go', async () => {
    const user = await newUser();
    const passkeyId = await addPasskey(user);
    await ctx.userManager.setTwoFactorEnabled(user, true);
    expect(await ctx.userManager.getSetUpTwoFactorProviders(user)).toEqual(['passkey']);
    expect((await ctx.userManager.removeOwnPasskey(user, passkeyId)).errors.map((e) => e.code)).toEqual(['last_second_factor']);
    enrolled.add(user.id);
    const http = new HttpClient(ctx.url);
    http.cookies.set('backoffice_session', (await ctx.app.get(BackOfficeSessionService).create((await ctx.userManager.findById(user.id))!, {})).token);
    expect((await http.get('/auth/me')).body.twoFactorProviders).toEqual(['passkey', 'hardware-token']);
    expect((await ctx.userManager.removeOwnPasskey(user, passkeyId)).succeeded).toBe(true);
  });
});
