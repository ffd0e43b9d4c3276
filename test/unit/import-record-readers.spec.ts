import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  formatFromFileName,
  ImportFileError,
  MAX_RECORD_TEXT,
  readImportFile,
  readJsonArray,
  readJsonLines,
  type ImportSourceItem,
} from '../../src/backoffice-identity/cli/record-readers.js';

async function collect(items: AsyncIterable<ImportSourceItem>): Promise<ImportSourceItem[]> {
  const out: ImportSourceItem[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Feeds `text` in chunks of `size` characters. */
async function* chunks(text: string, size: number): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}

describe('Import file readers (streamed, one record at a time)', () => {
  const tricky = [
    { email: 'a@example.com', name: 'Bracket ] comma , brace } quote " backslash \\', groups: ['editor'] },
    { email: 'b@example.com', name: 'Nested', groups: [], extra: { deep: [1, [2, { x: ']' }]] } },
    { email: 'c@example.com', name: 'Ünïcødé 🙂 \u2028', groups: [] },
    42,
    null,
    'text',
    [1, 2],
  ];

  it('reads a JSON array split at every possible chunk boundary exactly as JSON.parse does', async () => {
    const text = `\uFEFF \n ${JSON.stringify(tricky, null, 2)} \n`;
    for (const size of [1, 2, 3, 7, 64, text.length]) {
      const items = await collect(readJsonArray(chunks(text, size)));
      expect(items.map((i) => ('record' in i ? i.record : i.error)), `chunk size ${size}`).toEqual(tricky);
      expect(items.map((i) => i.position)).toEqual(tricky.map((_, i) => i + 1));
    }
    expect(await collect(readJsonArray(chunks('[]', 1)))).toEqual([]);
    expect(await collect(readJsonArray(chunks(' [ ] ', 1)))).toEqual([]);
  });

  it('reports a broken element and keeps reading; refuses a file that is not one closed array', async () => {
    const items = await collect(readJsonArray(chunks('[{"email":"a@x.org"}, {"email": }, {"email":"b@x.org"}]', 5)));
    expect(items).toHaveLength(3);
    expect('error' in items[1] && items[1].error).toMatch(/not valid JSON/);
    expect('record' in items[2] && items[2].record).toEqual({ email: 'b@x.org' });
    for (const bad of ['{"email":"a"}', '[{"a":1}', '[{"a":1},', '[{"a":1}] x', '[1,,2]', '[,1]', '', 'null']) {
      await expect(collect(readJsonArray(chunks(bad, 3))), bad).rejects.toBeInstanceOf(ImportFileError);
    }
  });

  it('does not hold an oversized record: it is reported, the next one still read', async () => {
    const huge = JSON.stringify({ email: 'x@x.org', name: 'x'.repeat(MAX_RECORD_TEXT + 10) });
    const items = await collect(readJsonArray(chunks(`[${huge},{"email":"ok@x.org"}]`, 64 * 1024)));
    expect('error' in items[0] && items[0].error).toMatch(/larger than/);
    expect('record' in items[1] && items[1].record).toEqual({ email: 'ok@x.org' });
  });

  it('reads JSON lines (blank lines skipped, a bad line reported) and CSV (groups, booleans, quoted commas)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bo-readers-'));
    try {
      writeFileSync(join(dir, 'u.jsonl'), '{"email":"a@x.org"}\n\n  \n{broken\n{"email":"b@x.org"}\r\n');
      const lines = await collect(readImportFile(join(dir, 'u.jsonl'), 'jsonl'));
      expect(lines.map((i) => ('record' in i ? i.record : 'error'))).toEqual([{ email: 'a@x.org' }, 'error', { email: 'b@x.org' }]);

      writeFileSync(
        join(dir, 'u.csv'),
        '\uFEFFemail,name,groups,isApproved,passwordFormat,passwordHash\n' +
          'a@x.org,"Doe, Jane",editor;writer,false,umbraco-sha1,6tZGfG9NTxJJYp19Fac9og==zzRggqANxhb+CbD/VabEt8cIde8=\n' +
          'b@x.org,Bob,,yes,,\n',
      );
      const rows = await collect(readImportFile(join(dir, 'u.csv'), 'csv'));
      expect(rows.map((i) => 'record' in i && i.record)).toEqual([
        { email: 'a@x.org', name: 'Doe, Jane', groups: ['editor', 'writer'], isApproved: false, passwordFormat: 'umbraco-sha1', passwordHash: '6tZGfG9NTxJJYp19Fac9og==zzRggqANxhb+CbD/VabEt8cIde8=' },
        { email: 'b@x.org', name: 'Bob', groups: [], isApproved: true },
      ]);
      writeFileSync(join(dir, 'bad.csv'), 'email,name\na@x.org,A,extra\n');
      await expect(collect(readImportFile(join(dir, 'bad.csv'), 'csv'))).rejects.toBeInstanceOf(ImportFileError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a 20,000-record array from a stream without collecting it', async () => {
    const count = 20_000;
    const stream = Readable.from((function* () {
      yield '[';
      for (let i = 0; i < count; i++) yield `${i ? ',' : ''}{"email":"u${i}@x.org","name":"U","groups":[]}`;
      yield ']';
    })());
    let n = 0;
    for await (const item of readJsonArray(stream)) if ('record' in item) n++;
    expect(n).toBe(count);
  });

  it('JSON lines: a line without end (e.g. a whole array on one line) is reported once over the limit, not read into memory first', async () => {
    const total = 32 * 1024 * 1024;
    let pulled = 0;
    const stream = Readable.from((function* () {
      const chunk = 'x'.repeat(64 * 1024);
      yield '{"email":"big@x.org","name":"';
      for (; pulled < total; pulled += chunk.length) yield chunk;
      yield '"}\n{"email":"ok@x.org"}\r\n\r\n{"email":"last@x.org"}';
    })());
    const items: ImportSourceItem[] = [];
    let pulledAtFirstItem = -1;
    for await (const item of readJsonLines(stream)) {
      if (pulledAtFirstItem < 0) pulledAtFirstItem = pulled;
      items.push(item);
    }
    expect(pulledAtFirstItem).toBeLessThan(4 * MAX_RECORD_TEXT);
    expect(items.map((i) => ('record' in i ? i.record : i.error))).toEqual([`larger than ${MAX_RECORD_TEXT} characters`, { email: 'ok@x.org' }, { email: 'last@x.org' }]);
    expect(items.map((i) => i.position)).toEqual([1, 2, 3]);
  });

  it('OWASP ASVS 4.0 7.1.1 / 5.0 16.2.5: a malformed record is reported by its position only, never with text of it (no passwordHash fragment)', async () => {
    const secret = '$2b$10$SECRETSECRET';
    /** Every piece of four or more characters of the secrets, none of which may reach the report. */
    const pieces = [secret, 'secret123'].flatMap((s) => [...s].flatMap((_, i) => [...s].map((__, j) => s.slice(i, j + 1)))).filter((p) => p.length >= 4);
    const leaks = (text: string) => pieces.filter((p) => text.includes(p));
    const bad = [`{"email":"a@b.c","passwordHash":${secret}}`, '{"email":"a@b.c","password":secret123}', `{"passwordHash":"${secret}`];
    const fromArray = await collect(readJsonArray(chunks(`[${bad.slice(0, 2).join(',')}]`, 7)));
    const fromLines = await collect(readJsonLines(chunks(bad.join('\n'), 7)));
    const errors = [...fromArray, ...fromLines].map((i) => ('error' in i ? i.error : 'read'));
    expect(errors).toHaveLength(5);
    for (const error of errors) {
      expect(error).toMatch(/^not valid JSON/);
      expect(leaks(error), error).toEqual([]);
    }
    expect(fromLines.map((i) => i.position)).toEqual([1, 2, 3]);
    expect(errors[4]).toBe('not valid JSON (unterminated string at character 37)');

    const dir = mkdtempSync(join(tmpdir(), 'bo-readers-'));
    try {
      writeFileSync(join(dir, 'q.csv'), `email,passwordHash\na@x.org,${secret.slice(0, 10)}"${secret.slice(10)}\n`);
      const failure = await collect(readImportFile(join(dir, 'q.csv'), 'csv')).catch((e: Error) => e);
      expect(failure).toBeInstanceOf(ImportFileError);
      expect(leaks((failure as Error).message), (failure as Error).message).toEqual([]);
      expect((failure as Error).message).toMatch(/line 2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('knows formats by extension', () => {
    expect(['a.json', 'a.JSONL', 'a.ndjson', 'a.csv', 'a.txt'].map(formatFromFileName)).toEqual(['json', 'jsonl', 'jsonl', 'csv', null]);
  });
});
