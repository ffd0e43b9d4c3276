import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

/**
 * A software WebAuthn authenticator for tests: a real P-256 key pair (node:crypto), real ECDSA signatures, and
 * attestation objects / authenticator data built byte by byte as the spec lays them out. The tiny CBOR encoder
 * below is for producing these fixtures only; the library under test never parses CBOR itself (it uses
 * @simplewebauthn/server).
 */

type Cbor = number | string | Uint8Array | Cbor[] | Map<Cbor, Cbor>;

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
  if (length < 0x10000) return Buffer.from([(major << 5) | 25, length >> 8, length & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(length, 1);
  return b;
}

/** Encodes integers, text, byte strings, arrays and maps (RFC 8949 major types 0-5), definite lengths only. */
export function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), Buffer.from(value)]);
  if (Array.isArray(value)) return Buffer.concat([head(4, value.length), ...value.map(cbor)]);
  const entries = [...value.entries()];
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes as Uint8Array).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

/** What a test may change about one ceremony, to forge bad ones. */
export interface CeremonyOverrides {
  origin?: string;
  rpId?: string;
  challenge?: string;
  type?: string;
  userVerified?: boolean;
  /** The counter to sign (default: the next one). */
  counter?: number;
  /** Sign with this key instead (a wrong signature). */
  signWith?: KeyObject;
  /** Report this credential id instead. */
  credentialId?: string;
  userHandle?: string | null;
}

export class SoftwareAuthenticator {
  readonly credentialId = randomBytes(32);
  private readonly keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  counter = 0;
  userHandle: string | null = null;

  constructor(
    readonly origin: string,
    readonly rpId: string,
    /** Sign-count step per use; 0 for an authenticator without counters. */
    readonly counterStep = 1,
  ) {}

  get id(): string {
    return b64url(this.credentialId);
  }

  /** A fresh private key, for forging wrong signatures. */
  static otherKey(): KeyObject {
    return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  }

  /** The COSE_Key (EC2, P-256, ES256) of the public key. */
  private coseKey(): Buffer {
    const jwk = this.keys.publicKey.export({ format: 'jwk' });
    return cbor(new Map<Cbor, Cbor>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]));
  }

  private authenticatorData(rpId: string, flags: number, counter: number, attested?: Buffer): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter >>> 0);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), count, ...(attested ? [attested] : [])]);
  }

  private clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
  }

  private flags(userVerified: boolean, attested: boolean): number {
    // UP, UV, BE + BS (a synced passkey), AT
    return 0x01 | (userVerified ? 0x04 : 0) | 0x08 | 0x10 | (attested ? 0x40 : 0);
  }

  /** The `RegistrationResponseJSON` for creation options (`none` attestation). */
  register(options: { challenge: string; user?: { id: string } }, o: CeremonyOverrides = {}) {
    this.userHandle = options.user?.id ?? null;
    const credId = o.credentialId ? Buffer.from(o.credentialId, 'base64url') : this.credentialId;
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credId.length);
    const attested = Buffer.concat([Buffer.alloc(16), idLength, credId, this.coseKey()]);
    const authData = this.authenticatorData(o.rpId ?? this.rpId, this.flags(o.userVerified ?? true, true), o.counter ?? this.counter, attested);
    const attestationObject = cbor(new Map<Cbor, Cbor>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
    const clientDataJSON = this.clientData(o.type ?? 'webauthn.create', o.challenge ?? options.challenge, o.origin ?? this.origin);
    return {
      id: b64url(credId),
      rawId: b64url(credId),
      type: 'public-key' as const,
      response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform' as const,
    };
  }

  /** The `AuthenticationResponseJSON` for request options; advances the counter unless `counter` is given. */
  assert(options: { challenge: string }, o: CeremonyOverrides = {}) {
    let counter = o.counter;
    if (counter === undefined) {
      this.counter += this.counterStep;
      counter = this.counter;
    }
    const authData = this.authenticatorData(o.rpId ?? this.rpId, this.flags(o.userVerified ?? true, false), counter);
    const clientDataJSON = this.clientData(o.type ?? 'webauthn.get', o.challenge ?? options.challenge, o.origin ?? this.origin);
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), o.signWith ?? this.keys.privateKey);
    const id = o.credentialId ?? this.id;
    const userHandle = o.userHandle === undefined ? this.userHandle : o.userHandle;
    return {
      id,
      rawId: id,
      type: 'public-key' as const,
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        ...(userHandle ? { userHandle } : {}),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform' as const,
    };
  }
}
