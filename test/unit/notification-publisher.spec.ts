import { Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import type { MockInstance } from 'vitest';
import { BackOfficeEvents } from '../../src/backoffice-identity/constants.js';
import { NotificationPublisher } from '../../src/backoffice-identity/notifications/notification-publisher.service.js';
import {
  SendEmailNotification,
  UserForgotPasswordChangedNotification,
  UserForgotPasswordRequestedNotification,
  UserInvitedNotification,
  UserLockedNotification,
  UserLoginFailedNotification,
  UserLoginRequiresVerificationNotification,
  UserLoginSuccessNotification,
  UserLogoutSuccessNotification,
  UserPasswordChangedNotification,
  UserPasswordResetNotification,
  UserResetAccessFailedCountNotification,
  UserTwoFactorRequestedNotification,
  UserUnlockedNotification,
} from '../../src/backoffice-identity/notifications/notifications.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const logout = () => new UserLogoutSuccessNotification({ ipAddress: '203.0.113.7', performingUserId: 'u1', affectedUserId: 'u1' });

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('NotificationPublisher', () => {
  let errorLog: MockInstance;
  beforeEach(() => {
    // Failures are logged through Nest's Logger; capture them (and keep the test output clean).
    errorLog = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  describe.each([
    ['EventEmitter2 with wildcards', () => new EventEmitter2({ wildcard: true })],
    ['EventEmitter2 with the defaults of EventEmitterModule.forRoot()', () => new EventEmitter2()],
  ])('with %s', (_title, makeEmitter) => {
    let emitter: EventEmitter2;
    let publisher: NotificationPublisher;
    beforeEach(() => {
      emitter = makeEmitter();
      publisher = new NotificationPublisher(emitter);
    });

    it('awaits async listeners: a signOutRedirectUrl set after an await is seen by the caller', async () => {
      emitter.on(BackOfficeEvents.LogoutSuccess, async (n: UserLogoutSuccessNotification) => {
        await sleep(20);
        n.signOutRedirectUrl = 'https://idp.example.com/logout';
      });
      const notification = logout();
      const returned = await publisher.publish(notification);
      expect(returned).toBe(notification);
      expect(returned.signOutRedirectUrl).toBe('https://idp.example.com/logout');
    });

    it('does not resolve before the slowest listener has finished', async () => {
      const gate = deferred();
      const finished: string[] = [];
      emitter.on(BackOfficeEvents.LogoutSuccess, async () => {
        await gate.promise;
        finished.push('slow');
      });
      emitter.on(BackOfficeEvents.LogoutSuccess, () => {
        finished.push('fast');
      });
      let settled = false;
      const publishing = publisher.publish(logout()).then(() => (settled = true));
      await sleep(10);
      expect(settled).toBe(false);
      expect(finished).toEqual(['fast']);
      gate.resolve();
      await publishing;
      expect(settled).toBe(true);
      expect(finished).toEqual(['fast', 'slow']);
    });

    it('passes the notification to every listener of its event, and to no listener of other events', async () => {
      const received: unknown[] = [];
      const other = vi.fn();
      emitter.on(BackOfficeEvents.LoginFailed, (n: unknown) => received.push(n));
      emitter.on(BackOfficeEvents.LoginFailed, (n: unknown) => received.push(n));
      emitter.on(BackOfficeEvents.LoginSuccess, other);
      const notification = new UserLoginFailedNotification({ reason: 'invalid_credentials' });
      await publisher.publish(notification);
      expect(received).toEqual([notification, notification]);
      expect(other).not.toHaveBeenCalled();
    });

    it('does not reject and still runs the other listeners when one throws synchronously', async () => {
      const after = vi.fn();
      emitter.on(BackOfficeEvents.LogoutSuccess, () => {
        throw new Error('listener exploded');
      });
      emitter.on(BackOfficeEvents.LogoutSuccess, async (n: UserLogoutSuccessNotification) => {
        await sleep(5);
        n.signOutRedirectUrl = '/signed-out';
        after();
      });
      const result = await publisher.publish(logout());
      expect(after).toHaveBeenCalledTimes(1);
      expect(result.signOutRedirectUrl).toBe('/signed-out');
      expect(errorLog).toHaveBeenCalledTimes(1);
      expect(String(errorLog.mock.calls[0][0])).toContain(BackOfficeEvents.LogoutSuccess);
      expect(String(errorLog.mock.calls[0][0])).toContain('listener exploded');
    });

    it('does not reject and still runs the other listeners when one rejects (also with a non-Error)', async () => {
      const after = vi.fn();
      emitter.on(BackOfficeEvents.Locked, async () => {
        await sleep(1);
        throw new Error('database down');
      });
      emitter.on(BackOfficeEvents.Locked, () => Promise.reject('plain string reason'));
      emitter.on(BackOfficeEvents.Locked, after);
      await expect(publisher.publish(new UserLockedNotification({ affectedUserId: 'u2' }))).resolves.toBeInstanceOf(UserLockedNotification);
      expect(after).toHaveBeenCalledTimes(1);
      const messages = errorLog.mock.calls.map((call) => String(call[0]));
      expect(messages).toHaveLength(2);
      expect(messages.some((m) => m.includes('database down'))).toBe(true);
      expect(messages.some((m) => m.includes('plain string reason'))).toBe(true);
    });

    it('calls onAny listeners with the event name and the notification', async () => {
      const any = vi.fn();
      emitter.onAny(any);
      const notification = new UserTwoFactorRequestedNotification({ provider: 'totp', affectedUserId: 'u3' });
      await publisher.publish(notification);
      expect(any).toHaveBeenCalledTimes(1);
      expect(any).toHaveBeenCalledWith(BackOfficeEvents.TwoFactorRequested, notification);
    });

    it('awaits async onAny listeners and isolates a failing one', async () => {
      const seen: string[] = [];
      emitter.onAny(() => {
        throw new Error('audit failed');
      });
      emitter.onAny(async (event: string | string[]) => {
        await sleep(5);
        seen.push(String(event));
      });
      emitter.on(BackOfficeEvents.Invited, () => seen.push('specific'));
      await expect(publisher.publish(new UserInvitedNotification({}))).resolves.toBeDefined();
      expect(seen.sort()).toEqual([BackOfficeEvents.Invited, 'specific'].sort());
      expect(errorLog).toHaveBeenCalledTimes(1);
    });

    it('OWASP ASVS 4.0 7.1.4: runs onAny listeners (the audit) after the event\'s listeners settled, so they see a decision made after an await', async () => {
      emitter.on(BackOfficeEvents.LogoutSuccess, async (n: UserLogoutSuccessNotification) => {
        await sleep(20);
        n.signOutRedirectUrl = 'https://idp.example.com/logout';
      });
      emitter.on(BackOfficeEvents.SendEmail, async (n: SendEmailNotification) => {
        await sleep(20);
        n.handleEmail();
      });
      const recorded: Array<Record<string, unknown>> = [];
      emitter.onAny((_event: string | string[], n: UserLogoutSuccessNotification | SendEmailNotification) => void recorded.push(n.auditDetails()));
      await publisher.publish(logout());
      const message = { to: 'jane@example.com', subject: 'Invite', text: 'hi', html: '<p>hi</p>' };
      await publisher.publish(new SendEmailNotification({ emailType: 'UserInvite', message }));
      expect(recorded).toEqual([{ signOutRedirectUrl: 'https://idp.example.com/logout' }, { emailType: 'UserInvite', handled: true }]);
    });

    it('lets a listener take over an email (SendEmailNotification.handleEmail) after an await', async () => {
      emitter.on(BackOfficeEvents.SendEmail, async (n: SendEmailNotification) => {
        await sleep(5);
        if (n.emailType === 'UserInvite') n.handleEmail();
      });
      const message = { to: 'jane@example.com', subject: 'Invite', text: 'hi', html: '<p>hi</p>' };
      const invite = await publisher.publish(new SendEmailNotification({ emailType: 'UserInvite', message }));
      const reset = await publisher.publish(new SendEmailNotification({ emailType: 'PasswordReset', message }));
      expect(invite.isHandled).toBe(true);
      expect(reset.isHandled).toBe(false);
    });

    it('OWASP ASVS 4.0 7.1.4: a listener cannot rewrite the notification (event name, users, IP): its write throws in it and is logged; the onAny listeners (the audit) see it as published', async () => {
      emitter.on(BackOfficeEvents.Locked, (n: UserLockedNotification) => {
        Object.assign(n, { eventName: 'host.renamed', affectedUserId: 'someone-else', ipAddress: '10.0.0.1' });
      });
      const seen: unknown[] = [];
      emitter.onAny((_event: string | string[], n: UserLockedNotification) => void seen.push([n.eventName, n.affectedUserId, n.ipAddress]));
      await publisher.publish(new UserLockedNotification({ affectedUserId: 'u1', ipAddress: '203.0.113.7' }));
      expect(seen).toEqual([['backoffice.user.locked', 'u1', '203.0.113.7']]);
      expect(errorLog).toHaveBeenCalledWith(expect.stringContaining('A listener of backoffice.user.locked failed'));
    });

    it('OWASP ASVS 4.0 2.5.x: a take-over fails only when the listener that called handleEmail() fails (sync or after an await), not when another listener does, nor when a second taker delivered', async () => {
      const message = { to: 'jane@example.com', subject: 'Invite', text: 'hi', html: '<p>hi</p>' };
      const publish = () => publisher.publish(new SendEmailNotification({ emailType: 'UserInvite', message }));
      const handler = emitter.on.bind(emitter, BackOfficeEvents.SendEmail);

      handler(async (n: SendEmailNotification) => {
        n.handleEmail();
        await sleep(5);
        throw new Error('identity provider unreachable');
      });
      const failedAfterAwait = await publish();
      expect([failedAfterAwait.isHandled, failedAfterAwait.takeOverFailed]).toEqual([true, true]);

      emitter.removeAllListeners();
      handler((n: SendEmailNotification) => {
        n.handleEmail();
        throw new Error('sync failure');
      });
      expect((await publish()).takeOverFailed).toBe(true);

      emitter.removeAllListeners();
      handler(async (n: SendEmailNotification) => {
        await sleep(5);
        n.handleEmail();
      });
      handler(async () => {
        await sleep(10);
        throw new Error('an unrelated listener');
      });
      const otherFailed = await publish();
      expect([otherFailed.isHandled, otherFailed.takeOverFailed]).toEqual([true, false]);

      emitter.removeAllListeners();
      handler((n: SendEmailNotification) => n.handleEmail());
      handler(async (n: SendEmailNotification) => {
        n.handleEmail();
        throw new Error('the second taker failed');
      });
      const oneDelivered = await publish();
      expect([oneDelivered.isHandled, oneDelivered.takeOverFailed]).toEqual([true, false]);
    });

    it('OWASP ASVS 5.0 16.5.2: waits notifications.listenerTimeoutMs for each of an event\'s own listeners and a host\'s onAny ones, never for an onAny listener given to awaitInFull (the audit), and ignores a late signOutRedirectUrl', async () => {
      const limited = new NotificationPublisher(emitter, { notifications: { listenerTimeoutMs: 100 } });
      const gate = deferred();
      let lateSet: unknown;
      emitter.on(BackOfficeEvents.LogoutSuccess, async (n: UserLogoutSuccessNotification) => {
        await gate.promise;
        try {
          n.signOutRedirectUrl = 'https://late.example.com/logout';
        } catch (error) {
          lateSet = error;
        }
      });
      const audited: unknown[] = [];
      const audit = async (_event: string | string[], n: unknown) => {
        await sleep(250);
        audited.push((n as UserLogoutSuccessNotification).auditDetails());
      };
      limited.awaitInFull(audit);
      emitter.onAny(audit);
      const forwarder = gate.promise; // a host's SIEM forwarder on onAny, as slow as the listener above
      emitter.onAny(() => forwarder);
      const started = Date.now();
      const notification = await limited.publish(logout());
      expect(Date.now() - started, 'the audit is awaited, the hanging ones are not').toBeLessThan(1000);
      expect(audited).toEqual([{ signOutRedirectUrl: null }]);
      expect(errorLog.mock.calls.map((call) => String(call[0]))).toEqual([
        `A listener of ${BackOfficeEvents.LogoutSuccess} did not finish within 100 ms; the operation goes on without it`,
        `A listener of ${BackOfficeEvents.LogoutSuccess} did not finish within 100 ms; the operation goes on without it`,
      ]);
      gate.resolve();
      await sleep(5);
      expect(lateSet, 'a late set is ignored, never thrown').toBeUndefined();
      expect(notification.signOutRedirectUrl).toBeNull();
    });

    it('OWASP ASVS 5.0 16.5.2: two publishers on one emitter (the module imported twice) each await both audit listeners in full', async () => {
      const first = new NotificationPublisher(emitter, { notifications: { listenerTimeoutMs: 50 } });
      const second = new NotificationPublisher(emitter, { notifications: { listenerTimeoutMs: 50 } });
      const audited: string[] = [];
      const auditOf = (name: string) => async () => {
        await sleep(150);
        audited.push(name);
      };
      const firstAudit = auditOf('first');
      const secondAudit = auditOf('second');
      first.awaitInFull(firstAudit);
      emitter.onAny(firstAudit);
      second.awaitInFull(secondAudit);
      emitter.onAny(secondAudit);
      await first.publish(logout());
      expect(audited.sort()).toEqual(['first', 'second']);
      await second.publish(logout());
      expect(audited.sort()).toEqual(['first', 'first', 'second', 'second']);
      expect(errorLog).not.toHaveBeenCalled();
      second.stopAwaitingInFull(secondAudit);
      emitter.offAny(secondAudit);
      audited.length = 0;
      await first.publish(logout());
      expect(audited).toEqual(['first']);
    });

    it('OWASP ASVS 5.0 16.5.2: a late signOutRedirectUrl set from a detached promise (not the listener\'s own) is ignored with one warning, never an unhandled rejection', async () => {
      const limited = new NotificationPublisher(emitter, { notifications: { listenerTimeoutMs: 50 } });
      const warnLog = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => void unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const gate = deferred();
        emitter.on(BackOfficeEvents.LogoutSuccess, (n: UserLogoutSuccessNotification) => {
          // fire and forget: the listener returns at once, its work goes on beside the publisher
          void gate.promise.then(() => {
            n.signOutRedirectUrl = 'https://late.example.com/logout';
            n.signOutRedirectUrl = 'https://later.example.com/logout';
          });
        });
        const notification = await limited.publish(logout());
        gate.resolve();
        await sleep(20);
        expect(unhandled).toEqual([]);
        expect(notification.signOutRedirectUrl).toBeNull();
        expect(warnLog).toHaveBeenCalledTimes(1);
        expect(String(warnLog.mock.calls[0][0])).toContain('signOutRedirectUrl');
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });

    it('honours once(): a once listener runs for the first notification only', async () => {
      const once = vi.fn();
      emitter.once(BackOfficeEvents.LoginSuccess, once);
      await publisher.publish(new UserLoginSuccessNotification({}));
      await publisher.publish(new UserLoginSuccessNotification({}));
      expect(once).toHaveBeenCalledTimes(1);
    });

    it('resolves with the untouched notification when nobody listens', async () => {
      const notification = logout();
      await expect(publisher.publish(notification)).resolves.toBe(notification);
      expect(notification.signOutRedirectUrl).toBeNull();
      expect(errorLog).not.toHaveBeenCalled();
    });
  });

  it('reaches wildcard listeners ("backoffice.user.**", "backoffice.user.*.success") on a wildcard emitter', async () => {
    const emitter = new EventEmitter2({ wildcard: true });
    const publisher = new NotificationPublisher(emitter);
    const deep = vi.fn();
    const segment = vi.fn();
    const unrelated = vi.fn();
    emitter.on('backoffice.user.**', deep);
    emitter.on('backoffice.user.*.success', segment);
    emitter.on('backoffice.email.*', unrelated);
    const notification = logout();
    await publisher.publish(notification);
    expect(deep).toHaveBeenCalledWith(notification);
    expect(segment).toHaveBeenCalledWith(notification);
    expect(unrelated).not.toHaveBeenCalled();
  });
});

describe('notifications', () => {
  it.each([
    ['backoffice.user.login.success', () => new UserLoginSuccessNotification({})],
    ['backoffice.user.login.failed', () => new UserLoginFailedNotification({ reason: 'x' })],
    ['backoffice.user.login.requires-verification', () => new UserLoginRequiresVerificationNotification({})],
    ['backoffice.user.two-factor.requested', () => new UserTwoFactorRequestedNotification({ provider: 'totp' })],
    ['backoffice.user.locked', () => new UserLockedNotification({})],
    ['backoffice.user.unlocked', () => new UserUnlockedNotification({})],
    ['backoffice.user.access-failed-count.reset', () => new UserResetAccessFailedCountNotification({})],
    ['backoffice.user.password.changed', () => new UserPasswordChangedNotification({})],
    ['backoffice.user.password.reset', () => new UserPasswordResetNotification({})],
    ['backoffice.user.forgot-password.requested', () => new UserForgotPasswordRequestedNotification({})],
    ['backoffice.user.forgot-password.changed', () => new UserForgotPasswordChangedNotification({})],
    ['backoffice.user.invited', () => new UserInvitedNotification({})],
    ['backoffice.user.logout.success', () => new UserLogoutSuccessNotification({})],
    ['backoffice.email.send', () => new SendEmailNotification({ emailType: 'UserInvite', message: { to: 'a@b.c', subject: 's', text: 't', html: 'h' } })],
  ])('uses the contract event name %s', (eventName, make) => {
    expect(make().eventName).toBe(eventName);
  });

  it('carries ipAddress, performingUserId, affectedUserId and dateTimeUtc (null / now when not given)', () => {
    const before = Date.now();
    const bare = new UserLockedNotification({});
    expect(bare.ipAddress).toBeNull();
    expect(bare.performingUserId).toBeNull();
    expect(bare.affectedUserId).toBeNull();
    expect(bare.dateTimeUtc.getTime()).toBeGreaterThanOrEqual(before);
    expect(bare.dateTimeUtc.getTime()).toBeLessThanOrEqual(Date.now());

    const when = new Date('2026-11-23T10:00:00Z');
    const full = new UserLoginFailedNotification({ ipAddress: '198.51.100.1', performingUserId: 'p', affectedUserId: 'a', dateTimeUtc: when, reason: 'locked_out' });
    expect([full.ipAddress, full.performingUserId, full.affectedUserId, full.dateTimeUtc, full.reason]).toEqual(['198.51.100.1', 'p', 'a', when, 'locked_out']);
    expect(full.auditDetails()).toEqual({ reason: 'locked_out' });
  });

  it('UserLogoutSuccessNotification serialises and spreads with its signOutRedirectUrl and no internal state', () => {
    const notification = logout();
    notification.signOutRedirectUrl = 'https://idp.example.com/logout';
    const json = JSON.parse(JSON.stringify(notification));
    expect(json.signOutRedirectUrl).toBe('https://idp.example.com/logout');
    expect(Object.keys(json).sort()).toEqual(['affectedUserId', 'dateTimeUtc', 'eventName', 'ipAddress', 'performingUserId', 'signOutRedirectUrl']);
    const copy = { ...notification };
    expect(copy.signOutRedirectUrl).toBe('https://idp.example.com/logout');
    expect(Object.keys(copy).sort()).toEqual(Object.keys(json).sort());
    expect(Object.keys(JSON.parse(JSON.stringify(logout())))).toContain('signOutRedirectUrl');
    expect(JSON.parse(JSON.stringify(logout())).signOutRedirectUrl).toBeNull();
  });

  it('does not put the email body in the audit details of SendEmailNotification', () => {
    const notification = new SendEmailNotification({
      emailType: 'PasswordReset',
      message: { to: 'jane@example.com', subject: 'Reset', text: 'token=SECRET-TOKEN', html: '<a href="?token=SECRET-TOKEN">reset</a>' },
    });
    notification.handleEmail();
    expect(JSON.stringify(notification.auditDetails())).not.toContain('SECRET-TOKEN');
    expect(notification.auditDetails()).toEqual({ emailType: 'PasswordReset', handled: true });
  });
});
