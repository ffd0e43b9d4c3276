import { Module, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import express from 'express';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, signedInClient, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { HttpClient, type HttpResult } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';

/**
 * Bodies the module cannot read as it reads bodies (UTF-8 JSON, or a UTF-8 form on the routes that take one): another
 * charset, a content coding, a media type no parser of the module reads, no media type at all. Express's parsers
 * refuse some (a Latin-1 charset, an unknown coding), skip others (multipart, text/plain, none: no body); Fastify's
 * refuse others (multipart, none) and read the rest as UTF-8 JSON whatever the charset or coding says. So the same
 * request was refused on one platform and carried out on the other, without the fields the client sent (a timed
 * disable became a permanent one). Both platforms answer 415 `unsupported_media_type` and change nothing.
 */
describe('Bodies the module cannot read: 415 on both platforms, nothing done', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let newUser: ReturnType<typeof userFactory>;

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    newUser = userFactory(() => ctx, 'unreadable');
    const boss = await newUser({ groups: ['admin'] });
    admin = await signedInClient(ctx, boss.email);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  /** A request with exactly these headers (fetch adds a content type to a string body; this does not). */
  function rawRequest(method: string, path: string, headers: Record<string, string>, body: Buffer, chunked = false): Promise<HttpResult> {
    const url = new URL(`/backoffice${path}`, ctx.url);
    const framing = chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.length) };
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { method, headers: { ...headers, ...framing } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          const responseHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') responseHeaders.set(k, v);
          resolve({ status: res.statusCode!, headers: responseHeaders, text, body: parsed, setCookies: [] });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  const json = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');
  /** The unreadable variants of a JSON body `value`. */
  const unreadable = (value: unknown): Array<[string, Record<string, string>, Buffer]> => [
    ['JSON in Latin-1', { 'content-type': 'application/json; charset=latin1' }, Buffer.from(JSON.stringify(value), 'latin1')],
    ['JSON in UTF-16', { 'content-type': 'application/json; charset=utf-16' }, Buffer.from(JSON.stringify(value), 'utf16le')],
    ['UTF-8 JSON labelled UTF-16', { 'content-type': 'application/json; charset=utf-16' }, json(value)],
    ['gzip-coded JSON', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(json(value))],
    ['plain JSON said to be gzip-coded', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, json(value)],
    ['plain JSON said to be br-coded', { 'content-type': 'application/json', 'content-encoding': 'br' }, json(value)],
    ['plain JSON said to be deflate-coded', { 'content-type': 'application/json', 'content-encoding': 'deflate' }, json(value)],
    ['JSON in an unknown coding', { 'content-type': 'application/json', 'content-encoding': 'x-unknown' }, json(value)],
    ['multipart form', { 'content-type': 'multipart/form-data; boundary=b' }, Buffer.from(`--b\r\nContent-Disposition: form-data; name="reason"\r\n\r\nx\r\n--b--\r\n`)],
    ['text/plain', { 'content-type': 'text/plain' }, json(value)],
    ['a JSON-like type', { 'content-type': 'application/merge-patch+json' }, json(value)],
    ['no content type', {}, json(value)],
  ];
  const auth = (http: HttpClient) => ({ cookie: http.cookieHeader(), 'x-xsrf-token': http.cookies.get('XSRF-TOKEN')! });

  it('POST /users/:id/disable (whose body is optional): the user stays enabled', async () => {
    const user = await newUser();
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const failures: string[] = [];
    for (const [name, headers, body] of unreadable({ reason: 'timed', until })) {
      const result = await rawRequest('POST', `/users/${user.id}/disable`, { ...auth(admin), ...headers }, body);
      if (result.status !== 415 || result.body?.code !== 'unsupported_media_type') failures.push(`${name}: ${result.status} ${result.text.slice(0, 120)}`);
      else expectClientError(result, 415);
    }
    expect(failures).toEqual([]);
    expect((await ctx.userManager.findById(user.id))!.isApproved).toBe(true);
  });

  it('PUT /auth/me: the name stays as it was', async () => {
    const user = await newUser({ name: 'Before' });
    const http = await signedInClient(ctx, user.email);
    const failures: string[] = [];
    for (const [name, headers, body] of unreadable({ name: 'After' })) {
      const result = await rawRequest('PUT', '/auth/me', { ...auth(http), ...headers }, body);
      if (result.status !== 415 || result.body?.code !== 'unsupported_media_type') failures.push(`${name}: ${result.status} ${result.text.slice(0, 120)}`);
      else expectClientError(result, 415);
    }
    expect(failures).toEqual([]);
    expect((await ctx.userManager.findById(user.id))!.name).toBe('Before');
  });

  it('POST /auth/login (JSON only): 415 for every variant, no session', async () => {
    const user = await newUser();
    const failures: string[] = [];
    for (const [name, headers, body] of unreadable({ username: user.email, password: TEST_PASSWORD })) {
      const result = await rawRequest('POST', '/auth/login', headers, body);
      if (result.status !== 415 || result.body?.code !== 'unsupported_media_type') failures.push(`${name}: ${result.status} ${result.text.slice(0, 120)}`);
      expect(result.headers.get('set-cookie')).toBeNull();
    }
    expect(failures).toEqual([]);
  });

  it('what the module reads still works: UTF-8 JSON with or without a charset (any case, quoted), a form where forms are read', async () => {
    const user = await newUser();
    const http = await signedInClient(ctx, user.email);
    for (const contentType of ['application/json', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'Application/JSON; Charset=UTF-8']) {
      const result = await rawRequest('PUT', '/auth/me', { ...auth(http), 'content-type': contentType }, json({ name: 'Renamed' }));
      expect(result.status, `${contentType}: ${result.text}`).toBe(200);
    }
    const form = await rawRequest('PUT', '/auth/me', { ...auth(http), 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }, Buffer.from('name=Form%20Name'));
    expect(form.status, form.text).toBe(200);
    expect(form.body.name).toBe('Form Name');
    const enable = await rawRequest('POST', `/users/${user.id}/enable`, auth(admin), Buffer.alloc(0));
    expect(enable.status, enable.text).toBe(200);
  });

  it('OWASP ASVS 4.0 13.1.5: POST /auth/login reads UTF-8 under both its names (utf-8, utf8) on both platforms and refuses other charsets (latin1, utf-16) with the module\'s 415', async () => {
    const user = await newUser();
    const outcomes: Record<string, string> = {};
    for (const charset of ['utf8', 'UTF-8', 'latin1', 'utf-16']) {
      const login = await rawRequest('POST', '/auth/login', { 'content-type': `application/json; charset=${charset}` }, json({ username: user.email, password: TEST_PASSWORD }));
      outcomes[charset] = `${login.status} ${login.body?.status ?? login.body?.code}`;
    }
    expect(outcomes).toEqual({ utf8: '200 success', 'UTF-8': '200 success', latin1: '415 unsupported_media_type', 'utf-16': '415 unsupported_media_type' });
  });

  it('UTF-8 under its WHATWG label utf8 (any case, quoted or not) is read on both platforms, POST /auth/token included', async () => {
    const user = await newUser();
    const http = await signedInClient(ctx, user.email);
    const failures: string[] = [];
    for (const charset of ['utf8', 'UTF8', '"utf8"', '"Utf8"']) {
      const me = await rawRequest('PUT', '/auth/me', { ...auth(http), 'content-type': `application/json; charset=${charset}` }, json({ name: `Renamed ${charset}` }));
      if (me.status !== 200) failures.push(`PUT /auth/me JSON charset=${charset}: ${me.status} ${me.text.slice(0, 120)}`);
    }
    const created = await admin.post('/users/api', { name: 'Charset robot', groups: ['editor'] });
    expect(created.status, created.text).toBe(201);
    const { clientId, clientSecret } = created.body as { clientId: string; clientSecret: string };
    for (const charset of ['utf8', 'UTF8', '"utf8"']) {
      const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString();
      const viaForm = await rawRequest('POST', '/auth/token', { 'content-type': `application/x-www-form-urlencoded; charset=${charset}` }, Buffer.from(form));
      if (viaForm.status !== 200 || typeof viaForm.body?.access_token !== 'string') failures.push(`POST /auth/token form charset=${charset}: ${viaForm.status} ${viaForm.text.slice(0, 120)}`);
      const viaJson = await rawRequest('POST', '/auth/token', { 'content-type': `application/json; charset=${charset}` }, json({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }));
      if (viaJson.status !== 200 || typeof viaJson.body?.access_token !== 'string') failures.push(`POST /auth/token JSON charset=${charset}: ${viaJson.status} ${viaJson.text.slice(0, 120)}`);
    }
    expect(failures).toEqual([]);
    // Another charset is still refused on the token endpoint, as an OAuth error.
    const latin1 = await rawRequest('POST', '/auth/token', { 'content-type': 'application/x-www-form-urlencoded; charset=latin1' }, Buffer.from('grant_type=client_credentials'));
    expect(latin1.status, latin1.text).toBe(415);
    expect(latin1.body.error).toBe('invalid_request');
  });

  it('a POST without a body passes (no framing, Content-Length: 0); an untyped chunked body is refused even when empty', async () => {
    const user = await newUser();
    const disabled = await rawRequest('POST', `/users/${user.id}/disable`, auth(admin), Buffer.alloc(0));
    expect(disabled.status, disabled.text).toBe(200);
    // Its length is unknown until read, and Fastify's own parsers refuse an untyped chunked body: 415 on both platforms.
    const chunked = await rawRequest('POST', `/users/${user.id}/enable`, auth(admin), Buffer.alloc(0), true);
    expect(chunked.status, chunked.text).toBe(415);
    expect((await ctx.userManager.findById(user.id))!.isApproved).toBe(false);
  });

  it('an empty body labelled application/json (Content-Length: 0, as `fetch` sends it with a JSON header) is no body on both platforms: Express read it as none, Fastify refused it 400 malformed_json', async () => {
    const user = await newUser();
    const labelled = { 'content-type': 'application/json' };
    const disabled = await rawRequest('POST', `/users/${user.id}/disable`, { ...auth(admin), ...labelled }, Buffer.alloc(0));
    expect(disabled.status, disabled.text).toBe(200);
    expect((await ctx.userManager.findById(user.id))!.isApproved).toBe(false);
    const http = await signedInClient(ctx, (await newUser()).email);
    const rename = await rawRequest('PUT', '/auth/me', { ...auth(http), ...labelled }, Buffer.alloc(0));
    expectClientError(rename, 400);
    expect(rename.body.code).toBe('validation_failed');
    const logout = await rawRequest('POST', '/auth/logout', { ...auth(http), 'content-type': 'application/json; charset=utf-8' }, Buffer.alloc(0));
    expect(logout.status, logout.text).toBe(200);
    // A route that needs fields: the same validation answer as for `{}` on both platforms, not a parser error.
    const login = await rawRequest('POST', '/auth/login', labelled, Buffer.alloc(0));
    expectClientError(login, 400);
    expect(login.body.code).toBe('validation_failed');
    expect(login.body.errors.map((e: { field: string }) => e.field)).toEqual(expect.arrayContaining(['username', 'password']));
    // Its charset and coding are checked as Express's parsers check them: 415 on both platforms.
    for (const headers of [{ 'content-type': 'application/json; charset=latin1' }, { ...labelled, 'content-encoding': 'gzip' }]) {
      const refused = await rawRequest('POST', '/auth/login', headers, Buffer.alloc(0));
      expectClientError(refused, 415);
    }
  });
});

/** A host that applies its body parsers through Nest's MiddlewareConsumer, which wraps them (their names are lost). */
@Module({})
class ParsersThroughConsumerModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(express.json(), express.urlencoded({ extended: false })).forRoutes('{*path}');
  }
}

describe.skipIf(process.env.TEST_HTTP_PLATFORM === 'fastify')('OWASP ASVS 4.0 13.1.5: charset=utf8 is read on Express whichever way the host registers its body parsers', () => {
  let db: TestDatabase;
  const apps: IdentityApp[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await db?.drop();
  });

  it.each([
    ['bodyParser: false, parsers applied through MiddlewareConsumer', { bodyParser: false as const, imports: [{ module: ParsersThroughConsumerModule }] }],
    [
      'bodyParser: false, parsers wrapped in the host\'s own middleware before init',
      {
        bodyParser: false as const,
        beforeListen: (app: { use: (handler: express.RequestHandler) => unknown }) => {
          const json = express.json();
          app.use((request, response, next) => json(request, response, next));
        },
      },
    ],
  ])('%s: POST /auth/login with charset=utf8 signs in, latin1 is refused 415', async (_title, setup) => {
    const ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } }, ...setup });
    apps.push(ctx);
    const newUser = userFactory(() => ctx, `parsers${apps.length}`);
    const user = await newUser();
    const login = (charset: string) =>
      fetch(`${ctx.url}/backoffice/auth/login`, {
        method: 'POST',
        headers: { 'content-type': `application/json; charset=${charset}` },
        body: JSON.stringify({ username: user.email, password: TEST_PASSWORD }),
      });
    const utf8 = await login('utf8');
    const utf8Text = await utf8.text();
    expect(utf8.status, utf8Text).toBe(200);
    expect(JSON.parse(utf8Text).status).toBe('success');
    const latin1 = await login('latin1');
    expect(latin1.status).toBe(415);
  });
});
