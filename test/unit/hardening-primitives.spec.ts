import { createHash } from 'node:crypto';
import { nestedDeeperThan } from '../../src/backoffice-identity/http/backoffice-validation.pipe.js';
import { isDatabaseUnavailableError } from '../../src/backoffice-identity/common/database-errors.js';
import { keyedHash } from '../../src/backoffice-identity/common/keyed-hash.js';
import { hashRecoveryCode, legacyRecoveryCodeHash, newRecoveryCode } from '../../src/backoffice-identity/two-factor/recovery-codes.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import { EMAIL_ADDRESS } from '../../src/backoffice-identity/users/user-validators.js';

describe('hardening primitives', () => {
  it('nestedDeeperThan: iterative, exact at the boundary, and safe at 100,000 levels', () => {
    const nest = (depth: number) => {
      let value: unknown = 'leaf';
      for (let i = 0; i < depth; i++) value = i % 2 ? { a: value } : [value];
      return value;
    };
    expect(nestedDeeperThan(nest(16), 16)).toBe(false);
    expect(nestedDeeperThan(nest(17), 16)).toBe(true);
    expect(nestedDeeperThan({ username: 'a', password: 'b' }, 16)).toBe(false);
    expect(nestedDeeperThan(nest(100_000), 16)).toBe(true);
    expect(nestedDeeperThan('text', 0)).toBe(false);
  });

  it('isDatabaseUnavailableError: connection loss, restarts and timeouts yes; constraint violations and bugs no', () => {
    const wrapped = (driverError: object) => Object.assign(new Error('query failed'), { name: 'QueryFailedError', driverError });
    expect(isDatabaseUnavailableError(wrapped({ code: '57P01' }))).toBe(true); // pg_terminate_backend
    expect(isDatabaseUnavailableError(wrapped({ code: '57014' }))).toBe(true); // statement_timeout
    expect(isDatabaseUnavailableError(wrapped({ code: '08006' }))).toBe(true);
    expect(isDatabaseUnavailableError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isDatabaseUnavailableError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailableError(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isDatabaseUnavailableError(Object.assign(new Error('x'), { name: 'QueryRunnerAlreadyReleasedError' }))).toBe(true);
    expect(isDatabaseUnavailableError(wrapped({ code: '23505' }))).toBe(false); // unique violation
    expect(isDatabaseUnavailableError(wrapped({ code: '42P01' }))).toBe(false); // missing table: a deployment bug
    expect(isDatabaseUnavailableError(new TypeError('x is undefined'))).toBe(false);
    const loop: { cause?: unknown } = {};
    loop.cause = loop;
    expect(isDatabaseUnavailableError(loop)).toBe(false);
  });

  it('keyed hashes depend on the server key and the purpose', () => {
    const a = resolveBackOfficeIdentityOptions({ twoFactor: { encryptionKey: 'key-one-0123456789abcdefghijklmnop' } });
    const b = resolveBackOfficeIdentityOptions({ twoFactor: { encryptionKey: 'key-two-0123456789abcdefghijklmnop' } });
    expect(keyedHash(a, 'login-attempt', 'bob')).toMatch(/^[0-9a-f]{64}$/);
    expect(keyedHash(a, 'login-attempt', 'bob')).toBe(keyedHash(resolveBackOfficeIdentityOptions({ twoFactor: { encryptionKey: 'key-one-0123456789abcdefghijklmnop' } }), 'login-attempt', 'bob'));
    expect(keyedHash(a, 'login-attempt', 'bob')).not.toBe(keyedHash(b, 'login-attempt', 'bob'));
    expect(keyedHash(a, 'login-attempt', 'bob')).not.toBe(keyedHash(a, 'recovery-code', 'bob'));
    expect(keyedHash(a, 'login-attempt', 'bob')).not.toBe(createHash('sha256').update('bob').digest('hex'));
  });

  it('recovery codes: 16 characters of a 32-letter alphabet (80 bits), distinct, hashed per user and normalised', () => {
    const codes = Array.from({ length: 2000 }, () => newRecoveryCode());
    for (const code of codes) expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
    expect(new Set(codes).size).toBe(codes.length);
    const options = resolveBackOfficeIdentityOptions({ twoFactor: { encryptionKey: 'key-one-0123456789abcdefghijklmnop' } });
    const code = codes[0];
    const hash = hashRecoveryCode(options, 'user-1', code);
    expect(hash).toMatch(/^v2:[0-9a-f]{64}$/);
    expect(hashRecoveryCode(options, 'user-1', code.toLowerCase().replace(/-/g, ' '))).toBe(hash);
    expect(hashRecoveryCode(options, 'user-2', code)).not.toBe(hash);
    const keyless = resolveBackOfficeIdentityOptions();
    expect(hashRecoveryCode(keyless, 'user-1', code)).toBe(hashRecoveryCode(resolveBackOfficeIdentityOptions(), 'user-1', code)); // stable without a key
    expect(hashRecoveryCode(keyless, 'user-1', code)).not.toBe(hashRecoveryCode(keyless, 'user-2', code));
    expect(legacyRecoveryCodeHash('user-1', 'abcde-12345')).toMatch(/^legacy:[0-9a-f]{64}$/);
  });

  it('the email pattern refuses what a mail library reads as a list or a display name', () => {
    for (const ok of ['a@example.com', 'first.last+tag@sub.example.co.uk', 'jörg@exämple.de']) expect(EMAIL_ADDRESS.test(ok), ok).toBe(true);
    for (const bad of ['a@x.com,b@y.com', 'a@x.com;b@y.com', '<a@x.com>', 'A <a@x.com>', '"a"@x.com', 'a\\b@x.com', 'a:b@x.com', 'a@[127.0.0.1]', 'a@x', 'a b@x.com']) {
      expect(EMAIL_ADDRESS.test(bad), bad).toBe(false);
    }
  });
});
