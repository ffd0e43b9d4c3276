import type { HttpResult } from './http-client.js';

/** The module's default session cookie name (the test apps keep it). */
const SESSION_COOKIE = 'backoffice_session';

const setsSession = (result: HttpResult): boolean => result.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`) && !/Max-Age=0/.test(c));

/**
 * A callback that must end as a redirect to the sign-in page with `code`, without a session: the page's canonical
 * path (`/backoffice`, no trailing slash: `/backoffice/` is one more 302).
 */
export function expectRefused(result: HttpResult, code: string): void {
  expect(result.status, result.text).toBe(302);
  expect(result.headers.get('location')).toBe(`/backoffice?error=${code}`);
  expect(setsSession(result)).toBe(false);
}

/** A callback that must end signed in: a redirect to `returnUrl` with a new session cookie. */
export function expectSignedIn(result: HttpResult, returnUrl = '/backoffice'): void {
  expect(result.status, result.text).toBe(302);
  expect(result.headers.get('location')).toBe(returnUrl);
  expect(setsSession(result)).toBe(true);
}

/** Polls `condition` every 200 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}
