import pg from 'pg';
import { BackOfficeEvents } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import type { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { connectLockObserver, holdAdminGroupLock, whileLockHeld } from '../support/lock-waits.js';

/**
 * OWASP ASVS 4.0 7.1.x / 5.0 16.2.x (accurate audit trail): two admins deleting one user at once. Both requests find
 * the user, then wait for the admin group's lock (the last-admin rule) that the test holds; once it is released one
 * deletes the user and the other finds it gone. That one must answer 404 `not_found`, as disable, enable and unlock
 * answer when a concurrent request deleted their target, and must not audit a deletion it did not make: the trail
 * names the one admin who deleted the user.
 */
describe.skipIf(dbKind() !== 'postgres')('DELETE /users/:id sent twice at once', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let first: HttpClient;
  let second: HttpClient;
  let observer: pg.Client;
  const make = userFactory(() => ctx, 'deletetwice');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    first = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    second = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    observer = await connectLockObserver(db.url);
  });
  afterAll(async () => {
    await observer?.end();
    await ctx?.close();
    await db?.drop();
  });

  it('deletes once: one 204, one 404 not_found, one backoffice.user.deleted entry', async () => {
    const target = await make({ groups: ['editor'] });
    const results = await whileLockHeld(db.url, observer, {
      hold: holdAdminGroupLock,
      send: () => Promise.all([first.request('DELETE', `/users/${target.id}`), second.request('DELETE', `/users/${target.id}`)]),
      waiters: 2,
    });
    expect(results.map((r) => r.status).sort()).toEqual([204, 404]);
    const refused = results.find((r) => r.status !== 204)!;
    expectClientError(refused, 404);
    expect(refused.body.code).toBe('not_found');
    expect(await ctx.userManager.findById(target.id)).toBeNull();

    const audit = (await first.get(`/audit?userId=${target.id}&take=50`)).body.items as Array<{ event: string }>;
    expect(audit.filter((e) => e.event === BackOfficeEvents.Deleted)).toHaveLength(1);
  });
});
