import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';
import type { BackOfficeIdentityModuleOptions } from '../../src/backoffice-identity/index.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The client address comes from the `x-test-ip` header, so one app serves clients from many networks. */
const byHeader: BackOfficeIdentityModuleOptions = { ipResolver: { useValue: { resolveIp: (request: { headers: Record<string, unknown> }) => String(request.headers['x-test-ip']) } } };
const hex = (bytes: number) => randomBytes(bytes).toString('hex');
/** A fresh /48 for each test (32 random bits), so parallel runs and the shared Redis never mix their counters. */
const new48 = () => `2${hex(2).slice(1)}:${hex(2)}:${hex(2)}`;
/** Address `host` of the `n`-th /64 inside the /48 `p48` (/64s 0..0xff lie in the /48's first /56, 0x100..0x1ff in its second, ...). */
const in64 = (p48: string, n: number, host = '1') => `${p48}:${n.toString(16)}::${host}`;
/** Address `host` of the `m`-th /64 of the `k`-th /56 inside the /48 `p48`. */
const in56 = (p48: string, k: number, m: number, host = '1') => in64(p48, k * 256 + m, host);

describe('IPv6 clients that rotate through the /64s of their /56 (the default aggregate prefix) or /48', () => {
  let db: TestDatabase;
  let counter = 0;
  const email = () => `v6r${++counter}-${hex(3)}@example.com`;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  const app = (rateLimits: NonNullable<BackOfficeIdentityModuleOptions['rateLimits']>, extra: BackOfficeIdentityModuleOptions = {}) =>
    createIdentityApp(db, { identity: { ...byHeader, ...extra, rateLimits } });
  const loginFrom = (ctx: IdentityApp, ip: string) =>
    new HttpClient(ctx.url).request('POST', '/auth/login', { body: { username: email(), password: 'wrong password entirely' }, headers: { 'x-test-ip': ip } });

  it('ASVS 4.0 2.2.1: login: a client moving to a new /64 of its /56 gets no fresh budget once the /56 has used 16 times the per-IP limit (default); another /48 is not limited', async () => {
    const ctx = await app({ loginPerIpAndUsername: 1000, loginPerIp: 2 });
    try {
      const p48 = new48();
      const statuses: number[] = [];
      // 40 /64s of one /56, each within its own per-/64 limit of 2: 80 attempts.
      for (let n = 0; n < 40; n++) for (const host of ['1', '2']) statuses.push((await loginFrom(ctx, in56(p48, 3, n * 6, host))).status);
      expect(statuses.filter((s) => s !== 429), 'attempts let through from one /56').toHaveLength(32);
      expect(statuses.slice(0, 32).every((s) => s === 401)).toBe(true);
      const limited = await loginFrom(ctx, in56(p48, 3, 0xff));
      expectClientError(limited, 429);
      expect(limited.body).toMatchObject({ statusCode: 429, code: 'too_many_requests' });
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      // Another /48 (another customer of the same ISP) keeps its own budget.
      expect((await loginFrom(ctx, in64(new48(), 0))).status).toBe(401);
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 2.2.1: the /64 limit still holds inside the /56, and many /64s that share one /56 are not held to the /64 limit together', async () => {
    const ctx = await app({ loginPerIpAndUsername: 1000, loginPerIp: 2 });
    try {
      const p48 = new48();
      expect([(await loginFrom(ctx, in64(p48, 1, '1'))).status, (await loginFrom(ctx, in64(p48, 1, '2'))).status, (await loginFrom(ctx, in64(p48, 1, '3'))).status]).toEqual([401, 401, 429]);
      // Ten neighbours in the same /56, one attempt each: far beyond one /64's 2, well within the /56's 32.
      const neighbours = [];
      for (let n = 2; n < 12; n++) neighbours.push((await loginFrom(ctx, in64(p48, n))).status);
      expect(neighbours).toEqual(Array(10).fill(401));
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 2.2.1: forgot-password per IP: rotating /64s inside one /56 is bounded too', async () => {
    const sender = { async send() { return 'message-id'; } };
    const ctx = await app({ forgotPasswordPerIp: 1 }, { emailSender: { useValue: sender } });
    try {
      const p48 = new48();
      const statuses: number[] = [];
      for (let n = 0; n < 40; n++) {
        statuses.push((await new HttpClient(ctx.url).request('POST', '/auth/forgot-password', { body: { email: email() }, headers: { 'x-test-ip': in56(p48, 0xab, n * 5) } })).status);
      }
      expect(statuses.filter((s) => s === 202), 'forgot-password requests let through from one /56').toHaveLength(16);
      expect(statuses.slice(16)).toEqual(Array(24).fill(429));
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 2.2.1: the other ways in (here the second factor and reset-password) bound the /56 too, each under its own counter', async () => {
    const ctx = await app({ loginPerIpAndUsername: 1000, loginPerIp: 1, ipv6AggregateMultiplier: 3 });
    try {
      const p48 = new48();
      const post = (path: string, body: Record<string, string>, n: number) =>
        new HttpClient(ctx.url).request('POST', path, { body, headers: { 'x-test-ip': in64(p48, n) } }).then((r) => r.status);
      const twoFactor = [];
      for (let n = 0; n < 6; n++) twoFactor.push(await post('/auth/2fa', { provider: 'totp', code: '123456' }, n));
      expect(twoFactor).toEqual([401, 401, 401, 429, 429, 429]);
      const reset = [];
      const userId = '00000000-0000-4000-8000-000000000000';
      for (let n = 10; n < 16; n++) reset.push(await post('/auth/reset-password', { userId, token: 'guessed-token', newPassword: 'a brand new passphrase 42' }, n));
      expect(reset).toEqual([400, 400, 400, 429, 429, 429]);
    } finally {
      await ctx.close();
    }
  });

  it('a client rotating across the /56s of one /48 is not bounded by the default /56 aggregate, but is with ipv6AggregateSubnet: 48', async () => {
    // 40 /56s of one /48, one /64 each, 2 attempts per /64 (its own per-IP limit): 80 attempts.
    const rotate = async (ctx: IdentityApp) => {
      const p48 = new48();
      const statuses: number[] = [];
      for (let k = 0; k < 40; k++) for (const host of ['1', '2']) statuses.push((await loginFrom(ctx, in56(p48, k * 6, 7, host))).status);
      return statuses;
    };
    const byDefault = await app({ loginPerIpAndUsername: 1000, loginPerIp: 2 });
    try {
      expect(await rotate(byDefault)).toEqual(Array(80).fill(401));
    } finally {
      await byDefault.close();
    }
    const by48 = await app({ loginPerIpAndUsername: 1000, loginPerIp: 2, ipv6AggregateSubnet: 48 });
    try {
      const statuses = await rotate(by48);
      expect(statuses.filter((s) => s === 401), 'attempts let through from one /48 with ipv6AggregateSubnet 48').toHaveLength(32);
      expect(statuses.slice(32)).toEqual(Array(48).fill(429));
    } finally {
      await by48.close();
    }
  });

  it('ASVS 4.0 2.2.1: a client that uses up its /56 budget does not lock out a neighbour in another /56 of the same /48 (default): login and forgot-password', async () => {
    const sender = { async send() { return 'message-id'; } };
    const ctx = await app({ loginPerIpAndUsername: 1000, loginPerIp: 2, forgotPasswordPerIp: 1 }, { emailSender: { useValue: sender } });
    try {
      const p48 = new48();
      const forgot = (ip: string) => new HttpClient(ctx.url).request('POST', '/auth/forgot-password', { body: { email: email() }, headers: { 'x-test-ip': ip } }).then((r) => r.status);
      // The attacker's /56: 16 /64s x 2 logins and 16 /64s x 1 forgot-password use up its aggregate budgets.
      for (let m = 0; m < 16; m++) for (const host of ['1', '2']) expect((await loginFrom(ctx, in56(p48, 0, m, host))).status).toBe(401);
      for (let m = 0; m < 16; m++) expect(await forgot(in56(p48, 0, m, '3'))).toBe(202);
      expect((await loginFrom(ctx, in56(p48, 0, 0x80))).status).toBe(429);
      expect(await forgot(in56(p48, 0, 0x80))).toBe(429);
      // A neighbour in the next /56 (another customer inside the same /48) keeps its whole budget.
      expect((await loginFrom(ctx, in56(p48, 1, 0))).status).toBe(401);
      expect(await forgot(in56(p48, 1, 0))).toBe(202);
    } finally {
      await ctx.close();
    }
  });

  it('rateLimits.ipv6AggregateSubnet and ipv6AggregateMultiplier set the wider prefix and its budget', async () => {
    const ctx = await app({ loginPerIpAndUsername: 1000, loginPerIp: 2, ipv6AggregateSubnet: 60, ipv6AggregateMultiplier: 3 });
    try {
      const p48 = new48();
      const in60 = [];
      // /64s 0x100..0x10f share one /60: 3 x 2 = 6 attempts.
      for (let n = 0x100; n < 0x10a; n++) in60.push((await loginFrom(ctx, in64(p48, n))).status);
      expect(in60).toEqual([401, 401, 401, 401, 401, 401, 429, 429, 429, 429]);
      // Another /60 of the same /48 is not limited by that one's counter.
      expect((await loginFrom(ctx, in64(p48, 0x200))).status).toBe(401);
    } finally {
      await ctx.close();
    }
  });

  it('ipv6AggregateSubnet equal to ipv6Subnet counts no second prefix (an ipv6Subnet of 48: the per-IP rule already counts the /48)', async () => {
    const ctx = await app({ loginPerIpAndUsername: 1000, loginPerIp: 3, ipv6Subnet: 48 });
    try {
      const p48 = new48();
      const statuses = [];
      for (let n = 0; n < 5; n++) statuses.push((await loginFrom(ctx, in64(p48, n))).status);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
    } finally {
      await ctx.close();
    }
  });

  it('IPv4 keeps its behaviour: each address counts on its own (no wider bucket for a /24), an IPv4-mapped address as its IPv4 address', async () => {
    const ctx = await app({ loginPerIpAndUsername: 1000, loginPerIp: 2 });
    try {
      const b = randomBytes(2);
      const net = `10.${b[0]}.${b[1]}`;
      const statuses: number[] = [];
      for (let host = 1; host <= 40; host++) for (let i = 0; i < 2; i++) statuses.push((await loginFrom(ctx, `${net}.${host}`)).status);
      expect(statuses.every((s) => s === 401), String(statuses)).toBe(true);
      expect((await loginFrom(ctx, `::ffff:${net}.1`)).status).toBe(429);
    } finally {
      await ctx.close();
    }
  });

  it('ASVS 4.0 2.2.1: a Teredo address (any server, flags or port) and the NAT64 form of its client\'s IPv4 share that IPv4 address\'s one budget', async () => {
    const ctx = await app({ loginPerIpAndUsername: 1000, loginPerIp: 4 });
    try {
      const b = randomBytes(3);
      const v4 = `198.18.${b[0]}.${b[1]}`;
      const group = (n: number) => n.toString(16);
      // RFC 4380: 2001:0:<server>:<flags>:<port ^ 0xffff>:<client IPv4 ^ 0xffffffff>; the client picks the rest freely.
      const teredo = (server: string, flags: number, port: number) =>
        `2001:0:${server}:${group(flags)}:${group(port ^ 0xffff)}:${group((198 << 8 | 18) ^ 0xffff)}:${group(((b[0] << 8) | b[1]) ^ 0xffff)}`;
      const statuses = [
        (await loginFrom(ctx, v4)).status,
        (await loginFrom(ctx, teredo('4136:e378', 0x8000, 40000))).status,
        (await loginFrom(ctx, teredo('c633:6401', 0, 1024 + b[2]))).status,
        (await loginFrom(ctx, `64:ff9b::${v4}`)).status,
      ];
      expect(statuses).toEqual([401, 401, 401, 401]);
      expect((await loginFrom(ctx, teredo(`${group(b[2])}:1`, 0x8000, 5000))).status, 'another Teredo address of the same client').toBe(429);
      const limited = await loginFrom(ctx, v4);
      expectClientError(limited, 429);
      expect(limited.body).toMatchObject({ statusCode: 429, code: 'too_many_requests' });
      // Another IPv4 client behind Teredo keeps its own budget.
      expect((await loginFrom(ctx, `2001:0:4136:e378:8000:63bf:${group(0xffff ^ 0x0201)}:${group(0xffff ^ ((b[0] << 8) | b[1]))}`)).status).toBe(401);
    } finally {
      await ctx.close();
    }
  });

  for (const storage of ['memory', 'redis'] as const) {
    it(`ASVS 4.0 2.2.1 / 5.0 6.3.1: 60 parallel logins from 60 /64s of one /56: exactly the /56 budget gets through (${storage})`, async () => {
      const redis = storage === 'redis' ? { redisUrl: REDIS_URL } : {};
      const ctx = await app({ ...redis, loginPerIpAndUsername: 1000, loginPerIp: 1, ipv6AggregateMultiplier: 7 });
      try {
        const p48 = new48();
        const statuses = await Promise.all(Array.from({ length: 60 }, (_, n) => loginFrom(ctx, in64(p48, n)).then((r) => r.status)));
        expect(statuses.filter((s) => s === 401)).toHaveLength(7);
        expect(statuses.filter((s) => s === 429)).toHaveLength(53);
      } finally {
        await ctx.close();
      }
    });
  }

  it('two instances on one Redis share the /56 budget', async () => {
    const options = { redisUrl: REDIS_URL, loginPerIpAndUsername: 1000, loginPerIp: 1, ipv6AggregateMultiplier: 4 };
    const a = await app(options);
    const b = await app(options);
    try {
      const p48 = new48();
      const statuses = [];
      for (let n = 0; n < 8; n++) statuses.push((await loginFrom(n % 2 ? b : a, in64(p48, n))).status);
      expect(statuses).toEqual([401, 401, 401, 401, 429, 429, 429, 429]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
