import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, constants, openSync, readSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { parseImportUsersArguments } from '../../src/backoffice-identity/cli/import-users.arguments.js';
import { runImportUsers, type ImportUsersCommandOptions } from '../../src/backoffice-identity/cli/import-users.command.js';
import { BCRYPT_SHA256_PREFIX, BackOfficeEvents } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TOO_SHORT_VECTOR, VALID_VECTORS } from '../support/hash-vectors.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp } from '../support/identity-app.js';

describe('CLI import-users (streamed file, batches, report, then sign-in over HTTP)', () => {
  let db: TestDatabase;
  let dir: string;
  let progressText = '';
  const run = (file: string, extra: Partial<ImportUsersCommandOptions> = {}) => {
    const progress = new PassThrough();
    progress.on('data', (d) => (progressText += d));
    return runImportUsers({
      file,
      format: file.endsWith('.csv') ? 'csv' : file.endsWith('.jsonl') ? 'jsonl' : 'json',
      databaseUrl: db.url,
      reportPath: `${file}.report.jsonl`,
      batchSize: 2,
      onConflict: 'skip',
      dryRun: false,
      groupMap: {},
      usernameIsEmail: true,
      progress,
      ...extra,
    });
  };
  const report = (file: string) => readFileSync(`${file}.report.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  /** Whether a user with this (normalized) email is in the database. */
  const userExists = async (normalizedEmail: string): Promise<boolean> => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query(`SELECT 1 FROM backoffice_user WHERE normalized_email = $1`, [normalizedEmail])).rows.length > 0;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'bo-cli-'));
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports every vector user from a JSON array in batches; each signs in with its old password afterwards', async () => {
    const file = join(dir, 'users.json');
    const users = [
      ...VALID_VECTORS.map((v, i) => ({ email: `cli-vector${i}@example.com`, name: v.name, groups: ['Administrators'], passwordFormat: v.format, passwordHash: v.hash })),
      { email: 'cli-short@example.com', name: 'Short', groups: [], passwordFormat: 'aspnet-identity', passwordHash: TOO_SHORT_VECTOR },
      { email: 'not an email', name: 'Bad', groups: [] },
    ];
    writeFileSync(file, JSON.stringify(users, null, 2).replace('[', '[ ').replace(/\n/g, '\r\n'));
    const { summary } = await run(file, { groupMap: { Administrators: 'editor' } });
    expect(summary).toEqual({ total: 7, created: 5, updated: 0, skipped: 0, invalid: 2 });
    const lines = report(file);
    expect(lines.map((l) => [l.record, l.outcome])).toEqual([[1, 'created'], [2, 'created'], [3, 'created'], [4, 'created'], [5, 'created'], [6, 'invalid'], [7, 'invalid']]);
    expect(lines[5].errors[0].code).toBe('invalid_password_hash');
    const reportText = readFileSync(`${file}.report.jsonl`, 'utf8');
    for (const v of VALID_VECTORS) expect(reportText + progressText).not.toContain(v.hash.slice(4, 30));
    expect(progressText).toMatch(/7 records, [\d,]+\/s \(created 5, updated 0, skipped 0, invalid 2\)/);

    const ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    try {
      for (const [i, v] of VALID_VECTORS.entries()) {
        const response = await new HttpClient(ctx.url).login(`cli-vector${i}@example.com`, v.password);
        expect(response.status, `${v.name}: ${response.text}`).toBe(200);
        expect(response.body.user.groups).toEqual(['editor']);
        expect((await ctx.userManager.findByEmail(`cli-vector${i}@example.com`))!.passwordHash!.startsWith(BCRYPT_SHA256_PREFIX)).toBe(true);
      }
    } finally {
      await ctx.close();
    }
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const audit = await client.query(`SELECT details FROM backoffice_audit_entry WHERE event = $1`, [BackOfficeEvents.UsersImported]);
      expect(audit.rows.map((r) => r.details)).toEqual([{ total: 7, created: 5, updated: 0, skipped: 0, invalid: 2, dryRun: false, onConflict: 'skip', source: 'cli' }]);
    } finally {
      await client.end();
    }
  });

  it('JSON lines and CSV; a second run skips (or with --on-conflict update, updates); --dry-run writes nothing', async () => {
    const jsonl = join(dir, 'users.jsonl');
    writeFileSync(jsonl, '{"email":"cli-l1@example.com","name":"L1","groups":["writer"]}\n\nnot json\n{"email":"cli-l2@example.com","name":"L2","groups":[]}\n');
    expect((await run(jsonl)).summary).toEqual({ total: 3, created: 2, updated: 0, skipped: 0, invalid: 1 });
    expect(report(jsonl)[1]).toMatchObject({ record: 2, outcome: 'invalid', errors: [{ code: 'malformed_record' }] });
    expect((await run(jsonl)).summary).toMatchObject({ created: 0, skipped: 2, invalid: 1 });

    const csv = join(dir, 'users.csv');
    writeFileSync(csv, `email,name,groups,passwordFormat,passwordHash\ncli-l1@example.com,"Renamed, L1",editor;writer,${VALID_VECTORS[3].format},${VALID_VECTORS[3].hash}\ncli-c1@example.com,C1,,,\n`);
    expect((await run(csv, { dryRun: true, onConflict: 'update' })).summary).toEqual({ total: 2, created: 1, updated: 1, skipped: 0, invalid: 0 });
    expect((await run(csv, { onConflict: 'update' })).summary).toEqual({ total: 2, created: 1, updated: 1, skipped: 0, invalid: 0 });
    const ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    try {
      const updated = (await ctx.userManager.findByEmail('cli-l1@example.com'))!;
      expect(updated.name).toBe('Renamed, L1');
      expect(updated.groups.sort()).toEqual(['editor', 'writer']);
      expect((await new HttpClient(ctx.url).login('cli-l1@example.com', VALID_VECTORS[3].password)).status).toBe(200);
    } finally {
      await ctx.close();
    }
  });

  it('a report path that cannot be written fails with a clear error before anything is imported', async () => {
    const file = join(dir, 'report-unwritable.json');
    writeFileSync(file, JSON.stringify([{ email: 'report-unwritable@example.com', name: 'R', groups: [] }]));
    await expect(run(file, { reportPath: join(dir, 'no-such-folder', 'report.jsonl') })).rejects.toThrow(/report.*no-such-folder|no-such-folder.*report/i);
    expect(await userExists('report-unwritable@example.com'), 'nothing imported').toBe(false);
  });

  // OWASP ASVS 4.0 1.14.x (file permissions): the README's "fix the file and run it again" writes the same default
  // report (<file>.report.jsonl) again, so an existing report is replaced, but by a new file (0600, the old one's mode
  // is not kept), never written through a symbolic link or into something that is not a regular file.
  it('an existing report is replaced by a new file readable by its owner only (0600), whatever the old one\'s mode', async () => {
    const file = join(dir, 'report-existing.json');
    writeFileSync(file, JSON.stringify([{ email: 'report-existing@example.com', name: 'R', groups: [] }]));
    const reportPath = `${file}.report.jsonl`;
    writeFileSync(reportPath, 'an old report, longer than the new one will be\n'.repeat(50));
    chmodSync(reportPath, 0o644);
    await run(file);
    expect((statSync(reportPath).mode & 0o777).toString(8), 'the mode of the report').toBe('600');
    expect(report(file).map((line) => [line.record, line.outcome])).toEqual([[1, 'created']]);
    expect(readdirSync(dir).filter((name) => name.includes('report-existing.json') && name.endsWith('.tmp')), 'no temporary file left').toEqual([]);
  });

  it('a report name near the 255-byte limit still works (the temporary file beside it takes a short name)', async () => {
    const file = join(dir, 'report-long-name.json');
    writeFileSync(file, JSON.stringify([{ email: 'report-long-name@example.com', name: 'R', groups: [] }]));
    const reportPath = join(dir, `${'r'.repeat(249)}.jsonl`);
    expect((await run(file, { reportPath })).summary).toMatchObject({ total: 1, created: 1 });
    expect(readFileSync(reportPath, 'utf8').trim().split('\n').map((line) => JSON.parse(line).outcome)).toEqual(['created']);
    expect((statSync(reportPath).mode & 0o777).toString(8), 'the mode of the report').toBe('600');
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp')), 'no temporary file left').toEqual([]);
  });

  it('a symbolic link or a directory at the report path is refused before anything is imported; its target is untouched', async () => {
    const file = join(dir, 'report-symlink.json');
    writeFileSync(file, JSON.stringify([{ email: 'report-symlink@example.com', name: 'R', groups: [] }]));
    const target = join(dir, 'not-the-report.txt');
    writeFileSync(target, 'keep me');
    chmodSync(target, 0o644);
    const reportPath = `${file}.report.jsonl`;
    symlinkSync(target, reportPath);
    const refusal = run(file);
    await expect(refusal).rejects.toThrow(`cannot write the report ${reportPath}: it already exists and is not a regular file (a symbolic link); choose another path or remove it`);
    expect(readFileSync(target, 'utf8'), 'the link target').toBe('keep me');
    expect((statSync(target).mode & 0o777).toString(8)).toBe('644');
    expect(lstatSync(reportPath).isSymbolicLink() && readlinkSync(reportPath)).toBe(target);
    const folder = join(dir, 'report-folder.jsonl');
    mkdirSync(folder);
    await expect(run(file, { reportPath: folder })).rejects.toThrow(`cannot write the report ${folder}: it already exists and is not a regular file (a directory); choose another path or remove it`);
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp')), 'no temporary file left').toEqual([]);
    expect(await userExists('report-symlink@example.com'), 'nothing imported').toBe(false);
    // A device is written to as before (--report /dev/null: no report kept).
    expect((await run(file, { reportPath: '/dev/null' })).summary).toMatchObject({ total: 1, created: 1 });
  });

  // --report /dev/stdout, /dev/fd/N and >(gzip > r.gz) are symbolic links on Linux (to a pipe or a terminal): they are
  // written through, as before 2b73735; a link to anything else (a regular file) stays refused.
  it('a symbolic link to a pipe (--report /dev/fd/N, >(gzip > r.gz), or a link to a named pipe) is written to; a link to a regular file is still refused', async () => {
    const file = join(dir, 'report-to-pipe.json');
    writeFileSync(file, JSON.stringify([1, 2].map((i) => ({ email: `report-pipe${i}@example.com`, name: 'P', groups: [] }))));
    // /dev/fd/N of a pipe this process holds open for reading (as a shell's >(...) hands the CLI /dev/fd/63): a named
    // pipe opened O_NONBLOCK (child_process 'pipe' stdio are sockets, which /dev/fd/N cannot reopen).
    const fdFifo = join(dir, 'report-fd-fifo');
    execFileSync('mkfifo', [fdFifo]);
    const fd = openSync(fdFifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      expect(lstatSync(`/dev/fd/${fd}`).isSymbolicLink(), '/dev/fd/N is a symbolic link').toBe(true);
      const { summary } = await run(file, { reportPath: `/dev/fd/${fd}` });
      expect(summary).toMatchObject({ total: 2, created: 2 });
      const buffer = Buffer.alloc(65536);
      const piped = buffer.subarray(0, readSync(fd, buffer)).toString('utf8');
      expect(piped.trim().split('\n').map((line) => JSON.parse(line).outcome), 'the report lines through /dev/fd/N').toEqual(['created', 'created']);
    } finally {
      closeSync(fd);
    }
    // A link put to a named pipe (made with mkfifo), read by a `cat` child.
    const fifo = join(dir, 'report-fifo');
    execFileSync('mkfifo', [fifo]);
    const link = join(dir, 'report-fifo-link.jsonl');
    symlinkSync(fifo, link);
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    let read = '';
    reader.stdout.on('data', (d) => (read += d));
    const readerDone = new Promise((resolve) => reader.on('close', resolve));
    expect((await run(file, { reportPath: link })).summary).toMatchObject({ total: 2, skipped: 2 });
    await readerDone;
    expect(read.trim().split('\n').map((line) => JSON.parse(line).outcome), 'the report lines through the link to the named pipe').toEqual(['skipped', 'skipped']);
    // A link to a regular file: refused, the file untouched.
    const target = join(dir, 'report-pipe-not-the-report.txt');
    writeFileSync(target, 'keep me');
    const fileLink = join(dir, 'report-file-link.jsonl');
    symlinkSync(target, fileLink);
    await expect(run(file, { reportPath: fileLink })).rejects.toThrow(`cannot write the report ${fileLink}: it already exists and is not a regular file (a symbolic link); choose another path or remove it`);
    expect(readFileSync(target, 'utf8')).toBe('keep me');
  });

  it('a database it cannot reach: the run rejects with one line for the CLI to print, no stack trace, no password and nothing else on stderr (no "Retrying (1)..." with retries off) (ASVS 7.4.1)', async () => {
    const file = join(dir, 'unreachable.json');
    writeFileSync(file, JSON.stringify([{ email: 'unreachable@example.com', name: 'U', groups: [] }]));
    let printed = '';
    const write = process.stderr.write.bind(process.stderr);
    const capture = (chunk: string | Uint8Array) => ((printed += String(chunk)), true);
    process.stderr.write = capture as typeof process.stderr.write;
    const stdout = process.stdout.write.bind(process.stdout);
    process.stdout.write = capture as typeof process.stdout.write;
    let failure: unknown;
    try {
      await run(file, { databaseUrl: 'postgres://importer:Pa55-word-in-url@127.0.0.1:1/nowhere' }).catch((error: unknown) => (failure = error));
    } finally {
      process.stderr.write = write;
      process.stdout.write = stdout;
    }
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/ECONNREFUSED/);
    expect(`${printed}${(failure as Error).message}`).not.toContain('Pa55-word-in-url');
    expect(printed).not.toMatch(/^\s+at /m);
    // The CLI prints the rejection as its one `import failed: ...` line; the run itself prints nothing on the way.
    expect(printed).not.toMatch(/Retrying/);
    expect(printed).toBe('');
  });

  it('a file that breaks off mid-way (unterminated CSV quote): the error says which records were written (earlier batches, committed) and that the rest were not', async () => {
    const file = join(dir, 'breaks-off.csv');
    const good = [1, 2, 3].map((i) => `cli-break${i}@example.com,B${i}`).join('\n');
    writeFileSync(file, `email,name\n${good}\n"cli-break4@example.com,B4\ncli-break5@example.com,B5\n`);
    const failure = await run(file).catch((error: unknown) => error as Error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/Quote Not Closed/);
    expect((failure as Error).message).toMatch(/records 1 to 2 were imported .*created 2.*; record 3 and the records after it were not/);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT email FROM backoffice_user WHERE email LIKE 'cli-break%' ORDER BY email`);
      expect(rows.map((r) => r.email)).toEqual(['cli-break1@example.com', 'cli-break2@example.com']);
    } finally {
      await client.end();
    }
    expect(report(file).map((line) => [line.record, line.outcome])).toEqual([[1, 'created'], [2, 'created']]);
  });

  it('OWASP ASVS 5.0 16.3.3 / 4.0 7.1.3: an import that stops part-way still leaves its audit entry with the counts of the committed batches (users written, none audited before)', async () => {
    const file = join(dir, 'breaks-off-audit.csv');
    const good = [1, 2, 3].map((i) => `cli-audit${i}@example.com,A${i}`).join('\n');
    writeFileSync(file, `email,name\n${good}\n"cli-audit4@example.com,A4\n`);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const started = new Date();
      const failure = await run(file).catch((error: unknown) => error as Error);
      expect((failure as Error).message).toMatch(/records 1 to 2 were imported/);
      const written = await client.query(`SELECT email FROM backoffice_user WHERE email LIKE 'cli-audit%' ORDER BY email`);
      expect(written.rows.map((r) => r.email)).toEqual(['cli-audit1@example.com', 'cli-audit2@example.com']);
      const audit = await client.query(`SELECT details FROM backoffice_audit_entry WHERE event = $1 AND created_at >= $2`, [BackOfficeEvents.UsersImported, started]);
      expect(audit.rows.map((r) => r.details)).toEqual([
        { total: 2, created: 2, updated: 0, skipped: 0, invalid: 0, dryRun: false, onConflict: 'skip', source: 'cli', interrupted: true },
      ]);
    } finally {
      await client.end();
    }
  });

  it('OWASP ASVS 4.0 5.1.4: a record whose passwordFormat is an Object.prototype key (constructor, __proto__) is reported invalid; it does not stop the import', async () => {
    const file = join(dir, 'proto-format.jsonl');
    const line = (i: number, extra: object = {}) => JSON.stringify({ email: `cli-proto${i}@example.com`, name: `P${i}`, groups: [], ...extra });
    const hash = VALID_VECTORS[0].hash;
    writeFileSync(file, [line(1), line(2, { passwordFormat: 'constructor', passwordHash: hash }), line(3, { passwordFormat: '__proto__', passwordHash: hash }), line(4)].join('\n'));
    const { summary } = await run(file);
    expect(summary).toEqual({ total: 4, created: 2, updated: 0, skipped: 0, invalid: 2 });
    expect(report(file).map((l) => [l.record, l.outcome, l.errors?.map((e: { code: string }) => e.code)])).toEqual([
      [1, 'created', undefined],
      [2, 'invalid', ['unknown_password_format']],
      [3, 'invalid', ['unknown_password_format']],
      [4, 'created', undefined],
    ]);
  });

  it('a path that is a directory is refused before the database or the report is touched', async () => {
    const folder = join(dir, 'a-folder.json');
    mkdirSync(folder);
    await expect(run(folder, { databaseUrl: 'postgres://importer@127.0.0.1:1/never-contacted' })).rejects.toThrow(/a-folder\.json is not a file/);
    expect(existsSync(`${folder}.report.jsonl`)).toBe(false);
  });

  it('reads a named pipe fed by a writer (as with <(gunzip -c users.csv.gz) or /dev/stdin): only directories are refused, not pipes', async () => {
    const fifo = join(dir, 'piped-users.jsonl');
    execFileSync('mkfifo', [fifo]);
    const lines = [1, 2, 3].map((i) => JSON.stringify({ email: `cli-fifo${i}@example.com`, name: `F${i}`, groups: [] })).join('\n');
    // Opening a FIFO for writing waits for its reader: the writer finishes once the CLI has read everything.
    const writer = writeFile(fifo, `${lines}\n`);
    const [{ summary }] = await Promise.all([run(fifo, { reportPath: join(dir, 'piped-users.report.jsonl') }), writer]);
    expect(summary).toEqual({ total: 3, created: 3, updated: 0, skipped: 0, invalid: 0 });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT email FROM backoffice_user WHERE email LIKE 'cli-fifo%' ORDER BY email`);
      expect(rows.map((r) => r.email)).toEqual(['cli-fifo1@example.com', 'cli-fifo2@example.com', 'cli-fifo3@example.com']);
    } finally {
      await client.end();
    }
  });

  it('a pipe without --report (as <(gunzip -c users.jsonl.gz), i.e. /dev/fd/63): a missing --format is a usage error that says pipes need it; the default report goes to the current directory (import-report-<timestamp>.jsonl), not <pipe>.report.jsonl', async () => {
    const fifo = join(dir, 'fd-63');
    execFileSync('mkfifo', [fifo]);
    expect(() => parseImportUsersArguments(['import-users', fifo, '--database-url', db.url])).toThrow(
      /--format \(json, jsonl or csv\) is needed when the input is not a regular file \(a pipe/,
    );
    const cwd = join(dir, 'working-directory');
    mkdirSync(cwd);
    const now = new Date('2026-12-06T04:20:00.123Z');
    const parsed = parseImportUsersArguments(['import-users', fifo, '--format', 'jsonl', '--database-url', db.url, '--batch-size', '2'], {}, { cwd, now });
    expect(parsed).toMatchObject({ help: false, options: { file: fifo, format: 'jsonl', reportPath: join(cwd, 'import-report-2026-12-06T04-20-00.123Z.jsonl') } });
    if (parsed.help) return;
    // A regular file keeps its report beside it.
    const regular = join(dir, 'beside.jsonl');
    writeFileSync(regular, '');
    expect(parseImportUsersArguments(['import-users', regular, '--database-url', db.url], {}, { cwd, now })).toMatchObject({ options: { reportPath: `${regular}.report.jsonl` } });
    const lines = [1, 2, 3].map((i) => JSON.stringify({ email: `cli-fd${i}@example.com`, name: `D${i}`, groups: [] })).join('\n');
    const writer = writeFile(fifo, `${lines}\n`);
    const [{ summary }] = await Promise.all([runImportUsers({ ...parsed.options, progress: new PassThrough() }), writer]);
    expect(summary).toMatchObject({ total: 3, created: 3 });
    expect(readFileSync(parsed.options.reportPath, 'utf8').trim().split('\n')).toHaveLength(3);
    expect(existsSync(`${fifo}.report.jsonl`)).toBe(false);
  });

  it('reads a character device (/dev/null: an empty JSON lines file)', async () => {
    const { summary } = await run('/dev/null', { format: 'jsonl', reportPath: join(dir, 'dev-null.report.jsonl') });
    expect(summary).toEqual({ total: 0, created: 0, updated: 0, skipped: 0, invalid: 0 });
  });

  it('a file that is not a JSON array fails with a clear error', async () => {
    const file = join(dir, 'object.json');
    writeFileSync(file, '{"users":[]}');
    await expect(run(file)).rejects.toThrow(/one JSON array/);
  });
});
