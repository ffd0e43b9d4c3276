import type { Page } from 'playwright-core';
import { DataSource } from 'typeorm';
import { TEST_PASSWORD } from '../support/identity-app.js';
import { axeScan, chromiumPath } from './support/browser.js';
import { useBrowserApp } from './support/use-browser-app.js';

const executable = chromiumPath();
const suite = executable ? describe : describe.skip;

suite('account page: the "Active sessions" list of a user with more sessions than one page of GET /auth/sessions', () => {
  const shared = useBrowserApp(executable);
  const url = (path: string) => `${shared.app.origin}/backoffice${path}`;

  /** A new user signed in on a fresh page (bypassCSP only so axe.min.js can be injected) that has reached the account page. */
  async function signedInOnAccount(email: string): Promise<Page> {
    expect((await shared.app.userManager.createUser({ email, name: email, password: TEST_PASSWORD })).succeeded).toBe(true);
    const context = await shared.newContext({ baseURL: shared.app.origin, bypassCSP: true, viewport: { width: 1024, height: 760 } });
    const page = await context.newPage();
    await page.goto(url('/'));
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(url('/account'));
    return page;
  }

  /**
   * `count` more live sessions of the user, copies of the signed-in one (new id and token), last seen `ageSeconds`
   * before the database's now (more recently than the signed-in one when negative). SQL, not `count` sign-ins.
   */
  async function addSessions(email: string, count: number, ageSeconds: number): Promise<void> {
    await shared.app.app.get(DataSource).query(
      `INSERT INTO backoffice_session
       SELECT (jsonb_populate_record(NULL::backoffice_session, to_jsonb(s) || jsonb_build_object(
         'id', gen_random_uuid(),
         'token_hash', md5(random()::text || g::text) || substr(md5(g::text || random()::text), 1, 32),
         'last_seen_at', now() - make_interval(secs => $2::float8),
         'user_agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'))).*
       FROM backoffice_session s
       JOIN backoffice_user u ON u.id = s.user_id, generate_series(1, $3::int) g
       WHERE u.email = $1 AND s.revoked_at IS NULL`,
      [email, ageSeconds, count],
    );
  }

  it('with over 200 live sessions it lists the 200 most recently active, marks the current one, and says under the list that more exist and "Sign out all other sessions" ends them all (axe-core: no serious violation)', async () => {
    const page = await signedInOnAccount('many@example.com');
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(1);
    await addSessions('many@example.com', 230, 300); // seen 5 minutes ago: the current session is the most recent
    await page.reload();

    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(200);
    await expect(page.locator('#bo-sessions .bo-badge').count()).resolves.toBe(1);
    expect(await page.locator('#bo-sessions li').first().locator('.bo-badge').textContent()).toBe('This session');
    const note = page.locator('#bo-sessions-more');
    expect(await note.isVisible()).toBe(true);
    expect(await note.textContent()).toBe('Only the 200 most recently active sessions are listed. “Sign out all other sessions” signs out every one.');
    expect(await page.locator('#bo-no-other-sessions').isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Sign out all other sessions' }).isVisible()).toBe(true);

    const summary = await axeScan(page);
    const serious = summary.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious, JSON.stringify(serious)).toEqual([]);

    // What the note promises: "Sign out all other sessions" ends the unlisted ones too, and the note goes.
    await page.getByRole('button', { name: 'Sign out all other sessions' }).click();
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(1);
    expect(await note.isVisible()).toBe(false);
    expect(await page.locator('#bo-no-other-sessions').isVisible()).toBe(true);
    const [{ live }] = await shared.app.app.get(DataSource).query(
      `SELECT count(*)::int AS live FROM backoffice_session s JOIN backoffice_user u ON u.id = s.user_id WHERE u.email = $1 AND s.revoked_at IS NULL`,
      ['many@example.com'],
    );
    expect(live).toBe(1);
  });

  it('with 200 live sessions or fewer it lists them all and shows no note', async () => {
    const page = await signedInOnAccount('few@example.com');
    await addSessions('few@example.com', 149, 300);
    await page.reload();
    await expect.poll(() => page.locator('#bo-sessions li').count()).toBe(150);
    expect(await page.locator('#bo-sessions .bo-badge').count()).toBe(1);
    expect(await page.locator('#bo-sessions-more').isVisible()).toBe(false);
  });
});
