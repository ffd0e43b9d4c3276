import { Controller, Get, type LoggerService } from '@nestjs/common';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { expectClientError } from '../support/bad-input.js';
import { createIdentityApp, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { linkParams, TestSmtpServer } from '../support/smtp.js';
import { externalLoginIdentity, waitForExternalProviders } from '../support/external-login-app.js';
import { expectSignedIn } from '../support/external-login-results.js';
import { ExternalLoginPerson, TestOidcProvider } from '../support/oidc-provider.js';
import { pendingSignInCookies } from '../support/pending-sign-in-cookies.js';
import { setupBackOfficeOpenApi } from '../../src/backoffice-identity/index.js';

@Controller('ping')
class HostPingController {
  @Get()
  ping() {
    return { ok: true };
  }
}

/**
 * A host's global prefix (`app.setGlobalPrefix('api')`): the sign-in screens, email links and OIDC callbacks name
 * `/backoffice/...`, so the module warns at start-up unless the host keeps it out of the prefix, and with
 * `exclude: ['backoffice{/*path}']` everything the pages name answers under `/backoffice` (security headers,
 * request context and error shape included) while the host's own routes keep `/api`.
 */
describe('A host global prefix', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let counter = 0;
  const warnings: string[] = [];
  const logger: LoggerService = { log() {}, error() {}, warn: (message: unknown) => void warnings.push(String(message)) };
  const prefixWarnings = () => warnings.filter((w) => w.includes('global prefix'));

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await new TestSmtpServer().start();
  });
  afterAll(async () => {
    await smtp?.stop();
    await db?.drop();
  });
  beforeEach(() => void (warnings.length = 0));

  async function appWith(setPrefix: (app: IdentityApp['app']) => void): Promise<IdentityApp> {
    return createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, email: { smtpUrl: smtp.url }, publicUrl: 'https://cms.example.com' },
      controllers: [HostPingController],
      logger,
      beforeListen: (app) => void setPrefix(app),
    });
  }

  it('applied to the module\'s routes: a start-up warning names the exclude pattern', async () => {
    const ctx = await appWith((app) => app.setGlobalPrefix('api'));
    try {
      expect(prefixWarnings()).toHaveLength(1);
      expect(prefixWarnings()[0]).toContain("app.setGlobalPrefix('api', { exclude: ['backoffice{/*path}'] })");
    } finally {
      await ctx.close();
    }
  });

  it('applied to the module: the UI root with a trailing slash (/api/backoffice/) is the sign-in page on both platforms, and /backoffice/ (not the module\'s) is left to the host', async () => {
    const ctx = await appWith((app) => app.setGlobalPrefix('api'));
    try {
      // Express routes /api/backoffice/ to the page; on Fastify the module's redirect keeps the global prefix.
      const root = await fetch(`${ctx.url}/api/backoffice/?returnUrl=%2Fx`, { redirect: 'manual' });
      if (root.status === 302) expect(root.headers.get('location')).toBe('/api/backoffice?returnUrl=%2Fx');
      else expect(root.status).toBe(200);
      const page = await fetch(`${ctx.url}/api/backoffice/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      // The module is not mounted at /backoffice: no redirect of its own there.
      const outside = await fetch(`${ctx.url}/backoffice/`, { redirect: 'manual' });
      expect(outside.status).toBe(404);
    } finally {
      await ctx.close();
    }
  });

  it('a prefix written with capitals and slashes (\'/Api/\'): the trailing-slash redirect points where the page is, in the case the host wrote', async () => {
    const ctx = await appWith((app) => app.setGlobalPrefix('/Api/'));
    try {
      const root = await fetch(`${ctx.url}/Api/backoffice/?returnUrl=%2Fx`, { redirect: 'manual' });
      if (root.status === 302) expect(root.headers.get('location')).toBe('/Api/backoffice?returnUrl=%2Fx');
      else expect(root.status).toBe(200);
      const page = await fetch(`${ctx.url}/Api/backoffice/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    } finally {
      await ctx.close();
    }
  });

  it('excluding only part of the module (backoffice/{*path} leaves out /backoffice itself): warned too', async () => {
    const ctx = await appWith((app) => app.setGlobalPrefix('api', { exclude: ['backoffice/{*path}'] }));
    try {
      expect(prefixWarnings()).toHaveLength(1);
      expect(prefixWarnings()[0]).toContain('some of');
    } finally {
      await ctx.close();
    }
  });

  it('exclude: [\'backoffice{/*path}\']: no warning; the page, its assets, session.js\'s base, sign-in, errors, the request context, OpenAPI and an invite link work under /backoffice', async () => {
    const ctx = await appWith((app) => {
      app.setGlobalPrefix('api', { exclude: ['backoffice{/*path}'] });
      setupBackOfficeOpenApi(app);
    });
    try {
      expect(prefixWarnings()).toEqual([]);
      // Nor a warning of Nest's about a route path the host never wrote (the module's middleware under the prefix).
      expect(warnings.filter((w) => w.includes('Unsupported route path'))).toEqual([]);
      // The host's own routes keep the prefix.
      expect((await fetch(`${ctx.url}/api/ping`)).status).toBe(200);
      expect((await fetch(`${ctx.url}/ping`)).status).toBe(404);

      const page = await fetch(`${ctx.url}/backoffice`);
      expect(page.status).toBe(200);
      const html = await page.text();
      const named = [...html.matchAll(/(?:src|href)="(\/[^"]*)"/g)].map((m) => m[1].replace(/&amp;/g, '&'));
      expect(named.length).toBeGreaterThan(1);
      for (const path of named) {
        expect(path.startsWith('/backoffice/'), path).toBe(true);
        expect((await fetch(`${ctx.url}${path}`)).status, path).toBe(200);
      }
      const sessionJs = await (await fetch(`${ctx.url}/backoffice/assets/session.js`)).text();
      const base = /var CONFIG = (\{.*?\});/.exec(sessionJs);
      expect(base).not.toBeNull();
      const config = JSON.parse(base![1]) as { base: string };
      expect(config.base).toBe('/backoffice');

      // Through the base the page's script names: sign-in and /auth/me, with the module's headers.
      const created = await ctx.userManager.createUser({ email: `prefix${++counter}@example.com`, name: 'Prefixed', password: TEST_PASSWORD, groups: ['admin'] });
      const user = created.value!;
      const http = new HttpClient(ctx.url, config.base);
      expect((await new HttpClient(ctx.url, config.base).login(user.email, 'a wrong password')).status).toBe(401);
      const login = await http.login(user.email, TEST_PASSWORD);
      expect(login.status, login.text).toBe(200);
      const me = await http.get('/auth/me');
      expect(me.status).toBe(200);
      expect(me.body.email).toBe(user.email);
      for (const answer of [login, me]) {
        expect(answer.headers.get('cache-control')).toBe('no-store');
        expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
        expect(answer.headers.get('x-powered-by')).toBeNull();
      }
      const unknown = await http.get('/nothing-here');
      expectClientError(unknown, 404);
      expect(unknown.body.code).toBe('not_found');

      // The OpenAPI document names the paths the routes answer at (with the module's common errors).
      const openapi = (await http.get('/openapi.json')).body as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
      expect(openapi.paths['/backoffice/auth/me']?.get?.responses['503']).toBeDefined();
      expect(Object.keys(openapi.paths).filter((path) => path.startsWith('/api/backoffice'))).toEqual([]);

      // An invite email's link names a page that answers.
      const to = `invitee${++counter}@example.com`;
      const invited = await http.post('/users/invite', { email: to, name: 'Invitee', groups: [] });
      expect(invited.status).toBe(201);
      // The request context (performing user, IP) reached the audit trail, for the anonymous failed sign-in too.
      const audit = await http.get(`/audit?userId=${invited.body.user.id}`);
      expect(audit.body.items.length).toBeGreaterThan(0);
      for (const entry of audit.body.items) expect(entry).toMatchObject({ performingUserId: user.id, ipAddress: '127.0.0.1' });
      const own = (await http.get(`/audit?userId=${user.id}`)).body.items as Array<{ event: string; ipAddress: string | null }>;
      expect(own.find((entry) => entry.event === 'backoffice.user.login.failed')).toMatchObject({ ipAddress: '127.0.0.1' });
      const { url } = linkParams((await smtp.waitFor(to)).text!, 'accept-invite');
      const link = new URL(url);
      expect(link.pathname).toBe('/backoffice/accept-invite');
      expect((await fetch(`${ctx.url}${link.pathname}`)).status).toBe(200);
    } finally {
      await ctx.close();
    }
  });
});

/**
 * A global prefix over the module, with plain-HTTP cookies (`secureCookies: false`) and a `publicUrl` that names the
 * prefix, so the provider's redirect reaches the callback under `/api/backoffice`: the pending external sign-in cookie
 * (`<session cookie>_ext`, not `__Host-` without Secure) must have a Path the callback is under, or the browser keeps
 * it back and the callback cannot finish the sign-in.
 */
describe('A host global prefix over the module: external sign-in with plain-HTTP cookies', () => {
  const SECRET = 'prefix-client-secret-0123456789ab';
  let db: TestDatabase;
  let idp: TestOidcProvider;
  let ctx: IdentityApp;
  let counter = 0;
  const quiet: LoggerService = { log() {}, error() {}, warn() {} };

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await TestOidcProvider.reservePort();
    idp = await TestOidcProvider.start([
      { client_id: 'prefixed', client_secret: SECRET, redirect_uris: [`http://127.0.0.1:${port}/api/backoffice/auth/external/oidc/callback`] },
    ]);
    ctx = await createIdentityApp(db, {
      port,
      logger: quiet,
      identity: externalLoginIdentity(
        port,
        [{ name: 'oidc', displayName: 'Single sign-on', issuer: idp.issuer, clientId: 'prefixed', clientSecret: SECRET, autoLink: { enabled: true, defaultGroups: [] } }],
        { publicUrl: `http://127.0.0.1:${port}/api` },
      ),
      beforeListen: (app) => void app.setGlobalPrefix('api'),
    });
    await waitForExternalProviders(`${ctx.url}/api`);
  });
  afterAll(async () => {
    await ctx?.close();
    await idp?.stop();
    await db?.drop();
  });

  it('OWASP ASVS 5.0 3.3.3: the _ext cookie\'s Path covers the callback under the global prefix (a browser sends it back), and the sign-in finishes', async () => {
    const login = `prefixed-${++counter}-${Date.now()}`;
    idp.accounts.set(login, { email: `${login}@idp.example.com`, email_verified: true });
    const person = new ExternalLoginPerson(`${ctx.url}/api`);
    const challenge = await person.challenge('oidc');
    expect(challenge.status, challenge.text).toBe(302);
    const { externalLogin } = pendingSignInCookies({ secureCookies: false });
    const line = challenge.setCookies.find((c) => c.startsWith(`${externalLogin}=`));
    expect(line, challenge.setCookies.join(' | ')).toBeDefined();
    const cookiePath = /;\s*Path=([^;]*)/i.exec(line!)?.[1];
    const callbackUrl = await person.idp.authorize(challenge.headers.get('location')!, login);
    const callbackPath = new URL(callbackUrl).pathname;
    expect(callbackPath).toBe('/api/backoffice/auth/external/oidc/callback');
    // RFC 6265 5.1.4: the browser sends the cookie only on a request path under its Path
    expect(callbackPath === cookiePath || callbackPath.startsWith(`${cookiePath}/`), `Path=${cookiePath}`).toBe(true);
    expectSignedIn(await person.deliver(callbackUrl));
  });
});
