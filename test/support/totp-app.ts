import { createTestDatabase, type TestDatabase } from './database.js';
import { createIdentityApp, type IdentityApp } from './identity-app.js';
import { NotificationRecorder } from './notification-recorder.js';

/** The TOTP encryption key of the app startTotpApp starts (to read or write stored authenticator keys in a test). */
export const TOTP_TEST_KEY = 'test-encryption-key-0123456789abcdef';

/** A database of its own and an app on it with TOTP (issuer 'Acme CMS', TOTP_TEST_KEY) and no rate limits; `events` records its notifications. */
export async function startTotpApp(): Promise<{ db: TestDatabase; ctx: IdentityApp; events: NotificationRecorder }> {
  const db = await createTestDatabase();
  try {
    const ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, twoFactor: { encryptionKey: TOTP_TEST_KEY, issuer: 'Acme CMS' } } });
    return { db, ctx, events: NotificationRecorder.attach(ctx.app) };
  } catch (error) {
    await db.drop();
    throw error;
  }
}
