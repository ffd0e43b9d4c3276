import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The key that encrypts TOTP secrets at rest: `BACKOFFICE_ENCRYPTION_KEY` when set; otherwise (outside
 * production) one generated once and kept in `<data dir>/encryption.key` (mode 600), so enrolled
 * authenticators keep working across restarts.
 */
export function resolveEncryptionKey(configured: string | undefined, dataDir: string): { key: string; source: string } {
  if (configured) return { key: configured, source: 'BACKOFFICE_ENCRYPTION_KEY' };
  const file = join(dataDir, 'encryption.key');
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim();
    if (key.length >= 32) return { key, source: file };
  }
  const key = randomBytes(32).toString('base64url');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return { key, source: `${file} (generated)` };
}
