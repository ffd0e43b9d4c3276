import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** AES-256-GCM for secrets at rest; the key is derived from the configured secret with HKDF-SHA256. */
export class SecretCipher {
  private readonly key: Buffer;

  /** `purpose` separates keys derived from one secret for different uses. */
  constructor(secret: string, purpose = 'two-factor-secret/v1') {
    this.key = Buffer.from(hkdfSync('sha256', secret, 'backoffice-identity', purpose, 32));
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
  }

  /** @throws when the value was not made with this key (or was tampered with). */
  decrypt(value: string): string {
    const [version, iv, tag, data] = value.split('.');
    if (version !== 'v1' || !iv || !tag || data === undefined) throw new Error('Unknown secret format');
    // The full 16-byte tag: without authTagLength, Node accepts a tag cut to 4 bytes and checks only those.
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  }
}
