import { Injectable } from '@nestjs/common';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { BackOfficeEvents, TypeOrmBackOfficeUserStore, type BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import type { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { connectLockObserver, lockWaitersReach, whileLockHeld } from '../support/lock-waits.js';

/**
 * A host's user store that is no `UserGroupStore` (no `withGroupLock`: no admin group lock to serialise the writes on
 * a user). Users still read with their groups, so an admin signs in and manages users.
 */
@Injectable()
class UserStoreWithoutGroupLock extends TypeOrmBackOfficeUserStore {}
Object.defineProperty(UserStoreWithoutGroupLock.prototype, 'withGroupLock', { value: undefined });

/**
 * OWASP ASVS 4.0 7.1.x / 5.0 16.2.1 (an accurate audit trail) on a user store without groups: a write on a user that
 * a concurrent request deleted (after the route looked the user up) must answer 404 `not_found` and audit nothing,
 * as it does on the built-in stores (delete-user-twice-race.spec.ts), not 204 / 200 with an entry for a change it
 * did not make.
 */
describe('Writes on a deleted user with a user store that is no UserGroupStore', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let first: HttpClient;
  let second: HttpClient;
  let observer: pg.Client | undefined;
  const create = userFactory(() => ctx, 'delnogroups');
  /** A user in `groups`, given through the built-in (group-capable) store: the swapped one has no `setGroups` lock. */
  const make = async ({ groups }: { groups: string[] }): Promise<BackOfficeUser> => {
    const user = await create();
    await new TypeOrmBackOfficeUserStore(ctx.app.get(DataSource)).setGroups(user.id, groups);
    return (await ctx.userManager.findById(user.id))!;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { userStore: UserStoreWithoutGroupLock, rateLimits: { enabled: false } } });
    first = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    second = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
    if (dbKind() === 'postgres') observer = await connectLockObserver(db.url);
  });
  afterAll(async () => {
    await observer?.end();
    await ctx?.close();
    await db?.drop();
  });

  const auditOf = async (userId: string, event: string) =>
    ((await first.get(`/audit?userId=${userId}&take=50`)).body.items as Array<{ event: string }>).filter((e) => e.event === event);

  /** Runs the requests `start` makes (in that order) while a test transaction holds the user's row, then releases it. */
  const whileRowHeld = <T>(userId: string, waiters: number, send: () => Promise<T>): Promise<T> =>
    whileLockHeld(db.url, observer!, { hold: (tx) => tx.query('SELECT id FROM backoffice_user WHERE id = $1 FOR UPDATE', [userId]), send, waiters });

  it.skipIf(dbKind() !== 'postgres')(
    'OWASP ASVS 4.0 7.1 / 5.0 16.2.1: DELETE /users/:id sent twice at once deletes once: one 204, one 404 not_found, one backoffice.user.deleted entry',
    async () => {
      const target = await make({ groups: ['editor'] });
      const results = await whileRowHeld(target.id, 2, () =>
        Promise.all([first.request('DELETE', `/users/${target.id}`), second.request('DELETE', `/users/${target.id}`)]),
      );
      expect(results.map((r) => r.status).sort()).toEqual([204, 404]);
      const refused = results.find((r) => r.status !== 204)!;
      expectClientError(refused, 404);
      expect(refused.body.code).toBe('not_found');
      expect(await ctx.userManager.findById(target.id)).toBeNull();
      expect(await auditOf(target.id, BackOfficeEvents.Deleted)).toHaveLength(1);
    },
  );

  it.skipIf(dbKind() !== 'postgres')(
    'OWASP ASVS 4.0 7.1 / 5.0 16.2.1: a disable that waited for a concurrent DELETE /users/:id answers 404 not_found and audits no disable',
    async () => {
      const target = await make({ groups: ['editor'] });
      const [deleted, disabled] = await whileRowHeld(target.id, 2, async () => {
        const deletion = first.request('DELETE', `/users/${target.id}`);
        await lockWaitersReach(observer!, 1);
        const disable = second.post(`/users/${target.id}/disable`, {});
        return Promise.all([deletion, disable]);
      });
      expect(deleted.status, deleted.text).toBe(204);
      expectClientError(disabled, 404);
      expect(disabled.body.code).toBe('not_found');
      expect(await auditOf(target.id, BackOfficeEvents.Deleted)).toHaveLength(1);
      expect(await auditOf(target.id, BackOfficeEvents.Disabled)).toHaveLength(0);
    },
  );

  it('OWASP ASVS 4.0 7.1 / 5.0 16.2.1: DELETE /users/:id after the user was deleted answers 404 not_found, one backoffice.user.deleted entry', async () => {
    const target = await make({ groups: ['editor'] });
    expect((await first.request('DELETE', `/users/${target.id}`)).status).toBe(204);
    const again = await second.request('DELETE', `/users/${target.id}`);
    expectClientError(again, 404);
    expect(again.body.code).toBe('not_found');
    expect(await auditOf(target.id, BackOfficeEvents.Deleted)).toHaveLength(1);
  });

  it('OWASP ASVS 4.0 7.1 / 5.0 16.2.1: the manager\'s writes on a copy of a user deleted meanwhile answer not_found', async () => {
    const target = await make({ groups: ['editor'] });
    const stale: BackOfficeUser = { ...target };
    const authorize = { authorize: () => undefined };
    expect((await ctx.userManager.deleteUser({ ...stale })).succeeded).toBe(true);
    const outcomes = {
      deleteUser: (await ctx.userManager.deleteUser({ ...stale })).errors[0]?.code,
      disable: (await ctx.userManager.setApproved({ ...stale }, false, {}, authorize)).errors[0]?.code,
      enable: (await ctx.userManager.setApproved({ ...stale }, true, {}, authorize)).errors[0]?.code,
      unlock: (await ctx.userManager.setLockoutEnd({ ...stale }, null, authorize)).errors[0]?.code,
      rename: (await ctx.userManager.changeName({ ...stale }, 'Renamed', authorize)).errors[0]?.code,
      authorizeAsStored: (await ctx.userManager.authorizeAsStored({ ...stale }, () => undefined)).errors[0]?.code,
    };
    expect(outcomes).toEqual({ deleteUser: 'not_found', disable: 'not_found', enable: 'not_found', unlock: 'not_found', rename: 'not_found', authorizeAsStored: 'not_found' });
  });
});
