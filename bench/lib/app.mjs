// The system under test: building the demo app, a fresh PostgreSQL database per run, and app processes.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const MAIN = join(ROOT, 'dist/demo/main.js');
export const LOOP_MONITOR = join(ROOT, 'bench/loop-monitor.cjs');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds with `tsc -p tsconfig.build.json` when dist/demo/main.js is missing or older than a source file. */
export function buildIfStale(log) {
  const inputs = Math.max(
    newestMtime(join(ROOT, 'src')),
    ...['tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(join(ROOT, f)).mtimeMs),
  );
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= inputs) return { built: false };
  log(existsSync(MAIN) ? 'dist/ is older than src/: building (tsc -p tsconfig.build.json)' : 'dist/demo/main.js is missing: building');
  const t0 = performance.now();
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return { built: true, seconds: Math.round((performance.now() - t0) / 100) / 10 };
}

/** A fresh database `bo_bench_<random>` on the server of `adminUrl`; `drop()` removes it. */
export async function createBenchDatabase(adminUrl) {
  const name = `bo_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  let info;
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    const setting = async (n) => (await admin.query(`SELECT current_setting($1) AS v`, [n])).rows[0].v;
    info = {
      version: (await admin.query('SELECT version() AS v')).rows[0].v,
      serverVersion: await setting('server_version'),
      settings: {
        max_connections: await setting('max_connections'),
        shared_buffers: await setting('shared_buffers'),
        synchronous_commit: await setting('synchronous_commit'),
        fsync: await setting('fsync'),
      },
    };
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    ...info,
    async drop() {
      if (dropped) return;
      dropped = true;
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** True when something accepts TCP connections at the host and port of `url` within 1 s. */
export function reachable(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) || 6379 });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The app's environment: the caller's, minus anything that configures the demo, plus `overrides`. */
export function appEnvironment(overrides) {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^(BACKOFFICE_|SMTP_URL$|MAIL_PICKUP_DIR$|PUBLIC_URL$|REDIS_URL$|DATABASE_URL$|PORT$|NODE_ENV$|NODE_OPTIONS$)/.test(key)) {
      delete env[key];
    }
  }
  return { ...env, ...overrides };
}

/**
 * Starts `node [nodeArgs] --require bench/loop-monitor.cjs dist/demo/main.js` with an IPC channel and waits
 * for its start line. Output goes to `logFile`.
 */
export async function startApp({ name, env, cwd, logFile, nodeArgs = [], timeoutMs = 60_000 }) {
  const child = spawn(process.execPath, [...nodeArgs, '--require', LOOP_MONITOR, MAIN], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const log = createWriteStream(logFile, { flags: 'a' });
  const tail = [];
  let exited = null;
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exited = { code, signal }))));
  const port = await new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs / 1000} s:\n${tail.join('')}`)), timeoutMs);
    const onData = (chunk) => {
      const text = chunk.toString();
      log.write(text);
      tail.push(text);
      if (tail.length > 50) tail.shift();
      buffer += text;
      const match = /listening on http:\/\/localhost:(\d+)/.exec(buffer);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? code}) before it listened:\n${tail.join('')}`));
    });
  });

  let nextId = 0;
  const pending = new Map();
  child.on('message', (message) => {
    if (message?.type === 'bench:stats' && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    }
  });

  return {
    name,
    pid: child.pid,
    port,
    url: `http://127.0.0.1:${port}`,
    get exited() {
      return exited;
    },
    /** Event-loop delay since the last reset, and process.memoryUsage() (after a full GC with `gc`), from bench/loop-monitor.cjs. */
    stats({ reset = false, gc = false } = {}) {
      const id = ++nextId;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: no answer from the loop monitor`));
        }, 10_000);
        pending.set(id, (message) => {
          clearTimeout(timer);
          resolve(message);
        });
        child.send({ type: 'bench:stats', id, reset, gc });
      });
    },
    /** SIGTERM, then SIGKILL after `graceMs`. Resolves with how it exited. */
    async stop(graceMs = 15_000) {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exit;
        clearTimeout(timer);
      }
      if (!log.writableEnded) await new Promise((resolve) => log.end(resolve));
      return exited;
    },
  };
}
