import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { expectBadBodiesRefused, expectClientError } from '../support/bad-input.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';
import { Injectable, type LoggerService } from '@nestjs/common';
import {
  BACKOFFICE_TWO_FACTOR_PROVIDERS,
  BackOfficeSessionCookies,
  BackOfficeSessionService,
  BackOfficeEvents,
  InMemoryBackOfficeStores,
  TotpTwoFactorProvider,
  TypeOrmBackOfficeUserStore,
  type BackOfficeUser,
} from '../../src/backoffice-identity/index.js';

/** A store without the passkey capability. */
@Injectable()
class StoreWithoutPasskeys extends TypeOrmBackOfficeUserStore {}
Object.defineProperty(StoreWithoutPasskeys.prototype, 'addPasskey', { value: undefined });

const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';
const MAX_FAILED = 8;
const PASSKEYS = { rpId: RP_ID, rpName: 'Acme back office', origins: [ORIGIN] };

describe('Passkeys (WebAuthn) with a software authenticator', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let events: NotificationRecorder;
  let newUser: ReturnType<typeof userFactory>;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, lockout: { maxFailedAccessAttempts: MAX_FAILED }, passkeys: PASSKEYS } });
    events = NotificationRecorder.attach(ctx.app);
    newUser = userFactory(() => ctx, 'passkey');
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function signedIn(user: BackOfficeUser): Promise<HttpClient> {
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).body.status).toBe('success');
    return http;
  }

  /** Registers a new authenticator for a signed-in client through the HTTP routes. */
  async function register(http: HttpClient, name = 'Laptop', authenticator = new SoftwareAuthenticator(ORIGIN, RP_ID)) {
    const options = await http.post('/auth/passkeys/options', {});
    expect(options.status, options.text).toBe(200);
    const created = await http.post('/auth/passkeys', { name, credential: authenticator.register(options.body) });
    expect(created.status, created.text).toBe(201);
    return { authenticator, passkey: created.body, options: options.body };
  }

  async function userWithPasskey(overrides = {}) {
    const user = await newUser(overrides);
    const http = await signedIn(user);
    return { user, http, ...(await register(http)) };
  }

  async function signInOptions(http: HttpClient) {
    const options = await http.post('/auth/passkey/options', {});
    expect(options.status, options.text).toBe(200);
    return options.body;
  }

  async function passkeySignIn(authenticator: SoftwareAuthenticator, overrides = {}, http = new HttpClient(ctx.url)) {
    const options = await signInOptions(http);
    const result = await http.post('/auth/passkey/verify', { credential: authenticator.assert(options, overrides) });
    return { http, result, options };
  }

  const expectRefused = (result: HttpResult) => {
    expectClientError(result, 401);
    expect(result.body.code).toBe('invalid_passkey');
  };

  it('registers a passkey: creation options ask for a discoverable credential and exclude registered ones; added is notified and audited', async () => {
    const user = await newUser();
    const http = await signedIn(user);
    const first = await register(http, '  Work laptop  ');
    expect(first.options.rp).toEqual({ id: RP_ID, name: 'Acme back office' });
    expect(first.options.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'preferred' });
    expect(first.options.attestation).toBe('none');
    expect(Buffer.from(first.options.user.id, 'base64url').toString()).toBe(user.id);
    expect(first.passkey).toMatchObject({ name: 'Work laptop', credentialId: first.authenticator.id, transports: ['internal'], deviceType: 'multiDevice', backedUp: true, lastUsedAt: null });
    expect(first.passkey).not.toHaveProperty('publicKey');

    const second = await http.post('/auth/passkeys/options', {});
    expect(second.body.excludeCredentials).toEqual([{ id: first.authenticator.id, type: 'public-key', transports: ['internal'] }]);
    const list = await http.get('/auth/passkeys');
    expect(list.body.map((p: { id: string }) => p.id)).toEqual([first.passkey.id]);
    expect(events.named(BackOfficeEvents.PasskeyAdded, user.id)).toHaveLength(1);
    const audit = await ctx.app.get(DataSource).query(`SELECT details FROM backoffice_audit_entry WHERE event = $1 AND affected_user_id = $2`, [BackOfficeEvents.PasskeyAdded, user.id]);
    expect(audit[0].details).toEqual({ passkeyId: first.passkey.id, passkeyName: 'Work laptop' });
  });

  it('signs in without a password (username-less: no allowCredentials), updates counter and last use, notifies used', async () => {
    const { user, authenticator, passkey } = await userWithPasskey();
    const { http, result, options } = await passkeySignIn(authenticator);
    expect(options.allowCredentials).toEqual([]);
    expect(options.rpId).toBe(RP_ID);
    expect(options.userVerification).toBe('preferred');
    expect(result.status, result.text).toBe(200);
    expect(result.body).toMatchObject({ status: 'success', user: { id: user.id, email: user.email } });
    expect((await http.get('/auth/me')).body.id).toBe(user.id);
    const [stored] = await ctx.userManager.getPasskeys(user);
    expect(stored.counter).toBe(1);
    expect(stored.lastUsedAt).not.toBeNull();
    const used = events.named(BackOfficeEvents.PasskeyUsed, user.id);
    expect(used.at(-1)).toMatchObject({ passkeyId: passkey.id, usage: 'signIn', userVerified: true });
    expect(events.named(BackOfficeEvents.LoginSuccess, user.id).length).toBeGreaterThan(0);
  });

  it('an authenticator without a signature counter (always 0) signs in again and again', async () => {
    const user = await newUser();
    const http = await signedIn(user);
    const { authenticator } = await register(http, 'Synced', new SoftwareAuthenticator(ORIGIN, RP_ID, 0));
    for (let i = 0; i < 2; i++) expect((await passkeySignIn(authenticator)).result.status).toBe(200);
  });

  it('a replayed assertion (used challenge) is refused; so is a fresh signature over a used challenge', async () => {
    const { authenticator } = await userWithPasskey();
    const http = new HttpClient(ctx.url);
    const options = await signInOptions(http);
    const assertion = authenticator.assert(options);
    expect((await http.post('/auth/passkey/verify', { credential: assertion })).status).toBe(200);
    expectRefused(await http.fresh().post('/auth/passkey/verify', { credential: assertion }));
    expectRefused(await http.fresh().post('/auth/passkey/verify', { credential: authenticator.assert(options) }));
  });

  it('ASVS 2.9.2: challenges are 256-bit and single use: one assertion sent 6 times at once signs in exactly once', async () => {
    const { authenticator } = await userWithPasskey();
    const options = await signInOptions(new HttpClient(ctx.url));
    expect(Buffer.from(options.challenge, 'base64url')).toHaveLength(32);
    expect((await signInOptions(new HttpClient(ctx.url))).challenge).not.toBe(options.challenge);
    const assertion = authenticator.assert(options);
    const results = await Promise.all(Array.from({ length: 6 }, () => new HttpClient(ctx.url).post('/auth/passkey/verify', { credential: assertion })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 200)) expectRefused(r);
  });

  it('OWASP ASVS 4.0 2.9.2 / WebAuthn L3 7.2 step 21 (a cloned authenticator racing the counter): two assertions of one counter value over two challenges, sent at once, sign in exactly once; the other is refused and notified as a counter gone backwards', async () => {
    const { user, authenticator, passkey } = await userWithPasskey();
    const clients = [new HttpClient(ctx.url), new HttpClient(ctx.url)];
    const options = await Promise.all(clients.map(signInOptions));
    // the original and its clone sign the same next counter value
    const counter = authenticator.counter + 1;
    const assertions = options.map((o) => authenticator.assert(o, { counter }));
    const before = events.named(BackOfficeEvents.PasskeyCounterRegressed, user.id).length;
    const results = await Promise.all(clients.map((http, i) => http.post('/auth/passkey/verify', { credential: assertions[i] })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 401]);
    expectRefused(results.find((r) => r.status === 401)!);
    const regressed = events.named(BackOfficeEvents.PasskeyCounterRegressed, user.id).slice(before);
    expect(regressed).toHaveLength(1);
    expect(regressed[0]).toMatchObject({ passkeyId: passkey.id, receivedCounter: counter });
    expect((await ctx.userManager.getPasskeys(user))[0].counter).toBe(counter);
  });

  it('OWASP ASVS 4.0 2.9.2 (single use at step-up): one step-up assertion sent 4 times at once from the session re-authenticates exactly once', async () => {
    const { http, authenticator } = await userWithPasskey();
    const options = await http.post('/auth/reauthenticate/passkey/options', {});
    expect(options.status, options.text).toBe(200);
    const assertion = authenticator.assert(options.body);
    const results = await Promise.all(Array.from({ length: 4 }, () => http.post('/auth/reauthenticate/passkey', { credential: assertion })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    // the others: the challenge is used up (invalid_passkey), or the winner's new session token came first (unauthenticated)
    for (const r of results.filter((r) => r.status !== 200)) {
      expectClientError(r, 401);
      expect(['invalid_passkey', 'unauthenticated']).toContain(r.body.code);
    }
  });

  it('OWASP ASVS 4.0 2.9.2 (single-use registration challenge): one attestation sent 5 times at once adds exactly one passkey, never a 500', async () => {
    const http = await signedIn(await newUser());
    const options = await http.post('/auth/passkeys/options', {});
    const attestation = new SoftwareAuthenticator(ORIGIN, RP_ID).register(options.body);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => http.post('/auth/passkeys', { name: `Race ${i}`, credential: attestation })));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    // refused: the challenge is used up (400 invalid_passkey), or the check of the session ran in the moment the winner's
    // new security stamp was written and not yet adopted by this session (401 unauthenticated; README, one announcement)
    for (const r of results.filter((r) => r.status !== 201)) {
      expectClientError(r);
      expect([[400, 'invalid_passkey'], [401, 'unauthenticated']]).toContainEqual([r.status, r.body.code]);
    }
    expect((await http.get('/auth/passkeys')).body).toHaveLength(1);
  });

  it('one credential id registered by three users at once belongs to exactly one of them (409 passkey_already_registered for the others, never a 500); only its owner signs in with it', async () => {
    const shared = new SoftwareAuthenticator(ORIGIN, RP_ID);
    const users = await Promise.all([newUser(), newUser(), newUser()]);
    const clients = await Promise.all(users.map(signedIn));
    const attestations = [];
    for (const http of clients) attestations.push(shared.register((await http.post('/auth/passkeys/options', {})).body));
    const results = await Promise.all(clients.map((http, i) => http.post('/auth/passkeys', { name: 'Shared', credential: attestations[i] })));
    const winner = results.findIndex((r) => r.status === 201);
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 201)) {
      expectClientError(r, 409);
      expect(r.body.code).toBe('passkey_already_registered');
    }
    for (const [i, user] of users.entries()) expect(await ctx.userManager.getPasskeys(user)).toHaveLength(i === winner ? 1 : 0);
    // the authenticator's user handle is that of the last registration; the owner's handle signs in, another's is refused
    const owner = users[winner];
    expectRefused((await passkeySignIn(shared, { userHandle: Buffer.from(users[(winner + 1) % 3].id).toString('base64url') })).result);
    const { result } = await passkeySignIn(shared, { userHandle: Buffer.from(owner.id).toString('base64url') });
    expect(result.body).toMatchObject({ status: 'success', user: { id: owner.id } });
  });

  it('foreign challenges are refused: made up, a registration challenge, another user\'s second-factor challenge, an expired one', async () => {
    const { http: owner, authenticator } = await userWithPasskey();
    expectRefused((await passkeySignIn(authenticator, { challenge: Buffer.alloc(32, 7).toString('base64url') })).result);
    const registration = await owner.post('/auth/passkeys/options', {});
    expectRefused((await passkeySignIn(authenticator, { challenge: registration.body.challenge })).result);

    const other = await newUser();
    const otherAuth = (await register(await signedIn(other))).authenticator;
    await ctx.userManager.setTwoFactorEnabled(other, true);
    const pending = new HttpClient(ctx.url);
    expect((await pending.login(other.email, TEST_PASSWORD)).body.status).toBe('requiresTwoFactor');
    const secondFactor = await pending.post('/auth/2fa/passkey/options', {});
    expect(secondFactor.status, secondFactor.text).toBe(200);
    expectRefused((await passkeySignIn(authenticator, { challenge: secondFactor.body.challenge })).result);
    // ... and the other user's own passkey cannot use its 2FA challenge for a first-factor sign-in either.
    expectRefused((await passkeySignIn(otherAuth, { challenge: secondFactor.body.challenge })).result);

    const http = new HttpClient(ctx.url);
    const options = await signInOptions(http);
    ctx.clock.advance(5 * 60_000 + 1000);
    try {
      expectRefused(await http.post('/auth/passkey/verify', { credential: authenticator.assert(options) }));
    } finally {
      ctx.clock.advance(-(5 * 60_000 + 1000));
    }
  });

  it('a wrong origin, a wrong rp id, a wrong type, a wrong signature or user handle are refused; the challenge is used up by each', async () => {
    const other = await newUser();
    for (const overrides of [
      { origin: 'https://evil.example' },
      { origin: 'http://localhost:3001' },
      { rpId: 'example.com' },
      { type: 'webauthn.create' },
      { signWith: SoftwareAuthenticator.otherKey() },
      { userHandle: Buffer.from(other.id).toString('base64url') },
    ]) {
      const { authenticator } = await userWithPasskey();
      const http = new HttpClient(ctx.url);
      const options = await signInOptions(http);
      const forged = await http.post("/auth/passkey/verify", { credential: authenticator.assert(options, overrides) });
      expect(forged.status, JSON.stringify(overrides)).toBe(401);
      expectRefused(forged);
      // the challenge is gone: the right assertion over it fails too
      expectRefused(await http.post('/auth/passkey/verify', { credential: authenticator.assert(options) }));
    }
  });

  it('an unknown credential id gets the same answer as a wrong signature (status and body)', async () => {
    const { authenticator } = await userWithPasskey();
    const wrongSignature = (await passkeySignIn(authenticator, { signWith: SoftwareAuthenticator.otherKey() })).result;
    const stranger = new SoftwareAuthenticator(ORIGIN, RP_ID);
    const unknown = (await passkeySignIn(stranger)).result;
    expectRefused(unknown);
    expect(unknown.status).toBe(wrongSignature.status);
    expect(unknown.text).toBe(wrongSignature.text);
  });

  it('a signature counter that goes backwards (cloned authenticator) is refused and notified, and audited', async () => {
    const { user, authenticator, passkey } = await userWithPasskey();
    authenticator.counter = 41;
    expect((await passkeySignIn(authenticator)).result.status).toBe(200);
    for (const counter of [42, 7]) {
      expectRefused((await passkeySignIn(authenticator, { counter })).result);
    }
    const regressed = events.named(BackOfficeEvents.PasskeyCounterRegressed, user.id);
    expect(regressed).toHaveLength(2);
    expect(regressed[1]).toMatchObject({ passkeyId: passkey.id, storedCounter: 42, receivedCounter: 7 });
    const [stored] = await ctx.userManager.getPasskeys(user);
    expect(stored.counter).toBe(42);
    const audit = await ctx.app.get(DataSource).query(`SELECT details FROM backoffice_audit_entry WHERE event = $1 AND affected_user_id = $2`, [BackOfficeEvents.PasskeyCounterRegressed, user.id]);
    expect(audit).toHaveLength(2);
    expect((await passkeySignIn(authenticator, { counter: 43 })).result.status).toBe(200);
  });

  /** Locks `user` as anyone who knows the name can: wrong passwords at POST /auth/login until the last one answers 423. */
  async function lockWithWrongPasswords(user: BackOfficeUser) {
    const http = new HttpClient(ctx.url);
    for (let i = 0; i < MAX_FAILED - 1; i++) expect((await http.login(user.email, 'not the password')).status).toBe(401);
    expectClientError(await http.login(user.email, 'not the password'), 423);
    const locked = (await ctx.userManager.findById(user.id))!;
    expect(ctx.userManager.isLockedOut(locked)).toBe(true);
    return locked;
  }

  it('OWASP ASVS 4.0 2.2.1 / 5.0 6.3.1 (no lock-state oracle): a forged assertion (wrong signature) for a locked user\'s real credential id gets the answer of a wrong signature for an unlocked user and of an unknown credential (401 invalid_passkey), leaves the lockout as it was; a valid assertion of the locked user still gets 423 and no session', async () => {
    const unlocked = await userWithPasskey();
    const forgedUnlocked = (await passkeySignIn(unlocked.authenticator, { signWith: SoftwareAuthenticator.otherKey() })).result;
    expectRefused(forgedUnlocked);
    const unknown = (await passkeySignIn(new SoftwareAuthenticator(ORIGIN, RP_ID))).result;
    expect(unknown.text).toBe(forgedUnlocked.text);

    const { user, authenticator } = await userWithPasskey();
    const locked = await lockWithWrongPasswords(user);
    const lockedEvents = events.named(BackOfficeEvents.Locked, user.id).length;
    const failedBefore = events.named(BackOfficeEvents.LoginFailed, user.id).length;
    // The credential id is no secret (allowCredentials, logs, the authenticator sends it in the clear): forge with another key.
    const forged = await passkeySignIn(authenticator, { signWith: SoftwareAuthenticator.otherKey() });
    expect(forged.result.status, forged.result.text).toBe(forgedUnlocked.status);
    expect(forged.result.text).toBe(forgedUnlocked.text);
    expect(forged.result.headers.get('retry-after')).toBe(forgedUnlocked.headers.get('retry-after'));
    expect(forged.result.setCookies).toEqual(forgedUnlocked.setCookies);
    expectClientError(await forged.http.get('/auth/me'), 401);
    // no lockout-side effect: not counted, not extended, no second lock, audited as the wrong passkey it is
    const after = (await ctx.userManager.findById(user.id))!;
    expect(after.lockoutEnd?.toISOString()).toBe(locked.lockoutEnd?.toISOString());
    expect(after.accessFailedCount).toBe(locked.accessFailedCount);
    expect(events.named(BackOfficeEvents.Locked, user.id)).toHaveLength(lockedEvents);
    expect(events.named(BackOfficeEvents.LoginFailed, user.id).slice(failedBefore)).toMatchObject([{ reason: 'invalid_passkey' }]);

    // the authenticator's holder learns the lock (as a right password does), and gets no session
    const valid = await passkeySignIn(authenticator);
    expectClientError(valid.result, 423);
    expect(valid.result.body.code).toBe('locked_out');
    expect(valid.result.body.retryAfterSeconds).toBeGreaterThan(0);
    expectClientError(await valid.http.get('/auth/me'), 401);
    expect(events.named(BackOfficeEvents.PasskeyUsed, user.id).filter((e) => (e as { usage?: string }).usage === 'signIn')).toEqual([]);
    expect(events.named(BackOfficeEvents.Locked, user.id)).toHaveLength(lockedEvents);
    // The verified assertion's counter is recorded (a clone replaying an older one is still caught); nothing else changed:
    // the lockout neither extended nor lifted, the failed count neither counted nor reset, no sign-in recorded.
    const afterValid = (await ctx.userManager.findById(user.id))!;
    expect({ lockoutEnd: afterValid.lockoutEnd?.toISOString(), failed: afterValid.accessFailedCount, lastLoginAt: afterValid.lastLoginAt })
      .toEqual({ lockoutEnd: locked.lockoutEnd?.toISOString(), failed: locked.accessFailedCount, lastLoginAt: locked.lastLoginAt });
    expect((await ctx.userManager.getPasskeys(afterValid))[0].counter).toBe(authenticator.counter);
  });

  it('OWASP ASVS 4.0 2.2.1 / 5.0 6.3.1: a passkey that an API user holds (a converted or imported user, a host store) signs no one in; answered as an unknown credential (401 invalid_passkey), no session, nothing counted or recorded', async () => {
    const { user, authenticator } = await userWithPasskey();
    // No route gives an API user a passkey: the user becomes one in the store, passkey and all.
    await ctx.app.get(DataSource).query(`UPDATE backoffice_user SET kind = 'api' WHERE id = $1`, [user.id]);
    const before = (await ctx.userManager.findById(user.id))!;
    expect(before.kind).toBe('api');
    const [stored] = await ctx.userManager.getPasskeys(before);
    const unknown = (await passkeySignIn(new SoftwareAuthenticator(ORIGIN, RP_ID))).result;
    const failedBefore = events.named(BackOfficeEvents.LoginFailed).length;
    const api = await passkeySignIn(authenticator);
    expect({ status: api.result.status, text: api.result.text, cookies: api.result.setCookies }).toEqual({ status: unknown.status, text: unknown.text, cookies: unknown.setCookies });
    expectClientError(await api.http.get('/auth/me'), 401);
    const after = (await ctx.userManager.findById(user.id))!;
    expect({ failed: after.accessFailedCount, lockoutEnd: after.lockoutEnd, lastLoginAt: after.lastLoginAt }).toEqual({ failed: before.accessFailedCount, lockoutEnd: before.lockoutEnd, lastLoginAt: before.lastLoginAt });
    expect((await ctx.userManager.getPasskeys(after))[0]).toMatchObject({ counter: stored.counter, lastUsedAt: stored.lastUsedAt });
    // audited as the unknown credential it is answered as (no user named)
    expect(events.named(BackOfficeEvents.LoginFailed).slice(failedBefore)).toMatchObject([{ reason: 'invalid_passkey', affectedUserId: null }]);
  });

  it('OWASP ASVS 4.0 2.2.1 (no lockout attack): wrong signatures do not count toward lockout, as unknown credentials do not; a forged assertion never answers 423, and the owner still signs in', async () => {
    const { user, authenticator } = await userWithPasskey();
    const unknown = (await passkeySignIn(new SoftwareAuthenticator(ORIGIN, RP_ID))).result;
    const wrong = SoftwareAuthenticator.otherKey();
    for (let i = 0; i < MAX_FAILED + 1; i++) {
      const forged = (await passkeySignIn(authenticator, { signWith: wrong })).result;
      expect(forged.status, `attempt ${i + 1}: ${forged.text}`).toBe(401);
      expect(forged.text).toBe(unknown.text);
    }
    const after = (await ctx.userManager.findById(user.id))!;
    expect(after.accessFailedCount).toBe(0);
    expect(after.lockoutEnd).toBeNull();
    expect(events.named(BackOfficeEvents.Locked, user.id)).toEqual([]);
    expect((await passkeySignIn(authenticator)).result.status).toBe(200);
  });

  it('a disabled user with a valid passkey gets 403 not_allowed; a good passkey sign-in resets the failed count (of wrong passwords)', async () => {
    const { user, authenticator } = await userWithPasskey();
    expectClientError(await new HttpClient(ctx.url).login(user.email, 'not the password'), 401);
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(1);
    expect((await passkeySignIn(authenticator)).result.status).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(0);
    await ctx.userManager.setApproved((await ctx.userManager.findById(user.id))!, false);
    const refused = (await passkeySignIn(authenticator)).result;
    expectClientError(refused, 403);
    expect(refused.body.code).toBe('not_allowed');
  });

  it('a timed disable whose `until` has passed is lifted by a passkey sign-in, as by a password (README: "the next sign-in enables the user again")', async () => {
    const { user, authenticator } = await userWithPasskey();
    const until = new Date(ctx.clock.now().getTime() + 3_600_000);
    expect((await ctx.userManager.setApproved((await ctx.userManager.findById(user.id))!, false, { reason: 'holiday', until })).succeeded).toBe(true);
    const during = (await passkeySignIn(authenticator)).result;
    expectClientError(during, 403);
    expect(during.body.code).toBe('not_allowed');
    ctx.clock.advance(2 * 3_600_000);
    try {
      const { http, result } = await passkeySignIn(authenticator);
      expect(result.status, result.text).toBe(200);
      expect(result.body).toMatchObject({ status: 'success', user: { id: user.id, state: 'active' } });
      expect((await http.get('/auth/me')).body.id).toBe(user.id);
      expect((await ctx.userManager.findById(user.id))!.isApproved).toBe(true);
    } finally {
      ctx.clock.advance(-2 * 3_600_000);
    }
  });

  describe('with two-factor authentication on', () => {
    let totp: TotpTwoFactorProvider;
    beforeAll(() => {
      totp = ctx.app.get<TotpTwoFactorProvider[]>(BACKOFFICE_TWO_FACTOR_PROVIDERS).find((p) => p.name === 'totp') as TotpTwoFactorProvider;
    });

    /** A user with TOTP 2FA on and a passkey. */
    async function twoFactorUser() {
      const { user, http, authenticator, passkey } = await userWithPasskey();
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: totp.codeAt(setup.body.secret, ctx.clock.now()) });
      expect(enable.status, enable.text).toBe(200);
      ctx.clock.advance(30_000);
      return { user, authenticator, passkey, secret: setup.body.secret as string };
    }

    it('a user-verified passkey signs a 2FA user in at once (it is already two factors)', async () => {
      const { user, authenticator } = await twoFactorUser();
      const { result } = await passkeySignIn(authenticator);
      expect(result.body).toMatchObject({ status: 'success', user: { id: user.id, twoFactorEnabled: true } });
    });

    it('a passkey without user verification still needs the second factor, and that cannot be a passkey', async () => {
      const { user, authenticator, secret } = await twoFactorUser();
      const { http, result } = await passkeySignIn(authenticator, { userVerified: false });
      expect(result.status, result.text).toBe(200);
      expect(result.body).toEqual({ status: 'requiresTwoFactor', providers: ['totp', 'recovery'] });
      expect((await http.get('/auth/me')).status).toBe(401);
      const noPasskeyOptions = await http.post('/auth/2fa/passkey/options', {});
      expectClientError(noPasskeyOptions, 400);
      expect(noPasskeyOptions.body.code).toBe('unknown_provider');
      const again = await http.post('/auth/2fa/passkey', { credential: authenticator.assert({ challenge: Buffer.alloc(32).toString('base64url') }) });
      expectClientError(again, 401);
      const done = await http.post('/auth/2fa', { provider: 'totp', code: totp.codeAt(secret, ctx.clock.now()) });
      expect(done.body).toMatchObject({ status: 'success', user: { id: user.id } });
    });

    it('V7.2.1: a passkey that passed the first step is notified and audited as used (signIn, not user-verified) even though a second factor follows', async () => {
      const { user, authenticator, passkey } = await twoFactorUser();
      const before = events.named(BackOfficeEvents.PasskeyUsed, user.id).length;
      const { result } = await passkeySignIn(authenticator, { userVerified: false });
      expect(result.body.status).toBe('requiresTwoFactor');
      const used = events.named(BackOfficeEvents.PasskeyUsed, user.id);
      expect(used).toHaveLength(before + 1);
      expect(used.at(-1)).toMatchObject({ passkeyId: passkey.id, usage: 'signIn', userVerified: false });
      const audit = await ctx.app.get(DataSource).query(`SELECT details FROM backoffice_audit_entry WHERE event = $1 AND affected_user_id = $2`, [BackOfficeEvents.PasskeyUsed, user.id]);
      expect(audit.at(-1).details).toMatchObject({ passkeyId: passkey.id, usage: 'signIn', userVerified: false });
    });

    it('a passkey answers the second-factor step after the password (allowCredentials = the user\'s passkeys)', async () => {
      const { user, authenticator } = await twoFactorUser();
      const http = new HttpClient(ctx.url);
      const login = await http.login(user.email, TEST_PASSWORD);
      expect(login.body).toEqual({ status: 'requiresTwoFactor', providers: ['totp', 'passkey', 'recovery'] });
      const options = await http.post('/auth/2fa/passkey/options', {});
      expect(options.status, options.text).toBe(200);
      expect(options.body.allowCredentials).toEqual([{ id: authenticator.id, type: 'public-key', transports: ['internal'] }]);
      // a first-factor challenge is not a second-factor one
      const firstFactorOptions = await signInOptions(new HttpClient(ctx.url));
      expectClientError(await http.post('/auth/2fa/passkey', { credential: authenticator.assert(firstFactorOptions) }), 401);
      // a wrong answer counted; a fresh challenge and a right one sign in
      const retry = await http.post('/auth/2fa/passkey/options', {});
      const done = await http.post('/auth/2fa/passkey', { credential: authenticator.assert(retry.body) });
      expect(done.status, done.text).toBe(200);
      expect(done.body).toMatchObject({ status: 'success', user: { id: user.id } });
      expect((await http.get('/auth/me')).body.id).toBe(user.id);
      expect(events.named(BackOfficeEvents.PasskeyUsed, user.id).at(-1)).toMatchObject({ usage: 'secondFactor' });
      // the pending sign-in is used up
      expectClientError(await http.post('/auth/2fa/passkey/options', {}), 401);
    });

    it('OWASP ASVS 4.0 2.8.4 / 5.0 6.5.1: a second-factor challenge answers only the pending sign-in it was issued to: another pending sign-in of the same user (the password alone) cannot use the assertion made for it, nor burn its challenge', async () => {
      const { user, authenticator } = await twoFactorUser();
      const victim = new HttpClient(ctx.url);
      expect((await victim.login(user.email, TEST_PASSWORD)).body.status).toBe('requiresTwoFactor');
      const options = await victim.post('/auth/2fa/passkey/options', {});
      expect(options.status, options.text).toBe(200);
      const assertion = authenticator.assert(options.body);
      // A second pending sign-in (another tab, or whoever holds the password) with a challenge of its own.
      const attacker = new HttpClient(ctx.url);
      expect((await attacker.login(user.email, TEST_PASSWORD)).body.status).toBe('requiresTwoFactor');
      expect((await attacker.post('/auth/2fa/passkey/options', {})).status).toBe(200);
      const crossed = await attacker.post('/auth/2fa/passkey', { credential: assertion });
      expect(crossed.status, `another pending sign-in used the assertion of this one's challenge: ${crossed.text}`).toBe(401);
      expect(crossed.body.code).toBe('invalid_code');
      expect((await attacker.get('/auth/me')).status).toBe(401);
      // The challenge stays this pending sign-in's, and its assertion completes it.
      const done = await victim.post('/auth/2fa/passkey', { credential: assertion });
      expect(done.status, done.text).toBe(200);
      expect(done.body).toMatchObject({ status: 'success', user: { id: user.id } });
    });

    it('WebAuthn L3 7.2 step 6: the second step names the user before the ceremony, so an assertion without a userHandle answers it; a foreign userHandle does not', async () => {
      const { user, authenticator } = await twoFactorUser();
      const other = await newUser();
      const http = new HttpClient(ctx.url);
      expect((await http.login(user.email, TEST_PASSWORD)).body.status).toBe('requiresTwoFactor');
      const foreign = await http.post('/auth/2fa/passkey/options', {});
      expectClientError(await http.post('/auth/2fa/passkey', { credential: authenticator.assert(foreign.body, { userHandle: Buffer.from(other.id).toString('base64url') }) }), 401);
      const options = await http.post('/auth/2fa/passkey/options', {});
      const done = await http.post('/auth/2fa/passkey', { credential: authenticator.assert(options.body, { userHandle: null }) });
      expect(done.status, done.text).toBe(200);
      expect(done.body).toMatchObject({ status: 'success', user: { id: user.id } });
    });

    it('a 2FA user without a passkey gets 400 unknown_provider for passkey options', async () => {
      const user = await newUser();
      const http = await signedIn(user);
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      await http.post('/auth/2fa/enable', { provider: 'totp', code: totp.codeAt(setup.body.secret, ctx.clock.now()) });
      const pending = new HttpClient(ctx.url);
      expect((await pending.login(user.email, TEST_PASSWORD)).body).toEqual({ status: 'requiresTwoFactor', providers: ['totp', 'recovery'] });
      const options = await pending.post('/auth/2fa/passkey/options', {});
      expectClientError(options, 400);
      expect(options.body.code).toBe('unknown_provider');
    });

    /** A user whose 2FA is on through a passkey only (turned on by host code), signed in with that passkey. */
    async function passkeyOnlyTwoFactorUser() {
      const { user, authenticator } = await userWithPasskey();
      await ctx.userManager.setTwoFactorEnabled(user, true);
      const { http, result } = await passkeySignIn(authenticator);
      expect(result.body).toMatchObject({ status: 'success', user: { id: user.id, twoFactorEnabled: true } });
      return { user, authenticator, http };
    }

    it('ASVS 5.0 6.3.x: a user whose 2FA is on through a passkey only can add TOTP (after the same step-up), and then signs in with either', async () => {
      const { user, authenticator, http } = await passkeyOnlyTwoFactorUser();
      const before = await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD);
      expect(before.body).toEqual({ status: 'requiresTwoFactor', providers: ['passkey'] });
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      expect(setup.status, setup.text).toBe(200);
      const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: totp.codeAt(setup.body.secret, ctx.clock.now()) });
      expect(enable.status, enable.text).toBe(200);
      expect(enable.body.recoveryCodes).toHaveLength(10);
      expect((await http.get('/auth/me')).body).toMatchObject({ id: user.id, twoFactorEnabled: true });
      // TOTP is on now: a second setup is refused as before
      const again = await http.post('/auth/2fa/setup', { provider: 'totp' });
      expectClientError(again, 409);
      expect(again.body.code).toBe('two_factor_already_enabled');
      ctx.clock.advance(30_000);

      const withTotp = new HttpClient(ctx.url);
      expect((await withTotp.login(user.email, TEST_PASSWORD)).body).toEqual({ status: 'requiresTwoFactor', providers: ['totp', 'passkey', 'recovery'] });
      const byTotp = await withTotp.post('/auth/2fa', { provider: 'totp', code: totp.codeAt(setup.body.secret, ctx.clock.now()) });
      expect(byTotp.body).toMatchObject({ status: 'success', user: { id: user.id } });
      const withPasskey = new HttpClient(ctx.url);
      expect((await withPasskey.login(user.email, TEST_PASSWORD)).body.status).toBe('requiresTwoFactor');
      const options = await withPasskey.post('/auth/2fa/passkey/options', {});
      const byPasskey = await withPasskey.post('/auth/2fa/passkey', { credential: authenticator.assert(options.body) });
      expect(byPasskey.body).toMatchObject({ status: 'success', user: { id: user.id } });
    });

    it('ASVS 5.0 6.3.x: adding TOTP beside a passkey needs a recent sign-in, keeps recovery codes the user has, and ends other sessions', async () => {
      const { user, authenticator, http } = await passkeyOnlyTwoFactorUser();
      const codes = await http.post('/auth/2fa/recovery-codes', {});
      expect(codes.body.recoveryCodes).toHaveLength(10);
      const other = (await passkeySignIn(authenticator)).http;
      ctx.clock.advance(6 * 60_000);
      const stale = await http.post('/auth/2fa/setup', { provider: 'totp' });
      expectClientError(stale, 401);
      expect(stale.body.code).toBe('reauthentication_required');
      const stepUpOptions = await http.post('/auth/reauthenticate/passkey/options', {});
      expect((await http.post('/auth/reauthenticate/passkey', { credential: authenticator.assert(stepUpOptions.body) })).status).toBe(200);
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      expect(setup.status, setup.text).toBe(200);
      const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: totp.codeAt(setup.body.secret, ctx.clock.now()) });
      expect(enable.status, enable.text).toBe(200);
      // the codes the user saved still work (ASP.NET Identity makes new ones only when none are left)
      expect(enable.body.recoveryCodes).toEqual([]);
      expect(await ctx.userManager.countRecoveryCodes(user)).toBe(10);
      expect((await other.get('/auth/me')).status).toBe(401);
      expect((await http.get('/auth/me')).status).toBe(200);
    });

    it('GET /auth/me names the second factors set up (twoFactorProviders; null while 2FA is off), so the account page can offer TOTP beside a passkey', async () => {
      const plain = await newUser();
      expect((await (await signedIn(plain)).get('/auth/me')).body.twoFactorProviders).toBeNull();
      const { http } = await passkeyOnlyTwoFactorUser();
      expect((await http.get('/auth/me')).body.twoFactorProviders).toEqual(['passkey']);
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      expect((await http.get('/auth/me')).body.twoFactorProviders).toEqual(['passkey']);
      expect((await http.post('/auth/2fa/enable', { provider: 'totp', code: totp.codeAt(setup.body.secret, ctx.clock.now()) })).status).toBe(200);
      expect((await http.get('/auth/me')).body.twoFactorProviders).toEqual(['totp', 'passkey']);
      ctx.clock.advance(30_000);
    });

    it('OWASP ASVS 5.0 6.3.x: the last passkey of a user whose 2FA rests on it cannot be removed (409 last_second_factor, nothing ended); beside TOTP it can', async () => {
      const { user, authenticator, http } = await passkeyOnlyTwoFactorUser();
      const other = (await passkeySignIn(authenticator)).http;
      const [passkey] = await ctx.userManager.getPasskeys(user);
      const refused = await http.delete(`/auth/passkeys/${passkey.id}`);
      expectClientError(refused, 409);
      expect(refused.body.code).toBe('last_second_factor');
      expect((await ctx.userManager.getPasskeys(user)).map((p) => p.id)).toEqual([passkey.id]);
      expect((await other.get('/auth/me')).status).toBe(200);
      expect((await new HttpClient(ctx.url).login(user.email, TEST_PASSWORD)).body).toEqual({ status: 'requiresTwoFactor', providers: ['passkey'] });
      // two passkeys removed at once: one stays
      const second = await register(http, 'Phone');
      const both = await Promise.all([passkey.id, second.passkey.id].map((id) => http.delete(`/auth/passkeys/${id}`)));
      expect(both.map((r) => r.status).sort()).toEqual([204, 409]);
      expect(await ctx.userManager.getPasskeys(user)).toHaveLength(1);
      // with TOTP beside it, the passkey goes
      const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
      expect((await http.post('/auth/2fa/enable', { provider: 'totp', code: totp.codeAt(setup.body.secret, ctx.clock.now()) })).status).toBe(200);
      const [left] = await ctx.userManager.getPasskeys(user);
      expect((await http.delete(`/auth/passkeys/${left.id}`)).status).toBe(204);
      ctx.clock.advance(30_000);
    });

    it('OWASP ASVS 4.0 2.2.x: a passkey without user verification from a user whose 2FA rests on passkeys alone: 401 user_verification_required (no second step with providers [] that nothing could answer), no session, not counted, audited; the same passkey with user verification signs in', async () => {
      const { user, authenticator } = await passkeyOnlyTwoFactorUser();
      const failedBefore = (await ctx.userManager.findById(user.id))!.accessFailedCount;
      const refusedBefore = events.named(BackOfficeEvents.LoginFailed, user.id).length;
      const { http, result } = await passkeySignIn(authenticator, { userVerified: false });
      expectClientError(result, 401);
      expect(result.body.code).toBe('user_verification_required');
      expect((await http.get('/auth/me')).status).toBe(401);
      expect((await http.post('/auth/2fa', { provider: 'recovery', code: 'AAAAA-BBBBB' })).status).toBe(401);
      expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(failedBefore);
      expect(events.named(BackOfficeEvents.LoginFailed, user.id).slice(refusedBefore)).toMatchObject([{ reason: 'user_verification_required' }]);
      const verified = await passkeySignIn(authenticator);
      expect(verified.result.body).toMatchObject({ status: 'success', user: { id: user.id, twoFactorEnabled: true } });
      // With recovery codes to answer with, the second step is offered as before.
      await ctx.userManager.generateNewRecoveryCodes(user);
      expect((await passkeySignIn(authenticator, { userVerified: false })).result.body).toEqual({ status: 'requiresTwoFactor', providers: ['recovery'] });
    });

    it('OWASP ASVS 5.0 6.3.x: with a host user store that ignores keepAtLeast, the last passkey of a user whose 2FA rests on it still stays (409 last_second_factor)', async () => {
      const stores = InMemoryBackOfficeStores.create();
      const remove = stores.userStore.removePasskey.bind(stores.userStore);
      stores.userStore.removePasskey = (userId: string, passkeyId: string) => remove(userId, passkeyId);
      const loose = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, passkeys: PASSKEYS, stores } });
      try {
        const user = await userFactory(() => loose, 'loose-passkey')();
        const first = new HttpClient(loose.url);
        expect((await first.login(user.email, TEST_PASSWORD)).body.status).toBe('success');
        const { authenticator, passkey } = await register(first);
        await loose.userManager.setTwoFactorEnabled(user, true);
        const { http, result } = await passkeySignIn(authenticator, {}, new HttpClient(loose.url));
        expect(result.body).toMatchObject({ status: 'success', user: { id: user.id, twoFactorEnabled: true } });
        const refused = await http.delete(`/auth/passkeys/${passkey.id}`);
        expectClientError(refused, 409);
        expect(refused.body.code).toBe('last_second_factor');
        expect((await loose.userManager.getPasskeys(user)).map((p) => p.id)).toEqual([passkey.id]);
        expect((await new HttpClient(loose.url).login(user.email, TEST_PASSWORD)).body).toEqual({ status: 'requiresTwoFactor', providers: ['passkey'] });
      } finally {
        await loose.close();
      }
    });

    it('OWASP ASVS 4.0 2.2.x: with passkeys the only second factor configured (no TOTP key: a passkeys-only deployment, or encryptionKey lost), a passkey without user verification from a 2FA user with nothing else to answer with gets 401 user_verification_required (user verification helps: the same passkey with it signs in), not 403 not_allowed and no operator error', async () => {
      const { user, authenticator } = await twoFactorUser();
      await ctx.app.get(DataSource).query(`DELETE FROM backoffice_user_recovery_code WHERE user_id = $1`, [user.id]);
      const errors: string[] = [];
      const logger: LoggerService = { log() {}, warn() {}, error: (message: unknown) => void errors.push(String(message)) };
      const keyless = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, twoFactor: {}, passkeys: PASSKEYS }, logger });
      try {
        const keylessEvents = NotificationRecorder.attach(keyless.app);
        const { http, result } = await passkeySignIn(authenticator, { userVerified: false }, new HttpClient(keyless.url));
        expectClientError(result, 401);
        expect(result.body.code).toBe('user_verification_required');
        expect((await http.get('/auth/me')).status).toBe(401);
        expect(errors.filter((e) => e.includes('no two-factor provider is configured'))).toEqual([]);
        expect(keylessEvents.named(BackOfficeEvents.LoginFailed, user.id)).toMatchObject([{ reason: 'user_verification_required' }]);
        const verified = await passkeySignIn(authenticator, {}, new HttpClient(keyless.url));
        expect(verified.result.body).toMatchObject({ status: 'success', user: { id: user.id, twoFactorEnabled: true } });
      } finally {
        await keyless.close();
      }
    });

    it('another user\'s passkey does not answer my second factor', async () => {
      const { user } = await twoFactorUser();
      const { authenticator: strangers } = await userWithPasskey();
      const http = new HttpClient(ctx.url);
      await http.login(user.email, TEST_PASSWORD);
      const options = await http.post('/auth/2fa/passkey/options', {});
      const refused = await http.post('/auth/2fa/passkey', { credential: strangers.assert(options.body) });
      expectClientError(refused, 401);
      expect(refused.body.code).toBe('invalid_code');
    });
  });

  it('rename and remove: own passkeys only; removed passkeys no longer sign in; removed is notified', async () => {
    const { user, http, authenticator, passkey } = await userWithPasskey();
    const renamed = await http.request('PATCH', `/auth/passkeys/${passkey.id}`, { body: { name: 'Phone ☎ 📱' } });
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.body.name).toBe('Phone ☎ 📱');
    for (const name of ['   ', 'a\u0007b', 'x'.repeat(65)]) {
      expectClientError(await http.request('PATCH', `/auth/passkeys/${passkey.id}`, { body: { name } }), 400);
    }
    const { http: intruder } = await userWithPasskey();
    expectClientError(await intruder.request('PATCH', `/auth/passkeys/${passkey.id}`, { body: { name: 'mine' } }), 404);
    expectClientError(await intruder.delete(`/auth/passkeys/${passkey.id}`), 404);
    expectClientError(await http.delete('/auth/passkeys/not-a-uuid'), 404);
    expect((await http.delete(`/auth/passkeys/${passkey.id}`)).status).toBe(204);
    expectClientError(await http.delete(`/auth/passkeys/${passkey.id}`), 404);
    expect(events.named(BackOfficeEvents.PasskeyRemoved, user.id).at(-1)).toMatchObject({ passkeyId: passkey.id, passkeyName: 'Phone ☎ 📱' });
    expectRefused((await passkeySignIn(authenticator)).result);
    expect((await http.get('/auth/passkeys')).body).toEqual([]);
  });

  it('registration is refused for a wrong origin, rp id, challenge (replayed or another user\'s) and for a credential registered already', async () => {
    const user = await newUser();
    const http = await signedIn(user);
    const authenticator = new SoftwareAuthenticator(ORIGIN, RP_ID);
    for (const overrides of [{ origin: 'https://evil.example' }, { rpId: 'example.com' }, { type: 'webauthn.get' }]) {
      const options = await http.post('/auth/passkeys/options', {});
      const refused = await http.post('/auth/passkeys', { name: 'Bad', credential: authenticator.register(options.body, overrides) });
      expectClientError(refused, 400);
      expect(refused.body.code).toBe('invalid_passkey');
    }
    const options = await http.post('/auth/passkeys/options', {});
    const attestation = authenticator.register(options.body);
    expect((await http.post('/auth/passkeys', { name: 'Good', credential: attestation })).status).toBe(201);
    expect((await http.post('/auth/passkeys', { name: 'Again', credential: attestation })).body.code).toBe('invalid_passkey');
    const again = await http.post('/auth/passkeys/options', {});
    const duplicate = await http.post('/auth/passkeys', { name: 'Again', credential: authenticator.register(again.body) });
    expectClientError(duplicate, 409);
    expect(duplicate.body.code).toBe('passkey_already_registered');

    const other = await signedIn(await newUser());
    const othersOptions = await other.post('/auth/passkeys/options', {});
    const stolen = await http.post('/auth/passkeys', { name: 'Stolen', credential: new SoftwareAuthenticator(ORIGIN, RP_ID).register(othersOptions.body) });
    expect(stolen.body.code).toBe('invalid_passkey');
    expect((await http.get('/auth/passkeys')).body).toHaveLength(1);
  });

  it('admins list and remove a user\'s passkeys (removed is notified with the admin as performer); others get 403', async () => {
    const { user, http, authenticator, passkey } = await userWithPasskey();
    const admin = await newUser({ groups: ['admin'] });
    const adminHttp = await signedIn(admin);
    expectClientError(await http.get(`/users/${user.id}/passkeys`), 403);
    const list = await adminHttp.get(`/users/${user.id}/passkeys`);
    expect(list.body.map((p: { id: string }) => p.id)).toEqual([passkey.id]);
    expectClientError(await adminHttp.delete(`/users/${admin.id}/passkeys/${passkey.id}`), 404);
    expectClientError(await adminHttp.get('/users/00000000-0000-4000-8000-000000000000/passkeys'), 404);
    expect((await adminHttp.delete(`/users/${user.id}/passkeys/${passkey.id}`)).status).toBe(204);
    expect(events.named(BackOfficeEvents.PasskeyRemoved, user.id).at(-1)).toMatchObject({ performingUserId: admin.id, passkeyId: passkey.id });
    expectRefused((await passkeySignIn(authenticator)).result);
  });

  it('ASVS 3.7.1: adding and removing passkeys need a recent sign-in; a passkey (or the password) re-authenticates', async () => {
    const { user, http, authenticator, passkey } = await userWithPasskey();
    ctx.clock.advance(6 * 60_000);
    try {
      for (const result of [await http.post('/auth/passkeys/options', {}), await http.delete(`/auth/passkeys/${passkey.id}`)]) {
        expectClientError(result, 401);
        expect(result.body.code).toBe('reauthentication_required');
      }
      expect((await http.get('/auth/passkeys')).status).toBe(200);
      // a wrong assertion: refused, counted
      const wrongOptions = await http.post('/auth/reauthenticate/passkey/options', {});
      expect(wrongOptions.body.allowCredentials).toEqual([{ id: authenticator.id, type: 'public-key', transports: ['internal'] }]);
      const wrong = await http.post('/auth/reauthenticate/passkey', { credential: authenticator.assert(wrongOptions.body, { signWith: SoftwareAuthenticator.otherKey() }) });
      expectClientError(wrong, 401);
      expect(wrong.body.code).toBe('invalid_passkey');
      expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(1);
      // a sign-in challenge is not a re-authentication one
      const signInChallenge = await signInOptions(new HttpClient(ctx.url));
      expectClientError(await http.post('/auth/reauthenticate/passkey', { credential: authenticator.assert(signInChallenge) }), 401);
      const options = await http.post('/auth/reauthenticate/passkey/options', {});
      const done = await http.post('/auth/reauthenticate/passkey', { credential: authenticator.assert(options.body) });
      expect(done.status, done.text).toBe(200);
      expect(Date.parse(done.body.reauthenticatedUntil)).toBeGreaterThan(ctx.clock.now().getTime());
      expect(events.named(BackOfficeEvents.PasskeyUsed, user.id).at(-1)).toMatchObject({ usage: 'reauthentication' });
      expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(0);
      expect((await http.delete(`/auth/passkeys/${passkey.id}`)).status).toBe(204);
      // without a passkey left, passkey re-authentication has nothing to offer
      expectClientError(await http.post('/auth/reauthenticate/passkey/options', {}), 400);
    } finally {
      ctx.clock.advance(-6 * 60_000);
    }
  });

  it('account routes need a session and the XSRF header', async () => {
    const anonymous = new HttpClient(ctx.url);
    expectClientError(await anonymous.get('/auth/passkeys'), 401);
    expectClientError(await anonymous.post('/auth/passkeys/options', {}), 401);
    const http = await signedIn(await newUser());
    expectClientError(await http.post('/auth/passkeys/options', {}, { xsrf: false }), 403);
  });

  it('malformed bodies get a clean 4xx on every passkey route, never a 500', async () => {
    const anonymous = new HttpClient(ctx.url);
    await expectBadBodiesRefused(anonymous, 'POST', '/auth/passkey/verify', ['credential']);
    const http = await signedIn(await newUser());
    await expectBadBodiesRefused(http, 'POST', '/auth/passkeys', ['name', 'credential']);
    const { passkey } = await userWithPasskey();
    await expectBadBodiesRefused(http, 'PATCH', `/auth/passkeys/${passkey.id}`, ['name']);
    const pending = new HttpClient(ctx.url);
    await expectBadBodiesRefused(pending, 'POST', '/auth/2fa/passkey', ['credential']);
  });

  it('malformed credentials (shapes, encodings, garbage CBOR and authenticator data) are refused with 4xx', async () => {
    const { authenticator } = await userWithPasskey();
    const http = new HttpClient(ctx.url);
    const options = await signInOptions(http);
    const good = authenticator.assert(options);
    const variants: unknown[] = [
      { ...good, id: 'not base64url!' },
      { ...good, rawId: 'AAAA' },
      { ...good, type: 'password' },
      { ...good, response: { ...good.response, signature: 'AA' } },
      { ...good, response: { ...good.response, authenticatorData: 'AAAA' } },
      { ...good, response: { ...good.response, clientDataJSON: Buffer.from('{not json').toString('base64url') } },
      { ...good, response: { ...good.response, clientDataJSON: Buffer.from('[]').toString('base64url') } },
      { ...good, response: { clientDataJSON: good.response.clientDataJSON } },
      { ...good, response: 'x' },
      { ...good, clientExtensionResults: [] },
      { ...good, id: 'A'.repeat(1401), rawId: 'A'.repeat(1401) },
      { ...good, response: { ...good.response, signature: 'A'.repeat(100_000) } },
    ];
    for (const credential of variants) {
      const result = await http.post('/auth/passkey/verify', { credential });
      expectClientError(result);
      expect([400, 401]).toContain(result.status);
    }
    const signedInClient = await signedIn(await newUser());
    const creation = await signedInClient.post('/auth/passkeys/options', {});
    const attestation = new SoftwareAuthenticator(ORIGIN, RP_ID).register(creation.body);
    for (const attestationObject of [Buffer.from([0xa1, 0x63]).toString('base64url'), Buffer.from('garbage').toString('base64url'), 'AA']) {
      const result = await signedInClient.post('/auth/passkeys', { name: 'x', credential: { ...attestation, response: { ...attestation.response, attestationObject } } });
      expectClientError(result, 400);
    }
  });

  it('the maintenance run deletes expired passkey challenges', async () => {
    const { BackOfficeMaintenanceService } = await import('../../src/backoffice-identity/index.js');
    await signInOptions(new HttpClient(ctx.url));
    ctx.clock.advance(2 * 86_400_000);
    try {
      const pruned = await ctx.app.get(BackOfficeMaintenanceService).prune();
      expect(pruned.passkeyChallenges).toBeGreaterThan(0);
    } finally {
      ctx.clock.advance(-2 * 86_400_000);
    }
  });

  it('OWASP ASVS 4.0 3.7.1: with denyLocalLogin a passkey no more satisfies step-up than a leftover password does: 403 local_login_disabled (step up through the provider)', async () => {
    const { user, authenticator } = await userWithPasskey();
    const strict = await createIdentityApp(db, { identity: { passkeys: PASSKEYS, denyLocalLogin: true } });
    try {
      // the user as stored now: adding the passkey renewed the security stamp
      const { token } = await strict.app.get(BackOfficeSessionService).create((await ctx.userManager.findById(user.id))!, {});
      const http = new HttpClient(strict.url);
      http.cookies.set('backoffice_session', token);
      http.cookies.set('XSRF-TOKEN', BackOfficeSessionCookies.xsrfTokenFor(token));
      const options = await http.post('/auth/reauthenticate/passkey/options', {});
      expectClientError(options, 403);
      expect(options.body.code).toBe('local_login_disabled');
      // Even an assertion for a challenge got before the option was on does not count.
      const earlier = await (await signedIn(user)).post('/auth/reauthenticate/passkey/options', {});
      expect(earlier.status, earlier.text).toBe(200);
      const verify = await http.post('/auth/reauthenticate/passkey', { credential: authenticator.assert(earlier.body) });
      expectClientError(verify, 403);
      expect(verify.body.code).toBe('local_login_disabled');
    } finally {
      await strict.close();
    }
  });
});

describe('Passkeys: configuration, rate limits and local login', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('without the passkeys option every passkey route is 404 and 2FA offers no passkey', async () => {
    const ctx = await createIdentityApp(db);
    try {
      const http = new HttpClient(ctx.url);
      expectClientError(await http.post('/auth/passkey/options', {}), 404);
      expect(ctx.userManager.supportsUserPasskeys).toBe(false);
      expect(ctx.userManager.twoFactorProviders.map((p) => p.name)).toEqual(['totp']);
    } finally {
      await ctx.close();
    }
  });

  it('a store without UserPasskeyStore turns passkeys off even with the option set', async () => {
    const ctx = await createIdentityApp(db, { identity: { passkeys: PASSKEYS, userStore: StoreWithoutPasskeys } });
    try {
      expect(ctx.userManager.supportsUserPasskeys).toBe(false);
      expect(ctx.userManager.twoFactorProviders.map((p) => p.name)).toEqual(['totp']);
      const http = new HttpClient(ctx.url);
      expectClientError(await http.post('/auth/passkey/options', {}), 404);
      const user = (await ctx.userManager.createUser({ email: 'nostore@example.com', name: 'No store', password: TEST_PASSWORD })).value!;
      expect((await ctx.userManager.addPasskey(user, { credentialId: 'AAAA', publicKey: new Uint8Array(1), counter: 0, transports: [], name: 'x', deviceType: 'singleDevice', backedUp: false })).errors[0].code).toBe('not_supported');
      await http.login(user.email, TEST_PASSWORD);
      expectClientError(await http.get('/auth/passkeys'), 404);
    } finally {
      await ctx.close();
    }
  });

  it('rate limits: options and verify per IP (429 with Retry-After)', async () => {
    const ctx = await createIdentityApp(db, { identity: { passkeys: PASSKEYS, rateLimits: { loginPerIp: 3, loginPerIpAndUsername: 2 } } });
    try {
      const http = new HttpClient(ctx.url);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await http.post('/auth/passkey/options', {})).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const stranger = new SoftwareAuthenticator(ORIGIN, RP_ID);
      const verifies: HttpResult[] = [];
      for (let i = 0; i < 3; i++) verifies.push(await http.post('/auth/passkey/verify', { credential: stranger.assert({ challenge: 'AAAA' }) }));
      expect(verifies.map((r) => r.status)).toEqual([401, 401, 429]);
      expect(verifies[2].headers.get('retry-after')).toMatch(/^\d+$/);
    } finally {
      await ctx.close();
    }
  });

  it('OWASP ASVS 4.0 2.2.1 / 5.0 6.3.1: the passkey step-up (POST /auth/reauthenticate/passkey) is limited per IP by the counter of the password step-up (rateLimits.passwordCheckPerIp, one counter for the password checks): past it 429 too_many_requests with Retry-After, the assertion neither checked nor counted', async () => {
    const ctx = await createIdentityApp(db, { identity: { passkeys: PASSKEYS, rateLimits: { passwordCheckPerIp: 3 }, lockout: { maxFailedAccessAttempts: 1000 } } });
    try {
      const user = (await ctx.userManager.createUser({ email: 'stepup-limit@example.com', name: 'Limited', password: TEST_PASSWORD })).value!;
      const http = new HttpClient(ctx.url);
      expect((await http.login(user.email, TEST_PASSWORD)).body.status).toBe('success');
      const authenticator = new SoftwareAuthenticator(ORIGIN, RP_ID);
      const registration = await http.post('/auth/passkeys/options', {});
      expect((await http.post('/auth/passkeys', { name: 'Laptop', credential: authenticator.register(registration.body) })).status).toBe(201);
      const wrong = async () => {
        const options = await http.post('/auth/reauthenticate/passkey/options', {});
        expect(options.status, options.text).toBe(200);
        return http.post('/auth/reauthenticate/passkey', { credential: authenticator.assert(options.body, { signWith: SoftwareAuthenticator.otherKey() }) });
      };
      const answers: HttpResult[] = [];
      for (let i = 0; i < 4; i++) answers.push(await wrong());
      expect(answers.map((a) => a.status)).toEqual([401, 401, 401, 429]);
      const limited = answers[3];
      expectClientError(limited, 429);
      expect(limited.body).toMatchObject({ statusCode: 429, code: 'too_many_requests' });
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(3);
      // The right passkey is not checked either while the limit lasts: no step-up, no new token.
      const options = await http.post('/auth/reauthenticate/passkey/options', {});
      const right = await http.post('/auth/reauthenticate/passkey', { credential: authenticator.assert(options.body) });
      expect({ status: right.status, code: right.body.code }).toEqual({ status: 429, code: 'too_many_requests' });
      expect(right.setCookies.some((c) => c.startsWith('backoffice_session='))).toBe(false);
      // The password step-up shares the counter: spent already, it answers the same 429 at once, the password not counted.
      const password = await http.post('/auth/reauthenticate', { password: 'a wrong password guess' });
      expect(password.status).toBe(429);
      // The same answer, but for the seconds left, which move on while the requests run (a busy machine crosses a second).
      const { retryAfterSeconds: limitedFor, ...limitedRest } = limited.body;
      const { retryAfterSeconds: passwordFor, ...passwordRest } = password.body;
      expect(passwordRest).toEqual(limitedRest);
      expect(Math.abs(Number(limitedFor) - Number(passwordFor))).toBeLessThanOrEqual(5);
      expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(3);
    } finally {
      await ctx.close();
    }
  });

  it('denyLocalLogin refuses passkey sign-in with 403 local_login_disabled', async () => {
    const ctx = await createIdentityApp(db, { identity: { passkeys: PASSKEYS, denyLocalLogin: true } });
    try {
      const http = new HttpClient(ctx.url);
      const options = await http.post('/auth/passkey/options', {});
      expectClientError(options, 403);
      expect(options.body.code).toBe('local_login_disabled');
      const verify = await http.post('/auth/passkey/verify', { credential: new SoftwareAuthenticator(ORIGIN, RP_ID).assert({ challenge: 'AAAA' }) });
      expect(verify.body.code).toBe('local_login_disabled');
    } finally {
      await ctx.close();
    }
  });
});
