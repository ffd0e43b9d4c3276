import SwaggerParser from '@apidevtools/swagger-parser';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, httpPlatform, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { BACKOFFICE_ERROR_CODES, setupBackOfficeOpenApi } from '../../src/backoffice-identity/index.js';

describe('OpenAPI document', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { beforeListen: (app) => void setupBackOfficeOpenApi(app) });
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('is served at /backoffice/openapi.json, validates, and describes every route with its errors', async () => {
    const http = new HttpClient(ctx.url);
    const result = await http.get('/backoffice/openapi.json');
    expect(result.status).toBe(200);
    const document = result.body;
    await SwaggerParser.validate(structuredClone(document));
    const paths = Object.keys(document.paths);
    const expected: Array<[string, string]> = [
      ['post', '/backoffice/auth/login'], ['post', '/backoffice/auth/2fa'], ['post', '/backoffice/auth/2fa/setup'],
      ['post', '/backoffice/auth/2fa/enable'], ['post', '/backoffice/auth/2fa/disable'], ['post', '/backoffice/auth/2fa/recovery-codes'],
      ['post', '/backoffice/auth/logout'],
      ['get', '/backoffice/auth/me'], ['post', '/backoffice/auth/change-password'], ['post', '/backoffice/auth/forgot-password'],
      ['post', '/backoffice/auth/reset-password'], ['post', '/backoffice/auth/invite/accept'], ['get', '/backoffice/auth/sessions'],
      ['post', '/backoffice/auth/reset-password/verify'], ['post', '/backoffice/auth/invite/verify'],
      ['delete', '/backoffice/auth/sessions/{id}'], ['post', '/backoffice/users/invite'], ['post', '/backoffice/users/{id}/resend-invite'],
      ['get', '/backoffice/users'], ['post', '/backoffice/users/{id}/disable'], ['post', '/backoffice/users/{id}/enable'],
      ['post', '/backoffice/users/{id}/unlock'], ['put', '/backoffice/users/{id}/groups'], ['delete', '/backoffice/users/{id}/sessions'],
      ['post', '/backoffice/users/{id}/2fa/reset'], ['get', '/backoffice/audit'], ['post', '/backoffice/auth/reauthenticate'],
      ['delete', '/backoffice/auth/sessions'],
      ['post', '/backoffice/auth/passkey/options'], ['post', '/backoffice/auth/passkey/verify'], ['get', '/backoffice/auth/passkeys'],
      ['post', '/backoffice/auth/passkeys/options'], ['post', '/backoffice/auth/passkeys'], ['patch', '/backoffice/auth/passkeys/{id}'],
      ['delete', '/backoffice/auth/passkeys/{id}'], ['post', '/backoffice/auth/2fa/passkey/options'], ['post', '/backoffice/auth/2fa/passkey'],
      ['post', '/backoffice/auth/reauthenticate/passkey/options'], ['post', '/backoffice/auth/reauthenticate/passkey'],
      ['get', '/backoffice/users/{id}/passkeys'], ['delete', '/backoffice/users/{id}/passkeys/{passkeyId}'],
    ];
    for (const [method, path] of expected) {
      expect(paths, path).toContain(path);
      const operation = document.paths[path][method];
      expect(operation, `${method} ${path}`).toBeDefined();
      // every route documents at least one error response with the error schema
      const errorCodes = Object.keys(operation.responses).filter((code) => Number(code) >= 400);
      expect(errorCodes.length, `${method} ${path}`).toBeGreaterThan(0);
      expect(operation.responses[errorCodes[0]].content['application/json'].schema.$ref).toMatch(/ErrorResponse/);
      // every route can meet a database outage
      expect(operation.responses['503']?.description, `${method} ${path}`).toMatch(/database_unavailable/);
      if (operation.requestBody) expect(operation.responses['400'].description, `${method} ${path}`).toMatch(/malformed_json/);
    }
    // step-up routes document reauthentication_required
    for (const [method, path] of [['post', '/backoffice/auth/2fa/setup'], ['post', '/backoffice/auth/2fa/enable'], ['post', '/backoffice/auth/2fa/disable'], ['delete', '/backoffice/auth/sessions'], ['post', '/backoffice/users/{id}/2fa/reset'], ['put', '/backoffice/users/{id}'],
      ['post', '/backoffice/users/api'], ['post', '/backoffice/users/api/{id}/rotate-secret'], ['post', '/backoffice/users/import'], ['post', '/backoffice/users/invite'],
      ['post', '/backoffice/users/{id}/unlock']]) {
      expect(document.paths[path][method].responses['401'].description, `${method} ${path}`).toMatch(/reauthentication_required/);
    }
    // routes acting on another user document the target check's 403 beside the permission's (OWASP ASVS 4.0 4.2.1)
    for (const [method, path] of [
      ['put', '/backoffice/users/{id}'], ['post', '/backoffice/users/{id}/disable'], ['post', '/backoffice/users/{id}/enable'],
      ['post', '/backoffice/users/{id}/unlock'], ['post', '/backoffice/users/{id}/2fa/reset'], ['post', '/backoffice/users/{id}/force-password-reset'],
      ['delete', '/backoffice/users/{id}'], ['delete', '/backoffice/users/{id}/sessions'], ['post', '/backoffice/users/{id}/resend-invite'],
      ['put', '/backoffice/users/{id}/groups'], ['post', '/backoffice/users/api/{id}/rotate-secret'], ['post', '/backoffice/users/import'],
    ]) {
      const forbidden = document.paths[path][method].responses['403'].description;
      expect(forbidden, `${method} ${path}`).toMatch(/forbidden \(needs /);
      expect(forbidden, `${method} ${path}`).toMatch(/admin/);
      expect(forbidden, `${method} ${path}`).toMatch(/(lacks|may not manage)/);
    }
    // routes changing groups document the group rule's 403 beside the permission's
    for (const [method, path] of [['post', '/backoffice/groups'], ['put', '/backoffice/groups/{alias}'], ['delete', '/backoffice/groups/{alias}']]) {
      const forbidden = document.paths[path][method].responses['403'].description;
      expect(forbidden, `${method} ${path}`).toMatch(/forbidden \(needs groups\.manage/);
      expect(forbidden, `${method} ${path}`).toMatch(/no permission the caller lacks can be granted/);
    }
    const login = document.paths['/backoffice/auth/login'].post;
    expect(Object.keys(login.responses).sort()).toEqual(['200', '400', '401', '403', '415', '423', '429', '503']);
    expect(login.requestBody.content['application/json'].schema.$ref).toMatch(/LoginDto/);
    expect(document.components.schemas.LoginDto.required).toEqual(['username', 'password']);
    const passkeyVerify = document.paths['/backoffice/auth/passkey/verify'].post;
    expect(Object.keys(passkeyVerify.responses).sort()).toEqual(['200', '400', '401', '403', '404', '415', '423', '429', '503']);
    expect(document.components.schemas.PasskeyAssertionDto.required).toEqual(expect.arrayContaining(['id', 'rawId', 'type', 'response', 'clientExtensionResults']));
  });

  it('the paged lists (GET /auth/sessions, /users/api, /groups) declare skip/take with their bounds and defaults, the Link header, and total/totalExact', async () => {
    const document = (await new HttpClient(ctx.url).get('/backoffice/openapi.json')).body;
    await SwaggerParser.validate(structuredClone(document));
    for (const path of ['/backoffice/auth/sessions', '/backoffice/users/api', '/backoffice/groups']) {
      const operation = document.paths[path].get;
      const parameters = Object.fromEntries((operation.parameters ?? []).filter((p: { in: string }) => p.in === 'query').map((p: { name: string }) => [p.name, p]));
      expect(Object.keys(parameters).sort(), path).toEqual(['skip', 'take']);
      expect(parameters.skip, path).toMatchObject({ required: false, schema: { type: 'integer', minimum: 0, maximum: 10_000, default: 0 } });
      expect(parameters.take, path).toMatchObject({ required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 1000 } });
      const link = operation.responses['200'].headers?.Link;
      expect(link, `${path}: 200 declares the Link header`).toBeDefined();
      expect(link.schema.type, path).toBe('string');
      expect(link.description, path).toMatch(/rel="next"/);
      expect(link.required ?? false, path).toBe(false);
    }
    for (const schema of ['ApiUserListResponse', 'GroupListResponse']) {
      expect(document.components.schemas[schema].properties, schema).toMatchObject({ total: { type: 'number' }, totalExact: { type: 'boolean' } });
      expect(document.components.schemas[schema].required, schema).toEqual(expect.arrayContaining(['items', 'total', 'totalExact']));
    }
  });

  it('POST /auth/token\'s expires_in says it counts to the stored expiry, shorter for a token of a previous secret within its overlap', async () => {
    const document = (await new HttpClient(ctx.url).get('/backoffice/openapi.json')).body;
    const ref = document.paths['/backoffice/auth/token'].post.responses['200'].content['application/json'].schema.$ref as string;
    const expiresIn = document.components.schemas[ref.split('/').pop()!].properties.expires_in;
    expect(expiresIn.type).toBe('number');
    expect(expiresIn.description, 'expires_in description').toBeTypeOf('string');
    expect(expiresIn.description).toMatch(/seconds until the stored expiry/i);
    expect(expiresIn.description).toMatch(/previous secret/i);
    expect(expiresIn.description).toMatch(/overlap/i);
  });

  it('429 descriptions of per-IP limits say that an IPv6 client is also counted per its wider prefix (rateLimits.ipv6AggregateSubnet, /56 at 16 times)', async () => {
    const document = (await new HttpClient(ctx.url).get('/backoffice/openapi.json')).body;
    // limits per user, not per IP: the wider IPv6 prefix has nothing to do with them
    const perUser = new Set(['post /backoffice/auth/me/email', 'post /backoffice/users/{id}/resend-invite', 'put /backoffice/auth/me', 'patch /backoffice/auth/passkeys/{id}']);
    const perIp: string[] = [];
    for (const [path, item] of Object.entries<Record<string, { responses: Record<string, { description?: string }> }>>(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const description = operation.responses['429']?.description;
        if (description === undefined || !path.startsWith('/backoffice/')) continue;
        const route = `${method} ${path}`;
        if (perUser.has(route)) {
          expect(description, route).not.toMatch(/per IP|ipv6/);
          continue;
        }
        perIp.push(route);
        expect(description, route).toMatch(/per IP/);
        expect(description, route).toMatch(/`rateLimits\.ipv6AggregateSubnet`/);
        expect(description, route).toMatch(/\/56/);
        expect(description, route).toMatch(/`rateLimits\.ipv6AggregateMultiplier`/);
        expect(description, route).toMatch(/16 times/);
        // an IPv6 address that embeds an IPv4 address is counted as that IPv4 address (ip-rate-limit-key.ts)
        expect(description, route).toMatch(/IPv4-mapped, 6to4, Teredo, NAT64 `64:ff9b::\/96`\) counts as that IPv4 address/);
      }
    }
    expect(perIp).toEqual(expect.arrayContaining([
      'post /backoffice/auth/login', 'post /backoffice/auth/2fa', 'post /backoffice/auth/2fa/passkey/options', 'post /backoffice/auth/2fa/passkey',
      'post /backoffice/auth/passkey/options', 'post /backoffice/auth/passkey/verify', 'post /backoffice/auth/forgot-password',
      'post /backoffice/auth/reset-password', 'post /backoffice/auth/reset-password/verify', 'post /backoffice/auth/invite/verify',
      'post /backoffice/auth/invite/accept', 'post /backoffice/auth/me/email/confirm', 'post /backoffice/auth/token',
    ]));
  });

  it('ASVS 5.0 3.4.6 / 14.3.2: the document and Swagger UI carry the module\'s security headers like every answer below the prefix (no framing, no caching, nosniff)', async () => {
    const http = new HttpClient(ctx.url);
    const answers = [await http.get('/backoffice/openapi.json'), ...(httpPlatform() === 'fastify' ? [] : [await http.get('/backoffice/docs')])];
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-security-policy'), answer.text.slice(0, 60)).toContain("frame-ancestors 'none'");
      expect(answer.headers.get('x-frame-options')).toBe('DENY');
      expect(answer.headers.get('cache-control')).toBe('no-store');
      expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
      expect(answer.headers.get('x-powered-by')).toBeNull();
    }
  });

  it.skipIf(httpPlatform() === 'fastify')('serves Swagger UI at /backoffice/docs', async () => {
    const result = await new HttpClient(ctx.url).get('/backoffice/docs');
    expect(result.status).toBe(200);
    expect(result.text).toMatch(/swagger-ui/i);
  });

  it.runIf(httpPlatform() === 'fastify')('on Fastify without @fastify/static: the document is served, Swagger UI is not (404), and asking for it is a clear error', async () => {
    expect((await new HttpClient(ctx.url).get('/backoffice/docs')).status).toBe(404);
    expect(() => setupBackOfficeOpenApi(ctx.app, { swaggerUi: true })).toThrow(/@fastify\/static/);
  });

  it('error responses name registry codes only, each with a status the registry gives it', async () => {
    const document = (await new HttpClient(ctx.url).get('/backoffice/openapi.json')).body;
    const registry = BACKOFFICE_ERROR_CODES as Record<string, { status: number; alsoStatuses?: readonly number[] }>;
    let checked = 0;
    const unknown: string[] = [];
    for (const [path, item] of Object.entries<Record<string, { responses: Record<string, { description?: string }> }>>(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) < 400) continue;
          // a code is a snake_case word; words in backticks or after "e.g." are field names, not codes
          const codes = (response.description ?? '').replace(/`[^`]*`/g, '').match(/\b[a-z]+(?:_[a-z]+)+\b/g) ?? [];
          for (const code of codes) {
            checked++;
            const info = registry[code];
            if (!info || ![info.status, ...(info.alsoStatuses ?? [])].includes(Number(status))) unknown.push(`${method} ${path} ${status}: ${code}`);
          }
        }
      }
    }
    expect(unknown).toEqual([]);
    expect(checked).toBeGreaterThan(100);
  });
});
