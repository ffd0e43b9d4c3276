import pg from 'pg';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { lockWaiters, until } from '../support/lock-waits.js';
import { Mailbox } from '../support/mailbox.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { linkParams } from '../support/smtp.js';

/**
 * An admin resends an invite (`POST /users/:id/resend-invite`) while the invitee accepts it. The route reads the
 * invitee (still waiting: a resend is due), then stores the new link; an acceptance that commits in between makes
 * the user no longer an invitee. The resend must then answer as for any user no longer waiting for an invite (409
 * `not_invited`), store no link and send no "accept the invitation" email, and the audit trail must not record an
 * invite of an active account (OWASP ASVS 4.0 1.11.3 no check-then-act race, 7.1.3 accurate audit, 2.5.x).
 * The interleaving is fixed with a row lock the test holds (no sleeps): the acceptance waits for the invitee's row
 * first, the resend's link write after it.
 */
describe.skipIf(dbKind() !== 'postgres')('An invite resend racing the invitee\'s acceptance', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'resendrace');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 1.11.3, 7.1.3: a resend whose link is written after the acceptance committed answers 409 not_invited, leaves no live invite link, sends no invite email and audits no invite', async () => {
    const to = 'resendrace-invitee@example.com';
    const invited = await admin.post('/users/invite', { email: to, name: 'Invitee', groups: ['editor'] });
    expect(invited.status, invited.text).toBe(201);
    const userId = invited.body.user.id as string;
    const link = linkParams(Mailbox.last(to, 'UserInvite')!.text, 'accept-invite');
    const invitesBefore = Mailbox.messages.filter((m) => m.to === to && m.type === 'UserInvite').length;
    const recorder = NotificationRecorder.attach(ctx.app);
    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    const waits = () => lockWaiters(observer);
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM backoffice_user WHERE id = $1 FOR SHARE', [userId]);
      // The acceptance waits for the invitee's row (first in line)...
      const accepted = new HttpClient(ctx.url).post('/auth/invite/accept', { userId: link.userId, token: link.token, password: 'the invitee chose this 42' });
      await until(async () => (await waits()) >= 1);
      // ...the resend read the invitee while still invited, and its new link waits behind the acceptance.
      const resent = admin.post(`/users/${userId}/resend-invite`);
      await until(async () => (await waits()) >= 2);
      await blocker.query('COMMIT');
      expect((await accepted).status).toBe(200);
      const response = await resent;
      const live = await observer.query(`SELECT count(*)::int AS n FROM backoffice_user_token WHERE user_id = $1 AND purpose = 'invite' AND used_at IS NULL`, [userId]);
      const invitesSent = Mailbox.messages.filter((m) => m.to === to && m.type === 'UserInvite').length - invitesBefore;
      expect({ status: response.status, code: response.body?.code, liveInviteLinks: live.rows[0].n, invitesSent, invitedAudited: recorder.named('backoffice.user.invited', userId).length }).toEqual({
        status: 409,
        code: 'not_invited',
        liveInviteLinks: 0,
        invitesSent: 0,
        invitedAudited: 0,
      });
      expect(response.body).toMatchObject({ statusCode: 409, code: 'not_invited' });
      expect(typeof response.body.message).toBe('string');
      expect((await ctx.userManager.findById(userId))!.passwordHash).not.toBeNull();
    } finally {
      recorder.detach();
      await blocker.end().catch(() => undefined);
      await observer.end();
    }
  });
});
