import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import type { TestingModuleBuilder } from '@nestjs/testing';
import {
  BACKOFFICE_USER_MANAGER,
  BackOfficeBackgroundTasks,
  BackOfficeEvents,
  BackOfficeUserManager,
  type BackOfficeNotification,
  type BackOfficeUser,
} from '../../src/backoffice-identity/index.js';
import type { TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { startMailingApp } from '../support/mailing-app.js';
import { linkParams, type TestSmtpServer } from '../support/smtp.js';

/**
 * An admin moves an account to a new address (`PUT /users/:id`, e.g. away from a mailbox that is no longer the
 * owner's) while a reset link is being issued for it: the link was addressed to the old mailbox on an earlier read.
 * Stored after the move committed, it is not voided by it, so it must not be mailed to the old address (or must not
 * work). The race is made deterministic by a listener of the notification published between the read and the link.
 * OWASP ASVS 4.0 2.5.6 (a recovery link reaches only the account's owner), 1.11.3 (no check-then-act race).
 */
@Injectable()
class MoveAccountWhileIssuing {
  /** The user id to move, the event to move it on, and the admin's client: armed by a test, used once. */
  static armed: { userId: string; event: string; newEmail: string; admin: HttpClient } | null = null;

  private async move(event: string, notification: BackOfficeNotification) {
    const armed = MoveAccountWhileIssuing.armed;
    if (!armed || armed.event !== event || notification.affectedUserId !== armed.userId) return;
    MoveAccountWhileIssuing.armed = null;
    const moved = await armed.admin.request('PUT', `/users/${armed.userId}`, { body: { email: armed.newEmail } });
    expect(moved.status, moved.text).toBe(200);
  }

  @OnEvent(BackOfficeEvents.ForgotPasswordRequested, { async: true, promisify: true })
  onForgot(notification: BackOfficeNotification) {
    return this.move(BackOfficeEvents.ForgotPasswordRequested, notification);
  }

  @OnEvent(BackOfficeEvents.PasswordResetForced, { async: true, promisify: true })
  onForced(notification: BackOfficeNotification) {
    return this.move(BackOfficeEvents.PasswordResetForced, notification);
  }
}

/**
 * A host's manager that caches `findById` for 30 seconds, as copies (as a cache outside the process, e.g. Redis,
 * answers): a re-read of the user through it after the link is stored answers the address the caller read, not the
 * one the move committed.
 */
class CachingUserManager extends BackOfficeUserManager {
  private readonly cached = new Map<string, { user: BackOfficeUser | null; at: number }>();
  override async findById(id: string): Promise<BackOfficeUser | null> {
    let hit = this.cached.get(id);
    if (!hit || Date.now() - hit.at >= 30_000) {
      hit = { user: await super.findById(id), at: Date.now() };
      this.cached.set(id, hit);
    }
    return hit.user && structuredClone(hit.user);
  }
}

describe.each<{ manager: string; override?: (builder: TestingModuleBuilder) => TestingModuleBuilder }>([
  { manager: 'the shipped manager' },
  { manager: 'a host manager caching findById', override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(CachingUserManager) },
])('A reset link issued while an admin moves the account to a new address, with $manager (OWASP ASVS 4.0 2.5.6)', ({ override }) => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'issuemove');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  const mailsTo = (to: string) => smtp.messagesTo(to);

  beforeAll(async () => {
    ({ db, smtp, ctx } = await startMailingApp({ providers: [MoveAccountWhileIssuing], override }));
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
  });
  afterEach(() => {
    MoveAccountWhileIssuing.armed = null;
  });
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await db?.drop();
  });

  /** Every reset link the old mailbox got is refused; the account keeps its password. */
  async function expectOldMailboxHoldsNoWorkingLink(oldEmail: string, newEmail: string) {
    for (const mail of mailsTo(oldEmail).filter((m) => m.subject === 'Reset your back-office password')) {
      const link = linkParams(mail.text!, 'reset-password');
      const used = await new HttpClient(ctx.url).post('/auth/reset-password', { userId: link.userId, token: link.token, newPassword: 'the old mailbox takes over' });
      expect([used.status, used.body.code]).toEqual([400, 'invalid_token']);
    }
    expect((await new HttpClient(ctx.url).login(newEmail, 'the old mailbox takes over')).status).toBe(401);
  }

  it('forgot-password for the old address, the account moved before the link is stored: the old mailbox gets no working link', async () => {
    const user = await make({ email: 'issuemove-forgot-old@example.com' });
    MoveAccountWhileIssuing.armed = { userId: user.id, event: BackOfficeEvents.ForgotPasswordRequested, newEmail: 'issuemove-forgot-new@example.com', admin };
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: 'issuemove-forgot-old@example.com' })).status).toBe(202);
    await drain();
    expect(MoveAccountWhileIssuing.armed).toBeNull(); // the move ran in the window
    await expectOldMailboxHoldsNoWorkingLink('issuemove-forgot-old@example.com', 'issuemove-forgot-new@example.com');
    // The owner, at the new address, gets a working link as usual.
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: 'issuemove-forgot-new@example.com' })).status).toBe(202);
    await drain();
    const link = linkParams(mailsTo('issuemove-forgot-new@example.com').at(-1)!.text!, 'reset-password');
    expect((await new HttpClient(ctx.url).post('/auth/reset-password', { userId: link.userId, token: link.token, newPassword: 'the owner resets it' })).status).toBe(200);
  });

  it('an admin\'s forced reset, the account moved before the link is stored: the old mailbox gets no working link', async () => {
    const user = await make({ email: 'issuemove-forced-old@example.com' });
    MoveAccountWhileIssuing.armed = { userId: user.id, event: BackOfficeEvents.PasswordResetForced, newEmail: 'issuemove-forced-new@example.com', admin };
    const forced = await admin.post(`/users/${user.id}/force-password-reset`);
    expect(forced.status, forced.text).toBeLessThan(300);
    await drain();
    expect(MoveAccountWhileIssuing.armed).toBeNull();
    await expectOldMailboxHoldsNoWorkingLink('issuemove-forced-old@example.com', 'issuemove-forced-new@example.com');
  });
});
