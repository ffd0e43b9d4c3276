import { Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { independentCode } from '../support/oathtool.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, signedInClient, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { BackOfficeEvents, TypeOrmBackOfficeSessionStore, type BackOfficeNotification } from '../../src/backoffice-identity/index.js';

/**
 * A session store that, once armed, holds the adoption of a new security stamp (the write that follows the
 * user's stamp change in an account flow): the moment between the two writes, when the user's row already holds
 * the new stamp and the session does not yet.
 */
@Injectable()
class AdoptionHoldingSessionStore extends TypeOrmBackOfficeSessionStore {
  static armed: { reached: () => void; release: Promise<void> } | null = null;

  override async adoptSecurityStamp(sessionId: string, securityStamp: string): Promise<boolean> {
    const hold = AdoptionHoldingSessionStore.armed;
    if (hold) {
      AdoptionHoldingSessionStore.armed = null;
      hold.reached();
      await hold.release;
    }
    return super.adoptSecurityStamp(sessionId, securityStamp);
  }
}

/** Arms the store; answers when the flow reached the adoption, and the function that lets it go on. */
function holdNextAdoption(): { reached: Promise<void>; release: () => void } {
  let reached!: () => void;
  let release!: () => void;
  const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
  AdoptionHoldingSessionStore.armed = { reached, release: new Promise<void>((resolve) => (release = resolve)) };
  return { reached: reachedPromise, release };
}

/**
 * An account change made in a session (change password, two-factor on or off) renews the user's security stamp,
 * which ends the user's other sessions, and keeps the session that made it. The user's row and the session's row
 * are two writes: the session announces the coming stamp first, so its own requests in flight (a page checking
 * `/auth/me`, a second tab's click) are never answered 401 in between. The other sessions end at once.
 */
describe('a session stays signed in throughout an account change it makes (no 401 between the two writes)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let counter = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, sessionStore: AdoptionHoldingSessionStore, passkeys: { rpId: 'localhost', origins: ['http://localhost:3000'] } } });
  });
  afterAll(async () => {
    AdoptionHoldingSessionStore.armed = null;
    await ctx?.close();
    await db?.drop();
  });

  async function twoSessions() {
    const email = `kept${++counter}@example.com`;
    const user = (await ctx.userManager.createUser({ email, name: 'Kept', password: TEST_PASSWORD })).value!;
    return { user, email, mine: await signedInClient(ctx, email), other: await signedInClient(ctx, email) };
  }

  /** Runs `change` with the adoption held; meanwhile the session's own request and the other session's are sent. */
  async function duringChange(mine: Awaited<ReturnType<typeof twoSessions>>['mine'], other: typeof mine, change: () => Promise<{ status: number; text: string }>) {
    const hold = holdNextAdoption();
    const pending = change();
    await hold.reached;
    try {
      return { meanwhile: await mine.get('/auth/me'), otherMeanwhile: await other.get('/auth/me'), done: await (hold.release(), pending) };
    } finally {
      hold.release();
    }
  }

  it('OWASP ASVS 4.0 3.3.3: during a password change the changing session answers 200, the other session is already signed out', async () => {
    const { mine, other } = await twoSessions();
    const { meanwhile, otherMeanwhile, done } = await duringChange(mine, other, () =>
      mine.post('/auth/change-password', { currentPassword: TEST_PASSWORD, newPassword: 'a brand new passphrase 42' }),
    );
    expect(done.status, done.text).toBe(200);
    expect(meanwhile.status, meanwhile.text).toBe(200);
    expect(otherMeanwhile.status).toBe(401);
    expect((await mine.get('/auth/me')).status).toBe(200);
    expect((await other.get('/auth/me')).status).toBe(401);
    // The session lists itself (the only live one) while and after adopting.
    const sessions = await mine.get('/auth/sessions');
    expect(sessions.body.map((s: { current: boolean }) => s.current)).toEqual([true]);
  });

  it('OWASP ASVS 4.0 3.3.3: turning two-factor authentication on and off, the changing session stays signed in throughout', async () => {
    const { mine, other } = await twoSessions();
    const setup = await mine.post('/auth/2fa/setup', { provider: 'totp' });
    const on = await duringChange(mine, other, () => mine.post('/auth/2fa/enable', { provider: 'totp', code: independentCode(setup.body.secret, ctx.clock) }));
    expect(on.done.status, on.done.text).toBe(200);
    expect(on.meanwhile.status, on.meanwhile.text).toBe(200);
    expect(on.otherMeanwhile.status).toBe(401);

    const off = await duringChange(mine, other, () => mine.post('/auth/2fa/disable', { password: TEST_PASSWORD }));
    expect(off.done.status, off.done.text).toBe(200);
    expect(off.meanwhile.status, off.meanwhile.text).toBe(200);
    expect((await mine.get('/auth/me')).body.twoFactorEnabled).toBe(false);
  });

  it('OWASP ASVS 5.0 7.4.3: adding a passkey, the adding session stays signed in throughout; the other session is already signed out', async () => {
    const { mine, other } = await twoSessions();
    const options = await mine.post('/auth/passkeys/options', {});
    expect(options.status, options.text).toBe(200);
    const credential = new SoftwareAuthenticator('http://localhost:3000', 'localhost').register(options.body);
    const hold = holdNextAdoption();
    const pending = mine.post('/auth/passkeys', { name: 'Laptop', credential });
    try {
      const adopted = await Promise.race([hold.reached.then(() => true), pending.then(() => false)]);
      expect(adopted, 'the session adopts the new stamp the registration wrote').toBe(true);
      const meanwhile = await mine.get('/auth/me');
      expect(meanwhile.status, meanwhile.text).toBe(200);
      expect((await other.get('/auth/me')).status).toBe(401);
    } finally {
      AdoptionHoldingSessionStore.armed = null;
      hold.release();
    }
    const done = await pending;
    expect(done.status, done.text).toBe(201);
    expect((await mine.get('/auth/me')).status).toBe(200);
    expect((await other.get('/auth/me')).status).toBe(401);
  });

  it('a failed change (wrong current password) announces a stamp the user never gets: the session keeps working, the other too', async () => {
    const { user, mine, other } = await twoSessions();
    const wrong = await mine.post('/auth/change-password', { currentPassword: 'not the password at all', newPassword: 'a brand new passphrase 42' });
    expect(wrong.status).toBe(401);
    expect((await mine.get('/auth/me')).status).toBe(200);
    expect((await other.get('/auth/me')).status).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.securityStamp).toBe(user.securityStamp);
  });

  it('the announced stamp is only ever the one the change writes: a stamp renewed outside the change (an admin) still ends the session', async () => {
    const { user, mine } = await twoSessions();
    const hold = holdNextAdoption();
    const pending = mine.post('/auth/change-password', { currentPassword: TEST_PASSWORD, newPassword: 'a brand new passphrase 43' });
    await hold.reached;
    // Meanwhile something else renews the stamp again (e.g. an admin's "sign out everywhere").
    await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
    expect((await mine.get('/auth/me')).status).toBe(401);
    hold.release();
    expect((await pending).status).toBe(200);
    // The session adopted the stamp it announced, which the user no longer has.
    expect((await mine.get('/auth/me')).status).toBe(401);
  });

  it('OWASP ASVS 4.0 3.3.3: a stamp renewal by a listener of the change (the host ends every session when a password changes) ends the changing session too: the announced stamp is the change\'s own, not its listeners\'', async () => {
    const { user, mine, other } = await twoSessions();
    const emitter = ctx.app.get(EventEmitter2);
    const signOutEverywhere = async (n: BackOfficeNotification) => {
      if (n.affectedUserId === user.id) await ctx.userManager.updateSecurityStamp((await ctx.userManager.findById(user.id))!);
    };
    emitter.on(BackOfficeEvents.PasswordChanged, signOutEverywhere);
    try {
      const changed = await mine.post('/auth/change-password', { currentPassword: TEST_PASSWORD, newPassword: 'a brand new passphrase 44' });
      expect(changed.status, changed.text).toBe(200);
    } finally {
      emitter.off(BackOfficeEvents.PasswordChanged, signOutEverywhere);
    }
    expect((await other.get('/auth/me')).status).toBe(401);
    expect((await mine.get('/auth/me')).status).toBe(401);
  });
});
