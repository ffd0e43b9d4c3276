import { execFileSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { BackOfficeEvents, BackOfficeIdentityModule, BackOfficeSessionCookies, BackOfficeSessionService, deriveUserState, LdapPasswordChecker, UserLoginFailedNotification, type BackOfficeUser, type LdapPasswordCheckerOptions } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { compareMedians } from '../support/timing.js';
import { LDAP_PEOPLE, TestSlapd } from '../support/slapd.js';

const localPassword = 'correct horse battery staple';
const alice = { uid: 'alice', cn: 'Alice Liddell', mail: 'alice@ldap.example', password: 'alice in the directory 1' };
const bob = { uid: 'bob', cn: 'Bob Builder', mail: 'bob@ldap.example', password: 'bob in the directory 22' };
const dora = { uid: 'dora', cn: 'Dora Explorer', mail: 'dora@ldap.example', password: 'dora in the directory 3' };
const comma = { uid: 'comma,user', cn: 'Comma User', mail: 'comma@ldap.example', password: 'comma in the directory 4' };
const noMail = { uid: 'nomail', cn: 'No Mail', password: 'no mail in the directory 5' };
const erin = { uid: 'erin', cn: 'Erin Invited', mail: 'erin@ldap.example', password: 'erin in the directory 6' };
const ivy = { uid: 'ivy', cn: 'Ivy Retired', mail: 'ivy@ldap.example', password: 'ivy in the directory 9' };
const frank = { uid: 'frank', cn: 'Frank Leaver', mail: 'frank@ldap.example', password: 'frank in the directory 7' };
const gina = { uid: 'gina', cn: 'Gina Leaver', mail: 'gina@ldap.example', password: 'gina in the directory 8' };
const hana = { uid: 'hana', cn: 'Hana Stepup', mail: 'hana@ldap.example', password: 'hana in the directory 9' };

/** Only an explicit opt-out skips the real directory; a machine without slapd fails the suite (see .ci/run). */
const describeIfSlapd = process.env.SKIP_SLAPD_TESTS === '1' ? describe.skip : describe;

/** An app on `db` whose passwords `checker` checks, without rate limits, locking an account out after `maxFailedAccessAttempts`. */
function ldapApp(db: TestDatabase, checker: LdapPasswordChecker, maxFailedAccessAttempts: number): Promise<IdentityApp> {
  return createIdentityApp(db, { identity: { rateLimits: { enabled: false }, lockout: { maxFailedAccessAttempts }, passwordChecker: { useValue: checker } } });
}

/** The LDAP message a client sent: its operation's application tag, and `reply` framing an answer with its message ID. */
function ldapRequest(request: Buffer): { tag: number; reply: (op: Buffer) => Buffer } {
  const lengthBytes = request[1] & 0x80 ? request[1] & 0x7f : 0;
  const idAt = 2 + lengthBytes;
  const id = request.subarray(idAt, idAt + 2 + request[idAt + 1]);
  return { tag: request[idAt + id.length], reply: (op) => Buffer.concat([Buffer.from([0x30, id.length + op.length]), id, op]) };
}

/** A fake directory on a free loopback port that hands each connection to `serve`; `stop` destroys every socket it got and closes it. */
async function fakeDirectory(serve: (socket: Socket) => void = () => undefined) {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    serve(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const stop = async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((resolve) => server.close(resolve));
  };
  return { sockets, port, url: `ldap://127.0.0.1:${port}`, stop };
}

describeIfSlapd('LDAP sign-in through the password checker (real OpenLDAP slapd)', () => {
  let slapd: TestSlapd;
  let db: TestDatabase;
  let ctx: IdentityApp;
  const options = (extra: Partial<LdapPasswordCheckerOptions> = {}): LdapPasswordCheckerOptions => slapd.checkerOptions(extra);
  /** A user with a local password hash (what `fallback` falls back to), unless `passwordHash` is null. */
  const asUser = (username: string, passwordHash: string | null = '$2b$12$a.local.hash') => ({ username, passwordHash }) as BackOfficeUser;
  const login = (username: string, password: string) => new HttpClient(ctx.url).login(username, password);

  beforeAll(async () => {
    slapd = await new TestSlapd().start([alice, bob, dora, comma, noMail, erin, frank, gina, hana, ivy]);
    db = await createTestDatabase();
    ctx = await ldapApp(db, new LdapPasswordChecker(options({ createUsers: true, defaultGroups: ['writer'], onDirectoryDown: 'fallback' })), 3);
    // Alice exists locally (e.g. imported) with a different local password; the directory decides for her.
    await ctx.userManager.createUser({ email: alice.mail, name: 'Alice (local)', password: localPassword, groups: ['editor'] });
    await ctx.userManager.createUser({ email: dora.mail, name: 'Dora', groups: ['editor'] });
    await ctx.userManager.createUser({ email: 'local-only@example.com', name: 'Local', password: localPassword, groups: ['admin'] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
    await slapd?.stop();
  });

  it('valid: a directory user signs in with the directory password (search-then-bind with the service account)', async () => {
    const response = await login(alice.mail, alice.password);
    expect(response.status, response.text).toBe(200);
    expect(response.body.user.email).toBe(alice.mail);
    expect(response.body.user.groups).toEqual(['editor']);
  });

  it('wrong: a wrong directory password is 401, and the local password does not bypass the directory', async () => {
    expectClientError(await login(alice.mail, 'not the directory password'), 401);
    expectClientError(await login(alice.mail, localPassword), 401);
    expect((await login(alice.mail, alice.password)).status).toBe(200);
  });

  it('lockout still holds for directory users (ASVS 2.2.1): the right password is refused while locked', async () => {
    for (let i = 0; i < 3; i++) await login(dora.mail, `wrong ${i}`);
    expectClientError(await login(dora.mail, dora.password), 423);
    const user = (await ctx.userManager.findByEmail(dora.mail))!;
    expect(ctx.userManager.isLockedOut(user)).toBe(true);
    await ctx.userManager.setLockoutEnd(user, null);
    expect((await login(dora.mail, dora.password)).status).toBe(200);
  });

  it('an invited user (invite not accepted) who is in the directory gets 403 not_allowed, stays invited, keeps the invite (OWASP ASVS 4.0 V2.3: activation through the invite only)', async () => {
    const invited = await ctx.userManager.createInvitedUser({ email: erin.mail, name: 'Erin', groups: ['editor'] });
    expect(invited.succeeded).toBe(true);
    const { user, token } = invited.value!;
    const response = await login(erin.mail, erin.password);
    expectClientError(response, 403);
    expect(response.body.code).toBe('not_allowed');
    const after = (await ctx.userManager.findById(user.id))!;
    expect(after.lastLoginAt).toBeNull();
    expect(deriveUserState(after, new Date())).toBe('invited');
    expect(await ctx.userManager.verifyUserToken(after, 'invite', token)).toBe(true);
    expectClientError(await login(erin.mail, 'not the directory password'), 401);
  });

  it('offboarding (OWASP ASVS 4.0 2.5.x, 5.0 6.3.x): a user the directory authenticated, then deleted from it, cannot sign in with a local password', async () => {
    // Frank has a local password too (imported, or set before the directory was connected).
    const oldLocal = 'frank local passphrase 1';
    await ctx.userManager.createUser({ email: frank.mail, name: 'Frank', password: oldLocal, groups: ['editor'] });
    const first = await login(frank.mail, frank.password);
    expect(first.status, first.text).toBe(200);
    // The directory owns Frank's password now: the stale local hash is gone, his sessions are not.
    expect((await ctx.userManager.findByEmail(frank.mail))!.passwordHash).toBeNull();
    await slapd.deleteUser(frank.uid);
    expectClientError(await login(frank.mail, oldLocal), 401);
    expectClientError(await login(frank.mail, frank.password), 401);
    // A local password set through the back office while in the directory would be the same back door: refused.
    await ctx.userManager.createUser({ email: gina.mail, name: 'Gina', password: 'gina local passphrase 2', groups: ['editor'] });
    const signedIn = await login(gina.mail, gina.password);
    expect(signedIn.status, signedIn.text).toBe(200);
    const stored = (await ctx.userManager.findByEmail(gina.mail))!;
    const changed = await ctx.userManager.changePassword(stored, gina.password, 'gina new local passphrase 3');
    expect(changed.succeeded).toBe(false);
    expect(changed.errors.map((e) => e.code)).toEqual(['not_supported']);
    await slapd.deleteUser(gina.uid);
    expectClientError(await login(gina.mail, 'gina new local passphrase 3'), 401);
    expectClientError(await login(gina.mail, 'gina local passphrase 2'), 401);
    // Local-only accounts (never vouched for by the directory) keep their local password.
    expect((await login('local-only@example.com', localPassword)).status).toBe(200);
  });

  it('unknown: a username in neither the directory nor the database is 401, counted like any unknown username', async () => {
    expectClientError(await login('nobody@ldap.example', 'whatever password 1'), 401);
    for (let i = 0; i < 3; i++) await login('ghost@ldap.example', `whatever ${i}`);
    expectClientError(await login('ghost@ldap.example', 'whatever'), 423);
  });

  it('with usernameIsEmail (the default) and a filter on uid, createUsers creates no user who could sign in only once: the directory entry whose email is not the username signed in with is refused, never created', async () => {
    const ownDb = await createTestDatabase();
    const own = await ldapApp(ownDb, new LdapPasswordChecker(options({ createUsers: true, searchFilter: '(uid={username})' })), 1000);
    try {
      const http = new HttpClient(own.url);
      // Created with the email as its username (usernameIsEmail), such a user was found by neither key afterwards: "bob"
      // looked up no email (and creating again clashed), the email was no uid the filter found (no local hash behind).
      const first = await http.login(bob.uid, bob.password);
      const again = await http.login(bob.uid, bob.password);
      const byEmail = await http.login(bob.mail, bob.password);
      const created = await own.userManager.findByEmail(bob.mail);
      expect([first.status, again.status, byEmail.status, created]).toEqual([401, 401, 401, null]);
      expect(first.body).toEqual(again.body);
    } finally {
      await own.close();
      await ownDb.drop();
    }
  });

  it('OWASP ASVS 5.0 6.3.8 (enumeration): an unknown username and a directory user\'s wrong password answer alike (status, body) in about the same time', async () => {
    const ownDb = await createTestDatabase();
    const own = await ldapApp(ownDb, new LdapPasswordChecker(options()), 1000);
    try {
      await own.userManager.createUser({ email: alice.mail, name: 'Alice', groups: ['editor'] });
      const http = new HttpClient(own.url);
      const wrong = await http.login(alice.mail, 'not the directory password');
      const unknown = await http.login('nobody-at-all@ldap.example', 'not the directory password');
      expect([unknown.status, unknown.body]).toEqual([wrong.status, wrong.body]);
      expect(wrong.status).toBe(401);
      const timing = await compareMedians(
        15,
        () => http.login(alice.mail, 'not the directory password'),
        (i) => http.login(`nobody-${i}@ldap.example`, 'not the directory password'),
        { tolerance: 0.35 },
      );
      expect(Math.abs(timing.ratio - 1), JSON.stringify(timing)).toBeLessThanOrEqual(0.35);
    } finally {
      await own.close();
      await ownDb.drop();
    }
  });

  it('a user only in the local database signs in with the local hash (the directory answers fallback)', async () => {
    expect((await login('local-only@example.com', localPassword)).status).toBe(200);
    expectClientError(await login('local-only@example.com', 'wrong password'), 401);
  });

  it('auto-create: the first directory sign-in of an unknown user creates them with name, email and defaultGroups', async () => {
    expect(await ctx.userManager.findByEmail(bob.mail)).toBeNull();
    expectClientError(await login(bob.mail, 'wrong bob password'), 401);
    expect(await ctx.userManager.findByEmail(bob.mail)).toBeNull();
    const first = await login(bob.mail, bob.password);
    expect(first.status, first.text).toBe(200);
    const created = (await ctx.userManager.findByEmail(bob.mail))!;
    expect(created).toMatchObject({ email: bob.mail, name: bob.cn, groups: ['writer'], passwordHash: null });
    expect((await login(bob.mail, bob.password)).status).toBe(200);
    expect((await ctx.userManager.findByEmail(bob.mail))!.id).toBe(created.id);
  });

  it('step-up (POST /auth/reauthenticate) of a directory user checks the directory password, also without a local hash (created by the directory, or retired)', async () => {
    await ctx.userManager.createUser({ email: hana.mail, name: 'Hana', password: 'hana local passphrase 1', groups: ['editor'] });
    const http = new HttpClient(ctx.url);
    expect((await http.login(hana.mail, hana.password)).status).toBe(200);
    expect((await ctx.userManager.findByEmail(hana.mail))!.passwordHash).toBeNull();
    const wrong = await http.post('/auth/reauthenticate', { password: 'not the directory password' });
    expectClientError(wrong, 401);
    const stepUp = await http.post('/auth/reauthenticate', { password: hana.password });
    expect(stepUp.status, stepUp.text).toBe(200);
    // Bob was created by the directory (no local hash ever): the same.
    const bobHttp = new HttpClient(ctx.url);
    expect((await bobHttp.login(bob.mail, bob.password)).status).toBe(200);
    const bobStepUp = await bobHttp.post('/auth/reauthenticate', { password: bob.password });
    expect(bobStepUp.status, bobStepUp.text).toBe(200);
  });

  it('RFC 4513 5.1.2 (unauthenticated bind): an empty, whitespace-only or NUL password never succeeds for a directory user without a local hash on any path (login, step-up, change-password, 2FA disable); an empty one never reaches the checker', async () => {
    const seen: string[] = [];
    class RecordingChecker extends LdapPasswordChecker {
      protected override async authenticate(username: string, password: string) {
        seen.push(password);
        return super.authenticate(username, password);
      }
    }
    const ownDb = await createTestDatabase();
    const own = await ldapApp(ownDb, new RecordingChecker(options({ createUsers: true })), 100);
    try {
      const http = new HttpClient(own.url);
      expect((await http.login(alice.mail, alice.password)).status).toBe(200);
      const user = (await own.userManager.findByEmail(alice.mail))!;
      expect(user.passwordHash).toBeNull();
      expect((await own.userManager.setTwoFactorEnabled(user, true)).succeeded).toBe(true);
      const { token } = await own.app.get(BackOfficeSessionService).create(user, {});
      const session = new HttpClient(own.url);
      session.cookies.set('backoffice_session', token);
      session.cookies.set('XSRF-TOKEN', BackOfficeSessionCookies.xsrfTokenFor(token));
      seen.length = 0;
      for (const password of ['', '   ', '\t', '\u0000', 'a\u0000']) {
        const attempts = [
          await new HttpClient(own.url).login(alice.mail, password),
          await session.post('/auth/reauthenticate', { password }),
          await session.post('/auth/change-password', { currentPassword: password, newPassword: 'a brand new long passphrase 1' }),
          await session.post('/auth/2fa/disable', { password }),
        ];
        for (const response of attempts) {
          expect([JSON.stringify(password), response.status]).toEqual([JSON.stringify(password), expect.toSatisfy((status: number) => status >= 400 && status < 500)]);
        }
      }
      expect(seen).not.toContain('');
      const after = (await own.userManager.findById(user.id))!;
      expect([after.twoFactorEnabled, after.passwordHash]).toEqual([true, null]);
      // The session still works (nothing above signed anyone in or out) and the right password still passes.
      expect((await session.post('/auth/reauthenticate', { password: alice.password })).status).toBe(200);
    } finally {
      await own.close();
      await ownDb.drop();
    }
  });

  it('no connection leak (OWASP ASVS 5.0 15.2.2): after 50 failed sign-ins against the directory, and 50 against one that never answers, this process holds no connection to either', async () => {
    // Reads (and drops) what it gets and never answers; \`readableEnded\` says the client closed its side.
    const blackhole = await fakeDirectory((socket) => socket.resume());
    const { sockets: held, port: blackholePort } = blackhole;
    const ownDb = await createTestDatabase();
    const own = await ldapApp(ownDb, new LdapPasswordChecker(options()), 1000);
    const down = await ldapApp(ownDb, new LdapPasswordChecker(options({ url: `ldap://127.0.0.1:${blackholePort}`, timeoutMs: 300, connectTimeoutMs: 300 })), 1000);
    /** Established connections of this process to `port` (`ss` names the owning process). */
    const ownConnectionsTo = (port: number) =>
      execFileSync('ss', ['-tnpH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' })
        .split('\n')
        .filter((line) => line.includes(`pid=${process.pid},`));
    try {
      for (const [app, label] of [[own, 'directory'], [down, 'never answers']] as const) {
        const http = new HttpClient(app.url);
        for (let batch = 0; batch < 5; batch++) {
          const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => http.login(i % 2 ? alice.mail : `nobody${batch}-${i}@ldap.example`, `wrong password ${batch}-${i}`)));
          expect([label, ...new Set(answers.map((a) => a.status))]).toEqual([label, 401]);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(ownConnectionsTo(slapd.ldapPort)).toEqual([]);
      expect(ownConnectionsTo(blackholePort)).toEqual([]);
      expect(held.length).toBe(50);
      expect(held.filter((socket) => !socket.readableEnded)).toHaveLength(0);
    } finally {
      await down.close();
      await own.close();
      await ownDb.drop();
      await blackhole.stop();
    }
  });

  it('without createUsers a directory-only user is not created; a directory entry without mail is not created either', async () => {
    const checker = new LdapPasswordChecker(options({ createUsers: false }));
    expect(await checker.checkUnknownUser(bob.mail, bob.password)).toEqual({ result: 'invalid' });
    const byUid = new LdapPasswordChecker(options({ createUsers: true, searchFilter: '(uid={username})' }));
    expect(await byUid.checkUnknownUser('nomail', noMail.password)).toEqual({ result: 'invalid' });
    const made = await byUid.checkUnknownUser('bob', bob.password);
    expect(made).toEqual({ result: 'valid', user: { email: bob.mail, name: bob.cn, username: 'bob', groups: ['editor'] } });
  });

  it('injection strings find nobody: *)(uid=*, *, \\, NUL, 10 kB give a 4xx, never a 200 or 5xx (RFC 4515 escaping)', async () => {
    const attacks = ['*)(uid=*', '*', `${alice.mail})(|(mail=*`, '*)(|(objectClass=*', '\\', '\\2a', 'a\u0000b', 'x'.repeat(10_000), `${'é'.repeat(5000)}@x.org`];
    for (const username of attacks) {
      for (const password of [alice.password, '*', 'x'.repeat(10_000)]) {
        const response = await login(username, password);
        expectClientError(response);
        expect([400, 401, 423]).toContain(response.status);
      }
    }
    const checker = new LdapPasswordChecker(options({ createUsers: true }));
    for (const username of ['*', '*)(uid=*', '*)(mail=*)(|(mail=*']) {
      expect(await checker.checkPassword(asUser(username), alice.password)).toBe('fallback');
      expect((await checker.checkUnknownUser(username, alice.password)).result).not.toBe('valid');
    }
    expect(await checker.checkPassword(asUser(alice.mail), '')).toBe('invalid');
    expect(await checker.checkPassword(asUser(alice.mail), 'a\u0000b')).toBe('invalid');
    const unescaped = new LdapPasswordChecker(options({ searchFilter: '(|(mail={username})(uid=nobody))' }));
    expect(await unescaped.checkPassword(asUser('*'), alice.password)).toBe('fallback');
  });

  it('a username whose filter matches several entries is refused (invalid, counted as a wrong password), never the first entry\'s bind', async () => {
    // A filter (as an operator could write one) that matches every person: Alice's own password must not pass.
    const wide = new LdapPasswordChecker(options({ searchFilter: '(|(mail={username})(objectClass=inetOrgPerson))', createUsers: true }));
    expect(await wide.checkPassword(asUser(alice.mail), alice.password)).toBe('invalid');
    expect(await wide.checkUnknownUser(alice.mail, alice.password)).toEqual({ result: 'invalid' });
    // The same search with one match signs in: the refusal is the ambiguity, not the filter.
    const narrow = new LdapPasswordChecker(options({ searchFilter: '(&(mail={username})(objectClass=inetOrgPerson))' }));
    expect(await narrow.checkPassword(asUser(alice.mail), alice.password)).toBe('valid');
  });

  it('DN template (direct bind) escapes the username as an RFC 4514 DN value', async () => {
    const checker = new LdapPasswordChecker({ url: slapd.url, allowInsecureConnection: true, userDnTemplate: `uid={username},${LDAP_PEOPLE}`, timeoutMs: 2000 });
    expect(await checker.checkPassword(asUser('comma,user'), comma.password)).toBe('valid');
    expect(await checker.checkPassword(asUser('comma,user'), alice.password)).toBe('invalid');
    expect(await checker.checkPassword(asUser('alice'), alice.password)).toBe('valid');
    expect(await checker.checkPassword(asUser(`alice,${LDAP_PEOPLE}`), alice.password)).toBe('invalid');
    expect(await checker.checkPassword(asUser('*'), alice.password)).toBe('invalid');
    expect(await checker.checkPassword(asUser(' alice'), alice.password)).toBe('valid');
  });

  it('LDAPS and StartTLS verify the server certificate', async () => {
    const tlsOptions = { ca: [slapd.certificate] };
    expect(await new LdapPasswordChecker(options({ url: slapd.ldapsUrl, tlsOptions })).checkPassword(asUser(alice.mail), alice.password)).toBe('valid');
    expect(await new LdapPasswordChecker(options({ startTls: true, tlsOptions })).checkPassword(asUser(alice.mail), alice.password)).toBe('valid');
    expect(await new LdapPasswordChecker(options({ startTls: true, tlsOptions })).checkPassword(asUser(alice.mail), 'wrong')).toBe('invalid');
    // An untrusted certificate is a directory that cannot be used: unavailable (deny) or fallback, never "valid".
    expect(await new LdapPasswordChecker(options({ url: slapd.ldapsUrl, onDirectoryDown: 'deny' })).checkPassword(asUser(alice.mail), alice.password)).toBe('unavailable');
    expect(await new LdapPasswordChecker(options({ startTls: true, onDirectoryDown: 'fallback' })).checkPassword(asUser(alice.mail), alice.password)).toBe('fallback');
  });

  it('a wrong service account password is treated as a directory outage (onDirectoryDown), not as a user failure', async () => {
    const checker = new LdapPasswordChecker(options({ bindPassword: 'wrong', onDirectoryDown: 'fallback' }));
    expect(await checker.checkPassword(asUser(alice.mail), alice.password)).toBe('fallback');
    // No local hash to fall back to (retired by the directory): `fallback` too, so the sign-in counts as any other's.
    expect(await checker.checkPassword(asUser(alice.mail, null), alice.password)).toBe('fallback');
    const deny = new LdapPasswordChecker(options({ bindPassword: 'wrong', onDirectoryDown: 'deny' }));
    expect(await deny.checkPassword(asUser(alice.mail, null), alice.password)).toBe('unavailable');
  });

  it('connect and operation timeouts: a server that never answers costs at most the timeout', async () => {
    const blackhole = await fakeDirectory();
    try {
      const checker = new LdapPasswordChecker(options({ url: blackhole.url, timeoutMs: 300, connectTimeoutMs: 300, onDirectoryDown: 'deny' }));
      const started = Date.now();
      expect(await checker.checkPassword(asUser(alice.mail), alice.password)).toBe('unavailable');
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await blackhole.stop();
    }
  });

  it('StartTLS timeout: a server that accepts StartTLS and then never completes the TLS handshake costs at most the timeout', async () => {
    // Answers the StartTLS extended request (whatever its message ID) with success, then reads and says nothing.
    const stalling = await fakeDirectory((socket) => {
      socket.once('data', (request: Buffer) => {
        socket.write(ldapRequest(request).reply(Buffer.from([0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])));
      });
    });
    try {
      const checker = new LdapPasswordChecker(options({ url: stalling.url, startTls: true, timeoutMs: 300, connectTimeoutMs: 300, onDirectoryDown: 'deny' }));
      const started = Date.now();
      const answer = await Promise.race([checker.checkPassword(asUser(alice.mail), alice.password), new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000))]);
      expect(answer).toBe('unavailable');
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await stalling.stop();
    }
  });

  it('OWASP ASVS 5.0 15.2.2: a directory that answers every operation just within timeoutMs costs one check at most connectTimeoutMs + timeoutMs in all, not one timeout per operation', async () => {
    // Answers every bind with success and every search with one entry, each after 900 ms (under the 1000 ms timeout).
    const slow = await fakeDirectory((socket) => {
      socket.on('data', (request: Buffer) => {
        const { tag, reply: message } = ldapRequest(request);
        setTimeout(() => {
          if (socket.destroyed) return;
          if (tag === 0x60) socket.write(message(Buffer.from([0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])));
          if (tag === 0x63) {
            const dn = Buffer.from(`uid=alice,${LDAP_PEOPLE}`);
            socket.write(message(Buffer.concat([Buffer.from([0x64, dn.length + 4, 0x04, dn.length]), dn, Buffer.from([0x30, 0x00])])));
            socket.write(message(Buffer.from([0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])));
          }
        }, 900);
      });
    });
    try {
      const { url, sockets } = slow;
      // Service bind, search, user bind: 3 x 900 ms, each within the 1000 ms operation timeout.
      const checker = new LdapPasswordChecker(options({ url, timeoutMs: 1000, connectTimeoutMs: 200, onDirectoryDown: 'deny' }));
      const started = Date.now();
      const answer = await checker.checkPassword(asUser(alice.mail), alice.password);
      const elapsed = Date.now() - started;
      expect([answer, elapsed < 1200 + 500]).toEqual(['unavailable', true]);
      // No socket is left open once the check has answered.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(sockets.filter((s) => !s.destroyed && !s.readableEnded)).toHaveLength(0);
    } finally {
      await slow.stop();
    }
  });

  it('a user bind the directory refuses with another result code (389-DS answers 53 for a locked account) is invalid, never a fall-back to the local hash', async () => {
    let resultCode = 53;
    // Answers every bind request (application tag 0x60) with a BindResponse carrying `resultCode`.
    const refusing = await fakeDirectory((socket) => {
      socket.on('data', (request: Buffer) => {
        const { tag, reply } = ldapRequest(request);
        if (tag !== 0x60) return;
        socket.write(reply(Buffer.from([0x61, 0x07, 0x0a, 0x01, resultCode, 0x04, 0x00, 0x04, 0x00])));
      });
    });
    try {
      const { url } = refusing;
      const checker = new LdapPasswordChecker({ url, allowInsecureConnection: true, userDnTemplate: `uid={username},${LDAP_PEOPLE}`, timeoutMs: 1000, onDirectoryDown: 'fallback' });
      for (const code of [53, 50, 32]) {
        resultCode = code;
        expect([code, await checker.checkPassword(asUser('alice'), alice.password)]).toEqual([code, 'invalid']);
      }
      // busy (51) and unavailable (52) are the directory saying it cannot answer now: an outage (onDirectoryDown).
      for (const code of [51, 52]) {
        resultCode = code;
        expect([code, await checker.checkPassword(asUser('alice'), alice.password)]).toEqual([code, 'fallback']);
      }
    } finally {
      await refusing.stop();
    }
  });

  it('OWASP ASVS 4.0 2.2.1: a right password whose entry the directory then refuses to read (createUsers) is an outage, never counted as a wrong password', async () => {
    // Accepts every bind (BindResponse 0); answers every search (application tag 0x63) with SearchResultDone 50.
    const readRefusing = await fakeDirectory((socket) => {
      socket.on('data', (request: Buffer) => {
        const { tag, reply } = ldapRequest(request);
        if (tag !== 0x60 && tag !== 0x63) return;
        socket.write(reply(Buffer.from([tag === 0x60 ? 0x61 : 0x65, 0x07, 0x0a, 0x01, tag === 0x60 ? 0 : 50, 0x04, 0x00, 0x04, 0x00])));
      });
    });
    try {
      const { url } = readRefusing;
      const checker = new LdapPasswordChecker({ url, allowInsecureConnection: true, userDnTemplate: `uid={username},${LDAP_PEOPLE}`, timeoutMs: 1000, onDirectoryDown: 'fallback', createUsers: true });
      expect(await checker.checkPassword(asUser('alice'), alice.password)).toBe('fallback');
    } finally {
      await readRefusing.stop();
    }
  });

  it('OWASP ASVS 4.0 2.2.1: with onDirectoryDown deny, an outage refuses a user whose local password the directory retired (no hash to fall back to) without counting toward lockout', async () => {
    const denyDb = await createTestDatabase();
    const deny = await ldapApp(denyDb, new LdapPasswordChecker(options({ onDirectoryDown: 'deny' })), 3);
    try {
      await deny.userManager.createUser({ email: ivy.mail, name: 'Ivy', password: 'ivy local passphrase 1', groups: ['editor'] });
      const http = new HttpClient(deny.url);
      expect((await http.login(ivy.mail, ivy.password)).status).toBe(200);
      expect((await deny.userManager.findByEmail(ivy.mail))!.passwordHash).toBeNull();
      await slapd.pause();
      try {
        // Twice the lockout threshold (3): the directory cannot answer.
        for (let i = 0; i < 6; i++) expectClientError(await new HttpClient(deny.url).login(ivy.mail, ivy.password), 401);
        expectClientError(await http.post('/auth/reauthenticate', { password: ivy.password }), 401);
      } finally {
        await slapd.resume();
      }
      const after = (await deny.userManager.findByEmail(ivy.mail))!;
      expect([after.accessFailedCount, after.lockoutEnd]).toEqual([0, null]);
      expect((await new HttpClient(deny.url).login(ivy.mail, ivy.password)).status).toBe(200);
    } finally {
      await deny.close();
      await denyDb.drop();
    }
  });

  it('step-up of a user the directory does not know and who has no local password (signs in through an external provider) is 409 no_local_password, counted toward no lockout', async () => {
    const sso = (await ctx.userManager.createUser({ email: 'sso-only@example.com', name: 'SSO only', groups: ['editor'] })).value!;
    // Signed in through a provider: a session issued by the module, as the external callback issues it.
    const { token } = await ctx.app.get(BackOfficeSessionService).create(sso, {});
    const http = new HttpClient(ctx.url);
    http.cookies.set('backoffice_session', token);
    http.cookies.set('XSRF-TOKEN', BackOfficeSessionCookies.xsrfTokenFor(token));
    for (let i = 0; i < 4; i++) {
      const refused = await http.post('/auth/reauthenticate', { password: `an identity provider password ${i}` });
      expectClientError(refused, 409);
      expect(refused.body.code).toBe('no_local_password');
    }
    const after = (await ctx.userManager.findById(sso.id))!;
    expect([after.accessFailedCount, after.lockoutEnd]).toEqual([0, null]);
  });

  it('OWASP ASVS 4.0 2.2.1: with onDirectoryDown deny, an outage refuses every sign-in (401 invalid_credentials, audited) but counts toward no lockout', async () => {
    const denyDb = await createTestDatabase();
    const deny = await ldapApp(denyDb, new LdapPasswordChecker(options({ onDirectoryDown: 'deny' })), 3);
    try {
      const user = await deny.userManager.createUser({ email: alice.mail, name: 'Alice', password: localPassword, groups: ['editor'] });
      const client = new HttpClient(deny.url);
      const wrong = await client.login(alice.mail, 'not the directory password');
      expectClientError(wrong, 401);
      const recorder = NotificationRecorder.attach(deny.app);
      await slapd.pause();
      try {
        // Five times the lockout threshold, for a known user and for an unknown username alike (no enumeration).
        for (let i = 0; i < 5; i++) {
          for (const username of [alice.mail, 'ghost-in-the-outage@ldap.example']) {
            const down = await client.login(username, alice.password);
            expectClientError(down, 401);
            expect({ ...down.body, requestId: undefined }).toEqual({ ...wrong.body, requestId: undefined });
          }
        }
      } finally {
        await slapd.resume();
      }
      const after = (await deny.userManager.findById(user.value!.id))!;
      expect([after.accessFailedCount, after.lockoutEnd]).toEqual([1, null]);
      const failed = recorder.named(BackOfficeEvents.LoginFailed) as UserLoginFailedNotification[];
      expect(failed).toHaveLength(10);
      expect(new Set(failed.map((e) => e.reason))).toEqual(new Set(['password_check_unavailable']));
      expect((await client.login('ghost-in-the-outage@ldap.example', 'a wrong password')).status).toBe(401);
      const back = await client.login(alice.mail, alice.password);
      expect(back.status, back.text).toBe(200);
    } finally {
      await deny.close();
      await denyDb.drop();
    }
  });

  it('OWASP ASVS 4.0 2.2.1: a password change (POST /auth/change-password) during an outage with deny is refused 401 and counts toward no lockout', async () => {
    const denyDb = await createTestDatabase();
    const deny = await ldapApp(denyDb, new LdapPasswordChecker(options({ onDirectoryDown: 'deny', keepLocalPasswords: true })), 3);
    try {
      const user = await deny.userManager.createUser({ email: 'local-changer@example.com', name: 'Local', password: localPassword, groups: ['editor'] });
      const http = new HttpClient(deny.url);
      expect((await http.login('local-changer@example.com', localPassword)).status).toBe(200);
      await slapd.pause();
      try {
        for (let i = 0; i < 5; i++) {
          const change = await http.post('/auth/change-password', { currentPassword: localPassword, newPassword: `a new long passphrase ${i}` });
          expectClientError(change, 401);
          expect(change.body.code).toBe('invalid_credentials');
        }
      } finally {
        await slapd.resume();
      }
      const after = (await deny.userManager.findById(user.value!.id))!;
      expect([after.accessFailedCount, after.lockoutEnd]).toEqual([0, null]);
    } finally {
      await deny.close();
      await denyDb.drop();
    }
  });

  it('OWASP ASVS 4.0 2.2.1: with onDirectoryDown deny and createUsers, a directory user\'s first sign-ins during an outage (no local user yet) count toward no lockout: they sign in once it ends', async () => {
    const ownDb = await createTestDatabase();
    const own = await ldapApp(ownDb, new LdapPasswordChecker(options({ createUsers: true, onDirectoryDown: 'deny' })), 3);
    try {
      const recorder = NotificationRecorder.attach(own.app);
      const http = new HttpClient(own.url);
      await slapd.pause();
      try {
        for (let i = 0; i < 4; i++) {
          const refused = await http.login(comma.mail, comma.password);
          expectClientError(refused, 401);
          expect(refused.body.code).toBe('invalid_credentials');
        }
      } finally {
        await slapd.resume();
      }
      const reasons = (recorder.named(BackOfficeEvents.LoginFailed) as UserLoginFailedNotification[]).map((n) => n.reason);
      expect(reasons).toEqual(Array(4).fill('password_check_unavailable'));
      const after = await http.login(comma.mail, comma.password);
      expect(after.status, after.text).toBe(200);
      expect(after.body.user.email).toBe(comma.mail);
    } finally {
      await own.close();
      await ownDb.drop();
    }
  });

  it('OWASP ASVS 4.0 2.2.1 / 5.0 6.3.8 (enumeration): with onDirectoryDown fallback and createUsers, wrong passwords during an outage lock a local user, a directory user (no local hash) and an unknown username alike: 423 reveals no account', async () => {
    const ownDb = await createTestDatabase();
    const own = await ldapApp(ownDb, new LdapPasswordChecker(options({ createUsers: true, onDirectoryDown: 'fallback' })), 3);
    try {
      await own.userManager.createUser({ email: 'outage-local@example.com', name: 'Local', password: localPassword, groups: ['editor'] });
      const http = new HttpClient(own.url);
      // Created by its first directory sign-in: no local hash.
      expect((await http.login(comma.mail, comma.password)).status).toBe(200);
      const names = { local: 'outage-local@example.com', directory: comma.mail, unknown: 'outage-ghost@example.com' };
      const answers: Record<keyof typeof names, Array<[number, string]>> = { local: [], directory: [], unknown: [] };
      const guessAll = async (guess: string) => {
        for (const [who, username] of Object.entries(names) as Array<[keyof typeof names, string]>) {
          const refused = await new HttpClient(own.url).login(username, guess);
          answers[who].push([refused.status, refused.body.code]);
        }
      };
      await slapd.pause();
      try {
        for (let i = 0; i < 5; i++) await guessAll(`a wrong guess ${i}`);
      } finally {
        await slapd.resume();
      }
      // Once the directory is back, one more guess at each still answers alike.
      await guessAll('a wrong guess after the outage');
      expect(answers.unknown).toEqual(answers.local);
      expect(answers.directory).toEqual(answers.local);
    } finally {
      await own.close();
      await ownDb.drop();
    }
  });

  it('OWASP ASVS 4.0 2.2.1: step-up (POST /auth/reauthenticate) of a directory user without a local hash during an outage under fallback is 401 invalid_credentials, not counted (never 409 no_local_password: the directory owns the password)', async () => {
    const ownDb = await createTestDatabase();
    const own = await ldapApp(ownDb, new LdapPasswordChecker(options({ createUsers: true, onDirectoryDown: 'fallback' })), 3);
    try {
      const http = new HttpClient(own.url);
      expect((await http.login(comma.mail, comma.password)).status).toBe(200);
      await slapd.pause();
      try {
        for (let i = 0; i < 4; i++) {
          const refused = await http.post('/auth/reauthenticate', { password: comma.password });
          expectClientError(refused, 401);
          expect(refused.body.code).toBe('invalid_credentials');
        }
      } finally {
        await slapd.resume();
      }
      const after = (await own.userManager.findByEmail(comma.mail))!;
      expect([after.accessFailedCount, after.lockoutEnd]).toEqual([0, null]);
      expect((await http.post('/auth/reauthenticate', { password: comma.password })).status).toBe(200);
    } finally {
      await own.close();
      await ownDb.drop();
    }
  });

  it('directory stopped mid-test: never a 500; fallback lets local hashes work, deny refuses; back when it returns', async () => {
    await slapd.pause();
    try {
      const down = await login(alice.mail, alice.password);
      expectClientError(down, 401);
      expect((await login('local-only@example.com', localPassword)).status).toBe(200);
      expect(await ctx.userManager.findByEmail('new-while-down@ldap.example')).toBeNull();
      expectClientError(await login('new-while-down@ldap.example', 'any password at all'), 401);
      const deny = new LdapPasswordChecker(options({ onDirectoryDown: 'deny' }));
      expect(await deny.checkPassword(asUser('local-only@example.com'), localPassword)).toBe('unavailable');
      const fallback = new LdapPasswordChecker(options({ onDirectoryDown: 'fallback' }));
      expect(await fallback.checkPassword(asUser(alice.mail), alice.password)).toBe('fallback');
    } finally {
      await slapd.resume();
    }
    expect((await login(alice.mail, alice.password)).status).toBe(200);
  });
});

describe('LdapPasswordChecker options', () => {
  const base = { url: 'ldap://127.0.0.1:389', searchBase: 'dc=example,dc=org', allowInsecureConnection: true };
  it('OWASP ASVS 4.0 9.2.2 / 2.8: cleartext ldap:// without StartTLS is refused at construction unless allowInsecureConnection opts in', () => {
    const plain = { ...base, allowInsecureConnection: undefined };
    expect(() => new LdapPasswordChecker(plain)).toThrow(/ldap\.url.*cleartext.*(startTls|ldaps).*allowInsecureConnection/s);
    expect(() => new LdapPasswordChecker({ ...plain, allowInsecureConnection: false })).toThrow(/ldap\.url/);
    expect(() => new LdapPasswordChecker({ ...plain, allowInsecureConnection: 'yes' } as never)).toThrow(/ldap\.allowInsecureConnection/);
    expect(() => new LdapPasswordChecker({ ...plain, startTls: true })).not.toThrow();
    expect(() => new LdapPasswordChecker({ ...plain, url: 'ldaps://ldap.example.org' })).not.toThrow();
    expect(() => new LdapPasswordChecker({ ...plain, allowInsecureConnection: true })).not.toThrow();
  });

  it('OWASP ASVS 4.0 9.2.1: tlsOptions that turn certificate checks off (rejectUnauthorized: false) are refused unless allowInsecureConnection opts in', () => {
    const tls = { url: 'ldaps://ldap.example.org', searchBase: 'dc=example,dc=org' };
    expect(() => new LdapPasswordChecker({ ...tls, tlsOptions: { rejectUnauthorized: false } })).toThrow(/ldap\.tlsOptions.*rejectUnauthorized.*allowInsecureConnection/s);
    expect(() => new LdapPasswordChecker({ ...tls, url: 'ldap://ldap.example.org', startTls: true, tlsOptions: { rejectUnauthorized: false } })).toThrow(/ldap\.tlsOptions/);
    expect(() => new LdapPasswordChecker({ ...tls, tlsOptions: { rejectUnauthorized: true, ca: ['x'] } })).not.toThrow();
    expect(() => new LdapPasswordChecker({ ...tls, tlsOptions: { rejectUnauthorized: false }, allowInsecureConnection: true })).not.toThrow();
  });
  it('OWASP ASVS 4.0 7.1.1: credentials written into the URL are refused and never repeated in the error message', () => {
    for (const url of ['ldaps://cn=admin:hunter2@ldap.example.org', 'ldap://admin:hunter2@ldap.example.org', 'ldaps://admin:hunter2@ldap.example.org/dc=x', 'ldap://admin:hunter2/x@ldap.example.org']) {
      let message = '';
      try {
        new LdapPasswordChecker({ url, searchBase: 'dc=example,dc=org', startTls: url.startsWith('ldap:') });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, url).toMatch(/ldap\.url/);
      expect(message, url).not.toContain('hunter2');
    }
  });
  it('OWASP ASVS 4.0 7.1.1: the service account password is in no log line or error: not when the checker is printed, serialised, or passed where a provider spec belongs', () => {
    const secret = 'service account secret 77';
    const checker = new LdapPasswordChecker({ ...base, bindDn: 'cn=reader,dc=example,dc=org', bindPassword: secret });
    expect(inspect(checker, { depth: 10 })).not.toContain(secret);
    expect(JSON.stringify(checker)).not.toContain(secret);
    expect(JSON.stringify({ ...checker })).not.toContain(secret);
    // A common slip: the instance itself instead of { useValue: checker }; start-up fails, naming the option only.
    let message = '';
    try {
      BackOfficeIdentityModule.forRoot({ passwordChecker: checker as never });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/passwordChecker/);
    expect(message).not.toContain(secret);
  });
  it('refuses wrong options with a message naming the option', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...base, url: 'http://x' }, /ldap\.url/],
      [{ ...base, url: 'ldap://host/dc=x' }, /ldap\.url/],
      [{ url: base.url }, /ldap\.searchBase/],
      [{ ...base, bindDn: 'cn=x' }, /ldap\.bindPassword/],
      [{ ...base, searchFilter: 'mail={username}' }, /ldap\.searchFilter/],
      [{ ...base, searchFilter: '(mail=x)' }, /ldap\.searchFilter/],
      [{ url: base.url, userDnTemplate: 'uid=x' }, /ldap\.userDnTemplate/],
      [{ ...base, timeoutMs: 0 }, /ldap\.timeoutMs/],
      [{ ...base, connectTimeoutMs: 'x' }, /ldap\.connectTimeoutMs/],
      [{ ...base, onDirectoryDown: 'maybe' }, /ldap\.onDirectoryDown/],
      [{ ...base, defaultGroups: 'editor' }, /ldap\.defaultGroups/],
      [{ ...base, startTls: true, url: 'ldaps://h' }, /ldap\.startTls/],
    ];
    for (const [value, message] of cases) expect(() => new LdapPasswordChecker(value as never), JSON.stringify(value)).toThrow(message);
    expect(() => new LdapPasswordChecker({ ...base, bindDn: 'cn=x', bindPassword: 'very secret' } as never)).not.toThrow();
    try {
      new LdapPasswordChecker({ ...base, bindDn: 'cn=x', bindPassword: '' });
    } catch (error) {
      expect((error as Error).message).toMatch(/ldap\.bindPassword/);
    }
  });
});
