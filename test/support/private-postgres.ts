import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = process.env.PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';

/** True when a private server can be started here (PostgreSQL 15 binaries installed). */
export const privatePostgresAvailable = () => existsSync(join(BIN, 'initdb')) && existsSync(join(BIN, 'pg_ctl'));

/** A loopback port that was free a moment ago (nothing listens on it now). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A throwaway PostgreSQL server of its own (initdb + pg_ctl in a temp folder, on a free port), so a test can
 * stop and restart a real server without touching the shared one. As root, it runs as the `postgres` user.
 */
export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly asPostgres: boolean,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'bo-private-pg-'));
    const asPostgres = process.getuid?.() === 0;
    if (asPostgres) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    const server = new PrivatePostgres(dir, await freePort(), asPostgres);
    await server.exec('initdb', ['-D', server.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    await server.ctl('start');
    return server;
  }

  private get dataDir(): string {
    return join(this.dir, 'data');
  }

  private exec(tool: string, args: string[]): Promise<{ stdout: string }> {
    const binary = join(BIN, tool);
    return this.asPostgres ? run('runuser', ['-u', 'postgres', '--', binary, ...args]) : run(binary, args);
  }

  /** `pg_ctl start|stop|restart`, waiting until done; stop and restart use the fast mode (as a deploy would). */
  async ctl(action: 'start' | 'stop' | 'restart'): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c shared_buffers=16MB`;
    const args = ['-D', this.dataDir, '-w', '-t', '30', '-l', join(this.dir, 'server.log')];
    if (action !== 'start') args.push('-m', 'fast');
    if (action !== 'stop') args.push('-o', options);
    await this.exec('pg_ctl', [action, ...args]);
  }

  async destroy(): Promise<void> {
    await this.ctl('stop').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
