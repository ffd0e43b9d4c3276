import { Logger } from '@nestjs/common';
import { expectClientError } from '../support/bad-input.js';
import { HttpClient } from '../support/http-client.js';
import { TEST_PASSWORD, type IdentityApp, type IdentityAppOptions } from '../support/identity-app.js';
import { MigrationTestDatabase } from '../support/migration-harness.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';
import { externalLoginIdentity, waitForExternalProviders } from '../support/external-login-app.js';
import { ExternalLoginPerson, TestOidcProvider } from '../support/oidc-provider.js';

const MIGRATION = 1732610000000;
const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';
const APP: IdentityAppOptions = {
  identity: { rateLimits: { enabled: false }, passkeys: { rpId: RP_ID, rpName: 'Acme back office', origins: [ORIGIN] } },
};

/**
 * The new code on a database without migration 1732610000000 (`password_reset_forced_at`): the host runs the
 * migrations after the deploy, or ran its `down`. The store reads no mark then (the column is not in the row), so
 * the manager falls back to the rule used before the mark ("no password, a password change on record"): a forced
 * reset still stops a passkey, it is not read as "no reset pending".
 */
describe('Migration 1732610000000 not applied: an admin\'s forced reset still stops passkeys', () => {
  let migrated: MigrationTestDatabase;
  let ctx: IdentityApp | undefined;
  const ids: Record<string, string> = {};
  const authenticators: Record<string, SoftwareAuthenticator> = {};

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async (seed) => {
      for (const name of ['forced', 'kept']) {
        const email = `${name}@example.com`;
        ids[name] = (await seed.userManager.createUser({ email, name, password: TEST_PASSWORD })).value!.id;
        const own = new HttpClient(seed.url);
        expect((await own.login(email, TEST_PASSWORD)).body.status).toBe('success');
        authenticators[name] = new SoftwareAuthenticator(ORIGIN, RP_ID);
        const registration = await own.post('/auth/passkeys/options', {});
        const added = await own.post('/auth/passkeys', { name: 'Laptop', credential: authenticators[name].register(registration.body) });
        expect(added.status, added.text).toBe(201);
      }
      // Forced with the newest schema: the mark is written, then the column goes with the migration's down.
      expect((await seed.userManager.removePassword((await seed.userManager.findById(ids.forced))!)).succeeded).toBe(true);
    }, APP);
  });
  afterAll(async () => {
    await ctx?.close();
    await migrated?.close();
  });

  async function passkeyVerify(authenticator: SoftwareAuthenticator) {
    const http = new HttpClient(ctx!.url);
    const options = await http.post('/auth/passkey/options', {});
    expect(options.status, options.text).toBe(200);
    return http.post('/auth/passkey/verify', { credential: authenticator.assert(options.body) });
  }

  it('OWASP ASVS 5.0 6.4.x / 4.0 2.5.x: the store reads the mark as unknown (absent, not null), the reset stays pending and the passkey is refused (403 password_reset_required); a user with a password still signs in with one', async () => {
    await migrated.undoFrom(MIGRATION);
    ctx = await migrated.app(APP);

    const refused = await passkeyVerify(authenticators.forced);
    expectClientError(refused, 403);
    expect(refused.body.code).toBe('password_reset_required');
    const forced = (await ctx.userManager.findById(ids.forced))!;
    expect([forced.passwordHash, forced.passwordResetForcedAt]).toEqual([null, undefined]);
    expect(ctx.userManager.isPasswordResetPending(forced)).toBe(true);

    const kept = await passkeyVerify(authenticators.kept);
    expect([kept.status, kept.body.code ?? kept.body.status], kept.text).toEqual([200, 'success']);
  });
});

/**
 * The new code on a database without migration 1732620000000 (`backoffice_external_login_state.user_id`): a link's or
 * step-up's OpenID Connect state has a user and cannot be stored. Those two routes answer a coded 503
 * `migration_required` (the migration named once in the server log, nothing of the database error in the answer), not
 * a bare 500; a sign-in through the provider (a state without a user) still works.
 */
describe('Migration 1732620000000 not applied: link and step-up through a provider answer 503 migration_required, sign-in works', () => {
  const EXTERNAL_MIGRATION = 1732620000000;
  const SECRET = 'unmigrated-state-secret-0123456789';
  let migrated: MigrationTestDatabase;
  let idp: TestOidcProvider;
  let ctx: IdentityApp | undefined;

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async () => undefined);
  });
  afterAll(async () => {
    await ctx?.close();
    await idp?.stop();
    await migrated?.close();
    vi.restoreAllMocks();
  });

  it('OWASP ASVS 5.0 16.5.2: POST /auth/external/oidc/link and /reauthenticate answer 503 migration_required (logged once, naming the migration); a sign-in through the provider still signs in', async () => {
    await migrated.undoFrom(EXTERNAL_MIGRATION);
    const port = await TestOidcProvider.reservePort();
    idp = await TestOidcProvider.start([
      { client_id: 'backoffice-unmigrated', client_secret: SECRET, redirect_uris: [`http://127.0.0.1:${port}/backoffice/auth/external/oidc/callback`] },
    ]);
    const errors = vi.spyOn(Logger.prototype, 'error');
    ctx = await migrated.app({
      port,
      identity: externalLoginIdentity(port, [{ name: 'oidc', displayName: 'Single sign-on', issuer: idp.issuer, clientId: 'backoffice-unmigrated', clientSecret: SECRET }]),
    });
    await waitForExternalProviders(ctx.url);

    // A sign-in's state has no user: stored and used as before the migration.
    const linkedUser = (await ctx.userManager.createUser({ email: 'linked@example.com', name: 'Linked', password: TEST_PASSWORD })).value!;
    expect((await ctx.userManager.addLogin(linkedUser, { provider: 'oidc', providerKey: 'linked-sub', displayName: 'Single sign-on' })).succeeded).toBe(true);
    idp.accounts.set('linked-sub', { email: 'linked@example.com', email_verified: true });
    const person = new ExternalLoginPerson(ctx.url);
    const signedIn = await person.signIn('oidc', 'linked-sub');
    expect([signedIn.status, signedIn.headers.get('location')]).toEqual([302, '/backoffice']);
    expect((await person.app.get('/auth/me')).body.id).toBe(linkedUser.id);

    const expectMigrationRequired = (result: { status: number; body: Record<string, unknown>; text: string }) => {
      expect(result.status, result.text).toBe(503);
      expect(Object.keys(result.body).sort()).toEqual(['code', 'message', 'statusCode']);
      expect(result.body).toMatchObject({ statusCode: 503, code: 'migration_required' });
      expect(result.text).not.toMatch(/user_id|backoffice_|1732620000000|at .*\.[jt]s/u);
    };
    const stepUp = await person.app.post('/auth/external/oidc/reauthenticate', {});
    expectMigrationRequired(stepUp);
    const other = (await ctx.userManager.createUser({ email: 'unlinked@example.com', name: 'Unlinked', password: TEST_PASSWORD })).value!;
    const http = new HttpClient(ctx.url);
    expect((await http.login(other.email, TEST_PASSWORD)).body.status).toBe('success');
    expectMigrationRequired(await http.post('/auth/external/oidc/link', {}));
    expectMigrationRequired(await http.post('/auth/external/oidc/link', {}));
    expect((await http.get('/auth/me')).status).toBe(200);

    const logged = errors.mock.calls.map((c) => String(c[0]));
    expect(logged.filter((m) => m.includes('BackOfficeIdentityExternalLoginStateUser1732620000000'))).toHaveLength(1);
    expect(logged.filter((m) => m.includes('Unhandled error'))).toEqual([]);

    // A password sign-in is not touched either.
    expect((await new HttpClient(ctx.url).login(other.email, TEST_PASSWORD)).body.status).toBe('success');
  });
});

/** The start-up check names the module's migrations not applied yet: a warning, the app still starts. */
describe('Start-up check: migrations of the module not applied yet', () => {
  let migrated: MigrationTestDatabase;
  let ctx: IdentityApp | undefined;
  const warned = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('migrations are not applied'));

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async () => undefined);
  });
  afterAll(async () => {
    await ctx?.close();
    await migrated?.close();
    vi.restoreAllMocks();
  });

  it('warns naming the ones the migrations table lacks, and only when some are missing', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn');
    const all = await migrated.app();
    await all.close();
    expect(warned(warn)).toEqual([]);

    await migrated.undoFrom(1732600000000);
    ctx = await migrated.app();
    const [message, ...more] = warned(warn);
    expect(more).toEqual([]);
    expect(message).toContain(
      '5 of its migrations are not applied yet: BackOfficeIdentitySessionNextStamps1732600000000, BackOfficeIdentityPasswordResetForced1732610000000, BackOfficeIdentityExternalLoginStateUser1732620000000, BackOfficeIdentityPasskeyChallengeUserIndex1732630000000, BackOfficeIdentityTokenHandOverPending1732640000000.',
    );
    expect((await new HttpClient(ctx.url).get('/health')).status).not.toBe(500);
  });
});

/**
 * The host runs the module's migrations with a migrations table of its own (a CLI DataSource with another
 * `migrationsTableName`), and the table the app's DataSource names, `migrations`, is another tool's, without a
 * `name` column. The check cannot read it: start-up must not fail for a warning.
 */
describe('Start-up check: a migrations table it cannot read', () => {
  let migrated: MigrationTestDatabase;
  let ctx: IdentityApp | undefined;

  beforeAll(async () => {
    migrated = await MigrationTestDatabase.create(async () => undefined);
    await migrated.source.query(`ALTER TABLE migrations RENAME TO backoffice_migrations`);
    await migrated.source.query(`CREATE TABLE migrations (id serial PRIMARY KEY, migration text NOT NULL, batch integer NOT NULL)`);
  });
  afterAll(async () => {
    await ctx?.close();
    await migrated?.close();
    vi.restoreAllMocks();
  });

  it('the app starts and serves, warning that it could not check the migrations', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn');
    ctx = await migrated.app();
    expect((await new HttpClient(ctx.url).get('/health')).status).not.toBe(500);
    const messages = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('BackOfficeIdentityModule'));
    expect(messages).toEqual([expect.stringMatching(/could not check .*"migrations".*column "name" does not exist/su)]);
  });
});
