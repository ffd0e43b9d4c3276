import { inspect } from 'node:util';
import * as notifications from '../../src/backoffice-identity/notifications/notifications.js';
import { BackOfficeNotification, SendEmailNotification } from '../../src/backoffice-identity/notifications/notifications.js';

const TOKEN = 'LiveInviteToken_9f8e7d6c5b4a39281706';
const message = () => ({
  to: 'invitee@example.com',
  subject: 'You have been invited to the back office',
  text: `Accept:\nhttps://cms.example.com/backoffice/accept-invite#userId=u2&token=${TOKEN}\nor paste the code ${TOKEN}`,
  html: `<a href="https://cms.example.com/backoffice/accept-invite#userId=u2&amp;token=${TOKEN}">Accept</a>`,
});

/** One init holding every field any notification takes (a notification keeps the ones it knows). */
const init = {
  ipAddress: '203.0.113.7', performingUserId: 'u1', affectedUserId: 'u2', dateTimeUtc: new Date('2026-12-01T00:00:00Z'),
  reason: 'invalid_credentials', provider: 'totp', groups: ['editor'], added: ['editor'], removed: [], source: 'local', count: 2,
  total: 1, created: 1, updated: 0, skipped: 0, invalid: 0, dryRun: false, onConflict: 'skip', passkeyId: 'pk1', passkeyName: 'Laptop',
  previousName: 'Old', usage: 'signIn', userVerified: true, storedCounter: 2, receivedCounter: 1, clientId: 'c1', previousSecretExpiresAt: null,
  usedPreviousSecret: false, changes: { name: { from: 'a', to: 'b' } }, from: 'a@example.com', to: 'b@example.com', via: 'forgot_password',
  managed: true, username: 'jane', method: 'POST', path: '/users', message: 'forbidden', alias: 'editor', until: null,
};

type NotificationClass = new (init: object) => BackOfficeNotification;
const classes = Object.entries(notifications).filter(
  (entry): entry is [string, NotificationClass] => typeof entry[1] === 'function' && entry[1].prototype instanceof BackOfficeNotification,
);
const make = (name: string, type: NotificationClass) =>
  name === 'SendEmailNotification' ? new SendEmailNotification({ ...init, emailType: 'UserInvite', message: message(), secrets: [TOKEN] }) : new type(init);

/** Every way host code shows a notification: a forwarder's JSON, a spread copy, console.log / util.inspect. */
const renderings = (n: BackOfficeNotification) => ({ json: JSON.stringify(n), spread: JSON.stringify({ ...n }), inspect: inspect(n, { depth: 10, showHidden: false }) });

describe('Notification payloads (OWASP ASVS 4.0 7.1.1)', () => {
  it('covers every notification class of notifications.ts', () => {
    expect(classes.length).toBeGreaterThan(40);
  });

  it.each(classes)('%s serialises without a password hash, token hash, TOTP secret, recovery code or internal state', (name, type) => {
    const n = make(name, type);
    for (const [how, text] of Object.entries(renderings(n))) {
      expect(text, `${name} ${how}`).not.toMatch(/passwordHash|tokenHash|totpSecret|recoveryCodes?\b|securityStamp|"secrets"|secrets:/i);
      expect(text, `${name} ${how}`).not.toContain(TOKEN);
    }
  });

  it('SendEmailNotification: the take-over listener reads the live link in message, but JSON, a spread copy and util.inspect (an onAny forwarder, a log line) never show the token', () => {
    const n = make('SendEmailNotification', SendEmailNotification as unknown as NotificationClass) as SendEmailNotification;
    expect(n.message.text).toContain(`token=${TOKEN}`);
    expect(n.message.html).toContain(`token=${TOKEN}`);
    const json = JSON.parse(renderings(n).json);
    expect(json).toMatchObject({ eventName: 'backoffice.email.send', emailType: 'UserInvite', isHandled: false, affectedUserId: 'u2' });
    expect(json.message.to).toBe('invitee@example.com');
    expect(json.message.text).toContain('token=[redacted]');
    n.handleEmail();
    expect(JSON.parse(JSON.stringify(n)).isHandled).toBe(true);
  });
});
