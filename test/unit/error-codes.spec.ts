import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKOFFICE_ERROR_CODES, BackOfficeHttpError, renderBackOfficeErrorCodeTable } from '../../src/backoffice-identity/index.js';

const SOURCE = join(__dirname, '../../src/backoffice-identity');
const registry = BACKOFFICE_ERROR_CODES as Record<string, { status: number; alsoStatuses?: readonly number[] }>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

/** Every `(status, code)` the source throws with a literal code. */
function thrownCodes(): Array<{ file: string; status: number | null; code: string }> {
  const found: Array<{ file: string; status: number | null; code: string }> = [];
  for (const file of sourceFiles(SOURCE)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/new BackOfficeHttpError\(\s*(\d{3}),\s*'([a-z_]+)'/g)) found.push({ file, status: Number(m[1]), code: m[2] });
    for (const m of text.matchAll(/oauthError\(\s*(\d{3}),\s*'([a-z_]+)',\s*(?:'[^']*'|`[^`]*`)(?:,\s*'([a-z_]+)')?/g)) found.push({ file, status: Number(m[1]), code: m[3] ?? m[2] });
    for (const m of text.matchAll(/BackOfficeHttpError\.of\(\s*'([a-z_]+)'/g)) found.push({ file, status: null, code: m[1] });
  }
  return found;
}

describe('error-code registry', () => {
  it('lists every code thrown anywhere in the source, with the status it is thrown with', () => {
    const thrown = thrownCodes();
    expect(thrown.length).toBeGreaterThan(50);
    for (const { file, status, code } of thrown) {
      const info = registry[code];
      expect(info, `${code} (${file})`).toBeDefined();
      if (status !== null) expect([info.status, ...(info.alsoStatuses ?? [])], `${code} ${status} (${file})`).toContain(status);
    }
  });

  it('builds invalid_credentials one way only, with one message', () => {
    const builders = thrownCodes().filter((t) => t.code === 'invalid_credentials');
    // BackOfficeHttpError.invalidCredentials() is the only builder; every route throws through it
    expect(builders.map((t) => t.file.slice(SOURCE.length + 1))).toEqual(['http/backoffice-http-error.ts']);
    expect(BackOfficeHttpError.invalidCredentials().getResponse()).toEqual({ statusCode: 401, code: 'invalid_credentials', message: 'The username or password is incorrect.' });
  });

  it('gives each registry error its status and default message, and refuses an unregistered status', () => {
    const error = BackOfficeHttpError.of('invalid_code', undefined, {}, {}, 400);
    expect(error.getStatus()).toBe(400);
    expect(BackOfficeHttpError.of('locked_out').getStatus()).toBe(423);
    expect(() => BackOfficeHttpError.of('locked_out', undefined, {}, {}, 401)).toThrow(/not registered with status 401/);
  });

  it('is the README table, row for row', () => {
    const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
    const table = renderBackOfficeErrorCodeTable();
    expect(table.split('\n').length).toBe(Object.keys(registry).length + 2);
    expect(readme, 'README.md error-code table is out of date: paste renderBackOfficeErrorCodeTable() between the markers').toContain(
      `<!-- error-codes:start -->\n${table}\n<!-- error-codes:end -->`,
    );
  });
});
