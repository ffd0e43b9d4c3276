import { isUserImportStore } from '../../src/backoffice-identity/index.js';
import { holdCalls, sentWhileHeld } from './held-calls.js';
import type { HttpResult } from './http-client.js';
import { signedInClient, type IdentityApp } from './identity-app.js';

/**
 * `POST /users/import` with `onConflict: 'update'` (and `body`'s fields) by a stale admin session (a stolen cookie, past
 * `session.reauthenticationMinutes`): the store's `importUsers` is held once the controller's checks passed on the
 * reads before the write, before its transaction takes its locks, while `meanwhile` commits a concurrent change. The
 * import's answer: the suites of the step-ups an import asks under its locks (a group given back, a user enabled).
 */
export async function staleImportRacing(ctx: IdentityApp, adminEmail: string, body: { users: object[] }, meanwhile: () => Promise<unknown>): Promise<HttpResult> {
  const stolen = await signedInClient(ctx, adminEmail);
  ctx.clock.advance(6 * 60_000);
  const store = ctx.userManager.store;
  if (!isUserImportStore(store)) throw new Error('the TypeORM store imports users');
  return sentWhileHeld(holdCalls(store, 'importUsers'), () => stolen.post('/users/import', { onConflict: 'update', ...body }), meanwhile);
}
