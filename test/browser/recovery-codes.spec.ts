import type { Page } from 'playwright-core';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { axeScan, chromiumPath, totpCode } from './support/browser.js';
import { useBrowserApp } from './support/use-browser-app.js';

const executable = chromiumPath();
const suite = executable ? describe : describe.skip;

suite('account page: recovery codes left, and new ones (keyboard, step-up, axe-core)', () => {
  const shared = useBrowserApp(executable);
  const url = (path: string) => `${shared.app.origin}/backoffice${path}`;

  /** What has the keyboard focus: the element's id, text or tag ('BODY' when focus was lost). */
  const focused = (page: Page) =>
    page.evaluate(() => {
      const active = document.activeElement;
      return !active || active === document.body ? 'BODY' : active.id || active.textContent?.trim() || active.tagName;
    });

  /** Focuses the button named `name` and presses Enter, as a keyboard user does. */
  async function press(page: Page, name: string): Promise<void> {
    await page.getByRole('button', { name, exact: true }).focus();
    await page.keyboard.press('Enter');
  }

  /** axe-core (WCAG 2.0-2.2 A/AA and best practices): no violation at all. */
  async function expectAxeClean(page: Page, what: string): Promise<void> {
    const summary = await axeScan(page);
    expect(summary.violations, `${what}: ${JSON.stringify(summary.violations)}`).toEqual([]);
    expect(summary.passes).toBeGreaterThan(0);
  }

  /** The codes shown in the recovery-code box. */
  const shownCodes = (page: Page) => page.locator('#bo-recovery-codes li').allTextContents();

  it('WCAG 2.2 2.1.1, 2.4.3; OWASP ASVS 4.0 2.6.x, 3.7.1: shows "N recovery codes left", warns at 3 or fewer, and a keyboard user gets new codes after the step-up dialog; the old ones stop working', async () => {
    const email = 'recovery.keyboard@example.com';
    expect((await shared.app.userManager.createUser({ email, name: 'Rae Recovery', password: TEST_PASSWORD })).succeeded).toBe(true);
    // bypassCSP only so axe.min.js can be injected (the other suites check the CSP).
    const context = await shared.newContext({ baseURL: shared.app.origin, bypassCSP: true, viewport: { width: 1024, height: 760 } });
    const page = await context.newPage();
    await page.goto(url('/'));
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL(url('/account'));

    // Off: no count, no button.
    await expect.poll(() => page.locator('#bo-2fa-state').textContent()).toContain('Two-factor authentication is off.');
    expect(await page.locator('#bo-recovery-state').isHidden()).toBe(true);

    // On (the enable flow shows 10 codes), then saved: "10 recovery codes left.", no warning.
    await press(page, 'Set up two-factor authentication');
    await expect.poll(() => page.locator('#bo-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/);
    const secret = (await page.locator('#bo-secret').textContent())!;
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, shared.app.clock.now()));
    await press(page, 'Verify');
    await expect.poll(() => shownCodes(page)).toHaveLength(10);
    const firstCodes = await shownCodes(page);
    await expect.poll(() => page.locator('#bo-recovery-left').textContent()).toBe('10 recovery codes left.');
    expect(await page.locator('#bo-recovery-low').isHidden()).toBe(true);
    await press(page, 'I have saved my codes');
    await expect.poll(() => focused(page)).toBe('bo-2fa-heading');

    // 7 used (signed in with elsewhere): after a reload, 3 left and the warning.
    const user = (await shared.app.userManager.findByEmail(email))!;
    for (const code of firstCodes.slice(0, 7)) expect(await shared.app.userManager.redeemRecoveryCode(user, code)).toBe(true);
    await page.reload();
    await expect.poll(() => page.locator('#bo-recovery-left').textContent()).toBe('3 recovery codes left.');
    expect(await page.locator('#bo-recovery-low').isVisible()).toBe(true);
    expect(await page.locator('#bo-recovery-low').textContent()).toContain('running out of recovery codes');
    const button = page.getByRole('button', { name: 'Generate new recovery codes', exact: true });
    expect(await button.getAttribute('aria-describedby')).toBe('bo-recovery-regenerate-hint');
    await expectAxeClean(page, 'account page with the low-codes warning');

    // The sign-in is older than 5 minutes: the button opens the step-up dialog; the password, then Enter.
    shared.app.clock.advance(6 * 60_000);
    await press(page, 'Generate new recovery codes');
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.getByRole('heading').textContent()).toBe('Confirm it’s you');
    await expectAxeClean(page, 'step-up dialog');
    await dialog.getByLabel('Password', { exact: true }).focus();
    await page.keyboard.type(TEST_PASSWORD);
    await page.keyboard.press('Enter');

    // The call was retried: 10 new codes shown as after enabling, the focus on their heading, the count back at 10.
    await expect.poll(() => shownCodes(page)).toHaveLength(10);
    expect(await page.getByRole('dialog').count()).toBe(0);
    const newCodes = await shownCodes(page);
    expect(newCodes.filter((c) => firstCodes.includes(c))).toEqual([]);
    await expect.poll(() => focused(page)).toBe('bo-recovery-heading');
    expect(await page.getByRole('status').textContent()).toBe('New recovery codes were generated. The old ones no longer work.');
    expect(await page.locator('#bo-recovery-left').textContent()).toBe('10 recovery codes left.');
    expect(await page.locator('#bo-recovery-low').isHidden()).toBe(true);
    await expectAxeClean(page, 'account page showing the new codes');
    await press(page, 'I have saved my codes');
    await expect.poll(() => focused(page)).toBe('bo-2fa-heading');
    expect(await shownCodes(page)).toEqual([]);

    // The old set is void, the new one works.
    const fresh = (await shared.app.userManager.findByEmail(email))!;
    expect(await shared.app.userManager.redeemRecoveryCode(fresh, firstCodes[8])).toBe(false);
    expect(await shared.app.userManager.redeemRecoveryCode(fresh, newCodes[0])).toBe(true);
    await page.reload();
    await expect.poll(() => page.locator('#bo-recovery-left').textContent()).toBe('9 recovery codes left.');
  });
});
