import { gzipSync } from 'node:zlib';
import { CapturingLogger } from '../support/capturing-logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp, type TestHttpPlatform } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { rawHttp, rawRequest, type RawHttpAnswer } from '../support/raw-http.js';

/** The headers whose values must be the same on both platforms (besides `Set-Cookie`, compared by attributes). */
const COMPARED_HEADERS = [
  'content-type', 'cache-control', 'pragma', 'x-content-type-options', 'content-security-policy', 'x-frame-options', 'referrer-policy',
  'x-powered-by', 'allow', 'retry-after', 'www-authenticate', 'location', 'link', 'vary', 'cross-origin-opener-policy',
];
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z/g;

/** What must not depend on the platform: status, the compared headers, the cookies' attributes, the body (ids and times aside). */
function comparable(answer: RawHttpAnswer) {
  const headers: Record<string, string> = {};
  for (const name of COMPARED_HEADERS) {
    if (answer.headers[name]) headers[name] = answer.headers[name].join(', ').toLowerCase().replace(/;\s*charset=utf-8/, '');
  }
  const cookies = (answer.headers['set-cookie'] ?? [])
    .map((cookie) => cookie.replace(/=[^;]*/, '=<value>').replace(/Max-Age=\d+/i, 'Max-Age=<n>').replace(/Expires=[^;]*/i, 'Expires=<date>'))
    .sort();
  // `GET /audit`'s cursor encodes an entry's time
  let body: unknown = answer.body.replace(UUID, '<id>').replace(TIME, '<time>').replace(/"nextCursor":"[^"]*"/g, '"nextCursor":"<cursor>"');
  try {
    body = JSON.parse(body as string);
  } catch {
    // not JSON: compared as text
  }
  return { status: answer.status, headers, cookies, body };
}

/** An error of the module: 4xx JSON `{ statusCode, code, message, errors? }` with the security headers, no stack trace. */
function expectModuleError(name: string, answer: RawHttpAnswer, head = false): void {
  expect(answer.status, `${name}: ${answer.body}`).toBeGreaterThanOrEqual(400);
  expect(answer.status, `${name}: ${answer.body}`).toBeLessThan(500);
  expect(answer.headers['content-type']?.[0], name).toMatch(/^application\/json/);
  expect(answer.headers['cache-control']?.[0], name).toBe('no-store');
  expect(answer.headers['x-content-type-options']?.[0], name).toBe('nosniff');
  if (head) return;
  const body = JSON.parse(answer.body);
  expect(body.statusCode, name).toBe(answer.status);
  expect(body.code, name).toMatch(/^[a-z_]+$/);
  expect(typeof body.message, name).toBe('string');
  expect(answer.body, name).not.toMatch(/\bat .*\.(js|ts):\d+|node_modules/);
}

interface PlatformApp {
  platform: TestHttpPlatform;
  app: IdentityApp;
  db: TestDatabase;
  logger: CapturingLogger;
  /** Cookie and XSRF header lines of a signed-in admin. */
  auth: string[];
}

type Case = [name: string, request: (p: PlatformApp) => Buffer];

const J = 'Content-Type: application/json';
const LOGIN = JSON.stringify({ username: 'nobody@example.com', password: 'wrong password' });
const sized = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n0\r\n\r\n`;

/**
 * The same raw requests (malformed ones included, sent byte for byte) to one app on Express and one on Fastify, each on
 * its own database in the same state: the answers of the module's routes must not depend on the platform the host
 * picked. What the platforms answer differently by design is listed in the README's Fastify section and checked
 * below to be a clean 4xx at least.
 */
describe('HTTP parity: the same raw requests get the same answers on Express and Fastify', () => {
  const apps: PlatformApp[] = [];

  beforeAll(async () => {
    for (const platform of ['express', 'fastify'] as const) {
      const db = await createTestDatabase();
      const logger = new CapturingLogger();
      const app = await createIdentityApp(db, {
        platform,
        logger,
        identity: { rateLimits: { enabled: false }, lockout: { maxFailedAccessAttempts: 1000, durationMinutes: 5 } },
      });
      const admin = await userFactory(() => app, 'parity-')({ groups: ['admin'] });
      const http = new HttpClient(app.url);
      expect((await http.login(admin.email, TEST_PASSWORD)).status).toBe(200);
      apps.push({ platform, app, db, logger, auth: [`Cookie: ${http.cookieHeader()}`, `X-XSRF-Token: ${http.cookies.get('XSRF-TOKEN')}`] });
    }
  });
  afterAll(async () => {
    for (const { app, db } of apps) {
      await app.close();
      await db.drop();
    }
  });

  /** Sends each case to both apps (in order on each, both apps at once) and gives the two answers per case. */
  async function both(cases: Case[]): Promise<Array<{ name: string; express: RawHttpAnswer; fastify: RawHttpAnswer }>> {
    const [express, fastify] = await Promise.all(
      apps.map(async (p) => {
        const answers: RawHttpAnswer[] = [];
        for (const [, request] of cases) answers.push(await rawHttp(p.app.url, request(p)));
        return answers;
      }),
    );
    return cases.map(([name], i) => ({ name, express: express[i], fastify: fastify[i] }));
  }

  it('the two apps run on the two platforms', () => {
    expect(apps.map((p) => p.app.app.getHttpAdapter().getType())).toEqual(['express', 'fastify']);
  });

  it('methods, paths, query strings, bodies and headers: same status, code, error shape, security headers and cookie attributes', async () => {
    const cases: Case[] = [
      // methods on module routes
      ['HEAD /auth/me signed in', (p) => rawRequest('HEAD', '/backoffice/auth/me', { headers: p.auth })],
      ['HEAD /auth/me signed out', () => rawRequest('HEAD', '/backoffice/auth/me')],
      ['HEAD /auth/login', () => rawRequest('HEAD', '/backoffice/auth/login')],
      ['HEAD a page', () => rawRequest('HEAD', '/backoffice/account')],
      ['HEAD an asset', () => rawRequest('HEAD', '/backoffice/assets/session.js')],
      ['OPTIONS /auth/login', () => rawRequest('OPTIONS', '/backoffice/auth/login')],
      ['OPTIONS /auth/me', () => rawRequest('OPTIONS', '/backoffice/auth/me')],
      ['GET /auth/login', () => rawRequest('GET', '/backoffice/auth/login')],
      ['PUT /auth/login', () => rawRequest('PUT', '/backoffice/auth/login', { headers: [J], body: LOGIN })],
      ['PATCH /auth/login', () => rawRequest('PATCH', '/backoffice/auth/login', { headers: [J], body: LOGIN })],
      ['PROPFIND /auth/login', () => rawRequest('PROPFIND', '/backoffice/auth/login')],
      ['TRACE /auth/login', () => rawRequest('TRACE', '/backoffice/auth/login')],
      ['GET /auth/token', () => rawRequest('GET', '/backoffice/auth/token')],
      ['POST an asset', () => rawRequest('POST', '/backoffice/assets/session.js', { headers: [J], body: '{}' })],
      // paths
      ['unknown path', () => rawRequest('GET', '/backoffice/nothing-here')],
      ['unknown path, POST with JSON', () => rawRequest('POST', '/backoffice/nothing-here', { headers: [J], body: LOGIN })],
      ['unknown path, POST text/plain', () => rawRequest('POST', '/backoffice/nothing-here', { headers: ['Content-Type: text/plain'], body: 'x' })],
      ['unknown path, malformed JSON', () => rawRequest('POST', '/backoffice/nothing-here', { headers: [J], body: '{"a' })],
      ['double slash inside', (p) => rawRequest('GET', '/backoffice//auth/me', { headers: p.auth })],
      ['dot-dot segment', (p) => rawRequest('GET', '/backoffice/x/../auth/me', { headers: p.auth })],
      ['dot segment', (p) => rawRequest('GET', '/backoffice/./auth/me', { headers: p.auth })],
      ['percent-encoded dot-dot', (p) => rawRequest('GET', '/backoffice/x/%2e%2e/auth/me', { headers: p.auth })],
      ['percent-encoded slash', (p) => rawRequest('GET', '/backoffice/auth%2Fme', { headers: p.auth })],
      ['matrix parameter', (p) => rawRequest('GET', '/backoffice/auth/me;x=1', { headers: p.auth })],
      ['NUL escape', () => rawRequest('GET', '/backoffice/auth/me%00')],
      ['absolute-form target', (p) => rawRequest('GET', 'http://127.0.0.1/backoffice/auth/me', { headers: p.auth })],
      ['id that is not a UUID', (p) => rawRequest('GET', '/backoffice/users/not-a-uuid', { headers: p.auth })],
      ['id ..', (p) => rawRequest('GET', '/backoffice/users/..', { headers: p.auth })],
      // query strings
      ['query string on POST /auth/login', () => rawRequest('POST', '/backoffice/auth/login?username=a&password=b', { headers: [J], body: LOGIN })],
      ['prototype keys in the query', (p) => rawRequest('GET', '/backoffice/users?__proto__[x]=1&constructor[prototype][y]=1', { headers: p.auth })],
      ['repeated query key', (p) => rawRequest('GET', '/backoffice/users?offset=1&offset=2', { headers: p.auth })],
      ['nested query key', (p) => rawRequest('GET', '/backoffice/users?filter[a]=1', { headers: p.auth })],
      // a fragment in the request target (RFC 9112 3.2: none; browsers never send one): Express's URL parser cut it off, Fastify's query parser kept it in the value
      ['fragment after the query', (p) => rawRequest('GET', '/backoffice/users?take=1#frag', { headers: p.auth })],
      ['fragment after the path', (p) => rawRequest('GET', '/backoffice/auth/me#frag', { headers: p.auth })],
      ['fragment in a paged list', (p) => rawRequest('GET', '/backoffice/audit?take=1#x', { headers: p.auth })],
      // a fragment before any `?` (`#?take=1`): Express read it all as the fragment (default page), Fastify's router cut the path at `#` but its query parser still read `take=1`
      ['fragment holding the query', (p) => rawRequest('GET', '/backoffice/audit#?take=1', { headers: p.auth })],
      ['fragment holding the query of a user list', (p) => rawRequest('GET', '/backoffice/users#?take=1', { headers: p.auth })],
      ['deeply nested query key', (p) => rawRequest('GET', `/backoffice/users?a${'[b]'.repeat(50)}=1`, { headers: p.auth })],
      // the paged lists: a value given twice, as an array or as an object, and the next page's `Link`
      ...['/backoffice/auth/sessions', '/backoffice/users/api', '/backoffice/groups', '/backoffice/audit'].flatMap((list): Case[] => [
        ...['skip=1&skip=2', 'take=1&take=2', 'take[]=1', 'take[a]=1', 'skip[]=0', 'take=', 'take=1e2', 'take=0x10', 'skip=10000&take=1000'].map(
          (query): Case => [`${list}?${query}`, (p) => rawRequest('GET', `${list}?${query}`, { headers: p.auth })],
        ),
        [`${list}?take=1 (Link)`, (p) => rawRequest('GET', `${list}?take=1`, { headers: p.auth })],
        [`//${list}?take=1 (Link)`, (p) => rawRequest('GET', `${list.replace('/backoffice/', '/backoffice//')}?take=1`, { headers: p.auth })],
        [`HEAD ${list}?take=1`, (p) => rawRequest('HEAD', `${list}?take=1`, { headers: p.auth })],
        [`OPTIONS ${list}`, (p) => rawRequest('OPTIONS', list, { headers: p.auth })],
      ]),
      ['HEAD a page with a query', () => rawRequest('HEAD', '/backoffice/reset-password?token=a&token=b')],
      ['OPTIONS a page', () => rawRequest('OPTIONS', '/backoffice/account', { headers: ['Origin: https://evil.example', 'Access-Control-Request-Method: GET'] })],
      ['a page, token as an object', () => rawRequest('GET', '/backoffice/accept-invite?token[a]=abc')],
      // content types
      ['JSON in Latin-1', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: application/json; charset=latin1'], body: LOGIN })],
      ['application/JSON', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: application/JSON'], body: LOGIN })],
      ['application/vnd.api+json', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: application/vnd.api+json'], body: LOGIN })],
      ['no Content-Type', () => rawRequest('POST', '/backoffice/auth/login', { body: LOGIN })],
      ['empty Content-Type', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: '], body: LOGIN })],
      ['multipart', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: multipart/form-data; boundary=x'], body: '--x\r\nContent-Disposition: form-data; name="username"\r\n\r\na\r\n--x--\r\n' })],
      ['text/plain', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: text/plain'], body: LOGIN })],
      ['JSON with another parameter', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: application/json; foo=bar'], body: LOGIN })],
      ['JSON with empty parameters', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: application/json;;;'], body: LOGIN })],
      ['JSON in UTF-16', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: application/json; charset=utf-16'], body: LOGIN })],
      // content codings
      ['gzip', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Content-Encoding: gzip'], body: gzipSync(LOGIN) })],
      ['br that is not Brotli', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Content-Encoding: br'], body: LOGIN })],
      ['unknown coding', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Content-Encoding: x-unknown'], body: LOGIN })],
      ['identity coding', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Content-Encoding: identity'], body: LOGIN })],
      // framing and sizes
      ['chunked', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Transfer-Encoding: chunked'], body: sized(LOGIN) })],
      ['empty JSON, Content-Length: 0', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Content-Length: 0'] })],
      ['empty JSON, no framing', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J] })],
      ['empty, no Content-Type', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Length: 0'] })],
      ['empty JSON in Latin-1', () => rawRequest('POST', '/backoffice/auth/login', { headers: ['Content-Type: application/json; charset=latin1', 'Content-Length: 0'] })],
      ['empty gzip', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Content-Encoding: gzip', 'Content-Length: 0'] })],
      ['empty JSON on PUT /auth/me', (p) => rawRequest('PUT', '/backoffice/auth/me', { headers: [...p.auth, J, 'Content-Length: 0'] })],
      ['empty form on PUT /auth/me', (p) => rawRequest('PUT', '/backoffice/auth/me', { headers: [...p.auth, 'Content-Type: application/x-www-form-urlencoded', 'Content-Length: 0'] })],
      ['empty JSON on POST /auth/token', () => rawRequest('POST', '/backoffice/auth/token', { headers: [J, 'Content-Length: 0'] })],
      ['body over the limit, Content-Length', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: JSON.stringify({ username: 'x'.repeat(2_000_000), password: 'p' }) })],
      ['body over the limit, chunked', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Transfer-Encoding: chunked'], body: sized(JSON.stringify({ username: 'x'.repeat(2_000_000), password: 'p' })) })],
      ['JSON body on GET', (p) => rawRequest('GET', '/backoffice/auth/me', { headers: [...p.auth, J], body: '{"a":1}' })],
      ['text body on GET', (p) => rawRequest('GET', '/backoffice/auth/me', { headers: [...p.auth, 'Content-Type: text/plain'], body: 'x' })],
      // JSON edge cases
      ['5,000 levels of arrays', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: `{"username":${'['.repeat(5000)}${']'.repeat(5000)},"password":"x"}` })],
      ['byte order mark', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: `\ufeff${LOGIN}` })],
      ['duplicate keys', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: '{"username":"a@example.com","username":"b@example.com","password":"x"}' })],
      ['1e400', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: '{"username":1e400,"password":"x"}' })],
      ['lone surrogate', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: '{"username":"\\ud800","password":"x"}' })],
      // JSON that is no object or array (Express's parser refuses it in strict mode, before any guard) on routes that need a session, signed out
      ...['null', ' "x"', '1', 'true'].flatMap((json): Case[] => [
        [`${json} to PUT /auth/me signed out`, () => rawRequest('PUT', '/backoffice/auth/me', { headers: [J], body: json })],
        [`${json} to POST /users/import signed out`, () => rawRequest('POST', '/backoffice/users/import', { headers: [J], body: json })],
        [`${json} to PUT /auth/me without the XSRF header`, (p) => rawRequest('PUT', '/backoffice/auth/me', { headers: [p.auth[0], J], body: json })],
      ]),
      ['whitespace only', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: '   ' })],
      ['trailing garbage', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: `${LOGIN}x` })],
      ['two JSON texts', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: LOGIN + LOGIN })],
      // token endpoint forms
      ['token: form', () => rawRequest('POST', '/backoffice/auth/token', { headers: ['Content-Type: application/x-www-form-urlencoded'], body: 'grant_type=client_credentials&client_id=a&client_secret=b' })],
      ['token: repeated grant_type', () => rawRequest('POST', '/backoffice/auth/token', { headers: ['Content-Type: application/x-www-form-urlencoded'], body: 'grant_type=client_credentials&grant_type=x&client_id=a&client_secret=b' })],
      ['token: bad escape', () => rawRequest('POST', '/backoffice/auth/token', { headers: ['Content-Type: application/x-www-form-urlencoded'], body: 'grant_type=%ZZ&client_id=a&client_secret=b' })],
      ['token: malformed Basic', () => rawRequest('POST', '/backoffice/auth/token', { headers: ['Content-Type: application/x-www-form-urlencoded', 'Authorization: Basic %%%'], body: 'grant_type=client_credentials' })],
      // forms: a byte order mark before the first field (Express's body-parser drops it while decoding) and empty names
      // (Express's `qs` skips them) read alike on both
      ['token: form with a byte order mark', () => rawRequest('POST', '/backoffice/auth/token', { headers: ['Content-Type: application/x-www-form-urlencoded'], body: '\ufeffgrant_type=client_credentials&client_id=a&client_secret=b' })],
      // an integer-like name after the marked one: Fastify's object lists it first, the mark stays on the field that came first
      ['token: form with a byte order mark, then an integer-like name', () => rawRequest('POST', '/backoffice/auth/token', { headers: ['Content-Type: application/x-www-form-urlencoded'], body: '\ufeffgrant_type=client_credentials&0=y' })],
      ['form with a byte order mark, then an integer-like name, on PUT /auth/me', (p) => rawRequest('PUT', '/backoffice/auth/me', { headers: [...p.auth, 'Content-Type: application/x-www-form-urlencoded'], body: '\ufeffname=Form%20Name&7=x' })],
      ['token: form with an empty name', () => rawRequest('POST', '/backoffice/auth/token', { headers: ['Content-Type: application/x-www-form-urlencoded'], body: '=x&grant_type=client_credentials&&client_id=a&client_secret=b' })],
      ['form with a byte order mark on PUT /auth/me', (p) => rawRequest('PUT', '/backoffice/auth/me', { headers: [...p.auth, 'Content-Type: application/x-www-form-urlencoded'], body: '\ufeffname=Form%20Name' })],
      ['form with an empty name on PUT /auth/me', (p) => rawRequest('PUT', '/backoffice/auth/me', { headers: [...p.auth, 'Content-Type: application/x-www-form-urlencoded'], body: '=x&name=Other%20Name' })],
      ['a byte order mark, then the same name again', (p) => rawRequest('PUT', '/backoffice/auth/me', { headers: [...p.auth, 'Content-Type: application/x-www-form-urlencoded'], body: '\ufeffname=a&name=b' })],
      ['the name the forms set', (p) => rawRequest('GET', '/backoffice/auth/me', { headers: p.auth })],
      // headers
      ['1,500 cookies', () => rawRequest('GET', '/backoffice/auth/me', { headers: [`Cookie: ${Array.from({ length: 1500 }, (_, i) => `c${i}=v`).join('; ')}`] })],
      ['malformed session cookie', () => rawRequest('GET', '/backoffice/auth/me', { headers: ['Cookie: backoffice_session=%E0%A4%A'] })],
      ['cookie header without pairs', () => rawRequest('GET', '/backoffice/auth/me', { headers: ['Cookie: ;;;=;backoffice_session'] })],
      ['Expect: 100-continue', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Expect: 100-continue'], body: LOGIN })],
      ['HTTP/1.0 without Host', () => rawRequest('GET', '/backoffice/auth/me', { version: 'HTTP/1.0', host: false })],
      ['HTTP/1.0 POST without Host', () => rawRequest('POST', '/backoffice/auth/login', { version: 'HTTP/1.0', host: false, headers: [J], body: LOGIN })],
      ['another Host', () => rawRequest('GET', '/backoffice/auth/me', { headers: ['Host: evil.example'] })],
      // pages and assets
      ['the UI', () => rawRequest('GET', '/backoffice')],
      ['a page', () => rawRequest('GET', '/backoffice/account')],
      ['an asset', () => rawRequest('GET', '/backoffice/assets/session.js')],
      ['an asset, Range', () => rawRequest('GET', '/backoffice/assets/session.js', { headers: ['Range: bytes=0-5'] })],
      // a page with a trailing slash: Express routes it to the page (non-strict routing), Fastify apart
      ...['/backoffice/', '/backoffice/two-factor/', '/backoffice/forgot-password/', '/backoffice/reset-password/', '/backoffice/accept-invite/', '/backoffice/confirm-email/', '/backoffice/account/'].flatMap((page): Case[] => [
        [`${page} (trailing slash)`, () => rawRequest('GET', page)],
        [`${page}?returnUrl=%2Fbackoffice%2Faccount (trailing slash, query)`, () => rawRequest('GET', `${page}?returnUrl=%2Fbackoffice%2Faccount`)],
      ]),
      ['HEAD a page with a trailing slash', () => rawRequest('HEAD', '/backoffice/account/')],
      // not a page: a path that would be an open redirect if the trailing slash were cut from the request's path
      ['/backoffice//evil.example/ (not a page)', () => rawRequest('GET', '/backoffice//evil.example/')],
      ['sign-in', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: JSON.stringify({ username: 'parity-1@example.com', password: TEST_PASSWORD }) })],
      ['If-None-Match on /auth/me', (p) => rawRequest('GET', '/backoffice/auth/me', { headers: [...p.auth, 'If-None-Match: *'] })],
      ['If-None-Match on an asset', () => rawRequest('GET', '/backoffice/assets/session.js', { headers: ['If-None-Match: *'] })],
      // a sign-out last: it ends the signed-in admin's session
      ['logout with an empty JSON body', (p) => rawRequest('POST', '/backoffice/auth/logout', { headers: [...p.auth, J, 'Content-Length: 0'] })],
    ];
    const differences: string[] = [];
    for (const { name, express, fastify } of await both(cases)) {
      const [a, b] = [comparable(express), comparable(fastify)];
      if (JSON.stringify(a) !== JSON.stringify(b)) differences.push(`${name}:\n  express ${JSON.stringify(a).slice(0, 400)}\n  fastify ${JSON.stringify(b).slice(0, 400)}`);
      for (const answer of [express, fastify]) {
        expect(answer.status, `${name}: ${answer.body.slice(0, 200)}`).toBeGreaterThan(0);
        expect(answer.status, `${name}: ${answer.body.slice(0, 200)}`).toBeLessThan(500);
        // Expect: 100-continue: the interim 100 comes first, the final answer after it.
        if (answer.status >= 400 && answer.status !== 405) expectModuleError(name, answer, name.startsWith('HEAD'));
      }
    }
    expect(differences).toEqual([]);
  });

  it('a raw `#` anywhere in a request target under the route prefix: 400 bad_request on both platforms', async () => {
    const targets = [
      '/backoffice/audit#?take=1', '/backoffice/users#?take=1', '/backoffice/users?take=1#frag', '/backoffice/auth/me#frag', '/backoffice/account/#x',
      // right after the route prefix (no slash): Express served the sign-in page, Fastify's router read `status=requiresTwoFactor` as the query
      '/backoffice#x', '/backoffice#status=requiresTwoFactor', '/backoffice/#x', '/BackOffice#x', '/backoffice#',
    ];
    const answers = await both(targets.map((target): Case => [target, (p) => rawRequest('GET', target, { headers: p.auth })]));
    const code = (answer: RawHttpAnswer) => (answer.headers['content-type']?.[0]?.startsWith('application/json') ? JSON.parse(answer.body).code : answer.body.slice(0, 40));
    expect(answers.map(({ name, express, fastify }) => [name, express.status, code(express), fastify.status, code(fastify)]))
      .toEqual(targets.map((target) => [target, 400, 'bad_request', 400, 'bad_request']));
    // the JSON error shape and the module's headers, as any other error of the module
    for (const { name, express, fastify } of answers) for (const answer of [express, fastify]) expectModuleError(name, answer);
  });

  it('what the platforms answer differently by design (README, Fastify): still a 4xx in the module\'s shape on both, never a 500', async () => {
    const cases: Case[] = [
      // Routers: Express ignores a trailing slash and case; Fastify decodes escapes before matching.
      ['trailing slash', (p) => rawRequest('POST', '/backoffice/auth/login/', { headers: [...p.auth, J], body: LOGIN })],
      ['other case', () => rawRequest('POST', '/BackOffice/Auth/Login', { headers: [J], body: LOGIN })],
      ['percent-encoded letter', () => rawRequest('POST', '/backoffice/auth/%6Cogin', { headers: [J], body: LOGIN })],
      // Parsers: Fastify's refuses prototype keys (400 malformed_json), Express's keeps them for the module to refuse.
      ['__proto__ key', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: '{"username":"a@example.com","password":"x","__proto__":{"x":1}}' })],
      ['constructor key', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: '{"username":"a@example.com","password":"x","constructor":{"prototype":{"x":1}}}' })],
      // An empty chunked body: its length is not known before the parsers run.
      ['empty chunked JSON', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Transfer-Encoding: chunked'], body: '0\r\n\r\n' })],
      // Express's parser reads a body on GET; Fastify never does.
      ['malformed JSON on GET', () => rawRequest('GET', '/backoffice/auth/me', { headers: [J], body: '{"a":' })],
      // Forms: Express's `qs` limits parameters (1,000) and nests `a[b]`; Fastify's parser does neither.
      ['token: 2,000 parameters', () => rawRequest('POST', '/backoffice/auth/token', { headers: ['Content-Type: application/x-www-form-urlencoded'], body: Array.from({ length: 2000 }, (_, i) => `p${i}=1`).join('&') })],
      ['token: nested grant_type', () => rawRequest('POST', '/backoffice/auth/token', { headers: ['Content-Type: application/x-www-form-urlencoded'], body: 'grant_type[a]=client_credentials&client_id=a&client_secret=b' })],
    ];
    for (const { name, express, fastify } of await both(cases)) {
      for (const answer of [express, fastify]) if (answer.status >= 400) expectModuleError(name, answer);
      expect([express.status, fastify.status].every((status) => status < 500), name).toBe(true);
    }
  });

  it('requests Node\'s HTTP parser refuses before either platform runs (bad framing, methods, versions, header sizes): the same status', async () => {
    const cases: Case[] = [
      ['unknown method', () => rawRequest('FOO', '/backoffice/auth/login')],
      ['lower-case method', () => rawRequest('get', '/backoffice/auth/me')],
      ['HTTP/1.2', () => rawRequest('GET', '/backoffice/auth/me', { version: 'HTTP/1.2' })],
      ['HTTP/1.1 without Host', () => rawRequest('GET', '/backoffice/auth/me', { host: false })],
      ['raw UTF-8 in the path', () => rawRequest('GET', '/backoffice/auth/m\u00e9')],
      ['malformed chunk size', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Transfer-Encoding: chunked'], body: `zz\r\n${LOGIN}\r\n0\r\n\r\n` })],
      ['Content-Length and Transfer-Encoding', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Content-Length: 5', 'Transfer-Encoding: chunked'], body: '0\r\n\r\n' })],
      ['two Content-Lengths', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Content-Length: 5', 'Content-Length: 6'], body: '{}' })],
      ['20 kB header', () => rawRequest('GET', '/backoffice/auth/me', { headers: [`X-Big: ${'a'.repeat(20_000)}`] })],
      ['3,000 headers', () => rawRequest('GET', '/backoffice/auth/me', { headers: Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`) })],
      ['Expect: something else', () => rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Expect: something-else'], body: LOGIN })],
    ];
    for (const { name, express, fastify } of await both(cases)) {
      expect(fastify.status, name).toBe(express.status);
      expect([400, 417, 431], name).toContain(express.status);
    }
  });

  it('a request aborted half way through its body: nothing logged, no crash, the next request is answered', async () => {
    for (const p of apps) {
      const lines = p.logger.lines.length;
      const half = rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Content-Length: 1000'], body: LOGIN.slice(0, 20) });
      const aborted = await rawHttp(p.app.url, half, { timeoutMs: 300 });
      expect(aborted.status, p.platform).toBe(0);
      const chunked = rawRequest('POST', '/backoffice/auth/login', { headers: [J, 'Transfer-Encoding: chunked'], body: `ff\r\n${LOGIN.slice(0, 20)}` });
      expect((await rawHttp(p.app.url, chunked, { timeoutMs: 300 })).status, p.platform).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const next = await rawHttp(p.app.url, rawRequest('POST', '/backoffice/auth/login', { headers: [J], body: LOGIN }));
      expect(next.status, p.platform).toBe(401);
      expect(p.logger.lines.slice(lines), p.platform).toEqual([]);
    }
  });
});
