import { createHash, createHmac, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** Password hash formats {@link BackOfficeUserManager.importUsers} accepts. */
export type ImportedPasswordFormat = 'aspnet-identity' | 'umbraco-hmacsha256' | 'umbraco-sha1' | 'bcrypt';

export const IMPORTED_PASSWORD_FORMATS: readonly ImportedPasswordFormat[] = ['aspnet-identity', 'umbraco-hmacsha256', 'umbraco-sha1', 'bcrypt'];

/**
 * Names other systems use for the same formats (case-insensitive): Umbraco's `passwordConfig` hash algorithm
 * names (`PBKDF2.ASPNETCORE.V3`, `PBKDF2.ASPNETCORE.V2`, `HMACSHA256`, `SHA1`).
 */
const FORMAT_ALIASES: Record<string, ImportedPasswordFormat> = {
  'pbkdf2.aspnetcore.v3': 'aspnet-identity',
  'pbkdf2.aspnetcore.v2': 'aspnet-identity',
  hmacsha256: 'umbraco-hmacsha256',
  sha1: 'umbraco-sha1',
};

/** Prefix of an imported hash as stored: `$bo-import$<format>$<hash as given>`, so the hasher knows what it is. */
export const IMPORTED_HASH_PREFIX = '$bo-import$';

/**
 * Imported PBKDF2 iteration counts above this are refused, so imported data cannot pin the CPU at sign-in. PBKDF2
 * runs every iteration once per output block of the PRF, so the limit applies to iterations times blocks.
 */
export const MAX_IMPORTED_PBKDF2_ITERATIONS = 10_000_000;

/**
 * Imported bcrypt hashes of a higher cost are refused (one check of cost 16 is about the work of the PBKDF2 limit;
 * each step doubles it, so a cost-31 check would run for hours): imported data cannot pin the CPU at sign-in.
 */
export const MAX_IMPORTED_BCRYPT_COST = 16;

/** Longest hash text accepted at import (a V3 hash with 256-byte salt and subkey is about 700 characters). */
export const MAX_IMPORTED_HASH_LENGTH = 1024;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;
const PRF = ['sha1', 'sha256', 'sha512'] as const;
/** Output bytes of each PRF: a subkey longer than this takes ceil(length / output) runs of every iteration. */
const PRF_OUTPUT_BYTES = [20, 32, 64] as const;
/** ASP.NET Identity requires salts and subkeys of at least 128 bits; above 256 bytes no real system writes. */
const MIN_PART = 16;
const MAX_PART = 256;

/** Why an imported hash was refused (`code` is stable). */
export interface ImportedHashError {
  code: 'unknown_password_format' | 'invalid_password_hash' | 'iteration_count_too_high';
  description: string;
}

type Parsed =
  | { kind: 'pbkdf2'; digest: (typeof PRF)[number]; iterations: number; salt: Buffer; subkey: Buffer }
  | { kind: 'umbraco'; algorithm: 'hmacsha256' | 'sha1'; salt: Buffer; hash: Buffer }
  | { kind: 'bcrypt'; hash: string };

const invalid = (description: string): ImportedHashError => ({ code: 'invalid_password_hash', description });

/** The canonical format name, or null when `value` names none. */
export function importedPasswordFormat(value: unknown): ImportedPasswordFormat | null {
  if (typeof value !== 'string') return null;
  if ((IMPORTED_PASSWORD_FORMATS as readonly string[]).includes(value)) return value as ImportedPasswordFormat;
  // Own keys only: `constructor` or `__proto__` would answer Object.prototype's members (a 500 at import).
  const alias = value.toLowerCase();
  return Object.hasOwn(FORMAT_ALIASES, alias) ? FORMAT_ALIASES[alias] : null;
}

function decodeBase64(text: string): Buffer | null {
  return text.length > 0 && BASE64.test(text) ? Buffer.from(text, 'base64') : null;
}

/** ASP.NET Identity V2 (`0x00`, PBKDF2-HMAC-SHA1, 1,000 iterations) and V3 (`0x01`, PRF, iterations, salt length). */
function parseAspNetIdentity(hash: string): Parsed | ImportedHashError {
  const bytes = decodeBase64(hash);
  if (!bytes) return invalid('An ASP.NET Identity hash must be base64.');
  if (bytes[0] === 0x00) {
    if (bytes.length !== 1 + 16 + 32) return invalid('An ASP.NET Identity V2 hash holds exactly 49 bytes.');
    return { kind: 'pbkdf2', digest: 'sha1', iterations: 1000, salt: bytes.subarray(1, 17), subkey: bytes.subarray(17) };
  }
  if (bytes[0] !== 0x01) return invalid('An ASP.NET Identity hash starts with 0x00 (V2) or 0x01 (V3).');
  if (bytes.length < 13) return invalid('The ASP.NET Identity V3 hash is truncated.');
  const prf = bytes.readUInt32BE(1);
  const iterations = bytes.readUInt32BE(5);
  const saltLength = bytes.readUInt32BE(9);
  if (prf >= PRF.length) return invalid('The ASP.NET Identity V3 hash names an unknown PRF (0 SHA-1, 1 SHA-256, 2 SHA-512).');
  if (iterations < 1) return invalid('The ASP.NET Identity V3 hash has no iterations.');
  if (iterations > MAX_IMPORTED_PBKDF2_ITERATIONS) {
    return { code: 'iteration_count_too_high', description: `Imported hashes may use at most ${MAX_IMPORTED_PBKDF2_ITERATIONS} iterations.` };
  }
  if (saltLength < MIN_PART || saltLength > MAX_PART) return invalid(`The salt must be ${MIN_PART} to ${MAX_PART} bytes.`);
  const subkeyLength = bytes.length - 13 - saltLength;
  if (subkeyLength < MIN_PART || subkeyLength > MAX_PART) return invalid(`The subkey must be ${MIN_PART} to ${MAX_PART} bytes (truncated or oversized hash).`);
  if (iterations * Math.ceil(subkeyLength / PRF_OUTPUT_BYTES[prf]) > MAX_IMPORTED_PBKDF2_ITERATIONS) {
    return {
      code: 'iteration_count_too_high',
      description: `Imported hashes may use at most ${MAX_IMPORTED_PBKDF2_ITERATIONS} iterations, counted once per block of the subkey.`,
    };
  }
  return { kind: 'pbkdf2', digest: PRF[prf], iterations, salt: bytes.subarray(13, 13 + saltLength), subkey: bytes.subarray(13 + saltLength) };
}

/** Umbraco 7/8 legacy: base64 salt (16 bytes, 24 characters) then the base64 digest. */
function parseUmbracoLegacy(hash: string, algorithm: 'hmacsha256' | 'sha1'): Parsed | ImportedHashError {
  const digestLength = algorithm === 'hmacsha256' ? 32 : 20;
  const salt = decodeBase64(hash.slice(0, 24));
  const digest = decodeBase64(hash.slice(24));
  if (!salt || salt.length !== 16 || !digest || digest.length !== digestLength) {
    return invalid(`An Umbraco ${algorithm.toUpperCase()} hash is a base64 16-byte salt followed by a base64 ${digestLength}-byte digest.`);
  }
  return { kind: 'umbraco', algorithm, salt, hash: digest };
}

function parse(format: ImportedPasswordFormat, hash: string): Parsed | ImportedHashError {
  switch (format) {
    case 'aspnet-identity':
      return parseAspNetIdentity(hash);
    case 'umbraco-hmacsha256':
      return parseUmbracoLegacy(hash, 'hmacsha256');
    case 'umbraco-sha1':
      return parseUmbracoLegacy(hash, 'sha1');
    case 'bcrypt':
      if (!BCRYPT.test(hash)) return invalid('A bcrypt hash looks like $2b$10$ followed by 53 characters.');
      if (Number(hash.slice(4, 6)) > MAX_IMPORTED_BCRYPT_COST) {
        return { code: 'iteration_count_too_high', description: `Imported bcrypt hashes may use a cost of at most ${MAX_IMPORTED_BCRYPT_COST}.` };
      }
      return { kind: 'bcrypt', hash };
  }
}

/**
 * Checks a hash from another system and returns the form the module stores: bcrypt hashes as they are (the
 * hasher knows `$2a$`/`$2b$`/`$2y$`), every other format as `$bo-import$<format>$<hash>`.
 */
export function toStoredImportedHash(format: unknown, hash: unknown): { stored: string } | { error: ImportedHashError } {
  const canonical = importedPasswordFormat(format);
  if (canonical === null) {
    return { error: { code: 'unknown_password_format', description: `passwordFormat must be one of ${IMPORTED_PASSWORD_FORMATS.join(', ')}.` } };
  }
  if (typeof hash !== 'string' || hash.length === 0) return { error: invalid('passwordHash must be a non-empty string.') };
  if (hash.length > MAX_IMPORTED_HASH_LENGTH) return { error: invalid(`passwordHash may be at most ${MAX_IMPORTED_HASH_LENGTH} characters.`) };
  const parsed = parse(canonical, hash);
  if ('code' in parsed) return { error: parsed };
  return { stored: canonical === 'bcrypt' ? hash : `${IMPORTED_HASH_PREFIX}${canonical}$${hash}` };
}

/** True when `stored` is an imported hash in the `$bo-import$` form. */
export function isImportedHash(stored: string): boolean {
  return stored.startsWith(IMPORTED_HASH_PREFIX);
}

/**
 * Verifies a password against a stored `$bo-import$` hash: PBKDF2 on libuv's thread pool (async
 * `crypto.pbkdf2`), digests compared in constant time. Malformed or over-limit hashes never verify.
 */
export async function verifyImportedHash(stored: string, password: string): Promise<boolean> {
  if (!isImportedHash(stored)) return false;
  const rest = stored.slice(IMPORTED_HASH_PREFIX.length);
  const separator = rest.indexOf('$');
  const format = importedPasswordFormat(rest.slice(0, separator));
  if (separator < 0 || format === null || format === 'bcrypt') return false;
  const parsed = parse(format, rest.slice(separator + 1));
  if ('code' in parsed) return false;
  let derived: Buffer;
  let expected: Buffer;
  if (parsed.kind === 'pbkdf2') {
    derived = await pbkdf2Async(Buffer.from(password, 'utf8'), parsed.salt, parsed.iterations, parsed.subkey.length, parsed.digest);
    expected = parsed.subkey;
  } else if (parsed.kind === 'umbraco') {
    const utf16 = Buffer.from(password, 'utf16le');
    derived =
      parsed.algorithm === 'hmacsha256'
        ? createHmac('sha256', repeatToLength(parsed.salt, 64)).update(utf16).digest()
        : createHash('sha1').update(parsed.salt).update(utf16).digest();
    expected = parsed.hash;
  } else {
    return false;
  }
  return derived.length === expected.length && timingSafeEqual(derived, expected);
}

/** .NET's `KeyedHashAlgorithm` key as Umbraco sets it: the salt repeated to the block size. */
function repeatToLength(salt: Buffer, length: number): Buffer {
  const key = Buffer.alloc(length);
  for (let offset = 0; offset < length; offset += salt.length) salt.copy(key, offset, 0, Math.min(salt.length, length - offset));
  return key;
}
