import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, signedInClient, type IdentityApp } from '../support/identity-app.js';
import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import { HttpClient } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';
import { withIp } from '../support/fixed-client-ip.js';
import type { BackOfficeIdentityModuleOptions } from '../../src/backoffice-identity/index.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const password = 'correct horse battery staple';

/** Each suite run gets its own client IP, so parallel runs never share a rate-limit key. */
function uniqueIp(): string {
  const b = randomBytes(2);
  return `198.51.${b[0]}.${b[1]}`;
}

describe('Rate limits and several app instances', () => {
  let db: TestDatabase;
  let counter = 0;
  const email = () => `rl${++counter}-${randomBytes(3).toString('hex')}@example.com`;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** An email sender that only records what it was asked to send. */
  const recordingSender = () => {
    const sent: Array<{ to: string; type: string }> = [];
    return { sent, useValue: { async send(message: { to: string }, type: string) { sent.push({ to: message.to, type }); return 'message-id'; } } };
  };

  it('ASVS 2.2.1: login is limited per IP + username (429 with Retry-After), in memory by default', async () => {
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { loginPerIpAndUsername: 3, loginPerIp: 1000 }, lockout: { maxFailedAccessAttempts: 100 } }) });
    try {
      const user = email();
      await ctx.userManager.createUser({ email: user, name: 'R', password });
      const http = new HttpClient(ctx.url);
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await http.login(user, 'wrong password entirely')).status);
      expect(statuses).toEqual([401, 401, 401]);
      const limited = await http.login(user, password);
      expectClientError(limited, 429);
      expect(limited.body.code).toBe('too_many_requests');
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      // another username from the same IP is not limited by that key
      expect((await http.login(email(), 'wrong password entirely')).status).toBe(401);
    } finally {
      await ctx.close();
    }
  });

  it('login is limited per IP across usernames', async () => {
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { loginPerIpAndUsername: 1000, loginPerIp: 4 } }) });
    try {
      const http = new HttpClient(ctx.url);
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await http.login(email(), 'wrong password entirely')).status);
      expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 2.2.1: a limit reached late in its window still holds after the first attempts age out (in memory: no uncounted attempts while blocked; Retry-After is when one is allowed again)', async () => {
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { loginPerIpAndUsername: 1000, loginPerIp: 3 } }) });
    const realNow = Date.now.bind(Date);
    let offsetMs = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offsetMs);
    try {
      const http = new HttpClient(ctx.url);
      const first = [];
      for (let i = 0; i < 3; i++) first.push((await http.login(email(), 'wrong password entirely')).status);
      expect(first).toEqual([401, 401, 401]);
      offsetMs = 50_000; // late in the minute: the fourth attempt is over the limit
      const blocked = await http.login(email(), 'wrong password entirely');
      expectClientError(blocked, 429);
      const retryAfter = Number(blocked.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(11);
      offsetMs += retryAfter * 1000 + 1000; // the first three attempts are a minute old now
      const statuses = [];
      for (let i = 0; i < 8; i++) statuses.push((await http.login(email(), 'wrong password entirely')).status);
      // At most 3 per minute, as before: the attempts after the block are counted again.
      expect(statuses.filter((s) => s !== 429).length).toBeLessThanOrEqual(3);
      expect(statuses.slice(3)).toEqual([429, 429, 429, 429, 429]);
    } finally {
      clock.mockRestore();
      await ctx.close();
    }
  });

  it('ASVS 2.2.1: a blocked per-IP limit of another way in (2FA) does not switch off the per-IP login limit (each rule its own record)', async () => {
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { loginPerIpAndUsername: 1000, loginPerIp: 4 } }) });
    try {
      const http = new HttpClient(ctx.url);
      const twoFactor = [];
      // Cheap to send: no pending sign-in, so each answers 401 until the 2FA per-IP limit blocks.
      for (let i = 0; i < 5; i++) twoFactor.push((await http.post('/auth/2fa', { provider: 'totp', code: '123456' })).status);
      expect(twoFactor).toEqual([401, 401, 401, 401, 429]);
      const statuses = [];
      for (let i = 0; i < 8; i++) statuses.push((await http.login(email(), 'wrong password entirely')).status);
      expect(statuses).toEqual([401, 401, 401, 401, 429, 429, 429, 429]);
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 2.2.1: forgot-password for the "email" "<ip>|<username>" does not block the login limit per IP + username', async () => {
    const ip = uniqueIp();
    const ctx = await createIdentityApp(db, { identity: withIp(ip, { rateLimits: { loginPerIpAndUsername: 3, loginPerIp: 1000 }, lockout: { maxFailedAccessAttempts: 1000 } }) });
    try {
      const victim = email();
      const http = new HttpClient(ctx.url);
      const forgot = [];
      // The forgot-password rule's key is the email; the login rule's key is `${ip}|${username}`: the same text.
      for (let i = 0; i < 6; i++) forgot.push((await http.post('/auth/forgot-password', { email: `${ip}|${victim}` })).status);
      expect(forgot.at(-1)).toBe(429);
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await http.login(victim, 'wrong password entirely')).status);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 11.1.4: POST /auth/me/email (a link mailed to an address the caller picks) is limited per user, 5 per hour by default, then 429 with Retry-After and no mail', async () => {
    const mail = recordingSender();
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { emailSender: { useValue: mail.useValue } }) });
    try {
      const user = email();
      await ctx.userManager.createUser({ email: user, name: 'R', password });
      const http = await signedInClient(ctx, user, password);
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await http.post('/auth/me/email', { newEmail: `victim-${i}@example.net` })).status);
      expect(statuses).toEqual([202, 202, 202, 202, 202]);
      const limited = await http.post('/auth/me/email', { newEmail: 'victim-5@example.net' });
      expectClientError(limited, 429);
      expect(limited.body.code).toBe('too_many_requests');
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      await ctx.app.get(BackOfficeBackgroundTasks).drain();
      expect(mail.sent.filter((m) => m.type === 'EmailChangeConfirm').map((m) => m.to).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `victim-${i}@example.net`));
      // Another user is not limited by that one's counter.
      const other = email();
      await ctx.userManager.createUser({ email: other, name: 'R', password });
      expect((await (await signedInClient(ctx, other, password)).post('/auth/me/email', { newEmail: 'victim-6@example.net' })).status).toBe(202);
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 11.1.4: rateLimits.emailChangePerUser sets the email-change limit', async () => {
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { emailSender: { useValue: recordingSender().useValue }, rateLimits: { emailChangePerUser: 2 } }) });
    try {
      const user = email();
      await ctx.userManager.createUser({ email: user, name: 'R', password });
      const http = await signedInClient(ctx, user, password);
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await http.post('/auth/me/email', { newEmail: `victim-${i}@example.net` })).status);
      expect(statuses).toEqual([202, 202, 429]);
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 2.2.1: forgot-password is limited per IP across addresses too (20 per hour by default), beside the per-email limit', async () => {
    const mail = recordingSender();
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { emailSender: { useValue: mail.useValue } }) });
    try {
      const http = new HttpClient(ctx.url);
      const statuses = [];
      for (let i = 0; i < 20; i++) statuses.push((await http.post('/auth/forgot-password', { email: email() })).status);
      expect(statuses.every((s) => s === 202), String(statuses)).toBe(true);
      const limited = await http.post('/auth/forgot-password', { email: email() });
      expectClientError(limited, 429);
      expect(limited.body.code).toBe('too_many_requests');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(3600);
      // Another IP is not limited by that one's counter.
      const ctx2 = await createIdentityApp(db, { identity: withIp(uniqueIp(), { emailSender: { useValue: mail.useValue } }) });
      try {
        expect((await new HttpClient(ctx2.url).post('/auth/forgot-password', { email: email() })).status).toBe(202);
      } finally {
        await ctx2.close();
      }
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 2.2.1 / 5.0 6.3.8: once the per-IP forgot-password limit is reached, known and unknown addresses get the same 429 and no email goes out', async () => {
    const mail = recordingSender();
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { emailSender: { useValue: mail.useValue }, rateLimits: { forgotPasswordPerIp: 3 } }) });
    try {
      const known = email();
      await ctx.userManager.createUser({ email: known, name: 'R', password });
      const http = new HttpClient(ctx.url);
      for (let i = 0; i < 3; i++) expect((await http.post('/auth/forgot-password', { email: email() })).status).toBe(202);
      const forKnown = await http.post('/auth/forgot-password', { email: known });
      const forUnknown = await http.post('/auth/forgot-password', { email: email() });
      expectClientError(forKnown, 429);
      expectClientError(forUnknown, 429);
      const shape = (r: typeof forKnown) => ({ status: r.status, body: { ...r.body, retryAfterSeconds: typeof r.body.retryAfterSeconds }, contentType: r.headers.get('content-type') });
      expect(shape(forKnown)).toEqual(shape(forUnknown));
      expect(Math.abs(Number(forKnown.headers.get('retry-after')) - Number(forUnknown.headers.get('retry-after')))).toBeLessThanOrEqual(1);
      await ctx.app.get(BackOfficeBackgroundTasks).drain();
      expect(mail.sent.filter((m) => m.to === known)).toEqual([]);
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 2.2.1 / 5.0 6.3.8: a forgot-password request refused by the per-IP limit does not count against the address (a client over its IP limit cannot use up a victim\'s per-email budget)', async () => {
    const mail = recordingSender();
    const byHeader: BackOfficeIdentityModuleOptions = { ipResolver: { useValue: { resolveIp: (request: { headers: Record<string, unknown> }) => String(request.headers['x-test-ip']) } } };
    const ctx = await createIdentityApp(db, { identity: { ...byHeader, emailSender: { useValue: mail.useValue }, rateLimits: { forgotPasswordPerIp: 3, forgotPasswordPerEmail: 2 } } });
    try {
      const victim = email();
      await ctx.userManager.createUser({ email: victim, name: 'Victim', password });
      const http = new HttpClient(ctx.url);
      const forgotFrom = (ip: string, address: string) => http.request('POST', '/auth/forgot-password', { body: { email: address }, headers: { 'x-test-ip': ip } });
      const attacker = uniqueIp();
      for (let i = 0; i < 3; i++) expect((await forgotFrom(attacker, email())).status).toBe(202);
      // Over its IP limit: every request for the victim is refused by the per-IP rule, the same as for an unknown address.
      for (let i = 0; i < 5; i++) {
        const forVictim = await forgotFrom(attacker, victim);
        const forUnknown = await forgotFrom(attacker, email());
        expectClientError(forVictim, 429);
        expect({ status: forVictim.status, code: forVictim.body.code }).toEqual({ status: forUnknown.status, code: forUnknown.body.code });
      }
      // The victim's per-email budget is untouched: the victim (another IP, within its own IP limit) still gets both links, then the
      // per-email rule holds.
      const owner = uniqueIp();
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await forgotFrom(owner, victim)).status);
      expect(statuses).toEqual([202, 202, 429]);
      await ctx.app.get(BackOfficeBackgroundTasks).drain();
      expect(mail.sent.filter((m) => m.to === victim)).toHaveLength(2);
    } finally {
      await ctx.close();
    }
  });

  describe('IPv6 clients: per-IP limits count a /64 as one client', () => {
    /** The client address comes from the `x-test-ip` header, so one app serves several clients. */
    const byHeader: BackOfficeIdentityModuleOptions = { ipResolver: { useValue: { resolveIp: (request: { headers: Record<string, unknown> }) => String(request.headers['x-test-ip']) } } };
    const loginFrom = (http: HttpClient, ip: string) =>
      http.request('POST', '/auth/login', { body: { username: email(), password: 'wrong password entirely' }, headers: { 'x-test-ip': ip } }).then((r) => r.status);
    const prefix = () => `2001:db8:${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`;

    it('ASVS 4.0 2.2.1: addresses of one /64 (which one client controls) share the per-IP login limit; another /64 does not', async () => {
      const ctx = await createIdentityApp(db, { identity: { ...byHeader, rateLimits: { loginPerIpAndUsername: 1000, loginPerIp: 4 } } });
      try {
        const http = new HttpClient(ctx.url);
        const p = prefix();
        const same = [`${p}::1`, `${p}:0:0:0:2`, `${p}:ffff:ffff:ffff:ffff`, `${p.toUpperCase()}::abcd`, `${p}::5`, `${p}:1::6`];
        const statuses = [];
        for (const ip of same) statuses.push(await loginFrom(http, ip));
        expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
        expect(await loginFrom(http, `${prefix()}::1`)).toBe(401);
      } finally {
        await ctx.close();
      }
    });

    it('ASVS 4.0 2.2.1: the /64 also holds for forgot-password per IP, and an IPv4-mapped address counts as its IPv4 address', async () => {
      const ctx = await createIdentityApp(db, { identity: { ...byHeader, emailSender: { useValue: recordingSender().useValue }, rateLimits: { forgotPasswordPerIp: 2 } } });
      try {
        const http = new HttpClient(ctx.url);
        const forgotFrom = (ip: string) => http.request('POST', '/auth/forgot-password', { body: { email: email() }, headers: { 'x-test-ip': ip } }).then((r) => r.status);
        const p = prefix();
        expect([await forgotFrom(`${p}::1`), await forgotFrom(`${p}::2`), await forgotFrom(`${p}::3`)]).toEqual([202, 202, 429]);
        const v4 = uniqueIp();
        expect([await forgotFrom(v4), await forgotFrom(`::ffff:${v4}`), await forgotFrom(v4)]).toEqual([202, 202, 429]);
      } finally {
        await ctx.close();
      }
    });

    it('rateLimits.ipv6Subnet sets the prefix length (128: each address on its own)', async () => {
      const ctx = await createIdentityApp(db, { identity: { ...byHeader, rateLimits: { loginPerIpAndUsername: 1000, loginPerIp: 2, ipv6Subnet: 128 } } });
      try {
        const http = new HttpClient(ctx.url);
        const p = prefix();
        expect([await loginFrom(http, `${p}::1`), await loginFrom(http, `${p}::2`), await loginFrom(http, `${p}::3`)]).toEqual([401, 401, 401]);
        expect([await loginFrom(http, `${p}::1`), await loginFrom(http, `${p}:0::1`)]).toEqual([401, 429]);
      } finally {
        await ctx.close();
      }
    });
  });

  it('ASVS 4.0 2.2.1: the routes that take an emailed token without a session (reset-password, invite accept, their verify routes, email-change confirm) are limited per IP, each under its own counter', async () => {
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { loginPerIpAndUsername: 1000, loginPerIp: 3 } }) });
    try {
      const user = await ctx.userManager.createUser({ email: email(), name: 'R', password });
      const userId = user.value!.id;
      const http = new HttpClient(ctx.url);
      const routes: Array<[string, Record<string, string>]> = [
        ['/auth/reset-password', { userId, token: 'guessed-token', newPassword: 'a brand new passphrase 42' }],
        ['/auth/invite/accept', { userId, token: 'guessed-token', password: 'a brand new passphrase 42' }],
        ['/auth/reset-password/verify', { userId, token: 'guessed-token' }],
        ['/auth/invite/verify', { userId, token: 'guessed-token' }],
        ['/auth/me/email/confirm', { userId, token: 'guessed-token' }],
      ];
      for (const [path, body] of routes) {
        const statuses = [];
        for (let i = 0; i < 4; i++) statuses.push((await http.post(path, body)).status);
        expect(statuses, path).toEqual([400, 400, 400, 429]);
        const limited = await http.post(path, body);
        expectClientError(limited, 429);
        expect(limited.body.code).toBe('too_many_requests');
        expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      }
      // Their own counters: the sign-in limit per IP is untouched.
      expect((await http.login(email(), 'wrong password entirely')).status).toBe(401);
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 11.1.4: resend-invite is limited per invited user (5 per hour by default): an inviter cannot mail one address over and over', async () => {
    const mail = recordingSender();
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { emailSender: { useValue: mail.useValue } }) });
    try {
      const adminEmail = email();
      await ctx.userManager.createUser({ email: adminEmail, name: 'Admin', password, groups: ['admin'] });
      const admin = await signedInClient(ctx, adminEmail, password);
      const invited = await admin.post('/users/invite', { email: email(), name: 'Invitee', groups: ['editor'] });
      expect(invited.status, invited.text).toBe(201);
      const resend = () => admin.post(`/users/${invited.body.user.id}/resend-invite`);
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await resend()).status);
      expect(statuses).toEqual([202, 202, 202, 202, 202]);
      const limited = await resend();
      expectClientError(limited, 429);
      expect(limited.body.code).toBe('too_many_requests');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      // Another invitee is not limited by that one's counter.
      const other = await admin.post('/users/invite', { email: email(), name: 'Invitee', groups: ['editor'] });
      expect((await admin.post(`/users/${other.body.user.id}/resend-invite`)).status).toBe(202);
    } finally {
      await ctx.close();
    }
  });

  it('rateLimits.enabled: false turns the limits off', async () => {
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { enabled: false, loginPerIp: 1 } }) });
    try {
      const http = new HttpClient(ctx.url);
      for (let i = 0; i < 4; i++) expect((await http.login(email(), 'wrong password entirely')).status).toBe(401);
    } finally {
      await ctx.close();
    }
  });

  it('an unreachable Redis fails open: logins still work (lockout still protects accounts)', async () => {
    const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { redisUrl: 'redis://127.0.0.1:9' } }) });
    try {
      const user = email();
      await ctx.userManager.createUser({ email: user, name: 'R', password });
      const started = Date.now();
      expect((await new HttpClient(ctx.url).login(user, password)).status).toBe(200);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await ctx.close();
    }
  });

  describe('two instances on one database and one Redis', () => {
    let a: IdentityApp;
    let b: IdentityApp;
    beforeAll(async () => {
      const ip = uniqueIp();
      const options = withIp(ip, { rateLimits: { redisUrl: REDIS_URL, loginPerIpAndUsername: 6, loginPerIp: 1000 }, emailSender: { useValue: recordingSender().useValue } });
      a = await createIdentityApp(db, { identity: options });
      b = await createIdentityApp(db, { identity: options });
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
    });

    it('a session made on one instance is valid on the other; logout on one ends it on both', async () => {
      const user = email();
      await a.userManager.createUser({ email: user, name: 'Two', password });
      const onA = new HttpClient(a.url);
      expect((await onA.login(user, password)).status).toBe(200);
      const onB = new HttpClient(b.url);
      for (const [k, v] of onA.cookies) onB.cookies.set(k, v);
      expect((await onB.get('/auth/me')).body.email).toBe(user);
      expect((await onA.post('/auth/logout')).status).toBe(200);
      expect((await onB.get('/auth/me')).status).toBe(401);
    });

    it('failed attempts add up across instances (lockout after 5 in total)', async () => {
      const user = email();
      await a.userManager.createUser({ email: user, name: 'Two', password });
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await new HttpClient(i % 2 ? b.url : a.url).login(user, 'wrong password entirely')).status);
      expect(statuses).toEqual([401, 401, 401, 401, 423]);
      expect((await new HttpClient(b.url).login(user, password)).status).toBe(423);
    });

    it('rate limits add up across instances through Redis', async () => {
      const user = email();
      const statuses = [];
      for (let i = 0; i < 8; i++) statuses.push((await new HttpClient(i % 2 ? b.url : a.url).login(user, 'x wrong password')).status);
      // 6 per IP + username in total, whichever instance answered
      expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
      expect(statuses[4]).toBe(423); // unknown usernames lock like real ones
      expect(statuses.slice(6)).toEqual([429, 429]);
    });

    it('ASVS 4.0 11.1.4: email-change requests add up across instances through Redis (5 per user in total)', async () => {
      const user = email();
      await a.userManager.createUser({ email: user, name: 'Two', password });
      const onA = await signedInClient(a, user, password);
      const onB = new HttpClient(b.url);
      for (const [k, v] of onA.cookies) onB.cookies.set(k, v);
      const statuses = [];
      for (let i = 0; i < 7; i++) statuses.push((await (i % 2 ? onB : onA).post('/auth/me/email', { newEmail: `victim-${i}@example.net` })).status);
      expect(statuses).toEqual([202, 202, 202, 202, 202, 429, 429]);
    });
  });
});
