import { LdapPasswordChecker, type LdapPasswordCheckerOptions } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { Mailbox } from '../support/mailbox.js';
import { TestSlapd } from '../support/slapd.js';
import { SoftwareAuthenticator } from '../support/software-authenticator.js';

const ORIGIN = 'http://localhost:3000';
const RP_ID = 'localhost';
const rae = { uid: 'rae', cn: 'Rae Retired', mail: 'rae@ldap.example', password: 'rae in the directory 8' };

/**
 * A password checker that retires the local passwords of the users it vouches for but does not mark them
 * directory-managed (`marksDirectoryManaged: false`, allowed by `BackOfficePasswordChecker`; a user store without
 * `UserDirectoryManagedStore` behaves alike): the retired hash must not pass for an admin's forced reset.
 */
class UnmarkingLdapPasswordChecker extends LdapPasswordChecker {
  override readonly marksDirectoryManaged = false;
}

/** Only an explicit opt-out skips the real directory; a machine without slapd fails the suite (see .ci/run). */
const describeIfSlapd = process.env.SKIP_SLAPD_TESTS === '1' ? describe.skip : describe;

describeIfSlapd('LDAP retiring local passwords without a directory mark: passkeys and the forced-reset rule (real OpenLDAP slapd)', () => {
  let slapd: TestSlapd;
  let db: TestDatabase;
  let ctx: IdentityApp;
  const options = (): LdapPasswordCheckerOptions => slapd.checkerOptions();

  beforeAll(async () => {
    Mailbox.messages = [];
    slapd = await new TestSlapd().start([rae]);
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: {
        rateLimits: { enabled: false },
        passkeys: { rpId: RP_ID, rpName: 'Acme back office', origins: [ORIGIN] },
        passwordChecker: { useValue: new UnmarkingLdapPasswordChecker(options()) },
      },
      providers: [Mailbox],
    });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
    await slapd?.stop();
  });

  async function passkeyVerify(authenticator: SoftwareAuthenticator) {
    const http = new HttpClient(ctx.url);
    const options = await http.post('/auth/passkey/options', {});
    expect(options.status, options.text).toBe(200);
    return http.post('/auth/passkey/verify', { credential: authenticator.assert(options.body) });
  }

  it('OWASP ASVS 5.0 6.4.x / 4.0 2.5.x: a former local-password user whose hash the directory retired signs in with a passkey (no admin forced a reset); an admin\'s forced reset still stops the passkey (403 password_reset_required)', async () => {
    // Rae set a local password once (lastPasswordChangeAt), before the directory took over.
    const created = (await ctx.userManager.createUser({ email: rae.mail, name: 'Rae', groups: ['editor'] })).value!;
    expect((await ctx.userManager.addPassword(created, 'rae local passphrase 1')).succeeded).toBe(true);
    const own = new HttpClient(ctx.url);
    expect((await own.login(rae.mail, rae.password)).body.status).toBe('success');
    const retired = (await ctx.userManager.findByEmail(rae.mail))!;
    // the directory vouched: the local hash is retired, and this checker leaves no mark
    expect([retired.passwordHash, retired.directoryManagedAt ?? null, retired.lastPasswordChangeAt]).toEqual([null, null, expect.any(Date)]);
    const authenticator = new SoftwareAuthenticator(ORIGIN, RP_ID);
    const registration = await own.post('/auth/passkeys/options', {});
    expect((await own.post('/auth/passkeys', { name: 'Laptop', credential: authenticator.register(registration.body) })).status).toBe(201);

    const signedIn = await passkeyVerify(authenticator);
    expect([signedIn.status, signedIn.body.code ?? signedIn.body.status], signedIn.text).toEqual([200, 'success']);

    // An admin's forced reset of the same user (no directory mark: allowed) does stop the passkey: it removes it.
    await ctx.userManager.createUser({ email: 'boss@example.com', name: 'Boss', password: TEST_PASSWORD, groups: ['admin'] });
    const admin = new HttpClient(ctx.url);
    expect((await admin.login('boss@example.com', TEST_PASSWORD)).body.status).toBe('success');
    const forced = await admin.post(`/users/${retired.id}/force-password-reset`);
    expect(forced.status, forced.text).toBe(200);
    const refused = await passkeyVerify(authenticator);
    expectClientError(refused, 401);
    expect(refused.body.code).toBe('invalid_passkey');
    expect(await ctx.userManager.getPasskeys(retired)).toEqual([]);
  });
});
