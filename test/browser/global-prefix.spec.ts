import type { Browser, BrowserContext } from 'playwright-core';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { chromiumPath, launchBrowser } from './support/browser.js';
import { startBrowserApp, type BrowserApp } from './support/browser-app.js';

const executable = chromiumPath();
const suite = executable ? describe : describe.skip;

/**
 * A host that calls `app.setGlobalPrefix('api', { exclude: ['backoffice{/*path}'] })` (the fix the start-up
 * warning names): the sign-in page loads every asset, signs in through `session.js`'s base and reaches the account
 * page, its JSON answers with `Cache-Control: no-store`, with no request of the page answered 404 (or another error but the signed-out probe's 401).
 */
suite('sign-in screens under a host global prefix that excludes the module', () => {
  let app: BrowserApp;
  let browser: Browser;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    app = await startBrowserApp({}, undefined, { beforeListen: (nest) => void nest.setGlobalPrefix('api', { exclude: ['backoffice{/*path}'] }) });
    browser = await launchBrowser(executable!);
  });
  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close();
    await app?.shutdown();
  });

  it('signs in from /backoffice/ and lands on the account page; the JSON answers keep no-store; no request answers 404 or another error but the signed-out 401', async () => {
    expect((await app.userManager.createUser({ email: 'prefix@example.com', name: 'Pia Prefix', password: TEST_PASSWORD })).succeeded).toBe(true);
    context = await browser.newContext({ baseURL: app.origin });
    const page = await context.newPage();
    const failed: string[] = [];
    const seen: string[] = [];
    const noStore: Array<Promise<string>> = [];
    page.on('response', (response) => {
      seen.push(response.url());
      // The module's JSON answers keep their security headers (the session cookie and the user are in them).
      if (new URL(response.url()).pathname.startsWith('/backoffice/auth/')) noStore.push(response.allHeaders().then((h) => `${h['cache-control']} ${response.url()}`));
      // 401 is the sign-in page asking /auth/me whether someone is signed in; a wrong path would be a 404.
      if (response.status() >= 400 && response.status() !== 401) failed.push(`${response.status()} ${response.url()}`);
    });
    await page.goto(`${app.origin}/backoffice/`);
    await page.fill('#bo-username', 'prefix@example.com');
    await page.fill('#bo-password', TEST_PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${app.origin}/backoffice/account`);
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain('prefix@example.com');
    expect(failed).toEqual([]);
    expect(seen.some((url) => url.includes('/backoffice/assets/'))).toBe(true);
    expect(seen.some((url) => url.includes('/backoffice/auth/login'))).toBe(true);
    const cacheControls = await Promise.all(noStore);
    expect(cacheControls.length).toBeGreaterThan(0);
    for (const line of cacheControls) expect(line).toMatch(/^no-store /);
  });
});
