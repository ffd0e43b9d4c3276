/** A tiny cookie-keeping HTTP client over fetch, for end-to-end tests against a listening app. */
export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
  setCookies: string[];
}

export interface RequestOptions {
  body?: unknown;
  /** Send this exact string / buffer as the body instead of JSON. */
  raw?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  /** Add the X-XSRF-TOKEN header from the XSRF-TOKEN cookie (default true). */
  xsrf?: boolean;
  /** `manual`: answer redirects as they are (default: follow them). */
  redirect?: 'manual' | 'follow';
}

export class HttpClient {
  readonly cookies = new Map<string, string>();

  constructor(readonly baseUrl: string, readonly prefix = '/backoffice') {}

  /** A new client that shares nothing with this one. */
  fresh(): HttpClient {
    return new HttpClient(this.baseUrl, this.prefix);
  }

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('; ');
  }

  async request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | Buffer | undefined;
    if (options.raw !== undefined) {
      body = options.raw;
      headers['content-type'] = options.contentType ?? 'application/json';
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = options.contentType ?? 'application/json';
    }
    if (this.cookies.size && !('cookie' in headers)) headers.cookie = this.cookieHeader();
    const xsrf = this.cookies.get('XSRF-TOKEN');
    if (options.xsrf !== false && xsrf && !('x-xsrf-token' in headers)) headers['x-xsrf-token'] = xsrf;
    const url = path.startsWith('http') ? path : `${this.baseUrl}${path.startsWith('/') && !path.startsWith(this.prefix) && !path.startsWith('/health') ? this.prefix : ''}${path}`;
    const response = await fetch(url, { method, headers, body, redirect: options.redirect ?? 'follow' });
    const setCookies = response.headers.getSetCookie();
    for (const cookie of setCookies) {
      const [pair, ...attrs] = cookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = decodeURIComponent(pair.slice(eq + 1).trim());
      if (attrs.some((a) => /^\s*max-age=0$/i.test(a)) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, text, body: parsed as T, setCookies };
  }

  get<T = any>(path: string, options?: RequestOptions) {
    return this.request<T>('GET', path, options);
  }
  post<T = any>(path: string, body?: unknown, options: RequestOptions = {}) {
    return this.request<T>('POST', path, { ...options, body });
  }
  delete<T = any>(path: string, options?: RequestOptions) {
    return this.request<T>('DELETE', path, options);
  }

  login(username: string, password: string) {
    return this.post('/auth/login', { username, password });
  }
}
