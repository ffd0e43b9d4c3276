import { Logger } from '@nestjs/common';
import { expectClientError } from '../support/bad-input.js';
import { HttpClient } from '../support/http-client.js';
import { TEST_PASSWORD, type IdentityApp, type IdentityAppOptions } from '../support/identity-app.js';
import { MigrationTestDatabase } from '../support/migration-harness.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';

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
      '4 of its migrations are not applied yet: BackOfficeIdentitySessionNextStamps1732600000000, BackOfficeIdentityPasswordResetForced1732610000000, BackOfficeIdentityExternalLoginStateUser1732620000000, BackOfficeIdentityPasskeyChallengeUserIndex1732630000000.',
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
