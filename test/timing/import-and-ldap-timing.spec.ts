import { LdapPasswordChecker } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { VALID_VECTORS } from '../support/hash-vectors.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { LDAP_PEOPLE, LDAP_READER, TestSlapd } from '../support/slapd.js';
import { compareMedians } from '../support/timing.js';

/**
 * ASVS 2.2 / 3.2 enumeration with imported hashes and an LDAP directory: an unknown username must still cost what
 * a wrong password costs, whether the password is checked by a fast legacy hash or by the directory.
 */
describe('no user enumeration through timing, with imported hashes and LDAP', () => {
  let slapd: TestSlapd;
  let db: TestDatabase;
  let ctx: IdentityApp;
  const directoryUser = { uid: 'tina', cn: 'Tina Timing', mail: 'tina@ldap.example', password: 'tina directory passphrase' };

  beforeAll(async () => {
    slapd = await new TestSlapd().start([directoryUser]);
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: {
        password: { hashCost: 8 },
        rateLimits: { enabled: false },
        lockout: { maxFailedAccessAttempts: 1000 },
        passwordChecker: { useValue: new LdapPasswordChecker({ url: slapd.url, allowInsecureConnection: true, bindDn: LDAP_READER.dn, bindPassword: LDAP_READER.password, searchBase: LDAP_PEOPLE }) },
      },
    });
    await ctx.userManager.createUser({ email: directoryUser.mail, name: 'Tina' });
    const sha1 = VALID_VECTORS.find((v) => v.format === 'umbraco-sha1')!;
    await ctx.userManager.importUsers([{ email: 'legacy-timing@example.com', name: 'Legacy', groups: [], passwordFormat: sha1.format, passwordHash: sha1.hash }]);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
    await slapd?.stop();
  });

  const compare = async (label: string, known: string) => {
    const http = new HttpClient(ctx.url);
    const statuses = new Set<number>();
    for (let i = 0; i < 5; i++) {
      await http.login(`warmup${i}@example.com`, 'warm up');
      await http.login(known, 'warm up'); // the hasher's own padding hash is made on first use
    }
    const result = await compareMedians(
      40,
      async (i) => statuses.add((await http.login(`ghost${i}@example.com`, `wrong password ${i}`)).status),
      async (i) => statuses.add((await http.login(known, `wrong password ${i}`)).status),
      { tolerance: 0.15 },
    );
    console.log(`${label}: unknown ${result.medianA.toFixed(1)} ms vs wrong password ${result.medianB.toFixed(1)} ms, ratio ${result.ratio.toFixed(3)} (round ${result.round})`);
    expect([...statuses]).toEqual([401]);
    expect(result.ratio).toBeGreaterThan(0.85);
    expect(result.ratio).toBeLessThan(1.15);
  };

  it('a wrong password against an imported Umbraco SHA1 hash takes as long as an unknown username (40 each)', () => compare('imported SHA1 hash', 'legacy-timing@example.com'));
  it('a wrong directory password takes as long as an unknown username (40 each)', () => compare('LDAP', directoryUser.mail));
});
