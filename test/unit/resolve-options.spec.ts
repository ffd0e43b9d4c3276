import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import {
  BackOfficeIdentityOptionsError,
  resolveBackOfficeIdentityOptions,
} from '../../src/backoffice-identity/options/resolve-options.js';
import type { BackOfficeIdentityOptions } from '../../src/backoffice-identity/options/backoffice-identity-options.interface.js';

/** Resolves `options` (typed loosely on purpose: the tests feed wrong values) and returns the thrown error. */
function errorOf(options: unknown): BackOfficeIdentityOptionsError {
  try {
    resolveBackOfficeIdentityOptions(options as BackOfficeIdentityOptions);
  } catch (error) {
    return error as BackOfficeIdentityOptionsError;
  }
  throw new Error(`expected options ${JSON.stringify(options)} to be refused`);
}

describe('resolveBackOfficeIdentityOptions', () => {
  describe('defaults (design contract, "Options and defaults")', () => {
    const defaults = resolveBackOfficeIdentityOptions();

    it.each([
      ['routePrefix', 'backoffice'],
      ['usernameIsEmail', true],
      ['password.requiredLength', 12],
      ['password.maxLength', 256],
      ['password.rejectCommon', true],
      ['password.requireDigit', false],
      ['password.requireLowercase', false],
      ['password.requireUppercase', false],
      ['password.requireNonLetterOrDigit', false],
      ['password.hashCost', 12],
      ['lockout.maxFailedAccessAttempts', 5],
      ['lockout.durationMinutes', 5],
      ['session.idleTimeoutMinutes', 20],
      ['session.absoluteTimeoutHours', 12],
      ['session.cookieName', 'backoffice_session'],
      ['session.allowConcurrentLogins', true],
      ['session.secureCookies', true],
      ['session.reauthenticationMinutes', 5],
      ['database.statementTimeoutMs', 5000],
      ['database.connectionTimeoutMs', 5000],
      ['notifications.listenerTimeoutMs', 10000],
      ['tokens.inviteLifespanHours', 72],
      ['tokens.passwordResetLifespanHours', 1],
      ['allowPasswordReset', true],
      ['denyLocalLogin', false],
      ['publicUrl', 'http://localhost:3000'],
      ['audit.enabled', true],
      ['audit.retentionDays', 0],
      ['rateLimits.redisKeyPrefix', 'backoffice:rl:'],
      ['rateLimits.ipv6Subnet', 64],
      ['rateLimits.ipv6AggregateSubnet', 56],
      ['rateLimits.ipv6AggregateMultiplier', 16],
      ['rateLimits.profileChangePerUser', 30],
    ] as const)('%s defaults to %j', (path, expected) => {
      const value = path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], defaults);
      expect(value).toStrictEqual(expected);
    });

    it('gives the same defaults for no argument, an empty object and empty sections', () => {
      const fromEmpty = resolveBackOfficeIdentityOptions({});
      const fromSections = resolveBackOfficeIdentityOptions({ password: {}, lockout: {}, session: {}, tokens: {}, rateLimits: {}, email: {} });
      expect(fromEmpty).toEqual(defaults);
      expect(fromSections).toEqual(defaults);
    });

    it('rateLimits.ipv6AggregateSubnet follows a set ipv6Subnet of 56 or less (no second count), and may equal it; 48 stays an opt-in value', () => {
      expect(resolveBackOfficeIdentityOptions({ rateLimits: { ipv6Subnet: 40 } }).rateLimits.ipv6AggregateSubnet).toBe(40);
      expect(resolveBackOfficeIdentityOptions({ rateLimits: { ipv6Subnet: 48 } }).rateLimits.ipv6AggregateSubnet).toBe(48);
      expect(resolveBackOfficeIdentityOptions({ rateLimits: { ipv6Subnet: 56 } }).rateLimits.ipv6AggregateSubnet).toBe(56);
      expect(resolveBackOfficeIdentityOptions({ rateLimits: { ipv6Subnet: 60 } }).rateLimits.ipv6AggregateSubnet).toBe(56);
      expect(resolveBackOfficeIdentityOptions({ rateLimits: { ipv6Subnet: 128 } }).rateLimits.ipv6AggregateSubnet).toBe(56);
      expect(resolveBackOfficeIdentityOptions({ rateLimits: { ipv6AggregateSubnet: 48 } }).rateLimits.ipv6AggregateSubnet).toBe(48);
      expect(resolveBackOfficeIdentityOptions({ rateLimits: { ipv6AggregateSubnet: 64 } }).rateLimits.ipv6AggregateSubnet).toBe(64);
    });

    it('has no extra password/custom validators by default and no Redis or SMTP', () => {
      expect(defaults.passwordValidators).toEqual([]);
      expect(defaults.userValidators).toEqual([]);
      expect(defaults.rateLimits.redisUrl).toBeUndefined();
      expect(defaults.email.smtpUrl).toBeUndefined();
    });
  });

  describe('overrides', () => {
    it('keeps every valid value it is given, and defaults only the rest', () => {
      const resolved = resolveBackOfficeIdentityOptions({
        routePrefix: 'admin/api',
        usernameIsEmail: false,
        password: { requiredLength: 8, maxLength: 64, rejectCommon: false, requireDigit: true, hashCost: 4 },
        lockout: { maxFailedAccessAttempts: 3, durationMinutes: 0 },
        session: { idleTimeoutMinutes: 30, cookieName: 'my.session-id', allowConcurrentLogins: false, reauthenticationMinutes: 2.5 },
        tokens: { inviteLifespanHours: 24 },
        database: { statementTimeoutMs: 0 },
        allowPasswordReset: false,
        denyLocalLogin: true,
        publicUrl: 'https://backoffice.example.com',
      });
      expect(resolved.routePrefix).toBe('admin/api');
      expect(resolved.usernameIsEmail).toBe(false);
      expect(resolved.password).toEqual({
        requiredLength: 8,
        maxLength: 64,
        rejectCommon: false,
        requireDigit: true,
        requireLowercase: false,
        requireUppercase: false,
        requireNonLetterOrDigit: false,
        hashCost: 4,
      });
      expect(resolved.lockout).toEqual({ maxFailedAccessAttempts: 3, durationMinutes: 0 });
      expect(resolved.session).toEqual({
        idleTimeoutMinutes: 30,
        absoluteTimeoutHours: 12,
        cookieName: 'my.session-id',
        secureCookies: true,
        allowConcurrentLogins: false,
        reauthenticationMinutes: 2.5,
      });
      expect(resolved.database).toEqual({ statementTimeoutMs: 0, connectionTimeoutMs: 5000 });
      expect(resolved.tokens).toEqual({ inviteLifespanHours: 24, passwordResetLifespanHours: 1 });
      expect(resolved.allowPasswordReset).toBe(false);
      expect(resolved.denyLocalLogin).toBe(true);
      expect(resolved.publicUrl).toBe('https://backoffice.example.com');
    });

    it('accepts maxLength equal to requiredLength (the boundary)', () => {
      const resolved = resolveBackOfficeIdentityOptions({ password: { requiredLength: 20, maxLength: 20 } });
      expect(resolved.password.maxLength).toBe(20);
    });

    it('takes secureCookies false with a plain-http publicUrl (local development)', () => {
      expect(resolveBackOfficeIdentityOptions({ publicUrl: 'http://localhost:3000', session: { secureCookies: false } }).session.secureCookies).toBe(false);
      expect(resolveBackOfficeIdentityOptions({ session: { secureCookies: false } }).session.secureCookies).toBe(false);
      expect(errorOf({ publicUrl: 'https://cms.example.com', session: { secureCookies: false } }).message).toMatch(/"session.secureCookies" must stay true while publicUrl is https/);
    });

    describe('publicUrl over plain http (OWASP ASVS 4.0 9.1.1)', () => {
      it('is refused off loopback while secureCookies is on: browsers would drop the cookie, email links would carry tokens in clear', () => {
        const error = errorOf({ publicUrl: 'http://cms.example.com' });
        expect(error.message).toMatch(/"publicUrl" must be https:\/\/ while session.secureCookies is on .*turn session.secureCookies off/);
        expect(errorOf({ publicUrl: 'http://10.0.0.5:8080', session: { secureCookies: true } }).option).toBe('publicUrl');
        // The scheme in any case is the scheme.
        expect(errorOf({ publicUrl: 'HTTP://cms.example.com' }).option).toBe('publicUrl');
        expect(errorOf({ publicUrl: 'HTTPS://cms.example.com', session: { secureCookies: false } }).option).toBe('session.secureCookies');
      });

      it('is taken on loopback (browsers keep Secure cookies there) and with secureCookies off (plain-HTTP development)', () => {
        for (const publicUrl of ['http://localhost:3000', 'http://127.0.0.1:3000', 'http://127.0.0.2:3000', 'http://[::1]:3000', 'http://admin.localhost:8080']) {
          expect(resolveBackOfficeIdentityOptions({ publicUrl }).publicUrl).toBe(publicUrl);
        }
        expect(resolveBackOfficeIdentityOptions({ publicUrl: 'http://cms.internal', session: { secureCookies: false } }).publicUrl).toBe('http://cms.internal');
      });
    });

    it('keeps a path in publicUrl (an app served below one), so email links go below it', () => {
      expect(resolveBackOfficeIdentityOptions({ publicUrl: 'https://example.com/cms' }).publicUrl).toBe('https://example.com/cms');
    });

    it('says what a publicUrl with a query needs', () => {
      expect(errorOf({ publicUrl: 'https://cms.example.com/?tenant=a' }).message).toMatch(/"publicUrl" must be .*without a query, fragment or user name/);
      expect(errorOf({ publicUrl: 'https://user:secret@cms.example.com' }).message).not.toContain('secret');
    });

    it('drops a trailing slash of publicUrl so that email links do not get "//"', () => {
      expect(resolveBackOfficeIdentityOptions({ publicUrl: 'https://example.com/' }).publicUrl).toBe('https://example.com');
      expect(resolveBackOfficeIdentityOptions({ publicUrl: 'https://example.com/app//' }).publicUrl).toBe('https://example.com/app');
    });

    it('copies the validator arrays instead of keeping the caller\'s array', () => {
      const validator = { validate: () => [] };
      const passwordValidators = [validator];
      const resolved = resolveBackOfficeIdentityOptions({ passwordValidators });
      expect(resolved.passwordValidators).toEqual([validator]);
      expect(resolved.passwordValidators).not.toBe(passwordValidators);
    });

    it('takes audit as a boolean or as { enabled, retentionDays }', () => {
      expect(resolveBackOfficeIdentityOptions({ audit: false }).audit).toEqual({ enabled: false, retentionDays: 0 });
      expect(resolveBackOfficeIdentityOptions({ audit: { retentionDays: 90 } }).audit).toEqual({ enabled: true, retentionDays: 90 });
      expect(resolveBackOfficeIdentityOptions({ audit: { enabled: false, retentionDays: 0 } }).audit).toEqual({ enabled: false, retentionDays: 0 });
    });

    it('accepts the swap keys of forRoot() at the top level without complaining', () => {
      class Anything {}
      expect(() =>
        resolveBackOfficeIdentityOptions({ userManager: Anything, auditStore: { useValue: {} }, passwordHasher: { useValue: {} } } as unknown as BackOfficeIdentityOptions),
      ).not.toThrow();
    });
  });

  describe('wrong options fail with BackOfficeIdentityOptionsError naming the option path', () => {
    const cases: Array<[title: string, options: unknown, path: string]> = [
      // wrong types
      ['password.requiredLength as a string', { password: { requiredLength: '12' } }, 'password.requiredLength'],
      ['password.requiredLength not an integer', { password: { requiredLength: 12.5 } }, 'password.requiredLength'],
      ['password.requiredLength NaN', { password: { requiredLength: Number.NaN } }, 'password.requiredLength'],
      ['password.rejectCommon as a string', { password: { rejectCommon: 'yes' } }, 'password.rejectCommon'],
      ['password.requireDigit as a number', { password: { requireDigit: 1 } }, 'password.requireDigit'],
      ['usernameIsEmail as a string', { usernameIsEmail: 'true' }, 'usernameIsEmail'],
      ['allowPasswordReset as a number', { allowPasswordReset: 0 }, 'allowPasswordReset'],
      ['denyLocalLogin as a string', { denyLocalLogin: 'false' }, 'denyLocalLogin'],
      ['session.allowConcurrentLogins as a string', { session: { allowConcurrentLogins: 'no' } }, 'session.allowConcurrentLogins'],
      ['lockout.durationMinutes as a string', { lockout: { durationMinutes: '5' } }, 'lockout.durationMinutes'],
      ['lockout.durationMinutes Infinity', { lockout: { durationMinutes: Number.POSITIVE_INFINITY } }, 'lockout.durationMinutes'],
      ['a section that is a string', { password: 'strong' }, 'password'],
      ['audit as a string', { audit: 'yes' }, 'audit'],
      ['audit.retentionDays negative', { audit: { retentionDays: -1 } }, 'audit.retentionDays'],
      ['audit.retentionDays fractional', { audit: { retentionDays: 1.5 } }, 'audit.retentionDays'],
      ['audit.retentionDays as a string', { audit: { retentionDays: '30' } }, 'audit.retentionDays'],
      ['audit.retentionDays beyond 100 years', { audit: { retentionDays: 36_501 } }, 'audit.retentionDays'],
      ['audit.enabled as a string', { audit: { enabled: 'on' } }, 'audit.enabled'],
      ['an unknown audit key', { audit: { keepDays: 3 } }, 'audit.keepDays'],
      ['a section that is an array', { lockout: [5, 5] }, 'lockout'],
      ['passwordValidators not an array', { passwordValidators: { validate: () => [] } }, 'passwordValidators'],
      ['passwordValidators with an item lacking validate()', { passwordValidators: [{}] }, 'passwordValidators'],
      ['userValidators with a function item', { userValidators: [() => []] }, 'userValidators'],
      // out of range
      ['password.requiredLength 0', { password: { requiredLength: 0 } }, 'password.requiredLength'],
      ['password.requiredLength negative', { password: { requiredLength: -12 } }, 'password.requiredLength'],
      ['password.hashCost below 4', { password: { hashCost: 3 } }, 'password.hashCost'],
      ['password.hashCost above 20', { password: { hashCost: 21 } }, 'password.hashCost'],
      ['password.hashCost not an integer', { password: { hashCost: 10.5 } }, 'password.hashCost'],
      ['lockout.maxFailedAccessAttempts 0', { lockout: { maxFailedAccessAttempts: 0 } }, 'lockout.maxFailedAccessAttempts'],
      ['lockout.durationMinutes negative', { lockout: { durationMinutes: -1 } }, 'lockout.durationMinutes'],
      ['session.idleTimeoutMinutes 0', { session: { idleTimeoutMinutes: 0 } }, 'session.idleTimeoutMinutes'],
      ['session.absoluteTimeoutHours 0', { session: { absoluteTimeoutHours: 0 } }, 'session.absoluteTimeoutHours'],
      ['tokens.inviteLifespanHours 0', { tokens: { inviteLifespanHours: 0 } }, 'tokens.inviteLifespanHours'],
      ['tokens.passwordResetLifespanHours negative', { tokens: { passwordResetLifespanHours: -1 } }, 'tokens.passwordResetLifespanHours'],
      // maxLength < requiredLength
      ['password.maxLength below requiredLength', { password: { requiredLength: 20, maxLength: 19 } }, 'password.maxLength'],
      ['password.maxLength below the default requiredLength', { password: { maxLength: 8 } }, 'password.maxLength'],
      // unknown keys (typos)
      ['an unknown top-level key', { passwrod: { requiredLength: 12 } }, 'passwrod'],
      ['an unknown key in password', { password: { minLength: 8 } }, 'password.minLength'],
      ['an unknown key in session', { session: { cookie: 'sid' } }, 'session.cookie'],
      ['an unknown key in lockout', { lockout: { maxAttempts: 3 } }, 'lockout.maxAttempts'],
      ['an unknown key in tokens', { tokens: { resetLifespanHours: 2 } }, 'tokens.resetLifespanHours'],
      // URLs
      ['publicUrl not a URL', { publicUrl: 'not a url' }, 'publicUrl'],
      ['publicUrl without a scheme', { publicUrl: 'example.com' }, 'publicUrl'],
      ['publicUrl with ftp:', { publicUrl: 'ftp://example.com' }, 'publicUrl'],
      ['publicUrl with javascript:', { publicUrl: 'javascript:alert(1)' }, 'publicUrl'],
      ['publicUrl as a number', { publicUrl: 3000 }, 'publicUrl'],
      // ASVS 4.0 14.1.3: the base of every email link; a query, fragment or credentials would break or leak them
      ['publicUrl with a query', { publicUrl: 'https://cms.example.com/?tenant=a' }, 'publicUrl'],
      ['publicUrl with a fragment', { publicUrl: 'https://cms.example.com/#/admin' }, 'publicUrl'],
      ['publicUrl with a bare "?"', { publicUrl: 'https://cms.example.com?' }, 'publicUrl'],
      ['publicUrl with credentials', { publicUrl: 'https://user:secret@cms.example.com' }, 'publicUrl'],
      ['rateLimits.redisUrl with http:', { rateLimits: { redisUrl: 'http://127.0.0.1:6379' } }, 'rateLimits.redisUrl'],
      ['rateLimits.redisKeyPrefix with a space', { rateLimits: { redisKeyPrefix: 'shop admin:' } }, 'rateLimits.redisKeyPrefix'],
      ['rateLimits.redisKeyPrefix empty', { rateLimits: { redisKeyPrefix: '' } }, 'rateLimits.redisKeyPrefix'],
      ['rateLimits.ipv6AggregateSubnet narrower than ipv6Subnet', { rateLimits: { ipv6AggregateSubnet: 72 } }, 'rateLimits.ipv6AggregateSubnet'],
      ['rateLimits.ipv6AggregateSubnet narrower than a set ipv6Subnet', { rateLimits: { ipv6Subnet: 48, ipv6AggregateSubnet: 56 } }, 'rateLimits.ipv6AggregateSubnet'],
      ['rateLimits.ipv6AggregateSubnet below 16', { rateLimits: { ipv6AggregateSubnet: 8 } }, 'rateLimits.ipv6AggregateSubnet'],
      ['rateLimits.ipv6AggregateSubnet as a string', { rateLimits: { ipv6AggregateSubnet: '/48' } }, 'rateLimits.ipv6AggregateSubnet'],
      ['rateLimits.ipv6AggregateMultiplier 0', { rateLimits: { ipv6AggregateMultiplier: 0 } }, 'rateLimits.ipv6AggregateMultiplier'],
      ['rateLimits.profileChangePerUser 0', { rateLimits: { profileChangePerUser: 0 } }, 'rateLimits.profileChangePerUser'],
      ['rateLimits.profileChangePerUser not an integer', { rateLimits: { profileChangePerUser: 2.5 } }, 'rateLimits.profileChangePerUser'],
      ['rateLimits.profileChangePerUser as a string', { rateLimits: { profileChangePerUser: '30' } }, 'rateLimits.profileChangePerUser'],
      ['rateLimits.profileChangePerUser above 1000000', { rateLimits: { profileChangePerUser: 1_000_001 } }, 'rateLimits.profileChangePerUser'],
      ['rateLimits.ipv6AggregateMultiplier not an integer', { rateLimits: { ipv6AggregateMultiplier: 1.5 } }, 'rateLimits.ipv6AggregateMultiplier'],
      ['rateLimits.ipv6AggregateMultiplier above 65536', { rateLimits: { ipv6AggregateMultiplier: 65_537 } }, 'rateLimits.ipv6AggregateMultiplier'],
      ['email.smtpUrl with http:', { email: { smtpUrl: 'http://mail.example.com' } }, 'email.smtpUrl'],
      // cookie name
      ['session.cookieName with a space', { session: { cookieName: 'back office' } }, 'session.cookieName'],
      ['session.cookieName with ";"', { session: { cookieName: 'sid;Domain=evil.com' } }, 'session.cookieName'],
      ['session.cookieName with "="', { session: { cookieName: 'a=b' } }, 'session.cookieName'],
      ['session.cookieName empty', { session: { cookieName: '' } }, 'session.cookieName'],
      ['session.cookieName too long', { session: { cookieName: 'c'.repeat(65) } }, 'session.cookieName'],
      ['session.cookieName as a number', { session: { cookieName: 42 } }, 'session.cookieName'],
      // ASVS 4.0 3.4.4: names a browser never keeps as the session cookie
      ['session.cookieName "__Host-" without Secure', { session: { cookieName: '__Host-sid', secureCookies: false } }, 'session.cookieName'],
      ['session.cookieName "__Secure-" without Secure', { session: { cookieName: '__Secure-sid', secureCookies: false } }, 'session.cookieName'],
      ['session.cookieName "__host-" (browsers match the prefix in any case) without Secure', { session: { cookieName: '__host-sid', secureCookies: false } }, 'session.cookieName'],
      ['session.cookieName the XSRF cookie\'s name', { session: { cookieName: 'XSRF-TOKEN' } }, 'session.cookieName'],
      // ASVS 4.0 3.4.1: "turn off only for plain-HTTP development", not for an app its users reach over https
      ['session.secureCookies false with an https publicUrl', { publicUrl: 'https://cms.example.com', session: { secureCookies: false } }, 'session.secureCookies'],
      // route prefix
      ['routePrefix with a leading slash', { routePrefix: '/backoffice' }, 'routePrefix'],
      ['routePrefix with a trailing slash', { routePrefix: 'backoffice/' }, 'routePrefix'],
      ['routePrefix with a space', { routePrefix: 'back office' }, 'routePrefix'],
      ['routePrefix with ".."', { routePrefix: '../admin' }, 'routePrefix'],
      ['routePrefix with an empty segment', { routePrefix: 'admin//api' }, 'routePrefix'],
      ['routePrefix empty', { routePrefix: '' }, 'routePrefix'],
      ['routePrefix as a boolean', { routePrefix: true }, 'routePrefix'],
      // step-up window and database timeouts
      ['session.reauthenticationMinutes 0', { session: { reauthenticationMinutes: 0 } }, 'session.reauthenticationMinutes'],
      ['session.reauthenticationMinutes as a string', { session: { reauthenticationMinutes: '5' } }, 'session.reauthenticationMinutes'],
      ['database.statementTimeoutMs negative', { database: { statementTimeoutMs: -1 } }, 'database.statementTimeoutMs'],
      ['database.statementTimeoutMs not an integer', { database: { statementTimeoutMs: 1.5 } }, 'database.statementTimeoutMs'],
      ['database.connectionTimeoutMs as a string', { database: { connectionTimeoutMs: '1s' } }, 'database.connectionTimeoutMs'],
      ['an unknown key in database', { database: { timeout: 5 } }, 'database.timeout'],
      ['notifications.listenerTimeoutMs 0', { notifications: { listenerTimeoutMs: 0 } }, 'notifications.listenerTimeoutMs'],
      ['notifications.listenerTimeoutMs as a string', { notifications: { listenerTimeoutMs: '200' } }, 'notifications.listenerTimeoutMs'],
      ['an unknown key in notifications', { notifications: { timeoutMs: 200 } }, 'notifications.timeoutMs'],
    ];

    it.each(cases)('%s -> "%s"', (_title, options, path) => {
      const error = errorOf(options);
      expect(error).toBeInstanceOf(BackOfficeIdentityOptionsError);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe('BackOfficeIdentityOptionsError');
      // The option is quoted in the message, so "password" does not match "password.requiredLength" by accident.
      expect(error.message).toContain(`"${path}"`);
    });

    it('refuses options that are not an object at all', () => {
      for (const options of [null, 'backoffice', 42]) {
        expect(() => resolveBackOfficeIdentityOptions(options as unknown as BackOfficeIdentityOptions)).toThrow(BackOfficeIdentityOptionsError);
      }
    });

    it('says what was expected and what it got', () => {
      const range = errorOf({ password: { hashCost: 3 } });
      expect(range.message).toMatch(/4 to 20/);
      expect(range.message).toMatch(/got 3\b/);
      const maxLength = errorOf({ password: { requiredLength: 20, maxLength: 19 } });
      expect(maxLength.message).toMatch(/20 to 4096/);
      const aggregate = errorOf({ rateLimits: { ipv6AggregateSubnet: 72 } });
      expect(aggregate.message).toMatch(/16 to rateLimits\.ipv6Subnet \(64\)/);
      expect(aggregate.message).toMatch(/got 72\b/);
      const unknown = errorOf({ password: { minLength: 8 } });
      expect(unknown.message).toContain('requiredLength'); // the list of known keys helps to fix the typo
    });

    describe('twoFactor.encryptionKey (OWASP ASVS 4.0 6.4.1): a wrong key is refused without printing it', () => {
      const key = randomBytes(32);
      it.each([
        ['a Buffer (the bytes of openssl rand)', key, /must be a string .*toString\('base64'\)/],
        ['a Uint8Array', new Uint8Array(key), /must be a string/],
        ['a number', 12345678901234567890, /must be a string/],
        ['shorter than 32 characters', 'k8Yq3vPZ2mW9xT4r', /at least 32 characters/],
      ])('%s', (_title, encryptionKey, expectation) => {
        const error = errorOf({ twoFactor: { encryptionKey } });
        expect(error.message).toContain('"twoFactor.encryptionKey"');
        expect(error.message).toMatch(expectation);
        expect(error.message).not.toContain(String(key[0]) + ',' + String(key[1]));
        if (typeof encryptionKey === 'string' && encryptionKey.trim()) expect(error.message).not.toContain(encryptionKey);
      });

      it.each([
        ['32 spaces', ' '.repeat(32)],
        ['one character repeated', 'a'.repeat(40)],
        ['two characters alternating', 'ab'.repeat(20)],
      ])('a key of fewer than 8 different characters (%s) starts with a warning that never prints it (a new key would void every enrolment)', (_title, encryptionKey) => {
        const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
        try {
          expect(resolveBackOfficeIdentityOptions({ twoFactor: { encryptionKey } }).twoFactor.encryptionKey).toBe(encryptionKey);
          expect(warn).toHaveBeenCalledTimes(1);
          const message = String(warn.mock.calls[0][0]);
          expect(message).toMatch(/"twoFactor.encryptionKey" is no random secret .*every user then sets up two-factor again/);
          if (encryptionKey.trim()) expect(message).not.toContain(encryptionKey);
        } finally {
          warn.mockRestore();
        }
      });

      it('takes a base64 or hex key, or a long passphrase', () => {
        for (const encryptionKey of [key.toString('base64'), key.toString('hex'), 'correct horse battery staple, twice over']) {
          expect(resolveBackOfficeIdentityOptions({ twoFactor: { encryptionKey } }).twoFactor.encryptionKey).toBe(encryptionKey);
        }
      });
    });

    it('never prints a refused externalLogins[].clientSecret', () => {
      const provider = { name: 'oidc', displayName: 'SSO', issuer: 'https://login.example.com', clientId: 'bo', clientSecret: 'hunter2\nsecret' };
      const error = errorOf({ externalLogins: [provider] });
      expect(error.message).toContain('"externalLogins[0].clientSecret"');
      expect(error.message).not.toContain('hunter2');
    });

    it.each([
      [{ sesion: { idleTimeoutMinutes: 10 } }, 'sesion', 'session'],
      [{ rateLimit: { enabled: false } }, 'rateLimit', 'rateLimits'],
      [{ publicURL: 'https://cms.example.com' }, 'publicURL', 'publicUrl'],
      [{ session: { secureCookie: true } }, 'session.secureCookie', 'secureCookies'],
      [{ lockout: { maxFailedAttempts: 3 } }, 'lockout.maxFailedAttempts', 'maxFailedAccessAttempts'],
    ])('an unknown key that is a typo names the key it probably means first: %j', (options, path, meant) => {
      expect(errorOf(options).message).toMatch(new RegExp(`^BackOfficeIdentityModule: option "${path.replace('.', '\\.')}" is not a known option: did you mean "${meant}"\\?`));
    });

    it('says what audit and routePrefix take when they are wrong', () => {
      expect(errorOf({ audit: 'yes' }).message).toMatch(/"audit" must be true, false or \{ enabled, retentionDays \}/);
      expect(errorOf({ routePrefix: 'bäckoffice' }).message).toMatch(/"routePrefix" must be .*ASCII letters, digits, "_" or "-"/);
    });

    it('shortens a very long wrong string value in the message', () => {
      const error = errorOf({ publicUrl: 'x'.repeat(500) });
      expect(error.message).toContain('"publicUrl"');
      expect(error.message.length).toBeLessThan(200);
    });
      it('validates the host permissions: shape, description, duplicates and built-in clashes, naming the entry', () => {
      const ok = resolveBackOfficeIdentityOptions({ permissions: [{ key: 'reports.export', description: 'Export reports' }] });
      expect(ok.permissions).toEqual([{ key: 'reports.export', description: 'Export reports' }]);
      expect(resolveBackOfficeIdentityOptions({}).permissions).toEqual([]);
      const cases: Array<[unknown, RegExp]> = [
        ['reports.export', /"permissions" must be an array/],
        [[null], /"permissions\[0\]" must be/],
        [[{ key: 'Reports', description: 'x' }], /"permissions\[0\]\.key" must be a dotted/],
        [[{ key: 'reports', description: 'x' }], /"permissions\[0\]\.key"/],
        [[{ key: 'a.b', description: 'x' }, { key: 'c.d', description: '' }], /"permissions\[1\]\.description"/],
        [[{ key: 'a.b', description: 'x'.repeat(257) }], /"permissions\[0\]\.description"/],
        [[{ key: 'a.b', description: 'x' }, { key: 'a.b', description: 'y' }], /"permissions\[1\]\.key" is already registered/],
        [[{ key: 'users.read', description: 'mine' }], /"permissions\[0\]\.key" is already registered/],
        [[{ key: `a.${'b'.repeat(100)}`, description: 'x' }], /"permissions\[0\]\.key"/],
      ];
      for (const [permissions, message] of cases) {
        expect(() => resolveBackOfficeIdentityOptions({ permissions } as unknown as BackOfficeIdentityOptions)).toThrow(message);
      }
    });
});
});

describe('BackOfficeIdentityOptionsError', () => {
  it('OWASP ASVS 4.0 7.1.1: quotes a class instance by its class name only, never its fields (a swap passed as an instance may hold credentials)', () => {
    class SmtpSender {
      smtpPassword = 'smtp secret 99';
    }
    const message = new BackOfficeIdentityOptionsError('emailSender', 'must be a class', new SmtpSender()).message;
    expect(message).toContain('an instance of SmtpSender');
    expect(message).not.toContain('smtp secret 99');
    expect(new BackOfficeIdentityOptionsError('lockout', 'must be an object', { a: 1 }).message).toContain('(got {"a":1})');
  });
});
