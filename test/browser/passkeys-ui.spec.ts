import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { BackOfficeEvents } from '../../src/backoffice-identity/index.js';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { axeScan, chromiumPath, launchBrowser, totpCode, transferredBytes } from './support/browser.js';
import { startBrowserApp, type BrowserApp } from './support/browser-app.js';

/**
 * The passkey screens in Debian's chromium with the DevTools WebAuthn virtual authenticator (CTAP2, internal
 * transport, resident keys, user verification, automatic presence), on http://localhost:<port>: add a passkey from
 * the account page, sign out, sign in with it and no password, use it as the second factor, remove it; the
 * step-up dialog with the password and with the passkey; axe-core on the three pages; first paint with passkeys.
 * On PostgreSQL and on PGlite. `UPDATE_SCREENSHOTS=1` writes docs/screenshots/account-passkeys.png.
 */
const executable = chromiumPath();
const KINDS = process.env.TEST_PG_URL ? ['postgres', 'pglite'] : ['pglite'];
const UPDATE = process.env.UPDATE_SCREENSHOTS === '1';
const DOCS_DIR = join(__dirname, '..', '..', 'docs', 'screenshots');

(executable ? describe : describe.skip).each(KINDS)('passkey screens in a real browser (%s)', (kind) => {
  let app: BrowserApp;
  let browser: Browser;
  let events: NotificationRecorder;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    process.env.TEST_DB_KIND = kind;
    app = await startBrowserApp((origin) => ({ passkeys: { rpId: 'localhost', rpName: 'Back office', origins: [origin] } }));
    browser = await launchBrowser(executable!);
    events = NotificationRecorder.attach(app.app);
  });
  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await app?.shutdown();
  });

  const url = (path: string) => `${app.origin}/backoffice${path}`;

  /**
   * A page whose browser has a virtual platform authenticator with user verification. The virtual authenticator
   * answers a conditional (autofill) request at once, as if the person picked the passkey from the autofill list;
   * with `conditional: false` the page sees no conditional mediation, so the buttons drive the ceremonies.
   */
  async function pageWithAuthenticator(conditional = true): Promise<{ page: Page; cdp: CDPSession; authenticatorId: string }> {
    const context = await browser.newContext({ baseURL: app.origin });
    contexts.push(context);
    if (!conditional) {
      await context.addInitScript(() => {
        if (window.PublicKeyCredential) (PublicKeyCredential as any).isConditionalMediationAvailable = async () => false;
      });
    }
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    return { page, cdp, authenticatorId };
  }

  async function passwordSignIn(page: Page, email: string): Promise<void> {
    await page.goto(url('/'));
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  async function expectAccount(page: Page, email: string): Promise<void> {
    await page.waitForURL(url('/account'));
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain(email);
  }

  async function signOut(page: Page): Promise<void> {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/backoffice' || u.pathname === '/backoffice/');
  }

  const passkeyNames = (page: Page) => page.locator('#bo-passkeys li strong').allTextContents();

  /** axe-core (WCAG 2.1 A/AA + best practices) in a context that may inject it: no serious or critical violation. */
  async function expectAccessible(page: Page): Promise<void> {
    const scan = await axeScan(page);
    expect(scan.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
    expect(scan.passes).toBeGreaterThan(10);
  }

  async function waitForTwoFactorPage(page: Page): Promise<URL> {
    await page.waitForURL((u) => u.pathname === '/backoffice/two-factor');
    return new URL(page.url());
  }

  /** The step-up dialog ("Confirm it's you") that a sensitive change opens when the sign-in is older than 5 minutes. */
  async function stepUpDialog(page: Page) {
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.getByRole('heading').textContent()).toBe('Confirm it’s you');
    return dialog;
  }

  it('adds a passkey from the account page, renames it, signs out and in with it without a password, uses it as the second factor, removes it (step-up: password, then passkey); ASVS 3.7.1', async () => {
    const email = `passkey-${kind}@example.com`;
    const user = (await app.userManager.createUser({ email, name: 'Pat Passkey', password: TEST_PASSWORD })).value!;
    const { page, cdp, authenticatorId } = await pageWithAuthenticator(false);

    // 1. Add a passkey on the account page.
    await passwordSignIn(page, email);
    await expectAccount(page, email);
    await expect.poll(() => page.locator('#bo-no-passkeys').isVisible()).toBe(true);
    await page.getByLabel('Passkey name', { exact: true }).fill('Work laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('“Work laptop” has been added');
    await expect.poll(() => passkeyNames(page)).toEqual(['Work laptop']);
    expect((await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials).toHaveLength(1);
    expect(events.named(BackOfficeEvents.PasskeyAdded, user.id)).toHaveLength(1);

    // 2. Rename it.
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('New name for Work laptop').fill('Chromium laptop');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => passkeyNames(page)).toEqual(['Chromium laptop']);

    // axe-core on the account page with the passkey listed (a second context with bypassCSP, to inject axe),
    // and the screenshots for the README.
    const scanContext = await browser.newContext({ baseURL: app.origin, bypassCSP: true, storageState: await page.context().storageState() });
    contexts.push(scanContext);
    const scanPage = await scanContext.newPage();
    await scanPage.goto(url('/account'));
    await expect.poll(() => scanPage.locator('#bo-passkeys li strong').allTextContents()).toEqual(['Chromium laptop']);
    await expectAccessible(scanPage);
    if (kind === KINDS[0]) {
      const outDir = UPDATE ? DOCS_DIR : await mkdtemp(join(tmpdir(), 'bo-passkey-shots-'));
      const box = (await scanPage.locator('#bo-passkeys-section').boundingBox())!;
      await scanPage.screenshot({ path: join(outDir, 'account-passkeys.png'), fullPage: true, clip: { x: box.x - 32, y: box.y - 16, width: box.width + 64, height: box.height + 40 } });
      await scanContext.clearCookies();
      await scanPage.goto(url('/'));
      await scanPage.screenshot({ path: join(outDir, 'sign-in-passkey.png'), fullPage: true });
      if (!UPDATE) await rm(outDir, { recursive: true, force: true });
    }
    // The sign-in page ("Sign in with a passkey") and the second step ("Use a passkey") pass axe-core too.
    await scanContext.clearCookies();
    await scanPage.goto(url('/'));
    await expect.poll(() => scanPage.getByRole('button', { name: 'Sign in with a passkey' }).isVisible()).toBe(true);
    await expectAccessible(scanPage);
    await scanPage.goto(url('/two-factor'));
    await expect.poll(() => scanPage.getByRole('button', { name: 'Use a passkey' }).isVisible()).toBe(true);
    await expectAccessible(scanPage);

    // 2b. Step-up: more than 5 minutes after the sign-in, adding a passkey asks for the password first (the
    // dialog offers the passkey too), then carries on; this authenticator holds a passkey for the account already.
    app.clock.advance(6 * 60_000);
    await page.getByLabel('Passkey name', { exact: true }).fill('Second try');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    const stepUp = await stepUpDialog(page);
    expect(await stepUp.textContent()).toContain('Enter your password or use a passkey to continue.');
    expect(await stepUp.getByRole('button', { name: 'Use a passkey' }).isVisible()).toBe(true);
    await stepUp.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await stepUp.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('This passkey is registered already.');
    expect(await page.getByRole('dialog').count()).toBe(0);
    await expect.poll(() => passkeyNames(page)).toEqual(['Chromium laptop']);
    expect(events.named(BackOfficeEvents.PasskeyAdded, user.id)).toHaveLength(1);

    // 3. Sign out; sign in with the passkey alone.
    await signOut(page);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expectAccount(page, email);
    expect(events.named(BackOfficeEvents.PasskeyUsed, user.id).at(-1)).toMatchObject({ usage: 'signIn', userVerified: true });
    await expect.poll(() => page.locator('#bo-passkeys li').textContent()).toContain('last used');

    // 4. Two-factor on (TOTP through the API from the page); after the password the passkey answers the second step.
    const setup = await page.evaluate(() => (window as any).BackOfficeSession.request('POST', '/auth/2fa/setup', { provider: 'totp' }));
    const enable = await page.evaluate(
      (code) => (window as any).BackOfficeSession.request('POST', '/auth/2fa/enable', { provider: 'totp', code }),
      totpCode(setup.body.secret, app.clock.now()),
    );
    expect(enable.status).toBe(200);
    await page.reload();
    await signOut(page);
    await passwordSignIn(page, email);
    const twoFactorUrl = await waitForTwoFactorPage(page);
    expect(twoFactorUrl.searchParams.get('providers')?.split(',')).toContain('passkey');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await expectAccount(page, email);
    expect(events.named(BackOfficeEvents.PasskeyUsed, user.id).at(-1)).toMatchObject({ usage: 'secondFactor' });

    // ... and with 2FA on, the user-verified passkey alone still signs in (it is two factors).
    await signOut(page);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expectAccount(page, email);

    // 5. Remove it (step-up again, answered with the passkey this time): it no longer signs in.
    app.clock.advance(6 * 60_000);
    const usedBefore = events.named(BackOfficeEvents.PasskeyUsed, user.id).length;
    await page.getByRole('button', { name: 'Remove' }).click();
    await (await stepUpDialog(page)).getByRole('button', { name: 'Use a passkey' }).click();
    await expect.poll(() => events.named(BackOfficeEvents.PasskeyUsed, user.id).slice(usedBefore)).toEqual([expect.objectContaining({ usage: 'reauthentication' })]);
    await expect.poll(() => page.getByRole('status').textContent()).toContain('“Chromium laptop” has been removed');
    await expect.poll(() => page.locator('#bo-no-passkeys').isVisible()).toBe(true);
    expect(events.named(BackOfficeEvents.PasskeyRemoved, user.id)).toHaveLength(1);
    await signOut(page);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('That passkey was not accepted');
    expect(page.url()).not.toContain('/account');

    // Without a passkey the second step does not offer one.
    await passwordSignIn(page, email);
    const withoutPasskey = await waitForTwoFactorPage(page);
    expect(withoutPasskey.searchParams.get('providers')?.split(',')).not.toContain('passkey');
    await expect.poll(() => page.getByRole('button', { name: 'Verify' }).isVisible()).toBe(true);
    expect(await page.getByRole('button', { name: 'Use a passkey' }).count()).toBe(0);
  });

  /** Adds a passkey from the account page (right after a sign-in: no step-up). */
  async function addPasskey(page: Page, name: string): Promise<void> {
    await page.getByLabel('Passkey name', { exact: true }).fill(name);
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => passkeyNames(page)).toContain(name);
  }

  /**
   * On the host page (session.js only), with unsaved input and a window marker: the server's idle timeout passes
   * and a call through BackOfficeSession.request() answers 401, which opens "Your session has ended"; the call
   * waits (window.pendingCall) and is retried after the sign-in.
   */
  async function endSessionOnHostPage(page: Page) {
    await page.goto(`${app.origin}/host/editor`);
    await page.getByLabel('Document').fill('unsaved work');
    await page.evaluate(() => ((window as any).pageMarker = 'same page'));
    await expect.poll(() => page.evaluate(() => Boolean((window as any).BackOfficeSession))).toBe(true);
    await page.evaluate(() => (window as any).BackOfficeSession.check());
    app.clock.advance(21 * 60_000); // idle timeout 20 min
    await page.evaluate(() => {
      (window as any).pendingCall = (window as any).BackOfficeSession.request('GET', '/auth/me').then((r: any) => `${r.status} ${r.body && r.body.email}`);
    });
    const dialog = page.getByRole('alertdialog');
    await expect.poll(() => dialog.getByRole('heading').textContent()).toBe('Your session has ended');
    return dialog;
  }

  async function expectCarriedOn(page: Page, email: string): Promise<void> {
    await expect.poll(() => page.getByRole('alertdialog').count()).toBe(0);
    expect(await page.evaluate(() => (window as any).pendingCall)).toBe(`200 ${email}`); // the waiting call was retried
    expect(await page.evaluate(() => (window as any).pageMarker)).toBe('same page'); // not reloaded
    expect(await page.getByLabel('Document').inputValue()).toBe('unsaved work');
    const me = await page.evaluate(() => fetch('/backoffice/auth/me', { headers: { 'X-Backoffice-Session-Peek': '1' } }).then((r) => r.json()));
    expect(me.email).toBe(email);
  }

  it('two-factor on through a passkey only: the account page offers "Set up two-factor authentication" and adds TOTP; then the second step takes a code or the passkey', async () => {
    const email = `passkey-totp-${kind}@example.com`;
    const user = (await app.userManager.createUser({ email, name: 'Pat Passkey', password: TEST_PASSWORD })).value!;
    const { page } = await pageWithAuthenticator(false);
    await passwordSignIn(page, email);
    await expectAccount(page, email);
    await page.getByLabel('Passkey name', { exact: true }).fill('Laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => passkeyNames(page)).toEqual(['Laptop']);
    await app.userManager.setTwoFactorEnabled(user, true); // host code: 2FA rests on the passkey
    await page.goto(url('/'));
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expectAccount(page, email);

    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    await expect.poll(() => page.locator('#bo-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/);
    const secret = (await page.locator('#bo-secret').textContent())!;
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, app.clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Two-factor authentication is now on');
    expect(await page.getByRole('button', { name: 'Set up two-factor authentication' }).isVisible()).toBe(false);
    app.clock.advance(30_000);

    await signOut(page);
    await passwordSignIn(page, email);
    const twoFactorUrl = await waitForTwoFactorPage(page);
    expect(twoFactorUrl.searchParams.get('providers')?.split(',')).toEqual(['totp', 'passkey', 'recovery']);
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, app.clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expectAccount(page, email);
    await signOut(page);
    await passwordSignIn(page, email);
    await waitForTwoFactorPage(page);
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await expectAccount(page, email);
  });

  it('on a host page, "Your session has ended" signs in again with a passkey: no reload, unsaved input kept, the waiting call retried; webauthn.js loaded only then; axe-core clean', async () => {
    const email = `dialog-${kind}@example.com`;
    const user = (await app.userManager.createUser({ email, name: 'Dina Dialog', password: TEST_PASSWORD })).value!;
    const { page } = await pageWithAuthenticator(false);
    await passwordSignIn(page, email);
    await expectAccount(page, email);
    await addPasskey(page, 'Dialog laptop');

    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    const dialog = await endSessionOnHostPage(page);
    const button = dialog.getByRole('button', { name: 'Sign in with a passkey' });
    expect(await button.isVisible()).toBe(true);
    // Focus order: email, password, Sign in, Sign in with a passkey.
    expect(await page.evaluate(() => document.activeElement?.getAttribute('type'))).toBe('password');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Sign in with a passkey');
    await expectAccessible(page); // the host page has no CSP: axe can be injected
    // The host page loads session.js only; @simplewebauthn/browser waits for the button.
    expect(requests.some((r) => r.includes('/assets/webauthn.js'))).toBe(false);
    expect(await page.evaluate(() => typeof (window as any).SimpleWebAuthnBrowser)).toBe('undefined');

    await page.keyboard.press('Enter');
    await expectCarriedOn(page, email);
    expect(events.named(BackOfficeEvents.PasskeyUsed, user.id).at(-1)).toMatchObject({ usage: 'signIn', userVerified: true });
    const loaded = requests.filter((r) => r.includes('/assets/webauthn.js'));
    expect(loaded).toHaveLength(1);
    expect(loaded[0]).toMatch(new RegExp(`^${app.origin}/backoffice/assets/webauthn\\.js\\?v=[0-9a-f]{12}$`));
  });

  it('"Your session has ended": a refused passkey is said in the dialog\'s alert, the dialog stays and the password still signs in', async () => {
    const email = `dialog-refused-${kind}@example.com`;
    const user = (await app.userManager.createUser({ email, name: 'Rita Refused', password: TEST_PASSWORD })).value!;
    const { page } = await pageWithAuthenticator(false);
    await passwordSignIn(page, email);
    await expectAccount(page, email);
    await addPasskey(page, 'Old phone');
    const dialog = await endSessionOnHostPage(page);
    // The passkey is removed meanwhile (from another device; that alone would end the session too): the authenticator
    // still offers it, the server refuses it.
    for (const passkey of await app.userManager.getPasskeys(user)) await app.userManager.removePasskey(user, passkey.id);
    const button = dialog.getByRole('button', { name: 'Sign in with a passkey' });
    await button.click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toBe('That passkey was not accepted. Try again, or sign in with your password.');
    expect(await button.isEnabled()).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Sign in with a passkey');
    expect(await page.getByRole('alertdialog').getByRole('heading').textContent()).toBe('Your session has ended');
    await dialog.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await dialog.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expectCarriedOn(page, email);
  });

  it('WCAG 2.4.3: a passkey sign-in started from the keyboard and refused (no passkey for this site) says why, and the focus is back on "Sign in with a passkey", not on <body>', async () => {
    const { page } = await pageWithAuthenticator(false);
    await page.goto(url('/'));
    const button = page.getByRole('button', { name: 'Sign in with a passkey' });
    await button.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#bo-alert').textContent(), { timeout: 20_000 }).not.toBe('');
    await expect.poll(() => button.isEnabled()).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Sign in with a passkey');
  });

  it('"Your session has ended" offers no passkey where the browser has no WebAuthn', async () => {
    const email = `dialog-nowebauthn-${kind}@example.com`;
    await app.userManager.createUser({ email, name: 'Nora Nowebauthn', password: TEST_PASSWORD });
    const context = await browser.newContext({ baseURL: app.origin });
    contexts.push(context);
    await context.addInitScript(() => {
      delete (window as any).PublicKeyCredential;
    });
    const page = await context.newPage();
    await passwordSignIn(page, email);
    await expectAccount(page, email);
    const dialog = await endSessionOnHostPage(page);
    expect(await dialog.getByRole('button', { name: 'Sign in', exact: true }).isVisible()).toBe(true);
    expect(await dialog.getByRole('button', { name: 'Sign in with a passkey' }).count()).toBe(0);
  });

  it('first paint of the sign-in page with passkeys (webauthn.js and passkeys.js included) is under 50 kB transferred', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const { total, requests } = await transferredBytes(context, url('/'));
    console.log(`sign-in page with passkeys (${kind}): ${total} bytes in ${requests.length} requests`);
    expect(requests.map((r) => new URL(r.url).pathname)).toEqual(expect.arrayContaining(['/backoffice/assets/webauthn.js', '/backoffice/assets/passkeys.js']));
    expect(total).toBeLessThan(50_000);
  });

  it('conditional UI: the sign-in page asks for passkeys in the username autofill; picking one signs in; @simplewebauthn/browser comes from this origin', async () => {
    const email = `autofill-${kind}@example.com`;
    await app.userManager.createUser({ email, name: 'Ada Autofill', password: TEST_PASSWORD });
    const { page } = await pageWithAuthenticator(true);
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(url('/'));
    expect(await page.getByLabel('Email', { exact: true }).getAttribute('autocomplete')).toBe('username webauthn');
    await passwordSignIn(page, email); // the autofill request is pending meanwhile: no passkey yet
    await expectAccount(page, email);
    expect(requests.filter((r) => r.endsWith('/auth/passkey/options')).length).toBeGreaterThan(0);
    expect(await page.evaluate(() => (window as any).SimpleWebAuthnBrowser.browserSupportsWebAuthnAutofill())).toBe(true);
    await page.getByLabel('Passkey name', { exact: true }).fill('Autofill');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => passkeyNames(page)).toEqual(['Autofill']);

    // Sign out: the sign-in page's autofill request is answered by the authenticator (the person picks the
    // passkey in the username field's suggestions): signed in with no click on a button and no password.
    requests.length = 0;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => requests.some((r) => r.endsWith('/auth/passkey/verify')), { timeout: 20_000 }).toBe(true);
    await expectAccount(page, email);
    expect(requests.some((r) => r.includes('/assets/webauthn.js'))).toBe(true);
    expect(requests.every((r) => r.startsWith(app.origin))).toBe(true);
    const asset = await page.request.get(url('/assets/webauthn.js'));
    expect(asset.status()).toBe(200);
    expect(asset.headers()['content-type']).toMatch(/javascript/);
    expect(await asset.text()).toContain('SimpleWebAuthnBrowser');
  });
});
