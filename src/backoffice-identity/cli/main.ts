#!/usr/bin/env node
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MAX_IMPORT_BATCH } from '../users/import/user-import.js';
import { DEFAULT_BATCH_SIZE, runImportUsers } from './import-users.command.js';
import { formatFromFileName, type ImportFileFormat, ImportFileError } from './record-readers.js';

const USAGE = `Usage: backoffice-identity import-users <file> --database-url <postgres://...> [options]

Imports back-office users (with their password hashes) from a JSON array (.json), JSON lines (.jsonl) or CSV
(.csv) file, streamed in batches of at most ${MAX_IMPORT_BATCH} records, each batch one transaction. The module's
migrations run first. Hashes verify at sign-in and are re-hashed to bcrypt on the first success.

Options:
  --database-url <url>     PostgreSQL URL (default: $DATABASE_URL)
  --format json|jsonl|csv  default: from the file extension
  --report <path>          per-record report, JSON lines (default: <file>.report.jsonl)
  --on-conflict <mode>     skip (default) | update | fail, when the email is taken
  --group-map <a=b,...>    map other aliases to this module's (a= drops group a)
  --batch-size <n>         records per transaction, 1..${MAX_IMPORT_BATCH} (default ${DEFAULT_BATCH_SIZE})
  --dry-run                check and report, write nothing
  --separate-usernames     the host uses usernameIsEmail: false (usernames are not the email)
  -h, --help

Exit status: 0 every record imported or skipped, 2 some records invalid (see the report), 1 the import failed
(the message says which records were written: the batches before the failure are committed, the rest are not).`;

class UsageError extends Error {}

function parseGroupMap(value: string | undefined): Record<string, string | null> {
  const map: Record<string, string | null> = {};
  for (const pair of (value ?? '').split(',').filter(Boolean)) {
    const [from, to] = pair.split('=');
    if (!from || to === undefined) throw new UsageError(`--group-map: "${pair}" is not alias=alias`);
    map[from.trim()] = to.trim() || null;
  }
  return map;
}

async function main(argv: string[]): Promise<number> {
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
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, file, ...extra] = positionals;
  if (command !== 'import-users') throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
  if (!file || extra.length > 0) throw new UsageError('import-users takes exactly one file');
  if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
  const format = (values.format ?? formatFromFileName(file)) as ImportFileFormat | null;
  if (!format || !['json', 'jsonl', 'csv'].includes(format)) throw new UsageError('--format must be json, jsonl or csv (or use one of those file extensions)');
  const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
  if (!databaseUrl || !/^postgres(ql)?:\/\//.test(databaseUrl)) throw new UsageError('--database-url must be a postgres:// URL');
  const onConflict = values['on-conflict'];
  if (!['skip', 'update', 'fail'].includes(onConflict)) throw new UsageError('--on-conflict must be skip, update or fail');
  const batchSize = Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_IMPORT_BATCH) throw new UsageError(`--batch-size must be 1..${MAX_IMPORT_BATCH}`);
  const reportPath = values.report ?? `${file}.report.jsonl`;

  const { summary, seconds } = await runImportUsers({
    file,
    format,
    databaseUrl,
    reportPath,
    batchSize,
    onConflict: onConflict as 'skip' | 'update' | 'fail',
    dryRun: values['dry-run'],
    groupMap: parseGroupMap(values['group-map']),
    usernameIsEmail: !values['separate-usernames'],
    progress: process.stderr,
  });
  const rate = Math.round(summary.total / Math.max(seconds, 0.001));
  process.stdout.write(
    `import-users${values['dry-run'] ? ' (dry run, nothing written)' : ''}: ${summary.total} records in ${seconds.toFixed(1)} s (${rate}/s): ` +
      `created ${summary.created}, updated ${summary.updated}, skipped ${summary.skipped}, invalid ${summary.invalid}; ` +
      `peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB. Report: ${reportPath}\n`,
  );
  return summary.invalid > 0 ? 2 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const usage = error instanceof UsageError || (error as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS');
    const known = usage || error instanceof ImportFileError;
    process.stderr.write(`backoffice-identity: ${known ? (error as Error).message : `import failed: ${(error as Error)?.message ?? String(error)}`}\n`);
    if (usage) process.stderr.write(`\n${USAGE}\n`);
    process.exit(1);
  },
);
