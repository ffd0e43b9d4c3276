import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, reauthenticate, signedInClient, userFactory, type IdentityApp } from '../support/identity-app.js';
import { expectClientError } from '../support/bad-input.js';

const MINUTE = 60_000;

describe('The session surface under attack: ending sessions one by one (real HTTP, real PostgreSQL)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const newUser = userFactory(() => ctx, 'surface');

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
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
});
