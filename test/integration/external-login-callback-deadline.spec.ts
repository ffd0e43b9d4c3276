import { createServer, request as forward, type Server } from 'node:http';
import { DataSource } from 'typeorm';
import { CapturingLogger } from '../support/capturing-logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { expectRefused, expectSignedIn, waitFor } from '../support/external-login-results.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { ExternalLoginPerson as Person, TestOidcProvider } from '../support/oidc-provider.js';

// One deadline per external-login callback (OWASP ASVS 5.0 2.4.x / 4.0 11.1.x: bounded work per request): the
// callback's calls to the provider (token, JWKS, userinfo) each have a 10 s timeout, and together they share
// `callbackTimeoutSeconds`. A real provider (oidc-provider) sits behind a delaying proxy (the issuer the app knows)
// that holds each token, JWKS and userinfo request for a while: each call is well within the per-call timeout,
// their sum is not within the callback's budget.

const SECRET = 'client-deadline-secret-0123456789ab';
const BUDGET_SECONDS = 2;
const DELAY_MS = 1_200;
/** Paths of the provider calls a callback makes (oidc-provider's defaults). */
const DELAYED = ['/token', '/jwks', '/me'];

/** A loopback proxy in front of the provider: forwards everything (with its own Host), holding the calls in {@link DELAYED}. */
class DelayingProxy {
  delayMs = 0;
  /** A delay for one call by what it carries (the token request's authorization code), else {@link delayMs}. */
  delayOf?: (path: string, body: string) => number | undefined;
  /** Provider calls the proxy received, and whether the app hung up before the answer (its deadline ended the call). */
  readonly calls: Array<{ path: string; at: number; abandoned: boolean; body: string; answeredAt?: number }> = [];
  private server?: Server;

  constructor(private readonly target: () => number) {}

  async listen(port: number): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const delayed = DELAYED.some((p) => path === p || path.startsWith(`${p}/`));
      const call: DelayingProxy['calls'][number] = { path, at: Date.now(), abandoned: false, body: '' };
      if (delayed) this.calls.push(call);
      res.on('close', () => {
        if (!res.writableFinished) call.abandoned = true;
        else call.answeredAt = Date.now();
      });
      const body: Buffer[] = [];
      req.on('data', (chunk: Buffer) => body.push(chunk));
      req.on('end', () => {
        call.body = Buffer.concat(body).toString();
        setTimeout(() => {
          if (call.abandoned) return;
          const upstream = forward({ host: '127.0.0.1', port: this.target(), method: req.method, path: req.url, headers: req.headers }, (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          });
          upstream.on('error', () => res.destroy());
          upstream.end(Buffer.concat(body));
        }, delayed ? (this.delayOf?.(path, call.body) ?? this.delayMs) : 0);
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.server = server;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

describe('External login callback deadline (one budget for all provider calls of a callback)', () => {
  let db: TestDatabase;
  let idp: TestOidcProvider;
  let proxy: DelayingProxy;
  let ctx: IdentityApp;
  let counter = 0;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await TestOidcProvider.reservePort();
    const proxyPort = await TestOidcProvider.reservePort();
    const issuer = `http://127.0.0.1:${proxyPort}`;
    idp = await TestOidcProvider.start(
      [{ client_id: 'backoffice-deadline', client_secret: SECRET, redirect_uris: [`http://127.0.0.1:${port}/backoffice/auth/external/oidc/callback`] }],
      0,
      issuer,
    );
    proxy = new DelayingProxy(() => idp.port);
    await proxy.listen(proxyPort);
    ctx = await createIdentityApp(db, {
      port,
      logger,
      identity: {
        publicUrl: `http://127.0.0.1:${port}`,
        session: { secureCookies: false },
        rateLimits: { enabled: false },
        externalLogins: [
          { name: 'oidc', displayName: 'Single sign-on', issuer, clientId: 'backoffice-deadline', clientSecret: SECRET, autoLink: { enabled: true }, callbackTimeoutSeconds: BUDGET_SECONDS },
        ],
      },
    });
    await waitFor(async () => (await new HttpClient(ctx.url).get('/auth/external/providers')).body.every((p: { available: boolean }) => p.available));
  });
  afterEach(() => {
    proxy.delayMs = 0;
    proxy.delayOf = undefined;
  });
  afterAll(async () => {
    await ctx?.close();
    await proxy?.close();
    await idp?.stop();
    await db?.drop();
  });

  function account(label: string): { login: string; email: string } {
    const login = `${label}-${++counter}-${Date.now()}`;
    const email = `${login}@idp.example.com`;
    idp.accounts.set(login, { email, email_verified: true, name: `Person ${label}` });
    return { login, email };
  }

  async function usersWithEmail(email: string): Promise<number> {
    const rows = await ctx.app.get(DataSource).query(`SELECT count(*)::int AS n FROM backoffice_user WHERE lower(email) = lower($1)`, [email]);
    return rows[0].n;
  }

  async function failedLogins(): Promise<number> {
    const rows = await ctx.app.get(DataSource).query(`SELECT count(*)::int AS n FROM backoffice_audit_entry WHERE event = 'backoffice.user.login.failed'`);
    return rows[0].n;
  }

  it('a sign-in whose provider calls fit in the budget signs in (the deadline does not end a normal callback)', async () => {
    const person = account('fits');
    proxy.delayMs = 300;
    const p = new Person(ctx.url);
    const url = await p.toCallback('oidc', person.login);
    const calls = proxy.calls.length;
    expectSignedIn(await p.deliver(url));
    expect(proxy.calls.slice(calls).map((c) => c.path)).toEqual(expect.arrayContaining(['/token', '/me']));
    expect(await usersWithEmail(person.email)).toBe(1);
  });

  it(`provider calls each within the per-call timeout but together over callbackTimeoutSeconds (${BUDGET_SECONDS} s, ${DELAY_MS} ms each): ?error=external_login_failed within the budget, no session, nobody created, nothing left running`, async () => {
    const person = account('slow');
    const p = new Person(ctx.url);
    const url = await p.toCallback('oidc', person.login);
    const calls = proxy.calls.length;
    const failed = await failedLogins();
    const lines = logger.lines.length;
    proxy.delayMs = DELAY_MS;
    const started = Date.now();
    const result = await p.deliver(url);
    const elapsed = Date.now() - started;
    expectRefused(result, 'external_login_failed');
    expect(elapsed).toBeLessThan(BUDGET_SECONDS * 1000 + 1_000);
    expect(await usersWithEmail(person.email)).toBe(0);
    // Audited and logged as any provider failure; the log says the deadline ended it, and names no secret.
    await waitFor(async () => (await failedLogins()) === failed + 1, 5_000);
    const logged = logger.lines.slice(lines).join('\n');
    expect(logged).toMatch(/refused: the callback deadline \(2 s, callbackTimeoutSeconds\) was reached/);
    expect(logged).not.toContain(SECRET);
    expect(logged).not.toMatch(/code=|access_token|eyJ/);
    // Nothing keeps running after the deadline: the call in flight was abandoned, and no call started after it.
    await new Promise((r) => setTimeout(r, DELAY_MS * 2));
    const made = proxy.calls.slice(calls);
    expect(made.map((c) => c.path)).toContain('/token');
    expect(made.at(-1)!.abandoned).toBe(true);
    for (const call of made) expect(call.at - started).toBeLessThan(BUDGET_SECONDS * 1000);
  });

  it('two callbacks at once, one over its budget and one within it: the fast one signs in, only the slow one fails (one callback\'s deadline does not end the other\'s provider calls)', async () => {
    const slowPerson = account('slow-twin');
    const fastPerson = account('fast-twin');
    const slow = new Person(ctx.url);
    const fast = new Person(ctx.url);
    const slowUrl = await slow.toCallback('oidc', slowPerson.login);
    const fastUrl = await fast.toCallback('oidc', fastPerson.login);
    const codeOf = (url: string) => new URL(url).searchParams.get('code')!;
    const [slowCode, fastCode] = [codeOf(slowUrl), codeOf(fastUrl)];
    const carries = (body: string, code: string) => new URLSearchParams(body).get('code') === code;
    // The slow callback's token call is held past its whole budget; the fast one's is in flight when that deadline
    // fires (it starts 1 s in and is held 1.3 s), and the fast callback still has 0.7 s of its own budget left after it.
    proxy.delayOf = (path, body) => (path !== '/token' ? 0 : carries(body, slowCode) ? BUDGET_SECONDS * 1000 + 1_000 : carries(body, fastCode) ? 1_300 : undefined);
    const calls = proxy.calls.length;
    const started = Date.now();
    const slowResult = slow.deliver(slowUrl);
    await new Promise((r) => setTimeout(r, 1_000));
    const fastResult = fast.deliver(fastUrl);
    const [slowAnswer, fastAnswer] = await Promise.all([slowResult, fastResult]);
    expectRefused(slowAnswer, 'external_login_failed');
    expectSignedIn(fastAnswer);
    expect(await usersWithEmail(slowPerson.email)).toBe(0);
    expect(await usersWithEmail(fastPerson.email)).toBe(1);
    const made = proxy.calls.slice(calls);
    const slowToken = made.find((c) => c.path === '/token' && carries(c.body, slowCode))!;
    const fastToken = made.find((c) => c.path === '/token' && carries(c.body, fastCode))!;
    expect(slowToken.abandoned).toBe(true);
    expect(fastToken.abandoned).toBe(false);
    // The fast callback's token call was in flight across the slow callback's deadline and was answered after it.
    expect(fastToken.at - started).toBeLessThan(BUDGET_SECONDS * 1000);
    expect(fastToken.answeredAt! - started).toBeGreaterThan(BUDGET_SECONDS * 1000);
    expect(made.filter((c) => c.path !== '/token').every((c) => !c.abandoned)).toBe(true);
  });

  it('the provider answers promptly again: the next sign-in works', async () => {
    const person = account('after');
    expectSignedIn(await new Person(ctx.url).signIn('oidc', person.login));
  });
});
