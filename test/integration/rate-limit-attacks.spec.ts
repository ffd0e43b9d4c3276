import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, httpPlatform, type IdentityApp } from '../support/identity-app.js';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { HttpClient } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';
import { withIp } from '../support/fixed-client-ip.js';
import { CapturingLogger } from '../support/capturing-logger.js';
import { freePort } from '../support/private-postgres.js';
import { BACKOFFICE_RATE_LIMIT_STORAGE, BackOfficeBackgroundTasks, BackOfficeUserManager } from '../../src/backoffice-identity/index.js';
import type { ThrottlerStorageService } from '@nestjs/throttler';
import { BackOfficeRateLimiter } from '../../src/backoffice-identity/rate-limit/backoffice-rate-limiter.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const password = 'correct horse battery staple';

/** Each test gets its own client IP, so parallel runs never share a rate-limit key (also in the shared Redis). */
function uniqueIp(): string {
  const b = randomBytes(3);
  return `10.${b[0]}.${b[1]}.${b[2]}`;
}

/** A private redis-server on `port` (no persistence), ready to answer. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    for (let i = 0; i < 100; i++) {
      if (await probe.connect().then(() => probe.ping(), () => null)) return child;
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on ${port}`);
  } finally {
    probe.disconnect();
  }
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** A host's manager whose lookup folds sub-addresses: `victim+anything@example.com` finds `victim@example.com`. */
class SubAddressFoldingUserManager extends BackOfficeUserManager {
  override normalizeKey(value: string): string {
    return super.normalizeKey(value).replace(/\+[^@]*@/u, '@');
  }
}

describe('Rate limits under attack: races, spoofed addresses, Redis faults', () => {
  let db: TestDatabase;
  let counter = 0;
  const email = () => `rla${++counter}-${randomBytes(3).toString('hex')}@example.com`;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  for (const storage of ['memory', 'redis'] as const) {
    describe(`concurrent requests (${storage})`, () => {
      const redis = storage === 'redis' ? { redisUrl: REDIS_URL } : {};

      it(`ASVS 4.0 2.2.1 / 5.0 6.3.1: 30 parallel wrong logins for one username from one IP: exactly the limit (10) get through, the rest 429 (${storage})`, async () => {
        const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { ...redis, loginPerIpAndUsername: 10, loginPerIp: 1000 }, lockout: { maxFailedAccessAttempts: 1000 } }) });
        try {
          const user = email();
          await ctx.userManager.createUser({ email: user, name: 'R', password });
          const http = new HttpClient(ctx.url);
          const statuses = await Promise.all(Array.from({ length: 30 }, () => http.fresh().login(user, 'wrong password entirely').then((r) => r.status)));
          expect(statuses.filter((s) => s === 401)).toHaveLength(10);
          expect(statuses.filter((s) => s === 429)).toHaveLength(20);
        } finally {
          await ctx.close();
        }
      });

      it(`ASVS 4.0 2.2.1 / 5.0 6.3.1: 30 parallel 2FA codes from one IP: exactly the per-IP limit (10) get through (${storage})`, async () => {
        const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { ...redis, loginPerIpAndUsername: 1000, loginPerIp: 10 } }) });
        try {
          const http = new HttpClient(ctx.url);
          const statuses = await Promise.all(Array.from({ length: 30 }, () => http.fresh().post('/auth/2fa', { provider: 'totp', code: '123456' }).then((r) => r.status)));
          expect(statuses.filter((s) => s !== 429)).toHaveLength(10);
          expect(statuses.filter((s) => s === 429)).toHaveLength(20);
        } finally {
          await ctx.close();
        }
      });

      it(`the 429 has the contract's shape { statusCode, code, message } and a Retry-After within the window (${storage})`, async () => {
        const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { ...redis, loginPerIpAndUsername: 1000, loginPerIp: 1 } }) });
        try {
          const http = new HttpClient(ctx.url);
          expect((await http.login(email(), 'wrong password entirely')).status).toBe(401);
          const limited = await http.login(email(), 'wrong password entirely');
          expectClientError(limited, 429);
          expect(limited.body).toMatchObject({ statusCode: 429, code: 'too_many_requests' });
          const retryAfter = limited.headers.get('retry-after');
          expect(retryAfter).toMatch(/^\d+$/);
          expect(Number(retryAfter)).toBeGreaterThan(0);
          expect(Number(retryAfter)).toBeLessThanOrEqual(60);
        } finally {
          await ctx.close();
        }
      });
    });
  }

  describe('a client over its per-IP limit', () => {
    it('OWASP ASVS 5.0 2.4.1: adds no counter per username, credential or client id it sends (the store does not grow with its requests)', async () => {
      const ctx = await createIdentityApp(db, { identity: withIp(uniqueIp(), { rateLimits: { loginPerIpAndUsername: 1000, loginPerIp: 5, tokenPerIpAndClient: 1000 } }) });
      try {
        const storage = ctx.app.get<ThrottlerStorageService>(BACKOFFICE_RATE_LIMIT_STORAGE);
        const http = new HttpClient(ctx.url);
        const logins = [];
        for (let i = 0; i < 40; i++) logins.push((await http.login(email(), 'wrong password entirely')).status);
        expect(logins.filter((s) => s !== 429)).toHaveLength(5);
        // The per-IP record and one per username of the 5 attempts it let through; not one per username sent.
        expect(storage.storage.size).toBe(6);
        const tokens = [];
        for (let i = 0; i < 40; i++) tokens.push((await http.post('/auth/token', { grant_type: 'client_credentials', client_id: `c-${i}`, client_secret: 'guessed' })).status);
        expect(tokens.filter((s) => s !== 429)).toHaveLength(5);
        expect(storage.storage.size).toBe(12);
      } finally {
        await ctx.close();
      }
    });
  });

  describe('per-account limits follow the user manager\'s lookup key (normalizeKey)', () => {
    it('ASVS 4.0 2.2.1 / 5.0 6.3.1: spellings that the manager resolves to one user share its forgot-password and login limits (no mail-bombing through victim+1@, victim+2@, ...)', async () => {
      const sent: string[] = [];
      const emailSender = { useValue: { async send(message: { to: string }) { sent.push(message.to); return 'message-id'; } } };
      const ctx = await createIdentityApp(db, {
        identity: withIp(uniqueIp(), { userManager: SubAddressFoldingUserManager, emailSender, rateLimits: { forgotPasswordPerEmail: 3, forgotPasswordPerIp: 1000, loginPerIpAndUsername: 3, loginPerIp: 1000 }, lockout: { maxFailedAccessAttempts: 1000 } }),
      });
      try {
        const [local, domain] = email().split('@');
        await ctx.userManager.createUser({ email: `${local}@${domain}`, name: 'Victim', password });
        expect((await ctx.userManager.findByEmail(`${local}+x@${domain}`))?.email).toBe(`${local}@${domain}`);
        const http = new HttpClient(ctx.url);
        const forgot = [];
        for (let i = 0; i < 5; i++) forgot.push((await http.post('/auth/forgot-password', { email: `${local}+${i}@${domain}` })).status);
        expect(forgot).toEqual([202, 202, 202, 429, 429]);
        await ctx.app.get(BackOfficeBackgroundTasks).drain();
        expect(sent).toHaveLength(3);
        const logins = [];
        for (let i = 0; i < 5; i++) logins.push((await http.login(`${local}+${i}@${domain}`, 'wrong password entirely')).status);
        expect(logins).toEqual([401, 401, 401, 429, 429]);
      } finally {
        await ctx.close();
      }
    });
  });

  describe('the default IP resolver (no proxy trusted)', () => {
    it('ASVS 4.0 2.2.1: a client cannot leave its per-IP limit by sending X-Forwarded-For, X-Real-IP or Forwarded', async () => {
      const ctx = await createIdentityApp(db, { identity: { rateLimits: { loginPerIpAndUsername: 1000, loginPerIp: 3 } } });
      try {
        const http = new HttpClient(ctx.url);
        const statuses = [];
        for (let i = 0; i < 6; i++) {
          const fake = uniqueIp();
          const headers = { 'x-forwarded-for': fake, 'x-real-ip': fake, forwarded: `for=${fake}`, 'x-client-ip': fake };
          statuses.push((await http.request('POST', '/auth/login', { body: { username: email(), password: 'wrong password entirely' }, headers })).status);
        }
        expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
      } finally {
        await ctx.close();
      }
    });
  });

  describe.skipIf(httpPlatform() !== 'express')('Express `trust proxy` (a host setting the module cannot choose)', () => {
    const warnings = (logger: CapturingLogger) => logger.lines.filter((line) => /trust proxy/.test(line));
    /** An app whose Express has `trust proxy` set to `trust`, allowing 2 logins per IP; `logger` gets its lines. */
    const trustingApp = (trust: boolean | number | string, logger: CapturingLogger) =>
      createIdentityApp(db, { logger, identity: { rateLimits: { loginPerIpAndUsername: 1000, loginPerIp: 2 } }, beforeListen: (app) => void (app as NestExpressApplication).set('trust proxy', trust) });
    /** The statuses of 4 wrong logins from one client, each with X-Forwarded-For `<a new address>, <lastHop>`. */
    async function forwardedLogins(ctx: IdentityApp, lastHop: string): Promise<number[]> {
      const http = new HttpClient(ctx.url);
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        statuses.push((await http.request('POST', '/auth/login', { body: { username: email(), password: 'wrong password entirely' }, headers: { 'x-forwarded-for': `${uniqueIp()}, ${lastHop}` } })).status);
      }
      return statuses;
    }

    it('ASVS 4.0 2.2.1: `true` trusts every hop, so a client picks its own IP with X-Forwarded-For: the module warns at start-up', async () => {
      const logger = new CapturingLogger();
      const ctx = await trustingApp(true, logger);
      try {
        const statuses = await forwardedLogins(ctx, '127.0.0.1');
        expect(statuses).toEqual([401, 401, 401, 401]); // why the warning: the limit of 2 never holds
        expect(warnings(logger)).toHaveLength(1);
        expect(warnings(logger)[0]).toMatch(/clients can choose their IP address/);
      } finally {
        await ctx.close();
      }
    });

    it('a hop count or the proxies\' addresses: no warning, and an address the client adds in front is not taken', async () => {
      for (const trust of [1, 'loopback'] as const) {
        const logger = new CapturingLogger();
        const ctx = await trustingApp(trust, logger);
        try {
          // As a proxy that appends the peer's address: the client's own entries stay in front of it.
          const statuses = await forwardedLogins(ctx, '203.0.113.7');
          expect(statuses, String(trust)).toEqual([401, 401, 429, 429]);
          expect(warnings(logger), String(trust)).toEqual([]);
        } finally {
          await ctx.close();
        }
      }
    });
  });

  describe('Redis', () => {
    it('keys are named per rule (no two routes share a counter) and carry a TTL no longer than the window, set with the first hit', async () => {
      const ip = uniqueIp();
      const ctx = await createIdentityApp(db, { identity: withIp(ip, { rateLimits: { redisUrl: REDIS_URL } }) });
      const redis = new Redis(REDIS_URL);
      try {
        const http = new HttpClient(ctx.url);
        const user = email();
        await http.login(user, 'wrong password entirely');
        await http.post('/auth/forgot-password', { email: user });
        const keys = {
          'login-ip': BackOfficeRateLimiter.storageKey({ name: 'login-ip', key: ip }),
          'forgot-ip': BackOfficeRateLimiter.storageKey({ name: 'forgot-ip', key: ip }),
        };
        const window = { 'login-ip': 60_000, 'forgot-ip': 3_600_000 };
        for (const [name, key] of Object.entries(keys) as Array<[keyof typeof keys, string]>) {
          const found = await redis.keys(`*${key}`);
          expect(found, name).toHaveLength(1);
          const ttl = await redis.pttl(found[0]);
          expect(ttl, name).toBeGreaterThan(0);
          expect(ttl, name).toBeLessThanOrEqual(window[name]);
        }
        expect(keys['login-ip']).not.toBe(keys['forgot-ip']);
      } finally {
        redis.disconnect();
        await ctx.close();
      }
    });

    it('two applications on one Redis keep their counters apart with their own rateLimits.redisKeyPrefix; instances of one application (one prefix) share them', async () => {
      const ip = uniqueIp();
      const app = (redisKeyPrefix: string) => createIdentityApp(db, { identity: withIp(ip, { rateLimits: { redisUrl: REDIS_URL, redisKeyPrefix, loginPerIpAndUsername: 1000, loginPerIp: 2 } }) });
      const tag = randomBytes(4).toString('hex');
      const shopA = await app(`shop-${tag}:rl:`);
      const shopB = await app(`shop-${tag}:rl:`);
      const blog = await app(`blog-${tag}:rl:`);
      const redis = new Redis(REDIS_URL);
      try {
        const attempt = (ctx: IdentityApp) => new HttpClient(ctx.url).login(email(), 'wrong password entirely').then((r) => r.status);
        expect([await attempt(shopA), await attempt(shopB), await attempt(shopA)]).toEqual([401, 401, 429]);
        expect([await attempt(blog), await attempt(blog), await attempt(blog)]).toEqual([401, 401, 429]);
        expect(await redis.keys(`shop-${tag}:rl:login-ip:*`)).toHaveLength(1);
        expect(await redis.keys(`blog-${tag}:rl:login-ip:*`)).toHaveLength(1);
      } finally {
        redis.disconnect();
        await Promise.all([shopA.close(), shopB.close(), blog.close()]);
      }
    });

    describe('a Redis that goes down while the app runs', () => {
      let server: ChildProcess | undefined;
      let port: number;
      let ctx: IdentityApp;
      const logger = new CapturingLogger();
      const ip = uniqueIp();

      beforeAll(async () => {
        port = await freePort();
        server = await startRedis(port);
        ctx = await createIdentityApp(db, { logger, identity: withIp(ip, { rateLimits: { redisUrl: `redis://127.0.0.1:${port}`, loginPerIpAndUsername: 1000, loginPerIp: 3 } }) });
      });
      afterAll(async () => {
        await ctx?.close();
        if (server) await stopRedis(server);
      });

      it('OWASP ASVS 5.0 16.5.2: fails open as documented: answers as without limits (never a 5xx), quickly; one log line says so (not one per request and rule), one more when Redis answers again and limits apply', async () => {
        const user = email();
        await ctx.userManager.createUser({ email: user, name: 'R', password });
        const http = new HttpClient(ctx.url);
        const before = [];
        for (let i = 0; i < 4; i++) before.push((await http.login(email(), 'wrong password entirely')).status);
        expect(before).toEqual([401, 401, 401, 429]);

        await stopRedis(server!);
        const started = Date.now();
        const during = [];
        for (let i = 0; i < 3; i++) {
          const result = await http.login(email(), 'wrong password entirely');
          expect(result.text).not.toMatch(/\bat .*\.(js|ts):\d+/);
          during.push(result.status);
        }
        const signedIn = await http.fresh().login(user, password);
        expect(during).toEqual([401, 401, 401]);
        expect(signedIn.status).toBe(200);
        expect(Date.now() - started).toBeLessThan(15_000);
        const storageLines = () => logger.lines.filter((line) => /rate-limit storage/i.test(line));
        // 8 storage calls failed (2 rules for each of 4 logins): one line, which says what it means.
        expect(storageLines()).toHaveLength(1);
        expect(storageLines()[0]).toMatch(/without rate limits/i);

        server = await startRedis(port);
        // ioredis reconnects by itself; the counters start afresh (the private server kept nothing).
        let statuses: number[] = [];
        for (let attempt = 0; attempt < 40 && !statuses.includes(429); attempt++) {
          statuses = [];
          for (let i = 0; i < 4; i++) statuses.push((await http.login(email(), 'wrong password entirely')).status);
          if (!statuses.includes(429)) await new Promise((r) => setTimeout(r, 250));
        }
        expect(statuses).toContain(429);
        // The outage ends once the storage has answered for 10 s without a failure (a flapping one stays one outage).
        const answering = Date.now();
        while (storageLines().length < 2 && Date.now() - answering < 15_000) {
          await http.login(email(), 'wrong password entirely');
          await new Promise((r) => setTimeout(r, 500));
        }
        expect(storageLines()).toHaveLength(2);
        expect(storageLines()[1]).toMatch(/answers again/i);
      }, 60_000);
    });
  });
});
