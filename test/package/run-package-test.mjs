#!/usr/bin/env node
// `npm run test:package`: proves the path users take. Builds the library, packs it, installs the tarball into a
// temporary copy of examples/host-app, type-checks (strict) and builds that app, starts it against a fresh
// PostgreSQL database and drives it over HTTP. Prints `package test: N passed, N failed`; exits 1 on failure.
//
// Environment: PACKAGE_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres: a database
// bo_pkg_<random> is created there and dropped at the end; unreachable: embedded PGlite instead),
// PACKAGE_TEST_DB=pglite (use the embedded PGlite anyway), KEEP_PACKAGE_TEST_DIR=1 (keep the temporary folder).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'host-app');
const require = createRequire(join(ROOT, 'package.json'));
const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const started = Date.now();

// ---- reporting ----------------------------------------------------------------------------------------------

const results = [];
function check(name, ok, detail = '') {
  results.push({ name, ok: Boolean(ok) });
  console.log(`${ok ? '  ok  ' : '  FAIL'} ${name}${detail ? ` -- ${detail}` : ''}`);
  return Boolean(ok);
}
function section(title) {
  console.log(`\n== ${title} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
}
class Abort extends Error {}
/** A step the rest depends on: on failure, stop here (cleanup still runs). */
function must(name, ok, detail) {
  if (!check(name, ok, detail)) throw new Abort(name);
}

// ---- processes ----------------------------------------------------------------------------------------------

/** Environment for child npm/node processes: without the npm_* variables of the `npm run` that started us. */
function childEnv(extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package|lifecycle|config_local_prefix)/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function run(command, args, { cwd = ROOT, env = childEnv(), timeoutMs = 10 * 60_000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}${error.message}` });
    });
  });
}

const tail = (text, lines = 30) =>
  text
    .split('\n')
    .filter((l) => !/Unknown user config "nodedir"/.test(l))
    .slice(-lines)
    .join('\n');

async function step(name, command, args, options) {
  const t0 = Date.now();
  const result = await run(command, args, options);
  const ok = result.code === 0;
  check(name, ok, `${((Date.now() - t0) / 1000).toFixed(1)}s${ok ? '' : `, exit ${result.code}`}`);
  if (!ok) console.log(tail(`${result.stdout}\n${result.stderr}`, 60));
  return result;
}

// ---- database -----------------------------------------------------------------------------------------------

/** A fresh PostgreSQL database for this run, or an in-memory PGlite when PostgreSQL is unreachable. */
async function openDatabase() {
  const pg = require('pg');
  const adminUrl = process.env.PACKAGE_TEST_PG_URL ?? DEFAULT_PG_URL;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    if (process.env.PACKAGE_TEST_DB === 'pglite') throw new Error('PACKAGE_TEST_DB=pglite');
    await admin.connect();
  } catch (error) {
    if (process.env.PACKAGE_TEST_PG_URL) throw new Error(`PostgreSQL at ${adminUrl} is unreachable: ${error.message}`);
    console.log(`  PostgreSQL not used at ${adminUrl} (${error.message}): embedded PGlite instead`);
    const { PGlite } = await import('@electric-sql/pglite');
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
    const db = new PGlite();
    await db.waitReady;
    const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 100 });
    await server.start();
    return {
      kind: 'PGlite (in memory)',
      url: `postgres://postgres@${server.getServerConn()}/postgres`,
      poolSize: 1,
      async close() {
        await server.stop();
        await db.close();
      },
    };
  }
  const name = `bo_pkg_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    kind: `PostgreSQL database ${name}`,
    url: url.toString(),
    poolSize: 5,
    async close() {
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}

// ---- the host app -------------------------------------------------------------------------------------------

/** Starts `node dist/main.js` and resolves with its URL once it logs the listening line. */
function startHostApp(cwd, env) {
  const child = spawn(process.execPath, ['dist/main.js'], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no "listening" line within 60 s')), 60_000);
    const onData = (data) => {
      output += data;
      const match = /host-app listening on (http:\/\/\S+) \((\w+)\)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1].replace('localhost', '127.0.0.1'), platform: match[2] });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (output += d));
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`exited early (${code ?? signal})`));
    });
  });
  return { child, ready, exited, output: () => output };
}

/** A cookie-keeping HTTP client that sends the XSRF header on state-changing requests, as a browser app would. */
class Browser {
  cookies = new Map();
  constructor(baseUrl) {
    this.baseUrl = baseUrl;
  }
  async request(method, path, body) {
    const headers = {};
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (method !== 'GET' && this.cookies.has('XSRF-TOKEN')) headers['x-xsrf-token'] = decodeURIComponent(this.cookies.get('XSRF-TOKEN'));
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair, ...attributes] = cookie.split(';');
      const name = pair.slice(0, pair.indexOf('=')).trim();
      const value = pair.slice(pair.indexOf('=') + 1).trim();
      if (!value || attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await response.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, body: json, text };
  }
  get(path) {
    return this.request('GET', path);
  }
  post(path, body) {
    return this.request('POST', path, body);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(predicate, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await predicate()) return true;
    await sleep(100);
  }
  return predicate();
}
const filesIn = (dir) => (existsSync(dir) ? readdirSync(dir) : []);
const short = (value) => JSON.stringify(value)?.slice(0, 300);

// ---- the README's host-app code -------------------------------------------------------------------------------

/** The README's ```ts blocks (top level), each with the first line of the paragraph before it and its section. */
function readmeTsBlocks(readme) {
  const lines = readme.split('\n');
  const blocks = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)```(\S*)/.exec(lines[i]);
    if (!fence) {
      if (/^#{1,6} /.test(lines[i])) heading = lines[i].replace(/^#+ /, '');
      continue;
    }
    let end = i + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end])) end++;
    if (fence[1] === '' && fence[2] === 'ts') {
      let p = i - 1;
      while (p >= 0 && lines[p].trim() === '') p--;
      while (p > 0 && lines[p - 1].trim() !== '') p--;
      blocks.push({ heading, label: lines[p] ?? '', code: lines.slice(i + 1, end), line: i + 1 });
    }
    i = end;
  }
  return blocks;
}

/** Whether every non-blank line of `excerpt` appears in `file`, in order (an excerpt keeps whole lines). */
function missingExcerptLine(excerpt, file) {
  const fileLines = file.split('\n').map((l) => l.trimEnd());
  let at = 0;
  for (const line of excerpt.map((l) => l.trimEnd()).filter((l) => l.trim() !== '')) {
    const found = fileLines.indexOf(line, at);
    if (found < 0) return line;
    at = found + 1;
  }
  return undefined;
}

/**
 * "Use it in your app" says its blocks are the code of examples/host-app: a block labelled `src/<file>` (whole or
 * an excerpt) must be that file's lines, in order, so the strict build above compiled it. The blocks that are not
 * the example's (the simplified `src/main.ts`, the Fastify bootstrap, "Swap the user manager") are compiled here
 * beside the example's other files, against the installed tarball.
 */
async function checkReadmeHostCode(app, tsc) {
  const blocks = readmeTsBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  const snippets = join(app, 'readme-snippets');
  mkdirSync(snippets);
  for (const file of readdirSync(join(app, 'src'))) cpSync(join(app, 'src', file), join(snippets, file));
  const compiled = [];
  for (const block of blocks) {
    const label = /^`src\/([\w.-]+\.ts)`(?: \((excerpt|simplified)\))?/.exec(block.label);
    if (!label) continue;
    const [, name, kind] = label;
    if (kind === 'simplified') {
      writeFileSync(join(snippets, name), `${block.code.join('\n')}\n`);
      compiled.push(`src/${name} (README line ${block.line})`);
      continue;
    }
    const example = join(EXAMPLE, 'src', name);
    const missing = existsSync(example) ? missingExcerptLine(block.code, readFileSync(example, 'utf8')) : '(no such file)';
    check(`README's src/${name}${kind ? ` (${kind})` : ''} is examples/host-app's code`, missing === undefined, missing === undefined ? '' : `README line ${block.line}: ${missing}`);
  }
  const sections = [
    ['Fastify', 'main-fastify.ts'],
    ['Swap the user manager', 'swap-user-manager.mts'], // top-level await: an ES module
  ];
  for (const [heading, name] of sections) {
    const block = blocks.find((b) => b.heading === heading);
    if (!check(`README section "${heading}" has a TypeScript block`, block)) continue;
    writeFileSync(join(snippets, name), `${block.code.join('\n')}\n`);
    compiled.push(`"${heading}" (README line ${block.line})`);
  }
  // The host's strict settings; unused names are fine in a snippet, and the libraries' types were checked above.
  const compilerOptions = { rootDir: '.', noEmit: true, noUnusedLocals: false, noUnusedParameters: false, skipLibCheck: true };
  writeFileSync(join(snippets, 'tsconfig.json'), JSON.stringify({ extends: '../tsconfig.json', compilerOptions, include: ['*.ts', '*.mts'] }));
  const result = await run(process.execPath, [tsc, '-p', join(snippets, 'tsconfig.json')], { cwd: app });
  check(`README blocks compile (strict) in the host app: ${compiled.join(', ')}`, result.code === 0, result.code === 0 ? '' : tail(`${result.stdout}\n${result.stderr}`, 20));
}

// ---- the test -----------------------------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'bo-package-test-'));
let database;
let host;

async function main() {
  section('build and pack the library');
  must('npm run build:lib', (await step('build:lib', 'npm', ['run', 'build:lib', '--silent'])).code === 0);
  const packDir = join(work, 'pack');
  mkdirSync(packDir);
  const packed = await step('npm pack', 'npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir]);
  must('npm pack succeeded', packed.code === 0);
  const [pack] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
  const tarball = join(packDir, pack.filename);
  const files = pack.files.map((f) => f.path);
  const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
  console.log(`  tarball ${pack.filename}: ${kib(pack.size)} packed, ${kib(pack.unpackedSize)} unpacked, ${pack.entryCount} files`);

  section('tarball contents');
  const forbidden = files.filter(
    (f) =>
      /(^|\/)(demo|test|tests|bench|examples|\.data|node_modules|coverage|src|\.ci)\//.test(f) ||
      /(^|\/)dist\//.test(f) ||
      /\.(tgz|tsbuildinfo|env)$/.test(f) ||
      /\.spec\.|\.test\./.test(f) ||
      (/\.ts$/.test(f) && !/\.d\.ts$/.test(f)),
  );
  check('no demo, test, bench, example, .data, dist/ or TypeScript sources', forbidden.length === 0, forbidden.slice(0, 10).join(', '));
  const outside = files.filter((f) => !f.startsWith('dist-lib/') && !['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md'].includes(f));
  check('only dist-lib/, package.json, README.md, LICENSE, CHANGELOG.md', outside.length === 0, outside.join(', '));
  for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist-lib/index.js', 'dist-lib/index.d.ts', 'dist-lib/index.js.map']) {
    check(`has ${f}`, files.includes(f));
  }
  const js = files.filter((f) => f.endsWith('.js'));
  const missingDts = js.filter((f) => !files.includes(f.replace(/\.js$/, '.d.ts')));
  const missingMap = js.filter((f) => !files.includes(`${f}.map`));
  check(`every .js has its .d.ts and .js.map (${js.length} modules)`, js.length > 0 && !missingDts.length && !missingMap.length, [...missingDts, ...missingMap].slice(0, 5).join(', '));
  const sourceMigrations = readdirSync(join(ROOT, 'src/backoffice-identity/persistence/typeorm/migrations')).filter((f) => /^\d+-.*\.ts$/.test(f));
  const packedMigrations = files.filter((f) => /^dist-lib\/persistence\/typeorm\/migrations\/\d+-.*\.js$/.test(f));
  check(`has the compiled migrations (${packedMigrations.length} of ${sourceMigrations.length})`, sourceMigrations.length > 0 && packedMigrations.length === sourceMigrations.length);
  const indexMap = JSON.parse(readFileSync(join(ROOT, 'dist-lib/index.js.map'), 'utf8'));
  check('source maps carry their sources (inlineSources)', Array.isArray(indexMap.sourcesContent) && indexMap.sourcesContent.every(Boolean));
  const optionsDts = readFileSync(join(ROOT, 'dist-lib/options/backoffice-identity-options.interface.d.ts'), 'utf8');
  const withoutComments = (text) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  check('no `any` in the generated option types (.d.ts)', !/\bany\b/.test(withoutComments(optionsDts)));
  const dtsWithAny = files
    .filter((f) => f.endsWith('.d.ts'))
    .filter((f) => /\bany\b/.test(withoutComments(readFileSync(join(ROOT, f), 'utf8'))));
  if (dtsWithAny.length) console.log(`  note: \`any\` still appears in ${dtsWithAny.join(', ')}`);
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const peers = Object.keys(manifest.peerDependencies ?? {});
  const peerAlsoProd = peers.filter((p) => manifest.dependencies?.[p]);
  check('Nest, TypeORM, reflect-metadata and rxjs are peer dependencies only', peers.length >= 9 && !peerAlsoProd.length, peerAlsoProd.join(', '));

  section('install the tarball into a copy of examples/host-app');
  const app = join(work, 'host-app');
  cpSync(EXAMPLE, app, { recursive: true, filter: (src) => !/(^|[\\/])(node_modules|dist|\.data)([\\/]|$)/.test(relative(EXAMPLE, src)) });
  const appPackage = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
  appPackage.dependencies['backoffice-identity'] = `file:${tarball}`;
  writeFileSync(join(app, 'package.json'), `${JSON.stringify(appPackage, null, 2)}\n`);
  const install = await step('npm install (tarball + host dependencies)', 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app });
  must('host app installed', install.code === 0);
  const installed = join(app, 'node_modules', 'backoffice-identity');
  check('installed backoffice-identity is the packed version', JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).version === manifest.version);
  const nested = peers.filter((p) => existsSync(join(installed, 'node_modules', ...p.split('/'))));
  check('one copy of each peer: none nested under backoffice-identity/node_modules', nested.length === 0, nested.join(', '));
  const ls = await run('npm', ['ls', '@nestjs/common', '@nestjs/core', 'typeorm', '--all', '--parseable'], { cwd: app });
  const copies = [...new Set(ls.stdout.split('\n').filter(Boolean).map((p) => relative(app, p)))];
  check('a single @nestjs/common, @nestjs/core and typeorm in the host app', copies.length === 3, copies.join(', '));

  section('type-check (strict) and build the host app');
  const tsconfig = JSON.parse(readFileSync(join(app, 'tsconfig.json'), 'utf8'));
  check('host tsconfig has strict: true and skipLibCheck: false', tsconfig.compilerOptions.strict === true && tsconfig.compilerOptions.skipLibCheck === false);
  const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc');
  // --incremental: the build after the check only emits (the check's results are kept in the build info file).
  const incremental = ['--incremental', '--tsBuildInfoFile', join(work, 'host-app.tsbuildinfo')];
  must('tsc --noEmit', (await step('tsc --noEmit (strict)', process.execPath, [tsc, '--noEmit', '-p', 'tsconfig.json', ...incremental], { cwd: app })).code === 0);
  must('host build', (await step('npm run build', 'npm', ['run', 'build', '--silent', '--', ...incremental], { cwd: app })).code === 0);

  section("the README's code for a host app, against the tarball");
  await checkReadmeHostCode(app, tsc);

  section('the host app\'s own test on the in-memory stores (no database)');
  const hostTestEnv = childEnv();
  delete hostTestEnv.DATABASE_URL;
  await step('host test on InMemoryBackOfficeStores, no database (npm test: node:test)', 'npm', ['test', '--silent'], { cwd: app, env: hostTestEnv });

  section('start the host app');
  database = await openDatabase();
  console.log(`  database: ${database.kind}`);
  const pickupDir = join(work, 'mail-pickup');
  const admin = { email: 'admin@host.example', password: 'correct horse battery staple' };
  const endSessionUrl = 'https://login.example.com/oidc/logout';
  const hostEnv = {
    PORT: '0',
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: String(database.poolSize),
    PUBLIC_URL: 'http://cms.host.example',
    END_SESSION_URL: endSessionUrl,
    MAIL_PICKUP_DIR: pickupDir,
    BCRYPT_COST: '4',
    COMPANY_NAME: 'acme',
    BACKOFFICE_ADMIN_EMAIL: admin.email,
    BACKOFFICE_ADMIN_PASSWORD: admin.password,
    BACKOFFICE_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  };
  host = startHostApp(app, hostEnv);
  const url = await hostUrl('express');
  check('host app starts on Express, runs the migrations and creates the first admin', /first admin created/.test(host.output()), url);

  section('drive it over HTTP');
  const browser = new Browser(url);
  const anonymous = await new Browser(url).get('/dashboard');
  check('host route without a session: 401 unauthenticated', anonymous.status === 401 && anonymous.body?.code === 'unauthenticated', `${anonymous.status} ${short(anonymous.body)}`);
  const login = await browser.post('/backoffice/auth/login', { username: admin.email, password: admin.password });
  must('login as the first admin', login.status === 200 && login.body?.status === 'success', `${login.status} ${short(login.body)}`);
  const dashboard = await browser.get('/dashboard');
  check(
    'protected host route with @CurrentBackOfficeUser()',
    dashboard.status === 200 && dashboard.body?.email === admin.email && dashboard.body?.groups?.includes('admin'),
    `${dashboard.status} ${short(dashboard.body)}`,
  );
  const signInPage = await fetch(`${url}/backoffice/`);
  const signInHtml = await signInPage.text();
  const sessionJs = await fetch(`${url}/backoffice/assets/session.js`);
  check(
    'the sign-in page and its assets are served from the tarball (strict CSP)',
    signInPage.status === 200 && /<button type="submit">Sign in<\/button>/.test(signInHtml) &&
      /frame-ancestors 'none'/.test(signInPage.headers.get('content-security-policy') ?? '') &&
      sessionJs.status === 200 && /BackOfficeSession/.test(await sessionJs.text()),
    `${signInPage.status} ${sessionJs.status}`,
  );
  const openapi = await browser.get('/backoffice/openapi.json');
  check('OpenAPI document lists the module and the host routes', openapi.status === 200 && openapi.body?.paths?.['/backoffice/auth/login'] && openapi.body?.paths?.['/dashboard']);

  const invitee = 'new.editor@host.example';
  const invite = await browser.post('/backoffice/users/invite', { email: invitee, name: 'New Editor', groups: ['editor'] });
  check('POST /backoffice/users/invite: 201, state invited', invite.status === 201 && invite.body?.user?.state === 'invited', `${invite.status} ${short(invite.body)}`);
  const sent = await browser.get('/dashboard/sent-invites');
  const message = sent.body?.items?.find((m) => m.to === invitee);
  check("the host's SendEmail listener handled the invite", sent.status === 200 && message !== undefined, `${sent.status} ${short(sent.body)}`);
  await sleep(500);
  check('no default email was written for the handled invite (pickup folder empty)', filesIn(pickupDir).length === 0, filesIn(pickupDir).join(', '));

  // Control: emails the host does not handle still reach the default sender, so the empty folder above means something.
  const forgot = await browser.post('/backoffice/auth/forgot-password', { email: admin.email });
  const written = await waitFor(() => filesIn(pickupDir).some((f) => f.endsWith('.eml')), 10_000);
  check('an unhandled email (password reset) goes to the default sender: one .eml in the pickup folder', forgot.status === 202 && written, `${forgot.status}, ${filesIn(pickupDir).length} file(s)`);

  const fragment = /#(userId=[^\s"<>]+)/.exec(message?.text ?? '')?.[1];
  const params = new URLSearchParams(fragment ?? '');
  const accept = (password) => new Browser(url).post('/backoffice/auth/invite/accept', { userId: params.get('userId'), token: params.get('token'), password });
  const refused = await accept('acme rocks and so do we all');
  check(
    "the custom manager's password rule applies (invite accept with the company name: 400)",
    refused.status === 400 && refused.body?.errors?.some((e) => e.code === 'password_contains_company_name'),
    `${refused.status} ${short(refused.body)}`,
  );
  const accepted = await accept('a long and unusual passphrase 42');
  check('invite accepted with a good password: signed in, state active', accepted.status === 200 && accepted.body?.user?.state === 'active', `${accepted.status} ${short(accepted.body)}`);

  const logout = await browser.post('/backoffice/auth/logout');
  const expected = `${endSessionUrl}?post_logout_redirect_uri=${encodeURIComponent('http://cms.host.example')}`;
  check("logout returns the host listener's signOutRedirectUrl", logout.status === 200 && logout.body?.signOutRedirectUrl === expected, `${logout.status} ${short(logout.body)}`);
  const after = await browser.get('/dashboard');
  check('after logout the host route answers 401', after.status === 401, String(after.status));

  section('the CLI from the tarball: import-users, then sign in with the imported hashes');
  const bin = join(app, 'node_modules', '.bin', 'backoffice-identity');
  check('the package bin is linked (node_modules/.bin/backoffice-identity)', existsSync(bin));
  const help = await run(bin, ['--help'], { cwd: app });
  check('backoffice-identity --help prints the usage', help.code === 0 && /import-users <file>/.test(help.stdout), `exit ${help.code} ${tail(help.stderr, 5)}`);
  const usersFile = join(work, 'imported-users.jsonl');
  const vectors = [
    ['aspnet-identity', 'AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHw', 'my password'],
    ['umbraco-hmacsha256', 'uB/pLEhhe1W7EtWMv/pSgg==1y8+aso9+h3AKRtJXlVYeg2TZKJUr64hccj82ZZ7Ksk=', 'Umbraco9Rocks!'],
  ];
  writeFileSync(usersFile, vectors.map(([passwordFormat, passwordHash], i) => JSON.stringify({ email: `imported${i}@host.example`, name: `Imported ${i}`, groups: ['editor'], passwordFormat, passwordHash })).join('\n'));
  const imported = await run(bin, ['import-users', usersFile, '--database-url', database.url], { cwd: app });
  check('backoffice-identity import-users imports the file', imported.code === 0 && /created 2, updated 0, skipped 0, invalid 0/.test(imported.stdout), `exit ${imported.code} ${tail(`${imported.stdout}\n${imported.stderr}`, 8)}`);
  for (const [i, [, , oldPassword]] of vectors.entries()) {
    const signIn = await new Browser(url).post('/backoffice/auth/login', { username: `imported${i}@host.example`, password: oldPassword });
    check(`imported user ${i} signs in with the old password`, signIn.status === 200, `${signIn.status} ${short(signIn.body)}`);
  }

  await stopHost('Express');

  section('the same host app on Fastify (HTTP_PLATFORM=fastify), same database');
  host = startHostApp(app, { ...hostEnv, HTTP_PLATFORM: 'fastify' });
  const fastifyUrl = await hostUrl('fastify');
  const onFastify = new Browser(fastifyUrl);
  const fastifyAnonymous = await new Browser(fastifyUrl).get('/dashboard');
  check('Fastify: host route without a session: 401 unauthenticated', fastifyAnonymous.status === 401 && fastifyAnonymous.body?.code === 'unauthenticated', `${fastifyAnonymous.status} ${short(fastifyAnonymous.body)}`);
  const fastifyLogin = await onFastify.post('/backoffice/auth/login', { username: admin.email, password: admin.password });
  must('Fastify: login (passport-local) sets the session and XSRF cookies', fastifyLogin.status === 200 && onFastify.cookies.has('backoffice_session') && onFastify.cookies.has('XSRF-TOKEN'), `${fastifyLogin.status} ${short(fastifyLogin.body)}`);
  const fastifyDashboard = await onFastify.get('/dashboard');
  check('Fastify: protected host route with @CurrentBackOfficeUser()', fastifyDashboard.status === 200 && fastifyDashboard.body?.email === admin.email, `${fastifyDashboard.status} ${short(fastifyDashboard.body)}`);
  const badJson = await onFastify.request('POST', '/backoffice/auth/change-password', '{"currentPassword":');
  check('Fastify: a malformed body gets the module\'s error shape (400 malformed_json)', badJson.status === 400 && badJson.body?.code === 'malformed_json', `${badJson.status} ${short(badJson.body)}`);
  const fastifyLogout = await onFastify.post('/backoffice/auth/logout');
  check("Fastify: logout (XSRF header) returns the host listener's signOutRedirectUrl", fastifyLogout.status === 200 && fastifyLogout.body?.signOutRedirectUrl === expected, `${fastifyLogout.status} ${short(fastifyLogout.body)}`);
  const fastifyAfter = await onFastify.get('/dashboard');
  check('Fastify: after logout the host route answers 401', fastifyAfter.status === 401, String(fastifyAfter.status));
  await stopHost('Fastify');
}

/** The URL of the starting host app, once it says it listens on `platform`. */
async function hostUrl(platform) {
  try {
    const started = await host.ready;
    must(`host app listens on ${platform}`, started.platform === platform, started.platform);
    return started.url;
  } catch (error) {
    if (error instanceof Abort) throw error;
    console.log(tail(host.output(), 60));
    must(`host app starts on ${platform} (${error.message})`, false);
  }
}

async function stopHost(platform) {
  section(`shut down (${platform})`);
  host.child.kill('SIGTERM');
  const exit = await Promise.race([host.exited, sleep(15_000).then(() => ({ code: 'timeout' }))]);
  // Nest's enableShutdownHooks() closes the app, then re-raises the signal: exit 0 or "killed by SIGTERM" both are clean.
  check(`host app on ${platform} shuts down on SIGTERM`, exit.code === 0 || exit.signal === 'SIGTERM', JSON.stringify(exit));
  host = undefined;
}

let crashed;
try {
  await main();
} catch (error) {
  if (!(error instanceof Abort)) {
    crashed = error;
    check(`unexpected error: ${error?.stack ?? error}`, false);
  }
} finally {
  if (host) {
    host.child.kill('SIGKILL');
    await host.exited;
  }
  try {
    await database?.close();
  } catch (error) {
    check(`drop the test database (${error.message})`, false);
  }
  if (process.env.KEEP_PACKAGE_TEST_DIR === '1') console.log(`\nkept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

const failed = results.filter((r) => !r.ok).length;
console.log(`\npackage test took ${((Date.now() - started) / 1000).toFixed(1)}s`);
console.log(`package test: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed || crashed ? 1 : 0);
