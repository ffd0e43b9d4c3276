import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, signedInClient, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import type { HttpClient } from '../support/http-client.js';
import { InMemoryBackOfficeSessionStore, InMemoryBackOfficeStores, type BackOfficeIdentityModuleOptions, type BackOfficeUser } from '../../src/backoffice-identity/index.js';

/**
 * The built-in TypeORM stores, the in-memory ones shipped for host apps' tests, and a host's session store without
 * the optional `adoptSecurityStamp` (the session service reads the user, then writes).
 */
const STORES: [string, () => BackOfficeIdentityModuleOptions][] = [
  ['TypeORM stores', () => ({})],
  ['in-memory stores', () => ({ stores: InMemoryBackOfficeStores.create() })],
  [
    'a session store without adoptSecurityStamp',
    () => {
      const set = InMemoryBackOfficeStores.create();
      const sessionStore = Object.assign(new InMemoryBackOfficeSessionStore(set.userStore.state), { adoptSecurityStamp: undefined });
      return { stores: { ...set, sessionStore } };
    },
  ],
];

/** A piece of work that waits, once started, until the test lets it go on: `entered` answers when it started. */
function gated<T>(work: () => Promise<T>): { run: () => Promise<T>; entered: Promise<void>; release: () => void } {
  let enter!: () => void;
  let release!: () => void;
  const entered = new Promise<void>((resolve) => (enter = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    run: async () => {
      enter();
      await released;
      return work();
    },
    entered,
    release,
  };
}

/**
 * Two account changes made at once from the same session (change password while turning 2FA on, in two tabs):
 * each announces its stamp (`keepSignedInThrough`), writes it, then adopts it (`refreshSignIn`). The session has one
 * announcement slot, and the two flows' steps interleave in any order. The tests drive the steps one by one, in
 * the orders that used to leave the session signed out for good (or for a while) though every change succeeded
 * and was made by it; the session must end on the user's final stamp, every other session ended at once.
 */
describe.each(STORES)('two stamp-changing account changes at once from one session (keepSignedInThrough / refreshSignIn interleavings), %s', (_name, stores) => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let counter = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, ...stores() } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** A user with three sessions: `mine` (makes both changes), `other` (must end), `revoked` (ended beforehand). */
  async function threeSessions() {
    const email = `concurrent${++counter}@example.com`;
    const user = (await ctx.userManager.createUser({ email, name: 'Concurrent', password: TEST_PASSWORD })).value!;
    const mine = await signedInClient(ctx, email);
    const other = await signedInClient(ctx, email);
    const revoked = await signedInClient(ctx, email);
    expect((await revoked.post('/auth/logout', {})).status).toBeLessThan(300);
    expect((await revoked.get('/auth/me')).status).toBe(401);
    const listed = await mine.get('/auth/sessions');
    const sessionId = (listed.body as { id: string; current: boolean }[]).find((s) => s.current)!.id;
    return { user, mine, other, revoked, sessionId };
  }

  /** A fresh copy of the user, as each request loads its own. */
  const load = async (user: BackOfficeUser) => (await ctx.userManager.findById(user.id))!;

  async function expectEnd(user: BackOfficeUser, clients: { mine: HttpClient; other: HttpClient; revoked: HttpClient }) {
    const me = await clients.mine.get('/auth/me');
    expect(me.status, 'the session that made both changes stays signed in').toBe(200);
    expect((await clients.other.get('/auth/me')).status, 'another session of the user ended').toBe(401);
    expect((await clients.revoked.get('/auth/me')).status, 'a revoked session stays ended').toBe(401);
    const sessions = await clients.mine.get('/auth/sessions');
    expect(sessions.body.map((s: { current: boolean }) => s.current)).toEqual([true]);
    // The session holds the user's final stamp: a later change elsewhere still ends it.
    await ctx.userManager.updateSecurityStamp(await load(user));
    expect((await clients.mine.get('/auth/me')).status).toBe(401);
  }

  it('OWASP ASVS 4.0 3.3.3: change A writes and change B writes, B adopts, then A adopts (the stale stamp): the session stays signed in on the final stamp', async () => {
    const { user, sessionId, ...clients } = await threeSessions();
    const sm = ctx.signInManager;
    const a = await load(user);
    const b = await load(user);
    const changed = await sm.keepSignedInThrough(sessionId, () => ctx.userManager.changePassword(a, TEST_PASSWORD, 'a brand new passphrase 42'));
    expect(changed.succeeded).toBe(true);
    const enabled = await sm.keepSignedInThrough(sessionId, () => ctx.userManager.setTwoFactorEnabled(b, true));
    expect(enabled.succeeded).toBe(true);
    await sm.refreshSignIn(b, sessionId);
    await sm.refreshSignIn(a, sessionId);
    expect((await load(user)).securityStamp).toBe(b.securityStamp);
    await expectEnd(user, clients);
  });

  it("OWASP ASVS 4.0 3.3.3: B's announcement overwrites A's before A writes, B writes, A writes last, A adopts, then B: the session stays signed in on A's stamp", async () => {
    const { user, sessionId, ...clients } = await threeSessions();
    const sm = ctx.signInManager;
    const a = await load(user);
    const b = await load(user);
    const workA = gated(() => ctx.userManager.changePassword(a, TEST_PASSWORD, 'a brand new passphrase 43'));
    const pendingA = sm.keepSignedInThrough(sessionId, workA.run);
    await workA.entered; // A announced
    try {
      expect((await sm.keepSignedInThrough(sessionId, () => ctx.userManager.setTwoFactorEnabled(b, true))).succeeded).toBe(true);
    } finally {
      workA.release();
    }
    expect((await pendingA).succeeded).toBe(true);
    expect((await load(user)).securityStamp).toBe(a.securityStamp);
    await sm.refreshSignIn(a, sessionId);
    await sm.refreshSignIn(b, sessionId);
    await expectEnd(user, clients);
  });

  it("OWASP ASVS 4.0 3.3.3: A announces, B announces, A writes (B's announcement came after A's): the session is not signed out between A's write and its adoption", async () => {
    const { user, sessionId, ...clients } = await threeSessions();
    const sm = ctx.signInManager;
    const a = await load(user);
    const b = await load(user);
    const workA = gated(() => ctx.userManager.changePassword(a, TEST_PASSWORD, 'a brand new passphrase 46'));
    const pendingA = sm.keepSignedInThrough(sessionId, workA.run);
    await workA.entered; // A announced
    const workB = gated(() => ctx.userManager.setTwoFactorEnabled(b, true));
    const pendingB = sm.keepSignedInThrough(sessionId, workB.run);
    await workB.entered; // B announced after A, before A wrote
    try {
      workA.release();
      expect((await pendingA).succeeded).toBe(true); // A wrote; B has not
      const meanwhile = await clients.mine.get('/auth/me');
      expect(meanwhile.status, "A wrote its stamp, which the session announced before B's, and has not adopted it yet").toBe(200);
      expect((await clients.other.get('/auth/me')).status).toBe(401);
    } finally {
      workA.release();
      workB.release();
    }
    expect((await pendingB).succeeded).toBe(true);
    expect((await clients.mine.get('/auth/me')).status).toBe(200);
    await sm.refreshSignIn(a, sessionId);
    await sm.refreshSignIn(b, sessionId);
    expect((await load(user)).securityStamp).toBe(b.securityStamp);
    await expectEnd(user, clients);
  });

  it('OWASP ASVS 4.0 3.3.3: three changes announce, then write in the reverse order: the session answers 200 after every write and ends on the last one written', async () => {
    const { user, sessionId, ...clients } = await threeSessions();
    const sm = ctx.signInManager;
    const copies = [await load(user), await load(user), await load(user)];
    const works = [
      gated(() => ctx.userManager.changePassword(copies[0], TEST_PASSWORD, 'a brand new passphrase 47')),
      gated(() => ctx.userManager.setTwoFactorEnabled(copies[1], true)),
      gated(async () => ctx.userManager.updateSecurityStamp(copies[2])),
    ];
    const pending: Promise<unknown>[] = [];
    try {
      for (const work of works) {
        pending.push(sm.keepSignedInThrough(sessionId, work.run));
        await work.entered;
      }
      for (const i of [2, 1, 0]) {
        works[i].release();
        await pending[i];
        const meanwhile = await clients.mine.get('/auth/me');
        expect(meanwhile.status, `after change ${i} wrote`).toBe(200);
        expect((await clients.other.get('/auth/me')).status).toBe(401);
      }
    } finally {
      for (const work of works) work.release();
    }
    expect((await load(user)).securityStamp).toBe(copies[0].securityStamp);
    for (const i of [1, 2, 0]) await sm.refreshSignIn(copies[i], sessionId);
    await expectEnd(user, clients);
  });

  it('OWASP ASVS 4.0 3.3.3: A writes, B announces, A adopts, B writes: the session is not signed out between B\'s write and its adoption', async () => {
    const { user, sessionId, ...clients } = await threeSessions();
    const sm = ctx.signInManager;
    const a = await load(user);
    const b = await load(user);
    expect((await sm.keepSignedInThrough(sessionId, () => ctx.userManager.changePassword(a, TEST_PASSWORD, 'a brand new passphrase 44'))).succeeded).toBe(true);
    const workB = gated(() => ctx.userManager.setTwoFactorEnabled(b, true));
    const pendingB = sm.keepSignedInThrough(sessionId, workB.run);
    await workB.entered; // B announced
    try {
      await sm.refreshSignIn(a, sessionId);
    } finally {
      workB.release();
    }
    expect((await pendingB).succeeded).toBe(true);
    const meanwhile = await clients.mine.get('/auth/me');
    expect(meanwhile.status, 'B wrote its stamp, which the session announced, and has not adopted it yet').toBe(200);
    expect((await clients.other.get('/auth/me')).status).toBe(401);
    await sm.refreshSignIn(b, sessionId);
    await expectEnd(user, clients);
  });

  it('OWASP ASVS 4.0 3.3.3: A writes, then B announces before A adopts: the session is not signed out between B\'s announcement and A\'s adoption', async () => {
    const { user, sessionId, ...clients } = await threeSessions();
    const sm = ctx.signInManager;
    const a = await load(user);
    const b = await load(user);
    expect((await sm.keepSignedInThrough(sessionId, () => ctx.userManager.changePassword(a, TEST_PASSWORD, 'a brand new passphrase 45'))).succeeded).toBe(true);
    const workB = gated(() => ctx.userManager.setTwoFactorEnabled(b, true));
    const pendingB = sm.keepSignedInThrough(sessionId, workB.run);
    await workB.entered; // B announced; the user holds A's stamp, which the session announced and has not adopted yet
    try {
      const meanwhile = await clients.mine.get('/auth/me');
      expect(meanwhile.status, meanwhile.text).toBe(200);
      expect((await clients.other.get('/auth/me')).status).toBe(401);
      await sm.refreshSignIn(a, sessionId);
    } finally {
      workB.release();
    }
    expect((await pendingB).succeeded).toBe(true);
    expect((await clients.mine.get('/auth/me')).status).toBe(200);
    await sm.refreshSignIn(b, sessionId);
    await expectEnd(user, clients);
  });
});
