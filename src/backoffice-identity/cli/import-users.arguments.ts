import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MAX_IMPORT_BATCH } from '../users/import/user-import.js';
import { DEFAULT_BATCH_SIZE, type ImportUsersCommandOptions } from './import-users.command.js';
import { formatFromFileName, type ImportFileFormat } from './record-readers.js';

/** The `--help` text of `backoffice-identity import-users`. */
export const IMPORT_USERS_USAGE = `Usage: backoffice-identity import-users <file> --database-url <postgres://...> [options]

Imports back-office users (with their password hashes) from a JSON array (.json), JSON lines (.jsonl) or CSV
(.csv) file, streamed in batches of at most ${MAX_IMPORT_BATCH} records, each batch one transaction. The module's
migrations run first. Hashes verify at sign-in and are re-hashed to bcrypt on the first success.

Options:
  --database-url <url>     PostgreSQL URL (default: $DATABASE_URL)
  --format json|jsonl|csv  default: from the file extension; needed for a pipe or /dev/stdin
  --report <path>          per-record report, JSON lines (default: <file>.report.jsonl; for a pipe,
                           /dev/stdin or <(gunzip -c ...): ./import-report-<timestamp>.jsonl); an existing
                           report is replaced by a new file (mode 0600; in a directory you cannot write, a
                           report file of yours (one name, no other hard link) is rewritten in place);
                           a symbolic link or a directory there is refused (a pipe of yours or a device
                           is written to: /dev/null, /dev/stdout, also redirected to a file,
                           >(gzip > report.jsonl.gz))
  --on-conflict <mode>     skip (default) | update | fail, when the email is taken
  --group-map <a=b,...>    map other aliases to this module's (a= drops group a)
  --batch-size <n>         records per transaction, 1..${MAX_IMPORT_BATCH} (default ${DEFAULT_BATCH_SIZE})
  --dry-run                check and report, write nothing
  --separate-usernames     the host uses usernameIsEmail: false (usernames are not the email)
  -h, --help

Exit status: 0 every record imported or skipped, 2 some records invalid (see the report), 1 the import failed
(the message says which records were written: the batches before the failure are committed, the rest are not).`;

/** A command line the CLI refuses: printed with {@link IMPORT_USERS_USAGE}, exit status 1. */
export class ImportUsageError extends Error {}

/** The parsed command line: `help`, or the import to run (progress still to be given). */
export type ImportUsersArguments = { help: true } | { help: false; options: Omit<ImportUsersCommandOptions, 'progress'> };

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** `import-report-<timestamp>.jsonl` in `cwd` (e.g. `import-report-2026-12-06T04-20-00.123Z.jsonl`). */
function defaultReportInDirectory({ cwd = process.cwd(), now = new Date() }: ImportUsersArgumentsContext): string {
  return join(cwd, `import-report-${now.toISOString().replace(/:/g, '-')}.jsonl`);
}

function parseGroupMap(value: string | undefined): Record<string, string | null> {
  const map: Record<string, string | null> = {};
  for (const pair of (value ?? '').split(',').filter(Boolean)) {
    const [from, to] = pair.split('=');
    if (!from || to === undefined) throw new ImportUsageError(`--group-map: "${pair}" is not alias=alias`);
    map[from.trim()] = to.trim() || null;
  }
  return map;
}

/** Where a default report goes: `cwd` (the current directory) and `now` (its timestamp) for an input that is not a regular file. */
export interface ImportUsersArgumentsContext {
  cwd?: string;
  now?: Date;
}

/**
 * Parses `backoffice-identity import-users` arguments (`argv` without node and the script). Throws
 * {@link ImportUsageError} (or Node's `ERR_PARSE_ARGS_*`) for a command line it refuses. An input that is not a
 * regular file (a named pipe, `/dev/stdin`, `<(gunzip -c ...)` as `/dev/fd/63`) needs `--format` (its name says
 * nothing), and its default report is `import-report-<timestamp>.jsonl` in the current directory (`<file>.report.jsonl`
 * could not be created beside it).
 */
export function parseImportUsersArguments(argv: string[], env: NodeJS.ProcessEnv = process.env, context: ImportUsersArgumentsContext = {}): ImportUsersArguments {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'database-url': { type: 'string' },
      format: { type: 'string' },
      report: { type: 'string' },
      'on-conflict': { type: 'string', default: 'skip' },
      'group-map': { type: 'string' },
      'batch-size': { type: 'string', default: String(DEFAULT_BATCH_SIZE) },
      'dry-run': { type: 'boolean', default: false },
      'separate-usernames': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return { help: true };
  const [command, file, ...extra] = positionals;
  if (command !== 'import-users') throw new ImportUsageError(command ? `unknown command "${command}"` : 'no command given');
  if (!file || extra.length > 0) throw new ImportUsageError('import-users takes exactly one file');
  if (!existsSync(file)) throw new ImportUsageError(`no such file: ${file}`);
  const regularFile = isRegularFile(file);
  const format = (values.format ?? formatFromFileName(file)) as ImportFileFormat | null;
  if (!format && !regularFile) {
    throw new ImportUsageError(`--format (json, jsonl or csv) is needed when the input is not a regular file (a pipe, /dev/stdin, <(gunzip -c ...)): ${file}`);
  }
  if (!format || !['json', 'jsonl', 'csv'].includes(format)) throw new ImportUsageError('--format must be json, jsonl or csv (or use one of those file extensions)');
  const databaseUrl = values['database-url'] ?? env.DATABASE_URL;
  if (!databaseUrl || !/^postgres(ql)?:\/\//.test(databaseUrl)) throw new ImportUsageError('--database-url must be a postgres:// URL');
  const onConflict = values['on-conflict'];
  if (!['skip', 'update', 'fail'].includes(onConflict)) throw new ImportUsageError('--on-conflict must be skip, update or fail');
  const batchSize = Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_IMPORT_BATCH) throw new ImportUsageError(`--batch-size must be 1..${MAX_IMPORT_BATCH}`);
  const reportPath = values.report ?? (regularFile ? `${file}.report.jsonl` : defaultReportInDirectory(context));
  return {
    help: false,
    options: {
      file,
      format,
      databaseUrl,
      reportPath,
      batchSize,
      onConflict: onConflict as 'skip' | 'update' | 'fail',
      dryRun: values['dry-run'],
      groupMap: parseGroupMap(values['group-map']),
      usernameIsEmail: !values['separate-usernames'],
    },
  };
}
