import type { HttpClient, HttpResult } from './http-client.js';

/** Asserts the contract's error shape: a 4xx JSON `{ statusCode, code, message, errors? }`, no stack trace. */
export function expectClientError(result: HttpResult, status?: number): void {
  if (status !== undefined) expect(result.status, result.text).toBe(status);
  expect(result.status, result.text).toBeGreaterThanOrEqual(400);
  expect(result.status, result.text).toBeLessThan(500);
  expect(result.headers.get('content-type')).toMatch(/application\/json/);
  expect(result.body.statusCode).toBe(result.status);
  expect(typeof result.body.code).toBe('string');
  expect(result.body.code).toMatch(/^[a-z_]+$/);
  expect(typeof result.body.message).toBe('string');
  expect(result.text).not.toMatch(/\bat .*\.(js|ts):\d+/);
  expect(result.text).not.toMatch(/QueryFailedError|TypeError|node_modules/);
}

/**
 * A path parameter of thousands of characters: the module's 404 `not_found` on both platforms (on Fastify, whose
 * router refuses a parameter longer than its `maxParamLength` with its own 414, through the module's route
 * fallback: `http/fastify-route-fallback.ts`).
 */
export function expectOverlongIdRefused(result: HttpResult): void {
  expectClientError(result, 404);
  expect(result.body.code, result.text).toBe('not_found');
}

/** Bodies every JSON endpoint must refuse with a clean 4xx, for a route whose body has the given string fields. */
export function badBodies(fields: string[]): Array<{ name: string; raw?: string | Buffer; body?: unknown; contentType?: string }> {
  const valid = Object.fromEntries(fields.map((f) => [f, 'some valid looking value 123']));
  const cases: Array<{ name: string; raw?: string | Buffer; body?: unknown; contentType?: string }> = [
    { name: 'invalid JSON', raw: '{"a":' },
    { name: 'JSON null', raw: 'null' },
    { name: 'JSON array', raw: '[1,2,3]' },
    { name: 'JSON string', raw: '"text"' },
    { name: 'empty object', body: {} },
    { name: '1 MB body', raw: JSON.stringify({ ...valid, [fields[0]]: 'x'.repeat(1024 * 1024) }) },
    { name: 'invalid UTF-8 bytes', raw: Buffer.concat([Buffer.from(`{"${fields[0]}":"`), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]) },
    { name: 'unknown extra field', body: { ...valid, isAdmin: true } },
    { name: 'prototype pollution key', raw: JSON.stringify({ ...valid }).replace(/}$/, ',"__proto__":{"admin":true}}') },
    { name: 'wrong content type', raw: 'a=1', contentType: 'text/plain' },
  ];
  for (const field of fields) {
    cases.push({ name: `${field} missing`, body: Object.fromEntries(Object.entries(valid).filter(([k]) => k !== field)) });
    cases.push({ name: `${field} number`, body: { ...valid, [field]: 12345 } });
    cases.push({ name: `${field} object`, body: { ...valid, [field]: { $gt: '' } } });
    cases.push({ name: `${field} array`, body: { ...valid, [field]: ['a', 'b'] } });
    cases.push({ name: `${field} null`, body: { ...valid, [field]: null } });
    cases.push({ name: `${field} 10 kB`, body: { ...valid, [field]: 'é'.repeat(10_000) } });
  }
  return cases;
}

/** Sends each bad body and asserts a clean 4xx (never 500, never a stack). Returns the statuses by case. */
export async function expectBadBodiesRefused(http: HttpClient, method: string, path: string, fields: string[]): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (const c of badBodies(fields)) {
    const result = await http.request(method, path, c.raw !== undefined ? { raw: c.raw, contentType: c.contentType } : { body: c.body });
    expectClientError(result);
    seen[c.name] = result.status;
  }
  return seen;
}
