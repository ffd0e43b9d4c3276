import { vi } from 'vitest';
import { BackOfficeBackgroundTasks, TypeOrmBackOfficeUserStore } from '../../src/backoffice-identity/index.js';
import type { UserTokenHandoverStore } from '../../src/backoffice-identity/users/stores/user-store.interface.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { MigrationTestDatabase } from '../support/migration-harness.js';
import { statementsSentDuring } from '../support/sent-statements.js';
import { linkParams, TestSmtpServer } from '../support/smtp.js';

/**
 * Two requests for one user's link meet (OWASP ASVS 4.0 2.5.x / 5.0 6.4.x): the relay holds the first request's email
 * (its answer to DATA) while the second's is accepted and handed over, then accepts the first. The email the relay
 * accepted last is the newest one the user gets: its link must be the live one, the other refused, and no request
 * mails more than once (the per-address limits count requests: OWASP ASVS 4.0 2.2.1, no mail bombing). Deterministic:
 * the order is set by the hold, not by timing.
 */
describe('Link requests that meet: the link in the email accepted last is the live one', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'lastaccepted');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();

  /** Resolves once `count` hand-overs (`keepOnlyToken`) have finished since the call. */
  function handOvers(count: number): { done: Promise<void>; restore(): void } {
    const store = ctx.userManager.getTokenStore() as unknown as UserTokenHandoverStore;
    const original = store.keepOnlyToken.bind(store);
    let finished = 0;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const spy = vi.spyOn(store, 'keepOnlyToken').mockImplementation(async (...args) => {
      try {
        return await original(...args);
      } finally {
        if (++finished === count) resolve();
      }
    });
    return { done, restore: () => spy.mockRestore() };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await new TestSmtpServer().start();
    ctx = await createIdentityApp(db, { identity: { email: { smtpUrl: smtp.url }, publicUrl: 'https://cms.example.com' } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
  });
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 2.5.x: two forgot-password requests, the first one\'s email held by the relay: the email accepted last resets the password, the other link is refused, two emails in all', async () => {
    const user = await make();
    const held = smtp.holdNext();
    const second = handOvers(1);
    try {
      expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: user.email })).status).toBe(202);
      await held.reached;
      expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: user.email })).status).toBe(202);
      await second.done; // the second request's email was accepted and it handed over, the first's still held
    } finally {
      held.release();
      second.restore();
    }
    await drain();
    const [earlier, last] = smtp.messagesTo(user.email).map((m) => linkParams(m.text!, 'reset-password'));
    expect(smtp.countTo(user.email)).toBe(2);
    const refused = await new HttpClient(ctx.url).post('/auth/reset-password', { userId: earlier.userId, token: earlier.token, newPassword: 'the older email worked 42' });
    const reset = await new HttpClient(ctx.url).post('/auth/reset-password', { userId: last.userId, token: last.token, newPassword: 'the newest email worked 42' });
    expect({ last: reset.status, earlier: refused.status }, reset.text).toEqual({ last: 200, earlier: 400 });
    expect((await new HttpClient(ctx.url).login(user.email, 'the newest email worked 42')).status).toBe(200);
  });

  it('OWASP ASVS 4.0 2.5.x: two invite resends, the first one\'s email held by the relay: the email accepted last accepts the invite, the other link is refused, one email per resend', async () => {
    const to = 'lastaccepted-invitee@example.com';
    const invited = await admin.post('/users/invite', { email: to, name: 'Invitee', groups: ['editor'] });
    expect(invited.status, invited.text).toBe(201);
    await smtp.waitFor(to);
    const userId = invited.body.user.id as string;
    const held = smtp.holdNext();
    const second = handOvers(1);
    let first: Promise<{ status: number }> | undefined;
    try {
      first = admin.post(`/users/${userId}/resend-invite`);
      await held.reached;
      expect((await admin.post(`/users/${userId}/resend-invite`)).status).toBe(202);
      await second.done;
    } finally {
      held.release();
      second.restore();
    }
    expect((await first).status).toBe(202);
    const links = smtp.messagesTo(to).map((m) => linkParams(m.text!, 'accept-invite'));
    expect(links).toHaveLength(3); // the invite and one per resend
    const [invite, earlier, last] = links;
    const refusedEarlier = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: earlier.userId, token: earlier.token, password: 'the older invite worked 42' });
    const refusedInvite = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: invite.userId, token: invite.token, password: 'the first invite worked 42' });
    const accepted = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: last.userId, token: last.token, password: 'the newest invite worked 42' });
    expect({ last: accepted.status, earlier: refusedEarlier.status, invite: refusedInvite.status }, accepted.text).toEqual({ last: 200, earlier: 400, invite: 400 });
  });
});

/**
 * The new code on a database without migration 1732640000000 (`hand_over_pending`): links are stored and handed over as
 * before it (a hand-over voids the links still being mailed), reset and invite links keep working.
 */
describe('Migration 1732640000000 not applied: link requests work as before it', () => {
  let migrated: MigrationTestDatabase;
  let smtp: TestSmtpServer;
  let ctx: IdentityApp | undefined;
  let userEmail: string;

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async (seed) => {
      userEmail = (await seed.userManager.createUser({ email: 'unmigrated-link@example.com', name: 'Unmigrated', password: 'an old passphrase 42' })).value!.email;
    });
    await migrated.undoFrom(1732640000000);
    smtp = await new TestSmtpServer().start();
    ctx = await migrated.app({ identity: { email: { smtpUrl: smtp.url }, publicUrl: 'https://cms.example.com' } });
  }, 180_000);
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await migrated?.close();
  });

  it('two forgot-password requests one after the other: the second link resets the password, the first is refused; the missing column costs one failed statement, then none', async () => {
    const sent = await statementsSentDuring(async () => {
      for (let i = 1; i <= 2; i++) {
        expect((await new HttpClient(ctx!.url).post('/auth/forgot-password', { email: userEmail })).status).toBe(202);
        await ctx!.app.get(BackOfficeBackgroundTasks).drain();
        expect(smtp.countTo(userEmail)).toBe(i);
      }
    });
    // The first statement naming hand_over_pending failed (42703, an ERROR in PostgreSQL's log); the store remembers it.
    expect(sent.filter((s) => s.text.includes('hand_over_pending')).map((s) => s.text.slice(0, 40))).toEqual(['INSERT INTO backoffice_user_token (user_']);
    const [first, second] = smtp.messagesTo(userEmail).map((m) => linkParams(m.text!, 'reset-password'));
    const refused = await new HttpClient(ctx!.url).post('/auth/reset-password', { userId: first.userId, token: first.token, newPassword: 'the first email worked 42' });
    const reset = await new HttpClient(ctx!.url).post('/auth/reset-password', { userId: second.userId, token: second.token, newPassword: 'the second email worked 42' });
    expect({ second: reset.status, first: refused.status }, reset.text).toEqual({ second: 200, first: 400 });
  });

  it('a link stored and handed over inside a transaction already open (a new store, the column not known missing yet): the failed try does not abort it (no 25P02)', async () => {
    const store = new TypeOrmBackOfficeUserStore(migrated.source);
    const [{ id }] = (await migrated.source.query(`SELECT id FROM backoffice_user WHERE email = $1`, [userEmail])) as { id: string }[];
    const now = new Date();
    const later = new Date(now.getTime() + 3_600_000);
    const outcome = await store.transaction(async (tx) => {
      const added = await tx.addToken(id, 'password_reset', 'a'.repeat(64), later, now);
      const kept = await tx.keepOnlyToken(id, 'password_reset', 'a'.repeat(64), now);
      return { added, kept, live: await tx.isTokenLive(id, 'password_reset', 'a'.repeat(64), now) };
    });
    expect(outcome).toEqual({ added: true, kept: true, live: true });
  });
});
