import type { Browser, Page } from 'playwright-core';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { axeScan, chromiumPath } from './support/browser.js';
import { useBrowserApp } from './support/use-browser-app.js';
import type { BackOfficeUser } from '../../src/backoffice-identity/index.js';

const executable = chromiumPath();
const suite = executable ? describe : describe.skip;

/**
 * The reset-password and accept-invite pages ask `POST /auth/reset-password/verify` / `/auth/invite/verify` on load:
 * a dead link (expired, used, tampered) is reported at once, before the person types a new password; a live link
 * shows its account, in the new password's description.
 */
suite('reset-password and accept-invite pages: the link is checked on load (real chromium, axe)', () => {
  const shared = useBrowserApp(executable);

  async function newPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
    const context = await shared.newContext({ baseURL: shared.app.origin, bypassCSP: true, ...options }); // axe-core is injected as a script
    return context.newPage();
  }

  const url = (path: string) => `${shared.app.origin}/backoffice${path}`;
  const linkTo = (path: string, user: BackOfficeUser, token: string) => `${url(path)}#${new URLSearchParams({ userId: user.id, token })}`;
  const alert = (page: Page) => page.getByRole('alert').first();
  const focused = (page: Page) => page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent || document.activeElement?.tagName);

  async function newUser(email: string): Promise<BackOfficeUser> {
    const created = await shared.app.userManager.createUser({ email, name: email.split('@')[0], password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    return (await shared.app.userManager.findByEmail(email))!;
  }

  async function resetLink(user: BackOfficeUser): Promise<string> {
    const token = await shared.app.userManager.generatePasswordResetToken(user);
    expect(token).toBeTruthy();
    return linkTo('/reset-password', user, token!);
  }

  async function inviteLink(email: string): Promise<{ user: BackOfficeUser; token: string; link: string }> {
    const invited = await shared.app.userManager.createInvitedUser({ email, name: email.split('@')[0], groups: ['editor'] });
    expect(invited.succeeded).toBe(true);
    const { user, token } = invited.value!;
    return { user, token, link: linkTo('/accept-invite', user, token) };
  }

  /** The page of a dead link, once its verify answer is in: error, no form, no account, and where the focus went. */
  async function expectRefusedOnLoad(page: Page, link: string, formId: string, invalid: string, focus: 'request-new-link' | 'alert'): Promise<void> {
    const verified = page.waitForResponse((response) => response.url().endsWith('/verify'));
    await page.goto(link);
    expect((await verified).status(), link).toBe(400);
    await expect.poll(() => alert(page).textContent(), link).toContain(invalid);
    expect(await page.locator(`#${formId}`).isHidden(), link).toBe(true);
    expect(await page.locator('#bo-new-password').inputValue(), link).toBe(''); // nothing was typed
    expect(await page.locator('#bo-link-account').isHidden(), link).toBe(true);
    if (focus === 'request-new-link') {
      const again = page.getByRole('link', { name: 'Ask for a new link' });
      expect(await again.isVisible(), link).toBe(true);
      await expect.poll(() => again.evaluate((a) => a === document.activeElement), link).toBe(true);
    } else {
      await expect.poll(() => focused(page), link).toBe('bo-alert');
    }
    expect((await axeScan(page)).violations, link).toEqual([]);
  }

  it('a live reset link and a live invite link keep the form, show the account in the new password\'s description, and leave the focus alone; axe clean', async () => {
    const resetUser = await newUser('live-reset@example.com');
    const invite = await inviteLink('live-invitee@example.com');
    for (const { link, formId, account } of [
      { link: await resetLink(resetUser), formId: 'bo-reset-form', account: 'live-reset@example.com' },
      { link: invite.link, formId: 'bo-invite-form', account: 'live-invitee@example.com' },
    ]) {
      const page = await newPage();
      await page.goto(link);
      await expect.poll(() => page.locator('#bo-link-account').isVisible(), link).toBe(true);
      expect(await page.locator('#bo-link-account').textContent(), link).toBe(`Account: ${account}`);
      expect(await page.locator(`#${formId}`).isVisible(), link).toBe(true);
      expect(await alert(page).textContent(), link).toBe('');
      // Read with the field it is about (not announced over the page as it loads, never given the focus).
      const describedBy = (await page.locator('#bo-new-password').getAttribute('aria-describedby'))!.split(/\s+/);
      expect(describedBy, link).toEqual(['bo-link-account', 'bo-new-password-hint']);
      expect(await page.locator('#bo-link-account').getAttribute('role'), link).toBeNull();
      expect(await page.evaluate(() => document.activeElement === document.body), link).toBe(true);
      expect((await axeScan(page)).violations, link).toEqual([]);
    }
  });

  it('a used reset link and an expired one say so on load, before any password is typed: form hidden, "Ask for a new link" shown and focused; axe clean', async () => {
    const user = await newUser('used-reset@example.com');
    const used = await resetLink(user);
    const token = new URLSearchParams(new URL(used).hash.slice(1)).get('token')!;
    expect((await shared.app.userManager.resetPassword(user, token, 'a brand new passphrase for this')).succeeded).toBe(true);
    await expectRefusedOnLoad(await newPage(), used, 'bo-reset-form', 'This link is invalid, has expired or has already been used', 'request-new-link');

    const expired = await resetLink(await newUser('expired-reset@example.com'));
    shared.app.clock.advance(2 * 60 * 60_000); // past the 1 h default lifespan
    await expectRefusedOnLoad(await newPage(), expired, 'bo-reset-form', 'This link is invalid, has expired or has already been used', 'request-new-link');
  });

  it('a used invite link says so on load: form and providers hidden, the focus on the error (the invite page has no self-service new link); axe clean', async () => {
    const { user, token, link } = await inviteLink('used-invitee@example.com');
    expect((await shared.app.userManager.acceptInvite(user, token, 'the invitee chose this passphrase')).succeeded).toBe(true);
    await expectRefusedOnLoad(await newPage(), link, 'bo-invite-form', 'This invitation link is invalid', 'alert');
  });

  it('a mangled link (validation_failed on userId/token) is refused on load as well', async () => {
    const page = await newPage();
    await expectRefusedOnLoad(page, url(`/reset-password#userId=${'1'.repeat(70)}&token=${'t'.repeat(600)}`), 'bo-reset-form', 'This link is invalid', 'request-new-link');
  });

  it('any other verify failure (network, 503, 429) leaves the form as it was: the submit says what is wrong', async () => {
    const link = await resetLink(await newUser('flaky-verify@example.com'));
    for (const answer of ['abort', 503, 429] as const) {
      const page = await newPage();
      let answered!: () => void;
      const done = new Promise<void>((resolve) => (answered = resolve));
      await page.route('**/auth/reset-password/verify', async (route) => {
        if (answer === 'abort') await route.abort();
        else await route.fulfill({ status: answer, contentType: 'application/json', body: JSON.stringify({ statusCode: answer, code: answer === 429 ? 'rate_limited' : 'unavailable', message: 'x' }) });
        answered();
      });
      await page.goto(link);
      await done;
      await page.waitForTimeout(200);
      expect(await page.locator('#bo-reset-form').isVisible(), String(answer)).toBe(true);
      expect(await alert(page).textContent(), String(answer)).toBe('');
      expect(await page.locator('#bo-request-new-link').isHidden(), String(answer)).toBe(true);
      expect(await page.locator('#bo-link-account').isHidden(), String(answer)).toBe(true);
    }
  });

  it('a verify answer that comes after a submit used the token is ignored: no "link invalid" flash, the form stays, the focus is not moved while the page leaves', async () => {
    const user = await newUser('late-verify@example.com');
    const link = await resetLink(user);
    const page = await newPage();
    // page.route only orders events: the verify request reaches the real server after the submit, the next page's
    // navigation is held until the verify answer is in (the leaving page is still there when it comes).
    let releaseVerify!: () => void;
    const verifyHeld = new Promise<void>((resolve) => (releaseVerify = resolve));
    await page.route('**/auth/reset-password/verify', async (route) => {
      await verifyHeld;
      await route.continue();
    });
    let releaseNext!: () => void;
    const nextHeld = new Promise<void>((resolve) => (releaseNext = resolve));
    await page.route((target) => target.searchParams.get('notice') === 'password-reset', async (route) => {
      await nextHeld;
      await route.continue();
    });
    // What the reset page does, reported as it happens (the leaving page cannot be read: its next navigation is pending).
    const seen: string[] = [];
    await page.exposeFunction('reportResetPage', (what: string) => void seen.push(what));
    await page.addInitScript(() => {
      if (!location.pathname.endsWith('/reset-password')) return;
      const report = (what: string) => (window as unknown as { reportResetPage(what: string): void }).reportResetPage(what);
      document.addEventListener('DOMContentLoaded', () => {
        const alertBox = document.getElementById('bo-alert')!;
        new MutationObserver(() => alertBox.textContent && report(`alert: ${alertBox.textContent}`)).observe(alertBox, { childList: true, subtree: true, characterData: true });
        new MutationObserver(() => report('form hidden')).observe(document.getElementById('bo-reset-form')!, { attributes: true, attributeFilter: ['hidden'] });
        document.addEventListener('focusin', (event) => report(`focus: ${(event.target as HTMLElement).id || (event.target as HTMLElement).textContent}`));
      });
    });
    await page.goto(link);
    await page.locator('#bo-new-password').fill('a brand new passphrase after the late verify');
    const submitted = page.waitForResponse((response) => response.url().endsWith('/auth/reset-password') && response.request().method() === 'POST');
    await page.locator('#bo-reset-form button[type=submit]').click();
    expect((await submitted).status()).toBe(200);
    const verified = page.waitForResponse((response) => response.url().endsWith('/auth/reset-password/verify'));
    seen.length = 0;
    releaseVerify();
    expect((await verified).status()).toBe(400); // the token is used now: the server refuses the link
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(seen).toEqual([]);
    releaseNext();
    await page.waitForURL((target) => target.searchParams.get('notice') === 'password-reset');
  });

  it('a dead email-change link behaves as the reset page\'s: the error shown, the form hidden, the focus on the error at once; axe clean', async () => {
    const user = await newUser('dead-email-change@example.com');
    const page = await newPage();
    await page.goto(linkTo('/confirm-email', user, 'not-a-live-token'));
    // Where the submit came from keeps the focus (as a password manager's or a script's submit does)
    await page.getByRole('link', { name: 'Back to sign in' }).focus();
    const confirmed = page.waitForResponse((response) => response.url().endsWith('/auth/me/email/confirm'));
    await page.locator('#bo-confirm-email-form').evaluate((form: HTMLFormElement) => form.requestSubmit());
    expect((await confirmed).status()).toBe(400);
    await expect.poll(() => alert(page).textContent()).toContain('This link is invalid');
    expect(await page.locator('#bo-confirm-email-form').isHidden()).toBe(true);
    await expect.poll(() => focused(page)).toBe('bo-alert');
    expect((await axeScan(page)).violations).toEqual([]);
  });
});
