import type { LoggerService } from '@nestjs/common';
import { independentCode } from '../support/oathtool.js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TestClock, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { pendingSignInCookies } from '../support/pending-sign-in-cookies.js';
import { expectBadBodiesRefused, expectClientError } from '../support/bad-input.js';
import type { NotificationRecorder } from '../support/notification-recorder.js';
import { startTotpApp, TOTP_TEST_KEY as KEY } from '../support/totp-app.js';
import {
  BACKOFFICE_USER_STORE,
  BackOfficeEvents,
  BackOfficeUserManager,
  SecretCipher,
  TotpTwoFactorProvider,
  TypeOrmBackOfficeUserStore,
} from '../../src/backoffice-identity/index.js';

/** A store that keeps TOTP keys but no recovery codes (no `UserRecoveryCodeStore`). */
class StoreWithoutRecoveryCodes extends TypeOrmBackOfficeUserStore {}
Object.defineProperty(StoreWithoutRecoveryCodes.prototype, 'replaceRecoveryCodes', { value: undefined });

const password = 'correct horse battery staple';
const TWO_FACTOR_COOKIE = pendingSignInCookies().twoFactor;
const ZBARIMG = ['/usr/bin/zbarimg', '/usr/local/bin/zbarimg'].find((p) => existsSync(p));


describe('Two-factor authentication (TOTP and recovery codes)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let events: NotificationRecorder;
  let counter = 0;

  beforeAll(async () => {
    ({ db, ctx, events } = await startTotpApp());
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** A signed-in user who went through setup + enable with codes from oathtool. */
  async function enrolled() {
    const email = `tfa${++counter}@example.com`;
    const created = (await ctx.userManager.createUser({ email, name: 'Two Factor', password })).value!;
    const http = new HttpClient(ctx.url);
    expect((await http.login(email, password)).body.status).toBe('success');
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status).toBe(200);
    const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expect(enable.status).toBe(200);
    return { email, user: created, http, setup: setup.body, recoveryCodes: enable.body.recoveryCodes as string[] };
  }

  /** Password step of a login for a 2FA user. */
  async function passwordStep(email: string) {
    const http = new HttpClient(ctx.url);
    const login = await http.login(email, password);
    expect(login.status).toBe(200);
    expect(login.body.status).toBe('requiresTwoFactor');
    return { http, login };
  }

  const nextStep = () => ctx.clock.advance(30_000);

  it('OWASP ASVS 4.0 1.4.x, 2.1: a user who turned 2FA on is refused (403 not_allowed), never signed in on the password alone, when the app runs without a second factor (encryption key missing); the log says why', async () => {
    const { email, user } = await enrolled();
    const errors: string[] = [];
    const logger: LoggerService = { log() {}, warn() {}, error: (message: unknown) => void errors.push(String(message)) };
    const keyless = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, twoFactor: {} }, logger });
    try {
      expect(keyless.userManager.supportsUserTwoFactor).toBe(false);
      const refused = await new HttpClient(keyless.url).login(email, password);
      expectClientError(refused, 403);
      expect(refused.body.code).toBe('not_allowed');
      expect(refused.headers.get('set-cookie') ?? '').not.toContain('backoffice_session=');
      expect(errors.some((e) => e.includes('twoFactor.encryptionKey'))).toBe(true);
      // A user without 2FA signs in there as before, and the enrolled user again once the key is back.
      const plain = (await keyless.userManager.createUser({ email: `plain${++counter}@example.com`, name: 'Plain', password })).value!;
      expect((await new HttpClient(keyless.url).login(plain.email, password)).body.status).toBe('success');
      expect((await new HttpClient(ctx.url).login(email, password)).body.status).toBe('requiresTwoFactor');
      expect((await keyless.userManager.findById(user.id))!.twoFactorEnabled).toBe(true);
    } finally {
      await keyless.close();
    }
    // With passkeys on (a registered second factor the user never set up) and still no key: refused too, not sent
    // to a second step nobody can answer; with a recovery code left, that is the second step.
    const withPasskeys = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, twoFactor: {}, passkeys: { rpId: 'localhost', rpName: 'Test', origins: ['http://localhost'] } },
      logger,
    });
    try {
      expect(withPasskeys.userManager.supportsUserTwoFactor).toBe(true);
      await withPasskeys.app.get(DataSource).query(`DELETE FROM backoffice_user_recovery_code WHERE user_id = $1`, [user.id]);
      const refused = await new HttpClient(withPasskeys.url).login(email, password);
      expectClientError(refused, 403);
      expect(refused.body.code).toBe('not_allowed');
    } finally {
      await withPasskeys.close();
    }
  });

  it('RFC 6238 Appendix B SHA-1 vectors through our provider, with an injectable clock (verify path included)', async () => {
    const store = ctx.app.get<TypeOrmBackOfficeUserStore>(BACKOFFICE_USER_STORE);
    const user = (await ctx.userManager.createUser({ email: `rfc${++counter}@example.com`, name: 'RFC', password })).value!;
    const clock = new TestClock();
    const provider = new TotpTwoFactorProvider(store, KEY, clock, 'RFC', { digits: 8, period: 30, algorithm: 'SHA1', window: 0 });
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'; // base32 of ASCII "12345678901234567890"
    const vectors: Array<[number, string]> = [
      [59, '94287082'], [1111111109, '07081804'], [1111111111, '14050471'],
      [1234567890, '89005924'], [2000000000, '69279037'], [20000000000, '65353130'],
    ];
    await store.setAuthenticatorKey(user.id, 'totp', new SecretCipher(KEY).encrypt(secret), new Date());
    for (const [i, [seconds, expected]] of vectors.entries()) {
      expect(provider.codeAt(secret, new Date(seconds * 1000))).toBe(expected);
      clock.advance(seconds * 1000 - clock.now().getTime());
      // the first code confirms the enrolment, the others sign in
      expect(await provider.verify(user, expected, { enrolling: i === 0 })).toBe(true);
      expect(await provider.verify(user, expected)).toBe(false); // same step twice: replay
    }
  });

  it('OWASP ASVS 4.0 1.11.3: an enrolment is confirmed once: two enables that both read the unconfirmed key, with right codes of neighbouring steps, do not both turn 2FA on (a second set of live recovery codes)', async () => {
    const store = ctx.app.get<TypeOrmBackOfficeUserStore>(BACKOFFICE_USER_STORE);
    const user = (await ctx.userManager.createUser({ email: `race${++counter}@example.com`, name: 'Race', password })).value!;
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    await store.setAuthenticatorKey(user.id, 'totp', new SecretCipher(KEY).encrypt(secret), new Date());
    // Both requests read the key before either records its step, as two enables in flight do.
    let reads = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((resolve) => (release = resolve));
    const racing = Object.create(store, {
      getAuthenticatorKey: {
        value: async (userId: string, provider: string) => {
          const key = await store.getAuthenticatorKey(userId, provider);
          if (++reads === 2) release();
          await bothRead;
          return key;
        },
      },
    });
    const provider = new TotpTwoFactorProvider(racing, KEY, ctx.clock, 'Race');
    const results = await Promise.all([
      provider.verify(user, independentCode(secret, ctx.clock), { enrolling: true }),
      provider.verify(user, independentCode(secret, ctx.clock, 1), { enrolling: true }),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('setup returns a base32 secret, an otpauth URI with issuer and account, and a QR code that decodes to it', async () => {
    const email = `qr${++counter}@example.com`;
    await ctx.userManager.createUser({ email, name: 'QR', password });
    const http = new HttpClient(ctx.url);
    await http.login(email, password);
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(setup.body.otpauthUri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('issuer')).toBe('Acme CMS');
    expect(uri.searchParams.get('secret')).toBe(setup.body.secret);
    expect(decodeURIComponent(uri.pathname)).toContain(email);
    expect(setup.body.qrCodeDataUrl).toMatch(/^data:image\/png;base64,/);
    if (ZBARIMG) {
      const file = join(mkdtempSync(join(tmpdir(), 'qr-')), 'qr.png');
      writeFileSync(file, Buffer.from(setup.body.qrCodeDataUrl.split(',')[1], 'base64'));
      expect(execFileSync(ZBARIMG, ['--raw', '-q', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()).toBe(setup.body.otpauthUri);
    }
    // the secret is encrypted at rest
    const rows = await ctx.app.get(DataSource).query('SELECT encrypted_secret FROM backoffice_user_authenticator');
    expect(JSON.stringify(rows)).not.toContain(setup.body.secret);
  });

  it('enable needs a correct code; wrong codes give 400 invalid_code and leave 2FA off', async () => {
    const email = `en${++counter}@example.com`;
    const user = (await ctx.userManager.createUser({ email, name: 'En', password })).value!;
    const http = new HttpClient(ctx.url);
    await http.login(email, password);
    const setup = await http.post('/auth/2fa/setup', { provider: 'totp' });
    const wrong = await http.post('/auth/2fa/enable', { provider: 'totp', code: '000000' });
    expectClientError(wrong, 400);
    expect(wrong.body.code).toBe('invalid_code');
    expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(false);
    const ok = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) });
    expect(ok.body.recoveryCodes).toHaveLength(10);
    expect(new Set(ok.body.recoveryCodes).size).toBe(10);
    expect((await http.post('/auth/2fa/setup', { provider: 'totp' })).status).toBe(409);
    expect((await http.get('/auth/me')).body.twoFactorEnabled).toBe(true); // this session survives the stamp change
    expect(events.named(BackOfficeEvents.TwoFactorEnabled, user.id)).toHaveLength(1);
  });

  it('end to end with oathtool codes: password, then code, then a session; no session before the code', async () => {
    const { email, setup, user } = await enrolled();
    nextStep();
    const { http, login } = await passwordStep(email);
    expect(login.body.providers).toEqual(['totp', 'recovery']);
    expect(http.cookies.has('backoffice_session')).toBe(false);
    expect(http.cookies.has(TWO_FACTOR_COOKIE)).toBe(true);
    expect((await http.get('/auth/me')).status).toBe(401);
    expect(events.named(BackOfficeEvents.LoginRequiresVerification, user.id).length).toBeGreaterThan(0);
    expect(events.named(BackOfficeEvents.TwoFactorRequested, user.id).at(-1)).toMatchObject({ provider: 'totp' });
    const done = await http.post('/auth/2fa', { provider: 'totp', code: independentCode(setup.secret, ctx.clock) });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'success', user: { email, twoFactorEnabled: true } });
    expect(http.cookies.has(TWO_FACTOR_COOKIE)).toBe(false);
    expect((await http.get('/auth/me')).status).toBe(200);
  });

  it('ASVS 2.8.4/2.8.5: a used code is refused (replay), and so is a code from two steps ago', async () => {
    const { email, setup } = await enrolled();
    nextStep();
    const first = await passwordStep(email);
    const code = independentCode(setup.secret, ctx.clock);
    expect((await first.http.post('/auth/2fa', { provider: 'totp', code })).status).toBe(200);
    const second = await passwordStep(email);
    const replay = await second.http.post('/auth/2fa', { provider: 'totp', code });
    expectClientError(replay, 401);
    expect(replay.body.code).toBe('invalid_code');
    const old = await second.http.post('/auth/2fa', { provider: 'totp', code: independentCode(setup.secret, ctx.clock, -2) });
    expect(old.body.code).toBe('invalid_code');
    nextStep();
    expect((await second.http.post('/auth/2fa', { provider: 'totp', code: independentCode(setup.secret, ctx.clock) })).status).toBe(200);
  });

  it('a recovery code works once', async () => {
    const { email, recoveryCodes } = await enrolled();
    const first = await passwordStep(email);
    expect((await first.http.post('/auth/2fa', { provider: 'recovery', code: recoveryCodes[3].toLowerCase() })).status).toBe(200);
    const second = await passwordStep(email);
    const reused = await second.http.post('/auth/2fa', { provider: 'recovery', code: recoveryCodes[3] });
    expect(reused.body.code).toBe('invalid_code');
    const stored = await ctx.app.get(DataSource).query('SELECT code_hash FROM backoffice_user_recovery_code');
    expect(JSON.stringify(stored)).not.toContain(recoveryCodes[0].replace('-', ''));
  });

  it('ASVS 2.2.1: wrong codes count toward lockout: 5 wrong codes lock (423)', async () => {
    const { email, setup } = await enrolled();
    const { http } = await passwordStep(email);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await http.post('/auth/2fa', { provider: 'totp', code: '123456' })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 423]);
    nextStep();
    const again = await http.post('/auth/2fa', { provider: 'totp', code: independentCode(setup.secret, ctx.clock) });
    expect(again.status).toBe(401); // the pending sign-in died with the lock
    expect((await new HttpClient(ctx.url).login(email, password)).status).toBe(423);
  });

  it('ASVS 2.2.1: wrong codes keep counting across password sign-ins (the password step does not reset the count)', async () => {
    const { email } = await enrolled();
    const statuses: number[] = [];
    for (let round = 0; round < 3; round++) {
      const { http } = await passwordStep(email);
      for (let i = 0; i < 2; i++) statuses.push((await http.post('/auth/2fa', { provider: 'totp', code: '000000' })).status);
    }
    // the 5th wrong code locks; the lock also ends that pending sign-in (its cookie is cleared: 401 two_factor_expired)
    expect(statuses).toEqual([401, 401, 401, 401, 423, 401]);
    expect((await new HttpClient(ctx.url).login(email, password)).status).toBe(423);
  });

  it('OWASP ASVS 4.0 2.2.1: the lock that wrong codes set ends that pending sign-in on the server: its kept cookie gets no session after an unlock', async () => {
    const { email, setup, user } = await enrolled();
    const { http } = await passwordStep(email);
    const token = http.cookies.get(TWO_FACTOR_COOKIE)!;
    const replaying = () => {
      const client = new HttpClient(ctx.url);
      client.cookies.set(TWO_FACTOR_COOKIE, token);
      return client;
    };
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await replaying().post('/auth/2fa', { provider: 'totp', code: '123456' })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 423]);
    // An admin unlocks the account (or the lockout runs out); the guesser kept the pending cookie the 423 cleared.
    await ctx.userManager.setLockoutEnd((await ctx.userManager.findById(user.id))!, null);
    nextStep();
    const resumed = await replaying().post('/auth/2fa', { provider: 'totp', code: independentCode(setup.secret, ctx.clock) });
    expectClientError(resumed, 401);
    expect(resumed.body.code).toBe('two_factor_expired');
    expect(resumed.setCookies.some((c) => c.startsWith('backoffice_session='))).toBe(false);
  });

  it('the pending state expires after 5 minutes (401 two_factor_expired)', async () => {
    const { email, setup } = await enrolled();
    const { http } = await passwordStep(email);
    ctx.clock.advance(5 * 60_000 + 1000);
    const late = await http.post('/auth/2fa', { provider: 'totp', code: independentCode(setup.secret, ctx.clock) });
    expectClientError(late, 401);
    expect(late.body.code).toBe('two_factor_expired');
    expect((await new HttpClient(ctx.url).post('/auth/2fa', { provider: 'totp', code: '123456' })).body.code).toBe('two_factor_expired');
  });

  it('disable needs the password and ends other sessions; admin reset turns it off and ends all sessions', async () => {
    const { email, http, user } = await enrolled();
    nextStep();
    const missing = await http.post('/auth/2fa/disable', {});
    expectClientError(missing, 400);
    expect(missing.body).toMatchObject({ code: 'validation_failed', errors: [{ field: 'password' }] });
    const wrong = await http.post('/auth/2fa/disable', { password: 'not the password' });
    expectClientError(wrong, 401);
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(1); // the missing one did not count
    expect((await http.post('/auth/2fa/disable', { password })).status).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(false);
    expect((await new HttpClient(ctx.url).login(email, password)).body.status).toBe('success');

    const again = await enrolled();
    await ctx.userManager.createUser({ email: `boss${counter}@example.com`, name: 'Boss', password, groups: ['admin'] });
    const admin = new HttpClient(ctx.url);
    await admin.login(`boss${counter}@example.com`, password);
    const reset = await admin.post(`/users/${again.user.id}/2fa/reset`);
    expect(reset.status).toBe(200);
    expect(reset.body.twoFactorEnabled).toBe(false);
    expect((await again.http.get('/auth/me')).status).toBe(401);
    expect((await new HttpClient(ctx.url).login(again.email, password)).body.status).toBe('success');
    expect(events.named(BackOfficeEvents.TwoFactorDisabled, again.user.id)).toHaveLength(1);
  });

  it('OWASP ASVS 4.0 2.2.1: disable with password null is a 400 validation_failed that does not count toward lockout, as a missing one', async () => {
    const { http, user } = await enrolled();
    nextStep();
    const nullPassword = await http.post('/auth/2fa/disable', { password: null });
    expectClientError(nullPassword, 400);
    expect(nullPassword.body.code).toBe('validation_failed');
    expect(nullPassword.body.errors.map((e: { field: string }) => e.field)).toContain('password');
    expect((await ctx.userManager.findById(user.id))!.accessFailedCount).toBe(0);
    expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(true);
  });

  it('bad input on the 2FA routes: 4xx with a code, never 500', async () => {
    const { email, http } = await enrolled();
    await expectBadBodiesRefused(http, 'POST', '/auth/2fa/setup', ['provider']);
    await expectBadBodiesRefused(http, 'POST', '/auth/2fa/enable', ['provider', 'code']);
    await expectBadBodiesRefused(http, 'POST', '/auth/2fa/disable', ['password']);
    const { http: pending } = await passwordStep(email);
    await expectBadBodiesRefused(pending, 'POST', '/auth/2fa', ['provider', 'code']);
    expectClientError(await http.post('/auth/2fa/setup', { provider: 'sms' }), 400);
  });
});

class NoTwoFactorManager extends BackOfficeUserManager {
  override get supportsUserTwoFactor() {
    return false;
  }
}

describe('A custom manager with supportsUserTwoFactor = false turns the whole 2FA flow off', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('even for users who set it up: plain login, and the 2FA routes answer 404', async () => {
    const on = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    let secret: string;
    try {
      await on.userManager.createUser({ email: 'had2fa@example.com', name: 'H', password });
      const http = new HttpClient(on.url);
      await http.login('had2fa@example.com', password);
      secret = (await http.post('/auth/2fa/setup', { provider: 'totp' })).body.secret;
      expect((await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(secret, on.clock) })).status).toBe(200);
      expect((await new HttpClient(on.url).login('had2fa@example.com', password)).body.status).toBe('requiresTwoFactor');
    } finally {
      await on.close();
    }
    const off = await createIdentityApp(db, { identity: { userManager: NoTwoFactorManager, rateLimits: { enabled: false } } });
    try {
      const http = new HttpClient(off.url);
      const login = await http.login('had2fa@example.com', password);
      expect(login.body.status).toBe('success');
      expectClientError(await http.post('/auth/2fa/setup', { provider: 'totp' }), 404);
      expectClientError(await http.post('/auth/2fa/disable', { password }), 404);
      expectClientError(await new HttpClient(off.url).post('/auth/2fa', { provider: 'totp', code: '123456' }), 401);
    } finally {
      await off.close();
    }
  });

  it('a store without recovery codes: turning 2FA on succeeds with no codes (not a 501 after 2FA was already on), and sign-in offers no recovery', async () => {
    const ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, userStore: StoreWithoutRecoveryCodes } });
    try {
      expect(ctx.userManager.supportsUserRecoveryCodes).toBe(false);
      const user = (await ctx.userManager.createUser({ email: 'no-recovery@example.com', name: 'N', password })).value!;
      const http = new HttpClient(ctx.url);
      await http.login(user.email, password);
      const secret = (await http.post('/auth/2fa/setup', { provider: 'totp' })).body.secret;
      const enable = await http.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(secret, ctx.clock) });
      expect(enable.status, enable.text).toBe(200);
      expect(enable.body).toEqual({ recoveryCodes: [] });
      expect((await ctx.userManager.findById(user.id))!.twoFactorEnabled).toBe(true);
      expect((await new HttpClient(ctx.url).login(user.email, password)).body).toEqual({ status: 'requiresTwoFactor', providers: ['totp'] });
    } finally {
      await ctx.close();
    }
  });

  it('without an encryption key there is no TOTP provider and supportsUserTwoFactor is false', async () => {
    const ctx = await createIdentityApp(db, { identity: { twoFactor: {} } });
    try {
      expect(ctx.userManager.twoFactorProviders).toEqual([]);
      expect(ctx.userManager.supportsUserTwoFactor).toBe(false);
    } finally {
      await ctx.close();
    }
  });
});
