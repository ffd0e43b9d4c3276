#!/usr/bin/env node
import 'reflect-metadata';
import { IMPORT_USERS_USAGE, ImportUsageError, parseImportUsersArguments } from './import-users.arguments.js';
import { runImportUsers } from './import-users.command.js';
import { ImportFileError } from './record-readers.js';

async function main(argv: string[]): Promise<number> {
  const parsed = parseImportUsersArguments(argv);
  if (parsed.help) {
    process.stdout.write(`${IMPORT_USERS_USAGE}\n`);
    return 0;
  }
  const { options } = parsed;
  const { summary, seconds } = await runImportUsers({ ...options, progress: process.stderr });
  const rate = Math.round(summary.total / Math.max(seconds, 0.001));
  process.stdout.write(
    `import-users${options.dryRun ? ' (dry run, nothing written)' : ''}: ${summary.total} records in ${seconds.toFixed(1)} s (${rate}/s): ` +
      `created ${summary.created}, updated ${summary.updated}, skipped ${summary.skipped}, invalid ${summary.invalid}; ` +
      `peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB. Report: ${options.reportPath}\n`,
  );
  return summary.invalid > 0 ? 2 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const usage = error instanceof ImportUsageError || (error as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS');
    const known = usage || error instanceof ImportFileError;
    process.stderr.write(`backoffice-identity: ${known ? (error as Error).message : `import failed: ${(error as Error)?.message ?? String(error)}`}\n`);
    if (usage) process.stderr.write(`\n${IMPORT_USERS_USAGE}\n`);
    process.exit(1);
  },
);
