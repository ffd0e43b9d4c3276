import SwaggerParser from '@apidevtools/swagger-parser';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { HttpClient } from '../support/http-client.js';
import { setupBackOfficeOpenApi } from '../../src/backoffice-identity/index.js';

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
    for (const path of ['/backoffice/auth/login', '/backoffice/auth/logout', '/backoffice/auth/me', '/backoffice/auth/change-password', '/backoffice/auth/sessions', '/backoffice/auth/sessions/{id}']) {
      expect(paths).toContain(path);
    }
    const login = document.paths['/backoffice/auth/login'].post;
    expect(Object.keys(login.responses).sort()).toEqual(['200', '400', '401', '403', '423', '429']);
    expect(login.requestBody.content['application/json'].schema.$ref).toMatch(/LoginDto/);
    expect(document.components.schemas.LoginDto.required).toEqual(['username', 'password']);
  });

  it('serves Swagger UI at /backoffice/docs', async () => {
    const result = await new HttpClient(ctx.url).get('/backoffice/docs');
    expect(result.status).toBe(200);
    expect(result.text).toMatch(/swagger-ui/i);
  });
});
