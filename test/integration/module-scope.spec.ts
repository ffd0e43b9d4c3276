import http from 'node:http';
import { type ArgumentsHost, BadRequestException, Catch, Controller, type ExceptionFilter, Get, HttpCode, HttpException, Post } from '@nestjs/common';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, httpPlatform, TEST_PASSWORD, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { expectClientError } from '../support/bad-input.js';
import { BackOfficeAuthorize, BackOfficeRequestContextStore } from '../../src/backoffice-identity/index.js';

/** The host app's own error shape, from its own global filter: `{ host: true, status, what }`. */
@Catch()
class HostErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost) {
    const response = host.switchToHttp().getResponse();
    const status = exception instanceof HttpException ? exception.getStatus() : 500;
    const body = { host: true, status, what: exception instanceof Error ? exception.message : 'unknown' };
    // Express and Fastify replies both take status + send through Nest's adapter helpers; use the raw ones
    if (typeof response.status === 'function' && typeof response.json === 'function') response.status(status).json(body);
    else response.code(status).send(body);
  }
}

/** Host routes: one whose path merely contains the module's prefix, one open and one guarded that report the request context. */
@Controller()
class HostController {
  @Get('api/backoffice/x')
  refuse() {
    throw new BadRequestException('host says no');
  }

  @Get('host/context')
  open() {
    return { active: BackOfficeRequestContextStore.active() };
  }

  @Get('host/guarded-context')
  @BackOfficeAuthorize()
  guarded() {
    const context = BackOfficeRequestContextStore.current();
    return { active: BackOfficeRequestContextStore.active(), ip: context.ipAddress, performingUserId: context.performingUserId };
  }

  /** The same after a body was read (Fastify parses it after the middleware ran). */
  @Post('host/guarded-context')
  @HttpCode(200)
  @BackOfficeAuthorize()
  guardedPost() {
    return this.guarded();
  }
}

/** One keep-alive connection to `url` for every request, as a reverse proxy keeps to the app. */
function keepAliveConnection(url: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status?: number; body: any }>((resolve, reject) => {
      const request = http.request(`${url}${path}`, { agent, headers }, (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
      });
      request.on('error', reject);
      request.end();
    });
  return { get, close: () => agent.destroy() };
}

describe('Scope: the module formats its own errors and sets its request context on its own routes only', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let host: HttpClient;
  /** What the host's app-level middleware (Express) or `onRequest` hook (Fastify), which runs before any route, saw of the request context. */
  const beforeRouting: Array<{ path: string; active: boolean; performingUserId: string | null }> = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false } },
      controllers: [HostController],
      beforeListen: (app) => {
        app.useGlobalFilters(new HostErrorFilter());
        const record = (path: string) => {
          if (!path.startsWith('/host/')) return;
          const active = BackOfficeRequestContextStore.active();
          beforeRouting.push({ path, active, performingUserId: BackOfficeRequestContextStore.current().performingUserId ?? null });
        };
        if (httpPlatform() === 'fastify') {
          const fastify = app.getHttpAdapter().getInstance() as { addHook(name: 'onRequest', hook: (request: { url: string }, reply: unknown, done: () => void) => void): void };
          fastify.addHook('onRequest', (request, _reply, done) => (record(request.url), done()));
        } else {
          app.use((request: { url: string }, _response: unknown, next: () => void) => (record(request.url), next()));
        }
      },
    });
    host = new HttpClient(ctx.url, '');
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('a host route whose path contains /backoffice/ keeps the host filter\'s error shape', async () => {
    const result = await host.get('/api/backoffice/x');
    expect(result.status).toBe(400);
    expect(result.body).toEqual({ host: true, status: 400, what: 'host says no' });
  });

  it('a host 404 keeps the host filter\'s error shape', async () => {
    const result = await host.get('/nowhere/at/all');
    expect(result.status).toBe(404);
    expect(result.body).toMatchObject({ host: true, status: 404 });
  });

  it('the module\'s routes keep the module\'s shape whatever global filter the host has: controller errors, malformed JSON, unknown routes', async () => {
    const me = await new HttpClient(ctx.url).get('/auth/me');
    expect(me.status).toBe(401);
    expect(me.body).toEqual({ statusCode: 401, code: 'unauthenticated', message: 'Sign in first.' });
    const malformed = await new HttpClient(ctx.url).request('POST', '/auth/login', { raw: '{"username": ', contentType: 'application/json' });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ statusCode: 400, code: 'malformed_json' });
    const unknown = await new HttpClient(ctx.url).get('/no-such-route');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ statusCode: 404, code: 'not_found' });
  });

  it('the module\'s routes reached through another spelling of the prefix (Express: another case; Fastify: a percent-escape) keep the module\'s shape, not the host filter\'s', async () => {
    const routed: Array<[string, Awaited<ReturnType<HttpClient['get']>>, string]> = [];
    for (const prefix of ['/BackOffice', '/%62ackoffice']) {
      const me = await host.get(`${prefix}/auth/me`);
      const malformed = await host.request('POST', `${prefix}/auth/login`, { raw: '{"username": ', contentType: 'application/json' });
      // Each platform routes one of the spellings to the module (the other one is a 404).
      if (me.status !== 404) routed.push([prefix, me, 'unauthenticated'], [prefix, malformed, 'malformed_json']);
    }
    expect(routed).toHaveLength(2);
    for (const [prefix, answer, code] of routed) {
      expect(answer.body.host, `${prefix}: ${answer.text}`).toBeUndefined();
      expectClientError(answer);
      expect(answer.body.code, `${prefix}: ${answer.text}`).toBe(code);
    }
  });

  it('the request context is set on guarded host routes (IP, performing user) and not on the host\'s other routes', async () => {
    expect((await host.get('/host/context')).body).toEqual({ active: false });
    const user = (await ctx.userManager.createUser({ email: 'scope@example.com', name: 'Scope', password: TEST_PASSWORD })).value!;
    const http = new HttpClient(ctx.url);
    expect((await http.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const guarded = await new HttpClient(ctx.url, '').request('GET', '/host/guarded-context', { headers: { cookie: http.cookieHeader() } });
    expect(guarded.status).toBe(200);
    expect(guarded.body).toEqual({ active: true, ip: '127.0.0.1', performingUserId: user.id });
    // an unauthenticated call to a guarded host route: the module's guard refused it, the host's filter shaped it
    const refused = await host.get('/host/guarded-context');
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ host: true, status: 401 });
  });

  it('ASVS 4.0 7.1.4: the request context of a guarded host request never reaches the next request on the same keep-alive connection', async () => {
    const user = (await ctx.userManager.createUser({ email: 'scope-keepalive@example.com', name: 'Scope', password: TEST_PASSWORD })).value!;
    const signedIn = new HttpClient(ctx.url);
    expect((await signedIn.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const otherUser = (await ctx.userManager.createUser({ email: 'scope-keepalive-2@example.com', name: 'Other', password: TEST_PASSWORD })).value!;
    const other = new HttpClient(ctx.url);
    expect((await other.login(otherUser.email, TEST_PASSWORD)).status).toBe(200);
    // One connection for every request, as a reverse proxy keeps to the app.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
      new Promise<{ status?: number; body: any }>((resolve, reject) => {
        const request = http.request(`${ctx.url}${path}`, { method, agent, headers }, (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
        });
        request.on('error', reject);
        request.end(body);
      });
    const get = (path: string, headers: Record<string, string> = {}) => send('GET', path, headers);
    try {
      const guarded = await get('/host/guarded-context', { cookie: signedIn.cookieHeader() });
      expect(guarded.body).toEqual({ active: true, ip: '127.0.0.1', performingUserId: user.id });
      // The next (anonymous) request on that connection: no context, so nothing it does is put on the user's name.
      expect((await get('/host/context')).body).toEqual({ active: false });
      expect((await get('/host/guarded-context')).status).toBe(401);
      const posted = await send('POST', '/host/guarded-context', {
        cookie: signedIn.cookieHeader(),
        'x-xsrf-token': signedIn.cookies.get('XSRF-TOKEN')!,
        'content-type': 'application/json',
      }, JSON.stringify({ some: 'body' }));
      expect(posted.body).toEqual({ active: true, ip: '127.0.0.1', performingUserId: user.id });
      expect((await get('/host/context')).body).toEqual({ active: false });
      // Another person's guarded request on the same connection runs as that person, and only that request.
      expect((await get('/host/guarded-context', { cookie: other.cookieHeader() })).body).toEqual({ active: true, ip: '127.0.0.1', performingUserId: otherUser.id });
      expect((await get('/host/context')).body).toEqual({ active: false });
    } finally {
      agent.destroy();
    }
  });

  it('ASVS 4.0 7.1.4: host code that runs before the routes (an app-level middleware, a Fastify hook) never sees the request context of the previous request on the connection', async () => {
    const user = (await ctx.userManager.createUser({ email: 'scope-before-routing@example.com', name: 'Scope', password: TEST_PASSWORD })).value!;
    const signedIn = new HttpClient(ctx.url);
    expect((await signedIn.login(user.email, TEST_PASSWORD)).status).toBe(200);
    const connection = keepAliveConnection(ctx.url);
    try {
      beforeRouting.length = 0;
      expect((await connection.get('/host/guarded-context', { cookie: signedIn.cookieHeader() })).body).toMatchObject({ active: true, performingUserId: user.id });
      // The next (anonymous) request on that connection, and one more after it.
      expect((await connection.get('/host/context')).body).toEqual({ active: false });
      expect((await connection.get('/host/context')).body).toEqual({ active: false });
      expect(beforeRouting).toEqual([
        { path: '/host/guarded-context', active: false, performingUserId: null },
        { path: '/host/context', active: false, performingUserId: null },
        { path: '/host/context', active: false, performingUserId: null },
      ]);
    } finally {
      connection.close();
    }
  });
});
