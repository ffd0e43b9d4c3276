import { IdentityResult, type IdentityError } from '../../src/backoffice-identity/common/identity-result.js';
import { BackOfficeErrorDescriber } from '../../src/backoffice-identity/common/error-describer.js';

describe('IdentityResult', () => {
  const describer = new BackOfficeErrorDescriber();

  it('success() has succeeded true, no errors and no value', () => {
    const result = IdentityResult.success();
    expect(result.succeeded).toBe(true);
    expect(result.errors).toEqual([]);
    expect(result.value).toBeUndefined();
    expect(result.toString()).toBe('Succeeded');
  });

  it('success(value) carries the value', () => {
    const user = { id: 'u1' };
    const result = IdentityResult.success(user);
    expect(result.succeeded).toBe(true);
    expect(result.value).toBe(user);
    expect(result.errors).toEqual([]);
  });

  it('failed(...errors) keeps every error in order and has no value', () => {
    const errors: IdentityError[] = [describer.passwordTooShort(12), describer.passwordTooCommon()];
    const result = IdentityResult.failed<{ id: string }>(...errors);
    expect(result.succeeded).toBe(false);
    expect(result.errors).toEqual(errors);
    expect(result.value).toBeUndefined();
    expect(result.toString()).toBe('Failed : password_too_short,password_too_common');
  });

  it('failed() with no errors is still a failure', () => {
    const result = IdentityResult.failed();
    expect(result.succeeded).toBe(false);
    expect(result.errors).toEqual([]);
  });

  it('gives each failure its own error list', () => {
    const a = IdentityResult.failed(describer.invalidEmail());
    const b = IdentityResult.failed(describer.duplicateEmail());
    expect(a.errors.map((e) => e.code)).toEqual(['invalid_email']);
    expect(b.errors.map((e) => e.code)).toEqual(['duplicate_email']);
  });

  it('serialises to JSON as { succeeded, errors }', () => {
    const json = JSON.parse(JSON.stringify(IdentityResult.failed(describer.invalidToken())));
    expect(json).toEqual({ succeeded: false, errors: [{ code: 'invalid_token', description: describer.invalidToken().description }] });
  });
});

describe('BackOfficeErrorDescriber', () => {
  const describer = new BackOfficeErrorDescriber();

  it('gives every error a stable snake_case code and a non-empty description', () => {
    const proto = BackOfficeErrorDescriber.prototype as unknown as Record<string, (...args: unknown[]) => IdentityError>;
    const names = Object.getOwnPropertyNames(proto).filter((name) => name !== 'constructor');
    expect(names.length).toBeGreaterThan(15);
    const seen = new Set<string>();
    for (const name of names) {
      const error = proto[name].call(describer, '12');
      expect(error.code, name).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(error.description.length, name).toBeGreaterThan(5);
      seen.add(error.code);
    }
    expect(seen.size).toBe(names.length); // no two methods share a code
  });

  it('does not echo an overlong group alias in full', () => {
    expect(describer.unknownGroup('g'.repeat(1000)).description.length).toBeLessThan(120);
  });
});
