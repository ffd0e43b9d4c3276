import { EventEmitter2 } from '@nestjs/event-emitter';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, reauthenticate, signedInClient, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { expectClientError } from '../support/bad-input.js';
import { HttpClient } from '../support/http-client.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { BackOfficeEvents } from '../../src/backoffice-identity/index.js';

const MINUTE = 60_000;

describe('The session surface under attack: ending sessions one by one (real HTTP, real PostgreSQL)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let events: NotificationRecorder;
  const newUser = userFactory(() => ctx, 'surface');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    events = NotificationRecorder.attach(ctx.app);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function sessionIdsOf(http: Awaited<ReturnType<typeof signedInClient>>): Promise<{ current: string; others: string[] }> {
    const list = await http.get('/auth/sessions');
    expect(list.status, list.text).toBe(200);
    return { current: list.body.find((s: { current: boolean }) => s.current).id, others: list.body.filter((s: { current: boolean }) => !s.current).map((s: { id: string }) => s.id) };
  }

  it('OWASP ASVS 5.0 7.5.2 / 4.0 3.3.4: a stolen cookie older than the step-up window cannot sign the owner out one session at a time (DELETE /auth/sessions/:id) any more than everywhere at once (DELETE /auth/sessions): 401 reauthentication_required, the owner stays signed in', async () => {
    const user = await newUser();
    const owner = await signedInClient(ctx, user.email);
    const thief = await signedInClient(ctx, user.email); // stands for the owner's cookie copied elsewhere
    ctx.clock.advance(6 * MINUTE);
    expect((await owner.get('/auth/me')).status).toBe(200);
    const { others } = await sessionIdsOf(thief);
    expect(others).toHaveLength(1);
    const everywhere = await thief.delete('/auth/sessions');
    expect(everywhere.body.code).toBe('reauthentication_required');
    const one = await thief.delete(`/auth/sessions/${others[0]}`);
    expectClientError(one, 401);
    expect(one.body.code).toBe('reauthentication_required');
    expect((await owner.get('/auth/me')).status).toBe(200);
    // Same answer for an id that is nobody's: the step-up comes first, so it tells nothing about ids.
    expect((await thief.delete('/auth/sessions/00000000-0000-4000-8000-000000000000')).body.code).toBe('reauthentication_required');
    // After re-authenticating, the owner's session can be ended by id.
    await reauthenticate(thief);
    expect((await thief.delete(`/auth/sessions/${others[0]}`)).status).toBe(204);
    expect((await owner.get('/auth/me')).status).toBe(401);
  });

  it('OWASP ASVS 5.0 16.3.2 / 4.0 7.1.3: DELETE /auth/sessions/:id of one\'s own session that has already ended (idle timeout, or a security stamp the user no longer has) answers 404 and audits no revocation, as the route and the service promise; a live one still answers 204', async () => {
    const user = await newUser();
    const idle = await signedInClient(ctx, user.email);
    const { current: idleId } = await sessionIdsOf(idle);
    ctx.clock.advance(21 * MINUTE); // past the 20-minute idle timeout
    expect((await idle.get('/auth/me')).status).toBe(401);
    const stale = await signedInClient(ctx, user.email);
    const { current: staleId } = await sessionIdsOf(stale);
    await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!); // e.g. a host's own stamp renewal
    expect((await stale.get('/auth/me')).status).toBe(401);
    const live = await signedInClient(ctx, user.email);
    const other = await signedInClient(ctx, user.email);
    const { others } = await sessionIdsOf(live);
    expect(others).toHaveLength(1); // only the live one is listed
    const before = events.named(BackOfficeEvents.SessionsRevoked, user.id).length;
    for (const ended of [idleId, staleId]) {
      const answer = await live.delete(`/auth/sessions/${ended}`);
      expectClientError(answer, 404);
      expect(answer.body.code).toBe('not_found');
    }
    expect(events.named(BackOfficeEvents.SessionsRevoked, user.id)).toHaveLength(before);
    expect((await live.delete(`/auth/sessions/${others[0]}`)).status).toBe(204);
    expect(events.named(BackOfficeEvents.SessionsRevoked, user.id)).toHaveLength(before + 1);
    expect((await other.get('/auth/me')).status).toBe(401);
  });

  it('OWASP ASVS 5.0 7.2.4: a sign-in terminates the session token the browser sent with it (a copy taken by someone else stops working), for the same user or another', async () => {
    const user = await newUser();
    const browser = await signedInClient(ctx, user.email);
    const copied = browser.cookies.get('backoffice_session')!;
    const thief = browser.fresh();
    thief.cookies.set('backoffice_session', copied);
    expect((await thief.get('/auth/me')).status).toBe(200);
    // The person signs in again in the same browser (e.g. after noticing something odd): the copy must end.
    expect((await browser.login(user.email, TEST_PASSWORD)).status).toBe(200);
    expect(browser.cookies.get('backoffice_session')).not.toBe(copied);
    expect((await thief.get('/auth/me')).status).toBe(401);
    expect((await browser.get('/auth/me')).status).toBe(200);
    // Another person signs in on a shared computer: the previous person's session ends too.
    const previous = browser.cookies.get('backoffice_session')!;
    const next = await newUser();
    const endedBefore = events.named(BackOfficeEvents.SessionsRevoked, user.id).length;
    expect((await browser.login(next.email, TEST_PASSWORD)).status).toBe(200);
    expect((await browser.fresh().get('/auth/me', { headers: { cookie: `backoffice_session=${previous}` } })).status).toBe(401);
    expect((await browser.get('/auth/me')).body.id).toBe(next.id);
    // OWASP ASVS 5.0 16.3.2: the ended session is audited for its owner (who was signed out by someone else's sign-in).
    const ended = events.named(BackOfficeEvents.SessionsRevoked, user.id);
    expect(ended).toHaveLength(endedBefore + 1);
    expect(ended.at(-1)!.auditDetails()).toEqual({ count: 1 });
  });

  it('OWASP ASVS 5.0 16.3.2: a sign-in sent with the cookie of a session that had already ended (idle timeout, a security stamp the user no longer has) audits no revocation for its owner: nothing ended now', async () => {
    const user = await newUser();
    const next = await newUser();
    // Idle: past the 20-minute idle timeout, the browser still holds the cookie.
    const idle = await signedInClient(ctx, user.email);
    ctx.clock.advance(21 * MINUTE);
    const before = events.named(BackOfficeEvents.SessionsRevoked, user.id).length;
    expect((await idle.login(next.email, TEST_PASSWORD)).status).toBe(200);
    // A security stamp the user no longer has.
    const stale = await signedInClient(ctx, user.email);
    await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
    expect((await stale.login(next.email, TEST_PASSWORD)).status).toBe(200);
    expect(events.named(BackOfficeEvents.SessionsRevoked, user.id), 'a sign-in audited the revocation of a session that had already ended').toHaveLength(before);
  });

  it('OWASP ASVS 5.0 16.3.2: signing out everywhere (DELETE /auth/sessions, and an admin\'s DELETE /users/:id/sessions) counts and audits only the sessions that were live, not rows that had already ended (idle timeout, a security stamp the user no longer has, past the absolute timeout)', async () => {
    const user = await newUser({ groups: ['admin'] });
    const idle = await signedInClient(ctx, user.email);
    ctx.clock.advance(21 * MINUTE); // past the 20-minute idle timeout
    expect((await idle.get('/auth/me')).status).toBe(401);
    const stale = await signedInClient(ctx, user.email);
    await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
    expect((await stale.get('/auth/me')).status).toBe(401);
    const live = await signedInClient(ctx, user.email);
    const other = await signedInClient(ctx, user.email);
    const before = events.named(BackOfficeEvents.SessionsRevoked, user.id).length;
    const answer = await live.delete('/auth/sessions');
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.revoked, 'DELETE /auth/sessions counted sessions that had already ended').toBe(1);
    expect(events.named(BackOfficeEvents.SessionsRevoked, user.id).at(-1)!.auditDetails()).toEqual({ count: 1 });
    expect((await other.get('/auth/me')).status).toBe(401);
    // The admin route: two live sessions of the target, one ended by the absolute timeout (a row still unrevoked).
    const target = await newUser();
    await signedInClient(ctx, target.email);
    ctx.clock.advance(13 * 60 * MINUTE); // past the 12-hour absolute timeout
    await signedInClient(ctx, target.email);
    await signedInClient(ctx, target.email);
    const admin = await signedInClient(ctx, user.email);
    expect((await admin.delete(`/users/${target.id}/sessions`)).status).toBe(204);
    const audited = events.named(BackOfficeEvents.SessionsRevoked, target.id);
    expect(audited.at(-1)!.auditDetails(), 'DELETE /users/:id/sessions counted a session that had already ended').toEqual({ count: 2 });
    expect(events.named(BackOfficeEvents.SessionsRevoked, user.id)).toHaveLength(before + 1);
  });

  it('a user deleted while signing in (between the password check and the session row: an admin\'s DELETE /users/:id at that moment) gets 401 invalid_credentials, not a 500, and no session', async () => {
    const user = await newUser();
    const emitter = ctx.app.get(EventEmitter2);
    const deleteMidSignIn = async (notification: { affectedUserId: string | null }) => {
      if (notification.affectedUserId !== user.id) return;
      expect((await ctx.userManager.deleteUser((await ctx.userManager.findById(user.id))!)).succeeded).toBe(true);
    };
    emitter.on(BackOfficeEvents.LoginSuccess, deleteMidSignIn);
    try {
      const http = new HttpClient(ctx.url);
      const login = await http.login(user.email, TEST_PASSWORD);
      expectClientError(login, 401);
      expect(login.body.code).toBe('invalid_credentials');
      expect(http.cookies.has('backoffice_session')).toBe(false);
    } finally {
      emitter.off(BackOfficeEvents.LoginSuccess, deleteMidSignIn);
    }
  });

  it('OWASP ASVS 4.0 7.4.1: a user deleted while signing in gets 401 invalid_credentials, not a 500, also when the host user manager answers findById from a cache (the deleted user still found there)', async () => {
    const user = await newUser();
    const cached = (await ctx.userManager.findById(user.id))!;
    const manager = ctx.userManager as { findById: IdentityApp['userManager']['findById'] };
    const emitter = ctx.app.get(EventEmitter2);
    const deleteMidSignIn = async (notification: { affectedUserId: string | null }) => {
      if (notification.affectedUserId !== user.id) return;
      expect((await ctx.userManager.deleteUser((await ctx.userManager.findById(user.id))!)).succeeded).toBe(true);
      // From now on the host's cache still answers the deleted user.
      manager.findById = async (id: string) => (id === user.id ? cached : Object.getPrototypeOf(manager).findById.call(manager, id));
    };
    emitter.on(BackOfficeEvents.LoginSuccess, deleteMidSignIn);
    try {
      const http = new HttpClient(ctx.url);
      const login = await http.login(user.email, TEST_PASSWORD);
      expect({ status: login.status, code: login.body.code }).toEqual({ status: 401, code: 'invalid_credentials' });
      expect(http.cookies.has('backoffice_session')).toBe(false);
    } finally {
      emitter.off(BackOfficeEvents.LoginSuccess, deleteMidSignIn);
      delete (manager as Partial<typeof manager>).findById;
    }
  });
});
