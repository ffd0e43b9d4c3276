import * as bcrypt from 'bcrypt';
import { DataSource } from 'typeorm';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { statementsSentDuring } from '../support/sent-statements.js';
import { createIdentityApp, reauthenticate, signedInClient, type IdentityApp } from '../support/identity-app.js';
import {
  BACKOFFICE_USER_MANAGER,
  BackOfficeApiUserService,
  BackOfficeUserManager,
  BackOfficeEvents,
  isUserDirectoryManagedStore,
  type BackOfficePasswordChecker,
  type BackOfficePasswordCheckerResult,
  type BackOfficeUser,
} from '../../src/backoffice-identity/index.js';

const password = 'correct horse battery staple';
const expectLoginStatus = (res: { status: number }, status: number) => expect(res.status).toBe(status);

describe('import with onConflict update (OWASP ASVS 4.0 V2.5, 3.3.1)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  const bossEmail = 'impupd-import-boss@example.com';

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    await ctx.userManager.createUser({ email: bossEmail, name: 'Boss', password, groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login(bossEmail, password)).status).toBe(200);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('voids a password-reset link issued before the import replaced the password hash', async () => {
    const email = 'impupd-victim@example.com';
    const user = (await ctx.userManager.createUser({ email, name: 'Victim', password, groups: ['editor'] })).value!;
    // A reset link was mailed (or leaked) before the migration import.
    const staleToken = await ctx.userManager.generatePasswordResetToken(user);
    const importedPassword = 'imported password from the old system';
    const imported = await admin.post('/users/import', {
      users: [{ email, name: 'Victim', groups: ['editor'], passwordFormat: 'bcrypt', passwordHash: await bcrypt.hash(importedPassword, 4) }],
      onConflict: 'update',
    });
    expect(imported.status, imported.text).toBe(200);
    expect(imported.body.results[0].outcome).toBe('updated');
    // The import set a new password (and security stamp): earlier reset links must not work any more,
    // as after setPassword / change-password / email change (voidTokens 'password_reset').
    const reset = await new HttpClient(ctx.url).post('/auth/reset-password', { userId: user.id, token: staleToken, newPassword: 'attacker chosen password 123' });
    expect(reset.status).toBe(400);
  });

  it('voids the reset and invite links of the old address when an import moves the email to a variant of the same key (ASVS 4.0 V2.5, as an admin email change does)', async () => {
    const email = 'impupd-mover@example.com';
    const moved = 'impupd-mover@\uff45xample.com'; // fullwidth "e": the same lookup key (NFKC), another address to a mail server
    const user = (await ctx.userManager.createUser({ email, name: 'Mover', password, groups: ['editor'] })).value!;
    const staleToken = await ctx.userManager.generatePasswordResetToken(user);
    const imported = await admin.post('/users/import', { users: [{ email: moved, name: 'Mover', groups: ['editor'] }], onConflict: 'update' });
    expect(imported.body.results[0].outcome, imported.text).toBe('updated');
    const after = (await ctx.userManager.findById(user.id))!;
    expect(after.email).toBe(moved);
    expect(await ctx.userManager.verifyUserToken(after, 'password_reset', staleToken)).toBe(false);
    // A record that leaves the email as it is keeps the links (nothing moved).
    const fresh = await ctx.userManager.generatePasswordResetToken(after);
    expect((await admin.post('/users/import', { users: [{ email: moved, name: 'Mover again', groups: ['editor'] }], onConflict: 'update' })).body.results[0].outcome).toBe('updated');
    expect(await ctx.userManager.verifyUserToken((await ctx.userManager.findById(user.id))!, 'password_reset', fresh)).toBe(true);
  });

  it('ends the sessions of a user whose password hash an import replaced', async () => {
    const email = 'impupd-victim2@example.com';
    await ctx.userManager.createUser({ email, name: 'Victim', password, groups: ['editor'] });
    const victim = new HttpClient(ctx.url);
    expect((await victim.login(email, password)).status).toBe(200);
    const imported = await admin.post('/users/import', {
      users: [{ email, name: 'Victim', groups: ['editor'], passwordFormat: 'bcrypt', passwordHash: await bcrypt.hash('another password entirely', 4) }],
      onConflict: 'update',
    });
    expect(imported.body.results[0].outcome).toBe('updated');
    expect((await victim.get('/auth/me')).status).toBe(401);
  });

  it('userManager.importUsers with a bare authorize function (no asStored / asStoredTarget hooks, as a host may pass one) checks the batch and writes it, no TypeError', async () => {
    const email = 'impupd-bare-authorize@example.com';
    const existing = (await ctx.userManager.createUser({ email, name: 'Before', password, groups: ['editor'] })).value!;
    const seen: number[] = [];
    const bare = async (records: readonly { index: number }[]) => void seen.push(...records.map((r) => r.index));
    const results = await ctx.userManager.importUsers(
      [
        { email, name: 'After', groups: ['editor'] },
        { email: 'impupd-bare-authorize-new@example.com', name: 'New', groups: ['editor'] },
      ],
      { onConflict: 'update' },
      bare,
    );
    expect(results.map((r) => [r.outcome, r.errors])).toEqual([
      ['updated', undefined],
      ['created', undefined],
    ]);
    expect(seen).toEqual([0, 1]);
    expect((await ctx.userManager.findById(existing.id))!.name).toBe('After');
  });

  it('keeps a disabled user disabled when the record says nothing about isApproved (absent fields keep their value, as passwordHash does)', async () => {
    const email = 'impupd-offboarded@example.com';
    const user = (await ctx.userManager.createUser({ email, name: 'Leaver', password, groups: ['editor'] })).value!;
    expect((await admin.post(`/users/${user.id}/disable`, { reason: 'left the company' })).status).toBe(200);
    expectLoginStatus(await new HttpClient(ctx.url).login(email, password), 403);
    // A routine re-import (e.g. to refresh names) of the old system's export, without isApproved:
    const imported = await admin.post('/users/import', { users: [{ email, name: 'Leaver (renamed)', groups: ['editor'] }], onConflict: 'update' });
    expect(imported.body.results[0].outcome).toBe('updated');
    expect((await ctx.userManager.findById(user.id))!.isApproved).toBe(false);
    expectLoginStatus(await new HttpClient(ctx.url).login(email, password), 403);
  });

  it('keeps the reason of a user an admin disabled for good when a re-imported export says isApproved false (a lossless round trip); the admin view still shows it', async () => {
    const email = 'impupd-offboarded-reason@example.com';
    const user = (await ctx.userManager.createUser({ email, name: 'Leaver', password, groups: ['editor'] })).value!;
    expect((await admin.post(`/users/${user.id}/disable`, { reason: 'left the company' })).status).toBe(200);
    const imported = await admin.post('/users/import', { users: [{ email, name: 'Leaver', groups: ['editor'], isApproved: false }], onConflict: 'update' });
    expect(imported.body.results[0].outcome, imported.text).toBe('updated');
    const listed = await admin.get(`/users?filter=${encodeURIComponent(email)}`);
    const shown = listed.body.items?.find((u: { id: string }) => u.id === user.id);
    expect([shown?.state, shown?.disabledReason, shown?.disabledUntil], listed.text).toEqual(['disabled', 'left the company', null]);
    expectLoginStatus(await new HttpClient(ctx.url).login(email, password), 403);
  });
  it('OWASP ASVS 4.0 V2.5 (offboarding): an import with a passwordHash gives no local password to a directory-managed (LDAP) user: that record is invalid (directory_managed) and nothing of it is written, dry run alike; without a hash the record updates', async () => {
    const email = 'impupd-directory@example.com';
    const user = (await ctx.userManager.createUser({ email, name: 'Directory', groups: ['editor'] })).value!;
    const store = ctx.userManager.store;
    if (!isUserDirectoryManagedStore(store)) throw new Error('the TypeORM store keeps the directory-managed mark');
    // The directory (LDAP) authenticated the user once: its password is the directory's from now on.
    expect(await store.markDirectoryManaged(user.id, new Date())).toBe(true);
    const before = (await ctx.userManager.findById(user.id))!;
    const imported = 'a local password the directory never knew';
    const record = { email, name: 'Directory (renamed)', groups: ['editor'], passwordFormat: 'bcrypt', passwordHash: await bcrypt.hash(imported, 4) };
    for (const dryRun of [true, false]) {
      const answer = await admin.post('/users/import', { users: [record], onConflict: 'update', dryRun });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.results[0]).toMatchObject({ email, outcome: 'invalid', errors: [{ code: 'directory_managed' }] });
      expect(answer.body.summary).toMatchObject({ total: 1, invalid: 1, updated: 0 });
    }
    const after = (await ctx.userManager.findById(user.id))!;
    expect({ passwordHash: after.passwordHash, name: after.name, securityStamp: after.securityStamp }).toEqual({
      passwordHash: before.passwordHash,
      name: before.name,
      securityStamp: before.securityStamp,
    });
    expectLoginStatus(await new HttpClient(ctx.url).login(email, imported), 401);
    // The same record without a hash (a routine refresh of names and groups) still updates the user.
    const { passwordHash: _hash, passwordFormat: _format, ...withoutHash } = record;
    const refreshed = await admin.post('/users/import', { users: [withoutHash], onConflict: 'update' });
    expect(refreshed.body.results[0].outcome, refreshed.text).toBe('updated');
    expect((await ctx.userManager.findById(user.id))!.name).toBe('Directory (renamed)');
  });

  it('OWASP ASVS 4.0 V2.5, 4.1.5: a record refused as directory_managed does not use up the last-admin budget: the other admin\'s demotion in the same import is written, not refused last_admin', async () => {
    const ownDb = await createTestDatabase();
    const own = await createIdentityApp(ownDb, { identity: { rateLimits: { enabled: false } } });
    try {
      const marked = (await own.userManager.createUser({ email: 'impupd-marked-admin@example.com', name: 'Marked', groups: ['admin'], password })).value!;
      const other = (await own.userManager.createUser({ email: 'impupd-other-admin@example.com', name: 'Other', groups: ['admin'], password })).value!;
      const store = own.userManager.store;
      if (!isUserDirectoryManagedStore(store)) throw new Error('the TypeORM store keeps the directory-managed mark');
      expect(await store.markDirectoryManaged(marked.id, new Date())).toBe(true);
      const importer = new HttpClient(own.url);
      expect((await importer.login(other.email, password)).status).toBe(200);
      // One import demotes both admins; the marked one's record carries a password hash (refused: directory_managed).
      const answer = await importer.post('/users/import', {
        users: [
          { email: marked.email, name: 'Marked', groups: ['editor'], passwordFormat: 'bcrypt', passwordHash: await bcrypt.hash('a local password', 4) },
          { email: other.email, name: 'Other', groups: ['editor'] },
        ],
        onConflict: 'update',
      });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.results.map((r: { outcome: string; errors?: Array<{ code: string }> }) => [r.outcome, r.errors?.map((e) => e.code)])).toEqual([
        ['invalid', ['directory_managed']],
        ['updated', undefined],
      ]);
      // The marked admin stays an admin (nothing of its record was written): the back office keeps one.
      expect((await own.userManager.findById(marked.id))!.groups).toEqual(['admin']);
      expect((await own.userManager.findById(other.id))!.groups).toEqual(['editor']);
    } finally {
      await own.close();
      await ownDb.drop();
    }
  });

  it('OWASP ASVS 5.0 7.5.1: a real import that would replace an existing user\'s password hash or move its email needs a recent sign-in (401 reauthentication_required, nothing written, as PUT /users/:id); dry runs, skips and profile-only updates do not (a new user needs one too: 7.5.3 below)', async () => {
    const hashVictim = (await ctx.userManager.createUser({ email: 'impupd-stepup-hash@example.com', name: 'Hash victim', password, groups: ['editor'] })).value!;
    const mailVictim = (await ctx.userManager.createUser({ email: 'impupd-stepup-mail@example.com', name: 'Mail victim', password, groups: ['editor'] })).value!;
    const dataSource = ctx.app.get(DataSource);
    const written = async () => ({
      users: await dataSource.query(`SELECT id, email, name, password_hash, security_stamp FROM backoffice_user WHERE normalized_email LIKE 'impupd-stepup%' ORDER BY id`),
      imports: (await dataSource.query(`SELECT count(*)::int AS n FROM backoffice_audit_entry WHERE event = $1 AND details->>'dryRun' = 'false'`, [BackOfficeEvents.UsersImported]))[0].n,
    });
    const attackerPassword = 'the attacker chose this password';
    const attackerHash = { passwordFormat: 'bcrypt', passwordHash: await bcrypt.hash(attackerPassword, 4) };
    const takeOverHash = { email: hashVictim.email, name: 'Hash victim', groups: ['editor'], ...attackerHash };
    const takeOverMail = { email: 'impupd-stepup-mail@\uff45xample.com', name: 'Mail victim', groups: ['editor'] }; // same lookup key, another domain
    const stolen = await signedInClient(ctx, bossEmail, password);
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    const robot = await apiUsers.create({ name: 'Import robot', groups: ['admin'] });
    const robotAuth = { headers: { authorization: `Bearer ${(await apiUsers.issueToken(robot.clientId, robot.clientSecret)).access_token}` } };
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)
    const before = await written();
    for (const users of [[takeOverHash], [takeOverMail], [{ email: 'impupd-stepup-new@example.com', name: 'New', groups: [] }, takeOverHash]]) {
      // A bearer token has no sign-in to renew: refused as on every step-up route.
      for (const refused of [await stolen.post('/users/import', { users, onConflict: 'update' }), await new HttpClient(ctx.url).post('/users/import', { users, onConflict: 'update' }, robotAuth)]) {
        expectClientError(refused, 401);
        expect(refused.body).toEqual({ statusCode: 401, code: 'reauthentication_required', message: expect.any(String) });
      }
      // A dry run writes nothing: it reports what the import would do, without a step-up.
      const dryRun = await stolen.post('/users/import', { users, onConflict: 'update', dryRun: true });
      expect(dryRun.status, dryRun.text).toBe(200);
      expect(dryRun.body.summary.updated).toBe(1);
    }
    expect(await written()).toEqual(before); // no user row changed, no import recorded
    expect((await new HttpClient(ctx.url).login(hashVictim.email, attackerPassword)).status).toBe(401);

    // Without a step-up: skipped conflicts (hash or not), and updates of name, of groups that add none (a group added
    // needs one: set-groups-step-up.spec.ts) or of the address's case.
    const skipped = await stolen.post('/users/import', { users: [takeOverHash, takeOverMail], onConflict: 'skip' });
    expect(skipped.body.summary, skipped.text).toMatchObject({ skipped: 2 });
    const routine = await stolen.post('/users/import', {
      users: [
        { email: hashVictim.email, name: 'Hash victim (renamed)', groups: [] },
        { email: 'IMPUPD-STEPUP-MAIL@EXAMPLE.COM', name: 'Mail victim', groups: ['editor'] },
      ],
      onConflict: 'update',
    });
    expect(routine.status, routine.text).toBe(200);
    expect(routine.body.summary).toMatchObject({ created: 0, updated: 2 });
    expect((await ctx.userManager.findById(hashVictim.id))!.passwordHash).toBe(before.users.find((u: { id: string }) => u.id === hashVictim.id).password_hash);

    // After POST /auth/reauthenticate the same imports go through.
    await reauthenticate(stolen, password);
    const stepped = await stolen.post('/users/import', { users: [takeOverHash, takeOverMail], onConflict: 'update' });
    expect(stepped.body.summary, stepped.text).toMatchObject({ updated: 2 });
    expect((await new HttpClient(ctx.url).login(hashVictim.email, attackerPassword)).status).toBe(200);
    expect((await ctx.userManager.findById(mailVictim.id))!.email).toBe(takeOverMail.email);
  });
  it('OWASP ASVS 5.0 7.5.3: a real import that would create a user needs a recent sign-in (401 reauthentication_required, nothing written, as POST /users/invite and POST /users/api), whatever onConflict; a bearer token is always refused; a dry run, a batch that only skips existing users and a batch whose only new record is invalid do not', async () => {
    const existing = (await ctx.userManager.createUser({ email: 'impupd-mint-existing@example.com', name: 'Existing', password, groups: ['editor'] })).value!;
    const dataSource = ctx.app.get(DataSource);
    const written = async () => ({
      users: await dataSource.query(`SELECT id, email, name, password_hash FROM backoffice_user WHERE normalized_email LIKE 'impupd-mint%' ORDER BY id`),
      imports: (await dataSource.query(`SELECT count(*)::int AS n FROM backoffice_audit_entry WHERE event = $1 AND details->>'dryRun' = 'false'`, [BackOfficeEvents.UsersImported]))[0].n,
    });
    const attackerPassword = 'the attacker chose this password';
    // The attacker's own address, as an admin, with a password the attacker knows: lasting access after the cookie ends.
    const mint = { email: 'impupd-mint-attacker@example.com', name: 'Attacker', groups: ['admin'], passwordFormat: 'bcrypt', passwordHash: await bcrypt.hash(attackerPassword, 4) };
    const existingAgain = { email: existing.email, name: 'Existing', groups: ['editor'] };
    const stolen = await signedInClient(ctx, bossEmail, password);
    const apiUsers = ctx.app.get(BackOfficeApiUserService);
    const robot = await apiUsers.create({ name: 'Import mint robot', groups: ['admin'] });
    const robotAuth = { headers: { authorization: `Bearer ${(await apiUsers.issueToken(robot.clientId, robot.clientSecret)).access_token}` } };
    const robotClient = new HttpClient(ctx.url);
    ctx.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)
    const before = await written();
    const bodies = [
      { users: [mint] }, // onConflict skip (the default)
      { users: [mint], onConflict: 'skip' },
      { users: [mint], onConflict: 'fail' },
      { users: [mint], onConflict: 'update' },
      { users: [existingAgain, mint], onConflict: 'skip' }, // one new record among skipped ones is enough
    ];
    for (const body of bodies) {
      for (const refused of [await stolen.post('/users/import', body), await robotClient.post('/users/import', body, robotAuth)]) {
        expectClientError(refused, 401);
        expect(refused.body, JSON.stringify(body)).toEqual({ statusCode: 401, code: 'reauthentication_required', message: expect.any(String) });
      }
      // A dry run writes nothing: it reports what the import would do, without a step-up.
      const dryRun = await stolen.post('/users/import', { ...body, dryRun: true });
      expect(dryRun.status, dryRun.text).toBe(200);
      expect(dryRun.body.summary.created).toBe(1);
    }
    expect(await written()).toEqual(before); // no user created, no import recorded
    expect((await new HttpClient(ctx.url).login(mint.email, attackerPassword)).status).toBe(401);

    // Without a step-up: a batch that only skips existing users, and one whose only new record is invalid (writes nothing).
    for (const client of [stolen, robotClient]) {
      const options = client === robotClient ? robotAuth : undefined;
      const skipped = await client.post('/users/import', { users: [existingAgain], onConflict: 'skip' }, options);
      expect(skipped.status, skipped.text).toBe(200);
      expect(skipped.body.summary).toMatchObject({ total: 1, skipped: 1, created: 0 });
      const invalid = await client.post('/users/import', { users: [existingAgain, { ...mint, groups: ['no-such-group'] }] }, options);
      expect(invalid.status, invalid.text).toBe(200);
      expect(invalid.body.summary).toMatchObject({ total: 2, skipped: 1, invalid: 1, created: 0 });
    }
    expect((await written()).users).toEqual(before.users);

    // After POST /auth/reauthenticate the session may create users; the bearer token still may not.
    await reauthenticate(stolen, password);
    const refused = await robotClient.post('/users/import', { users: [mint] }, robotAuth);
    expect(refused.body.code).toBe('reauthentication_required');
    const stepped = await stolen.post('/users/import', { users: [existingAgain, mint] });
    expect(stepped.status, stepped.text).toBe(200);
    expect(stepped.body.summary).toMatchObject({ created: 1, skipped: 1 });
    expect((await new HttpClient(ctx.url).login(mint.email, attackerPassword)).status).toBe(200);
  });
  it('OWASP ASVS 5.0 7.5.1: the import step-up is asked only for records the store would write as updates: a record with an unknown group, a duplicate within the batch, a username-only match (duplicate_username) or an email match whose username is another user\'s (duplicate_email) is answered per record with a stale session; a real overwrite still gets 401', async () => {
    const ownDb = await createTestDatabase();
    const own = await createIdentityApp(ownDb, { identity: { rateLimits: { enabled: false }, usernameIsEmail: false } });
    try {
      const create = async (username: string, groups: string[]) =>
        (await own.userManager.createUser({ email: `${username}@example.com`, username, name: username, password, groups })).value!;
      await create('impupd-su-boss', ['admin']);
      const owner = await create('impupd-su-owner', ['editor']);
      const target = await create('impupd-su-target', ['editor']);
      const stale = await signedInClient(own, 'impupd-su-boss', password);
      own.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)
      const attackerPassword = 'the attacker chose this password';
      const attackerHash = { passwordFormat: 'bcrypt', passwordHash: await bcrypt.hash(attackerPassword, 4) };
      const hashes = async () => [(await own.userManager.findById(owner.id))!.passwordHash, (await own.userManager.findById(target.id))!.passwordHash];
      const before = await hashes();
      const outcomes = (answer: { body: { results: Array<{ outcome: string; errors?: Array<{ code: string }> }> } }) =>
        answer.body.results.map((r) => [r.outcome, r.errors?.map((e) => e.code)]);

      const cases: Array<[string, object[], unknown[]]> = [
        ['a typo in a group name', [{ email: target.email, username: target.username, name: 'T', groups: ['editr'], ...attackerHash }], [['invalid', ['unknown_group']]]],
        [
          'a duplicate within the batch',
          [
            { email: target.email, username: target.username, name: 'T', groups: ['editor'] },
            { email: target.email, username: target.username, name: 'T', groups: ['editor'], ...attackerHash },
          ],
          [['updated', undefined], ['invalid', ['duplicate_in_import']]],
        ],
        ['a username-only match', [{ email: 'impupd-su-newcomer@example.com', username: owner.username, name: 'N', groups: ['editor'], ...attackerHash }], [['invalid', ['duplicate_username']]]],
        ['an email match whose username is another user\'s', [{ email: target.email, username: owner.username, name: 'T', groups: ['editor'], ...attackerHash }], [['invalid', ['duplicate_email']]]],
      ];
      for (const [name, users, expected] of cases) {
        const answer = await stale.post('/users/import', { users, onConflict: 'update' });
        expect(answer.status, `${name}: ${answer.text}`).toBe(200);
        expect(outcomes(answer), name).toEqual(expected);
      }
      expect(await hashes()).toEqual(before);

      // A record the store would write as an update of the target's hash still needs the step-up.
      const refused = await stale.post('/users/import', { users: [{ email: target.email, username: target.username, name: 'T', groups: ['editor'], ...attackerHash }], onConflict: 'update' });
      expectClientError(refused, 401);
      expect(refused.body.code).toBe('reauthentication_required');
      expect(await hashes()).toEqual(before);
      await reauthenticate(stale, password);
      const stepped = await stale.post('/users/import', { users: [{ email: target.email, username: target.username, name: 'T', groups: ['editor'], ...attackerHash }], onConflict: 'update' });
      expect(outcomes(stepped), stepped.text).toEqual([['updated', undefined]]);
      expect((await new HttpClient(own.url).login(target.username, attackerPassword)).status).toBe(200);
    } finally {
      await own.close();
      await ownDb.drop();
    }
  });
  it('OWASP ASVS 5.0 7.5.1: for a caller outside admin the permission check and the step-up share one lookup of the conflicting users: at most one read by email per record (two before, once per check)', async () => {
    await reauthenticate(admin); // a group with permissions needs a recent sign-in (POST /groups)
    expect((await admin.post('/groups', { alias: 'impupd-helpdesk', name: 'Import helpdesk', permissions: ['users.manage', 'users.read'] })).status).toBe(201);
    const deskEmail = 'impupd-desk@example.com';
    await ctx.userManager.createUser({ email: deskEmail, name: 'Desk', password, groups: ['impupd-helpdesk'] });
    const desk = await signedInClient(ctx, deskEmail, password);
    const emails = Array.from({ length: 5 }, (_, i) => `impupd-shared-${i}@example.com`);
    for (const email of emails) await ctx.userManager.createUser({ email, name: 'Before', password, groups: [] });
    const users = emails.map((email) => ({ email, name: 'After', groups: [] }));
    let answer!: Awaited<ReturnType<typeof desk.post>>;
    const statements = (await statementsSentDuring(async () => (answer = await desk.post('/users/import', { users, onConflict: 'update' })))).map((s) => s.text);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.summary).toMatchObject({ total: 5, updated: 5 });
    const emailLookups = statements.filter((sql) => /\bu\.normalized_email = \$1\b/.test(sql));
    expect(emailLookups.length).toBeGreaterThan(0); // the counter sees the lookups
    expect(emailLookups.length).toBeLessThanOrEqual(users.length);
  });
});

/**
 * A directory keyed by username (as an LDAP checker with `uid={username}`): it vouches for the password of whoever holds the
 * username it is asked about, local users without an entry fall back to their local hash.
 */
class UsernameDirectory implements BackOfficePasswordChecker {
  constructor(private readonly entries: ReadonlyMap<string, string>) {}
  async checkPassword(user: BackOfficeUser, candidate: string): Promise<BackOfficePasswordCheckerResult> {
    const known = this.entries.get(user.username);
    if (known === undefined) return 'fallback';
    return known === candidate ? 'valid' : 'invalid';
  }
}

describe('import with onConflict update renaming a user (usernameIsEmail false, a password checker keyed by username)', () => {
  let ownDb: TestDatabase;
  let own: IdentityApp;
  const mallory = { username: 'impupd-un-mallory', password: 'mallory in the directory 1' };
  const trudy = { username: 'impupd-un-trudy', password: 'trudy in the directory 2' };
  const bossUsername = 'impupd-un-boss';
  const create = async (username: string, groups: string[]) =>
    (await own.userManager.createUser({ email: `${username}@example.com`, username, name: username, password, groups })).value!;
  const row = async (id: string) =>
    (await own.app.get(DataSource).query(`SELECT username, normalized_username, email, name, security_stamp FROM backoffice_user WHERE id = $1`, [id]))[0];
  const outcomes = (answer: { body: { results: Array<{ outcome: string; errors?: Array<{ code: string }> }> } }) =>
    answer.body.results.map((r) => [r.outcome, r.errors?.map((e) => e.code)]);

  beforeAll(async () => {
    ownDb = await createTestDatabase();
    own = await createIdentityApp(ownDb, {
      identity: { rateLimits: { enabled: false }, usernameIsEmail: false, passwordChecker: { useValue: new UsernameDirectory(new Map([
            [mallory.username, mallory.password],
            [trudy.username, trudy.password],
          ])) } },
    });
    await create(bossUsername, ['admin']);
  });
  afterAll(async () => {
    await own?.close();
    await ownDb?.drop();
  });

  it('OWASP ASVS 5.0 7.5.1 (4.0 3.7.1): a real import that would give an existing user another username (a new sign-in identity for the password checker) needs a recent sign-in: 401 reauthentication_required, nothing written, the other identity cannot sign in; after a step-up it goes through', async () => {
    const victim = await create('impupd-un-victim', ['editor']);
    const stale = await signedInClient(own, bossUsername, password);
    own.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)
    const before = await row(victim.id);
    const renames = [
      { email: victim.email, username: mallory.username, name: victim.name, groups: ['editor'] },
      // Without a username the record's username is its email: another username too.
      { email: victim.email, name: victim.name, groups: ['editor'] },
    ];
    for (const record of renames) {
      const refused = await stale.post('/users/import', { users: [record], onConflict: 'update' });
      expectClientError(refused, 401);
      expect(refused.body).toEqual({ statusCode: 401, code: 'reauthentication_required', message: expect.any(String) });
      // A dry run writes nothing: it reports what the import would do, without a step-up.
      const dryRun = await stale.post('/users/import', { users: [record], onConflict: 'update', dryRun: true });
      expect(outcomes(dryRun), dryRun.text).toEqual([['updated', undefined]]);
    }
    expect(await row(victim.id)).toEqual(before);
    expect((await new HttpClient(own.url).login(mallory.username, mallory.password)).status).toBe(401);

    await reauthenticate(stale, password);
    const stepped = await stale.post('/users/import', { users: [renames[0]], onConflict: 'update' });
    expect(outcomes(stepped), stepped.text).toEqual([['updated', undefined]]);
    expect((await row(victim.id)).username).toBe(mallory.username);
  });

  it('OWASP ASVS 4.0 V2.5: an import gives a directory-managed (LDAP) user no other username, even after a step-up and from the CLI: that record is invalid (directory_managed) and nothing of it is written, dry run alike; the other identity cannot sign in', async () => {
    const victim = await create('impupd-un-managed', ['editor']);
    const store = own.userManager.store;
    if (!isUserDirectoryManagedStore(store)) throw new Error('the TypeORM store keeps the directory-managed mark');
    expect(await store.markDirectoryManaged(victim.id, new Date())).toBe(true);
    const fresh = await signedInClient(own, bossUsername, password);
    const before = await row(victim.id);
    const record = { email: victim.email, username: trudy.username, name: 'Managed (renamed)', groups: ['editor'] };
    for (const dryRun of [true, false]) {
      const answer = await fresh.post('/users/import', { users: [record], onConflict: 'update', dryRun });
      expect(answer.status, answer.text).toBe(200);
      expect(outcomes(answer)).toEqual([['invalid', ['directory_managed']]]);
      expect(answer.body.summary).toMatchObject({ total: 1, invalid: 1, updated: 0 });
    }
    // The CLI's path (no caller to check): the store refuses it as well.
    expect((await own.userManager.importUsers([{ ...record, username: 'impupd-un-managed-cli' }], { onConflict: 'update' })).map((r) => [r.outcome, r.errors?.map((e) => e.code)])).toEqual([
      ['invalid', ['directory_managed']],
    ]);
    expect(await row(victim.id)).toEqual(before);
    expect((await new HttpClient(own.url).login(trudy.username, trudy.password)).status).toBe(401);
    // The same user's record keeping its username (a refresh of names and groups) still updates it.
    const refreshed = await fresh.post('/users/import', { users: [{ ...record, username: victim.username }], onConflict: 'update' });
    expect(outcomes(refreshed), refreshed.text).toEqual([['updated', undefined]]);
    expect(await row(victim.id)).toMatchObject({ username: victim.username, name: 'Managed (renamed)' });
  });

  it('OWASP ASVS 5.0 7.5.1: an import that keeps the user\'s username (or changes only its ASCII letter case) updates it without a step-up', async () => {
    const kept = await create('impupd-un-kept', ['editor']);
    const cased = await create('impupd-un-cased', ['editor']);
    const stale = await signedInClient(own, bossUsername, password);
    own.clock.advance(6 * 60_000); // past session.reauthenticationMinutes (default 5)
    const answer = await stale.post('/users/import', {
      users: [
        { email: kept.email, username: kept.username, name: 'Kept (renamed)', groups: ['editor'] },
        { email: cased.email, username: 'IMPUPD-UN-Cased', name: 'Cased', groups: ['editor'] },
      ],
      onConflict: 'update',
    });
    expect(outcomes(answer), answer.text).toEqual([
      ['updated', undefined],
      ['updated', undefined],
    ]);
    expect(await row(kept.id)).toMatchObject({ username: kept.username, name: 'Kept (renamed)' });
    expect((await row(cased.id)).username).toBe('IMPUPD-UN-Cased');
  });
});

/** A host whose manager decides directory management itself (the directory owns the corp.example addresses); no user is marked. */
class CorpDirectoryManagedManager extends BackOfficeUserManager {
  override isDirectoryManaged(user: BackOfficeUser): boolean {
    return user.email?.endsWith('@corp.example') === true;
  }
}

describe('OWASP ASVS 5.0 7.5.1: the import\'s refusal to rename a directory-managed user asks the swapped manager\'s isDirectoryManaged', () => {
  let ownDb: TestDatabase;
  let own: IdentityApp;
  const bossUsername = 'impdm-boss';
  const row = async (id: string) =>
    (await own.app.get(DataSource).query(`SELECT username, normalized_username, email, name, security_stamp, directory_managed_at FROM backoffice_user WHERE id = $1`, [id]))[0];
  const outcomes = (answer: { body: { results: Array<{ outcome: string; errors?: Array<{ code: string }> }> } }) =>
    answer.body.results.map((r) => [r.outcome, r.errors?.map((e) => e.code)]);

  beforeAll(async () => {
    ownDb = await createTestDatabase();
    own = await createIdentityApp(ownDb, {
      identity: { rateLimits: { enabled: false }, usernameIsEmail: false },
      override: (b) => b.overrideProvider(BACKOFFICE_USER_MANAGER).useClass(CorpDirectoryManagedManager),
    });
    await own.userManager.createUser({ email: `${bossUsername}@example.com`, username: bossUsername, name: 'Boss', password, groups: ['admin'] });
  });
  afterAll(async () => {
    await own?.close();
    await ownDb?.drop();
  });

  it('POST /users/import (after a step-up, dry run alike) and the CLI\'s importUsers renaming a user the manager calls directory-managed: invalid directory_managed, nothing written; keeping the username still updates', async () => {
    const victim = (await own.userManager.createUser({ email: 'impdm-victim@corp.example', username: 'impdm-victim', name: 'Victim', password, groups: ['editor'] })).value!;
    const before = await row(victim.id);
    expect(before.directory_managed_at).toBeNull(); // not marked: only the manager calls it directory-managed
    const admin = await signedInClient(own, bossUsername, password);
    await reauthenticate(admin, password);
    const record = { email: victim.email, username: 'impdm-mallory', name: 'Victim (renamed)', groups: ['editor'] };
    for (const dryRun of [true, false]) {
      const answer = await admin.post('/users/import', { users: [record], onConflict: 'update', dryRun });
      expect(answer.status, answer.text).toBe(200);
      expect(outcomes(answer), `dryRun ${dryRun}`).toEqual([['invalid', ['directory_managed']]]);
    }
    expect((await own.userManager.importUsers([{ ...record, username: 'impdm-cli' }], { onConflict: 'update' })).map((r) => [r.outcome, r.errors?.map((e) => e.code)])).toEqual([
      ['invalid', ['directory_managed']],
    ]);
    expect(await row(victim.id)).toEqual(before);
    const kept = await admin.post('/users/import', { users: [{ ...record, username: victim.username }], onConflict: 'update' });
    expect(outcomes(kept), kept.text).toEqual([['updated', undefined]]);
    expect(await row(victim.id)).toMatchObject({ username: 'impdm-victim', name: 'Victim (renamed)' });
  });

  it('OWASP ASVS 4.0 V2.5: a record with a passwordHash for a user the manager calls directory-managed (no stored mark): invalid directory_managed, dry run and CLI alike, no local password written', async () => {
    const victim = (await own.userManager.createUser({ email: 'impdm-hash@corp.example', username: 'impdm-hash', name: 'Hash', password, groups: ['editor'] })).value!;
    const before = { ...(await row(victim.id)), hash: (await own.userManager.findById(victim.id))!.passwordHash };
    expect(before.directory_managed_at).toBeNull();
    const admin = await signedInClient(own, bossUsername, password);
    await reauthenticate(admin, password);
    const record = { email: victim.email, username: victim.username, name: 'Hash', groups: ['editor'], passwordFormat: 'bcrypt', passwordHash: await bcrypt.hash('a local password', 4) };
    for (const dryRun of [true, false]) {
      const answer = await admin.post('/users/import', { users: [record], onConflict: 'update', dryRun });
      expect(answer.status, answer.text).toBe(200);
      expect(outcomes(answer), `dryRun ${dryRun}`).toEqual([['invalid', ['directory_managed']]]);
    }
    expect((await own.userManager.importUsers([record], { onConflict: 'update' })).map((r) => [r.outcome, r.errors?.map((e) => e.code)])).toEqual([
      ['invalid', ['directory_managed']],
    ]);
    expect({ ...(await row(victim.id)), hash: (await own.userManager.findById(victim.id))!.passwordHash }).toEqual(before);
  });
});
