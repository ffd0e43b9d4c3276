import {
  BackOfficeBackgroundTasks,
  LdapPasswordChecker,
  TypeOrmBackOfficeUserStore,
  type BackOfficeUser,
  type LdapPasswordCheckerOptions,
} from '../../src/backoffice-identity/index.js';
import pg from 'pg';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { Mailbox } from '../support/mailbox.js';
import { NotificationRecorder } from '../support/notification-recorder.js';
import { lockWaiters, until } from '../support/lock-waits.js';
import { TestSlapd } from '../support/slapd.js';
import { linkParams } from '../support/smtp.js';

const kim = { uid: 'kim', cn: 'Kim Leaver', mail: 'kim@ldap.example', password: 'kim in the directory 1' };
const lou = { uid: 'lou', cn: 'Lou Early Link', mail: 'lou@ldap.example', password: 'lou in the directory 2' };
const max = { uid: 'max', cn: 'Max Created', mail: 'max@ldap.example', password: 'max in the directory 3' };
const ned = { uid: 'ned', cn: 'Ned Kept', mail: 'ned@ldap.example', password: 'ned in the directory 4' };
const oli = { uid: 'oli', cn: 'Oli Admin Reset', mail: 'oli@ldap.example', password: 'oli in the directory 5' };
const quin = { uid: 'quin', cn: 'Quin Marked Between', mail: 'quin@ldap.example', password: 'quin in the directory 7' };
const pat = { uid: 'pat', cn: 'Pat Marked Meanwhile', mail: 'pat@ldap.example', password: 'pat in the directory 6' };

/**
 * A custom user store that hands `directoryManagedAt` back as an ISO string, as JSON-backed or raw-SQL stores do
 * (the built-in store turns it into a Date).
 */
class IsoDateUserStore extends TypeOrmBackOfficeUserStore {
  private static iso(user: BackOfficeUser | null): BackOfficeUser | null {
    if (user?.directoryManagedAt) (user as unknown as { directoryManagedAt: string }).directoryManagedAt = new Date(user.directoryManagedAt).toISOString();
    return user;
  }
  override async findById(id: string) {
    return IsoDateUserStore.iso(await super.findById(id));
  }
  override async findByNormalizedEmail(normalizedEmail: string) {
    return IsoDateUserStore.iso(await super.findByNormalizedEmail(normalizedEmail));
  }
  override async findByNormalizedUsername(normalizedUsername: string) {
    return IsoDateUserStore.iso(await super.findByNormalizedUsername(normalizedUsername));
  }
}

/** Only an explicit opt-out skips the real directory; a machine without slapd fails the suite (see .ci/run). */
const describeIfSlapd = process.env.SKIP_SLAPD_TESTS === '1' ? describe.skip : describe;

describeIfSlapd('LDAP offboarding: directory-managed users get no local password back by email (real OpenLDAP slapd)', () => {
  let slapd: TestSlapd;
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const options = (extra: Partial<LdapPasswordCheckerOptions> = {}): LdapPasswordCheckerOptions => slapd.checkerOptions(extra);
  const drain = (app: IdentityApp = ctx) => app.app.get(BackOfficeBackgroundTasks).drain();
  const mails = (to: string, type: string) => Mailbox.messages.filter((m) => m.to === to && m.type === type);
  const forgot = (app: IdentityApp, email: string) => new HttpClient(app.url).post('/auth/forgot-password', { email });
  const login = (app: IdentityApp, username: string, password: string) => new HttpClient(app.url).login(username, password);

  beforeAll(async () => {
    slapd = await new TestSlapd().start([kim, lou, max, ned, oli, pat, quin]);
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: {
        rateLimits: { enabled: false },
        passwordChecker: { useValue: new LdapPasswordChecker(options({ createUsers: true, onDirectoryDown: 'fallback' })) },
      },
      providers: [Mailbox],
    });
    await ctx.userManager.createUser({ email: 'boss@example.com', name: 'Boss', password: TEST_PASSWORD, groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login('boss@example.com', TEST_PASSWORD)).status).toBe(200);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
    await slapd?.stop();
  });

  it('OWASP ASVS 4.0 V2.5 (credential recovery) / 5.0 6.4: forgot-password of a user the directory authenticated, then removed, sends no reset link (202 as for anyone; a notice instead) and no local password gets them back in', async () => {
    // Kim reset her local password once before the directory was connected (so she "had a local password").
    await ctx.userManager.createUser({ email: kim.mail, name: 'Kim', password: 'kim local passphrase 1', groups: ['editor'] });
    await ctx.userManager.createUser({ email: 'local-kept@example.com', name: 'Local', password: TEST_PASSWORD, groups: ['editor'] });
    expect((await forgot(ctx, kim.mail)).status).toBe(202);
    await drain();
    const early = linkParams(mails(kim.mail, 'PasswordReset')[0].text, 'reset-password');
    const earlyReset = await new HttpClient(ctx.url).post('/auth/reset-password', { userId: early.userId, token: early.token, newPassword: 'kim local passphrase 2' });
    expect(earlyReset.status, earlyReset.text).toBe(200);
    Mailbox.messages.length = 0;
    expect((await login(ctx, kim.mail, kim.password)).status).toBe(200);
    expect((await ctx.userManager.findByEmail(kim.mail))!.directoryManagedAt).toBeInstanceOf(Date);
    await slapd.deleteUser(kim.uid);
    const recorder = NotificationRecorder.attach(ctx.app);
    try {
      const unknown = await forgot(ctx, 'nobody-at-all@example.com');
      const local = await forgot(ctx, 'local-kept@example.com');
      const leaver = await forgot(ctx, kim.mail);
      await drain();
      // No enumeration: the same answer for the leaver, a local user and an unknown address.
      expect([leaver.status, leaver.body]).toEqual([202, { status: 'accepted' }]);
      expect([unknown.status, unknown.body]).toEqual([leaver.status, leaver.body]);
      expect([local.status, local.body]).toEqual([leaver.status, leaver.body]);
      // A local-only user still gets a link; the leaver gets none, only a notice without a link.
      expect(mails('local-kept@example.com', 'PasswordReset')).toHaveLength(1);
      expect(mails(kim.mail, 'PasswordReset')).toHaveLength(0);
      const notice = mails(kim.mail, 'PasswordManagedByDirectory');
      expect(notice).toHaveLength(1);
      expect(notice[0].text).toMatch(/directory/i);
      expect(notice[0].text).not.toMatch(/reset-password#|token=/);
      const refused = recorder.named('backoffice.user.password-reset.refused');
      expect(refused.map((e) => e.auditDetails())).toEqual([{ reason: 'directory_managed', via: 'forgot_password' }]);
    } finally {
      recorder.detach();
    }
    expectClientError(await login(ctx, kim.mail, 'kim local passphrase 2'), 401);
    expectClientError(await login(ctx, kim.mail, kim.password), 401);
  });

  it('OWASP ASVS 4.0 V2.5: a reset link issued before the directory first authenticated the user is refused afterwards (400 invalid_token, as a used link)', async () => {
    await ctx.userManager.createUser({ email: lou.mail, name: 'Lou', password: 'lou local passphrase 1', groups: ['editor'] });
    expect((await forgot(ctx, lou.mail)).status).toBe(202);
    await drain();
    const { userId, token } = linkParams(mails(lou.mail, 'PasswordReset')[0].text, 'reset-password');
    expect((await login(ctx, lou.mail, lou.password)).status).toBe(200); // the directory takes over
    await slapd.deleteUser(lou.uid);
    const reset = await new HttpClient(ctx.url).post('/auth/reset-password', { userId, token, newPassword: 'lou brand new local passphrase' });
    expectClientError(reset, 400);
    expect(reset.body.code).toBe('invalid_token');
    const wrongToken = await new HttpClient(ctx.url).post('/auth/reset-password', { userId, token: `${token}x`, newPassword: 'lou brand new local passphrase' });
    expect({ ...reset.body, requestId: undefined }).toEqual({ ...wrongToken.body, requestId: undefined });
    expectClientError(await login(ctx, lou.mail, 'lou brand new local passphrase'), 401);
    expect((await ctx.userManager.findByEmail(lou.mail))!.passwordHash).toBeNull();
  });

  it('OWASP ASVS 4.0 V2.5: an admin cannot force a password reset (a mailed link) for a directory-managed user (409 directory_managed) until the host clears the mark; re-invites stay refused (409 not_invited)', async () => {
    // Max was created by the directory at his first sign-in (createUsers): marked from the start.
    expect((await login(ctx, max.mail, max.password)).status).toBe(200);
    const created = (await ctx.userManager.findByEmail(max.mail))!;
    expect(created.directoryManagedAt).toBeInstanceOf(Date);
    const refused = await admin.post(`/users/${created.id}/force-password-reset`);
    expectClientError(refused, 409);
    expect(refused.body.code).toBe('directory_managed');
    expect(mails(max.mail, 'PasswordReset')).toHaveLength(0);
    const reinvite = await admin.post(`/users/${created.id}/resend-invite`);
    expectClientError(reinvite, 409);
    expect(reinvite.body.code).toBe('not_invited');
    // An explicit decision of the host (the person keeps working without the directory): the mark goes, and so does the refusal.
    await ctx.userManager.createUser({ email: oli.mail, name: 'Oli', password: 'oli local passphrase 1', groups: ['editor'] });
    expect((await login(ctx, oli.mail, oli.password)).status).toBe(200);
    const oliUser = (await ctx.userManager.findByEmail(oli.mail))!;
    expectClientError(await admin.post(`/users/${oliUser.id}/force-password-reset`), 409);
    await ctx.userManager.clearDirectoryManaged(oliUser);
    expect((await ctx.userManager.findById(oliUser.id))!.directoryManagedAt).toBeNull();
    const forced = await admin.post(`/users/${oliUser.id}/force-password-reset`);
    expect(forced.status, forced.text).toBe(200);
    expect(mails(oli.mail, 'PasswordReset')).toHaveLength(1);
  });

  it('OWASP ASVS 4.0 V2.5: an invite link gives no local password to a pending invitee the host marked directory-managed: accept answers 400 invalid_token, a resend 409 not_invited', async () => {
    const email = 'pia-invitee@ldap.example';
    const invited = await admin.post('/users/invite', { email, name: 'Pia', groups: ['editor'] });
    expect(invited.status, invited.text).toBe(201);
    const { userId, token } = linkParams(mails(email, 'UserInvite')[0].text, 'accept-invite');
    // The host's directory sync marks the invitee (its password is the directory's from now on).
    const user = (await ctx.userManager.findById(userId))!;
    await ctx.userManager.markDirectoryManaged(user);
    expect((await ctx.userManager.findById(userId))!.directoryManagedAt).toBeInstanceOf(Date);
    const accepted = await new HttpClient(ctx.url).post('/auth/invite/accept', { userId, token, password: 'pia local passphrase 1' });
    expectClientError(accepted, 400);
    expect(accepted.body.code).toBe('invalid_token');
    expect((await ctx.userManager.findById(userId))!.passwordHash).toBeNull();
    const resent = await admin.post(`/users/${userId}/resend-invite`);
    expectClientError(resent, 409);
    expect(resent.body.code).toBe('not_invited');
    expect(mails(email, 'UserInvite')).toHaveLength(1);
  });

  it('OWASP ASVS 4.0 V2.5: with keepLocalPasswords the local password stays usable by design, but the directory is the authority: forgot-password sends no link', async () => {
    const keptDb = await createTestDatabase();
    const kept = await createIdentityApp(keptDb, {
      identity: { rateLimits: { enabled: false }, passwordChecker: { useValue: new LdapPasswordChecker(options({ keepLocalPasswords: true })) } },
      providers: [Mailbox],
    });
    try {
      await kept.userManager.createUser({ email: ned.mail, name: 'Ned', password: 'ned local passphrase 1', groups: ['editor'] });
      expect((await login(kept, ned.mail, ned.password)).status).toBe(200);
      const user = (await kept.userManager.findByEmail(ned.mail))!;
      expect(user.passwordHash).not.toBeNull();
      expect(user.directoryManagedAt).toBeInstanceOf(Date);
      expect((await forgot(kept, ned.mail)).status).toBe(202);
      await drain(kept);
      expect(mails(ned.mail, 'PasswordReset')).toHaveLength(0);
      expect(mails(ned.mail, 'PasswordManagedByDirectory')).toHaveLength(1);
    } finally {
      await kept.close();
      await keptDb.drop();
    }
  });

  it('OWASP ASVS 4.0 V2.5: a user store that returns directoryManagedAt as an ISO string (JSON-backed, raw SQL) still marks the user: no reset link by forgot-password, forced reset 409 directory_managed', async () => {
    const isoDb = await createTestDatabase();
    const iso = await createIdentityApp(isoDb, { identity: { rateLimits: { enabled: false }, userStore: { useClass: IsoDateUserStore } }, providers: [Mailbox] });
    try {
      const email = 'iso-marked@example.com';
      await iso.userManager.createUser({ email: 'iso-boss@example.com', name: 'Boss', password: TEST_PASSWORD, groups: ['admin'] });
      const created = await iso.userManager.createUser({ email, name: 'Iso', password: 'iso local passphrase 1', groups: ['editor'] });
      expect(iso.userManager.store).toBeInstanceOf(IsoDateUserStore);
      // The host's directory sync marks the user through the store.
      expect(await (iso.userManager.store as IsoDateUserStore).markDirectoryManaged(created.value!.id, new Date())).toBe(true);
      const stored = (await iso.userManager.findById(created.value!.id))!;
      expect(typeof stored.directoryManagedAt).toBe('string');
      expect(iso.userManager.isDirectoryManaged(stored)).toBe(true);
      expect((await forgot(iso, email)).status).toBe(202);
      await drain(iso);
      expect(mails(email, 'PasswordReset')).toHaveLength(0);
      expect(mails(email, 'PasswordManagedByDirectory')).toHaveLength(1);
      const boss = new HttpClient(iso.url);
      expect((await boss.login('iso-boss@example.com', TEST_PASSWORD)).status).toBe(200);
      const forced = await boss.post(`/users/${stored.id}/force-password-reset`);
      expectClientError(forced, 409);
      expect(forced.body.code).toBe('directory_managed');
      expect((await iso.userManager.findById(stored.id))!.passwordHash).not.toBeNull();
    } finally {
      await iso.close();
      await isoDb.drop();
    }
  });

  it.skipIf(dbKind() !== 'postgres')('OWASP ASVS 4.0 V2.5, 1.11.3: a forced reset racing the directory\'s first sign-in (the mark commits after the admin\'s request read the user) answers 409 directory_managed: the kept local password stays (keepLocalPasswords), no reset link is stored or mailed', async () => {
    const raceDb = await createTestDatabase();
    const race = await createIdentityApp(raceDb, {
      identity: { rateLimits: { enabled: false }, passwordChecker: { useValue: new LdapPasswordChecker(options({ keepLocalPasswords: true })) } },
      providers: [Mailbox],
    });
    const blocker = new pg.Client({ connectionString: raceDb.url });
    const observer = new pg.Client({ connectionString: raceDb.url });
    await blocker.connect();
    await observer.connect();
    const waits = () => lockWaiters(observer);
    try {
      await race.userManager.createUser({ email: 'race-boss@example.com', name: 'Boss', password: TEST_PASSWORD, groups: ['admin'] });
      const boss = new HttpClient(race.url);
      expect((await boss.login('race-boss@example.com', TEST_PASSWORD)).status).toBe(200);
      const user = (await race.userManager.createUser({ email: pat.mail, name: 'Pat', password: 'pat local passphrase 1', groups: ['editor'] })).value!;
      const before = (await race.userManager.findById(user.id))!;
      // The directory's first sign-in marks Pat; its transaction (row marked, links voided next) waits for the test's
      // lock on the link table, holding Pat's row.
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE backoffice_user_token IN SHARE MODE');
      const signIn = login(race, pat.mail, pat.password);
      await until(async () => (await waits()) >= 1);
      // The admin's forced reset reads Pat unmarked (the mark is not committed) and waits for the row to write.
      const forced = boss.post(`/users/${user.id}/force-password-reset`);
      await until(async () => (await waits()) >= 2);
      await blocker.query('COMMIT');
      expect((await signIn).status).toBe(200);
      const answer = await forced;
      await drain(race);
      const after = (await race.userManager.findById(user.id))!;
      const live = await observer.query(`SELECT count(*)::int AS n FROM backoffice_user_token WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL`, [user.id]);
      expect({
        status: answer.status,
        code: answer.body.code,
        marked: race.userManager.isDirectoryManaged(after),
        localPasswordKept: after.passwordHash === before.passwordHash,
        liveResetLinks: live.rows[0].n,
        resetEmails: mails(pat.mail, 'PasswordReset').length,
      }).toEqual({ status: 409, code: 'directory_managed', marked: true, localPasswordKept: true, liveResetLinks: 0, resetEmails: 0 });
    } finally {
      await blocker.end().catch(() => undefined);
      await observer.end();
      await race.close();
      await raceDb.drop();
    }
  });

  it.skipIf(dbKind() !== 'postgres')('OWASP ASVS 4.0 V2.5, 1.11.3: a forced reset whose password removal committed before the directory\'s first sign-in marked the user stores and mails no reset link after the mark (409 directory_managed), instead of a link reset refuses', async () => {
    const raceDb = await createTestDatabase();
    const race = await createIdentityApp(raceDb, {
      identity: { rateLimits: { enabled: false }, passwordChecker: { useValue: new LdapPasswordChecker(options({ keepLocalPasswords: true })) } },
      providers: [Mailbox],
    });
    const blocker = new pg.Client({ connectionString: raceDb.url });
    const observer = new pg.Client({ connectionString: raceDb.url });
    await blocker.connect();
    await observer.connect();
    try {
      await race.userManager.createUser({ email: 'race2-boss@example.com', name: 'Boss', password: TEST_PASSWORD, groups: ['admin'] });
      const boss = new HttpClient(race.url);
      expect((await boss.login('race2-boss@example.com', TEST_PASSWORD)).status).toBe(200);
      const user = (await race.userManager.createUser({ email: quin.mail, name: 'Quin', password: 'quin local passphrase 1', groups: ['editor'] })).value!;
      // The forced reset removes the password, then waits at its audit entry (the test's lock) before it issues the link.
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE backoffice_audit_entry IN SHARE MODE');
      const forced = boss.post(`/users/${user.id}/force-password-reset`);
      await until(async () => (await lockWaiters(observer)) >= 1);
      // Meanwhile the directory's first sign-in marks Quin (committed; its own audit entry waits too).
      const signIn = login(race, quin.mail, quin.password);
      const marked = async () => (await observer.query('SELECT directory_managed_at IS NOT NULL AS m FROM backoffice_user WHERE id = $1', [user.id])).rows[0].m === true;
      await until(async () => (await marked()) && (await lockWaiters(observer)) >= 2);
      await blocker.query('COMMIT');
      expect((await signIn).status).toBe(200);
      const answer = await forced;
      await drain(race);
      const live = await observer.query(`SELECT count(*)::int AS n FROM backoffice_user_token WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL`, [user.id]);
      expect({ status: answer.status, code: answer.body.code, liveResetLinks: live.rows[0].n, resetEmails: mails(quin.mail, 'PasswordReset').length }).toEqual({
        status: 409,
        code: 'directory_managed',
        liveResetLinks: 0,
        resetEmails: 0,
      });
    } finally {
      await blocker.end().catch(() => undefined);
      await observer.end();
      await race.close();
      await raceDb.drop();
    }
  });
});
