import pg from 'pg';
import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { Mailbox } from '../support/mailbox.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { lockWaiters, until } from '../support/lock-waits.js';

/**
 * A forgot-password request reads the user (enabled: a link is due), then issues the link. A disable that commits in
 * between voids the links the user has then, but not the one issued after it: the disabled user kept a live reset
 * link, which worked again once an admin enabled the user. The issuance locks the user's row first and checks under
 * that lock that the user may still get a link. The interleaving is fixed with a lock the test holds (no sleeps):
 * the audit table, which the forgot-password request writes between its read and the link, and the disable after
 * its commit.
 */
describe.skipIf(dbKind() !== 'postgres')('a forgot-password request racing a disable', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'fpdisable');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });


  it('OWASP ASVS 4.0 2.5.x, 3.3.1: a reset link requested while the user is being disabled is never left live for the disabled user (nor emailed)', async () => {
    const boss = await make({ groups: ['admin'] });
    const user = await make();
    const admin = await signedInClient(ctx, boss.email);
    const mailsBefore = Mailbox.messages.filter((m) => m.to === user.email && m.type === 'PasswordReset').length;

    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    const waits = () => lockWaiters(observer);
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE backoffice_audit_entry IN SHARE MODE');
      // 1. forgot-password: answered at once; in the background it has read the user (enabled) and waits at its audit entry.
      expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: user.email })).status).toBe(202);
      await until(async () => (await waits()) >= 1);
      // 2. The disable commits (row, stamp, links voided), then waits at its own audit entry.
      const disabled = admin.post(`/users/${user.id}/disable`, {});
      await until(async () => (await waits()) >= 2);
      const committed = await observer.query('SELECT is_approved FROM backoffice_user WHERE id = $1', [user.id]);
      expect(committed.rows[0].is_approved).toBe(false);
      await blocker.query('COMMIT');
      expect((await disabled).status).toBe(200);
      await ctx.app.get(BackOfficeBackgroundTasks).drain();

      const live = await observer.query(
        `SELECT count(*)::int AS n FROM backoffice_user_token WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL`,
        [user.id],
      );
      const mailed = Mailbox.messages.filter((m) => m.to === user.email && m.type === 'PasswordReset').length - mailsBefore;
      expect({ liveResetLinks: live.rows[0].n, resetEmails: mailed }).toEqual({ liveResetLinks: 0, resetEmails: 0 });
    } finally {
      await blocker.end().catch(() => undefined);
      await observer.end();
    }
  });
});
