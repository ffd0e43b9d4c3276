import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Browser } from 'playwright-core';
import { BACKOFFICE_USER_MANAGER, type BackOfficeUserManager } from '../../src/backoffice-identity/index.js';
import { AppModule } from '../../src/demo/app.module.js';
import { loadDemoConfig } from '../../src/demo/demo.config.js';
import { openDemoDatabase } from '../../src/demo/demo-database.js';
import { ensureFirstAdmin } from '../../src/demo/first-admin.bootstrap.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { chromiumPath, freePort, latestMailTo, launchBrowser, mailFolder } from './support/browser.js';

const executable = chromiumPath();
const suite = executable ? describe : describe.skip;

// The demo's own AppModule, configured from environment variables exactly as `npm start` reads them.
suite('the demo app (npm start) in a real browser', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let browser: Browser;
  let origin: string;
  let mail: Awaited<ReturnType<typeof mailFolder>>;
  const admin = { email: 'admin@example.com', password: 'the demo admin passphrase' };

  beforeAll(async () => {
    db = await createTestDatabase();
    mail = await mailFolder();
    const port = await freePort();
    origin = `http://localhost:${port}`;
    const config = loadDemoConfig({
      PORT: String(port),
      DATABASE_URL: db.url,
      MAIL_PICKUP_DIR: mail.dir,
      BACKOFFICE_ADMIN_PASSWORD: admin.password,
      BACKOFFICE_BCRYPT_COST: '4',
      BACKOFFICE_ENCRYPTION_KEY: 'browser-test-encryption-key-0123456789',
    });
    expect(config.publicUrl).toBe(origin);
    const database = await openDemoDatabase(config.database);
    app = await NestFactory.create(AppModule.forRoot(config, database), { logger: ['error', 'warn'] });
    await ensureFirstAdmin(app.get<BackOfficeUserManager>(BACKOFFICE_USER_MANAGER), config);
    await app.listen(port, '127.0.0.1');
    browser = await launchBrowser(executable!);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await db?.drop();
    await mail?.remove();
  });

  it('the first admin signs in at /backoffice/, invites a colleague who accepts from the .eml link, lands signed in and signs out', async () => {
    const adminContext = await browser.newContext();
    const page = await adminContext.newPage();
    await page.goto(`${origin}/backoffice/`);
    await page.getByLabel('Email', { exact: true }).fill(admin.email);
    await page.getByLabel('Password', { exact: true }).fill(admin.password);
    // The demo runs on localhost, so passkeys are on: the page also has "Sign in with a passkey".
    expect(await page.getByRole('button', { name: 'Sign in with a passkey' }).isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${origin}/backoffice/account`);
    await expect.poll(() => page.locator('#bo-signed-in-as').textContent()).toContain(admin.email);
    const invited = await page.evaluate(() =>
      (window as any).BackOfficeSession.request('POST', '/users/invite', { email: 'editor@example.com', name: 'Eddie Editor', groups: ['editor'] }),
    );
    expect(invited.status).toBe(201);

    const { link } = await latestMailTo(mail.dir, 'editor@example.com');
    expect(link.startsWith(`${origin}/backoffice/accept-invite#`)).toBe(true);
    const colleagueContext = await browser.newContext();
    const colleague = await colleagueContext.newPage();
    await colleague.goto(link);
    await colleague.getByLabel('New password', { exact: true }).fill('the editor picked this passphrase');
    await colleague.getByRole('button', { name: 'Set password' }).click();
    await colleague.waitForURL(`${origin}/backoffice/account`);
    await expect.poll(() => colleague.locator('#bo-signed-in-as').textContent()).toContain('editor@example.com');
    await colleague.getByRole('button', { name: 'Sign out', exact: true }).click();
    await colleague.waitForURL(`${origin}/backoffice`);
    await adminContext.close();
    await colleagueContext.close();
  });
});
