import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, closeSync, constants, linkSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMPORT_USERS_USAGE } from '../../src/backoffice-identity/cli/import-users.arguments.js';
import { ReportWriter } from '../../src/backoffice-identity/cli/import-users.command.js';

/** Rejects instead of hanging when `promise` takes longer than `ms`. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms (hangs)`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A `cat` child reading the named pipe: resolves with everything it read once the writer closes. */
function readAll(fifo: string): Promise<string> {
  const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
  let read = '';
  reader.stdout.setEncoding('utf8').on('data', (d: string) => (read += d));
  return new Promise((resolve) => reader.on('close', () => resolve(read)));
}

const lines = (text: string) => text.trim().split('\n').map((line) => JSON.parse(line));
const isRoot = process.getuid?.() === 0;

describe('import-users --report on a named pipe, a device or the own stdout (ReportWriter.open)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'report-writer-'));
    chmodSync(dir, 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = (name: string) => {
    const path = join(dir, name);
    execFileSync('mkfifo', [path]);
    return path;
  };

  // OWASP ASVS 5.0 5.3.2 / 4.0 12.3.1: a named pipe (or a link to one) another local user put at the report path
  // would receive the report (user data); as root, a link to any character device was written to.
  it.skipIf(!isRoot)('a named pipe owned by another user, or a link to one, is refused (the report holds user data); an own pipe is written to', async () => {
    const foreign = fifo('foreign-fifo');
    chownSync(foreign, 65534, 65534);
    const link = join(dir, 'foreign-fifo-link.jsonl');
    symlinkSync(foreign, link);
    // A reader is there (this process, non-blocking), so only the owner decides.
    const readerFd = openSync(foreign, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      for (const path of [foreign, link]) {
        await expect(within(5000, ReportWriter.open(path))).rejects.toThrow(
          `cannot write the report ${path}: it is a pipe owned by another user (uid 65534); choose another path`,
        );
      }
    } finally {
      closeSync(readerFd);
    }
    const own = fifo('own-fifo');
    const read = readAll(own);
    const writer = await within(5000, ReportWriter.open(own));
    await writer.write({ record: 1, outcome: 'created' });
    await writer.close();
    expect(lines(await read)).toEqual([{ record: 1, outcome: 'created' }]);
  });

  it.skipIf(!isRoot)('as root, a link to a character device other than /dev/null, /dev/tty or the own stdout/stderr (/dev/zero) is refused; /dev/null is written to', async () => {
    const link = join(dir, 'zero-link.jsonl');
    symlinkSync('/dev/zero', link);
    await expect(within(5000, ReportWriter.open(link))).rejects.toThrow(
      `cannot write the report ${link}: it is a character device that is not a terminal of yours, /dev/null or this process's stdout or stderr; choose another path`,
    );
    const writer = await ReportWriter.open('/dev/null');
    await writer.write({ record: 1 });
    await writer.close();
  });

  // OWASP ASVS 5.0 5.3.2 / 4.0 12.3.1: as root every terminal is root's (/dev/console, /dev/tty1, /dev/ttyS0, another
  // session's pty): a link another user put at the path to one of them sent user data there. Only the process's own
  // terminal (fd 0/1/2, or its controlling terminal) is taken. The foreign terminal here: the slave of a pty pair a
  // python3 child holds open (a terminal of root's, not this process's).
  it.skipIf(!isRoot)('as root, a link to a terminal that is not the process\'s own (another pty) is refused; /dev/null and the own stdout are taken', async () => {
    const holder = spawn('python3', ['-c', 'import os,pty,sys\nm,s=pty.openpty()\nprint(os.ttyname(s),flush=True)\nsys.stdin.read()'], { stdio: ['pipe', 'pipe', 'ignore'] });
    try {
      const ttyPath = await new Promise<string>((resolve, reject) => {
        holder.stdout.setEncoding('utf8').once('data', (d: string) => resolve(d.trim()));
        holder.once('error', reject);
      });
      expect(statSync(ttyPath).uid).toBe(0);
      const link = join(dir, 'foreign-tty-link.jsonl');
      symlinkSync(ttyPath, link);
      for (const path of [link, ttyPath]) {
        await expect(within(5000, ReportWriter.open(path))).rejects.toThrow(
          `cannot write the report ${path}: it is a terminal that is not this process's own (not its stdin, stdout, stderr or controlling terminal); choose another path`,
        );
      }
      // The same terminal as this process's own stdout (a descriptor standing for it, as below) is taken.
      const ownFd = openSync(ttyPath, constants.O_RDWR | constants.O_NOCTTY);
      try {
        const writer = await within(5000, ReportWriter.open(`/dev/fd/${ownFd}`, [ownFd, 2]));
        await writer.write({});
        await writer.close();
      } finally {
        closeSync(ownFd);
      }
    } finally {
      holder.kill();
    }
    const writer = await within(5000, ReportWriter.open('/dev/null'));
    await writer.write({});
    await writer.close();
  });

  it('a named pipe nothing reads fails at once with a clear message (it does not wait for a reader forever)', async () => {
    const path = fifo('no-reader-fifo');
    await expect(within(5000, ReportWriter.open(path))).rejects.toThrow(
      `cannot write the report ${path}: it is a named pipe that nothing reads; start its reader first`,
    );
    const link = join(dir, 'no-reader-link.jsonl');
    symlinkSync(path, link);
    await expect(within(5000, ReportWriter.open(link))).rejects.toThrow(`cannot write the report ${link}: it is a named pipe that nothing reads; start its reader first`);
  });

  it('a named pipe with a reader receives the whole report, also one larger than the pipe buffer (64 KiB) when the reader is slow', async () => {
    const path = fifo('big-fifo');
    // Opens the pipe at once, reads only after 0.5 s: the writer fills the pipe (EAGAIN on its non-blocking descriptor).
    const reader = spawn('sh', ['-c', 'exec 3<"$0"; sleep 0.5; exec cat <&3', path], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    reader.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
    const read = new Promise<string>((resolve) => reader.on('close', () => resolve(text)));
    const writer = await within(5000, ReportWriter.open(path));
    const count = 3000; // ~ 300 KB
    for (let record = 1; record <= count; record++) await writer.write({ record, outcome: 'created', email: `user-${record}@example.com`, padding: 'x'.repeat(40) });
    await writer.close();
    const got = lines(await read);
    expect(got).toHaveLength(count);
    expect(got.map((line) => line.record)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  });

  // A report file the operator pre-created for the service user in a directory that user cannot write (root-owned
  // /var/log/app/report.jsonl owned by the service user): the temporary file beside it cannot be created (EACCES).
  // Run with this worker's effective uid/gid set to 65534 (seteuid also applies to libuv's threads); needs root and
  // the forks pool (process.seteuid does not exist in a worker thread).
  const canSwitchUser = isRoot && typeof process.seteuid === 'function' && typeof process.setegid === 'function';
  const asNobody = async <T>(run: () => Promise<T>): Promise<T> => {
    process.setegid!(65534);
    process.seteuid!(65534);
    try {
      return await run();
    } finally {
      process.seteuid!(0);
      process.setegid!(0);
    }
  };
  it.skipIf(!canSwitchUser)('a report file the user owns in a directory it cannot write is written in place (0600, truncated only once the report starts); one owned by another user is refused', async () => {
    const owned = join(dir, 'owned.jsonl');
    writeFileSync(owned, 'an earlier report\n', { mode: 0o644 });
    chmodSync(owned, 0o644);
    chownSync(owned, 65534, 65534);
    await asNobody(async () => {
      const writer = await ReportWriter.open(owned);
      // Opened, nothing written yet: the earlier report is still there (a run failing before its first line keeps it).
      expect(readFileSync(owned, 'utf8')).toBe('an earlier report\n');
      await writer.write({ record: 1, outcome: 'created' });
      await writer.close();
    });
    expect(readFileSync(owned, 'utf8')).toBe('{"record":1,"outcome":"created"}\n');
    expect(statSync(owned).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    // Writable by 65534 but owned by another user (root): refused, untouched.
    const foreign = join(dir, 'foreign.jsonl');
    writeFileSync(foreign, 'root\'s\n');
    chmodSync(foreign, 0o666);
    await asNobody(() => expect(ReportWriter.open(foreign)).rejects.toThrow(
      `cannot write the report ${foreign}: its directory cannot be written (EACCES) and the file is owned by another user (uid 0); choose another path`,
    ));
    expect(readFileSync(foreign, 'utf8')).toBe('root\'s\n');
    // No file there and the directory not writable: the error as before.
    await asNobody(() => expect(ReportWriter.open(join(dir, 'absent.jsonl'))).rejects.toThrow(`cannot write the report ${join(dir, 'absent.jsonl')} (EACCES)`));
  });

  // In place, a completed run that wrote no report line (empty input) left the earlier report as it was, where the
  // rename left an empty file: the operator read the old report as the new run's. close(true) (runImportUsers, on a
  // completed run) empties it; close() (a run that failed before importing anything) keeps it.
  it.skipIf(!canSwitchUser)('in place, a completed run with no report line empties the earlier report; a failed one keeps it', async () => {
    const owned = join(dir, 'empty-run.jsonl');
    writeFileSync(owned, 'an earlier report\n');
    chownSync(owned, 65534, 65534);
    await asNobody(async () => {
      await (await ReportWriter.open(owned)).close();
      expect(readFileSync(owned, 'utf8')).toBe('an earlier report\n');
      await (await ReportWriter.open(owned)).close(true);
    });
    expect(readFileSync(owned, 'utf8')).toBe('');
  });

  // A second name (hard link) of another file of the user's, put at the report path: writing in place would overwrite
  // that other file (the user's own, but not the report: a key, a config), which the rename never did.
  it.skipIf(!canSwitchUser)('in place, a report file with another hard link (nlink > 1) is refused and left as it was', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'report-writer-other-'));
    try {
      const other = join(elsewhere, 'settings.conf');
      writeFileSync(other, 'the user\'s other file\n');
      chownSync(other, 65534, 65534);
      const linked = join(dir, 'hard-linked.jsonl');
      linkSync(other, linked);
      await asNobody(() => expect(ReportWriter.open(linked)).rejects.toThrow(
        `cannot write the report ${linked}: its directory cannot be written (EACCES) and the file has other hard links (2 names); choose another path or remove it`,
      ));
      expect(readFileSync(other, 'utf8')).toBe('the user\'s other file\n');
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  // `--report /dev/stdout > report.jsonl`: the own stdout redirected to a regular file. Simulated with a descriptor of
  // this process standing for stdout (fd 1 of a vitest worker cannot be redirected).
  it('--report /dev/stdout while stdout is a regular file (> file) writes the report there, after what the process wrote before and before what it writes after', async () => {
    const file = join(dir, 'stdout.jsonl');
    const stdoutFd = openSync(file, 'w', 0o600);
    try {
      writeSync(stdoutFd, 'before\n');
      const writer = await within(5000, ReportWriter.open(`/dev/fd/${stdoutFd}`, [stdoutFd, 2]));
      await writer.write({ record: 1, outcome: 'created' });
      await writer.write({ record: 2, outcome: 'skipped' });
      await writer.close();
      writeSync(stdoutFd, 'after\n');
    } finally {
      closeSync(stdoutFd);
    }
    expect(readFileSync(file, 'utf8')).toBe('before\n{"record":1,"outcome":"created"}\n{"record":2,"outcome":"skipped"}\nafter\n');
    // A link to a regular file that is not the own stdout or stderr stays refused.
    const other = openSync(join(dir, 'not-stdout.jsonl'), 'w', 0o600);
    try {
      await expect(ReportWriter.open(`/dev/fd/${other}`, [1, 2])).rejects.toThrow(/it already exists and is not a regular file \(a symbolic link\)/);
    } finally {
      closeSync(other);
    }
  });

  it('--help mentions the in-place fallback (a directory the user cannot write)', () => {
    expect(IMPORT_USERS_USAGE.replace(/\s+/g, ' ')).toContain('in a directory you cannot write, a report file of yours (one name, no other hard link) is rewritten in place');
  });
});
