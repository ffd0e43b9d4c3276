import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BackOfficeErrorDescriber } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { ExternalLoginPerson, TestOidcProvider } from '../support/oidc-provider.js';
import { httpPlatform } from '../support/identity-app.js';

// The demo app as users run it: compiled by tsc, started with `node .../demo/main.js`, driven by env only.
// Each run of this file compiles into its own temp folder: the postgres and pglite projects run it at the
// same time, and neither may race the other (or a developer's `npm start`) on dist/.

const ROOT = join(__dirname, '..', '..');
/** Every variable the demo reads: cleared from the inherited env so each spawn sets exactly what it means. */
const DEMO_ENV = [
  'PORT', 'HTTP_PLATFORM', 'DATABASE_URL', 'SMTP_URL', 'MAIL_PICKUP_DIR', 'PUBLIC_URL', 'REDIS_URL', 'NODE_ENV', 'BACKOFFICE_DATA_DIR',
  'BACKOFFICE_ADMIN_EMAIL', 'BACKOFFICE_ADMIN_PASSWORD', 'BACKOFFICE_BCRYPT_COST', 'BACKOFFICE_LOCKOUT_MAX_ATTEMPTS',
  'BACKOFFICE_RATE_LIMITS', 'BACKOFFICE_SECURE_COOKIES', 'BACKOFFICE_ENCRYPTION_KEY',
  'OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET', 'OIDC_DISPLAY_NAME', 'OIDC_AUTO_LINK', 'OIDC_DEFAULT_GROUPS',
  'OIDC_GROUPS_CLAIM', 'OIDC_GROUP_MAPPING', 'OIDC_DENY_LOCAL_LOGIN', 'OIDC_AUTO_REDIRECT',
];
const START_LINE = /^backoffice-identity demo listening on (http:\/\/localhost:(\d+)) \(database: (.+)\)$/m;
const PASSWORD_LINE = /^==== FIRST ADMIN CREATED: (\S+)  PASSWORD: (\S+) .*====$/gm;
const STACK_FRAME = /^\s+at .+\(.+:\d+:\d+\)$/m;
/** A test that starts the demo: start-up alone may take a while on a busy machine. */
const SPAWN_TIMEOUT = 90_000;

let buildDir: string;
let mainJs: string;
const running = new Set<ChildProcess>();
const tempDirs: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface DemoRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
}

/** Spawns the compiled demo with a clean env: a free port, bcrypt cost 4, data in a temp folder. */
async function spawnDemo(env: Record<string, string | undefined>): Promise<DemoRun> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !DEMO_ENV.includes(key)));
  const cwd = await tempDir('bo-demo-cwd-');
  const child = spawn(process.execPath, [mainJs], {
    cwd,
    env: { ...inherited, PORT: String(await freePort()), HTTP_PLATFORM: httpPlatform(), BACKOFFICE_BCRYPT_COST: '4', BACKOFFICE_DATA_DIR: join(cwd, '.data'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Resolves with the URL of the start line; fails if the demo exits or stays silent for 60 s. */
async function waitForStart(run: DemoRun): Promise<{ url: string; database: string }> {
  const deadline = Date.now() + 60_000;
  let exit: Exit | undefined;
  void run.exited.then((e) => (exit = e));
  while (Date.now() < deadline) {
    const match = START_LINE.exec(run.stdout());
    if (match) return { url: match[1], database: match[3] };
    if (exit) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`demo did not start (exit ${JSON.stringify(exit)}):\n${run.stdout()}\n${run.stderr()}`);
}

function within<T>(promise: Promise<T>, ms: number, failure: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(failure)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Sends SIGTERM and returns the exit and how long it took. */
async function terminate(run: DemoRun): Promise<Exit & { ms: number }> {
  const started = Date.now();
  run.child.kill('SIGTERM');
  const exit = await within(run.exited, 15_000, 'no exit 15 s after SIGTERM');
  return { ...exit, ms: Date.now() - started };
}

/** Runs the demo until it exits on its own (start-up failures). */
async function runToExit(env: Record<string, string | undefined>): Promise<Exit & { stdout: string; stderr: string }> {
  const run = await spawnDemo(env);
  const exit = await within(run.exited, 30_000, 'demo did not exit within 30 s');
  return { ...exit, stdout: run.stdout(), stderr: run.stderr() };
}

async function getHealth(url: string): Promise<{ status: number; contentType: string | null; body: unknown }> {
  const res = await fetch(`${url}/health`);
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.json() };
}

/** `POST /backoffice/auth/login` (contract section 3). */
async function login(url: string, username: string, password: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/backoffice/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  return { status: res.status, body: await res.json() };
}

const printedPasswords = (output: string) => [...output.matchAll(PASSWORD_LINE)].map((m) => ({ email: m[1], password: m[2] }));

beforeAll(async () => {
  buildDir = await tempDir('bo-demo-build-');
  // Compiled files resolve packages from the repository, and load as CommonJS like dist/ does.
  await symlink(join(ROOT, 'node_modules'), join(buildDir, 'node_modules'), 'dir');
  await writeFile(join(buildDir, 'package.json'), '{ "type": "commonjs" }\n');
  await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', buildDir], { cwd: ROOT });
  mainJs = join(buildDir, 'demo/main.js');
}, 120_000);

afterAll(async () => {
  for (const child of running) child.kill('SIGKILL');
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe.runIf(dbKind() === 'pglite')('demo app: environment and start-up checks', () => {
  it('groups and API users with curl-style requests: auditors read /audit and get 403 on /users; a token with users.read reads /users', async () => {
    const run = await spawnDemo({ DATABASE_URL: 'memory://' });
    const { url } = await waitForStart(run);
    const [adminLogin] = printedPasswords(run.stdout() + run.stderr());
    const res = await fetch(`${url}/backoffice/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: adminLogin.email, password: adminLogin.password }),
    });
    expect(res.status).toBe(200);
    const cookies = Object.fromEntries(res.headers.getSetCookie().map((c) => c.split(';')[0].split('=')).map(([k, v]) => [k, decodeURIComponent(v)]));
    const asAdmin = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${url}/backoffice${path}`, {
        method,
        headers: {
          'content-type': 'application/json',
          cookie: Object.entries(cookies).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('; '),
          'x-xsrf-token': cookies['XSRF-TOKEN'],
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: await r.json().catch(() => undefined) };
    };
    expect((await asAdmin('POST', '/groups', { alias: 'auditors', name: 'Auditors', permissions: ['audit.read'] })).status).toBe(201);
    const robot = await asAdmin('POST', '/users/api', { name: 'Robot', groups: ['editor'] });
    expect(robot.status).toBe(201);
    expect((await asAdmin('PUT', `/users/${robot.body.user.id}/groups`, { groups: ['auditors'] })).status).toBe(200);
    // curl -u "$ID:$SECRET" -d grant_type=client_credentials $URL/backoffice/auth/token
    const token = async () => {
      const r = await fetch(`${url}/backoffice/auth/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${robot.body.clientId}:${robot.body.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      });
      expect(r.status).toBe(200);
      return ((await r.json()) as { access_token: string }).access_token;
    };
    const asRobot = async (path: string, accessToken: string) => (await fetch(`${url}/backoffice${path}`, { headers: { authorization: `Bearer ${accessToken}` } })).status;
    const auditorToken = await token();
    expect(await asRobot('/audit', auditorToken)).toBe(200);
    expect(await asRobot('/users', auditorToken)).toBe(403);
    expect((await asAdmin('PUT', '/groups/auditors', { permissions: ['audit.read', 'users.read'] })).status).toBe(200);
    expect(await asRobot('/users', await token())).toBe(200);
    await terminate(run);
  }, SPAWN_TIMEOUT);

  it('refuses an invalid env value with exit 1 and a message naming the variable, without a stack trace', async () => {
    const result = await runToExit({ DATABASE_URL: 'memory://', BACKOFFICE_BCRYPT_COST: 'abc' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('BACKOFFICE_BCRYPT_COST must be an integer from 4 to 20 (got "abc")');
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(result.stdout).not.toMatch(START_LINE);
  });

  it('NODE_ENV=production refuses a placeholder admin password and a non-https PUBLIC_URL', async () => {
    const result = await runToExit({ NODE_ENV: 'production', DATABASE_URL: 'memory://', BACKOFFICE_ADMIN_PASSWORD: 'change-me' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/BACKOFFICE_ADMIN_PASSWORD is a placeholder/);
    expect(result.stderr).toMatch(/PUBLIC_URL must be an https:\/\/ URL/);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it('exits 1 with the IdentityResult descriptions when BACKOFFICE_ADMIN_PASSWORD fails validation', async () => {
    const result = await runToExit({ DATABASE_URL: 'memory://', BACKOFFICE_ADMIN_PASSWORD: 'short' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('BACKOFFICE_ADMIN_PASSWORD');
    expect(result.stderr).toContain(new BackOfficeErrorDescriber().passwordTooShort(12).description);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(printedPasswords(result.stdout)).toEqual([]);
  }, SPAWN_TIMEOUT);

  it('DATABASE_URL=memory://: one start line, /health 200, the generated password once, SIGTERM exits 0', async () => {
    const run = await spawnDemo({ DATABASE_URL: 'memory://' });
    const { url, database } = await waitForStart(run);
    expect(database).toMatch(/in-memory PGlite/);
    expect(run.stdout().match(new RegExp(START_LINE.source, 'gm'))).toHaveLength(1);
    expect(await getHealth(url)).toEqual({ status: 200, contentType: expect.stringMatching(/^application\/json/), body: { status: 'ok', database: 'up' } });
    const printed = printedPasswords(run.stdout() + run.stderr());
    expect(printed).toHaveLength(1);
    expect(printed[0].email).toBe('admin@example.com');
    expect(printed[0].password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(await login(url, printed[0].email, printed[0].password)).toMatchObject({
      status: 200,
      body: { status: 'success', user: { email: 'admin@example.com', groups: ['admin'], state: 'active' } },
    });
    const signInPage = await fetch(`${url}/backoffice`);
    expect(signInPage.status).toBe(200);
    expect(signInPage.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(await signInPage.text()).toContain('<button type="submit">Sign in</button>');
    const exit = await terminate(run);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.ms).toBeLessThan(10_000);
  }, SPAWN_TIMEOUT);
});

describe(`demo app on a persistent ${dbKind() === 'pglite' ? 'embedded PGlite (DATABASE_URL unset)' : 'PostgreSQL database'}`, () => {
  let db: TestDatabase | undefined;
  let env: Record<string, string | undefined>;
  let generated: { email: string; password: string };

  beforeAll(async () => {
    if (dbKind() === 'postgres') {
      db = await createTestDatabase();
      env = { DATABASE_URL: db.url };
    } else {
      env = { BACKOFFICE_DATA_DIR: await tempDir('bo-demo-data-') };
    }
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('first start: creates the admin, prints its generated password once, serves /health, exits 0 on SIGTERM', async () => {
    const run = await spawnDemo(env);
    const { url, database } = await waitForStart(run);
    expect(database).toMatch(dbKind() === 'pglite' ? /^embedded PGlite .*pglite$/ : /^PostgreSQL postgres:\/\//);
    expect(await getHealth(url)).toMatchObject({ status: 200, body: { status: 'ok', database: 'up' } });
    const printed = printedPasswords(run.stdout() + run.stderr());
    expect(printed).toHaveLength(1);
    generated = printed[0];
    const exit = await terminate(run);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.ms).toBeLessThan(10_000);
  }, SPAWN_TIMEOUT);

  it('second start on the same database: no new admin or password; the first password still logs in', async () => {
    const run = await spawnDemo(env);
    const { url } = await waitForStart(run);
    expect(await getHealth(url)).toMatchObject({ status: 200, body: { status: 'ok', database: 'up' } });
    expect(printedPasswords(run.stdout() + run.stderr())).toEqual([]);
    expect(run.stdout()).not.toMatch(/first admin created/i);
    expect(await login(url, generated.email, generated.password)).toMatchObject({ status: 200, body: { status: 'success', user: { groups: ['admin'] } } });
    expect(await login(url, generated.email, `${generated.password}x`)).toMatchObject({ status: 401 });
    expect(await terminate(run)).toMatchObject({ code: 0, signal: null });
  }, SPAWN_TIMEOUT);
});

describe(`demo app with OIDC_* on ${dbKind() === 'pglite' ? 'in-memory PGlite' : 'PostgreSQL'} (contract section 6)`, () => {
  it('npm start with OIDC_* pointing at a local oidc-provider: a new person signs in through it and lands in editor, plus the groups OIDC_GROUP_MAPPING maps (OWASP ASVS 4.0 4.1.3: an unmapped provider group "admin" grants nothing)', async () => {
    const port = await freePort();
    const secret = 'demo-client-secret-0123456789';
    const idp = await TestOidcProvider.start([
      {
        client_id: 'backoffice-demo',
        client_secret: secret,
        redirect_uris: [`http://localhost:${port}/backoffice/auth/external/oidc/callback`],
        post_logout_redirect_uris: [`http://localhost:${port}/backoffice/`],
      },
    ]);
    const db = dbKind() === 'postgres' ? await createTestDatabase() : undefined;
    try {
      const run = await spawnDemo({
        PORT: String(port),
        DATABASE_URL: db?.url ?? 'memory://',
        OIDC_ISSUER: idp.issuer,
        OIDC_CLIENT_ID: 'backoffice-demo',
        OIDC_CLIENT_SECRET: secret,
        OIDC_GROUPS_CLAIM: 'groups',
        OIDC_GROUP_MAPPING: 'staff=writer',
      });
      const { url } = await waitForStart(run);
      const person = new ExternalLoginPerson(url);
      let providers: Array<{ name: string; displayName: string; available: boolean }> = [];
      for (let i = 0; i < 100 && !providers[0]?.available; i++) {
        providers = (await person.app.get('/auth/external/providers')).body;
        if (!providers[0]?.available) await new Promise((r) => setTimeout(r, 100));
      }
      expect(providers).toEqual([{ name: 'oidc', displayName: 'Single sign-on', autoRedirect: false, available: true }]);

      idp.accounts.set('new-person', { email: 'new.person@example.com', email_verified: true, name: 'New Person', groups: ['staff', 'admin', 'translator'] });
      const signedIn = await person.signIn('oidc', 'new-person');
      expect(signedIn.status).toBe(302);
      expect(signedIn.headers.get('location')).toBe('/backoffice');
      const me = await person.app.get('/auth/me');
      expect(me.body).toMatchObject({ email: 'new.person@example.com', name: 'New Person', logins: [{ provider: 'oidc', displayName: 'Single sign-on' }] });
      expect([...me.body.groups].sort()).toEqual(['editor', 'writer']);
      const logout = await person.app.post('/auth/logout');
      expect(logout.body.signOutRedirectUrl).toMatch(new RegExp(`^${idp.issuer}/session/end\\?.*id_token_hint=`));
      expect(await terminate(run)).toMatchObject({ code: 0 });
    } finally {
      await idp.stop();
      await db?.drop();
    }
  }, SPAWN_TIMEOUT);
});
