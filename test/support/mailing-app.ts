import { createTestDatabase, type TestDatabase } from './database.js';
import { createIdentityApp, type IdentityApp, type IdentityAppOptions } from './identity-app.js';
import { TestSmtpServer } from './smtp.js';

/** A database, a TestSmtpServer and an app on them that mails through it (links to https://cms.example.com, no rate limits); `options` add to the app. */
export async function startMailingApp(options: Omit<IdentityAppOptions, 'identity'> = {}): Promise<{ db: TestDatabase; smtp: TestSmtpServer; ctx: IdentityApp }> {
  const db = await createTestDatabase();
  let smtp: TestSmtpServer | undefined;
  try {
    smtp = await new TestSmtpServer().start();
    const ctx = await createIdentityApp(db, { ...options, identity: { email: { smtpUrl: smtp.url }, rateLimits: { enabled: false }, publicUrl: 'https://cms.example.com' } });
    return { db, smtp, ctx };
  } catch (error) {
    await smtp?.stop();
    await db.drop();
    throw error;
  }
}
