import type { ExecutionContext } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { CurrentBackOfficeUser } from '../../src/backoffice-identity/sessions/backoffice-authorize.decorator.js';
import { deriveUserState, toBackOfficeUserDto, type BackOfficeUser } from '../../src/backoffice-identity/users/backoffice-user.js';

const now = new Date('2026-11-23T12:00:00.000Z');
const minutes = (n: number) => new Date(now.getTime() + n * 60_000);

const SECRET_HASH = '$bo-bcrypt-sha256$v1$$2b$04$SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRE';
const SECRET_STAMP = 'STAMP-0123456789abcdef-SECRET';

function user(overrides: Partial<BackOfficeUser> = {}): BackOfficeUser {
  return {
    id: '6f9619ff-8b86-d011-b42d-00c04fc964ff',
    username: 'jane@example.com',
    normalizedUsername: 'jane@example.com',
    email: 'Jane@Example.com',
    normalizedEmail: 'jane@example.com',
    name: 'Jane Doe',
    passwordHash: SECRET_HASH,
    securityStamp: SECRET_STAMP,
    accessFailedCount: 2,
    lockoutEnabled: true,
    lockoutEnd: null,
    isApproved: true,
    twoFactorEnabled: false,
    phoneNumber: '+44 20 7946 0000',
    phoneNumberConfirmed: false,
    invitedAt: null,
    lastLoginAt: minutes(-60),
    lastPasswordChangeAt: minutes(-600),
    createdAt: new Date('2026-01-02T03:04:05.006Z'),
    updatedAt: minutes(-60),
    groups: ['writer', 'admin', 'editor'],
    ...overrides,
  };
}

describe('deriveUserState (as Umbraco derives it)', () => {
  it('is active for an approved user who has logged in', () => {
    expect(deriveUserState(user(), now)).toBe('active');
  });

  it('is disabled when not approved, whatever else is true', () => {
    expect(deriveUserState(user({ isApproved: false }), now)).toBe('disabled');
    expect(deriveUserState(user({ isApproved: false, lockoutEnd: minutes(10) }), now)).toBe('disabled');
    expect(deriveUserState(user({ isApproved: false, lastLoginAt: null, invitedAt: minutes(-5), passwordHash: null }), now)).toBe('disabled');
  });

  it('is lockedOut while lockoutEnd is in the future, and not once it has passed', () => {
    expect(deriveUserState(user({ lockoutEnd: minutes(1) }), now)).toBe('lockedOut');
    expect(deriveUserState(user({ lockoutEnd: new Date('9999-12-31T23:59:59Z') }), now)).toBe('lockedOut');
    expect(deriveUserState(user({ lockoutEnd: minutes(-1) }), now)).toBe('active');
    expect(deriveUserState(user({ lockoutEnd: new Date(now.getTime()) }), now)).toBe('active');
  });

  it('uses the given time, not the system clock', () => {
    const locked = user({ lockoutEnd: minutes(30) });
    expect(deriveUserState(locked, now)).toBe('lockedOut');
    expect(deriveUserState(locked, minutes(31))).toBe('active');
  });

  it('is invited when never logged in and invited (without a password yet)', () => {
    expect(deriveUserState(user({ lastLoginAt: null, invitedAt: minutes(-5), passwordHash: null }), now)).toBe('invited');
  });

  it('is inactive when approved but never logged in and not invited', () => {
    expect(deriveUserState(user({ lastLoginAt: null, invitedAt: null }), now)).toBe('inactive');
    expect(deriveUserState(user({ lastLoginAt: null, invitedAt: null, passwordHash: null }), now)).toBe('inactive');
  });

  it('is active, not invited, for an invited user who has since logged in', () => {
    expect(deriveUserState(user({ invitedAt: minutes(-600), lastLoginAt: minutes(-5) }), now)).toBe('active');
  });

  it('puts lockedOut before invited and inactive', () => {
    expect(deriveUserState(user({ lastLoginAt: null, lockoutEnd: minutes(5) }), now)).toBe('lockedOut');
    expect(deriveUserState(user({ lastLoginAt: null, invitedAt: minutes(-5), passwordHash: null, lockoutEnd: minutes(5) }), now)).toBe('lockedOut');
  });
});

describe('toBackOfficeUserDto', () => {
  it('returns exactly the public fields', () => {
    const dto = toBackOfficeUserDto(user(), now);
    expect(Object.keys(dto).sort()).toEqual(
      ['createdAt', 'email', 'groups', 'id', 'lastLoginAt', 'name', 'state', 'twoFactorEnabled', 'username'].sort(),
    );
    expect(dto).toEqual({
      id: '6f9619ff-8b86-d011-b42d-00c04fc964ff',
      username: 'jane@example.com',
      email: 'Jane@Example.com',
      name: 'Jane Doe',
      state: 'active',
      groups: ['admin', 'editor', 'writer'],
      twoFactorEnabled: false,
      lastLoginAt: minutes(-60).toISOString(),
      createdAt: '2026-01-02T03:04:05.006Z',
    });
  });

  it('never exposes passwordHash, securityStamp or other server-side fields, even nested in JSON', () => {
    const json = JSON.stringify(toBackOfficeUserDto(user({ twoFactorEnabled: true }), now));
    for (const secret of [SECRET_HASH, SECRET_STAMP, 'passwordHash', 'securityStamp', 'normalized', 'accessFailedCount', 'phoneNumber', 'lockoutEnd']) {
      expect(json).not.toContain(secret);
    }
  });

  it('serialises dates as ISO strings and a missing last login as null', () => {
    const dto = toBackOfficeUserDto(user({ lastLoginAt: null, invitedAt: minutes(-1), passwordHash: null }), now);
    expect(dto.lastLoginAt).toBeNull();
    expect(dto.state).toBe('invited');
    expect(typeof dto.createdAt).toBe('string');
  });

  it('derives the state at the given time', () => {
    expect(toBackOfficeUserDto(user({ lockoutEnd: minutes(5) }), now).state).toBe('lockedOut');
    expect(toBackOfficeUserDto(user({ isApproved: false }), now).state).toBe('disabled');
  });

  it('sorts a copy of the groups without touching the user\'s array', () => {
    const original = user();
    const dto = toBackOfficeUserDto(original, now);
    expect(original.groups).toEqual(['writer', 'admin', 'editor']);
    dto.groups.push('translator');
    expect(original.groups).toEqual(['writer', 'admin', 'editor']);
  });
});

describe('@CurrentBackOfficeUser() on a request.backOffice a host built itself', () => {
  /** The decorator's factory, as Nest calls it for a route parameter. */
  function currentUserFactory(): (data: unknown, context: ExecutionContext) => unknown {
    class Probe {
      handler(@CurrentBackOfficeUser() _user: unknown): void {}
    }
    const args = Reflect.getMetadata(ROUTE_ARGS_METADATA, Probe, 'handler') as Record<string, { factory: (data: unknown, context: ExecutionContext) => unknown }>;
    return Object.values(args)[0].factory;
  }
  const contextOf = (request: unknown) => ({ switchToHttp: () => ({ getRequest: () => request }) }) as unknown as ExecutionContext;

  it('without authenticatedAt (a host guard or test that sets only user, token and scheme) derives the state at the wall clock', () => {
    const locked = user({ lockoutEnd: new Date(Date.now() + 60_000) });
    const dto = currentUserFactory()(undefined, contextOf({ backOffice: { user: locked, token: 't', scheme: 'bearer' } })) as { state: string };
    expect(dto.state).toBe('lockedOut');
  });

  it('with authenticatedAt derives the state at that time (the module clock the guard read)', () => {
    const locked = user({ lockoutEnd: minutes(5) });
    const factory = currentUserFactory();
    expect((factory(undefined, contextOf({ backOffice: { user: locked, token: 't', scheme: 'bearer', authenticatedAt: now } })) as { state: string }).state).toBe('lockedOut');
    expect((factory(undefined, contextOf({ backOffice: { user: locked, token: 't', scheme: 'bearer', authenticatedAt: minutes(10) } })) as { state: string }).state).toBe('active');
  });
});
