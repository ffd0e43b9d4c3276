import pg from 'pg';
import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { lockWaiters, until } from '../support/lock-waits.js';
import { Mailbox } from '../support/mailbox.js';
import { linkParams } from '../support/smtp.js';

/**
 * An attacker signed in as the owner asks to move the account to their own mailbox (`POST /auth/me/email`: 202 at
 * once, the link is stored and mailed in the background) while the owner changes the password to lock them out.
 * The password change ends the attacker's session and voids the email-change links the user has (OWASP ASVS 4.0
 * 3.3.3, V2.5: a password change ends what the old credential started): a link stored after it commits must not
 * be left live either, or the attacker confirms it and takes the account over through its new address.
 * The interleaving is fixed with a row lock the test holds (no sleeps): the password change waits for the user's row
 * first, the background link write after it.
 */
describe.skipIf(dbKind() !== 'postgres')('An email-change request racing a password change', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'ecpwrace');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 3.3.3, 2.5.x: an email-change link whose request was accepted before the owner changed the password is not left live (nor mailed) once the change committed', async () => {
    const user = await make({ email: 'ecpwrace-owner@example.com' });
    const attackerMailbox = 'ecpwrace-attacker@evil.example';
    const attacker = await signedInClient(ctx, user.email);
    const owner = await signedInClient(ctx, user.email);
    const blocker = new pg.Client({ connectionString: db.url });
    const observer = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await observer.connect();
    const waits = () => lockWaiters(observer);
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM backoffice_user WHERE id = $1 FOR SHARE', [user.id]);
      // The owner's password change waits for the user's row (first in line)...
      const changed = owner.post('/auth/change-password', { currentPassword: TEST_PASSWORD, newPassword: 'owner locks the attacker out 99' });
      await until(async () => (await waits()) >= 1);
      // ...the attacker's request is accepted meanwhile (their session still works) and its link waits behind it.
      const requested = await attacker.post('/auth/me/email', { newEmail: attackerMailbox });
      expect(requested.status, requested.text).toBe(202);
      await until(async () => (await waits()) >= 2);
      await blocker.query('COMMIT');
      expect((await changed).status).toBe(200);
      await drain();
    } finally {
      await blocker.end().catch(() => undefined);
    }
    try {
      expect((await attacker.get('/auth/me')).status).toBe(401); // the attacker's session ended with the change
      const live = await observer.query(`SELECT count(*)::int AS n FROM backoffice_user_token WHERE user_id = $1 AND purpose = 'change_email' AND used_at IS NULL`, [user.id]);
      const mailed = Mailbox.messages.filter((m) => m.to === attackerMailbox && m.type === 'EmailChangeConfirm');
      // Any link that did go out must not work.
      const confirmations = [];
      for (const mail of mailed) {
        const link = linkParams(mail.text, 'confirm-email');
        confirmations.push((await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: link.userId, token: link.token })).status);
      }
      expect({ liveLinks: live.rows[0].n, confirmEmails: mailed.length, confirmations }).toEqual({ liveLinks: 0, confirmEmails: 0, confirmations: [] });
      expect((await ctx.userManager.findById(user.id))!.email).toBe('ecpwrace-owner@example.com');
    } finally {
      await observer.end();
    }
  });
});
