import * as bcrypt from 'bcrypt';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import {
  IMPORTED_HASH_PREFIX,
  MAX_IMPORTED_PBKDF2_ITERATIONS,
  toStoredImportedHash,
  verifyImportedHash,
} from '../../src/backoffice-identity/users/passwords/foreign-password-hashes.js';
import { BcryptPasswordHasher } from '../../src/backoffice-identity/users/passwords/password-hasher.js';
import { ASPNET_PASSWORD, EXTRA_DATA_VECTOR, TOO_SHORT_VECTOR, VALID_VECTORS } from '../support/hash-vectors.js';

const hasher = new BcryptPasswordHasher(resolveBackOfficeIdentityOptions({ password: { hashCost: 4 } }));

function stored(format: string, hash: string): string {
  const result = toStoredImportedHash(format, hash);
  if ('error' in result) throw new Error(`${format} refused: ${result.error.code}`);
  return result.stored;
}

/** A V3 header (PRF, iterations, salt length) followed by salt and subkey. */
function v3(prf: number, iterations: number, saltLength: number, subkeyLength: number): string {
  const header = Buffer.alloc(13);
  header[0] = 1;
  header.writeUInt32BE(prf, 1);
  header.writeUInt32BE(iterations, 5);
  header.writeUInt32BE(saltLength, 9);
  return Buffer.concat([header, Buffer.alloc(saltLength, 7), Buffer.alloc(subkeyLength, 9)]).toString('base64');
}

describe('Imported password hashes (published test vectors)', () => {
  for (const vector of VALID_VECTORS) {
    it(`${vector.name}: the right password verifies (needs re-hash), a wrong one fails`, async () => {
      const hash = stored(vector.format, vector.hash);
      expect(hash).toBe(`${IMPORTED_HASH_PREFIX}${vector.format}$${vector.hash}`);
      expect(await verifyImportedHash(hash, vector.password)).toBe(true);
      expect(await hasher.verifyHashedPassword(hash, vector.password)).toBe('successRehashNeeded');
      expect(await hasher.verifyHashedPassword(hash, `${vector.password}!`)).toBe('failed');
      expect(await hasher.verifyHashedPassword(hash, vector.password.toUpperCase())).toBe('failed');
      expect(await hasher.verifyHashedPassword(hash, '')).toBe('failed');
    });
  }

  it('ASP.NET Identity failure vector "too short" is refused at import and never verifies', async () => {
    const result = toStoredImportedHash('aspnet-identity', TOO_SHORT_VECTOR);
    expect('error' in result && result.error.code).toBe('invalid_password_hash');
    expect(await verifyImportedHash(`${IMPORTED_HASH_PREFIX}aspnet-identity$${TOO_SHORT_VECTOR}`, ASPNET_PASSWORD)).toBe(false);
  });

  it('ASP.NET Identity failure vector "extra data" never verifies (the subkey no longer matches)', async () => {
    const hash = stored('aspnet-identity', EXTRA_DATA_VECTOR);
    expect(await hasher.verifyHashedPassword(hash, ASPNET_PASSWORD)).toBe('failed');
  });

  it(`refuses more than ${MAX_IMPORTED_PBKDF2_ITERATIONS} iterations at import, and a stored one never runs`, async () => {
    const result = toStoredImportedHash('aspnet-identity', v3(1, MAX_IMPORTED_PBKDF2_ITERATIONS + 1, 16, 32));
    expect('error' in result && result.error.code).toBe('iteration_count_too_high');
    expect('error' in toStoredImportedHash('aspnet-identity', v3(1, 0xffffffff, 16, 32))).toBe(true);
    expect('stored' in toStoredImportedHash('aspnet-identity', v3(1, MAX_IMPORTED_PBKDF2_ITERATIONS, 16, 32))).toBe(true);
    const started = Date.now();
    expect(await verifyImportedHash(`${IMPORTED_HASH_PREFIX}aspnet-identity$${v3(1, 0xffffffff, 16, 32)}`, 'x')).toBe(false);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('counts every PRF block of the subkey against the iteration limit (PBKDF2 runs all iterations once per block), and a stored one over it never runs', async () => {
    // SHA-1 with a 256-byte subkey is 13 blocks: 1,000,000 iterations are 13,000,000 HMAC rounds, about 2.5 s of one thread.
    for (const [prf, iterations, subkeyLength] of [[0, 1_000_000, 256], [1, 5_000_001, 64], [2, 2_500_001, 256]]) {
      const result = toStoredImportedHash('aspnet-identity', v3(prf, iterations, 16, subkeyLength));
      expect([prf, iterations, subkeyLength, 'error' in result && result.error.code]).toEqual([prf, iterations, subkeyLength, 'iteration_count_too_high']);
    }
    expect('stored' in toStoredImportedHash('aspnet-identity', v3(1, 5_000_000, 16, 64))).toBe(true);
    expect('stored' in toStoredImportedHash('aspnet-identity', v3(0, 1_000_000, 16, 32))).toBe(true);
    const started = Date.now();
    expect(await verifyImportedHash(`${IMPORTED_HASH_PREFIX}aspnet-identity$${v3(0, 1_000_000, 16, 256)}`, 'x')).toBe(false);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('refuses a bcrypt hash of a cost above 16 at import (a cost-31 check pins a thread for hours), and a stored one never runs', async () => {
    const bcryptOfCost = (cost: number) => `$2b$${String(cost).padStart(2, '0')}$${'N9qo8uLOickgx2ZMRZoMye'}${'IjZAgcfl7p92ldGxad68LJZdL17lhWy'}`;
    for (const cost of [17, 20, 31]) {
      const result = toStoredImportedHash('bcrypt', bcryptOfCost(cost));
      expect([cost, 'error' in result && result.error.code]).toEqual([cost, 'iteration_count_too_high']);
    }
    expect(toStoredImportedHash('bcrypt', bcryptOfCost(16))).toEqual({ stored: bcryptOfCost(16) });
    const started = Date.now();
    expect(await hasher.verifyHashedPassword(bcryptOfCost(31), 'x')).toBe('failed');
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('refuses malformed hashes with a stable code', () => {
    const cases: Array<[unknown, unknown, string]> = [
      ['md5', 'abc', 'unknown_password_format'],
      [undefined, 'abc', 'unknown_password_format'],
      [42, 'abc', 'unknown_password_format'],
      ['aspnet-identity', '', 'invalid_password_hash'],
      ['aspnet-identity', 12, 'invalid_password_hash'],
      ['aspnet-identity', 'not base64 !!', 'invalid_password_hash'],
      ['aspnet-identity', Buffer.from([2, 0, 0, 0]).toString('base64'), 'invalid_password_hash'],
      ['aspnet-identity', VALID_VECTORS[2].hash.slice(0, -4), 'invalid_password_hash'],
      ['aspnet-identity', v3(3, 1000, 16, 32), 'invalid_password_hash'],
      ['aspnet-identity', v3(1, 0, 16, 32), 'invalid_password_hash'],
      ['aspnet-identity', v3(1, 1000, 8, 32), 'invalid_password_hash'],
      ['aspnet-identity', v3(1, 1000, 16, 8), 'invalid_password_hash'],
      ['aspnet-identity', v3(1, 1000, 16, 300), 'invalid_password_hash'],
      ['aspnet-identity', 'A'.repeat(2000), 'invalid_password_hash'],
      ['umbraco-hmacsha256', VALID_VECTORS[3].hash.slice(0, -4), 'invalid_password_hash'],
      ['umbraco-hmacsha256', VALID_VECTORS[4].hash, 'invalid_password_hash'],
      ['umbraco-sha1', `${VALID_VECTORS[4].hash}AAAA`, 'invalid_password_hash'],
      ['bcrypt', '$2b$10$short', 'invalid_password_hash'],
      ['bcrypt', `$2b$03$${'a'.repeat(53)}`, 'invalid_password_hash'],
    ];
    for (const [format, hash, code] of cases) {
      const result = toStoredImportedHash(format, hash);
      expect('error' in result ? result.error.code : 'accepted', `${String(format)} ${String(hash).slice(0, 40)}`).toBe(code);
      if ('error' in result && String(hash).length >= 8) expect(result.error.description).not.toContain(String(hash).slice(0, 20));
    }
  });

  it("accepts Umbraco's passwordConfig algorithm names as aliases", () => {
    expect(stored('PBKDF2.ASPNETCORE.V3', VALID_VECTORS[0].hash)).toBe(`${IMPORTED_HASH_PREFIX}aspnet-identity$${VALID_VECTORS[0].hash}`);
    expect(stored('HMACSHA256', VALID_VECTORS[3].hash)).toMatch(/^\$bo-import\$umbraco-hmacsha256\$/);
    expect(stored('SHA1', VALID_VECTORS[4].hash)).toMatch(/^\$bo-import\$umbraco-sha1\$/);
  });

  it('keeps bcrypt hashes as they are; they verify through the legacy bcrypt path and need a re-hash', async () => {
    const hash = await bcrypt.hash('an imported bcrypt password', 4);
    expect(stored('bcrypt', hash)).toBe(hash);
    expect(await hasher.verifyHashedPassword(hash, 'an imported bcrypt password')).toBe('successRehashNeeded');
  });

  it('a tampered stored hash does not verify', async () => {
    const hash = stored('umbraco-sha1', VALID_VECTORS[4].hash);
    expect(await verifyImportedHash(hash.replace('umbraco-sha1', 'umbraco-hmacsha256'), VALID_VECTORS[4].password)).toBe(false);
    expect(await verifyImportedHash(hash.replace('umbraco-sha1', 'bcrypt'), VALID_VECTORS[4].password)).toBe(false);
    expect(await verifyImportedHash('$bo-import$nothing', VALID_VECTORS[4].password)).toBe(false);
  });

  it('a wrong password against a fast legacy hash also spends one bcrypt check at the configured cost (ASVS V2.4: no timing oracle)', async () => {
    // Structural here; the measured timing is in test/timing/import-and-ldap-timing.spec.ts (runs alone, last).
    const fast = stored('umbraco-sha1', VALID_VECTORS[4].hash);
    const slowHasher = new BcryptPasswordHasher(resolveBackOfficeIdentityOptions({ password: { hashCost: 6 } }));
    const compare = vi.spyOn(BcryptPasswordHasher as unknown as { compare: (input: string, hash: string) => Promise<boolean> }, 'compare');
    try {
      expect(await slowHasher.verifyHashedPassword(fast, 'wrong password')).toBe('failed');
      expect(compare).toHaveBeenCalledTimes(1);
      expect(bcrypt.getRounds(compare.mock.calls[0][1])).toBe(6);
      compare.mockClear();
      expect(await slowHasher.verifyHashedPassword(fast, VALID_VECTORS[4].password)).toBe('successRehashNeeded');
    } finally {
      compare.mockRestore();
    }
  });
});
