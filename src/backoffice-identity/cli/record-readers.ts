import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';

/** One item of an import file: a record, or why its text could not be read. `position` counts from 1. */
export type ImportSourceItem = { position: number; record: unknown } | { position: number; error: string };

export type ImportFileFormat = 'json' | 'jsonl' | 'csv';

/** The largest single record read from a file; a bigger one is reported, not held in memory. */
export const MAX_RECORD_TEXT = 1024 * 1024;

/** Thrown when a file cannot be read at all (not a JSON array, truncated, ...). */
export class ImportFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportFileError';
  }
}

/** The format from the file name: `.json`, `.jsonl`/`.ndjson`, `.csv`. */
export function formatFromFileName(path: string): ImportFileFormat | null {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.csv')) return 'csv';
  return null;
}

/** Reads the records of `path` one at a time, never the whole file at once. */
export function readImportFile(path: string, format: ImportFileFormat): AsyncGenerator<ImportSourceItem> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 256 * 1024 });
  if (format === 'jsonl') return readJsonLines(stream);
  if (format === 'csv') return readCsv(stream);
  return readJsonArray(stream);
}

/**
 * What went wrong in a record, in words of ours: V8's `JSON.parse` message quotes up to ~10 characters of the text
 * around the fault (`Unexpected token '$', ..."wordHash":$2b$10$SEC"...`), which for a record with an unquoted
 * `passwordHash` or `password` is part of the secret, and the reason lands in the report (OWASP ASVS 4.0 7.1.1 /
 * 5.0 16.2.5). Only a fixed reason and the character offset (1-based, when V8 gives one) are kept, never its text.
 */
const JSON_FAULTS: ReadonlyArray<[RegExp, string]> = [
  [/^Unterminated string/, 'unterminated string'],
  [/^Unexpected end of JSON input/, 'the record ends too early'],
  [/^Unexpected non-whitespace character after JSON/, 'text after the end of the record'],
  [/^Bad control character/, 'control character in a string'],
  [/^Bad (escaped character|Unicode escape)/, 'bad escape in a string'],
];

function describeJsonFault(message: string): string {
  const reason = JSON_FAULTS.find(([pattern]) => pattern.test(message))?.[1] ?? 'unexpected character';
  const offset = /\bat position (\d+)/.exec(message)?.[1];
  return offset === undefined ? reason : `${reason} at character ${Number(offset) + 1}`;
}

function parseRecord(position: number, text: string): ImportSourceItem {
  try {
    return { position, record: JSON.parse(text) };
  } catch (error) {
    return { position, error: `not valid JSON (${describeJsonFault(String((error as Error)?.message))})` };
  }
}

/**
 * An incremental reader of one JSON array (`[ {...}, {...} ]`): it tracks strings and nesting across chunks and
 * hands each top-level element to `JSON.parse` on its own, so memory holds one record, not the file.
 */
export async function* readJsonArray(input: AsyncIterable<string | Buffer>): AsyncGenerator<ImportSourceItem> {
  let state = 'start' as 'start' | 'beforeValue' | 'inValue' | 'afterComma' | 'end';
  let depth = 0;
  let inString = false;
  let escaped = false;
  let parts: string[] = [];
  let partsLength = 0;
  let position = 0;
  let oversized = false;
  for await (const raw of input) {
    const chunk = typeof raw === 'string' ? raw : raw.toString('utf8');
    let valueStart = state === 'inValue' ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (state === 'inValue') {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === '\\') escaped = true;
          else if (c === '"') inString = false;
          continue;
        }
        if (c === '"') inString = true;
        else if (c === '{' || c === '[') depth++;
        else if ((c === '}' || c === ']') && depth > 0) depth--;
        else if ((c === ',' || c === ']') && depth === 0) {
          position++;
          yield oversized || partsLength + (i - valueStart) > MAX_RECORD_TEXT
            ? { position, error: `larger than ${MAX_RECORD_TEXT} characters` }
            : parseRecord(position, parts.join('') + chunk.slice(valueStart, i));
          parts = [];
          partsLength = 0;
          oversized = false;
          state = c === ']' ? 'end' : 'afterComma';
        }
        continue;
      }
      if (c === ' ' || c === '\n' || c === '\r' || c === '\t' || c === '\uFEFF') continue;
      if (state === 'start') {
        if (c !== '[') throw new ImportFileError('a .json file must hold one JSON array of users ([{...}, ...]); use .jsonl for one user per line');
        state = 'beforeValue';
      } else if (state === 'beforeValue' && c === ']') {
        state = 'end';
      } else if (state === 'beforeValue' || state === 'afterComma') {
        if (c === ']' || c === ',') throw new ImportFileError(`unexpected "${c}" after record ${position}`);
        state = 'inValue';
        valueStart = i;
        depth = 0;
        i--; // read this character as part of the value
      } else {
        throw new ImportFileError('unexpected text after the end of the JSON array');
      }
    }
    if (state === 'inValue') {
      if (!oversized) {
        const rest = chunk.slice(valueStart);
        partsLength += rest.length;
        if (partsLength > MAX_RECORD_TEXT) {
          oversized = true;
          parts = [];
        } else parts.push(rest);
      }
    }
  }
  if (state !== 'end') throw new ImportFileError(`the JSON array is not closed (truncated file?) after record ${position}`);
}

/**
 * JSON lines: one record per line; blank lines are skipped, a bad line is reported and the rest still read. Lines
 * end at `\n`, `\r\n` or `\r`. A line longer than {@link MAX_RECORD_TEXT} is reported as soon as it is, and the
 * rest of it skipped unread into memory (a file without line breaks, such as a whole array on one line, is never held).
 */
export async function* readJsonLines(input: AsyncIterable<string | Buffer>): AsyncGenerator<ImportSourceItem> {
  let position = 0;
  let parts: string[] = [];
  let length = 0;
  let skipping = false;
  /** Adds text to the current line; answers the error item when the line has just become too long. */
  const keep = (text: string): ImportSourceItem | null => {
    if (skipping) return null;
    length += text.length;
    if (length <= MAX_RECORD_TEXT) {
      parts.push(text);
      return null;
    }
    parts = [];
    skipping = true;
    return { position: ++position, error: `larger than ${MAX_RECORD_TEXT} characters` };
  };
  const endLine = (): ImportSourceItem | null => {
    const text = parts.join('').replace(/^\uFEFF/, '').trim();
    const wasSkipping = skipping;
    parts = [];
    length = 0;
    skipping = false;
    return wasSkipping || text.length === 0 ? null : parseRecord(++position, text);
  };
  for await (const raw of input) {
    const chunk = typeof raw === 'string' ? raw : raw.toString('utf8');
    const lineBreaks = /\r\n?|\n/g;
    let start = 0;
    for (let found = lineBreaks.exec(chunk); found; found = lineBreaks.exec(chunk)) {
      const tooLong = keep(chunk.slice(start, found.index));
      if (tooLong) yield tooLong;
      start = found.index + found[0].length;
      const item = endLine();
      if (item) yield item;
    }
    const tooLong = keep(chunk.slice(start));
    if (tooLong) yield tooLong;
  }
  const last = endLine();
  if (last) yield last;
}

const CSV_BOOLEAN: Record<string, boolean> = { true: true, false: false, '1': true, '0': false, yes: true, no: false };

/**
 * CSV with a header row naming the record fields (`email,name,groups,passwordFormat,passwordHash,...`). `groups`
 * holds aliases separated by `;` or `|`; `isApproved` is true/false (1/0, yes/no); empty cells are left out.
 */
export async function* readCsv(input: Readable): AsyncGenerator<ImportSourceItem> {
  const parser = input.pipe(parseCsv({ columns: true, bom: true, skip_empty_lines: true, trim: true, max_record_size: MAX_RECORD_TEXT }));
  let position = 0;
  try {
    for await (const row of parser as AsyncIterable<Record<string, string>>) {
      position++;
      const record: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(row)) {
        if (value === '') continue;
        if (key === 'groups') record.groups = value.split(/[;|]/).map((g) => g.trim()).filter(Boolean);
        else if (key === 'isApproved') record.isApproved = CSV_BOOLEAN[value.toLowerCase()] ?? value;
        else record[key] = value;
      }
      if (!('groups' in record)) record.groups = [];
      yield { position, record };
    }
  } catch (error) {
    throw new ImportFileError(`CSV after record ${position}: ${describeCsvFault(error as CsvFault)}`);
  }
}

type CsvFault = Error & { code?: string; lines?: number; column?: unknown };

/** csv-parse messages that quote no cell text (checked against csv-parse 5/6/7); they are passed on as they are. */
const CSV_MESSAGES_WITHOUT_DATA = new Set([
  'CSV_MAX_RECORD_SIZE',
  'CSV_QUOTE_NOT_CLOSED',
  'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE',
  'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH',
  'CSV_RECORD_INCONSISTENT_COLUMNS',
]);

/**
 * The CSV failure in words that hold no cell text: csv-parse's "Invalid Opening Quote" message quotes the whole field
 * read so far (`value is "$2b$10$SEC"`), and "Invalid Closing Quote" the character after the quote, which for a
 * `passwordHash` cell is part of the secret and would reach stderr (OWASP ASVS 4.0 7.1.1 / 5.0 16.2.5).
 */
function describeCsvFault(error: CsvFault): string {
  const code = error?.code;
  if (code !== undefined && CSV_MESSAGES_WITHOUT_DATA.has(code)) return error.message.slice(0, 200);
  const where = [
    typeof error?.lines === 'number' ? ` at line ${error.lines}` : '',
    typeof error?.column === 'string' ? ` (column ${JSON.stringify(error.column.slice(0, 60))})` : '',
  ].join('');
  if (code === 'INVALID_OPENING_QUOTE' || code === 'CSV_INVALID_OPENING_QUOTE') return `a quote inside an unquoted field${where}`;
  if (code === 'CSV_INVALID_CLOSING_QUOTE') return `a closing quote not followed by a delimiter or the end of the line${where}`;
  return `${code ?? 'unreadable'}${where}`;
}
