import { vi } from 'vitest';
import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import type { UserTokenHandoverStore } from '../../src/backoffice-identity/users/stores/user-store.interface.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { linkParams, TestSmtpServer } from '../support/smtp.js';

const REQUESTS = 6;

/**
 * Holds the store's hand-overs (`keepOnlyToken`, which a request calls once its link was mailed) until `count` of them
 * wait, then lets them run one after the other in the order they came: the first one mailed is handed over first. Later
 * calls run at once. Without the hold the interleaving is left to chance (the mails and the hand-overs of concurrent
 * requests overlap in any order); with it, it is the one that strands the newest email.
 */
function holdHandOvers(store: UserTokenHandoverStore, count: number): { restore(): void } {
  const original = store.keepOnlyToken.bind(store);
  let arrived = 0;
  let gather!: () => void;
  const gathered = new Promise<void>((resolve) => (gather = resolve));
  const timeout = setTimeout(gather, 20_000); // never hang the suite: the assertions tell what went wrong
  let turn: Promise<unknown> = Promise.resolve();
  const spy = vi.spyOn(store, 'keepOnlyToken').mockImplementation(async (...args) => {
    if (arrived >= count) return original(...args);
    if (++arrived === count) gather();
    await gathered;
    const mine = turn.then(() => original(...args));
    turn = mine.catch(() => undefined);
    return mine;
  });
  return {
    restore: () => {
      clearTimeout(timeout);
      spy.mockRestore();
    },
  };
}

/**
 * Several requests for one user's link at once (forgot-password, or an admin's invite resends): each stores a link beside
 * the live one, mails it, then hands over (`keepOnlyToken`: the others are voided while this one is still live). Exactly
 * one link stayed live, but the hand-over's answer was ignored: a request whose link another hand-over had voided after
 * it was mailed left it so, and when that email was the last one to arrive the user, opening the newest email, got
 * "invalid link" (OWASP ASVS 4.0 2.5.x / 5.0 6.4.x: one live single-use link, the one the user is told to use).
 */
describe('Concurrent link requests for one user: the newest email carries the live link', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'lastlink');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  const tokenStore = () => ctx.userManager.getTokenStore() as unknown as UserTokenHandoverStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await new TestSmtpServer().start();
    ctx = await createIdentityApp(db, { identity: { email: { smtpUrl: smtp.url }, rateLimits: { enabled: false }, publicUrl: 'https://cms.example.com' } });
    admin = await signedInClient(ctx, (await make({ groups: ['admin'] })).email);
  });
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await db?.drop();
  });

  it(`OWASP ASVS 4.0 2.5.x: ${REQUESTS} forgot-password requests at once all answer 202; the last reset email received links to the one live reset link`, async () => {
    const user = await make();
    const held = holdHandOvers(tokenStore(), REQUESTS);
    try {
      const answers = await Promise.all(Array.from({ length: REQUESTS }, () => new HttpClient(ctx.url).post('/auth/forgot-password', { email: user.email })));
      expect(answers.map((a) => a.status)).toEqual(Array(REQUESTS).fill(202));
      await drain();
    } finally {
      held.restore();
    }
    const links = smtp.messagesTo(user.email).map((m) => linkParams(m.text!, 'reset-password'));
    expect(links.length).toBeGreaterThanOrEqual(REQUESTS);
    const stored = (await ctx.userManager.findById(user.id))!;
    const live = await Promise.all(links.map((l) => ctx.userManager.verifyUserToken(stored, 'password_reset', l.token)));
    expect({ lastMailedLive: live.at(-1), liveLinks: live.filter(Boolean).length }).toEqual({ lastMailedLive: true, liveLinks: 1 });
    const last = links.at(-1)!;
    const reset = await new HttpClient(ctx.url).post('/auth/reset-password', { userId: last.userId, token: last.token, newPassword: 'the newest email worked 42' });
    expect(reset.status, reset.text).toBe(200);
    expect((await new HttpClient(ctx.url).login(user.email, 'the newest email worked 42')).status).toBe(200);
  });

  it(`OWASP ASVS 4.0 2.5.x: ${REQUESTS} invite resends at once all answer 202; the last invite email received links to the one live invite link`, async () => {
    const to = 'lastlink-invitee@example.com';
    const invited = await admin.post('/users/invite', { email: to, name: 'Invitee', groups: ['editor'] });
    expect(invited.status, invited.text).toBe(201);
    await smtp.waitFor(to);
    const userId = invited.body.user.id as string;
    const held = holdHandOvers(tokenStore(), REQUESTS);
    let answers;
    try {
      answers = await Promise.all(Array.from({ length: REQUESTS }, () => admin.post(`/users/${userId}/resend-invite`)));
    } finally {
      held.restore();
    }
    expect(answers.map((a) => a.status)).toEqual(Array(REQUESTS).fill(202));
    const links = smtp.messagesTo(to).map((m) => linkParams(m.text!, 'accept-invite'));
    expect(links.length).toBeGreaterThanOrEqual(REQUESTS + 1);
    const stored = (await ctx.userManager.findById(userId))!;
    const live = await Promise.all(links.map((l) => ctx.userManager.verifyUserToken(stored, 'invite', l.token)));
    expect({ lastMailedLive: live.at(-1), liveLinks: live.filter(Boolean).length }).toEqual({ lastMailedLive: true, liveLinks: 1 });
    const last = links.at(-1)!;
    const accepted = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId: last.userId, token: last.token, password: 'the newest invite worked 42' });
    expect(accepted.status, accepted.text).toBe(200);
  });
});
