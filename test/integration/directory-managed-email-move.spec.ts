import { DataSource } from 'typeorm';
import { BACKOFFICE_USER_MANAGER, BackOfficeBackgroundTasks, BackOfficeDirectoryManagedRenameError, BackOfficeUserManager, isUserDirectoryManagedStore, type BackOfficeUser } from '../../src/backoffice-identity/index.js';
import { Mailbox } from '../support/mailbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, reauthenticate, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { linkParams } from '../support/smtp.js';

/**
 * With `usernameIsEmail` (the default) the username follows the email, and the username is the key a password checker
 * keyed by it (LDAP `uid={username}` or a mail filter) signs a directory-managed user in with. Moving such a user's
 * email (an admin's PUT /users/:id after a step-up, or the user's own POST /auth/me/email + confirm) rebound them to
 * the directory entry of the new address: a users.manage holder moved a higher-privileged directory user to their own
 * entry and signed in to that account with their own directory password (OWASP ASVS 5.0 7.5.1, 4.0 V2.5). Refused:
 * 409 directory_managed, nothing written; a user without the mark still moves its email.
 */
describe('OWASP ASVS 5.0 7.5.1, 4.0 V2.5: a directory-managed user\'s email (its username) does not move', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const make = userFactory(() => ctx, 'dmmove');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  const mailsTo = (to: string) => Mailbox.messages.filter((m) => m.to === to);
  const row = async (id: string) =>
    (await ctx.app.get(DataSource).query(
      `SELECT username, normalized_username, email, normalized_email, name, security_stamp, directory_managed_at IS NOT NULL AS managed FROM backoffice_user WHERE id = $1`,
      [id],
    ))[0];
  const mark = async (user: BackOfficeUser) => {
    const store = ctx.userManager.store;
    if (!isUserDirectoryManagedStore(store)) throw new Error('the TypeORM store keeps the directory-managed mark');
    expect(await store.markDirectoryManaged(user.id, new Date())).toBe(true);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, providers: [Mailbox] });
    const boss = await make({ groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('PUT /users/:id after a step-up: 409 directory_managed for a marked user, nothing written; a name-only edit and a letter-case change still work', async () => {
    const victim = await make({ email: 'dmmove-victim@example.com', groups: ['admin'] });
    await mark(victim);
    const before = await row(victim.id);
    await reauthenticate(admin);
    const moved = await admin.request('PUT', `/users/${victim.id}`, { body: { email: 'dmmove-mallory@example.com' } });
    expect(moved.status, moved.text).toBe(409);
    expect(moved.body.code).toBe('directory_managed');
    expect(await row(victim.id)).toEqual(before);
    // The profile beside it is still the admin's to edit.
    expect((await admin.request('PUT', `/users/${victim.id}`, { body: { name: 'Victim Renamed' } })).status).toBe(200);
    expect((await admin.request('PUT', `/users/${victim.id}`, { body: { email: 'DMMOVE-Victim@example.com' } })).status).toBe(200);
    expect(await row(victim.id)).toMatchObject({ email: 'DMMOVE-Victim@example.com', name: 'Victim Renamed', managed: true });
  });

  it('PUT /users/:id: a user without the mark still moves its email (the username follows)', async () => {
    const plain = await make({ email: 'dmmove-plain@example.com' });
    await reauthenticate(admin);
    const moved = await admin.request('PUT', `/users/${plain.id}`, { body: { email: 'dmmove-plain-moved@example.com' } });
    expect(moved.status, moved.text).toBe(200);
    expect(await row(plain.id)).toMatchObject({ email: 'dmmove-plain-moved@example.com', username: 'dmmove-plain-moved@example.com' });
  });

  it('POST /auth/me/email of a marked user: 409 directory_managed at request time, no link stored or mailed', async () => {
    const user = await make({ email: 'dmmove-self@example.com' });
    await mark(user);
    const self = new HttpClient(ctx.url);
    expect((await self.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const before = await row(user.id);
    const asked = await self.post('/auth/me/email', { newEmail: 'dmmove-self-elsewhere@example.com' });
    expect(asked.status, asked.text).toBe(409);
    expect(asked.body.code).toBe('directory_managed');
    await drain();
    expect(mailsTo('dmmove-self-elsewhere@example.com')).toEqual([]);
    expect(await row(user.id)).toEqual(before);
  });

  it('POST /auth/me/email/confirm of a link asked before the mark: 409 directory_managed, nothing written; an unmarked user confirms its move', async () => {
    const user = await make({ email: 'dmmove-late@example.com' });
    const plain = await make({ email: 'dmmove-late-plain@example.com' });
    const links: Array<{ userId: string; token: string }> = [];
    for (const [who, to] of [
      [user, 'dmmove-late-elsewhere@example.com'],
      [plain, 'dmmove-late-plain-moved@example.com'],
    ] as const) {
      const client = new HttpClient(ctx.url);
      expect((await client.login(who.email, TEST_PASSWORD)).status).toBe(200);
      expect((await client.post('/auth/me/email', { newEmail: to })).status).toBe(202);
      await drain();
      links.push(linkParams(mailsTo(to).filter((m) => m.type === 'EmailChangeConfirm').at(-1)!.text, 'confirm-email'));
    }
    await mark(user); // the directory's first sign-in, after the link was mailed
    const before = await row(user.id);
    const refused = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: links[0].userId, token: links[0].token });
    expect(refused.status, refused.text).toBe(409);
    expect(refused.body.code).toBe('directory_managed');
    expect(await row(user.id)).toEqual(before);
    const confirmed = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: links[1].userId, token: links[1].token });
    expect(confirmed.status, confirmed.text).toBe(200);
    expect(await row(plain.id)).toMatchObject({ email: 'dmmove-late-plain-moved@example.com', username: 'dmmove-late-plain-moved@example.com' });
  });
});

describe('usernameIsEmail false: the username stays, so a directory-managed user\'s email moves', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, usernameIsEmail: false } });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('PUT /users/:id after a step-up moves the email and keeps the username (the checker key)', async () => {
    await ctx.userManager.createUser({ email: 'dmmove-un-boss@example.com', username: 'dmmove-un-boss', name: 'Boss', password: TEST_PASSWORD, groups: ['admin'] });
    const user = (await ctx.userManager.createUser({ email: 'dmmove-un@example.com', username: 'dmmove-un', name: 'U', password: TEST_PASSWORD, groups: ['editor'] })).value!;
    const store = ctx.userManager.store;
    if (!isUserDirectoryManagedStore(store)) throw new Error('the TypeORM store keeps the directory-managed mark');
    expect(await store.markDirectoryManaged(user.id, new Date())).toBe(true);
    const admin = new HttpClient(ctx.url);
    expect((await admin.login('dmmove-un-boss', TEST_PASSWORD)).status).toBe(200);
    const moved = await admin.request('PUT', `/users/${user.id}`, { body: { email: 'dmmove-un-moved@example.com' } });
    expect(moved.status, moved.text).toBe(200);
    expect((await ctx.userManager.findById(user.id))!).toMatchObject({ email: 'dmmove-un-moved@example.com', username: 'dmmove-un' });
  });
});

/**
 * The mark voided the reset and invite links but not a pending email-change link, and a confirm refused 409 left the
 * link live (24 h): once the mark was cleared (an admin's decision that the password is local again) the link a
 * session had asked for moved the email, and so the username, after all. Marking now voids it too (usernameIsEmail),
 * and a refused confirm uses the link up.
 */
describe('OWASP ASVS 4.0 V2.5: a pending email-change link does not outlive the directory-managed mark', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'dmvoid');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  // A checker that marks the users it vouches for (as LDAP does); here the local hash decides every sign-in.
  const checker = { marksDirectoryManaged: true, checkPassword: async () => 'fallback' as const };
  const askLink = async (user: BackOfficeUser, to: string) => {
    const client = new HttpClient(ctx.url);
    expect((await client.login(user.email, TEST_PASSWORD)).status).toBe(200);
    expect((await client.post('/auth/me/email', { newEmail: to })).status).toBe(202);
    await drain();
    return linkParams(Mailbox.messages.filter((m) => m.to === to && m.type === 'EmailChangeConfirm').at(-1)!.text, 'confirm-email');
  };
  const confirm = async (link: { userId: string; token: string }) => {
    const answer = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: link.userId, token: link.token });
    return { status: answer.status, code: answer.body?.code };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, passwordChecker: { useValue: checker } }, providers: [Mailbox] });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('markDirectoryManaged voids the pending email-change link: refused, and still refused once the mark is cleared', async () => {
    const user = await make({ email: 'dmvoid-a@example.com' });
    const link = await askLink(user, 'dmvoid-a-elsewhere@example.com');
    // As the checker's first 'valid' answer for the user does.
    await ctx.userManager.markDirectoryManaged((await ctx.userManager.findById(user.id))!);
    expect((await ctx.userManager.findById(user.id))!.directoryManagedAt).not.toBeNull();
    expect(await ctx.userManager.clearDirectoryManaged((await ctx.userManager.findById(user.id))!)).toBe(true);
    expect(await confirm(link), 'confirm of a link asked before the mark, after the mark was cleared').toEqual({ status: 400, code: 'invalid_token' });
    expect((await ctx.userManager.findById(user.id))!).toMatchObject({ email: 'dmvoid-a@example.com', username: 'dmvoid-a@example.com' });
  });

  it('a confirm refused 409 directory_managed uses the link up: it does not move the email once the mark is cleared', async () => {
    const user = await make({ email: 'dmvoid-b@example.com' });
    const link = await askLink(user, 'dmvoid-b-elsewhere@example.com');
    // Marked by a path that does not void links (the store's own mark, e.g. a host's import or script).
    const store = ctx.userManager.store;
    if (!isUserDirectoryManagedStore(store)) throw new Error('the TypeORM store keeps the directory-managed mark');
    expect(await store.markDirectoryManaged(user.id, new Date())).toBe(true);
    expect(await confirm(link)).toEqual({ status: 409, code: 'directory_managed' });
    expect(await ctx.userManager.clearDirectoryManaged((await ctx.userManager.findById(user.id))!)).toBe(true);
    expect(await confirm(link), 'the refused link confirmed again after the mark was cleared').toEqual({ status: 400, code: 'invalid_token' });
    expect((await ctx.userManager.findById(user.id))!).toMatchObject({ email: 'dmvoid-b@example.com', username: 'dmvoid-b@example.com' });
  });
});

/** A host whose manager decides directory management itself (every person here comes from the directory). */
class EveryoneDirectoryManagedManager extends BackOfficeUserManager {
  override isDirectoryManaged(): boolean {
    return true;
  }
}

describe('OWASP ASVS 5.0 7.5.1: the email move\'s refusal asks the swapped manager\'s isDirectoryManaged', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'dmswap');
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false } },
      override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(EveryoneDirectoryManagedManager),
    });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('PUT /users/:id on an unmarked user the swapped manager calls directory-managed: 409 directory_managed, email unchanged', async () => {
    const boss = await make({ groups: ['admin'] });
    const victim = await make({ email: 'dmswap-victim@example.com' });
    const admin = new HttpClient(ctx.url);
    expect((await admin.login(boss.email, TEST_PASSWORD)).status).toBe(200);
    await reauthenticate(admin);
    const moved = await admin.request('PUT', `/users/${victim.id}`, { body: { email: 'dmswap-mallory@example.com' } });
    expect(moved.status, moved.text).toBe(409);
    expect(moved.body.code).toBe('directory_managed');
    expect((await ctx.userManager.findById(victim.id))?.email).toBe('dmswap-victim@example.com');
  });
});

/**
 * A host whose manager decides directory management from the user's address (the directory manages a domain, here
 * from when the test hands it over): the decision reads more of the user than directoryManagedAt and username.
 */
class DomainDirectoryManagedManager extends BackOfficeUserManager {
  static readonly managedDomains = new Set<string>();
  override isDirectoryManaged(user: BackOfficeUser): boolean {
    return [...DomainDirectoryManagedManager.managedDomains].some((domain) => user.email?.endsWith(`@${domain}`) === true);
  }
}

describe('OWASP ASVS 5.0 7.5.1: the email-change write asks the swapped manager about the whole user', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'dmdomain');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false } },
      providers: [Mailbox],
      override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(DomainDirectoryManagedManager),
    });
  });
  afterAll(async () => {
    DomainDirectoryManagedManager.managedDomains.clear();
    await ctx?.close();
    await db?.drop();
  });

  it('POST /auth/me/email/confirm of a user the manager calls directory-managed by their address (since the link was asked): 409 directory_managed, email unchanged', async () => {
    const user = await make({ email: 'dmdomain-alice@corp.example' });
    const client = new HttpClient(ctx.url);
    expect((await client.login(user.email, TEST_PASSWORD)).status).toBe(200);
    expect((await client.post('/auth/me/email', { newEmail: 'dmdomain-alice@elsewhere.example' })).status).toBe(202);
    await drain();
    const link = linkParams(Mailbox.messages.filter((m) => m.to === 'dmdomain-alice@elsewhere.example' && m.type === 'EmailChangeConfirm').at(-1)!.text, 'confirm-email');
    DomainDirectoryManagedManager.managedDomains.add('corp.example'); // the directory takes the domain over
    const confirmed = await new HttpClient(ctx.url).post('/auth/me/email/confirm', { userId: link.userId, token: link.token });
    expect({ status: confirmed.status, code: confirmed.body?.code }).toEqual({ status: 409, code: 'directory_managed' });
    expect(await ctx.userManager.findById(user.id)).toMatchObject({ email: 'dmdomain-alice@corp.example', username: 'dmdomain-alice@corp.example' });
  });

  it('userManager.changeEmail of such a user: refused (BackOfficeDirectoryManagedRenameError), nothing written', async () => {
    DomainDirectoryManagedManager.managedDomains.add('corp.example');
    const user = await make({ email: 'dmdomain-bob@corp.example' });
    await expect(
      ctx.userManager.changeEmail(user, { email: 'dmdomain-bob@elsewhere.example', username: 'dmdomain-bob@elsewhere.example' }),
    ).rejects.toBeInstanceOf(BackOfficeDirectoryManagedRenameError);
    expect(await ctx.userManager.findById(user.id)).toMatchObject({ email: 'dmdomain-bob@corp.example' });
  });
});
