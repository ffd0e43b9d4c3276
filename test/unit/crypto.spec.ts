import { constantTimeEquals, randomToken, sha256Hex } from '../../src/backoffice-identity/common/crypto.js';
import { SecretCipher } from '../../src/backoffice-identity/two-factor/secret-cipher.js';

describe('randomToken', () => {
  it('makes 32 random bytes into 43 base64url characters (256 bits >= 128)', () => {
    const token = randomToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const bytes = Buffer.from(token, 'base64url');
    expect(bytes).toHaveLength(32);
    expect(bytes.length * 8).toBeGreaterThanOrEqual(128);
  });

  it('honours the byte count: 16 bytes = 22 characters, 64 bytes = 86', () => {
    expect(randomToken(16)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(randomToken(16), 'base64url')).toHaveLength(16);
    expect(randomToken(64)).toHaveLength(86);
  });

  it('is URL-safe: no "+", "/" or "=" padding, so it can go in a link unescaped', () => {
    const tokens = Array.from({ length: 200 }, () => randomToken());
    for (const token of tokens) {
      expect(token).not.toMatch(/[+/=]/);
      expect(encodeURIComponent(token)).toBe(token);
    }
  });

  it('does not repeat and uses the whole alphabet (not a counter or a weak source)', () => {
    const tokens = Array.from({ length: 2000 }, () => randomToken());
    expect(new Set(tokens).size).toBe(tokens.length);
    const characters = new Set(tokens.join(''));
    expect(characters.size).toBe(64);
    // every bit position varies: no byte is stuck
    const decoded = tokens.map((t) => Buffer.from(t, 'base64url'));
    for (let i = 0; i < 32; i++) {
      const orAll = decoded.reduce((acc, b) => acc | b[i], 0);
      const andAll = decoded.reduce((acc, b) => acc & b[i], 0xff);
      expect(orAll, `byte ${i}`).toBe(0xff);
      expect(andAll, `byte ${i}`).toBe(0);
    }
  });
});

describe('sha256Hex', () => {
  it('matches the FIPS 180-2 test vectors', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('is 64 lower-case hex characters, deterministic, and differs for different inputs', () => {
    const token = randomToken();
    expect(sha256Hex(token)).toMatch(/^[0-9a-f]{64}$/);
    expect(sha256Hex(token)).toBe(sha256Hex(token));
    expect(sha256Hex(token)).not.toBe(sha256Hex(`${token}x`));
    expect(sha256Hex(token)).not.toContain(token);
  });

  it('hashes the UTF-8 bytes (a non-ASCII string is not hashed as Latin-1)', () => {
    // SHA-256 of the UTF-8 bytes c3 a9 ("é")
    expect(sha256Hex('é')).toBe(sha256Hex(Buffer.from([0xc3, 0xa9]).toString('utf8')));
    expect(sha256Hex('é')).not.toBe(sha256Hex('e'));
    expect(sha256Hex('é'.normalize('NFD'))).not.toBe(sha256Hex('é'.normalize('NFC')));
  });
});

describe('constantTimeEquals', () => {
  it('is true for equal strings', () => {
    const token = randomToken();
    expect(constantTimeEquals(token, `${token}`)).toBe(true);
    expect(constantTimeEquals('', '')).toBe(true);
    expect(constantTimeEquals('ünïcødé 😀', 'ünïcødé 😀')).toBe(true);
  });

  it('is false for different strings of the same length', () => {
    const token = randomToken();
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(constantTimeEquals(token, flipped)).toBe(false);
    expect(constantTimeEquals('abc', 'abd')).toBe(false);
    expect(constantTimeEquals('abc', 'ABC')).toBe(false);
  });

  it('is false for different lengths, including a prefix and the empty string, without throwing', () => {
    expect(constantTimeEquals('abc', 'abcd')).toBe(false);
    expect(constantTimeEquals('abcd', 'abc')).toBe(false);
    expect(constantTimeEquals('', 'a')).toBe(false);
    expect(constantTimeEquals(randomToken(), randomToken(64))).toBe(false);
  });

  it('compares code units exactly (NFC and NFD are different strings here)', () => {
    expect(constantTimeEquals('é'.normalize('NFC'), 'é'.normalize('NFD'))).toBe(false);
  });
});

describe('SecretCipher (AES-256-GCM, 2FA secrets at rest)', () => {
  const cipher = new SecretCipher('test-encryption-key-0123456789abcdef');

  it('OWASP ASVS 4.0 6.2.1: refuses a value whose authentication tag was cut short (GCM would check only the bytes left: 4 bytes are 2^32 tries to forge)', () => {
    const [version, iv, tag, data] = cipher.encrypt('JBSWY3DPEHPK3PXP').split('.');
    for (const bytes of [4, 8, 12, 15]) {
      const short = Buffer.from(tag, 'base64url').subarray(0, bytes).toString('base64url');
      expect(() => cipher.decrypt([version, iv, short, data].join('.'))).toThrow();
    }
    expect(cipher.decrypt([version, iv, tag, data].join('.'))).toBe('JBSWY3DPEHPK3PXP');
  });
});
