import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { HttpClient } from '../support/http-client.js';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { axeScan, chromiumPath, latestMailTo, totpCode, transferredBytes } from './support/browser.js';
import { SignOutRedirectListener } from './support/browser-app.js';
import { useBrowserApp } from './support/use-browser-app.js';
import { BackOfficeGroupService, BackOfficeInviteService } from '../../src/backoffice-identity/index.js';

const executable = chromiumPath();
const suite = executable ? describe : describe.skip;

const ADMIN = { email: 'admin@example.com', password: 'admin passphrase for the browser' };
const COLLEAGUE = { email: 'colleague@example.com', password: 'a colleague chose this passphrase' };

suite('sign-in screens in a real browser (Debian chromium, playwright-core)', () => {
  const shared = useBrowserApp(executable, async (app) => {
    const admin = await app.userManager.createUser({ email: ADMIN.email, name: 'Ada Admin', password: ADMIN.password, groups: ['admin'] });
    expect(admin.succeeded).toBe(true);
  });

  async function newPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
    const context = await shared.newContext({ baseURL: shared.app.origin, ...options });
    return context.newPage();
  }

  const url = (path: string) => `${shared.app.origin}/backoffice${path}`;
  const alert = (page: Page) => page.getByRole('alert').first();

  async function signIn(page: Page, email: string, password: string): Promise<void> {
    await page.goto(url('/'));
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  async function expectSignedInAccount(page: Page, email: string): Promise<void> {
    await page.waitForURL(url('/account'));
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain(email);
  }

  it('first paint of the sign-in page is under 50 kB transferred', async () => {
    const context = await shared.newContext();
    const { total, requests } = await transferredBytes(context, url('/'));
    console.log(`sign-in page: ${total} bytes transferred in ${requests.length} requests: ${requests.map((r) => `${r.url.replace(shared.app.origin, '')} ${r.bytes}`).join(', ')}`);
    expect(requests.length).toBeGreaterThanOrEqual(6);
    expect(total).toBeLessThan(50_000);
  });

  it('admin signs in and invites a colleague; the colleague opens the emailed link, sets a password and lands signed in', async () => {
    const adminPage = await newPage();
    await signIn(adminPage, ADMIN.email, ADMIN.password);
    await expectSignedInAccount(adminPage, ADMIN.email);
    // The admin invites through the API from the signed-in page (session cookie + XSRF header).
    const invited = await adminPage.evaluate(() =>
      (window as any).BackOfficeSession.request('POST', '/users/invite', { email: 'colleague@example.com', name: 'Colin Colleague', groups: ['editor'] }),
    );
    expect(invited.status).toBe(201);

    const mail = await latestMailTo(shared.app.mailDir, COLLEAGUE.email);
    expect(mail.link.startsWith(`${shared.app.origin}/backoffice/accept-invite#userId=`)).toBe(true);
    const page = await newPage();
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(mail.link);
    await expect.poll(() => page.evaluate(() => location.hash)).toBe(''); // the token left the address bar
    await page.getByLabel('New password', { exact: true }).fill(COLLEAGUE.password);
    await page.getByRole('button', { name: 'Set password' }).click();
    await expectSignedInAccount(page, COLLEAGUE.email);
    const token = new URL(mail.link).hash.match(/token=([^&]+)/)![1];
    expect(requested.some((r) => r.includes(token) || r.includes(decodeURIComponent(token)))).toBe(false); // never in a URL sent
  });

  let recoveryCodes: string[] = [];
  let secret = '';

  it('the colleague sets up two-factor on the account page (QR code, code, recovery codes copied and downloaded)', async () => {
    const page = await newPage({ acceptDownloads: true, permissions: ['clipboard-read', 'clipboard-write'] });
    await signIn(page, COLLEAGUE.email, COLLEAGUE.password);
    await expectSignedInAccount(page, COLLEAGUE.email);
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    await expect.poll(() => page.locator('#bo-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/);
    secret = (await page.locator('#bo-secret').textContent())!;
    const qr = page.getByRole('img', { name: 'QR code for your authenticator app' });
    expect(await qr.getAttribute('src')).toMatch(/^data:image\/png;base64,/);
    expect(await qr.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(100);

    await page.getByLabel('Code', { exact: true }).fill('000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => alert(page).textContent()).toContain('That code is not valid');

    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, shared.app.clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    const codes = page.locator('#bo-recovery-codes li');
    await expect.poll(() => codes.count()).toBe(10);
    recoveryCodes = await codes.allTextContents();
    await page.getByRole('button', { name: 'Copy codes' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(`${recoveryCodes.join('\n')}\n`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download codes' }).click()]);
    expect(download.suggestedFilename()).toBe('recovery-codes.txt');
    expect(await readFile((await download.path())!, 'utf8')).toBe(`${recoveryCodes.join('\n')}\n`);
    await page.getByRole('button', { name: 'I have saved my codes' }).click();
    expect(await page.locator('#bo-recovery-codes li').count()).toBe(0); // shown once
    await expect.poll(() => page.locator('#bo-2fa-state').textContent()).toBe('Two-factor authentication is on.');

    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(url(''));
  });

  it('the colleague signs in with a code from the authenticator, then with a recovery code', async () => {
    const page = await newPage();
    await signIn(page, COLLEAGUE.email, COLLEAGUE.password);
    await page.waitForURL(url('/two-factor'));
    shared.app.clock.advance(30_000); // the enrolment code's time step cannot be used twice
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, shared.app.clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expectSignedInAccount(page, COLLEAGUE.email);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(url(''));

    await signIn(page, COLLEAGUE.email, COLLEAGUE.password);
    await page.waitForURL(url('/two-factor'));
    await page.getByLabel('Recovery code', { exact: true }).check();
    await page.getByLabel('Code', { exact: true }).fill('not-a-real-code');
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => alert(page).textContent()).toContain('That code is not valid');
    await page.getByLabel('Code', { exact: true }).fill(recoveryCodes[0]);
    await page.getByRole('button', { name: 'Verify' }).click();
    await expectSignedInAccount(page, COLLEAGUE.email);
  });

  it('re-signs in a two-factor user in the session dialog (password, then code) without leaving the host page', async () => {
    const page = await newPage();
    await signIn(page, COLLEAGUE.email, COLLEAGUE.password);
    await page.waitForURL(url('/two-factor'));
    shared.app.clock.advance(30_000);
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, shared.app.clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expectSignedInAccount(page, COLLEAGUE.email);
    await page.goto(`${shared.app.origin}/host/editor`);
    await expect.poll(() => page.evaluate(() => Boolean((window as any).BackOfficeSession))).toBe(true);
    await page.getByLabel('Document').fill('draft that must survive');
    // The session ends elsewhere (e.g. signed out in another tab); the next check notices.
    const loggedOut = await page.evaluate(() => (window as any).BackOfficeSession.request('POST', '/auth/logout', undefined, { retry: false }));
    expect(loggedOut.status).toBe(200);
    await page.evaluate(() => (window as any).BackOfficeSession.check());
    const dialog = page.getByRole('alertdialog');
    await dialog.getByLabel('Password', { exact: true }).fill(COLLEAGUE.password);
    await dialog.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alertdialog').getByRole('heading').textContent()).toBe('Two-factor authentication');
    shared.app.clock.advance(30_000);
    await page.getByRole('alertdialog').getByLabel('Code', { exact: true }).fill(totpCode(secret, shared.app.clock.now()));
    await page.getByRole('alertdialog').getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => page.getByRole('alertdialog').count()).toBe(0);
    expect(await page.getByLabel('Document').inputValue()).toBe('draft that must survive');
    expect(await page.evaluate(() => fetch('/backoffice/auth/me').then((r) => r.status))).toBe(200);
  });

  it('says so when the second step took too long, and when forgot-password is rate limited (429)', async () => {
    const page = await newPage();
    await signIn(page, COLLEAGUE.email, COLLEAGUE.password);
    await page.waitForURL(url('/two-factor'));
    shared.app.clock.advance(6 * 60_000); // the pending sign-in lasts 5 minutes
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, shared.app.clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => alert(page).textContent()).toBe('Your sign-in took too long. Sign in with your password again.');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Back to sign in');

    await page.goto(url('/forgot-password'));
    const answers: string[] = [];
    for (let attempt = 1; attempt <= 6; attempt++) {
      await page.getByLabel('Email', { exact: true }).fill('someone.else@example.com');
      await page.getByRole('button', { name: 'Send reset link' }).click();
      await expect.poll(() => page.evaluate(() => (document.getElementById('bo-alert')!.textContent || '') + (document.getElementById('bo-status')!.textContent || ''))).not.toBe('');
      answers.push((await page.locator('#bo-alert').textContent()) || (await page.locator('#bo-status').textContent())!);
      await page.evaluate(() => ['bo-alert', 'bo-status'].forEach((id) => (document.getElementById(id)!.textContent = '')));
    }
    expect(answers.slice(0, 5).every((a) => a.includes('we have sent it a link'))).toBe(true);
    expect(answers[5]).toMatch(/^Too many attempts\. Wait \d+\s(min|s) and try again\.$/);
  });

  it('forgot password from the sign-in page, emailed link, new password, sign in; the used link then shows a clear error', async () => {
    const created = await shared.app.userManager.createUser({ email: 'forgetful@example.com', name: 'Fay Forgetful', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await page.goto(url('/'));
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.waitForURL(url('/forgot-password'));
    await page.getByLabel('Email', { exact: true }).fill('forgetful@example.com');
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('we have sent it a link');

    const mail = await latestMailTo(shared.app.mailDir, 'forgetful@example.com');
    await page.goto(mail.link);
    expect(await page.evaluate(() => location.href)).toBe(url('/reset-password'));
    await page.getByLabel('New password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Set password' }).click();
    await expect.poll(() => alert(page).textContent()).toContain('Choose a different password');
    expect(await page.getByLabel('New password', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('New password', { exact: true }).fill('my brand new reset passphrase');
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.waitForURL(url('?notice=password-reset'));
    expect(await page.getByRole('status').textContent()).toContain('Your password has been changed');
    await page.getByLabel('Email', { exact: true }).fill('forgetful@example.com');
    await page.getByLabel('Password', { exact: true }).fill('my brand new reset passphrase');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectSignedInAccount(page, 'forgetful@example.com');

    // The used link says so as the page loads (its verify call), before a new password is typed.
    const again = await newPage();
    await again.goto(mail.link);
    await expect.poll(() => alert(again).textContent()).toContain('invalid, has expired or has already been used');
    expect(await again.getByRole('link', { name: 'Ask for a new link' }).isVisible()).toBe(true);
    expect(await again.locator('#bo-reset-form').isHidden()).toBe(true);

    const incomplete = await newPage();
    await incomplete.goto(url('/reset-password'));
    await expect.poll(() => alert(incomplete).textContent()).toContain('This link is incomplete');
  });

  it('the reset and invite pages carry the link\'s account for password managers (hidden autocomplete="username" beside new-password, shown as text), work by keyboard and pass axe; a dead link reveals no account', async () => {
    const resetTo = 'keyboard-resetter@example.com';
    expect((await shared.app.userManager.createUser({ email: resetTo, name: 'Kay Keyboard', password: TEST_PASSWORD })).succeeded).toBe(true);
    const inviteTo = 'keyboard-invitee@example.com';
    expect((await shared.app.app.get(BackOfficeInviteService).invite({ email: inviteTo, name: 'Ivy Invitee', groups: ['editor'] }, null)).succeeded).toBe(true);
    const inviteLink = (await latestMailTo(shared.app.mailDir, inviteTo)).link;
    const forgot = await newPage();
    await forgot.goto(url('/forgot-password'));
    await forgot.getByLabel('Email', { exact: true }).fill(resetTo);
    await forgot.getByRole('button', { name: 'Send reset link' }).click();
    const resetLink = (await latestMailTo(shared.app.mailDir, resetTo)).link;

    for (const { link, account, landing } of [
      { link: resetLink, account: resetTo, landing: url('?notice=password-reset') },
      { link: inviteLink, account: inviteTo, landing: url('/account') },
    ]) {
      const page = await newPage({ bypassCSP: true }); // axe-core is injected as a script
      await page.goto(link);
      const username = page.locator('form input[autocomplete="username"]');
      await expect.poll(() => username.inputValue(), link).toBe(account);
      expect(await username.count()).toBe(1);
      // In the same form as the new password, which password managers pair it with.
      expect(await page.locator('form:has(input[autocomplete="username"]) input[autocomplete="new-password"]').count()).toBe(1);
      // Hidden from sight, from assistive technology and from the tab order; the person reads the account as text.
      expect(await username.isHidden()).toBe(true);
      expect(await username.getAttribute('aria-hidden')).toBe('true');
      expect(await username.getAttribute('tabindex')).toBe('-1');
      expect(await page.getByText(`Account: ${account}`, { exact: true }).isVisible()).toBe(true);
      expect((await axeScan(page)).violations).toEqual([]);

      // Keyboard only: Tab from the top reaches the new password (never the hidden field), Enter submits.
      const reached: string[] = [];
      for (let i = 0; i < 8 && !reached.includes('bo-new-password'); i++) {
        await page.keyboard.press('Tab');
        reached.push(await page.evaluate(() => document.activeElement?.id ?? ''));
      }
      expect(reached).toContain('bo-new-password');
      expect(reached).not.toContain('bo-link-username');
      await page.keyboard.type('a keyboard-only new passphrase');
      await page.keyboard.press('Enter');
      await page.waitForURL(landing);
    }
    expect((await new HttpClient(shared.app.url).login(resetTo, 'a keyboard-only new passphrase')).status).toBe(200);

    // A used link and a made-up token: no account anywhere in the page, and the page says at once the link is dead.
    for (const link of [resetLink, inviteLink.replace(/token=[^&]+/, 'token=made-up')]) {
      const page = await newPage();
      const verified = page.waitForResponse((response) => response.url().endsWith('/verify'));
      await page.goto(link);
      expect((await verified).status()).toBe(400);
      await expect.poll(() => alert(page).textContent(), link).toContain('invalid');
      expect(await page.locator('form input[autocomplete="username"]').inputValue()).toBe('');
      expect(await page.locator('#bo-link-account').isHidden()).toBe(true);
      expect(await page.content()).not.toContain('keyboard-');
    }
  });

  it('confirms an email change from the emailed link: the page posts the fragment, lands on sign-in with a notice; the new address signs in', async () => {
    const created = await shared.app.userManager.createUser({ email: 'mover@example.com', name: 'Mo Mover', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await signIn(page, 'mover@example.com', TEST_PASSWORD);
    await expectSignedInAccount(page, 'mover@example.com');
    const requested = await page.evaluate(async () => (await (window as any).BackOfficeSession.request('POST', '/auth/me/email', { newEmail: 'moved@example.com' })).status);
    expect(requested).toBe(202);

    const mail = await latestMailTo(shared.app.mailDir, 'moved@example.com');
    expect(mail.link.startsWith(url('/confirm-email#'))).toBe(true);
    const confirm = await newPage({ bypassCSP: true }); // axe-core is injected as a script
    await confirm.goto(mail.link);
    // The token leaves the address bar (and history) before anything else happens.
    expect(await confirm.evaluate(() => location.href)).toBe(url('/confirm-email'));
    expect(await confirm.getByRole('heading', { name: 'Confirm your new email address' }).isVisible()).toBe(true);
    expect((await axeScan(confirm)).violations).toEqual([]);
    await confirm.getByRole('button', { name: 'Confirm email address' }).click();
    await confirm.waitForURL(url('?notice=email-changed'));
    expect(await confirm.getByRole('status').textContent()).toContain('Your email address has been changed');
    await confirm.getByLabel('Email', { exact: true }).fill('moved@example.com');
    await confirm.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await confirm.getByRole('button', { name: 'Sign in' }).click();
    await expectSignedInAccount(confirm, 'moved@example.com');

    // The used link then says so, and the link without its fragment is incomplete.
    const again = await newPage();
    await again.goto(mail.link);
    await again.getByRole('button', { name: 'Confirm email address' }).click();
    await expect.poll(() => alert(again).textContent()).toContain('invalid, has expired or has already been used');
    const incomplete = await newPage();
    await incomplete.goto(url('/confirm-email'));
    await expect.poll(() => alert(incomplete).textContent()).toContain('This link is incomplete');
  });

  it('revokes another session from the account page; that browser is then asked to sign in again', async () => {
    const created = await shared.app.userManager.createUser({ email: 'twodevices@example.com', name: 'Tia Twodevices', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const laptop = await newPage({ userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36' });
    const phone = await newPage({ userAgent: 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36' });
    await signIn(phone, 'twodevices@example.com', TEST_PASSWORD);
    await expectSignedInAccount(phone, 'twodevices@example.com');
    await signIn(laptop, 'twodevices@example.com', TEST_PASSWORD);
    await expectSignedInAccount(laptop, 'twodevices@example.com');

    const rows = laptop.locator('#bo-sessions li');
    await expect.poll(() => rows.count()).toBe(2);
    const phoneRow = rows.filter({ hasText: 'Chrome on Android' });
    expect(await rows.filter({ has: laptop.locator('.bo-badge') }).textContent()).toContain('Chrome on Linux');
    await phoneRow.getByRole('button', { name: 'Sign out this session' }).click();
    await expect.poll(() => laptop.getByRole('status').textContent()).toContain('The session has been signed out');
    await expect.poll(() => rows.count()).toBe(1);

    const status = await phone.evaluate(() => fetch('/backoffice/auth/me').then((r) => r.status));
    expect(status).toBe(401);
    await phone.evaluate(() => (window as any).BackOfficeSession.check());
    await expect.poll(() => phone.getByRole('alertdialog').getByRole('heading').textContent()).toBe('Your session has ended');
  });

  it('shows the lock message with the time left after five wrong passwords', async () => {
    const created = await shared.app.userManager.createUser({ email: 'locked@example.com', name: 'Lou Locked', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await page.goto(url('/'));
    for (let attempt = 1; attempt <= 5; attempt++) {
      await page.getByLabel('Email', { exact: true }).fill('locked@example.com');
      await page.getByLabel('Password', { exact: true }).fill(`wrong password ${attempt}`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => alert(page).textContent()).toMatch(attempt < 5 ? /email or password is incorrect/ : /locked/);
      if (attempt < 5) await page.evaluate(() => (document.getElementById('bo-alert')!.textContent = ''));
    }
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => alert(page).textContent()).toBe('Your account is locked after too many failed attempts. Try again in 5\u00a0min.');
    // Still the sign-in page: /backoffice/ answers 302 to its canonical path /backoffice (cb8a0c9), on both platforms.
    expect(page.url()).toBe(url(''));
  });

  it('signs in with the keyboard alone, with a visible focus indicator', async () => {
    const created = await shared.app.userManager.createUser({ email: 'keys@example.com', name: 'Kim Keys', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await page.goto(url('/'));
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('bo-username');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).toBe('solid');
    await page.keyboard.type('keys@example.com');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('bo-password');
    await page.keyboard.type(TEST_PASSWORD);
    await page.keyboard.press('Enter');
    await expectSignedInAccount(page, 'keys@example.com');
  });

  it('Sign out lands on the signOutRedirectUrl a UserLogoutSuccessNotification listener set; without one on the sign-in page', async () => {
    const created = await shared.app.userManager.createUser({ email: 'leaver@example.com', name: 'Lee Leaver', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    SignOutRedirectListener.url = `${shared.app.origin}/host/signed-out`;
    try {
      await signIn(page, 'leaver@example.com', TEST_PASSWORD);
      await expectSignedInAccount(page, 'leaver@example.com');
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.waitForURL(`${shared.app.origin}/host/signed-out`);
      expect(await page.getByRole('heading').textContent()).toBe('You left the host app');
    } finally {
      SignOutRedirectListener.url = null;
    }
    expect(await page.evaluate(() => fetch('/backoffice/auth/me').then((r) => r.status))).toBe(401);

    // The same from a host page that loads session.js: a data-backoffice-sign-out button, no listener URL.
    await signIn(page, 'leaver@example.com', TEST_PASSWORD);
    await expectSignedInAccount(page, 'leaver@example.com');
    await page.goto(`${shared.app.origin}/host/editor`);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(url(''));
  });

  it('OWASP ASVS 4.0 3.3.1: when the logout call fails (503: the database is down), Sign out says the person is still signed in instead of going to the sign-in page as if signed out', async () => {
    const created = await shared.app.userManager.createUser({ email: 'stayer@example.com', name: 'Sam Stayer', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await signIn(page, 'stayer@example.com', TEST_PASSWORD);
    await expectSignedInAccount(page, 'stayer@example.com');
    await page.route('**/backoffice/auth/logout', (route) =>
      route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ statusCode: 503, code: 'service_unavailable', message: 'The service is unavailable.' }) }),
    );
    const signOut = page.getByRole('button', { name: 'Sign out', exact: true });
    await signOut.click();
    const dialog = page.getByRole('alertdialog');
    await expect.poll(() => dialog.isVisible()).toBe(true);
    expect(await dialog.textContent()).toContain('still signed in');
    expect(page.url()).toBe(url('/account'));
    await dialog.getByRole('button', { name: 'Dismiss' }).click();
    expect(await signOut.getAttribute('aria-busy')).toBeNull();
    // Once the server answers again, the same button signs out.
    await page.unroute('**/backoffice/auth/logout');
    await signOut.click();
    await page.waitForURL(url(''));
    expect(await page.evaluate(() => fetch('/backoffice/auth/me').then((r) => r.status))).toBe(401);
  });

  it('the account page, when GET /auth/me fails (503), says so (an alert) instead of showing the sign-in page to a person still signed in', async () => {
    const created = await shared.app.userManager.createUser({ email: 'outage@example.com', name: 'Olga Outage', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await signIn(page, 'outage@example.com', TEST_PASSWORD);
    await expectSignedInAccount(page, 'outage@example.com');
    await page.route('**/backoffice/auth/me', (route) =>
      route.fulfill({ status: 503, contentType: 'application/json', headers: { 'Retry-After': '1' }, body: JSON.stringify({ statusCode: 503, code: 'database_unavailable', message: 'The service is temporarily unavailable; try again shortly.' }) }),
    );
    await page.reload();
    await expect.poll(() => alert(page).textContent()).toMatch(/try again/i);
    expect(page.url()).toBe(url('/account'));
    expect(await page.locator('#bo-account-content').isHidden()).toBe(true);
    await page.unroute('**/backoffice/auth/me');
    await page.reload();
    await expectSignedInAccount(page, 'outage@example.com');
  });

  it('on a host page, warns before the idle deadline; "Stay signed in" extends the session; after the deadline it signs in again in a dialog without reloading', async () => {
    const created = await shared.app.userManager.createUser({ email: 'idle@example.com', name: 'Ida Idle', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await page.clock.install();
    await signIn(page, 'idle@example.com', TEST_PASSWORD);
    await expectSignedInAccount(page, 'idle@example.com');
    await page.goto(`${shared.app.origin}/host/editor`);
    await page.getByLabel('Document').fill('unsaved work');
    await page.evaluate(() => ((window as any).pageMarker = 'same page'));
    const peek = () => page.evaluate(() => fetch('/backoffice/auth/me', { headers: { 'X-Backoffice-Session-Peek': '1' } }).then((r) => r.json()));
    await expect.poll(() => page.evaluate(() => Boolean((window as any).BackOfficeSession))).toBe(true);
    const before = (await peek()).session;

    // 20 min idle timeout, warning 2 min before: move server and browser clocks 18.5 min on.
    shared.app.clock.advance(18.5 * 60_000);
    await page.clock.fastForward(18.5 * 60_000);
    const warning = page.getByRole('alertdialog');
    await expect.poll(() => warning.getByRole('heading').textContent()).toBe('Are you still there?');
    // 90 s were left at the fast-forward; the countdown then runs in real time, and a slow machine spends seconds here.
    expect(await warning.textContent()).toMatch(/signed out in ([6-9]\d|1[01]\d)\ss/);
    await warning.getByRole('button', { name: 'Stay signed in' }).click();
    await expect.poll(() => page.getByRole('alertdialog').count()).toBe(0);
    const after = (await peek()).session;
    expect(Date.parse(after.idleExpiresAt)).toBeGreaterThan(Date.parse(before.idleExpiresAt) + 18 * 60_000);

    // Now let it lapse: the session ends, the dialog asks to sign in again, the page is not reloaded.
    shared.app.clock.advance(21 * 60_000);
    await page.clock.fastForward(21 * 60_000);
    const ended = page.getByRole('alertdialog');
    await expect.poll(() => ended.getByRole('heading').textContent()).toBe('Your session has ended');
    expect(await ended.getByLabel('Email', { exact: true }).inputValue()).toBe('idle@example.com');
    expect(await ended.getByRole('button', { name: 'Sign in with a passkey' }).count()).toBe(0); // passkeys are off here
    await ended.getByLabel('Password', { exact: true }).fill('not my password');
    await ended.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => ended.getByRole('alert').textContent()).toContain('email or password is incorrect');
    await ended.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await ended.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alertdialog').count()).toBe(0);
    expect(await page.evaluate(() => (window as any).pageMarker)).toBe('same page');
    expect(await page.getByLabel('Document').inputValue()).toBe('unsaved work');
    expect((await peek()).email).toBe('idle@example.com');
  });

  it('the session-ended dialog sends a member of a group that now requires two-factor to the account page to set it up', async () => {
    await shared.app.app.get(BackOfficeGroupService).create({ alias: 'vault', name: 'Vault', permissions: [], requireTwoFactor: false });
    const created = await shared.app.userManager.createUser({ email: 'vault@example.com', name: 'Val Vault', password: TEST_PASSWORD, groups: ['vault'] });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await signIn(page, 'vault@example.com', TEST_PASSWORD);
    await expectSignedInAccount(page, 'vault@example.com');
    await page.goto(`${shared.app.origin}/host/editor`);
    await expect.poll(() => page.evaluate(() => Boolean((window as any).BackOfficeSession))).toBe(true);
    // The group starts to require two-factor, and the person's sessions end (e.g. an admin signed them out).
    await shared.app.app.get(BackOfficeGroupService).update('vault', { requireTwoFactor: true });
    await shared.app.signInManager.refreshSignIn(created.value!);
    await page.evaluate(() => (window as any).BackOfficeSession.check());
    const ended = page.getByRole('alertdialog');
    await expect.poll(() => ended.getByRole('heading').textContent()).toBe('Your session has ended');
    await ended.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await ended.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(url('/account?status=requiresTwoFactorSetup'));
  });

  it('a sign-in on the sign-in page while its load-time session check (a stale XSRF cookie) is still out goes where the sign-in says (two-factor setup), not to returnUrl', async () => {
    await shared.app.app.get(BackOfficeGroupService).create({ alias: 'strongroom', name: 'Strongroom', permissions: [], requireTwoFactor: true });
    const created = await shared.app.userManager.createUser({ email: 'strongroom@example.com', name: 'Stu Strongroom', password: TEST_PASSWORD, groups: ['strongroom'] });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    // The XSRF cookie of a session that has ended: the page asks GET /auth/me, held here until the sign-in has answered.
    await page.context().addCookies([{ name: 'XSRF-TOKEN', value: 'stale-token-of-an-ended-session', url: shared.app.origin, sameSite: 'Strict' }]);
    let signedIn!: () => void;
    const signInAnswered = new Promise<void>((resolve) => (signedIn = resolve));
    const checks: number[] = [];
    await page.route('**/backoffice/auth/me', async (route) => {
      await signInAnswered;
      const response = await route.fetch();
      checks.push(response.status());
      await route.fulfill({ response });
    });
    page.on('response', (response) => {
      if (response.url().endsWith('/backoffice/auth/login')) signedIn();
    });
    // The next page is slow to come: the session check answers while the sign-in's navigation is pending.
    await page.route('**/backoffice/account?*', async (route) => {
      await expect.poll(() => checks.length).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await route.continue();
    });
    await page.goto(url(`?returnUrl=${encodeURIComponent('/host/editor')}`));
    await page.getByLabel('Email', { exact: true }).fill('strongroom@example.com');
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/backoffice/account' || u.pathname === '/host/editor');
    await page.waitForLoadState('networkidle');
    expect(checks[0]).toBe(401); // the load-time check, sent with the stale cookie; the sign-in has set new ones since
    expect(page.url()).toBe(url('/account?status=requiresTwoFactorSetup'));
    await expect.poll(() => page.getByRole('button', { name: 'Set up two-factor authentication' }).isVisible()).toBe(true);
  });

  it('tells before the absolute deadline that the session cannot be extended', async () => {
    const created = await shared.app.userManager.createUser({ email: 'longday@example.com', name: 'Lon Longday', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await page.clock.install();
    await signIn(page, 'longday@example.com', TEST_PASSWORD);
    await expectSignedInAccount(page, 'longday@example.com');
    await page.goto(`${shared.app.origin}/host/editor`);
    // A busy day: the session is used every 15 minutes for 11 h 50 min (12 h absolute timeout).
    for (let step = 0; step < 47; step++) {
      shared.app.clock.advance(15 * 60_000);
      expect(await page.evaluate(() => fetch('/backoffice/auth/me').then((r) => r.status))).toBe(200);
    }
    shared.app.clock.advance(5 * 60_000);
    const me = await page.evaluate(() => fetch('/backoffice/auth/me').then((r) => r.json()));
    expect(me.session.idleExpiresAt).toBe(me.session.absoluteExpiresAt); // capped by the absolute deadline
    await page.evaluate(() => (window as any).BackOfficeSession.check());
    expect(await page.getByRole('alertdialog').count()).toBe(0); // 10 minutes left: no warning yet
    shared.app.clock.advance(8.5 * 60_000);
    await page.clock.fastForward(8.5 * 60_000);
    const notice = page.getByRole('alertdialog');
    await expect.poll(() => notice.textContent()).toContain('Your session ends in');
    expect(await notice.textContent()).toMatch(/ends in ([6-9]\d)\ss and cannot be extended/);
    expect(await notice.getByRole('button', { name: 'Stay signed in' }).count()).toBe(0);
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    expect(await page.getByRole('alertdialog').count()).toBe(0);
  });

  it('asks for the password again in a dialog (step-up) when a sensitive change comes more than 5 minutes after sign-in, then carries on', async () => {
    const created = await shared.app.userManager.createUser({ email: 'stepup@example.com', name: 'Stu Stepup', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const page = await newPage();
    await signIn(page, 'stepup@example.com', TEST_PASSWORD);
    await expectSignedInAccount(page, 'stepup@example.com');
    shared.app.clock.advance(6 * 60_000);
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.getByRole('heading').textContent()).toBe('Confirm it’s you');
    await dialog.getByLabel('Password', { exact: true }).fill('not my password');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toBe('The password is incorrect.');
    await dialog.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => page.locator('#bo-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/); // the call was retried
    expect(await page.getByRole('dialog').count()).toBe(0);

    // "Sign out everywhere else" (DELETE /auth/sessions) is sensitive too: recent now, so no prompt.
    const other = await newPage();
    await signIn(other, 'stepup@example.com', TEST_PASSWORD);
    await expectSignedInAccount(other, 'stepup@example.com');
    await page.reload();
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(2);
    await page.getByRole('button', { name: 'Sign out all other sessions' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Your other sessions have been signed out');
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(1);
    expect(await other.evaluate(() => fetch('/backoffice/auth/me').then((r) => r.status))).toBe(401);
  });

  it('OWASP ASVS 5.0 7.2.4: a step-up in one tab renews the session cookie; calls of another tab that left with the old cookie (401) or the old XSRF token (403) are retried, not "Your session has ended"', async () => {
    const created = await shared.app.userManager.createUser({ email: 'rotate-tabs@example.com', name: 'Rita Rotate', password: TEST_PASSWORD });
    expect(created.succeeded).toBe(true);
    const context = await shared.newContext({ baseURL: shared.app.origin });
    const account = await context.newPage();
    await signIn(account, 'rotate-tabs@example.com', TEST_PASSWORD);
    await expectSignedInAccount(account, 'rotate-tabs@example.com');
    const editor = await context.newPage();
    await editor.goto(`${shared.app.origin}/host/editor`);
    await expect.poll(() => editor.evaluate(() => Boolean((window as any).BackOfficeSession))).toBe(true);
    await editor.getByLabel('Document').fill('unsaved work');
    await editor.evaluate(() => ((window as any).pageMarker = 'same page'));
    const cookieOf = async (name: string) => (await context.cookies()).find((c) => c.name === name)!.value;
    const old = { session: await cookieOf('backoffice_session'), xsrf: await cookieOf('XSRF-TOKEN') };

    // The account tab confirms it's the person (the step-up dialog): the session gets a new token.
    const confirmed = account.evaluate(() => (window as any).BackOfficeSession.reauthenticate());
    const dialog = account.getByRole('dialog');
    await expect.poll(() => dialog.getByRole('heading').textContent()).toBe('Confirm it’s you');
    await dialog.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    expect(await confirmed).toBe(true);
    expect(await cookieOf('backoffice_session')).not.toBe(old.session);
    expect(await cookieOf('XSRF-TOKEN')).not.toBe(old.xsrf);

    // The editor tab's calls that left before the new cookies arrived: the first attempt of each carries the old
    // session cookie and XSRF token (a read, a write, the idle check's peek), or the new cookie with the old XSRF
    // token (read just before the step-up's answer came).
    const sent: string[] = [];
    const both = { cookie: `backoffice_session=${old.session}; XSRF-TOKEN=${old.xsrf}`, 'x-xsrf-token': old.xsrf };
    let stale: { path: string; headers: Record<string, string> } | null = null;
    await editor.route('**/backoffice/auth/**', async (route) => {
      const request = route.request();
      const path = new URL(request.url()).pathname;
      const change = stale && stale.path === path ? stale.headers : null;
      if (change) stale = null; // only the first attempt left early
      sent.push(`${request.method()} ${path}${change ? ' (stale)' : ''}`);
      if (!change) return route.continue();
      if (!change.cookie) {
        // The page read the old XSRF cookie; the step-up's new cookies arrived before the request left.
        await context.addCookies([{ name: 'XSRF-TOKEN', value: change.xsrfCookie, url: shared.app.origin, sameSite: 'Strict' }]);
        return route.continue();
      }
      // Chromium attaches the cookies it holds when the request goes on: the one with the old cookie is sent from here.
      const headers = Object.fromEntries(Object.entries(await request.allHeaders()).filter(([name]) => !/^(host|connection|content-length|cookie)$/i.test(name) && !name.startsWith(':')));
      const answer = await fetch(request.url(), { method: request.method(), headers: { ...headers, ...change }, body: request.postDataBuffer() ?? undefined });
      const answerHeaders = Object.fromEntries([...answer.headers].filter(([name]) => !/^(content-encoding|content-length|transfer-encoding|connection)$/i.test(name)));
      await route.fulfill({ status: answer.status, headers: answerHeaders, body: Buffer.from(await answer.arrayBuffer()) });
    });
    /** Answers the call's result, or fails as soon as a dialog opens instead (it would wait for the person). */
    const answered = async <T,>(pending: Promise<T>): Promise<T> => {
      const dialogs = editor.getByRole('alertdialog');
      const opened = dialogs.waitFor({ state: 'visible', timeout: 30_000 }).then(
        async () => `a dialog opened: ${await dialogs.getByRole('heading').textContent()}`,
        () => 'no dialog',
      );
      const first = await Promise.race([pending.then((value) => ({ value })), opened]);
      if (typeof first === 'string') expect.fail(`${first} (${sent.join(', ')})`);
      return (first as { value: T }).value;
    };
    const call = (method: string, path: string, headers: Record<string, string>) => {
      stale = { path: `/backoffice${path}`, headers };
      return answered(editor.evaluate(([m, p]) => (window as any).BackOfficeSession.request(m, p), [method, path]));
    };
    const read = await call('GET', '/auth/sessions', { cookie: both.cookie });
    expect(read.status, sent.join(', ')).toBe(200);
    expect(read.body.map((s: { current: boolean }) => s.current)).toEqual([true]);
    const write = await call('DELETE', '/auth/sessions/00000000-0000-4000-8000-000000000000', both);
    expect(write.status, sent.join(', ')).toBe(404); // it reached the route: no such session of yours
    const renewedXsrf = await cookieOf('XSRF-TOKEN');
    await context.addCookies([{ name: 'XSRF-TOKEN', value: old.xsrf, url: shared.app.origin, sameSite: 'Strict' }]);
    const racedXsrf = await call('DELETE', '/auth/sessions/00000000-0000-4000-8000-000000000001', { xsrfCookie: renewedXsrf });
    expect(racedXsrf.status, sent.join(', ')).toBe(404);
    stale = { path: '/backoffice/auth/me', headers: { cookie: both.cookie } };
    const checked = await answered(editor.evaluate(() => (window as any).BackOfficeSession.check()));
    expect(checked.status).toBe(401); // the idle check's peek was answered 401 ...
    await editor.waitForTimeout(500);
    expect(await editor.getByRole('alertdialog').count(), sent.join(', ')).toBe(0); // ... but the session went on: no dialog
    // Each stale call was answered, then sent once more (after a peek that found the session live, for a 401).
    const none = '/backoffice/auth/sessions/00000000-0000-4000-8000-00000000000';
    expect(sent).toEqual([
      'GET /backoffice/auth/sessions (stale)', 'GET /backoffice/auth/me', 'GET /backoffice/auth/sessions',
      `DELETE ${none}0 (stale)`, 'GET /backoffice/auth/me', `DELETE ${none}0`,
      `DELETE ${none}1 (stale)`, `DELETE ${none}1`,
      'GET /backoffice/auth/me (stale)', 'GET /backoffice/auth/me',
    ]);
    expect(await editor.evaluate(() => (window as any).pageMarker)).toBe('same page');
    expect(await editor.getByLabel('Document').inputValue()).toBe('unsaved work');
    await editor.unroute('**/backoffice/auth/**');

    // The old cookie itself is dead.
    const oldContext = await shared.newContext({ baseURL: shared.app.origin });
    await oldContext.addCookies([{ name: 'backoffice_session', value: old.session, url: shared.app.origin }]);
    expect((await oldContext.request.get('/backoffice/auth/me')).status()).toBe(401);
  });

  it('a mangled emailed link (the token or user id over its length: the next line of the email glued to it) says the link is invalid (on load for reset and invite), not "Choose a different password"', async () => {
    const mangled = `#userId=${'1'.repeat(70)}&token=${'t'.repeat(600)}`;
    for (const [path, invalid] of [['/reset-password', 'This link is invalid'], ['/accept-invite', 'This invitation link is invalid'], ['/confirm-email', 'This link is invalid']]) {
      const page = await newPage();
      await page.goto(url(path + mangled));
      // The reset and invite pages check the link as they load; the email-change page when its button is pressed.
      if (path === '/confirm-email') await page.locator('form button[type=submit]').click();
      await expect.poll(() => alert(page).textContent(), path).toContain(invalid);
      expect(await alert(page).textContent(), path).not.toContain('password');
      expect(await page.locator('[aria-invalid="true"]').count(), path).toBe(0);
      expect(await page.locator('form').first().isHidden(), path).toBe(true);
    }
  });

  it('OWASP ASVS 4.0 8.3.1: a form submitted before pages.js runs (slow or blocked script) never puts the password, code or email in the URL', async () => {
    const page = await newPage();
    await page.route('**/backoffice/assets/pages.js*', (route) => route.abort());
    const secret = 'typed-before-the-script-ran';
    const sent: Array<{ method: string; url: string; status?: number }> = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest()) sent.push({ method: request.method(), url: request.url() });
    });
    page.on('response', (response) => {
      const request = sent.find((r) => r.url === response.url() && r.status === undefined);
      if (request) request.status = response.status();
    });
    for (const path of ['/', '/two-factor', '/forgot-password', '/reset-password#userId=u&token=t', '/accept-invite#userId=u&token=t']) {
      await page.goto(url(path));
      const field = page.locator('form input[required]').last();
      await field.fill(secret);
      sent.length = 0;
      await field.press('Enter');
      await expect.poll(() => sent.length, `${path}: the browser's own submit`).toBeGreaterThan(0);
      await page.waitForLoadState();
      expect(sent.map((r) => r.url).filter((u) => u.includes(secret)), path).toEqual([]);
      expect(page.url(), path).not.toContain(secret);
      expect(sent[0].method, path).toBe('POST');
      // No page answers a POST: a 4xx JSON error, never a 5xx.
      await expect.poll(() => sent[0].status, path).toBeGreaterThanOrEqual(400);
      expect(sent[0].status, path).toBeLessThan(500);
    }
  });

  it('shows provider errors from ?error= and no provider buttons when GET /auth/external/providers is absent', async () => {
    const page = await newPage();
    await page.goto(url('/?error=external_email_in_use'));
    expect(await alert(page).textContent()).toContain('An account with your email address already exists');
    await page.waitForLoadState('networkidle');
    expect(await page.locator('#bo-providers').isHidden()).toBe(true);
    await page.goto(url('/?error=no_linked_account'));
    expect(await alert(page).textContent()).toContain('No account is linked');
  });
});
