import { randomUUID } from 'node:crypto';
import { expectClientError } from '../support/bad-input.js';
import { HttpClient } from '../support/http-client.js';
import { adminAppSuite, reauthenticate, signedInClient, TEST_PASSWORD } from '../support/identity-app.js';

const answer = (res: { status: number; body?: { code?: string } }) => ({ status: res.status, code: res.body?.code });

/**
 * OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1: an unlock of another user ends the lockout that bounds password guessing (OWASP
 * ASVS 4.0 2.2.1). Were a stale admin cookie (or an admin API user's bearer token) enough, its holder could guess
 * admin B's password at POST /auth/login, unlock B after every five wrong guesses and guess on without end. POST
 * /users/:id/unlock needs a recent sign-in, as POST /users/:id/enable does (always refused for a bearer token), asked
 * after the 403, 404 and 409 checks; nothing is written without one.
 */
describe('unlocking another user needs a recent sign-in (OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1)', () => {
  const suite = adminAppSuite('unlockstep');
  const { make } = suite;
  const refused = { status: 401, code: 'reauthentication_required' };
  const lockedOut = async (id: string) => suite.ctx.userManager.isLockedOut((await suite.ctx.userManager.findById(id))!);
  const lockByWrongGuesses = async (email: string) => {
    for (let i = 0; i < 5; i++) await new HttpClient(suite.ctx.url).login(email, 'a wrong guess at it');
    expect((await new HttpClient(suite.ctx.url).login(email, TEST_PASSWORD)).status).toBe(423);
  };
  const unlockAudited = async (admin: HttpClient, id: string) =>
    (await admin.get(`/audit?userId=${id}&event=backoffice.user.unlocked&take=50`)).body.items.length as number;

  it('POST /users/:id/unlock of another admin with a stale admin session is 401 reauthentication_required, the lock stays and nothing is audited; after a step-up, 200 (ASVS 5.0 7.5.3 / 4.0 3.7.1)', async () => {
    const { ctx, adminEmail } = suite;
    const victim = await make({ groups: ['admin'] });
    const stolen = await signedInClient(ctx, adminEmail);
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)
    await lockByWrongGuesses(victim.email);

    expect(answer(await stolen.post(`/users/${victim.id}/unlock`, {}))).toEqual(refused);
    expect(await lockedOut(victim.id)).toBe(true);
    expect((await new HttpClient(ctx.url).login(victim.email, TEST_PASSWORD)).status).toBe(423);
    expect(await unlockAudited(stolen, victim.id)).toBe(0);

    await reauthenticate(stolen);
    const unlocked = await stolen.post(`/users/${victim.id}/unlock`, {});
    expect(unlocked.status, unlocked.text).toBe(200);
    expect(await lockedOut(victim.id)).toBe(false);
    expect(await unlockAudited(stolen, victim.id)).toBe(1);
  });

  it("an admin API user's bearer token cannot unlock a user (always 401 reauthentication_required, as at POST /users/:id/enable); the lock stays (ASVS 5.0 7.5.3 / 4.0 3.7.1)", async () => {
    const { ctx, adminEmail } = suite;
    const admin = await signedInClient(ctx, adminEmail);
    const minted = await admin.post('/users/api', { name: 'Unlock robot', groups: ['admin'] });
    expect(minted.status, minted.text).toBe(201);
    const token = await new HttpClient(ctx.url).post('/auth/token', { grant_type: 'client_credentials', client_id: minted.body.clientId, client_secret: minted.body.clientSecret });
    expect(token.status, token.text).toBe(200);

    const victim = await make({ groups: ['admin'] });
    await lockByWrongGuesses(victim.email);
    const res = await new HttpClient(ctx.url).request('POST', `/users/${victim.id}/unlock`, { body: {}, headers: { authorization: `Bearer ${token.body.access_token}` } });
    expectClientError(res, 401);
    expect(res.body.code).toBe('reauthentication_required');
    expect(await lockedOut(victim.id)).toBe(true);
  });

  it('checks the target first: 404 for an unknown user, 403 for one beyond the caller and 409 cannot_unlock_self for the caller, whatever the sign-in (ASVS 5.0 7.5.3 / 4.0 3.7.1)', async () => {
    const { ctx, adminEmail } = suite;
    const admin = await signedInClient(ctx, adminEmail);
    expect((await admin.post('/groups', { alias: 'unlockdesk', name: 'Unlock desk', permissions: ['users.manage'] })).status).toBe(201);
    const deskUser = await make({ groups: ['unlockdesk'] });
    const desk = await signedInClient(ctx, deskUser.email);
    const lockedAdmin = await make({ groups: ['admin'] });
    const lockedWriter = await make({ groups: ['writer'] });
    ctx.clock.advance(6 * 60_000);
    await lockByWrongGuesses(lockedAdmin.email);
    await lockByWrongGuesses(lockedWriter.email);
    await lockByWrongGuesses(deskUser.email);

    expect(answer(await desk.post(`/users/${randomUUID()}/unlock`, {}))).toEqual({ status: 404, code: 'not_found' });
    expect(answer(await desk.post(`/users/${lockedAdmin.id}/unlock`, {}))).toEqual({ status: 403, code: 'forbidden' });
    expect(answer(await desk.post(`/users/${deskUser.id}/unlock`, {}))).toEqual({ status: 409, code: 'cannot_unlock_self' });
    expect(answer(await desk.post(`/users/${lockedWriter.id}/unlock`, {}))).toEqual(refused);
    expect([await lockedOut(lockedAdmin.id), await lockedOut(lockedWriter.id), await lockedOut(deskUser.id)]).toEqual([true, true, true]);
  });
});
