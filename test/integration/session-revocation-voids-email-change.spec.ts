import { BACKOFFICE_USER_MANAGER, BackOfficeBackgroundTasks, BackOfficeUserManager, type BackOfficeUser, type UserTokenStore } from '../../src/backoffice-identity/index.js';
import { Mailbox } from '../support/mailbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { linkParams } from '../support/smtp.js';

/**
 * A stolen session cookie (fresh enough for the step-up) asks to move the account to the thief's mailbox. The remedy
 * for a stolen cookie is ending the sessions: an admin's DELETE /users/:id/sessions, or the owner's "sign out
 * everywhere else" (DELETE /auth/sessions) or ending that one session (DELETE /auth/sessions/:id). The email-change
 * link the ended session asked for must end with it, as it does with a password change: confirmed afterwards (no
 * session needed), it moved the account's address to the thief, who then reset the password (OWASP ASVS 4.0 3.3.x, 2.5.x).
 */
/**
 * Holds the background half of an email change (its lookup of the new address, before the link is stored) until the
 * test lets it go: armed by a test for one new address, used once.
 */
class PausingUserManager extends BackOfficeUserManager {
  static armed: { email: string; reached: () => void; release: Promise<void> } | null = null;
  override async findByEmail(email: string): Promise<BackOfficeUser | null> {
    const armed = PausingUserManager.armed;
    if (armed && armed.email === email) {
      PausingUserManager.armed = null;
      armed.reached();
      await armed.release;
    }
    return super.findByEmail(email);
  }
}

describe('OWASP ASVS 4.0 3.3.x: ending the sessions voids a pending email-change link', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'revvoid');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  const lastMail = (to: string, type: string) => Mailbox.messages.filter((m) => m.to === to && m.type === type).at(-1)!;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false } },
      providers: [Mailbox],
      override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(PausingUserManager),
    });
    const boss = await make({ groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
  });
  afterEach(() => {
    PausingUserManager.armed = null;
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** The thief's session asks for a move to their mailbox; answers the thief's client and the link they received. */
  async function stolenSessionAsksForMove(email: string, thiefMailbox: string) {
    const user = await make({ email });
    const thief = new HttpClient(ctx.url);
    expect((await thief.login(email, TEST_PASSWORD)).status).toBe(200);
    expect((await thief.post('/auth/me/email', { newEmail: thiefMailbox })).status).toBe(202);
    await drain();
    return { user, thief, link: linkParams(lastMail(thiefMailbox, 'EmailChangeConfirm').text, 'confirm-email') };
  }

  async function expectLinkDead(link: { userId: string; token: string }, email: string) {
    const confirmed = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: link.userId, token: link.token });
    expect(confirmed.status, confirmed.text).toBe(400);
    expect(confirmed.body.code).toBe('invalid_token');
    expect((await ctx.userManager.findById(link.userId))!.email).toBe(email);
  }

  /** The user store's `voidTokens` throws once, for the next `change_email` void (a custom store failing). */
  function nextEmailChangeVoidThrows(): void {
    const store = ctx.userManager.store as UserTokenStore & object;
    const own = Object.prototype.hasOwnProperty.call(store, 'voidTokens');
    const real = store.voidTokens;
    store.voidTokens = async function (this: UserTokenStore, ...args: Parameters<UserTokenStore['voidTokens']>) {
      if (args[1] !== 'change_email') return real.apply(this, args);
      if (own) store.voidTokens = real;
      else delete (store as Partial<UserTokenStore>).voidTokens;
      throw new Error('custom store: voidTokens failed');
    };
  }

  async function revokedAudits(userId: string): Promise<number[]> {
    const audit = await admin.get(`/audit?userId=${userId}&event=backoffice.user.sessions.revoked`);
    expect(audit.status, audit.text).toBe(200);
    return (audit.body.items as Array<{ details?: { count?: number } }>).map((item) => item.details?.count ?? -1);
  }

  describe('OWASP ASVS 5.0 16.3.2 / 4.0 7.1.3: the sessions that ended are audited even when voiding the link throws (the request fails)', () => {
    it("an admin's DELETE /users/:id/sessions", async () => {
      const { user, thief } = await stolenSessionAsksForMove('revvoid-e@example.com', 'revvoid-thief-e@evil.example');
      nextEmailChangeVoidThrows();
      const revoked = await admin.request('DELETE', `/users/${user.id}/sessions`);
      expect((await thief.get('/auth/me')).status).toBe(401);
      expect({ status: revoked.status, audited: await revokedAudits(user.id) }).toEqual({ status: 500, audited: [1] });
    });

    it("the owner's DELETE /auth/sessions (sign out everywhere else)", async () => {
      const { user, thief } = await stolenSessionAsksForMove('revvoid-f@example.com', 'revvoid-thief-f@evil.example');
      const owner = new HttpClient(ctx.url);
      expect((await owner.login('revvoid-f@example.com', TEST_PASSWORD)).status).toBe(200);
      nextEmailChangeVoidThrows();
      const revoked = await owner.request('DELETE', '/auth/sessions');
      expect((await thief.get('/auth/me')).status).toBe(401);
      expect({ status: revoked.status, audited: await revokedAudits(user.id) }).toEqual({ status: 500, audited: [1] });
    });

    it("the owner's DELETE /auth/sessions/:id (that one session)", async () => {
      const { user, thief } = await stolenSessionAsksForMove('revvoid-g@example.com', 'revvoid-thief-g@evil.example');
      const owner = new HttpClient(ctx.url);
      expect((await owner.login('revvoid-g@example.com', TEST_PASSWORD)).status).toBe(200);
      const stolen = ((await owner.get('/auth/sessions')).body as Array<{ id: string; current: boolean }>).find((s) => !s.current)!;
      nextEmailChangeVoidThrows();
      const revoked = await owner.request('DELETE', `/auth/sessions/${stolen.id}`);
      expect((await thief.get('/auth/me')).status).toBe(401);
      expect({ status: revoked.status, audited: await revokedAudits(user.id) }).toEqual({ status: 500, audited: [1] });
    });
  });

  it("an admin's DELETE /users/:id/sessions", async () => {
    const { user, thief, link } = await stolenSessionAsksForMove('revvoid-a@example.com', 'revvoid-thief-a@evil.example');
    const revoked = await admin.request('DELETE', `/users/${user.id}/sessions`);
    expect(revoked.status, revoked.text).toBe(204);
    expect((await thief.get('/auth/me')).status).toBe(401);
    await expectLinkDead(link, 'revvoid-a@example.com');
  });

  it("the owner's DELETE /auth/sessions (sign out everywhere else)", async () => {
    const { thief, link } = await stolenSessionAsksForMove('revvoid-b@example.com', 'revvoid-thief-b@evil.example');
    const owner = new HttpClient(ctx.url);
    expect((await owner.login('revvoid-b@example.com', TEST_PASSWORD)).status).toBe(200);
    expect((await owner.request('DELETE', '/auth/sessions')).status).toBe(200);
    expect((await thief.get('/auth/me')).status).toBe(401);
    await expectLinkDead(link, 'revvoid-b@example.com');
  });

  it("the owner's DELETE /auth/sessions/:id (that one session)", async () => {
    const { thief, link } = await stolenSessionAsksForMove('revvoid-c@example.com', 'revvoid-thief-c@evil.example');
    const owner = new HttpClient(ctx.url);
    expect((await owner.login('revvoid-c@example.com', TEST_PASSWORD)).status).toBe(200);
    const sessions = (await owner.get('/auth/sessions')).body as Array<{ id: string; current: boolean }>;
    const stolen = sessions.find((s) => !s.current)!;
    expect((await owner.request('DELETE', `/auth/sessions/${stolen.id}`)).status).toBe(204);
    expect((await thief.get('/auth/me')).status).toBe(401);
    await expectLinkDead(link, 'revvoid-c@example.com');
  });

  it("OWASP ASVS 4.0 3.3.x: the owner's own POST /auth/logout leaves the link confirmable (deliberate: the link needs no session)", async () => {
    const owner = new HttpClient(ctx.url);
    await make({ email: 'revvoid-h@example.com' });
    expect((await owner.login('revvoid-h@example.com', TEST_PASSWORD)).status).toBe(200);
    expect((await owner.post('/auth/me/email', { newEmail: 'revvoid-new-h@example.com' })).status).toBe(202);
    await drain();
    const link = linkParams(lastMail('revvoid-new-h@example.com', 'EmailChangeConfirm').text, 'confirm-email');
    const loggedOut = await owner.post('/auth/logout', {});
    expect(loggedOut.status, loggedOut.text).toBeLessThan(300);
    expect((await owner.get('/auth/me')).status).toBe(401);
    const confirmed = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: link.userId, token: link.token });
    expect({ status: confirmed.status, email: (await ctx.userManager.findById(link.userId))!.email }).toEqual({ status: 200, email: 'revvoid-new-h@example.com' });
  });

  it('the session that asked is ended after the 202 but before its link is stored: no link is stored or mailed', async () => {
    const user = await make({ email: 'revvoid-d@example.com' });
    const thief = new HttpClient(ctx.url);
    expect((await thief.login('revvoid-d@example.com', TEST_PASSWORD)).status).toBe(200);
    let reached!: () => void;
    let release!: () => void;
    const paused = new Promise<void>((resolve) => (reached = resolve));
    PausingUserManager.armed = { email: 'revvoid-thief-d@evil.example', reached, release: new Promise<void>((resolve) => (release = resolve)) };
    expect((await thief.post('/auth/me/email', { newEmail: 'revvoid-thief-d@evil.example' })).status).toBe(202);
    await paused; // accepted, its link not stored yet
    const owner = new HttpClient(ctx.url);
    expect((await owner.login('revvoid-d@example.com', TEST_PASSWORD)).status).toBe(200);
    const stolen = ((await owner.get('/auth/sessions')).body as Array<{ id: string; current: boolean }>).find((s) => !s.current)!;
    expect((await owner.request('DELETE', `/auth/sessions/${stolen.id}`)).status).toBe(204);
    expect((await thief.get('/auth/me')).status).toBe(401);
    release();
    await drain();
    const links = Mailbox.messages.filter((m) => m.to === 'revvoid-thief-d@evil.example' && m.type === 'EmailChangeConfirm');
    for (const mail of links) await expectLinkDead(linkParams(mail.text, 'confirm-email'), 'revvoid-d@example.com');
    const email = (await ctx.userManager.findById(user.id))!.email;
    expect({ confirmationEmails: links.length, email }).toEqual({ confirmationEmails: 0, email: 'revvoid-d@example.com' });
  });
});
