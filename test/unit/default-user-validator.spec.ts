import { BackOfficeErrorDescriber } from '../../src/backoffice-identity/common/error-describer.js';
import type { IdentityError } from '../../src/backoffice-identity/common/identity-result.js';
import { DefaultUserValidator } from '../../src/backoffice-identity/users/user-validators.js';
import type { BackOfficeUserCandidate } from '../../src/backoffice-identity/users/validators.interface.js';

const describer = new BackOfficeErrorDescriber();
const emailValidator = new DefaultUserValidator(describer, true);
const usernameValidator = new DefaultUserValidator(describer, false);
const codes = (errors: IdentityError[] | Promise<IdentityError[]>) => (errors as IdentityError[]).map((e) => e.code);
const candidate = (overrides: Record<string, unknown> = {}) =>
  ({ email: 'jane.doe@example.com', username: 'jane.doe@example.com', name: 'Jane Doe', ...overrides }) as BackOfficeUserCandidate;

describe('DefaultUserValidator', () => {
  it('accepts a well-formed user', () => {
    expect(emailValidator.validate(candidate())).toEqual([]);
    expect(usernameValidator.validate(candidate({ username: 'jane.doe' }))).toEqual([]);
  });

  describe('email', () => {
    it.each([
      'jane@example.com',
      'Jane.Doe+backoffice@sub.example.co.uk',
      'o\'brien@example.ie',
      'zoë@exämple.de',
      `${'l'.repeat(64)}@example.com`,
    ])('accepts %j', (email) => {
      expect(emailValidator.validate(candidate({ email }))).toEqual([]);
    });

    it.each([
      ['empty', ''],
      ['blank', '   '],
      ['without @', 'jane.example.com'],
      ['with two @', 'jane@doe@example.com'],
      ['without a local part', '@example.com'],
      ['without a dot in the domain', 'jane@localhost'],
      ['with an empty domain label', 'jane@example..com'],
      ['ending with a dot', 'jane@example.com.'],
      ['with a space', 'jane doe@example.com'],
      ['with a CRLF (header injection)', 'jane@example.com\r\nBcc: evil@example.com'],
      ['with a NUL', 'jane@example.com\u0000'],
      ['with a C1 control character', 'jane@exam\u0085ple.com'],
      ['with a local part of 65 characters', `${'l'.repeat(65)}@example.com`],
      ['of 257 characters', `${'l'.repeat(64)}@${'d'.repeat(188)}.com`],
      ['not a string', 42],
      ['null', null],
      ['undefined', undefined],
    ])('refuses an email %s with invalid_email', (_title, email) => {
      expect(codes(emailValidator.validate(candidate({ email })))).toEqual(['invalid_email']);
    });

    it('accepts an email of exactly 256 characters', () => {
      const email = `${'l'.repeat(64)}@${'d'.repeat(187)}.com`;
      expect(email).toHaveLength(256);
      expect(emailValidator.validate(candidate({ email }))).toEqual([]);
    });
  });

  describe('username', () => {
    it('is not checked on its own when the username is the email', () => {
      expect(emailValidator.validate(candidate({ username: '<not a username>' }))).toEqual([]);
    });

    it.each(['jane.doe', "o'brien", 'Zoë Müller', 'jane_doe-2', 'jane+test@example.com', '山田太郎'])('accepts %j when separate', (username) => {
      expect(usernameValidator.validate(candidate({ username }))).toEqual([]);
    });

    it.each([
      ['empty', ''],
      ['blank', '   '],
      ['with markup', '<script>alert(1)</script>'],
      ['with a backslash', 'domain\\jane'],
      ['with a control character', 'jane\u0007doe'],
      ['with a newline', 'jane\ndoe'],
      ['longer than 256 characters', 'j'.repeat(257)],
      ['not a string', 7],
      ['null', null],
    ])('refuses a username %s with invalid_username when separate', (_title, username) => {
      expect(codes(usernameValidator.validate(candidate({ username })))).toEqual(['invalid_username']);
    });
  });

  describe('name', () => {
    it.each(['J', 'Jane Doe', 'Zoë O\'Brien-Müller', '山田 太郎', 'n'.repeat(256)])('accepts %j', (name) => {
      expect(emailValidator.validate(candidate({ name }))).toEqual([]);
    });

    it.each([
      ['empty', ''],
      ['blank', ' \u00a0 '],
      ['longer than 256 characters', 'n'.repeat(257)],
      ['with a newline', 'Jane\nDoe'],
      ['with a lone surrogate', 'Jane \ud800'],
      ['not a string', { first: 'Jane' }],
      ['undefined', undefined],
    ])('refuses a name %s with invalid_name', (_title, name) => {
      expect(codes(emailValidator.validate(candidate({ name })))).toEqual(['invalid_name']);
    });
  });

  it('reports every invalid field at once, with the describer\'s descriptions', () => {
    const errors = usernameValidator.validate(candidate({ email: 'nope', username: '', name: '' })) as IdentityError[];
    expect(errors).toEqual([describer.invalidEmail(), describer.invalidUserName(), describer.invalidName()]);
  });

  it('does not throw on a candidate with every field missing', () => {
    expect(codes(usernameValidator.validate({} as BackOfficeUserCandidate))).toEqual(['invalid_email', 'invalid_username', 'invalid_name']);
  });
});
