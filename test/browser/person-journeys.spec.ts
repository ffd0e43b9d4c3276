import type { Browser, Page } from 'playwright-core';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { chromiumPath, latestMailTo, totpCode } from './support/browser.js';
import { useBrowserApp } from './support/use-browser-app.js';

const executable = chromiumPath();
const suite = executable ? describe : describe.skip;

/** A real address a person may have: 93 characters without a space (RFC 5321 allows 254). */
const LONG_EMAIL = 'firstname.middlename.lastname.department.team.longaddress@subdomain.example-corporation.com';

suite('sign-in screens used as a person does: small screens, focus, errors, password managers', () => {
  const shared = useBrowserApp(executable, async (app) => {
    expect((await app.userManager.createUser({ email: LONG_EMAIL, name: 'Lou Longname', password: TEST_PASSWORD, groups: ['admin'] })).succeeded).toBe(true);
  });

  const url = (path: string) => `${shared.app.origin}/backoffice${path}`;

  /** A fresh profile; `width` 320 is a 1280 px window at 400% zoom (WCAG 1.4.10). */
  async function newPage(width = 1024, options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
    const context = await shared.newContext({ baseURL: shared.app.origin, viewport: { width, height: 700 }, ...options });
    return context.newPage();
  }

  async function signIn(page: Page, email: string, password: string): Promise<void> {
    await page.goto(url('/'));
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** A new user (not in a group) signed in on a fresh page, which has reached the account page. */
  async function signedInOnAccount(email: string, name: string): Promise<Page> {
    expect((await shared.app.userManager.createUser({ email, name, password: TEST_PASSWORD })).succeeded).toBe(true);
    const page = await newPage();
    await signIn(page, email, TEST_PASSWORD);
    await page.waitForURL(url('/account'));
    return page;
  }

  /** CSS px the page scrolls sideways (0 when everything reflows). */
  const sidewaysScroll = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

  it('WCAG 2.2 1.4.10 Reflow: at 320 CSS px a long email address in the forgot-password status and the account header wraps (no sideways scrolling)', async () => {
    const page = await newPage(320);
    await page.goto(url('/forgot-password'));
    await page.getByLabel('Email', { exact: true }).fill(LONG_EMAIL);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await expect.poll(() => page.locator('#bo-status').textContent()).toContain(LONG_EMAIL);
    expect(await sidewaysScroll(page), 'forgot-password status').toBe(0);

    await signIn(page, LONG_EMAIL, TEST_PASSWORD);
    await page.waitForURL(url('/account'));
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain(LONG_EMAIL);
    expect(await sidewaysScroll(page), 'account header').toBe(0);
  });

  /** What has the keyboard focus: the element's id, text or tag ('BODY' when focus was lost). */
  const focused = (page: Page) => page.evaluate(() => {
    const active = document.activeElement;
    return !active || active === document.body ? 'BODY' : active.id || active.textContent?.trim() || active.tagName;
  });

  it('WCAG 2.2 2.4.3 Focus Order: a keyboard submit keeps the focus on the page (not lost to <body>) after the answer, also when the link is refused and its form is hidden', async () => {
    const page = await newPage();
    await page.goto(url('/forgot-password'));
    await page.getByLabel('Email', { exact: true }).fill('nobody@example.com');
    await page.keyboard.press('Tab'); // to "Send reset link"
    expect(await focused(page)).toBe('Send reset link');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#bo-status').textContent()).toContain('nobody@example.com');
    expect(await focused(page)).toBe('Send reset link');
    await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('Back to sign in'); // the next stop, not the skip link at the top

    await page.getByLabel('Email', { exact: true }).fill(LONG_EMAIL);
    const asked = Date.now();
    await page.getByRole('button', { name: 'Send reset link' }).click();
    const mail = await latestMailTo(shared.app.mailDir, LONG_EMAIL, asked); // not an earlier test's link
    // A tampered link: the page says so as it loads (before any password is typed), the focus on what to do next.
    await page.goto(mail.link.replace(/token=[^&]+/, 'token=not-the-token'));
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('invalid');
    await expect.poll(() => focused(page)).toBe('Ask for a new link');
    // The same link when that check could not answer (network): the keyboard submit is refused, the focus goes the same way.
    const offline = await newPage();
    await offline.route('**/auth/reset-password/verify', (route) => route.abort());
    await offline.goto(mail.link.replace(/token=[^&]+/, 'token=not-the-token'));
    await offline.getByLabel('New password', { exact: true }).fill('a brand new passphrase for the test');
    await offline.getByRole('button', { name: 'Set password' }).focus();
    await offline.keyboard.press('Enter');
    await expect.poll(() => offline.getByRole('alert').textContent()).toContain('invalid');
    expect(await focused(offline)).toBe('Ask for a new link');
  });

  /** The field's aria-invalid and its accessible description (the texts its aria-describedby names). */
  const fieldState = (page: Page, id: string) => page.evaluate((fieldId) => {
    const input = document.getElementById(fieldId)!;
    const description = (input.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean)
      .map((ref) => document.getElementById(ref)?.textContent?.trim() ?? '').join(' ');
    return { invalid: input.getAttribute('aria-invalid'), description };
  }, id);

  it('WCAG 2.2 3.3.1 Error Identification: a field marked aria-invalid is described by the error that names the problem (sign-in, new password), and a field no longer in error loses both', async () => {
    const page = await newPage();
    await page.goto(url('/'));
    await page.getByLabel('Email', { exact: true }).fill(LONG_EMAIL);
    await page.getByLabel('Password', { exact: true }).fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('incorrect');
    for (const id of ['bo-username', 'bo-password']) {
      const state = await fieldState(page, id);
      expect(state.invalid, id).toBe('true');
      expect(state.description, id).toContain('incorrect');
    }
    // The password was cleared; sent again without one, only the password field is in error.
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Password');
    expect(await fieldState(page, 'bo-username')).toEqual({ invalid: null, description: '' });
    expect((await fieldState(page, 'bo-password')).description).toContain((await page.getByRole('alert').textContent())!.trim());

    await page.goto(url('/forgot-password'));
    await page.getByLabel('Email', { exact: true }).fill(LONG_EMAIL);
    const asked = Date.now();
    await page.getByRole('button', { name: 'Send reset link' }).click();
    // This request's mail: the one an earlier test asked for moments ago (its link no longer valid) may be newer than "a second ago".
    const mail = await latestMailTo(shared.app.mailDir, LONG_EMAIL, asked);
    await page.goto(mail.link);
    await page.getByLabel('New password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Set password' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).not.toBe('');
    const refused = await fieldState(page, 'bo-new-password');
    expect(refused.invalid).toBe('true');
    expect(refused.description).toContain((await page.getByRole('alert').textContent())!.trim());
    expect(refused.description).toContain('At least'); // the hint stays

    // Empty field: the required-field error describes it.
    await page.getByLabel('New password', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Set password' }).click();
    await expect.poll(() => fieldState(page, 'bo-new-password')).toMatchObject({ invalid: 'true' });
    expect((await fieldState(page, 'bo-new-password')).description).toContain((await page.getByRole('alert').textContent())!.trim());
  });

  it('WCAG 2.2 3.3.8 Accessible Authentication: the account page\'s password forms carry the account\'s username (hidden) so a password manager saves the new password for the right account, also after a change', async () => {
    const email = 'manager.user@example.com';
    const page = await signedInOnAccount(email, 'Max Manager');
    const usernameIn = (formId: string) => page.evaluate((id) => {
      const input = document.querySelector<HTMLInputElement>(`#${id} input[autocomplete="username"]`);
      return input ? { value: input.value, hidden: input.offsetParent === null, type: input.type } : null;
    }, formId);
    await expect.poll(() => usernameIn('bo-change-password-form')).toEqual({ value: email, hidden: true, type: 'text' });
    expect(await page.locator('#bo-change-password-form input[type="password"]').evaluateAll((inputs) => inputs.map((i) => i.getAttribute('autocomplete'))))
      .toEqual(['current-password', 'new-password']);

    const sent: string[] = [];
    page.on('request', (request) => { if (request.url().endsWith('/auth/change-password')) sent.push(request.postData() ?? ''); });
    await page.getByLabel('Current password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill('a new passphrase the manager should keep');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('changed');
    expect(Object.keys(JSON.parse(sent[0])).sort()).toEqual(['currentPassword', 'newPassword']); // the username is not sent
    expect(await usernameIn('bo-change-password-form')).toEqual({ value: email, hidden: true, type: 'text' }); // kept by the form's reset
  });

  /**
   * Every text put into the alert or status region, with the page's readyState then (an init script watches from
   * the first byte, so the parser's insertion of a server-rendered message is seen as 'loading').
   */
  async function watchLiveRegions(page: Page): Promise<void> {
    await page.addInitScript(() => {
      const seen: Array<{ id: string; text: string; state: string }> = [];
      (window as any).__liveInserts = seen;
      new MutationObserver((records) => {
        for (const record of records) {
          const region = (record.target as Element).closest?.('#bo-alert, #bo-status') ?? (record.target.parentElement?.closest('#bo-alert, #bo-status'));
          if (region && record.addedNodes.length && region.textContent?.trim()) seen.push({ id: region.id, text: region.textContent.trim(), state: document.readyState });
        }
      }).observe(document, { childList: true, subtree: true, characterData: true });
    });
  }
  const insertsAfterLoad = (page: Page, id: string) =>
    page.evaluate((regionId) => ((window as any).__liveInserts as Array<{ id: string; text: string; state: string }>).filter((i) => i.id === regionId && i.state === 'complete').map((i) => i.text), id);

  /** Chromium's accessibility tree: the focused node's role and the text inside it. */
  async function focusedAxNode(page: Page): Promise<{ role: string; text: string } | null> {
    const cdp = await page.context().newCDPSession(page);
    try {
      const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: Array<any> };
      const byId = new Map(nodes.map((n) => [n.nodeId, n]));
      // The document itself is marked focused too: the element is the focused node that is not the root.
      const focused = nodes.find((n) => n.role?.value !== 'RootWebArea' && (n.properties ?? []).some((p: any) => p.name === 'focused' && p.value?.value === true));
      if (!focused) return null;
      const texts: string[] = [];
      const walk = (n: any) => { if (n.role?.value === 'StaticText') texts.push(n.name?.value ?? ''); (n.childIds ?? []).forEach((id: string) => byId.get(id) && walk(byId.get(id))); };
      walk(focused);
      return { role: focused.role?.value, text: texts.join(' ').trim() };
    } finally {
      await cdp.detach();
    }
  }

  it('WCAG 2.2 4.1.3 Status Messages / 3.3.1 Error Identification: an error already in the page when it loads (?error= on the sign-in and account pages, a link without its token) is put into the live region after the load and takes the focus; a notice (?notice=) is put into the status region after the load', async () => {
    const groupsMissing = 'The external provider did not send your groups';
    const page = await newPage();
    await watchLiveRegions(page);
    await page.goto(url('/?error=external_groups_unavailable'));
    await expect.poll(() => insertsAfterLoad(page, 'bo-alert')).toEqual([expect.stringContaining(groupsMissing)]);
    await expect.poll(() => focused(page)).toBe('bo-alert');
    expect(await focusedAxNode(page)).toEqual({ role: 'alert', text: expect.stringContaining(groupsMissing) });

    await page.goto(url('/reset-password'));
    await expect.poll(() => insertsAfterLoad(page, 'bo-alert')).toEqual([expect.stringContaining('incomplete')]);
    await expect.poll(() => focused(page)).toBe('bo-alert');
    expect(await focusedAxNode(page)).toMatchObject({ role: 'alert' });

    await page.goto(url('/?notice=password-reset'));
    await expect.poll(() => insertsAfterLoad(page, 'bo-status')).toHaveLength(1);
    expect(await focused(page)).toBe('BODY'); // a notice does not move the focus

    await signIn(page, LONG_EMAIL, TEST_PASSWORD);
    await page.waitForURL(url('/account'));
    await page.goto(url('/account?error=login_already_linked'));
    await expect.poll(() => insertsAfterLoad(page, 'bo-alert')).toEqual([expect.stringContaining('already linked')]);
    await expect.poll(() => focused(page)).toBe('bo-alert');
    expect(await focusedAxNode(page)).toEqual({ role: 'alert', text: expect.stringContaining('already linked') });
  });

  /**
   * Each checkbox and radio button on the page: the size of what a pointer can hit to toggle it (the label that
   * holds it, or the input alone), and whether a click at that target's top-left corner (1 px in) reaches it.
   */
  const toggleTargets = (page: Page) => page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLInputElement>('input[type="checkbox"], input[type="radio"]'))
      .filter((input) => input.offsetParent !== null)
      .map((input) => {
        const target = input.closest('label') ?? input;
        const box = target.getBoundingClientRect();
        const hit = document.elementFromPoint(box.left + 1, box.top + 1);
        return { name: input.labels?.[0]?.textContent?.trim() ?? input.id, width: Math.round(box.width), height: Math.round(box.height), cornerHits: Boolean(hit && (hit === input || hit.closest('label') === target)) };
      }));

  it('WCAG 2.2 2.5.8 Target Size (Minimum): "Show password" and the two-factor method radio buttons are targets of at least 24 x 24 CSS px (the label that holds the input), and a click on the label\'s edge toggles them', async () => {
    const page = await newPage();
    await page.goto(url('/'));
    const signInTargets = await toggleTargets(page);
    expect(signInTargets).toEqual([{ name: 'Show password', width: expect.any(Number), height: expect.any(Number), cornerHits: true }]);
    for (const target of signInTargets) expect(Math.min(target.width, target.height), target.name).toBeGreaterThanOrEqual(24);
    const box = (await page.getByLabel('Show password').evaluate((input) => input.closest('label')?.getBoundingClientRect().toJSON() ?? null)) as DOMRect | null;
    expect(box).not.toBeNull();
    await page.mouse.click(box!.left + 1, box!.top + 1);
    expect(await page.getByLabel('Show password').isChecked()).toBe(true);
    expect(await page.getByLabel('Password', { exact: true }).getAttribute('type')).toBe('text');

    await page.goto(url('/two-factor'));
    const twoFactorTargets = await toggleTargets(page);
    expect(twoFactorTargets.length).toBeGreaterThanOrEqual(2);
    for (const target of twoFactorTargets) {
      expect(Math.min(target.width, target.height), target.name).toBeGreaterThanOrEqual(24);
      expect(target.cornerHits, target.name).toBe(true);
    }
  });

  it('WCAG 2.2 2.4.7 Focus Visible / 1.4.11 Non-text Contrast in forced colors (Windows high contrast) at 400% zoom (320 CSS px): every control tabbed to shows an outline, buttons keep their borders, and the re-authentication dialog keeps its edge', async () => {
    const page = await newPage(320, { forcedColors: 'active' });
    const focusRing = () => page.evaluate(() => {
      const active = document.activeElement as HTMLElement;
      const style = getComputedStyle(active);
      return { name: active.id || active.textContent?.trim() || active.tagName, outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
    });
    const edges = (selector: string) => page.locator(selector).evaluateAll((nodes) => nodes
      .filter((node) => (node as HTMLElement).offsetParent !== null || node.tagName === 'DIALOG')
      .map((node) => {
        const style = getComputedStyle(node);
        return { name: node.textContent?.trim().slice(0, 30), border: style.borderTopStyle !== 'none' && parseFloat(style.borderTopWidth) >= 1 && style.borderTopColor !== style.backgroundColor };
      }));
    for (const path of ['/', '/forgot-password', '/two-factor']) {
      await page.goto(url(path));
      await page.waitForLoadState('networkidle');
      expect(await page.evaluate(() => matchMedia('(forced-colors: active)').matches)).toBe(true);
      const stops = await page.locator('a[href]:visible, button:visible, input:visible:not([type="radio"]), input[type="radio"]:checked:visible').count();
      for (let i = 0; i < stops; i++) {
        await page.keyboard.press('Tab');
        const ring = await focusRing();
        expect(ring, `${path}: ${ring.name}`).toMatchObject({ outline: true });
      }
      for (const edge of await edges('button, a.bo-button')) expect(edge, path).toMatchObject({ border: true });
    }

    await signIn(page, LONG_EMAIL, TEST_PASSWORD);
    await page.waitForURL(url('/account'));
    await page.waitForLoadState('networkidle');
    for (const edge of await edges('button, a.bo-button')) expect(edge, 'account').toMatchObject({ border: true });
    // The dialog's promise settles only when the person answers it; the page closes first, which rejects it.
    page.evaluate(() => (window as any).BackOfficeSession.reauthenticate()).catch(() => undefined);
    await expect.poll(() => page.getByRole('dialog').count()).toBe(1);
    expect(await edges('dialog[open]'), 're-authentication dialog').toEqual([expect.objectContaining({ border: true })]);
    for (const edge of await edges('dialog[open] button')) expect(edge, 'dialog buttons').toMatchObject({ border: true });
    await page.keyboard.press('Tab');
    expect(await focusRing()).toMatchObject({ outline: true });
  });

  it('double submit: once the sign-in succeeded, "Sign in" stays disabled while the next page loads, and Enter again sends no second sign-in (no second session)', async () => {
    const email = 'double.enter@example.com';
    expect((await shared.app.userManager.createUser({ email, name: 'Dee Double', password: TEST_PASSWORD })).succeeded).toBe(true);
    const page = await newPage();
    // The next page is slow to come: the navigation to it is held here (a 204 leaves the page where it is).
    await page.route(url('/account'), (route) => route.fulfill({ status: 204 }));
    const logins: string[] = [];
    page.on('request', (request) => { if (request.method() === 'POST' && request.url().endsWith('/auth/login')) logins.push(request.url()); });
    const answered = page.waitForResponse((response) => response.url().endsWith('/auth/login'));
    await signIn(page, email, TEST_PASSWORD);
    expect((await answered).status()).toBe(200);
    await page.waitForTimeout(200); // the page has handled the answer
    expect(await page.getByRole('button', { name: 'Sign in' }).isDisabled()).toBe(true);
    await page.getByLabel('Password', { exact: true }).press('Enter'); // impatient
    await page.waitForTimeout(300);
    await page.unroute(url('/account'));
    await page.goto(url('/account'));
    expect(logins).toHaveLength(1);
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(1);
  });

  it('no console error and no script error on any page: a first visit (no cookies) to every screen, then signed in on the account page', async () => {
    const page = await newPage();
    const errors: string[] = [];
    page.on('console', (message) => { if (message.type() === 'error') errors.push(`${page.url()}: ${message.text()} ${message.location().url}`); });
    page.on('pageerror', (error) => errors.push(`${page.url()}: ${error.message}`));
    for (const path of ['/', '/forgot-password', '/reset-password', '/accept-invite', '/confirm-email', '/two-factor']) {
      await page.goto(url(path), { waitUntil: 'networkidle' });
    }
    await signIn(page, LONG_EMAIL, TEST_PASSWORD);
    await page.waitForURL(url('/account'));
    await page.waitForLoadState('networkidle');
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  });

  it('WCAG 2.2 3.3.1 Error Identification: once the corrected form succeeds, no field stays marked invalid (red border, "invalid entry") under the success status', async () => {
    const page = await signedInOnAccount('fixes.typo@example.com', 'Fay Fixer');
    await page.getByLabel('Current password', { exact: true }).fill('a typo in the password');
    await page.getByLabel('New password', { exact: true }).fill('the new passphrase after a typo');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => fieldState(page, 'bo-current-password')).toMatchObject({ invalid: 'true' });

    await page.getByLabel('Current password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill('the new passphrase after a typo');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('changed');
    expect(await fieldState(page, 'bo-current-password')).toEqual({ invalid: null, description: '' });
    expect(await page.locator('[aria-invalid="true"]').count()).toBe(0);
  });

  it('WCAG 2.2 2.4.3 Focus Order: on the account page a keyboard submit leaves the focus on the section it was in (never <body>) after success and failure: change password, two-factor on (no recovery codes shown) and off, signing out sessions', async () => {
    const email = 'keyboard.only@example.com';
    const page = await signedInOnAccount(email, 'Kim Keyboard');
    const press = async (name: string) => {
      await page.getByRole('button', { name, exact: true }).focus();
      await page.keyboard.press('Enter');
    };

    // Change password: refused, then done.
    await page.getByLabel('Current password', { exact: true }).fill('not the password');
    await page.getByLabel('New password', { exact: true }).fill('a keyboard user picked this passphrase');
    await press('Change password');
    await expect.poll(() => page.getByRole('alert').textContent()).not.toBe('');
    expect(await focused(page)).toBe('bo-current-password');
    await page.getByLabel('Current password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill('a keyboard user picked this passphrase');
    await press('Change password');
    await expect.poll(() => page.getByRole('status').textContent()).toContain('changed');
    await expect.poll(() => focused(page)).toBe('Change password');
    const password = 'a keyboard user picked this passphrase';

    // Two-factor on, from an app without recovery codes (the answer carries none): the set-up box is hidden.
    await press('Set up two-factor authentication');
    await expect.poll(() => page.locator('#bo-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/);
    expect(await focused(page)).toBe('bo-totp-code');
    const secret = (await page.locator('#bo-secret').textContent())!;
    await page.route(url('/auth/2fa/enable'), async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      await route.fulfill({ response, json: { ...body, recoveryCodes: [] } });
    });
    await page.getByLabel('Code', { exact: true }).fill(totpCode(secret, shared.app.clock.now()));
    await press('Verify');
    await expect.poll(() => page.locator('#bo-2fa-state').textContent()).toBe('Two-factor authentication is on.');
    await expect.poll(() => focused(page)).toBe('bo-2fa-heading');

    // Two-factor off: refused, then done (the form is hidden; "Set up" comes back and takes the focus).
    const disableButton = page.locator('#bo-2fa-disable-form button[type="submit"]');
    await page.locator('#bo-2fa-password').fill('not the password');
    await disableButton.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('alert').textContent()).not.toBe('');
    expect(await focused(page)).toBe('bo-2fa-password');
    await page.locator('#bo-2fa-password').fill(password);
    await disableButton.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#bo-2fa-state').textContent()).toContain('Two-factor authentication is off.');
    await expect.poll(() => focused(page)).toBe('bo-2fa-start');

    // Sessions (a second one, signed in after the changes that end the others): a refused sign-out keeps the focus on its button; a done one moves it to the heading.
    const other = await newPage();
    await signIn(other, email, password);
    await other.waitForURL(url('/account'));
    await page.reload();
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(2);
    await page.route(url('/auth/sessions/*'), (route) => route.fulfill({ status: 500, json: { code: 'internal_error', message: 'Something went wrong.' } }));
    await press('Sign out this session');
    await expect.poll(() => page.getByRole('alert').textContent()).not.toBe('');
    expect(await focused(page)).toBe('Sign out this session');
    await page.unroute(url('/auth/sessions/*'));
    await page.route(url('/auth/sessions'), (route) => route.request().method() === 'DELETE' ? route.fulfill({ status: 500, json: { code: 'internal_error', message: 'Something went wrong.' } }) : route.fallback());
    await press('Sign out all other sessions');
    await expect.poll(() => focused(page)).toBe('bo-sign-out-others'); // (the alert still holds the same error)
    expect(await page.getByRole('alert').textContent()).not.toBe('');
    await page.unroute(url('/auth/sessions'));
    await press('Sign out this session');
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(1);
    await expect.poll(() => focused(page)).toBe('bo-sessions-heading');
  });
});
