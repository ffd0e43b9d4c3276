// Small HTTP helpers: a cookie-keeping client for set-up steps, and single timed requests for latency samples.
import http from 'node:http';

/** Cookie pairs `name=value` from Set-Cookie values (cleared cookies dropped). */
export function cookiePairs(setCookies) {
  const pairs = new Map();
  for (const cookie of [setCookies ?? []].flat()) {
    const pair = String(cookie).split(';')[0];
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    pairs.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return pairs;
}

/** The Cookie header of a signed-in client (session and XSRF cookie), from a login's Set-Cookie values. */
export function sessionCookieHeader(setCookies, sessionCookieName = 'backoffice_session') {
  const pairs = cookiePairs(setCookies);
  if (!pairs.get(sessionCookieName)) return null;
  return [...pairs].map(([k, v]) => `${k}=${v}`).join('; ');
}

/** A client with a cookie jar that sends the XSRF double-submit header, like a browser front end would. */
export class CookieClient {
  constructor(baseUrl) {
    this.baseUrl = baseUrl;
    this.cookies = new Map();
  }

  async request(method, path, body) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const xsrf = this.cookies.get('XSRF-TOKEN');
    if (xsrf) headers['x-xsrf-token'] = decodeURIComponent(xsrf);
    const response = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const setCookies = response.headers.getSetCookie();
    for (const [k, v] of cookiePairs(setCookies)) {
      if (v === '') this.cookies.delete(k);
      else this.cookies.set(k, v);
    }
    const text = await response.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, body: json, text, setCookies };
  }

  async expect(status, method, path, body) {
    const result = await this.request(method, path, body);
    if (result.status !== status) {
      throw new Error(`${method} ${path}: expected ${status}, got ${result.status} ${result.text.slice(0, 300)}`);
    }
    return result;
  }
}

const timingAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/**
 * One JSON POST over a kept-alive loopback connection; resolves with status and the latency in ms from
 * sending the request to the last byte of the response.
 */
export function timedPost(baseUrl, path, body) {
  const url = new URL(path, baseUrl);
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: timingAgent,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
        timeout: 30_000,
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode, ms: performance.now() - t0 }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`POST ${path} timed out`)));
    request.on('error', reject);
    request.end(payload);
  });
}

export function closeTimingAgent() {
  timingAgent.destroy();
}
