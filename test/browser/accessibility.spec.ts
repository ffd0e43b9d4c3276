import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { axeScan, chromiumPath, latestMailTo, launchBrowser, totpCode, type AxeSummary } from './support/browser.js';
import { startBrowserApp, type BrowserApp } from './support/browser-app.js';

const executable = chromiumPath();
const suite = executable ? describe : describe.skip;

/** `UPDATE_SCREENSHOTS=1` writes the screenshots (and the axe summary) to docs/screenshots/ for the README. */
const UPDATE = process.env.UPDATE_SCREENSHOTS === '1';
const DOCS_DIR = join(__dirname, '..', '..', 'docs', 'screenshots');

suite('sign-in screens: axe-core scan, 200% zoom and screenshots of every page and dialog', () => {
  let app: BrowserApp;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  let outDir: string;
  const results: Record<string, { serious: string[]; moderate: string[]; minor: string[]; passes: number }> = {};

  beforeAll(async () => {
    app = await startBrowserApp();
    browser = await launchBrowser(executable!);
    outDir = UPDATE ? DOCS_DIR : await mkdtemp(join(tmpdir(), 'bo-screenshots-'));
    await mkdir(outDir, { recursive: true });
    for (const [email, name] of [['ana@example.com', 'Ana Admin'], ['tom@example.com', 'Tom Twofactor']]) {
      expect((await app.userManager.createUser({ email, name, password: TEST_PASSWORD, groups: ['admin'] })).succeeded).toBe(true);
    }
  });
  afterAll(async () => {
    if (UPDATE) await writeFile(join(DOCS_DIR, 'axe-results.json'), `${JSON.stringify(results, null, 2)}\n`);
    console.log(`axe results per page: ${JSON.stringify(results)}`);
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await app?.shutdown();
  });

  const url = (path: string) => `${app.origin}/backoffice${path}`;

  /** A fresh browser profile. bypassCSP only so axe.min.js can be injected; the journeys and HTTP suites check the CSP. */
  async function freshPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
    const context = await browser.newContext({ baseURL: app.origin, bypassCSP: true, viewport: { width: 1024, height: 760 }, ...options });
    contexts.push(context);
    return context.newPage();
  }

  /** axe scan (no serious or critical violation), a screenshot, and the 200% zoom reflow check. */
  async function check(page: Page, name: string): Promise<AxeSummary> {
    const summary = await axeScan(page);
    const serious = summary.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    results[name] = {
      serious: serious.map((v) => `${v.id} (${v.nodes})`),
      moderate: summary.violations.filter((v) => v.impact === 'moderate').map((v) => `${v.id} (${v.nodes})`),
      minor: summary.violations.filter((v) => v.impact === 'minor').map((v) => `${v.id} (${v.nodes})`),
      passes: summary.passes,
    };
    expect(serious, `${name}: ${JSON.stringify(serious)}`).toEqual([]);
    await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: !name.startsWith('dialog-') });
    // 200% zoom of a 1280 px wide window = a 640 px CSS viewport: everything reflows, nothing scrolls sideways.
    const viewport = page.viewportSize()!;
    await page.setViewportSize({ width: 640, height: 450 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, `${name} at 200% zoom`).toBeLessThanOrEqual(0);
    await page.setViewportSize(viewport);
    return summary;
  }

  async function signIn(page: Page, email: string): Promise<void> {
    await page.goto(url('/'));
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  it('the scanner itself finds violations (so an empty result means something)', async () => {
    const page = await freshPage();
    await page.setContent('<html><body><input type="text"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></body></html>');
    const summary = await axeScan(page);
    expect(summary.violations.map((v) => v.id)).toEqual(expect.arrayContaining(['label', 'image-alt']));
  });

  it('sign-in page, and its error state', async () => {
    const page = await freshPage();
    await page.goto(url('/'));
    await page.waitForLoadState('networkidle');
    await check(page, 'sign-in');
    await page.getByLabel('Email', { exact: true }).fill('ana@example.com');
    await page.getByLabel('Password', { exact: true }).fill('a wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('incorrect');
    await check(page, 'sign-in-error');
  });

  it('forgot-password, reset-password and accept-invite pages', async () => {
    const page = await freshPage();
    await page.goto(url('/forgot-password'));
    await check(page, 'forgot-password');
    await page.getByLabel('Email', { exact: true }).fill('ana@example.com');
    await page.getByRole('button', { name: 'Send reset link' }).click();
    const mail = await latestMailTo(app.mailDir, 'ana@example.com');
    await page.goto(mail.link);
    // After the page's link check (its verify call): the account line is part of the page as people see it.
    await expect.poll(() => page.locator('#bo-link-account').isVisible()).toBe(true);
    await check(page, 'reset-password');
    // A dead link (here a tampered token) is refused as the page loads: the error and "Ask for a new link", no form.
    const dead = await freshPage();
    await dead.goto(mail.link.replace(/token=[^&]+/, 'token=made-up'));
    await expect.poll(() => dead.locator('#bo-request-new-link').isVisible()).toBe(true);
    await check(dead, 'reset-password-link-invalid');

    await signIn(page, 'ana@example.com');
    await page.waitForURL(url('/account'));
    const invited = await page.evaluate(() =>
      (window as any).BackOfficeSession.request('POST', '/users/invite', { email: 'newbie@example.com', name: 'Nia Newbie', groups: ['editor'] }),
    );
    expect(invited.status).toBe(201);
    const invite = await latestMailTo(app.mailDir, 'newbie@example.com');
    const invitePage = await freshPage();
    await invitePage.goto(invite.link);
    await expect.poll(() => invitePage.locator('#bo-link-account').isVisible()).toBe(true);
    await check(invitePage, 'accept-invite');
  });

  it('account page: overview, two-factor setup with QR code, recovery codes; and the second-factor page', async () => {
    const otherPage = await freshPage({ userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15' });
    await signIn(otherPage, 'tom@example.com');
    await otherPage.waitForURL(url('/account'));

    const page = await freshPage();
    await signIn(page, 'tom@example.com');
    await page.waitForURL(url('/account'));
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(2);
    await check(page, 'account');
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    await expect.poll(() => page.locator('#bo-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/);
    await check(page, 'account-two-factor-setup');
    const secret = (await page.locator('#bo-secret').textContent())!;
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, app.clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => page.locator('#bo-recovery-codes li').count()).toBe(10);
    await check(page, 'account-recovery-codes');

    const twoFactorPage = await freshPage();
    await signIn(twoFactorPage, 'tom@example.com');
    await twoFactorPage.waitForURL(url('/two-factor'));
    await check(twoFactorPage, 'two-factor');
    await twoFactorPage.getByLabel('Code', { exact: true }).fill('123456');
    await twoFactorPage.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => twoFactorPage.getByRole('alert').first().textContent()).toContain('not valid');
    await check(twoFactorPage, 'two-factor-error');
  });

  it('session dialogs on the account page: idle warning, re-authentication, session ended', async () => {
    const page = await freshPage();
    await page.clock.install();
    await signIn(page, 'ana@example.com');
    await page.waitForURL(url('/account'));
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBeGreaterThan(0);

    app.clock.advance(18.5 * 60_000);
    await page.clock.fastForward(18.5 * 60_000);
    await expect.poll(() => page.getByRole('alertdialog').count()).toBe(1);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Stay signed in');
    await check(page, 'dialog-idle-warning');
    await page.getByRole('button', { name: 'Stay signed in' }).click();
    await expect.poll(() => page.getByRole('alertdialog').count()).toBe(0);

    const prompt = page.evaluate(() => (window as any).BackOfficeSession.reauthenticate());
    await expect.poll(() => page.getByRole('dialog').count()).toBe(1);
    await check(page, 'dialog-reauthenticate');
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect(await prompt).toBe(false);

    app.clock.advance(21 * 60_000);
    await page.clock.fastForward(21 * 60_000);
    await expect.poll(() => page.getByRole('alertdialog').getByRole('heading').textContent()).toBe('Your session has ended');
    await check(page, 'dialog-session-ended');
  });
});
