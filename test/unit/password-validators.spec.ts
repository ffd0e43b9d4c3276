import { BackOfficeErrorDescriber } from '../../src/backoffice-identity/common/error-describer.js';
import type { IdentityError } from '../../src/backoffice-identity/common/identity-result.js';
import type { BackOfficePasswordOptions } from '../../src/backoffice-identity/options/backoffice-identity-options.interface.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import {
  CommonPasswordValidator,
  PolicyPasswordValidator,
  commonPasswordList,
  passwordLength,
} from '../../src/backoffice-identity/users/passwords/password-validators.js';

const describer = new BackOfficeErrorDescriber();
const policyOf = (password: BackOfficePasswordOptions = {}) => resolveBackOfficeIdentityOptions({ password }).password;
const policyValidator = (password: BackOfficePasswordOptions = {}) => new PolicyPasswordValidator(policyOf(password), describer);
const codes = (errors: IdentityError[] | Promise<IdentityError[]>) => (errors as IdentityError[]).map((e) => e.code);

describe('PolicyPasswordValidator', () => {
  describe('length (in Unicode code points, defaults 12..256)', () => {
    const validator = policyValidator();

    it('refuses 11 characters and accepts 12', () => {
      expect(codes(validator.validate('abcdefghijk'))).toEqual(['password_too_short']);
      expect(validator.validate('abcdefghijkl')).toEqual([]);
    });

    it('describes "too short" with the configured length, through the describer', () => {
      const [error] = policyValidator({ requiredLength: 16 }).validate('fifteen chars!!') as IdentityError[];
      expect(error).toEqual(describer.passwordTooShort(16));
      expect(error.description).toContain('16');
    });

    it('accepts 256 characters and refuses 257', () => {
      expect(validator.validate('a'.repeat(256))).toEqual([]);
      const errors = validator.validate('a'.repeat(257)) as IdentityError[];
      expect(codes(errors)).toEqual(['password_too_long']);
      expect(errors[0].description).toContain('256');
    });

    it('counts an emoji as one character, not as two UTF-16 units', () => {
      expect('😀'.repeat(11).length).toBe(22); // JavaScript's .length would wrongly say it is long enough
      expect(passwordLength('😀'.repeat(11))).toBe(11);
      expect(codes(validator.validate('😀'.repeat(11)))).toEqual(['password_too_short']);
      expect(validator.validate('😀'.repeat(12))).toEqual([]);
    });

    it('applies maxLength in code points too', () => {
      const short = policyValidator({ requiredLength: 4, maxLength: 16 });
      expect(short.validate('😀'.repeat(16))).toEqual([]); // 32 UTF-16 units, 16 code points
      expect(codes(short.validate('😀'.repeat(17)))).toEqual(['password_too_long']);
      expect(short.validate('€'.repeat(16))).toEqual([]); // 48 UTF-8 bytes, 16 code points
    });

    it('counts multi-byte characters (accents, CJK) as one each', () => {
      expect(codes(validator.validate('日本語のパスワードです'))).toEqual(['password_too_short']); // 11
      expect(validator.validate('日本語のパスワードですね')).toEqual([]); // 12
      expect(passwordLength('ÉÀÜöß')).toBe(5);
    });
  });

  describe('composition (off by default: length over composition)', () => {
    it('asks for no composition by default: twelve lowercase letters pass', () => {
      expect(policyValidator().validate('abcdefghijkl')).toEqual([]);
    });

    it.each([
      ['requireDigit', 'password_requires_digit', 'no digits in here', 'one digit 7 here', 'an Arabic-Indic digit ٣ here'],
      ['requireLowercase', 'password_requires_lower', 'NO LOWERCASE 123', 'ONE LOWERCASe 123', 'ONE ACCENTED É LOWER é'],
      ['requireUppercase', 'password_requires_upper', 'no uppercase 123', 'One uppercase 123', 'éclair with Ü upper'],
      ['requireNonLetterOrDigit', 'password_requires_non_alphanumeric', 'OnlyLettersAnd123', 'Letters and a space', 'Buchstaben·Punkt'],
    ] as const)('%s: refuses with %s, accepts when present (also non-ASCII)', (option, code, bad, good, unicode) => {
      const validator = policyValidator({ requiredLength: 8, [option]: true });
      expect(codes(validator.validate(bad))).toEqual([code]);
      expect(validator.validate(good)).toEqual([]);
      expect(validator.validate(unicode)).toEqual([]);
      // with the option off, the same password is fine
      expect(policyValidator({ requiredLength: 8 }).validate(bad)).toEqual([]);
    });

    it('reports every broken rule at once', () => {
      const validator = policyValidator({ requireDigit: true, requireLowercase: true, requireUppercase: true, requireNonLetterOrDigit: true });
      expect(codes(validator.validate('short')).sort()).toEqual(
        ['password_requires_digit', 'password_requires_non_alphanumeric', 'password_requires_upper', 'password_too_short'].sort(),
      );
      expect(validator.validate('Long enough & 1 digit')).toEqual([]);
    });
  });

  describe('control characters', () => {
    const validator = policyValidator();
    it.each([
      ['NUL', '\u0000'],
      ['TAB', '\t'],
      ['LF', '\n'],
      ['CR', '\r'],
      ['ESC', '\u001b'],
      ['DEL', '\u007f'],
      ['C1 NEL', '\u0085'],
      ['a lone high surrogate', '\ud83d'],
      ['a lone low surrogate', '\ude00'],
    ])('refuses a long password containing %s, with password_invalid only', (_name, character) => {
      const errors = validator.validate(`a long enough pass${character}phrase`);
      expect(codes(errors)).toEqual(['password_invalid']);
    });

    it('accepts ordinary spaces, punctuation and proper surrogate pairs', () => {
      expect(validator.validate('spaces, commas; and 😀 emoji!')).toEqual([]);
    });

    it.each([null, undefined, 123456789012, ['abcdefghijkl']])('refuses a non-string (%j) without throwing', (value) => {
      expect(codes(validator.validate(value as unknown as string))).toEqual(['password_invalid']);
    });
  });

  it('takes its descriptions from an overridden describer (e.g. a translation)', () => {
    class GermanDescriber extends BackOfficeErrorDescriber {
      override passwordTooShort(length: number): IdentityError {
        return { code: 'password_too_short', description: `Passwörter müssen mindestens ${length} Zeichen lang sein.` };
      }
    }
    const validator = new PolicyPasswordValidator(policyOf(), new GermanDescriber());
    expect(validator.validate('kurz')).toEqual([
      { code: 'password_too_short', description: 'Passwörter müssen mindestens 12 Zeichen lang sein.' },
    ]);
  });
});

describe('CommonPasswordValidator', () => {
  const validator = new CommonPasswordValidator(describer);
  const isRefused = (password: string) => {
    const errors = validator.validate(password) as IdentityError[];
    if (errors.length === 0) return false;
    expect(errors).toEqual([describer.passwordTooCommon()]);
    return true;
  };

  it('ships a list of tens of thousands of lower-case common passwords, offline', () => {
    const list = commonPasswordList();
    expect(list.size).toBeGreaterThan(40_000);
    for (const entry of ['password', 'qwerty', 'iloveyou', '123456', 'letmein']) expect(list.has(entry)).toBe(true);
    expect([...list].every((entry) => entry === entry.toLowerCase())).toBe(true);
  });

  it.each(['password', 'qwerty', 'iloveyou', 'sunshine', 'football', '1234567890', 'p@ssw0rd'])('refuses the list entry %j', (password) => {
    expect(isRefused(password)).toBe(true);
  });

  it.each(['PASSWORD', 'Password', 'pAsSwOrD', 'QWERTY', 'IloveYou'])('refuses the case variant %j', (password) => {
    expect(isRefused(password)).toBe(true);
  });

  it.each(['password123!', 'Password2024!!', 'sunshine_1', 'letmein!!!!', 'football 99', 'iloveyou-2025', 'p@ssw0rd!!'])(
    'refuses %j: a list entry followed by digits and symbols',
    (password) => {
      expect(isRefused(password)).toBe(true);
    },
  );

  it.each(['qwertyqwerty', 'QwertyQwertyQwerty', 'passwordpassword', 'dragondragon123', 'monkeymonkey!'])(
    'refuses %j: a list entry repeated',
    (password) => {
      expect(isRefused(password)).toBe(true);
    },
  );

  it('refuses full-width spellings of list entries (compared after NFKC)', () => {
    expect(isRefused('ｐａｓｓｗｏｒｄ１２３')).toBe(true);
  });

  it('refuses a sample of the whole list, in upper case and with "2024!" appended', () => {
    const entries = [...commonPasswordList()].filter((entry) => /^[a-z]{6,}$/.test(entry));
    const sample = entries.filter((_entry, index) => index % 97 === 0);
    expect(sample.length).toBeGreaterThan(100);
    const missed = sample.filter((entry) => !isRefused(entry.toUpperCase()) || !isRefused(`${entry}2024!`));
    expect(missed).toEqual([]);
  });

  it.each([
    'correct horse battery staple',
    'Tangerine-Ocelot-Harbour-42',
    'my cat eats spaghetti on Tuesdays',
    'Vx7#qL2!mZ9@wR4$',
    'Ünïcödé pässphräse wíth äccents',
  ])('accepts the strong passphrase %j', (password) => {
    expect(validator.validate(password)).toEqual([]);
  });

  it('does not refuse a passphrase just because it contains a common word', () => {
    expect(commonPasswordList().has('dragon')).toBe(true);
    expect(validator.validate('dragon fruit smoothie at noon')).toEqual([]);
    expect(validator.validate('my password is a secret phrase')).toEqual([]);
  });

  it('leaves non-strings to the policy validator (no error, no throw)', () => {
    expect(validator.validate(null as unknown as string)).toEqual([]);
    expect(validator.validate(42 as unknown as string)).toEqual([]);
  });

  // BUG: entries made only of digits ("1234567890", "123456") are wiped out by the strip of trailing
  // digits/symbols, so the list entry followed by symbols is not caught.
  it('refuses a numeric list entry followed by symbols ("1234567890!!")', () => {
    expect(commonPasswordList().has('1234567890')).toBe(true);
    expect(isRefused('1234567890!!')).toBe(true);
  });

  // BUG: unrepeated() keeps only the shortest repeating unit ("1", "123"), which is not in the list, so
  // repeating the entries "111111" or "123123" gives 12-character passwords that pass.
  it('refuses a repeated list entry whose shortest repeating unit is not itself an entry ("111111111111", "123123123123")', () => {
    expect(commonPasswordList().has('111111')).toBe(true);
    expect(commonPasswordList().has('123123')).toBe(true);
    expect(isRefused('111111111111')).toBe(true);
    expect(isRefused('123123123123')).toBe(true);
  });

  // BUG: /[\d\W_]+$/u treats every non-ASCII letter as \W ("symbol"): a long passphrase that starts with
  // a list word and goes on in Cyrillic, Japanese, ... is stripped down to that word and refused.
  it('does not treat non-ASCII letters as symbols (a list word followed by Cyrillic or Japanese words)', () => {
    expect(validator.validate('dragonдраконовыйпароль')).toEqual([]);
    expect(validator.validate('sakuraさくらが咲く季節です')).toEqual([]);
  });

  // BUG: unrepeated() uses /^(.+?)\1+$/u, which is quadratic on input like "aaaa...ab"; the manager runs this
  // validator even on passwords far above maxLength (it only stops early on password_invalid), so one
  // ~100 kB request body (Express's default limit) blocks the event loop for seconds.
  it('stays fast on a very long password ("a" x 50,000 + "b") instead of backtracking quadratically', () => {
    const long = `${'a'.repeat(50_000)}b`;
    const started = performance.now();
    validator.validate(long);
    expect(performance.now() - started).toBeLessThan(100);
  });
});
