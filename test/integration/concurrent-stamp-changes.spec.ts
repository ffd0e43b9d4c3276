import { independentCode } from '../support/oathtool.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, signedInClient, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import type { HttpClient, HttpResult } from '../support/http-client.js';

const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';

/**
 * Several account changes sent at once from one session, each of which renews the user's security stamp (2FA on,
 * two passkeys removed), with `GET /auth/me` of the same session sent among them: each change announces its own
 * stamp, writes it to the user's row, then the session adopts it, and the three flows interleave in any order. The
 * session that made them must never be answered 401 (not even for a moment), must end on the user's final stamp
 * (a later change elsewhere still ends it), and the user's other sessions end at once and stay ended (OWASP ASVS
 * 4.0 3.3.3, ASVS 5.0 7.4.3). None of these requests renews the session's token, so every 401 would be the stamp's.
 */
describe('stamp-changing requests sent at once from one session (real HTTP)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let counter = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, passkeys: { rpId: RP_ID, origins: [ORIGIN] } } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  async function registerPasskey(client: HttpClient, name: string): Promise<string> {
    const options = await client.post('/auth/passkeys/options', {});
    expect(options.status, options.text).toBe(200);
    const credential = new SoftwareAuthenticator(ORIGIN, RP_ID).register(options.body);
    const added = await client.post('/auth/passkeys', { name, credential });
    expect(added.status, added.text).toBe(201);
    return added.body.id as string;
  }

  /** A user whose session `mine` has two passkeys and a TOTP enrolment started; `other` live, `revoked` logged out. */
  async function prepared() {
    const email = `stamps${++counter}@example.com`;
    const user = (await ctx.userManager.createUser({ email, name: 'Stamps', password: TEST_PASSWORD })).value!;
    const mine = await signedInClient(ctx, email);
    const passkeys = [await registerPasskey(mine, 'Laptop'), await registerPasskey(mine, 'Phone')];
    const setup = await mine.post('/auth/2fa/setup', { provider: 'totp' });
    expect(setup.status, setup.text).toBe(200);
    const other = await signedInClient(ctx, email);
    const revoked = await signedInClient(ctx, email);
    expect((await revoked.post('/auth/logout', {})).status).toBeLessThan(300);
    expect((await mine.get('/auth/me')).status).toBe(200);
    expect((await other.get('/auth/me')).status).toBe(200);
    return { user, mine, other, revoked, passkeys, secret: setup.body.secret as string };
  }

  const statusOf = (label: string, res: HttpResult) => `${label} ${res.status}${res.status >= 300 ? ` ${res.text}` : ''}`;

  it.each([1, 2, 3, 4, 5, 6])(
    'OWASP ASVS 4.0 3.3.3: 2FA on and two passkey removals at once, with /auth/me among them: the session is never answered 401, ends on the final stamp, other sessions stay ended (round %i)',
    async () => {
      const { user, mine, other, revoked, passkeys, secret } = await prepared();
      const me = () => mine.get('/auth/me');
      const sent: [string, Promise<HttpResult>][] = [
        ['me', me()],
        ['enable 2FA', mine.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(secret, ctx.clock) })],
        ['me', me()],
        ['remove passkey 1', mine.delete(`/auth/passkeys/${passkeys[0]}`)],
        ['me', me()],
        ['remove passkey 2', mine.delete(`/auth/passkeys/${passkeys[1]}`)],
        ['me', me()],
        ['me', me()],
        ['me', me()],
      ];
      // More reads of the session while the changes are in flight, each sent when the one before was answered.
      const readsMeanwhile = (async () => {
        const seen: string[] = [];
        for (let i = 0; i < 12; i++) seen.push(statusOf('me (later)', await me()));
        return seen;
      })();
      const answered = await Promise.all(sent.map(async ([label, pending]) => statusOf(label, await pending)));
      const later = await readsMeanwhile;
      expect([...answered, ...later].filter((s) => !/ (200|204)$/.test(s)), 'every request of the session that made the changes passes').toEqual([]);

      // The end: this session on the user's final stamp, the others ended.
      expect((await mine.get('/auth/me')).status, 'the session that made the changes stays signed in').toBe(200);
      expect((await mine.get('/auth/me')).body.twoFactorEnabled).toBe(true);
      expect((await mine.get('/auth/passkeys')).body).toEqual([]);
      expect((await other.get('/auth/me')).status, "another session of the user ended").toBe(401);
      expect((await revoked.get('/auth/me')).status, 'a logged-out session stays ended').toBe(401);
      const sessions = await mine.get('/auth/sessions');
      expect(sessions.body.map((s: { current: boolean }) => s.current)).toEqual([true]);
      // The session holds nothing but the user's current stamp: a renewal it did not make ends it too.
      await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
      expect((await mine.get('/auth/me')).status, 'a stamp renewed elsewhere ends the session').toBe(401);
      expect((await other.get('/auth/me')).status).toBe(401);
      expect((await revoked.get('/auth/me')).status).toBe(401);
    },
  );
});
