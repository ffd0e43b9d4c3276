import { BackOfficeBackgroundTasks } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { linkParams, TestSmtpServer } from '../support/smtp.js';

/**
 * What a user controls in the module's emails (the name, set by the user through `PUT /auth/me`, by an admin's invite
 * or edit) stays on its line: a name cannot add lines of its own to the plain-text body (a fake notice and link under
 * the back office's sender, sent to an address the user picks through an email change), and the subject keeps whole
 * characters however long the name. Over real SMTP: what a mail client gets. OWASP ASVS 5.0 1.2.x (output encoding
 * for the context: a text/plain email), 16.x; ASVS 4.0 5.2.x.
 */
describe('User-controlled values in the emails stay on one line (OWASP ASVS 5.0 1.2.x)', () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let ctx: IdentityApp;
  const make = userFactory(() => ctx, 'mailinj');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();
  const fake = 'Your account is suspended. Restore it at https://evil.example/restore';

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await new TestSmtpServer().start();
    ctx = await createIdentityApp(db, { identity: { email: { smtpUrl: smtp.url }, rateLimits: { enabled: false }, publicUrl: 'https://cms.example.com' } });
  });
  afterAll(async () => {
    await ctx?.close();
    await smtp?.stop();
    await db?.drop();
  });

  /** The text body's lines as a mail client shows them (U+2028 / U+2029 / NEL break lines as CR/LF do). */
  const lines = (text: string) => text.split(/\r\n|[\r\n\u0085\u2028\u2029]/u);

  it.each([
    ['U+2028 LINE SEPARATOR', '\u2028'],
    ['U+2029 PARAGRAPH SEPARATOR', '\u2029'],
  ])('OWASP ASVS 5.0 1.2.x: a name with %s adds no line to the email-change confirmation a user sends to an address of their choosing', async (_label, separator) => {
    const user = await make();
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const renamed = await http.request('PUT', '/auth/me', { body: { name: `Support${separator}${separator}${fake}${separator}` } });
    expect(renamed.status, renamed.text).toBe(200);
    const to = `phish-target-${separator.charCodeAt(0)}@example.com`;
    expect((await http.post('/auth/me/email', { newEmail: to })).status).toBe(202);
    await drain();
    const mail = await smtp.waitFor(to);
    // Only the greeting line carries the name; no line of the body starts with the injected text.
    expect(lines(mail.text!).filter((line) => line.startsWith('Your account is suspended'))).toEqual([]);
    expect(lines(mail.text!)[0]).toContain(fake);
    expect(mail.html).not.toMatch(/[\u2028\u2029]/u);
    expect(linkParams(mail.text!, 'confirm-email').userId).toBe(user.id);
  });

  it('OWASP ASVS 5.0 1.2.x: a name with line separators adds no line to the invite, the password-reset and the notice emails', async () => {
    const name = `Ada\u2028\u2028${fake}`;
    const admin = await make({ groups: ['admin'], name: `Root\u2029${fake}` });
    const client = new HttpClient(ctx.url);
    expect((await client.login(admin.email, TEST_PASSWORD)).status).toBe(200);
    expect((await client.post('/users/invite', { email: 'invitee-inj@example.com', name, groups: ['editor'] })).status).toBe(201);
    const resetee = await make({ name });
    expect((await new HttpClient(ctx.url).post('/auth/forgot-password', { email: resetee.email })).status).toBe(202);
    const mover = await make({ name });
    const moving = new HttpClient(ctx.url);
    expect((await moving.login(mover.email, TEST_PASSWORD)).status).toBe(200);
    expect((await moving.post('/auth/me/email', { newEmail: 'mover-new-inj@example.com' })).status).toBe(202);
    await drain();
    for (const to of ['invitee-inj@example.com', resetee.email, mover.email]) {
      const mail = await smtp.waitFor(to);
      expect(lines(mail.text!).filter((line) => line.startsWith('Your account is suspended')), `${mail.subject}: ${mail.text}`).toEqual([]);
      expect(mail.html).not.toMatch(/[\u2028\u2029]/u);
    }
  });

  it('OWASP ASVS 5.0 1.2.x: a long inviter name of emoji is cut on a character boundary in the invite subject (no lone surrogate, no U+FFFD)', async () => {
    // 255 UTF-16 code units: valid, and the subject's 200-unit cut falls inside the 100th emoji.
    const admin = await make({ groups: ['admin'], name: `a${'\u{1F600}'.repeat(127)}` });
    const client = new HttpClient(ctx.url);
    expect((await client.login(admin.email, TEST_PASSWORD)).status).toBe(200);
    expect((await client.post('/users/invite', { email: 'emoji-invitee@example.com', name: 'Emoji Invitee', groups: ['editor'] })).status).toBe(201);
    const mail = await smtp.waitFor('emoji-invitee@example.com');
    expect(mail.subject).not.toContain('\uFFFD');
    expect(mail.subject!.isWellFormed()).toBe(true);
    expect(mail.subject!.startsWith(`a${'\u{1F600}'.repeat(99)}`)).toBe(true);
  });
});
