import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { TestOidcProvider } from '../support/oidc-provider.js';
import { BACKOFFICE_UI_MESSAGES, BackOfficeInviteService, BackOfficeSessionService, type BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { DataSource } from 'typeorm';
import { axeScan, chromiumPath, freePort, latestMailTo, launchBrowser, totpCode } from './support/browser.js';
import { startBrowserApp, type BrowserApp } from './support/browser-app.js';

const executable = chromiumPath();
const suite = executable ? describe : describe.skip;
const SECRET = 'browser-test-client-secret-0123456789abcdef';

/** The provider's own (development) sign-in and consent pages. */
async function signInAtProvider(page: Page, idp: TestOidcProvider, login: string): Promise<void> {
  await page.waitForURL((u) => u.origin === idp.issuer);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await page.locator('button[type="submit"]').click();
  await page.waitForLoadState();
  if (new URL(page.url()).origin === idp.issuer) await page.locator('button[type="submit"]').click();
}

// External providers on the sign-in screens, against a real OpenID provider (oidc-provider, in-process).
suite('sign-in screens with an external login provider (real OpenID provider)', () => {
  let idp: TestOidcProvider;
  let app: BrowserApp;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    const port = await freePort();
    const callback = `http://localhost:${port}/backoffice/auth/external/oidc/callback`;
    idp = await TestOidcProvider.start([{ client_id: 'backoffice-ui', client_secret: SECRET, redirect_uris: [callback], post_logout_redirect_uris: [`http://localhost:${port}/backoffice`] }]);
    app = await startBrowserApp(
      {
        externalLogins: [{ name: 'oidc', displayName: 'Single sign-on', issuer: idp.issuer, clientId: 'backoffice-ui', clientSecret: SECRET, autoLink: { enabled: true, defaultGroups: ['editor'] } }],
      },
      port,
    );
    browser = await launchBrowser(executable!);
  });
  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await app?.shutdown();
    await idp?.stop();
  });

  async function newPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
    const context = await browser.newContext(options);
    contexts.push(context);
    return context.newPage();
  }
  const url = (path: string) => `${app.origin}/backoffice${path}`;

  it('signs in with the provider button and lands signed in; the only login cannot be unlinked', async () => {
    idp.accounts.set('sso-ann', { email: 'ann.sso@example.com', email_verified: true, name: 'Ann Sso' });
    const page = await newPage();
    await page.goto(url('/'));
    await page.getByRole('link', { name: 'Sign in with Single sign-on' }).click();
    await signInAtProvider(page, idp, 'sso-ann');
    await page.waitForURL(url('/account'));
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain('ann.sso@example.com');
    const logins = page.locator('#bo-logins-section');
    await expect.poll(() => logins.isVisible()).toBe(true);
    await logins.getByRole('button', { name: 'Unlink Single sign-on' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('You cannot unlink your only way to sign in');
  });

  it('a local user links the provider from the account page, then unlinks it', async () => {
    expect((await app.userManager.createUser({ email: 'bo.local@example.com', name: 'Bo Local', password: TEST_PASSWORD })).succeeded).toBe(true);
    idp.accounts.set('sso-bo', { email: 'bo.local@example.com', email_verified: true, name: 'Bo Local' });
    const page = await newPage();
    await page.goto(url('/'));
    await page.getByLabel('Email', { exact: true }).fill('bo.local@example.com');
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(url('/account'));
    await expect.poll(() => page.locator('#bo-no-logins').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Link Single sign-on' }).click();
    await signInAtProvider(page, idp, 'sso-bo');
    await page.waitForURL((u) => u.pathname === '/backoffice/account');
    await expect.poll(() => page.getByRole('button', { name: 'Unlink Single sign-on' }).count()).toBe(1);
    await page.getByRole('button', { name: 'Unlink Single sign-on' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toBe('Single sign-on has been unlinked.');
    await expect.poll(() => page.getByRole('button', { name: 'Link Single sign-on' }).count()).toBe(1);
  });

  it('an invitee opens the emailed link and continues with the provider instead of a password; the token is never in a URL sent', async () => {
    const invited = await app.app.get(BackOfficeInviteService).invite({ email: 'cat.invitee@example.com', name: 'Cat Invitee', groups: ['editor'] }, null);
    expect(invited.succeeded).toBe(true);
    const mail = await latestMailTo(app.mailDir, 'cat.invitee@example.com');
    expect(mail.link.startsWith(`${app.origin}/backoffice/accept-invite#userId=`)).toBe(true);
    // The provider knows Cat under a personal address: the invite token is what proves the invitee.
    idp.accounts.set('sso-cat', { email: 'cat@personal.example.com', email_verified: true, name: 'Cat Invitee' });
    const page = await newPage({ bypassCSP: true }); // bypassCSP: only so that axe-core can be injected
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(mail.link);
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('');
    const button = page.getByRole('button', { name: 'Continue with Single sign-on' });
    await expect.poll(() => button.isVisible()).toBe(true);
    expect(await page.getByLabel('New password', { exact: true }).isVisible()).toBe(true);
    expect((await axeScan(page)).violations).toEqual([]);
    await button.click();
    await signInAtProvider(page, idp, 'sso-cat');
    await page.waitForURL((u) => u.origin === app.origin && u.pathname.startsWith('/backoffice'));
    await page.goto(url('/account'));
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain('cat.invitee@example.com');
    await expect.poll(() => page.getByRole('button', { name: 'Unlink Single sign-on' }).count()).toBe(1);
    const token = new URL(mail.link).hash.match(/token=([^&]+)/)![1];
    expect(requested.some((r) => r.includes(token) || r.includes(decodeURIComponent(token)))).toBe(false);

    // The link works once: opened again, the page says so as it loads (its verify call), the button is gone.
    const again = await newPage();
    await again.goto(mail.link);
    await expect.poll(() => again.getByRole('alert').textContent()).toContain('This invitation link is invalid');
    expect(await again.locator('#bo-providers').isHidden()).toBe(true);
    expect(await again.locator('#bo-invite-form').isHidden()).toBe(true);
    // When that check could not answer (network), the button itself answers with the catalogue's message.
    const offline = await newPage();
    await offline.route('**/auth/invite/verify', (route) => route.abort());
    await offline.goto(mail.link);
    await offline.getByRole('button', { name: 'Continue with Single sign-on' }).click();
    await expect.poll(() => offline.getByRole('alert').textContent()).toContain('This invitation link is invalid');
    expect(await offline.locator('#bo-providers').isHidden()).toBe(true);
  });

  it('shows the provider error the callback sends back (?error=external_email_unverified)', async () => {
    idp.accounts.set('sso-unverified', { email: 'unverified@example.com', email_verified: false, name: 'Una Verified' });
    const page = await newPage();
    await page.goto(url('/'));
    await page.getByRole('link', { name: 'Sign in with Single sign-on' }).click();
    await signInAtProvider(page, idp, 'sso-unverified');
    await page.waitForURL((u) => u.pathname.startsWith('/backoffice') && u.searchParams.get('error') === 'external_email_unverified');
    expect(await page.getByRole('alert').first().textContent()).toBe('The external provider has not verified your email address.');
  });
});

suite('a provider that asks for auto-redirect', () => {
  let idp: TestOidcProvider;
  let app: BrowserApp;
  let browser: Browser;

  beforeAll(async () => {
    const port = await freePort();
    const callback = (name: string) => `http://localhost:${port}/backoffice/auth/external/${name}/callback`;
    idp = await TestOidcProvider.start([{ client_id: 'backoffice-ui', client_secret: SECRET, redirect_uris: [callback('oidc'), callback('partner')] }]);
    // With passkeys and a second provider (no autoRedirect) beside it: a sign-in the person starts stops the redirect.
    app = await startBrowserApp(
      (origin) => ({
        passkeys: { rpId: 'localhost', rpName: 'Back office', origins: [origin] },
        externalLogins: [
          { name: 'oidc', displayName: 'Company login', issuer: idp.issuer, clientId: 'backoffice-ui', clientSecret: SECRET, autoRedirect: true },
          { name: 'partner', displayName: 'Partner login', issuer: idp.issuer, clientId: 'backoffice-ui', clientSecret: SECRET },
        ],
      }),
      port,
    );
    browser = await launchBrowser(executable!);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.shutdown();
    await idp?.stop();
  });

  /** A new local user (`email`, password TEST_PASSWORD) and a page of a new browser context. */
  async function localUserPage(email: string, name: string): Promise<{ user: BackOfficeUser; context: BrowserContext; page: Page }> {
    const created = await app.userManager.createUser({ email, name, password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const context = await browser.newContext();
    return { user: created.value!, context, page: await context.newPage() };
  }

  /** Signs `page` in as `email` with the password (through the API, from a page of the site that is not the sign-in page). */
  async function signInThroughApi(page: Page, email: string): Promise<void> {
    await page.goto(`${app.origin}/backoffice/forgot-password`);
    const status = await page.evaluate(
      async ([username, password]) => (await (window as any).BackOfficeSession.request('POST', '/auth/login', { username, password }, { retry: false })).status,
      [email, TEST_PASSWORD] as const,
    );
    expect(status).toBe(200);
  }

  it('goes straight to the provider from the sign-in page, but not when the page shows a provider error', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${app.origin}/backoffice/`);
    await page.waitForURL((u) => u.origin === idp.issuer);
    await page.goto(`${app.origin}/backoffice/?error=external_login_failed`);
    await page.waitForLoadState('networkidle');
    // Still the sign-in page (its canonical path: /backoffice/ answers 302 to /backoffice, query kept; cb8a0c9), not the provider.
    expect(page.url()).toBe(`${app.origin}/backoffice?error=external_login_failed`);
    expect(await page.getByRole('link', { name: 'Sign in with Company login' }).isVisible()).toBe(true);
    await context.close();
  });

  it('OWASP ASVS 5.0 3.5 (login CSRF): a browser already signed in goes to returnUrl, never to the provider, even when its session check answers late; a session that has ended still goes to the provider', async () => {
    const { user, context, page } = await localUserPage('gil.local@example.com', 'Gil Local');
    const toProvider: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/auth/external/oidc/challenge') || request.url().startsWith(idp.issuer)) toProvider.push(request.url());
    });
    await signInThroughApi(page, 'gil.local@example.com');
    const sessionCookie = async () => (await context.cookies()).find((c) => c.name === 'backoffice_session')?.value;
    const token = await sessionCookie();
    expect(token).toBeTruthy();
    // A slow session check (the providers list answers first): what an attacker's cross-site link to the sign-in page meets.
    await page.route('**/backoffice/auth/me', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      await route.continue();
    });
    await page.goto(`${app.origin}/backoffice?returnUrl=${encodeURIComponent('/backoffice/account')}`);
    await page.waitForURL((u) => u.pathname === '/backoffice/account' || u.origin === idp.issuer);
    await page.waitForLoadState('networkidle');
    expect(toProvider).toEqual([]);
    expect(page.url()).toBe(`${app.origin}/backoffice/account`);
    expect(await sessionCookie()).toBe(token);
    await page.unroute('**/backoffice/auth/me');
    expect(await page.evaluate(async () => (await (window as any).BackOfficeSession.request('GET', '/auth/me', undefined, { retry: false })).status)).toBe(200);

    // A session check that cannot answer (network) does not say the session has ended: no auto-redirect, the button stays.
    await page.route('**/backoffice/auth/me', (route) => route.abort());
    await page.goto(`${app.origin}/backoffice`);
    await expect.poll(() => page.getByRole('link', { name: 'Sign in with Company login' }).isVisible()).toBe(true);
    await page.waitForTimeout(300);
    expect(page.url()).toBe(`${app.origin}/backoffice`);
    expect(toProvider).toEqual([]);
    await page.unroute('**/backoffice/auth/me');

    // The session ended elsewhere (the XSRF cookie is still there, GET /auth/me answers 401): straight to the provider.
    await app.app.get(BackOfficeSessionService).revokeAll(user);
    expect(await sessionCookie()).toBe(token);
    await page.goto(`${app.origin}/backoffice`);
    await page.waitForURL((u) => u.origin === idp.issuer);
    expect(toProvider.some((u) => u.includes('/auth/external/oidc/challenge'))).toBe(true);
    await context.close();
  });

  it('OWASP ASVS 5.0 3.5.x / 7.x (cookie tossing): a second session cookie tossed onto /backoffice/auth/me makes the session check answer 401, but the automatic challenge (auto=1) of the live session goes back to the sign-in page: no request reaches the provider, no redirect loop, the message is shown, the session stays', async () => {
    const { user, context, page } = await localUserPage('ivy.local@example.com', 'Ivy Local');
    const challenges: string[] = [];
    const toProvider: string[] = [];
    const signInPages: string[] = [];
    page.on('request', (request) => {
      const requested = new URL(request.url());
      if (requested.pathname === '/backoffice/auth/external/oidc/challenge') challenges.push(request.url());
      if (requested.origin === idp.issuer) toProvider.push(request.url());
      if (request.isNavigationRequest() && requested.pathname === '/backoffice') signInPages.push(request.url());
    });
    await signInThroughApi(page, 'ivy.local@example.com');
    const sessionCookie = async () => (await context.cookies()).find((c) => c.name === 'backoffice_session' && c.path === '/')?.value;
    const token = await sessionCookie();
    expect(token).toBeTruthy();
    // What a sibling subdomain's Set-Cookie (Domain=<parent>; Path=/backoffice/auth/me) leaves in the victim's browser.
    await context.addCookies([{ name: 'backoffice_session', value: 'A'.repeat(43), domain: 'localhost', path: '/backoffice/auth/me', httpOnly: true, sameSite: 'Lax' }]);

    await page.goto(`${app.origin}/backoffice?returnUrl=${encodeURIComponent('/backoffice/account')}`);
    await page.waitForURL((u) => u.searchParams.get('error') === 'already_signed_in' || u.origin === idp.issuer);
    await page.waitForLoadState('networkidle');
    await page.waitForTimeout(500);
    expect(toProvider).toEqual([]);
    expect(challenges).toEqual([`${app.origin}/backoffice/auth/external/oidc/challenge?returnUrl=${encodeURIComponent('/backoffice/account')}&auto=1`]);
    expect(page.url()).toBe(`${app.origin}/backoffice?returnUrl=${encodeURIComponent('/backoffice/account')}&error=already_signed_in`);
    expect(signInPages.length).toBe(2); // the first sign-in page, and the one the challenge sent back to: no loop
    await expect.poll(() => page.getByRole('alert').first().textContent()).toBe(BACKOFFICE_UI_MESSAGES.alreadySignedIn);
    expect(await page.getByRole('link', { name: 'Sign in with Company login' }).isVisible()).toBe(true);
    expect(await sessionCookie()).toBe(token);
    expect((await app.app.get(BackOfficeSessionService).list(user)).length).toBe(1);
    await context.close();
  });

  it('OWASP ASVS 5.0 3.5 (login CSRF): a session check answered 401 because a step-up in another tab renewed the session meanwhile does not send the browser to the provider: it asks again with the new cookies and goes to returnUrl', async () => {
    const { context, page: other } = await localUserPage('hal.local@example.com', 'Hal Local');
    await other.goto(`${app.origin}/backoffice/forgot-password`);
    const call = (path: string, body?: unknown) =>
      other.evaluate(async ([p, b]) => (await (window as any).BackOfficeSession.request(b === undefined ? 'GET' : 'POST', p, b, { retry: false })).status, [path, body] as const);
    expect(await call('/auth/login', { username: 'hal.local@example.com', password: TEST_PASSWORD })).toBe(200);
    const sessionCookie = async () => (await context.cookies()).find((c) => c.name === 'backoffice_session')?.value;
    const before = await sessionCookie();
    const page = await context.newPage();
    const toProvider: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/auth/external/oidc/challenge') || request.url().startsWith(idp.issuer)) toProvider.push(request.url());
    });
    // The sign-in page's first GET /auth/me leaves with the session's cookie; before its answer arrives, the other tab
    // re-authenticates (a step-up renews the session's token and cookies): the answer is 401 though the session goes on.
    let first = true;
    await page.route('**/backoffice/auth/me', async (route) => {
      if (!first) return route.continue();
      first = false;
      expect(await call('/auth/reauthenticate', { password: TEST_PASSWORD })).toBe(200);
      // What the server answers the request that left with the session's former cookie.
      const stale = await fetch(route.request().url(), { headers: { accept: 'application/json', 'x-backoffice-session-peek': '1', cookie: `backoffice_session=${before}` } });
      expect(stale.status).toBe(401);
      await route.fulfill({ status: stale.status, contentType: 'application/json', body: await stale.text() });
    });
    await page.goto(`${app.origin}/backoffice?returnUrl=${encodeURIComponent('/backoffice/account')}`);
    await page.waitForURL((u) => u.pathname === '/backoffice/account' || u.origin === idp.issuer);
    await page.waitForLoadState('networkidle');
    expect(toProvider).toEqual([]);
    expect(page.url()).toBe(`${app.origin}/backoffice/account`);
    const renewed = await sessionCookie();
    expect(renewed).not.toBe(before);
    expect(await call('/auth/me')).toBe(200);
    await context.close();
  });

  it('OWASP ASVS 5.0 3.5 (login CSRF): an XSRF-TOKEN cookie that is badly percent-encoded (tossed) still counts as a cookie: the page asks GET /auth/me before going to the provider', async () => {
    const context = await browser.newContext();
    await context.addCookies([{ name: 'XSRF-TOKEN', value: '%', url: app.origin, sameSite: 'Strict' }]);
    const page = await context.newPage();
    const toProvider: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/auth/external/oidc/challenge') || request.url().startsWith(idp.issuer)) toProvider.push(request.url());
    });
    // A check that cannot answer (network) does not say signed out: no redirect, though the cookie cannot be decoded.
    let checks = 0;
    await page.route('**/backoffice/auth/me', (route) => {
      checks++;
      return route.abort();
    });
    await page.goto(`${app.origin}/backoffice`);
    await expect.poll(() => page.getByRole('link', { name: 'Sign in with Company login' }).isVisible()).toBe(true);
    await page.waitForTimeout(300);
    expect(checks).toBe(1);
    expect(page.url()).toBe(`${app.origin}/backoffice`);
    expect(toProvider).toEqual([]);
    await context.close();
  });

  /**
   * A sign-in page whose load-time GET /auth/me (asked for the XSRF cookie of an ended session) is held until
   * `release()`, which lets it answer (401); `challenges` records the provider challenges the page requested.
   */
  async function pageWithHeldCheck(): Promise<{ context: BrowserContext; page: Page; challenges: string[]; release: () => void }> {
    const context = await browser.newContext();
    await context.addCookies([{ name: 'XSRF-TOKEN', value: 'left-from-an-ended-session', url: app.origin, sameSite: 'Strict' }]);
    const page = await context.newPage();
    const challenges: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.endsWith('/challenge')) challenges.push(new URL(request.url()).pathname);
    });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/backoffice/auth/me', async (route) => {
      await released;
      await route.continue();
    });
    await page.goto(`${app.origin}/backoffice`);
    await expect.poll(() => page.getByRole('link', { name: 'Sign in with Partner login' }).isVisible()).toBe(true);
    return { context, page, challenges, release };
  }

  it('a passkey sign-in started while the session check is out: its answer (401) starts no redirect to the provider', async () => {
    const { context, page, challenges, release } = await pageWithHeldCheck();
    // The person's passkey ceremony is under way (its options held here) when the check answers.
    let optionsAsked = false;
    await page.route('**/backoffice/auth/passkey/options', () => {
      optionsAsked = true; // never answered: the ceremony is still going on
    });
    await page.getByRole('button', { name: BACKOFFICE_UI_MESSAGES.signInWithPasskeyButton }).click();
    await expect.poll(() => optionsAsked).toBe(true);
    release();
    await page.waitForTimeout(500);
    expect(challenges).toEqual([]);
    expect(new URL(page.url()).pathname).toBe('/backoffice');
    await context.close();
  });

  it("a click on another provider's button while the session check is out: its answer (401) does not send the browser to the auto-redirect provider instead", async () => {
    const { context, page, challenges, release } = await pageWithHeldCheck();
    // The click's challenge is held (still loading) when the check answers.
    let clicked!: () => void;
    const challengeSent = new Promise<void>((resolve) => (clicked = resolve));
    await page.route('**/backoffice/auth/external/partner/challenge*', () => clicked());
    await page.getByRole('link', { name: 'Sign in with Partner login' }).click({ noWaitAfter: true });
    await challengeSent;
    release();
    await page.waitForTimeout(500);
    expect(challenges).toEqual(['/backoffice/auth/external/partner/challenge']);
    await context.close();
  });
});

suite('denyLocalLogin: invites accepted only through the provider, into a group that requires two-factor', () => {
  let idp: TestOidcProvider;
  let app: BrowserApp;
  let browser: Browser;

  beforeAll(async () => {
    const port = await freePort();
    idp = await TestOidcProvider.start([{ client_id: 'backoffice-ui', client_secret: SECRET, redirect_uris: [`http://localhost:${port}/backoffice/auth/external/oidc/callback`] }]);
    app = await startBrowserApp(
      { denyLocalLogin: true, externalLogins: [{ name: 'oidc', displayName: 'Company login', issuer: idp.issuer, clientId: 'backoffice-ui', clientSecret: SECRET }] },
      port,
    );
    await app.app.get(DataSource).query(`UPDATE backoffice_group SET require_two_factor = true WHERE alias = 'sensitiveData'`);
    browser = await launchBrowser(executable!);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.shutdown();
    await idp?.stop();
  });

  it('the emailed link offers only "Continue with Company login"; the invitee lands on the account page to set up two-factor', async () => {
    const invited = await app.app.get(BackOfficeInviteService).invite({ email: 'dee.invitee@example.com', name: 'Dee Invitee', groups: ['sensitiveData'] }, null);
    expect(invited.succeeded).toBe(true);
    const mail = await latestMailTo(app.mailDir, 'dee.invitee@example.com');
    expect(mail.text).toContain('Accept the invitation and sign in with Company login');
    expect(mail.link.startsWith(`${app.origin}/backoffice/accept-invite#userId=`)).toBe(true);
    idp.accounts.set('sso-dee', { email: 'dee.invitee@example.com', email_verified: true, name: 'Dee Invitee' });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(mail.link);
    const button = page.getByRole('button', { name: 'Continue with Company login' });
    await expect.poll(() => button.isVisible()).toBe(true);
    expect(await page.getByLabel('New password', { exact: true }).count()).toBe(0);
    await button.click();
    await signInAtProvider(page, idp, 'sso-dee');
    await page.waitForURL(`${app.origin}/backoffice/account?status=requiresTwoFactorSetup`);
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Your group requires two-factor authentication.');
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain('dee.invitee@example.com');
    // No password anywhere: no "Change password" form that the server would refuse (403 local_login_disabled).
    expect(await page.getByRole('heading', { name: 'Change password' }).count()).toBe(0);
    expect(await page.getByLabel('Current password').count()).toBe(0);
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    await expect.poll(() => page.locator('#bo-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/);
    const secret = (await page.locator('#bo-secret').textContent())!;
    const sessionCookie = async () => (await context.cookies()).find((c) => c.name === 'backoffice_session')?.value;
    const setupOnlyToken = await sessionCookie();
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, app.clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => page.locator('#bo-recovery-codes li').count()).toBe(10);
    // The session is a full one now, under a new token (OWASP ASVS 5.0 7.2.4) that the page took by itself.
    expect(await sessionCookie()).not.toBe(setupOnlyToken);
    expect(await page.evaluate(async () => (await (window as any).BackOfficeSession.request('GET', '/auth/sessions')).status)).toBe(200);
    await context.close();
  });

  it('the invite link is checked on load as well: a live one shows its account and the button; a used one says so at once, no button, the focus on the error; a verify that cannot answer leaves the button; axe clean', async () => {
    const invited = await app.app.get(BackOfficeInviteService).invite({ email: 'fay.invitee@example.com', name: 'Fay Invitee', groups: ['editor'] }, null);
    expect(invited.succeeded).toBe(true);
    const mail = await latestMailTo(app.mailDir, 'fay.invitee@example.com');
    idp.accounts.set('sso-fay', { email: 'fay@personal.example.com', email_verified: true, name: 'Fay Invitee' });
    const button = (page: Page) => page.getByRole('button', { name: 'Continue with Company login' });
    const alertText = (page: Page) => page.locator('#bo-alert').textContent();

    // A live link: the button, and which account the provider login will join (the provider knows Fay by another address).
    const context = await browser.newContext({ bypassCSP: true }); // bypassCSP: only so that axe-core can be injected
    const page = await context.newPage();
    const verified = page.waitForResponse((r) => r.url().endsWith('/auth/invite/verify'));
    await page.goto(mail.link);
    expect((await verified).status()).toBe(200);
    await expect.poll(() => button(page).isVisible()).toBe(true);
    await expect.poll(() => page.locator('#bo-link-account').isVisible()).toBe(true);
    expect(await page.locator('#bo-link-account').textContent()).toBe('Account: fay.invitee@example.com');
    expect(await page.locator('#bo-link-username').count()).toBe(0); // no password to save for it
    expect(await alertText(page)).toBe('');
    expect((await axeScan(page)).violations).toEqual([]);

    // A verify that cannot answer (network, 5xx, 429, or an older server's 403 local_login_disabled) leaves the button.
    for (const answer of ['abort', 503, 429, 403] as const) {
      const other = await context.newPage();
      let answered!: () => void;
      const done = new Promise<void>((resolve) => (answered = resolve));
      await other.route('**/auth/invite/verify', async (route) => {
        if (answer === 'abort') await route.abort();
        else {
          const code = answer === 429 ? 'rate_limited' : answer === 403 ? 'local_login_disabled' : 'unavailable';
          await route.fulfill({ status: answer, contentType: 'application/json', body: JSON.stringify({ statusCode: answer, code, message: 'x' }) });
        }
        answered();
      });
      await other.goto(mail.link);
      await done;
      await expect.poll(() => button(other).isVisible(), String(answer)).toBe(true);
      await other.waitForTimeout(200);
      expect(await button(other).isVisible(), String(answer)).toBe(true);
      expect(await alertText(other), String(answer)).toBe('');
      expect(await other.locator('#bo-link-account').isHidden(), String(answer)).toBe(true);
      await other.close();
    }

    // Accepted through the provider: the link is used up.
    await button(page).click();
    await signInAtProvider(page, idp, 'sso-fay');
    await page.waitForURL((u) => u.origin === app.origin && u.pathname.startsWith('/backoffice'));
    await context.close();

    // Opened again: refused as the page loads, before any click; no button, no account line, the focus on the error.
    const againContext = await browser.newContext({ bypassCSP: true });
    const again = await againContext.newPage();
    await again.goto(mail.link);
    await expect.poll(() => alertText(again)).toContain('This invitation link is invalid');
    await again.waitForLoadState('networkidle');
    expect(await again.locator('#bo-providers').isHidden()).toBe(true);
    expect(await button(again).count()).toBe(0);
    expect(await again.locator('#bo-link-account').isHidden()).toBe(true);
    await expect.poll(() => again.evaluate(() => document.activeElement?.id)).toBe('bo-alert');
    expect((await axeScan(again)).violations).toEqual([]);
    await againContext.close();
  });

  it('OWASP ASVS 4.0 3.7.1: a provider-only user confirms a sensitive action through the provider; the step-up dialog asks for no password', async () => {
    const created = await app.userManager.createUser({ email: 'eve.sso@example.com', name: 'Eve Sso' });
    expect(created.succeeded).toBe(true);
    const eve = created.value!;
    expect((await app.userManager.addLogin(eve, { provider: 'oidc', providerKey: 'sso-eve', displayName: 'Company login' })).succeeded).toBe(true);
    idp.accounts.set('sso-eve', { email: 'eve.sso@example.com', email_verified: true, name: 'Eve Sso' });
    const sessions = app.app.get(BackOfficeSessionService);
    await sessions.create(eve, {}); // another device: "Sign out all other sessions" shows
    const context = await browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${app.origin}/backoffice/`);
    await page.getByRole('link', { name: 'Sign in with Company login' }).click();
    await signInAtProvider(page, idp, 'sso-eve');
    await page.waitForURL(`${app.origin}/backoffice/account`);
    const signOutOthers = page.getByRole('button', { name: 'Sign out all other sessions' });
    await expect.poll(() => signOutOthers.isVisible()).toBe(true);

    app.clock.advance(6 * 60_000); // past session.reauthenticationMinutes
    await signOutOthers.click();
    const dialog = page.getByRole('dialog', { name: 'Confirm it’s you' });
    await expect.poll(() => dialog.isVisible()).toBe(true);
    expect(await dialog.getByLabel('Password').count()).toBe(0);
    expect(await dialog.textContent()).toContain('Confirm it’s you with your sign-in provider to continue.');
    const viaProvider = dialog.getByRole('button', { name: 'Continue with Company login' });
    expect(await viaProvider.evaluate((button) => button === document.activeElement)).toBe(true);
    expect((await axeScan(page)).violations).toEqual([]);
    expect((await sessions.list(eve)).length).toBe(2);

    await page.keyboard.press('Enter');
    await signInAtProvider(page, idp, 'sso-eve'); // the provider asks again (prompt=login, max_age)
    await page.waitForURL(`${app.origin}/backoffice/account`);
    await expect.poll(() => signOutOthers.isVisible()).toBe(true);
    await signOutOthers.click();
    await expect.poll(() => page.getByRole('status').textContent()).toBe('Your other sessions have been signed out.');
    expect(await page.getByRole('dialog').count()).toBe(0);
    expect((await sessions.list(eve)).length).toBe(1);
    await context.close();
  });

  it('OWASP ASVS 4.0 3.7.1: a provider-only member of a group that requires two-factor, whose setup-only session is no longer recent, confirms it through the provider and sets up two-factor', async () => {
    const created = await app.userManager.createUser({ email: 'gus.sso@example.com', name: 'Gus Sso' });
    expect(created.succeeded).toBe(true);
    const gus = created.value!;
    expect((await app.userManager.addLogin(gus, { provider: 'oidc', providerKey: 'sso-gus', displayName: 'Company login' })).succeeded).toBe(true);
    expect((await app.userManager.setGroups(gus, ['sensitiveData'])).succeeded).toBe(true);
    idp.accounts.set('sso-gus', { email: 'gus.sso@example.com', email_verified: true, name: 'Gus Sso' });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${app.origin}/backoffice/`);
    await page.getByRole('link', { name: 'Sign in with Company login' }).click();
    await signInAtProvider(page, idp, 'sso-gus');
    await page.waitForURL(`${app.origin}/backoffice/account?status=requiresTwoFactorSetup`);
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain('gus.sso@example.com');

    app.clock.advance(6 * 60_000); // past session.reauthenticationMinutes, within the setup-only session's 15 minutes
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    const dialog = page.getByRole('dialog', { name: 'Confirm it’s you' });
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await dialog.getByRole('button', { name: 'Continue with Company login' }).click();
    await signInAtProvider(page, idp, 'sso-gus'); // the provider asks again (prompt=login, max_age)
    await page.waitForURL(`${app.origin}/backoffice/account?status=requiresTwoFactorSetup`);
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain('gus.sso@example.com');

    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    await expect.poll(() => page.locator('#bo-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/);
    // Still setup-only until the code is confirmed.
    expect(await page.evaluate(async () => (await (window as any).BackOfficeSession.request('GET', '/auth/sessions')).body.code)).toBe('two_factor_setup_required');
    const secret = (await page.locator('#bo-secret').textContent())!;
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, app.clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => page.locator('#bo-recovery-codes li').count()).toBe(10);
    expect(await page.evaluate(async () => (await (window as any).BackOfficeSession.request('GET', '/auth/sessions')).status)).toBe(200);
    await context.close();
  });
});
