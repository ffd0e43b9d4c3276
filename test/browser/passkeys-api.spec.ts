import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { BACKOFFICE_TWO_FACTOR_PROVIDERS, type TotpTwoFactorProvider } from '../../src/backoffice-identity/index.js';

/**
 * The passkey ceremonies of the REST API in a real browser: Debian's chromium with the DevTools WebAuthn virtual
 * authenticator (CTAP2, internal transport, resident keys, user verification), driven by @simplewebauthn/browser's
 * UMD bundle, on http://localhost:<port> (an IP address cannot be an rp id). Runs on PostgreSQL and PGlite.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const UMD = join(__dirname, '..', '..', 'node_modules', '@simplewebauthn', 'browser', 'dist', 'bundle', 'index.umd.min.js');
if (!CHROMIUM && (process.env.CI === 'true' || process.env.CI === '1')) throw new Error('chromium is not installed (apt-get install -y chromium)');
const KINDS = process.env.TEST_PG_URL ? (['postgres', 'pglite'] as const) : (['pglite'] as const);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Calls the API from the page (same origin, cookies, XSRF header) and returns status and JSON. */
async function api(page: Page, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return page.evaluate(
    async ({ method, path, body }) => {
      const xsrf = /(?:^|; )XSRF-TOKEN=([^;]*)/.exec(document.cookie)?.[1];
      const response = await fetch(`/backoffice${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(xsrf ? { 'x-xsrf-token': decodeURIComponent(xsrf) } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    { method, path, body },
  );
}

/** `startRegistration` / `startAuthentication` in the page, then posts the result to `path`. */
async function ceremony(page: Page, kind: 'register' | 'authenticate', optionsPath: string, path: string, extra: Record<string, unknown> = {}) {
  const options = await api(page, 'POST', optionsPath, {});
  if (options.status !== 200) return options;
  const credential = await page.evaluate(
    async ({ kind, optionsJSON }) => {
      const lib = (window as any).SimpleWebAuthnBrowser;
      return kind === 'register' ? lib.startRegistration({ optionsJSON }) : lib.startAuthentication({ optionsJSON });
    },
    { kind, optionsJSON: options.body },
  );
  return api(page, 'POST', path, { ...extra, credential });
}

describe.skipIf(!CHROMIUM).each(KINDS)('Passkeys in Chromium with the virtual authenticator (%s)', (kind) => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let cdp: CDPSession;
  let authenticatorId: string;
  let origin: string;
  const newUser = userFactory(() => ctx, `browser-${kind}-`);

  beforeAll(async () => {
    process.env.TEST_DB_KIND = kind;
    db = await createTestDatabase();
    const port = await freePort();
    origin = `http://localhost:${port}`;
    ctx = await createIdentityApp(db, {
      port,
      identity: { publicUrl: origin, session: { secureCookies: false }, rateLimits: { enabled: false }, passkeys: { rpId: 'localhost', origins: [origin] } },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  });
  afterAll(async () => {
    await browser?.close();
    await ctx?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    context = await browser.newContext();
    page = await context.newPage();
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    }));
    await page.goto(`${origin}/backoffice/auth/me`);
    await page.addScriptTag({ path: UMD });
  });
  afterEach(async () => {
    await context?.close();
  });

  it('registers a passkey, signs out, signs in with it without a password (username-less), removes it', async () => {
    const user = await newUser();
    expect((await api(page, 'POST', '/auth/login', { username: user.email, password: TEST_PASSWORD })).status).toBe(200);
    const added = await ceremony(page, 'register', '/auth/passkeys/options', '/auth/passkeys', { name: 'Chromium' });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(added.body).toMatchObject({ name: 'Chromium', transports: ['internal'] });
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0].isResidentCredential).toBe(true);
    expect(Buffer.from(credentials[0].userHandle!, 'base64').toString()).toBe(user.id);

    expect((await api(page, 'POST', '/auth/logout')).status).toBe(200);
    expect((await api(page, 'GET', '/auth/me')).status).toBe(401);
    const signedIn = await ceremony(page, 'authenticate', '/auth/passkey/options', '/auth/passkey/verify');
    expect(signedIn.status, JSON.stringify(signedIn.body)).toBe(200);
    expect(signedIn.body).toMatchObject({ status: 'success', user: { id: user.id } });
    expect((await api(page, 'GET', '/auth/me')).body.id).toBe(user.id);
    const [stored] = await ctx.userManager.getPasskeys(user);
    const after = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0];
    expect(stored.counter).toBe(after.signCount);
    expect(stored.lastUsedAt).not.toBeNull();

    expect((await api(page, 'DELETE', `/auth/passkeys/${added.body.id}`)).status).toBe(204);
    await api(page, 'POST', '/auth/logout');
    const refused = await ceremony(page, 'authenticate', '/auth/passkey/options', '/auth/passkey/verify');
    expect(refused).toMatchObject({ status: 401, body: { code: 'invalid_passkey' } });
  });

  it('a passkey answers the second factor after the password; a user-verified passkey alone signs a 2FA user in', async () => {
    const user = await newUser();
    const totp = ctx.app.get<TotpTwoFactorProvider[]>(BACKOFFICE_TWO_FACTOR_PROVIDERS).find((p) => p.name === 'totp')!;
    await api(page, 'POST', '/auth/login', { username: user.email, password: TEST_PASSWORD });
    expect((await ceremony(page, 'register', '/auth/passkeys/options', '/auth/passkeys', { name: 'Chromium' })).status).toBe(201);
    const setup = await api(page, 'POST', '/auth/2fa/setup', { provider: 'totp' });
    expect((await api(page, 'POST', '/auth/2fa/enable', { provider: 'totp', code: totp.codeAt(setup.body.secret, ctx.clock.now()) })).status).toBe(200);
    await api(page, 'POST', '/auth/logout');

    const login = await api(page, 'POST', '/auth/login', { username: user.email, password: TEST_PASSWORD });
    expect(login.body).toEqual({ status: 'requiresTwoFactor', providers: ['totp', 'passkey', 'recovery'] });
    const second = await ceremony(page, 'authenticate', '/auth/2fa/passkey/options', '/auth/2fa/passkey');
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(second.body).toMatchObject({ status: 'success', user: { id: user.id, twoFactorEnabled: true } });
    await api(page, 'POST', '/auth/logout');

    const passwordless = await ceremony(page, 'authenticate', '/auth/passkey/options', '/auth/passkey/verify');
    expect(passwordless.body).toMatchObject({ status: 'success', user: { id: user.id } });
  });
});
