import { BackOfficeIdentityOptionsError, resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import type { BackOfficeIdentityOptions } from '../../src/backoffice-identity/options/backoffice-identity-options.interface.js';
import { cbor } from '../support/software-authenticator.js';

const resolve = (passkeys: unknown) => resolveBackOfficeIdentityOptions({ passkeys } as BackOfficeIdentityOptions).passkeys;

function messageOf(passkeys: unknown): string {
  try {
    resolve(passkeys);
  } catch (error) {
    expect(error).toBeInstanceOf(BackOfficeIdentityOptionsError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(passkeys)} to be refused`);
}

describe('passkeys options', () => {
  it('are off by default', () => {
    expect(resolveBackOfficeIdentityOptions().passkeys).toBeNull();
  });

  it('fill in rpName and challengeMinutes', () => {
    expect(resolve({ rpId: 'example.com', origins: ['https://admin.example.com', 'https://example.com'] })).toEqual({
      rpId: 'example.com',
      rpName: 'Back office',
      origins: ['https://admin.example.com', 'https://example.com'],
      challengeMinutes: 5,
    });
    expect(resolve({ rpId: 'localhost', origins: ['http://localhost:3000'], rpName: 'Acme', challengeMinutes: 2 })).toMatchObject({ rpName: 'Acme', challengeMinutes: 2 });
  });

  it.each([
    [{ rpId: '127.0.0.1', origins: ['http://127.0.0.1:3000'] }, 'passkeys.rpId'],
    [{ rpId: 'Example.COM', origins: ['https://example.com'] }, 'passkeys.rpId'],
    [{ rpId: 'example.com:443', origins: ['https://example.com'] }, 'passkeys.rpId'],
    [{ rpId: 'https://example.com', origins: ['https://example.com'] }, 'passkeys.rpId'],
    [{ origins: ['https://example.com'] }, 'passkeys.rpId'],
    [{ rpId: 'example.com' }, 'passkeys.origins'],
    [{ rpId: 'example.com', origins: [] }, 'passkeys.origins'],
    [{ rpId: 'example.com', origins: 'https://example.com' }, 'passkeys.origins'],
    [{ rpId: 'example.com', origins: ['http://example.com'] }, 'passkeys.origins'],
    [{ rpId: 'example.com', origins: ['https://evil.com'] }, 'passkeys.origins'],
    [{ rpId: 'example.com', origins: ['https://notexample.com'] }, 'passkeys.origins'],
    [{ rpId: 'example.com', origins: ['https://example.com/'] }, 'passkeys.origins'],
    [{ rpId: 'example.com', origins: ['https://example.com/admin'] }, 'passkeys.origins'],
    [{ rpId: 'example.com', origins: ['https://example.com'], rpName: 'a\nb' }, 'passkeys.rpName'],
    [{ rpId: 'example.com', origins: ['https://example.com'], challengeMinutes: 0 }, 'passkeys.challengeMinutes'],
    [{ rpId: 'example.com', origins: ['https://example.com'], rpid: 'x' }, 'passkeys.rpid'],
    ['example.com', 'passkeys'],
  ])('refuses %j at start-up, naming %s', (passkeys, option) => {
    expect(messageOf(passkeys)).toContain(`option "${option}"`);
  });
});

describe('the CBOR encoder of the test authenticator (fixtures only)', () => {
  it('matches RFC 8949 Appendix A examples', () => {
    const hex = (value: Parameters<typeof cbor>[0]) => cbor(value).toString('hex');
    expect(hex(0)).toBe('00');
    expect(hex(23)).toBe('17');
    expect(hex(24)).toBe('1818');
    expect(hex(1000)).toBe('1903e8');
    expect(hex(1000000)).toBe('1a000f4240');
    expect(hex(-1)).toBe('20');
    expect(hex(-100)).toBe('3863');
    expect(hex('IETF')).toBe('6449455446');
    expect(hex('\u00fc')).toBe('62c3bc');
    expect(hex(new Uint8Array([1, 2, 3, 4]))).toBe('4401020304');
    expect(hex([1, [2, 3], [4, 5]])).toBe('8301820203820405');
    expect(hex(new Map<any, any>([[1, 2], [3, 4]]))).toBe('a201020304');
    expect(hex(new Map<any, any>([['a', 1], ['b', [2, 3]]]))).toBe('a26161016162820203');
  });
});
