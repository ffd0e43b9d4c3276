import { expect } from 'vitest';
import type { HttpClient, HttpResult } from './http-client.js';
import type { IdentityApp } from './identity-app.js';

/** A second client with the same cookies as `client` now: another request of the same (stolen) session. */
export function copyOf(client: HttpClient): HttpClient {
  const copy = client.fresh();
  for (const [name, value] of client.cookies) copy.cookies.set(name, value);
  return copy;
}

/**
 * A right step-up (`right`, sent by `http`) is held at its check (`held`) while five wrong password step-ups sent
 * with copies of the same session lock the account; once released it answers 423 `locked_out` (with
 * `retryAfterSeconds`), sets no new session cookie, steps nothing up, and the account stays locked (OWASP ASVS 4.0
 * 2.2.1: a burst of parallel guesses stays capped by the lockout).
 */
export async function lockWhileStepUpHeld(
  ctx: IdentityApp,
  http: HttpClient,
  userId: string,
  held: { reached: Promise<void>; release(): void },
  right: Promise<HttpResult>,
): Promise<void> {
  await held.reached;
  const wrong = await Promise.all(Array.from({ length: 5 }, () => copyOf(http).post('/auth/reauthenticate', { password: 'a wrong password guess' })));
  expect(wrong.map((a) => a.status).sort()).toEqual([401, 401, 401, 401, 423]);
  expect(ctx.userManager.isLockedOut((await ctx.userManager.findById(userId))!)).toBe(true);
  held.release();
  const answer = await right;
  expect({ status: answer.status, code: answer.body.code }).toEqual({ status: 423, code: 'locked_out' });
  expect(answer.body.retryAfterSeconds).toBeGreaterThan(0);
  expect(answer.setCookies.some((c) => c.startsWith('backoffice_session='))).toBe(false);
  expect((await http.request('DELETE', '/auth/sessions')).body.code).toBe('reauthentication_required');
  expect(ctx.userManager.isLockedOut((await ctx.userManager.findById(userId))!)).toBe(true);
}
