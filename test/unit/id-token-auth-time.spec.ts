import { describe, expect, test } from 'vitest';
import { idTokenAuthTime } from '../../src/backoffice-identity/external-logins/external-login.service.js';

describe('an ID token\'s auth_time is read as a time only when it is a finite number (OWASP ASVS 4.0 3.7.1 / 5.0 7.5.3)', () => {
  test('a finite auth_time is the time', () => {
    expect(idTokenAuthTime({ auth_time: 1_700_000_000 })).toBe(1_700_000_000);
  });

  test('none, or not a number: absent (the provider sign-in makes no fresh session)', () => {
    expect(idTokenAuthTime({})).toBeUndefined();
    expect(idTokenAuthTime({ auth_time: '1700000000' })).toBeUndefined();
  });

  test('a non-finite auth_time (JSON -1e400 parses to -Infinity) is absent, not "authenticated now"', () => {
    expect(idTokenAuthTime({ auth_time: JSON.parse('-1e400') as number }), 'auth_time -1e400').toBeUndefined();
    expect(idTokenAuthTime({ auth_time: JSON.parse('1e400') as number }), 'auth_time 1e400').toBeUndefined();
    expect(idTokenAuthTime({ auth_time: Number.NaN }), 'auth_time NaN').toBeUndefined();
  });
});
