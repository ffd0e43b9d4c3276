import pg from 'pg';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { Mailbox } from '../support/mailbox.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import type { HttpClient } from '../support/http-client.js';
import { lockWaiters, until } from '../support/lock-waits.js';
import { NotificationRecorder } from '../support/notification-recorder.js';

/**
 * Link-issuing admin routes racing a disable. Each route reads the user (enabled: a link is due), writes an audit
 * entry, then issues the link. A disable that commits in between voids the links the user has then, not one
 * issued after it. The interleaving is fixed with a lock the test holds (no sleeps): the audit table, which the
 * route writes between its read and the link, and the disable after its commit.
 */
describe.skipIf(dbKind() !== 'postgres')('link-issuing admin routes racing a disable', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'linkrace');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
    const boss = await make({ groups: ['admin'] });
    admin = await signedInClient(ctx, boss.email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });


  /** Starts `request`, lets it block at its audit entry, commits a disable of `userId` meanwhile, then lets both finish. */
  async function raceWithDisable(userId: string, request: () => Promise<{ status: number; body: any; text: string }>) {
    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    const waits = () => lockWaiters(observer);
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE backoffice_audit_entry IN SHARE MODE');
      const answer = request();
      await until(async () => (await waits()) >= 1);
      const disabled = admin.post(`/users/${userId}/disable`, {});
      await until(async () => (await waits()) >= 2);
      expect((await observer.query('SELECT is_approved FROM backoffice_user WHERE id = $1', [userId])).rows[0].is_approved).toBe(false);
      await blocker.query('COMMIT');
      expect((await disabled).status).toBe(200);
      const response = await answer;
      const live = await observer.query(`SELECT purpose, count(*)::int AS n FROM backoffice_user_token WHERE user_id = $1 AND used_at IS NULL GROUP BY purpose`, [userId]);
      return { response, liveLinks: Object.fromEntries(live.rows.map((r) => [r.purpose, r.n])) };
    } finally {
      await blocker.end().catch(() => undefined);
      await observer.end();
    }
  }

  it('OWASP ASVS 4.0 2.5.x, 3.3.1: an admin\'s forced password reset racing a disable leaves the disabled user no live reset link and sends no email', async () => {
    const user = await make({ groups: ['editor'] });
    const mailsBefore = Mailbox.messages.filter((m) => m.to === user.email && m.type === 'PasswordReset').length;
    const { response, liveLinks } = await raceWithDisable(user.id, () => admin.post(`/users/${user.id}/force-password-reset`));
    const mailed = Mailbox.messages.filter((m) => m.to === user.email && m.type === 'PasswordReset').length - mailsBefore;
    expect({ liveLinks, resetEmails: mailed }).toEqual({ liveLinks: {}, resetEmails: 0 });
    // The password was removed and the sessions ended before the disable: that happened; the user is disabled now.
    expect(response.status, response.text).toBe(200);
    expect(response.body.state).toBe('disabled');
    expect((await ctx.userManager.findById(user.id))!.passwordHash).toBeNull();
  });

  /**
   * Holds a disable of `userId` open after it wrote the user's row (its link voiding waits for the test's lock on the
   * link table), starts `request`, which read the user before (enabled) and waits for the row at its link, then lets
   * the disable commit first: the request's link is refused under the row lock.
   */
  async function raceWithOpenDisable(userId: string, request: () => Promise<{ status: number; body: any; text: string }>) {
    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    const waits = () => lockWaiters(observer);
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE backoffice_user_token IN SHARE MODE');
      const disabled = admin.post(`/users/${userId}/disable`, {});
      await until(async () => (await waits()) >= 1);
      const answer = request();
      await until(async () => (await waits()) >= 2);
      await blocker.query('COMMIT');
      expect((await disabled).status).toBe(200);
      const response = await answer;
      const live = await observer.query(`SELECT purpose, count(*)::int AS n FROM backoffice_user_token WHERE user_id = $1 AND used_at IS NULL GROUP BY purpose`, [userId]);
      return { response, liveLinks: Object.fromEntries(live.rows.map((r) => [r.purpose, r.n])) };
    } finally {
      await blocker.end().catch(() => undefined);
      await observer.end();
    }
  }

  it('OWASP ASVS 4.0 2.5.x, 7.1.3: an invite resend racing a disable answers 409 not_invited (no email was attempted; not 502 email_failed), leaves no live invite link and audits no invite (backoffice.user.invited)', async () => {
    const invited = await admin.post('/users/invite', { email: 'linkrace-invitee@example.com', name: 'Invitee', groups: ['editor'] });
    expect(invited.status, invited.text).toBe(201);
    const userId = invited.body.user.id as string;
    const mailsBefore = Mailbox.messages.filter((m) => m.to === 'linkrace-invitee@example.com' && m.type === 'UserInvite').length;
    const recorder = NotificationRecorder.attach(ctx.app);
    try {
      const { response, liveLinks } = await raceWithOpenDisable(userId, () => admin.post(`/users/${userId}/resend-invite`));
      expect([response.status, response.body.code]).toEqual([409, 'not_invited']);
      expect(response.body).toMatchObject({ statusCode: 409, code: 'not_invited' });
      expect(typeof response.body.message).toBe('string');
      expect(liveLinks).toEqual({});
      expect(Mailbox.messages.filter((m) => m.to === 'linkrace-invitee@example.com' && m.type === 'UserInvite').length - mailsBefore).toBe(0);
      // The audit trail must not say "invited" for a resend that stored no link and sent nothing.
      expect(recorder.named('backoffice.user.invited', userId)).toHaveLength(0);
      expect(recorder.named('backoffice.user.disabled', userId)).toHaveLength(1);
    } finally {
      recorder.detach();
    }
  });
});
