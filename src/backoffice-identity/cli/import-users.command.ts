import { randomBytes } from 'node:crypto';
import { close as closeFd, constants, createWriteStream, fstat as fstatFd, fstatSync, open as openFd, readFileSync, statSync, type Stats } from 'node:fs';
import { access, lstat, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { isatty, WriteStream as TtyWriteStream } from 'node:tty';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type DynamicModule, type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { BackOfficeIdentityModule } from '../backoffice-identity.module.js';
import { BACKOFFICE_USER_MANAGER } from '../constants.js';
import { standaloneTypeOrmRoot } from '../persistence/typeorm/typeorm-persistence.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { BackOfficeUserImporter, type ResolvedImportOptions } from '../users/import/backoffice-user-importer.js';
import { type ImportConflictMode, type ImportUsersSummary, MAX_IMPORT_BATCH } from '../users/import/user-import.js';
import { CliLogger } from './cli-logger.js';
import { ImportFileError, type ImportFileFormat, type ImportSourceItem, readImportFile } from './record-readers.js';

/** Settings of one `import-users` run. */
export interface ImportUsersCommandOptions {
  file: string;
  format: ImportFileFormat;
  databaseUrl: string;
  reportPath: string;
  batchSize: number;
  onConflict: ImportConflictMode;
  dryRun: boolean;
  groupMap: Record<string, string | null>;
  usernameIsEmail: boolean;
  /** Where progress lines go (stderr). */
  progress: NodeJS.WritableStream & { isTTY?: boolean };
}

@Module({})
class ImportUsersCliModule {
  static forRoot(options: ImportUsersCommandOptions): DynamicModule {
    return {
      module: ImportUsersCliModule,
      imports: [
        standaloneTypeOrmRoot(options.databaseUrl),
        EventEmitterModule.forRoot({ wildcard: true }),
        BackOfficeIdentityModule.forRoot({ usernameIsEmail: options.usernameIsEmail, maintenanceIntervalMinutes: 0 }),
      ],
    };
  }
}

/** What a path that is not a regular file is, for an error message. */
function fileKind(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  return info.isSocket() ? 'a socket' : 'a block device';
}

/** Writes the per-record report (JSON lines), waiting when the disk is slower than the import. */
/** The one of `fds` (the process's own stdout and stderr) that has the file `info` open, if any. */
function ownOutputOf(info: Stats, fds: readonly number[]): number | undefined {
  return fds.find((fd) => {
    try {
      const out = fstatSync(fd);
      return out.dev === info.dev && out.ino === info.ino;
    } catch {
      return false;
    }
  });
}

/** How long `--report <named pipe>` waits for a reader to open it (one started beside the CLI) before failing. */
const FIFO_READER_GRACE_MS = 1000;
const NO_READER = Symbol('no reader');

/** Devices that write nowhere another user reads: nowhere, or the process's own controlling terminal. */
const HARMLESS_DEVICES = ['/dev/null', '/dev/tty'];

function isHarmlessDevice(info: Stats): boolean {
  return HARMLESS_DEVICES.some((path) => {
    try {
      const device = statSync(path);
      return device.isCharacterDevice() && device.rdev === info.rdev;
    } catch {
      return false;
    }
  });
}

/**
 * The device numbers (rdev) of this process's own terminals: those of fd 0, 1 and 2 that are terminals, and its
 * controlling terminal (Linux: tty_nr of /proc/self/stat, the real device; fstat of an opened /dev/tty only shows
 * /dev/tty itself, 5,0). None without a controlling terminal and with no terminal on 0/1/2.
 */
function ownTerminalDevices(): number[] {
  const devices: number[] = [];
  for (const fd of [0, 1, 2]) {
    try {
      if (isatty(fd)) devices.push(fstatSync(fd).rdev);
    } catch {
      // Closed descriptor: not a terminal of ours.
    }
  }
  try {
    // After the command name (in parentheses, may hold spaces): state ppid pgrp session tty_nr.
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const ttyNr = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[4]);
    if (ttyNr > 0) devices.push(ttyNr);
  } catch {
    // No /proc: only the terminals on 0/1/2 (and /dev/tty itself, isHarmlessDevice) are ours.
  }
  return devices;
}

/**
 * Whether the pipe or character device opened as `fd` (`info`, its fstat) may take the report, which holds user data:
 * this process's own stdout or stderr, /dev/null or /dev/tty, a pipe of this user, or this process's own terminal
 * (ownTerminalDevices; a terminal merely owned by this user is not enough: as root /dev/console, /dev/tty1, /dev/ttyS0
 * and other sessions' ptys are all root's, and a link another user put at the path would send user data there; nor
 * any other device: /dev/kmsg). 'other' when it is neither a pipe nor a character device.
 */
function reportTargetRefusal(info: Stats, fd: number, standardOutputs: readonly number[]): string | null | 'other' {
  const mine = ownOutputOf(info, standardOutputs) !== undefined;
  const ownedByMe = info.uid === (process.getuid?.() ?? info.uid);
  if (info.isFIFO()) return mine || ownedByMe ? null : `it is a pipe owned by another user (uid ${info.uid})`;
  if (!info.isCharacterDevice()) return 'other';
  if (mine || isHarmlessDevice(info)) return null;
  if (isatty(fd)) {
    return ownTerminalDevices().includes(info.rdev) ? null : "it is a terminal that is not this process's own (not its stdin, stdout, stderr or controlling terminal)";
  }
  return "it is a character device that is not a terminal of yours, /dev/null or this process's stdout or stderr";
}

export class ReportWriter {
  private error?: Error;
  /** `beforeFirstWrite`: run once, before the first line (a report written in place is truncated then). */
  private constructor(
    private readonly stream: Writable,
    private beforeFirstWrite?: () => Promise<void>,
  ) {
    stream.on('error', (error) => (this.error ??= error));
  }
  /**
   * Creates the report file first, so a path that cannot be written fails with a clear error before anything is
   * imported. A report already at `path` (the default one of an earlier run of the same file) is replaced, never
   * written into: a new file (0600, created with O_EXCL beside it) is renamed over it, so neither the old file's mode
   * (a world-readable report keeps none of its permissions) nor a symbolic link put there (a rename replaces the link,
   * it does not follow it) decides where and how the report is written (OWASP ASVS 4.0 1.14.x); in a directory this
   * user cannot write, a regular file of this user's there is written in place instead (openInPlace). A named pipe or a
   * character device (`/dev/null`) at `path` is written to, also through a symbolic link (`/dev/stdout`, `/dev/fd/N`,
   * a shell's `>(gzip > r.gz)`), if it is this user's (OWASP ASVS 4.0 12.3.1: a pipe another local user put there, or
   * as root a link to any device, is refused; see reportTargetRefusal); anything else that is not a regular file (a
   * directory, a socket, a symbolic link to anything but a pipe, a character device or the process's own stdout or
   * stderr, which may be a regular file: `--report /dev/stdout > file`) is refused. `standardOutputs`:
   * the descriptors of the process's own stdout and stderr (a test passes others).
   */
  static async open(path: string, standardOutputs: readonly number[] = [1, 2]): Promise<ReportWriter> {
    const failed = (error: unknown) => new Error(`cannot write the report ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    const refused = (kind: string) => new Error(`cannot write the report ${path}: it already exists and is not a regular file (${kind}); choose another path or remove it`);
    let existing: Stats | null;
    try {
      existing = await lstat(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw failed(error);
      existing = null;
    }
    if (existing && (existing.isSymbolicLink() || existing.isFIFO() || existing.isCharacterDevice())) {
      // A pipe or a device (--report /dev/null) is written to as it is: it keeps nothing to leak, if it is this user's
      // (reportTargetRefusal). A symbolic link is followed, never created (no O_CREAT): written to only if the opened
      // handle is such a pipe or device; anything else at the path is opened with O_NOFOLLOW (not a link put there since).
      const link = existing.isSymbolicLink();
      let fd: number;
      try {
        fd = await ReportWriter.openNonBlocking(path, constants.O_WRONLY | constants.O_NOCTTY | (link ? 0 : constants.O_NOFOLLOW));
      } catch (error) {
        if (error === NO_READER) throw new Error(`cannot write the report ${path}: it is a named pipe that nothing reads; start its reader first`);
        throw link ? refused('a symbolic link') : failed(error);
      }
      // fstat of what was opened: no check/open race.
      const info = await promisify(fstatFd)(fd).catch(() => null);
      const ownOutput = info?.isFile() ? ownOutputOf(info, standardOutputs) : undefined;
      if (ownOutput !== undefined) {
        // --report /dev/stdout > file: the own stdout (stderr), a regular file. Written through that descriptor, not the
        // one just opened (its own offset, 0: it would overwrite what the shell and this process wrote there before).
        await promisify(closeFd)(fd);
        return new ReportWriter(createWriteStream('', { fd: ownOutput, autoClose: false, encoding: 'utf8' }));
      }
      const refusal = info ? reportTargetRefusal(info, fd, standardOutputs) : 'other';
      if (refusal === null) return new ReportWriter(ReportWriter.nonBlockingStream(fd, info!));
      await promisify(closeFd)(fd);
      if (refusal !== 'other') throw new Error(`cannot write the report ${path}: ${refusal}; choose another path`);
      throw link ? refused('a symbolic link') : new Error(`cannot write the report ${path}: it was replaced while it was opened (no longer a pipe or a device); run it again`);
    }
    if (existing && !existing.isFile()) throw refused(fileKind(existing));
    // .<name>.<12 hex>.tmp adds 18 bytes: a name near the 255-byte limit (NAME_MAX) takes a short one instead.
    const suffix = `.${randomBytes(6).toString('hex')}.tmp`;
    const name = basename(path);
    const temporary = join(dirname(path), 1 + Buffer.byteLength(name) + suffix.length > 255 ? `.import-report${suffix}` : `.${name}${suffix}`);
    let handle: FileHandle | undefined;
    try {
      handle = await open(temporary, 'wx', 0o600);
      await rename(temporary, path);
    } catch (error) {
      if (handle) await Promise.allSettled([handle.close(), unlink(temporary)]);
      const code = (error as NodeJS.ErrnoException).code;
      if (!handle && existing && (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')) return ReportWriter.openInPlace(path, existing, code);
      throw failed(error);
    }
    return new ReportWriter(handle.createWriteStream({ encoding: 'utf8' }));
  }
  /**
   * The directory of `path` cannot be written (`code`: no temporary file beside it), but a regular file is there
   * (`existing`, its lstat): an operator may pre-create the report, writable by the service user, in a directory that
   * user cannot write (root-owned /var/log/app/). It is written in place if it is this user's: opened O_NOFOLLOW
   * without O_CREAT, the fstat of what was opened must be the same regular file (dev+ino) as the lstat, owned by
   * process.geteuid() (a file another user owns would stay theirs to read: refused) with one name (nlink 1: a hard
   * link to another file of the user's, put at the path, would have that file overwritten: refused), made 0600, and truncated only
   * when the first report line is written, so a run failing before any (database unreachable) keeps the earlier
   * report, or when a completed run closes it without a line (empty input: emptied, see close). Not atomic, unlike
   * the rename: a reader sees the new report grow in the old file.
   */
  private static async openInPlace(path: string, existing: Stats, code: string): Promise<ReportWriter> {
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NOCTTY);
    } catch (error) {
      throw new Error(`cannot write the report ${path}: its directory cannot be written (${code}) and neither can the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    try {
      const info = await handle.stat();
      if (!info.isFile() || info.dev !== existing.dev || info.ino !== existing.ino) {
        throw new Error(`cannot write the report ${path}: it was replaced while it was opened; run it again`);
      }
      if (info.uid !== process.geteuid?.()) {
        throw new Error(`cannot write the report ${path}: its directory cannot be written (${code}) and the file is owned by another user (uid ${info.uid}); choose another path`);
      }
      if (info.nlink > 1) {
        throw new Error(`cannot write the report ${path}: its directory cannot be written (${code}) and the file has other hard links (${info.nlink} names); choose another path or remove it`);
      }
      await handle.chmod(0o600);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    const file = handle;
    return new ReportWriter(file.createWriteStream({ encoding: 'utf8' }), () => file.truncate(0));
  }
  /**
   * Opens `path` (never created) with O_NONBLOCK: a named pipe nothing reads answers ENXIO at once instead of the
   * open waiting for a reader forever. A reader started beside the CLI (`cat fifo & import-users ... --report fifo`)
   * may open it a moment later: ENXIO is retried for {@link FIFO_READER_GRACE_MS}, then rejected with NO_READER.
   * ENXIO is also what opening a socket answers: only a pipe there is waited for.
   */
  private static async openNonBlocking(path: string, flags: number): Promise<number> {
    for (let waited = 0; ; waited += 50) {
      try {
        return await promisify(openFd)(path, flags | constants.O_NONBLOCK);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENXIO' || !(await stat(path).catch(() => null))?.isFIFO()) throw error;
        if (waited >= FIFO_READER_GRACE_MS) throw NO_READER;
        await delay(50);
      }
    }
  }
  /**
   * A stream writing to `fd`, a pipe or a character device opened O_NONBLOCK (which Node cannot clear): a pipe goes
   * through libuv's pipe handle (net.Socket), which waits when it is full (EAGAIN) instead of failing, so a report
   * larger than the pipe buffer reaches a slow reader whole; a terminal through tty.WriteStream (which makes its own
   * descriptor blocking); any other device (/dev/null) through a file stream.
   */
  private static nonBlockingStream(fd: number, info: Stats): Writable {
    if (info.isFIFO()) return new Socket({ fd, readable: false, writable: true });
    if (isatty(fd)) return new TtyWriteStream(fd);
    return createWriteStream('', { fd, encoding: 'utf8' });
  }
  private async startReport(): Promise<void> {
    const first = this.beforeFirstWrite;
    this.beforeFirstWrite = undefined;
    await first?.();
  }
  async write(line: object): Promise<void> {
    if (this.error) throw this.error;
    await this.startReport();
    if (!this.stream.write(`${JSON.stringify(line)}\n`)) await once(this.stream, 'drain');
  }
  /**
   * `completed`: the run went through to its end (runImportUsers, after the audit entry). A report written in place
   * that got no line (empty input) is then emptied, as the rename would have left it, so the earlier run's report is
   * not read as this one's; a run that failed (completed false: the database unreachable, the file unreadable from its
   * first record) keeps the earlier report when it wrote no line.
   */
  async close(completed = false): Promise<void> {
    if (completed && !this.error) await this.startReport();
    if (this.error) return void this.stream.destroy();
    this.stream.end();
    await once(this.stream, 'finish');
  }
}

/**
 * An import that stopped part-way (a file that breaks off, the database gone): says which records were written
 * (the batches before, each committed with its report lines) and that the rest were not, so the operator knows that
 * running the fixed file again is safe (records already imported are skipped, or updated again with `update`).
 */
export class ImportInterruptedError extends Error {
  constructor(cause: unknown, summary: ImportUsersSummary, dryRun: boolean) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const done =
      summary.total === 0
        ? 'no record was written'
        : `records 1 to ${summary.total} were ${dryRun ? 'checked (dry run)' : 'imported'} (created ${summary.created}, updated ${summary.updated}, ` +
          `skipped ${summary.skipped}, invalid ${summary.invalid}; see the report); record ${summary.total + 1} and the records after it were not`;
    super(`${reason}; ${done}`, { cause });
    this.name = 'ImportInterruptedError';
  }
}

/**
 * Refuses a directory or a path it may not read before the report or the database is touched. Anything else that
 * reads as a stream is taken: a regular file, a named pipe, `/dev/stdin`, `<(gunzip -c users.csv.gz)`.
 */
async function assertReadableFile(path: string): Promise<void> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
    await access(path, constants.R_OK);
  } catch (error) {
    throw new ImportFileError(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (info.isDirectory()) throw new ImportFileError(`${path} is not a file (it is a directory)`);
}

/** Progress with the rate: a rewritten line on a terminal, a line every few seconds otherwise. */
class Progress {
  private readonly started = Date.now();
  private lastLine = 0;
  private lastTotal = -1;
  constructor(private readonly out: ImportUsersCommandOptions['progress']) {}
  update(summary: ImportUsersSummary, final = false): void {
    const now = Date.now();
    if (!final && !this.out.isTTY && now - this.lastLine < 5000) return;
    if (final && !this.out.isTTY && summary.total === this.lastTotal) return;
    this.lastLine = now;
    this.lastTotal = summary.total;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = Math.round(summary.total / seconds);
    const text =
      `${summary.total.toLocaleString('en')} records, ${rate.toLocaleString('en')}/s ` +
      `(created ${summary.created}, updated ${summary.updated}, skipped ${summary.skipped}, invalid ${summary.invalid})`;
    this.out.write(this.out.isTTY ? `\r\x1b[K${text}${final ? '\n' : ''}` : `${text}\n`);
  }
  get elapsedSeconds(): number {
    return (Date.now() - this.started) / 1000;
  }
}

/**
 * `backoffice-identity import-users`: streams the file, imports in batches (each one transaction), writes one
 * report line per record and publishes one audit entry with the counts. Never holds the whole file in memory.
 */
export async function runImportUsers(options: ImportUsersCommandOptions): Promise<{ summary: ImportUsersSummary; seconds: number }> {
  await assertReadableFile(options.file);
  const report = await ReportWriter.open(options.reportPath);
  let app: INestApplicationContext;
  try {
    // abortOnError false: a start-up failure (database unreachable) rejects here instead of Nest exiting the process.
    app = await NestFactory.createApplicationContext(ImportUsersCliModule.forRoot(options), { logger: new CliLogger(), abortOnError: false });
  } catch (error) {
    await report.close();
    throw error;
  }
  const progress = new Progress(options.progress);
  const summary: ImportUsersSummary = { total: 0, created: 0, updated: 0, skipped: 0, invalid: 0 };
  let completed = false;
  try {
    const manager = app.get<BackOfficeUserManager>(BACKOFFICE_USER_MANAGER);
    const importer = manager.createUserImporter();
    const resolved = BackOfficeUserImporter.resolveOptions({ dryRun: options.dryRun, onConflict: options.onConflict, groupMap: options.groupMap });
    let batch: ImportSourceItem[] = [];
    const flush = async () => {
      await importBatch(importer, batch, resolved, report, summary);
      batch = [];
      progress.update(summary);
    };
    try {
      for await (const item of readImportFile(options.file, options.format)) {
        batch.push(item);
        if (batch.length >= options.batchSize) await flush();
      }
      if (batch.length > 0) await flush();
    } catch (error) {
      // The batches before the failure are committed (their users exist): audited with their counts, marked interrupted.
      if (summary.total > 0) {
        await manager.notifyImported(summary, { dryRun: options.dryRun, onConflict: options.onConflict, source: 'cli', interrupted: true });
      }
      throw new ImportInterruptedError(error, summary, options.dryRun);
    }
    progress.update(summary, true);
    await manager.notifyImported(summary, { dryRun: options.dryRun, onConflict: options.onConflict, source: 'cli' });
    completed = true;
  } finally {
    try {
      await report.close(completed);
    } finally {
      await app.close();
    }
  }
  return { summary, seconds: progress.elapsedSeconds };
}

async function importBatch(
  importer: BackOfficeUserImporter,
  items: ImportSourceItem[],
  options: ResolvedImportOptions,
  report: ReportWriter,
  summary: ImportUsersSummary,
): Promise<void> {
  const readable = items.filter((item): item is { position: number; record: unknown } => 'record' in item);
  const results = await importer.importBatch(
    readable.map((item) => item.record),
    options,
  );
  const byPosition = new Map(readable.map((item, i) => [item.position, results[i]]));
  const lines = items.map((item) => ({
    record: item.position,
    ...(byPosition.get(item.position) ?? { email: null, outcome: 'invalid' as const, errors: [{ code: 'malformed_record', description: 'error' in item ? item.error : 'unreadable' }] }),
  }));
  // Counted once the batch is committed, before its report lines: a report that fails part-way still leaves the
  // counts (and the audit entry of an interrupted import) saying what was written.
  for (const line of lines) {
    summary.total++;
    summary[line.outcome]++;
  }
  for (const line of lines) await report.write(line);
}

export const DEFAULT_BATCH_SIZE = MAX_IMPORT_BATCH;
